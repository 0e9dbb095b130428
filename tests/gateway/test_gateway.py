"""End to end through a real federation gateway (issue 14 items 3 and 7): the demo sources,
the hub, the example school nurse subgraph and Hive Gateway on loopback, one stack for the
module. Queries go both ways — the partner's root field to the hub's entities (`_entities`,
under the hub's policy and audit) and the hub's `child` to the partner's fields — and the
federation edge's errors reach the client clear. Tokens come from the dev issuer, naming the
partner system as their client (`azp`). Missing Node packages fail the module, never skip it.

The hub store is SQLite here: what is checked is the gateway path, which is the same on
either store (the store's own behaviour is covered on both in tests/hub/)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import devissuer
from hub.demo.faults import FaultProxy
from hub.demo.gateway import Gateway, running_gateway
from hub.demo.stack import demo_sources, ensure_seeded, running_hub
from hub.settings import Settings

PARTNER = "school-nurse-service"  # the client system (azp) the people's tokens name
AVA = {"familyName": "Thompson", "dateOfBirth": "2016-03-14"}
AVA_NHS = "9434765919"
PURPOSES = "one of MASH_SCREENING, MASH_RESEARCH, THRESHOLD_DECISION, S47_STRATEGY"

CASELOAD = """
query Caseload($nurse: String!) {
  nurseCaseload(nurse: $nurse) {
    id
    schoolNurse { nurse school }
    withheld { reason }
    sources { source status }
    health { __typename ... on Redaction { reason agency knownToAgency }
             ... on HealthSection { known } }
    police { __typename ... on Redaction { reason } ... on PoliceSection { known } }
    person { givenName nhsNumber knownToSchoolNurse }
  }
}"""

# Only the hub's nullable fields: where the hub answers an entity with an error, the partner's
# part of the row still comes back (a non-null hub field such as `sources` would null the row).
LIGHT = """
query Light($nurse: String!) {
  nurseCaseload(nurse: $nurse) {
    id
    schoolNurse { nurse school }
    withheld { reason }
    health { __typename }
  }
}"""

CHILD = """
query Child($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    id
    sources { source status }
    health { __typename ... on HealthSection { known } ... on Redaction { reason } }
    schoolNurse { nurse school }
    person { givenName knownToSchoolNurse }
  }
}"""

EVENTS = """
query Events($subject: ID!) {
  auditEvents(first: 200, subjectId: $subject) {
    edges { node { actorSubject client purpose contactId rootFields subjects outcome
                   errorCode fieldsRedacted { path reason } } }
  }
}"""

SUBJECT_ACCESS = """
query SubjectAccess($subject: ID!) {
  subjectAccessReport(subjectId: $subject, first: 500) {
    entries { operation client actorSubject purpose contactId relationship }
  }
}"""


@dataclass
class Stack:
    gateway: Gateway
    hub_url: str
    data_dir: Path
    health: FaultProxy

    def token(self, role: str, **claims: Any) -> str:
        return devissuer.mint(self.data_dir, role, client=PARTNER, **claims)

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        role: str = "mash_social_worker",
        headers: dict[str, str] | None = None,
        url: str | None = None,
        **claims: Any,
    ) -> dict[str, Any]:
        h = {"Authorization": f"Bearer {self.token(role, **claims)}", **(headers or {})}
        response = httpx.post(
            url or self.gateway.url,
            json={"query": query, "variables": variables or {}},
            headers=h,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = self.post(query, variables, **kw)
        assert "errors" not in body, body
        return body["data"]

    def events(self, subject: str) -> list[dict[str, Any]]:
        """The audit events about `subject`, oldest first, as IG reads them through the
        gateway (auditEvents is the hub's own root field), leaving out these listings' own."""
        page = self.data(EVENTS, {"subject": subject}, role="ig_officer")["auditEvents"]
        events = [edge["node"] for edge in page["edges"]]
        return [e for e in events if e["rootFields"] != ["auditEvents"]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("gateway-demo")
    ensure_seeded(data_dir)
    devissuer.ensure_keys(data_dir)
    with demo_sources(data_dir) as config:
        health = httpx.URL(config["HEALTH"]["url"])
        with FaultProxy("127.0.0.1", health.port or 80) as proxy:
            # health goes through a proxy the last test takes down
            config["HEALTH"] = {**config["HEALTH"], "url": str(health.copy_with(port=proxy.port))}
            settings = Settings(
                data_dir=data_dir,
                database_url=f"sqlite:///{data_dir / 'hub.sqlite3'}",
                sources=config,
                dev_issuer=True,
            )
            token = devissuer.mint(data_dir, "partner_system", client=PARTNER)
            with (
                running_hub(settings) as hub_url,
                running_gateway(hub_url, token, tmp_path_factory.mktemp("gateway")) as gateway,
            ):
                yield Stack(gateway, hub_url, data_dir, proxy)


@pytest.fixture(scope="module")
def ava(stack: Stack) -> str:
    found = stack.data(
        "query Find($c: PersonSearch!) { searchChildren(criteria: $c, purpose: MASH_SCREENING)"
        " { id nhsNumber } }",
        {"c": AVA},
    )["searchChildren"]
    [match] = [m for m in found if m["nhsNumber"] == AVA_NHS]
    return str(match["id"])


def follow(stack: Stack, nurse: str, child_id: str) -> None:
    """The partner's own mutation, through the gateway: the nurse follows a child by hub id."""
    followed = stack.data(
        "mutation F($n: String!, $c: ID!) { followChild(nurse: $n, childId: $c,"
        ' school: "Oakfield Primary") { nurse school } }',
        {"n": nurse, "c": child_id},
    )["followChild"]
    assert followed == {"nurse": nurse, "school": "Oakfield Primary"}


def open_contact(stack: Stack, child_id: str, research: bool) -> str:
    """A real contact about the child, through the gateway (the hub's own mutations): in
    screening, or moved to research with the family's consent recorded."""
    contact = stack.data(
        'mutation C($c: ID!) { createContact(input: {childIds: [$c], rag: "RED",'
        ' concern: "a concern", referrer: {type: "SCHOOL", name: "Head teacher"}}) { id } }',
        {"c": child_id},
    )["createContact"]["id"]
    if research:
        stack.data(
            'mutation A($id: ID!) { advanceContact(id: $id, stage: "RESEARCH",'
            " purpose: MASH_SCREENING) { stage } }",
            {"id": contact},
        )
        stack.data(
            'mutation R($id: ID!) { recordConsent(id: $id, state: "GIVEN", givenBy: "mother",'
            " purpose: MASH_RESEARCH) { consent { state } } }",
            {"id": contact},
        )
    return str(contact)


def caseload(stack: Stack, nurse: str, query: str = CASELOAD, **kw: Any) -> dict[str, Any]:
    return stack.post(query, {"nurse": nurse}, **kw)


def test_partner_root_field_reads_hub_entities_under_the_hubs_policy_and_audit(
    stack: Stack, ava: str
) -> None:
    follow(stack, "nurse-policy", ava)
    contact = open_contact(stack, ava, research=True)
    for_contact = {"X-Purpose-Of-Use": "MASH_RESEARCH", "X-Contact-Id": contact}

    # given a research contact with consent, worked by this social worker: the detail
    body = caseload(stack, "nurse-policy", headers=for_contact)
    assert "errors" not in body, body
    [child] = body["data"]["nurseCaseload"]
    assert child["schoolNurse"] == {"nurse": "nurse-policy", "school": "Oakfield Primary"}
    assert child["withheld"] is None
    assert child["health"] == {"__typename": "HealthSection", "known": True}
    assert child["person"] == {
        "givenName": "Ava",
        "nhsNumber": AVA_NHS,
        "knownToSchoolNurse": True,
    }
    assert {s["source"]: s["status"] for s in child["sources"]}["HEALTH"] == "OK"
    # ...and the hub audited that `_entities` read: the person, the client system, the why
    event = stack.events(ava)[-1]
    assert event["rootFields"] == ["_entities"] and event["errorCode"] is None
    assert ava in event["subjects"]
    assert event["client"] == PARTNER
    assert event["actorSubject"] == "demo-mash_social_worker"
    assert (event["purpose"], event["contactId"]) == ("MASH_RESEARCH", contact)
    # IG's subject access report, asked through the gateway, lists that read as such
    report = stack.data(SUBJECT_ACCESS, {"subject": ava}, role="ig_officer")
    assert {
        "operation": ["_entities"],
        "client": PARTNER,
        "actorSubject": "demo-mash_social_worker",
        "purpose": "MASH_RESEARCH",
        "contactId": contact,
        "relationship": "child",
    } in report["subjectAccessReport"]["entries"]

    # rule 2: a social worker on another team has no relationship with this contact's child
    body = caseload(stack, "nurse-policy", headers=for_contact, team="other-team", sub="sw-2")
    [child] = body["data"]["nurseCaseload"]
    assert child["withheld"] == {"reason": "NO_RELATIONSHIP"}
    assert child["health"]["reason"] == "NO_RELATIONSHIP"
    assert child["person"]["givenName"] is None and child["person"]["nhsNumber"] is None
    assert child["schoolNurse"]["school"] == "Oakfield Primary"  # the partner's own field
    event = stack.events(ava)[-1]
    assert (event["actorSubject"], event["client"]) == ("sw-2", PARTNER)
    assert ava in event["subjects"] and event["rootFields"] == ["_entities"]

    # a purpose that does not open the detail yet (a threshold decision before the decision
    # stage, rule 3): each other agency's section is a typed redaction, known yes/no only
    before_decision = {**for_contact, "X-Purpose-Of-Use": "THRESHOLD_DECISION"}
    [child] = caseload(stack, "nurse-policy", headers=before_decision)["data"]["nurseCaseload"]
    assert child["health"] == {
        "__typename": "Redaction",
        "reason": "STAGE_RESTRICTED",
        "agency": "health",
        "knownToAgency": True,
    }
    event = stack.events(ava)[-1]
    assert event["purpose"] == "THRESHOLD_DECISION" and event["client"] == PARTNER
    assert {"path": "child.health", "reason": "STAGE_RESTRICTED"} in event["fieldsRedacted"]

    # no purpose, no data (rule 1): the hub's fields error, the partner's still answer
    body = caseload(stack, "nurse-policy", LIGHT)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"PURPOSE_REQUIRED"}
    [child] = body["data"]["nurseCaseload"]
    assert child["schoolNurse"]["school"] == "Oakfield Primary"
    assert child["withheld"] is None and child["health"] is None


