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
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import generate_key

from hub.auth import devissuer
from hub.demo.faults import FaultProxy
from hub.demo.gateway import (
    GATEWAY_DIR,
    PARTNER_CLIENT,
    PARTNER_NAME,
    ROUTER_CLIENT,
    Gateway,
    running_gateway,
)
from hub.demo.stack import demo_sources, ensure_seeded, running_hub
from hub.settings import Settings

PARTNER = PARTNER_CLIENT  # the client system (azp) the people's tokens name
# Its trusted documents, the gateway's and the hub's: name -> (id, body)
MANIFEST = json.loads((GATEWAY_DIR / "trusted-documents" / f"{PARTNER}.json").read_text())
DOCUMENTS = {op["name"]: (op["id"], op["body"]) for op in MANIFEST["operations"]}
AVA = {"familyName": "Thompson", "dateOfBirth": "2016-03-14"}
AVA_NHS = "9434765919"
PURPOSES = "one of MASH_SCREENING, MASH_RESEARCH, THRESHOLD_DECISION, S47_STRATEGY"

# Sent as their exact registered text (by id in the tests that say so).
CASELOAD = DOCUMENTS["Caseload"][1]
LIGHT = DOCUMENTS["CaseloadLight"][1]  # the hub's nullable fields only
CHILD = DOCUMENTS["Child"][1]
ENTITIES = "query R($r: [_Any!]!) { _entities(representations: $r) { __typename } }"

EVENTS = """
query Events($subject: ID!) {
  auditEvents(first: 200, subjectId: $subject) {
    edges { node { actorSubject actorKind client clientSystem purpose contactId rootFields
                   subjects outcome errorCode fieldsRedacted { path reason } } }
  }
}"""

SUBJECT_ACCESS = """
query SubjectAccess($subject: ID!) {
  subjectAccessReport(subjectId: $subject, first: 500) {
    entries { operation client clientSystem actorSubject purpose contactId relationship }
  }
}"""


@dataclass
class Stack:
    gateway: Gateway
    hub_url: str
    data_dir: Path
    health: FaultProxy

    def token(self, role: str, client: str = PARTNER, **claims: Any) -> str:
        return devissuer.mint(self.data_dir, role, client=client, **claims)

    def send(
        self,
        payload: dict[str, Any],
        token: str,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        h = {"Authorization": f"Bearer {token}", **(headers or {})}
        return httpx.post(url or self.gateway.url, json=payload, headers=h, timeout=30)

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        role: str = "mash_social_worker",
        headers: dict[str, str] | None = None,
        url: str | None = None,
        **claims: Any,
    ) -> dict[str, Any]:
        payload = {"query": query, "variables": variables or {}}
        response = self.send(payload, self.token(role, **claims), headers, url)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def run(self, name: str, variables: dict[str, Any], **kw: Any) -> Any:
        """The partner's registered document `name`, by its id, through the gateway."""
        payload = {"documentId": f"sha256:{DOCUMENTS[name][0]}", "variables": variables}
        response = self.send(payload, self.token(kw.pop("role", "mash_social_worker"), **kw))
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = self.post(query, variables, **kw)
        assert "errors" not in body, body
        return body["data"]

    def ig(self, query: str, variables: dict[str, Any]) -> Any:
        """IG reads the audit at the hub itself, as staff (no partner client)."""
        url = f"{self.hub_url}/graphql"
        return self.data(query, variables, role="ig_officer", url=url, client=devissuer.DEV_CLIENT)

    def events(self, subject: str) -> list[dict[str, Any]]:
        """The audit events about `subject`, oldest first, leaving out IG's own listings."""
        page = self.ig(EVENTS, {"subject": subject})["auditEvents"]
        events = [edge["node"] for edge in page["edges"]]
        return [e for e in events if e["rootFields"] != ["auditEvents"]]

    def events_by(self, actor: str) -> list[dict[str, Any]]:
        """The audit events of one user (their `sub`), oldest first."""
        query = EVENTS.replace("$subject: ID!", "$actor: String!").replace(
            "subjectId: $subject", "actorSubject: $actor"
        )
        page = self.ig(query, {"actor": actor})["auditEvents"]
        return [edge["node"] for edge in page["edges"]]


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
            # the school nurse service is a partner system (its limits raised for the
            # module's many reads: tests/hub/test_limits.py tests them), the gateway a router
            partner = {"name": PARTNER_NAME, "person_requests_per_minute": 5000}
            settings = Settings(
                data_dir=data_dir,
                database_url=f"sqlite:///{data_dir / 'hub.sqlite3'}",
                sources=config,
                dev_issuer=True,
                partner_systems={PARTNER: partner},
                router_clients=(ROUTER_CLIENT,),
                partner_requests_per_minute=5000,
            )
            token = devissuer.mint(data_dir, "partner_system")  # staff's client: `_service`
            router = devissuer.mint_machine(data_dir, ROUTER_CLIENT)
            work = tmp_path_factory.mktemp("gateway")
            with (
                running_hub(settings) as hub_url,
                running_gateway(hub_url, token, work, router_token=router) as gateway,
            ):
                yield Stack(gateway, hub_url, data_dir, proxy)


