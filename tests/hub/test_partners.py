"""Partner systems (issue 14 items 4 and 5) against a real OpenID provider: a partner's own
token (client credentials) gets what DOMAIN.md §3 rule 17 allows and nothing more, a person
signing in through the partner's client reads with their own rights, the audit names both,
and a partner may run only the operations registered for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import FakeContacts
from .partner_stack import (
    EPR,
    EPR_NAME,
    STRANGER,
    STRANGER_SECRET,
    PartnerStack,
    doc_id,
    partner_stack,
    registered,
)

AVA_NHS = "9434765919"
FIND = """query($c: PersonSearch!) {
  searchChildren(criteria: $c, purpose: MASH_RESEARCH) { id nhsNumber } }"""
CREATE = """mutation($input: CreateContactInput!) { createContact(input: $input) { id } }"""
UNREGISTERED = """query Sneaky($id: ID!) { child(id: $id, purpose: MASH_RESEARCH) {
  person { givenName familyName nhsNumber } } }"""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest,
    demo_data: Any,
    source_config: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    fake_contacts: FakeContacts,
) -> Iterator[PartnerStack]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('partners') / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_databases").create())
    with partner_stack(demo_data, source_config, url) as running:
        yield running


@pytest.fixture(scope="module")
def ava(stack: PartnerStack) -> str:
    response = stack.staff("mash_social_worker", FIND, {"c": {"nhsNumber": AVA_NHS}})
    matches = response.json()["data"]["searchChildren"]
    assert [m["nhsNumber"] for m in matches] == [AVA_NHS]
    return str(matches[0]["id"])


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


def by_id(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {"documentId": f"sha256:{doc_id(registered()[name])}", "variables": variables}


def refused_as_untrusted(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNTRUSTED_DOCUMENT"
    return str(error["message"])


def test_partner_machine_token_gets_rule_17_flags_only_whatever_it_claims(
    stack: PartnerStack, ava: str, fake_contacts: FakeContacts
) -> None:
    # given a MASH contact about Ava opened by a social worker
    contact = {"childIds": [ava], "rag": "RED", "concern": "x", "referrer": {"type": "SCHOOL"}}
    data(stack.staff("mash_social_worker", CREATE, {"input": contact}))
    # when the EPR asks with its own client-credentials token, claiming mash_manager/police
    token = stack.machine_token()
    flags = data(
        stack.post(token, by_id("PartnerChildFlags", {"id": ava, "purpose": "MASH_SCREENING"}))
    )
    child = flags["child"]
    # then (DOMAIN.md rule 17, §6): Ava's child-protection plan, not looked after, a contact
    # open; police, health and early help know her — and nothing but "known" of any of them
    assert child["flags"] == {"childProtection": True, "lookedAfter": False, "openContact": True}
    for section in ("police", "health", "earlyHelp"):
        assert child[section]["__typename"] == "Redaction", child[section]
        assert child[section]["knownToAgency"] is True
        assert child[section]["reason"] == "NOT_PERMITTED"
    # and a detail read, even on a contact "it works", identifies no one and shows no detail
    worked = fake_contacts.add(ava, stage="RESEARCH", assigned=True, consent="GIVEN")
    variables = {"id": ava, "purpose": "MASH_RESEARCH", "contactId": worked}
    record = data(stack.post(token, by_id("PartnerChildRecord", variables)))["child"]
    assert record["person"] is None or record["person"]["givenName"] is None
    assert record["health"]["__typename"] == "Redaction"
    assert record["police"]["__typename"] == "Redaction"
    assert record["flags"]["childProtection"] is True
    # and the audit names the system, as a machine, with none of the roles it claimed
    last = stack.events()[-1]
    assert (last["actorKind"], last["client"], last["clientSystem"]) == ("machine", EPR, EPR_NAME)
    assert last["actorSubject"] == EPR and last["actorRoles"] == []


def test_a_client_credentials_token_of_a_client_that_is_no_partner_system_is_refused(
    stack: PartnerStack, ava: str
) -> None:
    token = stack.machine_token(STRANGER, STRANGER_SECRET)
    response = stack.post(
        token, by_id("PartnerChildFlags", {"id": ava, "purpose": "MASH_SCREENING"})
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert stack.events()[-1]["outcome"] == "unauthenticated"


def test_a_person_through_the_partner_client_reads_with_their_own_rights_and_the_audit_names_both(
    stack: PartnerStack, ava: str, fake_contacts: FakeContacts
) -> None:
    token = stack.person_token("sam.social")  # a MASH social worker, signed in via the EPR
    # without a contact they work, rule 2 withholds the record from them as from anyone
    alone = data(
        stack.post(token, by_id("PartnerChildRecord", {"id": ava, "purpose": "MASH_RESEARCH"}))
    )
    assert alone["child"]["withheld"]["reason"] == "NO_RELATIONSHIP"
    # on a research contact they work, with consent, they read the detail a social worker may
    worked = fake_contacts.add(ava, stage="RESEARCH", assigned=True, consent="GIVEN")
    variables = {"id": ava, "purpose": "MASH_RESEARCH", "contactId": worked}
    record = data(stack.post(token, by_id("PartnerChildRecord", variables)))["child"]
    assert record["withheld"] is None
    assert record["person"]["givenName"] == "Ava" and record["person"]["nhsNumber"] == AVA_NHS
    assert record["health"]["__typename"] == "HealthSection"
    assert len(record["health"]["encounters"]) >= 2  # her two A&E attendances (DOMAIN.md §6)
    last = stack.events()[-1]
    assert (last["actorSubject"], last["actorKind"]) == ("sam.social", "person")
    assert (last["client"], last["clientSystem"]) == (EPR, EPR_NAME)
    assert last["actorRoles"] == ["mash_social_worker"] and last["outcome"] in ("ok", "redacted")
    assert ava in last["subjects"]


def test_a_partner_runs_a_registered_document_by_id_by_apollo_hash_or_by_its_exact_text(
    stack: PartnerStack, ava: str
) -> None:
    token = stack.machine_token()
    body = registered()["PartnerChildFlags"]
    variables = {"id": ava, "purpose": "MASH_SCREENING"}
    apollo = {
        "variables": variables,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": doc_id(body)}},
    }
    answers = [
        data(stack.post(token, by_id("PartnerChildFlags", variables))),
        data(stack.post(token, apollo)),
        data(stack.post(token, {"query": body, "variables": variables})),
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["child"]["flags"]["childProtection"] is True


def test_anything_else_from_a_partner_client_is_refused_and_audited(
    stack: PartnerStack, ava: str
) -> None:
    machine, person = stack.machine_token(), stack.person_token("sam.social")
    body = registered()["PartnerChildFlags"]
    attempts = [
        (machine, {"query": UNREGISTERED, "variables": {"id": ava}}),
        (person, {"query": UNREGISTERED, "variables": {"id": ava}}),
        (machine, {"query": body + " ", "variables": {"id": ava, "purpose": "MASH_SCREENING"}}),
        (machine, {"documentId": "sha256:" + "0" * 64, "variables": {"id": ava}}),
        (machine, {"documentId": f"sha256:{doc_id(body)}", "query": UNREGISTERED}),
    ]
    for token, request in attempts:
        message = refused_as_untrusted(stack.post(token, request))
        assert "givenName" not in message and ava not in message
    events = stack.events()[-len(attempts) :]
    assert [(e["outcome"], e["errorCode"]) for e in events] == [
        ("denied", "UNTRUSTED_DOCUMENT")
    ] * 5
    assert [e["actorKind"] for e in events] == [
        "machine",
        "person",
        "machine",
        "machine",
        "machine",
    ]
    assert all(e["clientSystem"] == EPR_NAME for e in events)


def test_staff_using_the_hub_directly_are_not_held_to_trusted_documents(
    stack: PartnerStack, ava: str
) -> None:
    response = stack.staff("mash_social_worker", UNREGISTERED, {"id": ava})
    assert response.status_code == 200, response.text
    assert stack.events()[-1]["client"] != EPR