def test_hub_root_field_child_brings_the_partners_fields(stack: Stack, ava: str) -> None:
    follow(stack, "nurse-child", ava)
    contact = open_contact(stack, ava, research=True)
    variables = {"id": ava, "purpose": "MASH_RESEARCH", "contactId": contact}
    child = stack.data(CHILD, variables)["child"]
    assert child["id"] == ava
    assert child["health"] == {"__typename": "HealthSection", "known": True}
    assert child["schoolNurse"] == {"nurse": "nurse-child", "school": "Oakfield Primary"}
    assert child["person"] == {"givenName": "Ava", "knownToSchoolNurse": True}
    event = stack.events(ava)[-1]
    assert event["rootFields"] == ["child"] and event["client"] == PARTNER
    assert ava in event["subjects"]


def test_federation_edge_errors_are_clear_through_the_gateway(stack: Stack, ava: str) -> None:
    follow(stack, "nurse-edge", ava)
    missing = caseload(stack, "nurse-edge", LIGHT)["errors"]
    unknown = caseload(stack, "nurse-edge", LIGHT, headers={"X-Purpose-Of-Use": "AVA_THOMPSON"})
    [error] = {e["message"]: e for e in missing}.values()
    assert error["extensions"] == {"code": "PURPOSE_REQUIRED", "serviceName": "hub"}
    assert error["message"].startswith("entity reads need an X-Purpose-Of-Use header")
    assert PURPOSES in error["message"]
    [error] = {e["message"]: e for e in unknown["errors"]}.values()
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "serviceName": "hub"}
    assert error["message"].startswith("X-Purpose-Of-Use names no known purpose: use")
    assert PURPOSES in error["message"] and "AVA" not in error["message"]

    # the partner's caseload holds a row with no hub id and one with an id that is no hub
    # id: each gets its own clear error from the hub, and Ava's row still resolves
    follow(stack, "nurse-rows", "")
    follow(stack, "nurse-rows", "not-a-hub-id")
    follow(stack, "nurse-rows", ava)
    body = caseload(stack, "nurse-rows", LIGHT, headers={"X-Purpose-Of-Use": "MASH_SCREENING"})
    # (the index is the representation's place in the gateway's batch to the hub)
    errors = {re.sub(r"\[\d+\]", "[i]", e["message"]): e["extensions"] for e in body["errors"]}
    assert errors == {
        "representations[i] needs an id (the entity's key)": {
            "code": "BAD_USER_INPUT",
            "serviceName": "hub",
        },
        "no child with this id": {"code": "NOT_FOUND", "serviceName": "hub"},
    }
    rows = {row["id"]: row for row in body["data"]["nurseCaseload"]}
    assert rows[ava]["withheld"] == {"reason": "NO_RELATIONSHIP"}  # answered, in its place
    assert all(row["schoolNurse"]["school"] == "Oakfield Primary" for row in rows.values())

    # representations are the gateway's own: a client cannot send `_entities` (so no
    # unknown __typename) through it at all, and nothing reaches the hub to audit
    before = len(stack.events(ava))
    raw = stack.post(
        "query R($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        {"r": [{"__typename": "Thompson", "id": ava}]},
        headers={"X-Purpose-Of-Use": "MASH_SCREENING"},
    )
    assert {e["extensions"]["code"] for e in raw["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert {e["message"] for e in raw["errors"]} == {
        'Unknown type "_Any".',
        'Cannot query field "_entities" on type "Query".',
    }
    assert len(stack.events(ava)) == before
    # the same representation sent to the hub itself (as a subgraph) is named, not echoed
    direct = stack.post(
        "query R($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        {"r": [{"__typename": "Thompson", "id": ava}]},
        headers={"X-Purpose-Of-Use": "MASH_SCREENING"},
        url=f"{stack.hub_url}/graphql",
    )
    [error] = direct["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "unknown __typename" in error["message"] and "Thompson" not in error["message"]


def test_identical_reads_in_flight_together_each_reach_the_hub_and_its_audit(
    stack: Stack, ava: str
) -> None:
    contact = open_contact(stack, ava, research=True)
    token = stack.token("mash_social_worker")  # one token: byte-identical requests
    body = {
        "query": CHILD,
        "variables": {"id": ava, "purpose": "MASH_RESEARCH", "contactId": contact},
    }
    before = len(stack.events(ava))

    async def together(count: int) -> list[int]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:
            sent = [client.post(stack.gateway.url, json=body) for _ in range(count)]
            return [r.status_code for r in await asyncio.gather(*sent)]

    assert asyncio.run(together(8)) == [200] * 8
    assert len(stack.events(ava)) == before + 8  # the gateway merged none of them


def test_a_hub_source_down_still_leaves_the_partners_fields_answered(
    stack: Stack, ava: str
) -> None:
    follow(stack, "nurse-down", ava)
    contact = open_contact(stack, ava, research=True)
    headers = {"X-Purpose-Of-Use": "MASH_RESEARCH", "X-Contact-Id": contact}
    stack.health.mode = "down"
    try:
        body = caseload(stack, "nurse-down", headers=headers)
        assert "errors" not in body, body
        [child] = body["data"]["nurseCaseload"]
        variables = {"id": ava, "purpose": "MASH_RESEARCH", "contactId": contact}
        record = stack.data(CHILD, variables)["child"]
    finally:
        stack.health.mode = "pass"
    for answer in (child, record):
        states = {s["source"]: s["status"] for s in answer["sources"]}
        assert states["HEALTH"] == "UNAVAILABLE"
        assert {states[s] for s in states if s != "HEALTH"} == {"OK"}
        assert answer["health"] is None  # null because its source did not answer: `sources`
        assert answer["schoolNurse"]["school"] == "Oakfield Primary"
        assert answer["person"]["knownToSchoolNurse"] is True