@pytest.fixture(scope="module")
def ava(stack: Stack) -> str:
    found = stack.run("FindChild", {"criteria": AVA})["searchChildren"]
    [match] = [m for m in found if m["nhsNumber"] == AVA_NHS]
    return str(match["id"])


def follow(stack: Stack, nurse: str, child_id: str) -> None:
    """The partner's own mutation, through the gateway: the nurse follows a child by hub id."""
    variables = {"nurse": nurse, "childId": child_id, "school": "Oakfield Primary"}
    followed = stack.run("FollowChild", variables)["followChild"]
    assert (followed["nurse"], followed["school"]) == (nurse, "Oakfield Primary")


def open_contact(stack: Stack, child_id: str, research: bool) -> str:
    """A real contact about the child, through the gateway (the hub's own mutations, as the
    partner registered them): in screening, or moved to research with consent recorded."""
    referrer = {"type": "SCHOOL", "name": "Head teacher"}
    new = {"childIds": [child_id], "rag": "RED", "concern": "a concern", "referrer": referrer}
    contact = stack.run("OpenContact", {"input": new})["createContact"]["id"]
    if research:
        moved = {"id": contact, "stage": "RESEARCH", "purpose": "MASH_SCREENING"}
        stack.run("AdvanceContact", moved)
        consent = {"id": contact, "state": "GIVEN", "givenBy": "mother"}
        stack.run("RecordConsent", {**consent, "purpose": "MASH_RESEARCH"})
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
    assert event["clientSystem"] == PARTNER_NAME
    # IG's subject access report lists that read as such, with the partner system's name
    report = stack.ig(SUBJECT_ACCESS, {"subject": ava})
    assert {
        "operation": ["_entities"],
        "client": PARTNER,
        "clientSystem": PARTNER_NAME,
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

    # the same representation sent to the hub itself (as a subgraph, by staff: no partner
    # document gate) is named, not echoed
    direct = stack.post(
        ENTITIES,
        {"r": [{"__typename": "Thompson", "id": ava}]},
        headers={"X-Purpose-Of-Use": "MASH_SCREENING"},
        url=f"{stack.hub_url}/graphql",
        client=devissuer.DEV_CLIENT,
    )
    [error] = direct["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "unknown __typename" in error["message"] and "Thompson" not in error["message"]


def test_a_registered_document_by_id_runs_and_the_audit_names_person_and_partner_system(
    stack: Stack, ava: str
) -> None:
    follow(stack, "nurse-by-id", ava)
    contact = open_contact(stack, ava, research=True)
    headers = {"X-Purpose-Of-Use": "MASH_RESEARCH", "X-Contact-Id": contact}
    payload = {
        "documentId": f"sha256:{DOCUMENTS['Caseload'][0]}",
        "variables": {"nurse": "nurse-by-id"},
    }
    response = stack.send(payload, stack.token("mash_social_worker", sub="sw-by-id"), headers)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    [child] = body["data"]["nurseCaseload"]
    assert child["person"]["givenName"] == "Ava" and child["schoolNurse"]["nurse"] == "nurse-by-id"
    # the hub ran the gateway's `_entities` fetch (no manifest holds it: the router's token
    # stood for the check) and audited it as any partner read: the person and the system
    [event] = [e for e in stack.events_by("sw-by-id") if e["rootFields"] == ["_entities"]]
    assert event["errorCode"] is None and event["outcome"] != "denied"
    assert ava in event["subjects"]
    assert (event["client"], event["clientSystem"]) == (PARTNER, PARTNER_NAME)
    assert (event["actorKind"], event["purpose"]) == ("person", "MASH_RESEARCH")


def test_an_unregistered_document_is_refused_by_the_gateway_and_never_reaches_the_hub(
    stack: Stack, ava: str
) -> None:
    token = stack.token("mash_social_worker", sub="sw-unregistered")
    headers = {"X-Purpose-Of-Use": "MASH_SCREENING"}
    refused = [
        # text that is not registered (a registered one with a field more)
        {
            "query": CHILD.replace("id\n", "id\n    flags { lookedAfter }\n", 1),
            "variables": {"id": ava, "purpose": "MASH_SCREENING"},
        },
        # a client's own `_entities` (no representations of its own through the gateway)
        {"query": ENTITIES, "variables": {"r": [{"__typename": "ChildRecord", "id": ava}]}},
        # an id registered for no one, and one registered for another partner
        {"documentId": "sha256:" + "0" * 64, "variables": {"nurse": "n"}},
        {"documentId": "sha256:" + northshire_id(), "variables": {"id": ava}},
    ]
    for payload in refused:
        response = stack.send(payload, token, headers)
        assert response.status_code == 400, response.text
        errors = response.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["UNTRUSTED_DOCUMENT"], errors
        assert "registered" in errors[0]["message"] and ava not in errors[0]["message"]
    # nothing reached the hub: it audits every request it gets, and has none of this user's
    assert stack.events_by("sw-unregistered") == []
    # the exact registered text runs (the tests above send their documents so)
    assert stack.data(LIGHT, {"nurse": "nobody"}, sub="sw-unregistered") == {"nurseCaseload": []}


def northshire_id() -> str:
    """A document registered for the other partner (northshire-epr), not this one."""
    manifest = json.loads((GATEWAY_DIR / "trusted-documents" / "northshire-epr.json").read_text())
    return str(manifest["operations"][0]["id"])


def forged_router_token() -> str:
    """A client-credentials token for the router, in the dev issuer's name, signed with a
    key the hub does not know."""
    key = generate_key("EC", "P-256", parameters={"alg": "ES256"}, auto_kid=True)
    claims = {
        "iss": devissuer.DEV_ISSUER,
        "aud": devissuer.DEV_AUDIENCE,
        "sub": ROUTER_CLIENT,
        "azp": ROUTER_CLIENT,
        "exp": 4102444800,
        "gty": "client-credentials",
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def test_the_hub_refuses_a_partner_persons_entities_query_sent_without_a_valid_router_token(
    stack: Stack, ava: str
) -> None:
    token = stack.token("mash_social_worker", sub="sw-direct")
    payload = {"query": ENTITIES, "variables": {"r": [{"__typename": "ChildRecord", "id": ava}]}}
    url = f"{stack.hub_url}/graphql"
    purpose = {"X-Purpose-Of-Use": "MASH_SCREENING"}
    # without a router token the hub's own document gate applies: `_entities` is no
    # document of the partner's
    response = stack.send(payload, token, purpose, url)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "UNTRUSTED_DOCUMENT"
    # a forged router token, a real machine token of a client that is no router, and a
    # person's token in the router's header are each refused outright
    for router, message in (
        (forged_router_token(), "invalid router token"),
        (devissuer.mint_machine(stack.data_dir, "not-a-router"), "untrusted router"),
        (stack.token("mash_manager", client=ROUTER_CLIENT), "invalid router token"),
    ):
        headers = {**purpose, "X-Router-Authorization": f"Bearer {router}"}
        response = stack.send(payload, token, headers, url)
        assert response.status_code == 401, response.text
        [error] = response.json()["errors"]
        assert (error["message"], error["extensions"]["code"]) == (message, "UNAUTHENTICATED")
    events = stack.events_by("sw-direct")
    assert [(e["outcome"], e["errorCode"]) for e in events] == [
        ("denied", "UNTRUSTED_DOCUMENT"),
    ] + [("unauthenticated", "UNAUTHENTICATED")] * 3
    assert events[0]["clientSystem"] == PARTNER_NAME
    # with the trusted router's own token the same query passes the document check
    router = devissuer.mint_machine(stack.data_dir, ROUTER_CLIENT)
    headers = {**purpose, "X-Router-Authorization": f"Bearer {router}"}
    response = stack.send(payload, token, headers, url)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["_entities"] == [{"__typename": "ChildRecord"}]


def test_a_partner_machine_token_through_the_gateway_gets_flags_only(
    stack: Stack, ava: str
) -> None:
    follow(stack, "nurse-machine", ava)
    open_contact(stack, ava, research=False)
    machine = devissuer.mint_machine(stack.data_dir, PARTNER)
    payload = {
        "documentId": f"sha256:{DOCUMENTS['Child'][0]}",
        "variables": {"id": ava, "purpose": "MASH_SCREENING"},
    }
    response = stack.send(payload, machine)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    child = body["data"]["child"]
    # DOMAIN.md rule 17: whether the agencies know her, and the flags; nothing identifying
    assert child["flags"] == {"childProtection": True, "lookedAfter": False, "openContact": True}
    assert child["health"] == {"__typename": "Redaction", "reason": "NOT_PERMITTED"}
    assert child["person"] is None or child["person"]["givenName"] is None
    assert child["schoolNurse"] is not None  # the partner's own field, from its subgraph
    event = stack.events_by(PARTNER)[-1]
    assert (event["actorKind"], event["client"], event["clientSystem"]) == (
        "machine",
        PARTNER,
        PARTNER_NAME,
    )
    assert event["rootFields"] == ["child"] and ava in event["subjects"]


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
