"""The information-sharing rules end to end on the demo data (issue 5, "done when"): who sees
what of the showcase family, by role, purpose and where the contact stands — through `child`
and through federation's `_entities`, with the same policy and audit.

Until the contact workflow lands, contacts are the test's own (`Hub.contact`: the facts the
policies see, as `hub.contacts.workflow.facts_for` will load them)."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from .conftest import Hub
from .test_app import RECORD, SEARCH, all_events, find_ava, ok

ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) {
    __typename
    ... on ChildRecord {
      id
      withheld { reason }
      health { __typename ... on Redaction { reason agency knownToAgency }
               ... on HealthSection { known } }
      police { __typename ... on Redaction { reason } ... on PoliceSection { known } }
    }
    ... on Person { id givenName familyName nhsNumber redactedFields { field reason } }
  }
}"""


def read(hub: Hub, role: str, child_id: str, purpose: str, contact: str | None) -> dict[str, Any]:
    variables = {"id": child_id, "purpose": purpose, "contactId": contact}
    return ok(hub.gql(role, RECORD, variables))["child"]  # type: ignore[no-any-return]


def entities(
    hub: Hub, role: str, reps: list[dict[str, str]], purpose: str, contact: str | None
) -> dict[str, Any]:
    headers = {"X-Purpose-Of-Use": purpose}
    if contact:
        headers["X-Contact-Id"] = contact
    return hub.gql(role, ENTITIES, {"reps": reps}, headers).json()  # type: ignore[no-any-return]


def test_without_a_contact_no_source_is_asked_and_the_record_is_withheld_typed(
    hub: Hub,
) -> None:
    child_id = find_ava(hub)
    record = read(hub, "mash_social_worker", child_id, "MASH_RESEARCH", None)
    assert record["withheld"] == {"reason": "NO_RELATIONSHIP"}
    assert record["sources"] == [] and record["household"] == []
    assert record["health"]["reason"] == "NO_RELATIONSHIP"
    assert record["health"]["knownToAgency"] is None, "not even whether she is known"
    assert record["person"]["givenName"] is None
    assert {"field": "givenName", "reason": "NO_RELATIONSHIP"} in record["person"]["redactedFields"]
    event = all_events(hub)[-1]
    assert event["sources"] == {} and child_id in event["subjects"]
    assert {"path": "child", "reason": "NO_RELATIONSHIP"} in event["fieldsRedacted"]


def test_a_contact_about_another_child_gives_no_relationship(hub: Hub) -> None:
    child_id = find_ava(hub)
    other = hub.contact("00000000-0000-0000-0000-000000000001")
    record = read(hub, "mash_manager", child_id, "MASH_RESEARCH", other)
    assert record["withheld"] == {"reason": "NO_RELATIONSHIP"}


def test_research_with_consent_shows_health_to_police_without_consultation_detail(
    hub: Hub,
) -> None:
    child_id = find_ava(hub)
    screening = hub.contact(child_id, stage="SCREENING", consent=None)
    record = read(hub, "police_researcher", child_id, "MASH_RESEARCH", screening)
    assert record["health"]["reason"] == "STAGE_RESTRICTED"
    assert record["health"]["knownToAgency"] is True

    no_consent = hub.contact(child_id, consent="NOT_SOUGHT")
    record = read(hub, "police_researcher", child_id, "MASH_RESEARCH", no_consent)
    assert record["health"] == {
        "__typename": "Redaction",
        "reason": "CONSENT_REQUIRED",
        "agency": "health",
        "knownToAgency": True,
    }

    consented = hub.contact(child_id, consent="GIVEN")
    record = read(hub, "police_researcher", child_id, "MASH_RESEARCH", consented)
    health = record["health"]
    assert health["__typename"] == "HealthSection"
    assert any(p.get("category") == "CPP" for p in health["plans"])
    encounters = [e for e in health["encounters"] if e.get("encounterClass")]
    assert len(encounters) >= 2
    for encounter in encounters:
        assert encounter["reason"] is None
        assert {"field": "reason", "reason": "NOT_PERMITTED"} in encounter["redactedFields"]


def test_an_override_or_s47_shares_without_consent(hub: Hub) -> None:
    child_id = find_ava(hub)
    override = hub.contact(child_id, consent="REFUSED", override=True)
    record = read(hub, "police_researcher", child_id, "MASH_RESEARCH", override)
    assert record["health"]["__typename"] == "HealthSection"
    s47 = hub.contact(child_id, stage="DECISION", consent="REFUSED", decision="S47")
    record = read(hub, "police_researcher", child_id, "S47_STRATEGY", s47)
    assert record["health"]["__typename"] == "HealthSection"


def test_early_help_detail_only_where_the_family_consented(hub: Hub) -> None:
    # Ava's family gave consent in early help: her early help worker sees the episode.
    record = read(hub, "early_help_worker", find_ava(hub), "EARLY_HELP", None)
    assert record["withheld"] == {"reason": "NO_RELATIONSHIP"}
    child_id = find_ava(hub)
    record = read(hub, "early_help_worker", child_id, "EARLY_HELP", hub.contact(child_id))
    assert record["earlyHelp"]["__typename"] == "EarlyHelpSection"
    assert any(e.get("about") == "CHILD" for e in record["earlyHelp"]["episodes"])

    # A child whose family refused: the section answers only "known to early help: yes".
    with sqlite3.connect(hub.data_dir / "sources" / "early_help.sqlite3") as db:
        given, family, born = db.execute(
            "SELECT p.given_name, p.family_name, p.date_of_birth FROM persons p "
            "JOIN consents c ON c.person_id = p.id "
            "WHERE c.status = 'REFUSED' AND p.date_of_birth >= '2010-01-01' "
            "AND EXISTS (SELECT 1 FROM episodes e WHERE e.person_id = p.id) "
            "AND c.recorded_on = (SELECT max(recorded_on) FROM consents WHERE person_id = p.id) "
            "ORDER BY p.id LIMIT 1"
        ).fetchone()
    criteria = {"givenName": given, "familyName": family, "dateOfBirth": born}
    matches = ok(
        hub.gql("early_help_worker", SEARCH, {"criteria": criteria, "purpose": "EARLY_HELP"})
    )["searchChildren"]
    [refused] = [m for m in matches if "EARLY_HELP" in m["sources"]]
    contact = hub.contact(refused["id"])
    record = read(hub, "early_help_worker", refused["id"], "EARLY_HELP", contact)
    assert record["earlyHelp"] == {
        "__typename": "Redaction",
        "reason": "CONSENT_REQUIRED",
        "agency": "early_help",
        "knownToAgency": True,
    }


def test_ig_officer_sees_no_child_data_through_child_or_entities(hub: Hub) -> None:
    child_id = find_ava(hub)
    contact = hub.contact(child_id)
    body = hub.gql(
        "ig_officer", RECORD, {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": contact}
    ).json()
    assert body["data"] == {"child": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reps = [{"__typename": "ChildRecord", "id": child_id}]
    body = entities(hub, "ig_officer", reps, "MASH_RESEARCH", contact)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"]["_entities"] == [None]


def test_entities_are_no_back_door_same_policy_and_audit_as_child(hub: Hub) -> None:
    child_id = find_ava(hub)
    reps = [{"__typename": "ChildRecord", "id": child_id}]

    body = entities(hub, "police_researcher", reps, "MASH_RESEARCH", None)
    assert "errors" not in body, body
    assert body["data"]["_entities"][0]["withheld"] == {"reason": "NO_RELATIONSHIP"}

    screening = hub.contact(child_id, stage="SCREENING", consent=None)
    body = entities(hub, "police_researcher", reps, "MASH_RESEARCH", screening)
    [record] = body["data"]["_entities"]
    assert record["health"] == {
        "__typename": "Redaction",
        "reason": "STAGE_RESTRICTED",
        "agency": "health",
        "knownToAgency": True,
    }
    assert record["police"] == {"__typename": "PoliceSection", "known": True}
    event = all_events(hub)[-1]
    assert event["operationName"] == "Entities" and event["purpose"] == "MASH_RESEARCH"
    assert child_id in event["subjects"]
    assert {"path": "child.health", "reason": "STAGE_RESTRICTED"} in event["fieldsRedacted"]
    assert event["sources"]["HEALTH"] == "REDACTED"

    no_purpose = hub.gql("police_researcher", ENTITIES, {"reps": reps}).json()
    assert no_purpose["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    assert "one of MASH_SCREENING, MASH_RESEARCH" in no_purpose["errors"][0]["message"]


def test_entities_tell_a_missing_purpose_header_from_an_unknown_one_and_bad_representations(
    hub: Hub,
) -> None:
    child_id = find_ava(hub)
    reps = [{"__typename": "ChildRecord", "id": child_id}]
    unknown = entities(hub, "police_researcher", reps, "AVA_THOMPSON", None)
    [error] = unknown["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("X-Purpose-Of-Use names no known purpose: use one of")
    assert "AVA" not in error["message"]
    bad: list[dict[str, str]] = [
        {"__typename": "Thompson", "id": child_id},
        {"__typename": "ChildRecord"},
        {"__typename": "ChildRecord", "id": child_id},
    ]
    body = entities(hub, "police_researcher", bad, "MASH_RESEARCH", None)
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert errors[("_entities", 0)]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "unknown __typename" in errors[("_entities", 0)]["message"]
    assert "Thompson" not in errors[("_entities", 0)]["message"]
    assert (
        errors[("_entities", 1)]["message"] == "representations[1] needs an id (the entity's key)"
    )
    # the good representation still resolves (withheld: no contact), in its own place
    assert body["data"]["_entities"][2]["withheld"] == {"reason": "NO_RELATIONSHIP"}
    assert not any(e["extensions"]["code"] == "INTERNAL_ERROR" for e in body["errors"])


def test_person_entities_give_demographics_only_to_those_with_a_relationship(hub: Hub) -> None:
    child_id = find_ava(hub)
    reps = [{"__typename": "Person", "id": child_id}]
    body = entities(hub, "mash_social_worker", reps, "MASH_RESEARCH", hub.contact(child_id))
    [person] = body["data"]["_entities"]
    assert person["givenName"] == "Ava" and person["nhsNumber"] == "9434765919"

    body = entities(hub, "mash_social_worker", reps, "MASH_RESEARCH", None)
    [person] = body["data"]["_entities"]
    assert person["givenName"] is None and person["nhsNumber"] is None
    assert {"field": "nhsNumber", "reason": "NO_RELATIONSHIP"} in person["redactedFields"]
    event = all_events(hub)[-1]
    assert child_id in event["subjects"]
    assert {"path": "_entities.person", "reason": "NO_RELATIONSHIP"} in event["fieldsRedacted"]
    assert "_entities.givenName" not in event["fieldsReturned"]


def test_break_glass_reads_with_a_grant_and_never_writes(hub: Hub) -> None:
    child_id = find_ava(hub)
    no_grant = hub.gql(
        "mash_manager", RECORD, {"id": child_id, "purpose": "BREAK_GLASS", "contactId": None}
    ).json()
    assert no_grant["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    grant = hub.contacts.add(
        child_id, break_glass=True, subject_ids=(), break_glass_subject_ids=(child_id,)
    )
    record = read(hub, "mash_manager", child_id, "BREAK_GLASS", grant)
    assert record["withheld"] is None
    assert record["health"]["__typename"] == "HealthSection"
    coded_c = [i for i in record["police"]["intelligence"] if i.get("handlingCode") == "C"]
    assert coded_c and all(i["text"] is None for i in coded_c), "rule 13 still holds"

    write = hub.gql(
        "mash_manager",
        """mutation($id: ID!, $contactId: ID) { rejectLink(childId: $id, source: POLICE,
            sourceRecordId: "PP000001", reason: "emergency", purpose: BREAK_GLASS,
            contactId: $contactId) { id } }""",
        {"id": child_id, "contactId": grant},
    ).json()
    assert write["errors"][0]["extensions"]["code"] == "FORBIDDEN"


PARTNER_READ = """
query Partner($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    id withheld { reason }
    flags { childProtection lookedAfter openContact }
    person { givenName familyName dateOfBirth nhsNumber address redactedFields { field reason } }
    household { person { id } }
    links { source }
    previouslyAccessedBy { agency }
    redactedFields { field reason }
    sources { source status }
    police { __typename ... on Redaction { reason knownToAgency } ... on PoliceSection { known } }
    health { __typename ... on Redaction { reason knownToAgency } ... on HealthSection { known } }
    adultSocialCare { __typename ... on Redaction { reason knownToAgency } }
    earlyHelp { __typename ... on Redaction { reason knownToAgency } }
  }
}"""


def partner_gql(hub: Hub, query: str, variables: dict[str, Any], agency: str) -> dict[str, Any]:
    return gql_as(hub, hub.token("partner_system", agency=agency), query, variables)


def gql_as(hub: Hub, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{hub.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return ok(response)  # type: ignore[no-any-return]


def test_a_partner_system_token_gets_flags_only_whatever_agency_it_claims(hub: Hub) -> None:
    """DOMAIN.md §3 rule 17: whether each agency knows the child, the CP/LAC flags and an
    open contact; never detail — even on a contact whose facts would let police read."""
    child_id = find_ava(hub)
    contact = hub.contact(child_id)  # research, consent given, "assigned"
    variables = {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": contact}

    record = partner_gql(hub, PARTNER_READ, variables, agency="police")["child"]

    assert record["flags"]["childProtection"] is True  # Ava's child protection plan
    assert record["flags"]["lookedAfter"] is False
    for section in ("police", "health", "adultSocialCare", "earlyHelp"):
        assert record[section]["__typename"] == "Redaction", section
        assert record[section]["reason"] == "NOT_PERMITTED", section
    assert record["police"]["knownToAgency"] is True and record["health"]["knownToAgency"] is True
    person = record["person"]
    identity = ("givenName", "familyName", "dateOfBirth", "nhsNumber")
    assert [person[f] for f in identity] == [None] * 4
    assert record["household"] == [] and record["links"] == []
    assert record["previouslyAccessedBy"] == []
    withheld = {r["field"]: r["reason"] for r in record["redactedFields"]}
    assert withheld == {
        "household": "NOT_PERMITTED",
        "links": "NOT_PERMITTED",
        "previouslyAccessedBy": "NOT_PERMITTED",
    }
    assert {s["source"] for s in record["sources"]} >= {"POLICE", "HEALTH"}
    event = all_events(hub)[-1]
    assert event["purpose"] == "MASH_RESEARCH" and child_id in event["subjects"]
    assert {"path": "child.police", "reason": "NOT_PERMITTED"} in event["fieldsRedacted"]


def test_a_partner_system_search_names_no_one_but_a_person_search_does(hub: Hub) -> None:
    criteria = {"criteria": {"nhsNumber": "9434765919"}, "purpose": "MASH_SCREENING"}

    partner = partner_gql(hub, SEARCH, criteria, agency="health")["searchChildren"]
    person = ok(hub.gql("mash_social_worker", SEARCH, criteria))["searchChildren"]

    assert [m["id"] for m in partner] == [m["id"] for m in person] and partner
    assert partner[0]["nhsNumber"] is None and partner[0]["givenName"] is None
    assert "HEALTH" in partner[0]["sources"]
    assert person[0]["nhsNumber"] == "9434765919" and person[0]["givenName"] == "Ava"


def test_a_person_working_the_contact_sees_the_flags_and_every_part(hub: Hub) -> None:
    child_id = find_ava(hub)
    variables = {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)}

    record = ok(hub.gql("mash_social_worker", PARTNER_READ, variables))["child"]

    assert record["flags"]["childProtection"] is True
    assert record["redactedFields"] == [] and record["household"] and record["links"]
    assert record["person"]["givenName"] == "Ava"


ACCESSED = """
query Accessed($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    previouslyAccessedBy { agency staff }
  }
}"""


def test_previously_accessed_by_names_staff_to_their_own_agency_and_managers_only(
    hub: Hub,
) -> None:
    """Rule 16: every viewer sees who else looked (agency, team, purpose); a colleague's name
    is shown within the same agency and to MASH managers, never to another agency."""
    child_id = find_ava(hub)
    variables = {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)}
    gql_as(hub, hub.token("police_researcher", sub="pc-first"), ACCESSED, variables)

    def names(role: str) -> list[str | None]:
        past = gql_as(hub, hub.token(role, sub=f"{role}-2"), ACCESSED, variables)["child"]
        return [p["staff"] for p in past["previouslyAccessedBy"] if p["agency"] == "police"]

    assert "pc-first" in names("police_researcher")
    assert "pc-first" in names("mash_manager")
    health = names("health_practitioner")
    assert health and set(health) == {None}


HOUSEHOLD = """
query Household($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    household {
      relation withheld { reason }
      basis { kind source }
      person { id givenName redactedFields { field reason } }
    }
  }
}"""


def household(hub: Hub, role: str, child_id: str, purpose: str, contact: str) -> list[Any]:
    variables = {"id": child_id, "purpose": purpose, "contactId": contact}
    return ok(hub.gql(role, HOUSEHOLD, variables))["child"]["household"]  # type: ignore[no-any-return]


def test_at_screening_household_members_found_by_other_agencies_wait_for_research(
    hub: Hub,
) -> None:
    """Rule 3: who another agency relates to the child, or records at her address, is that
    agency's information; at screening it is withheld, typed, like any other detail."""
    child_id = find_ava(hub)
    screening = hub.contact(child_id, stage="SCREENING", consent=None)

    council = household(hub, "mash_social_worker", child_id, "MASH_SCREENING", screening)

    assert council, "Ava's household is listed, as withheld entries"
    for member in council:
        assert member["withheld"] == {"reason": "STAGE_RESTRICTED"}
        assert member["relation"] is None and member["basis"] == []
        assert member["person"]["givenName"] is None
        assert {"field": "givenName", "reason": "STAGE_RESTRICTED"} in member["person"][
            "redactedFields"
        ]


def test_at_screening_an_agency_sees_the_household_its_own_records_found(hub: Hub) -> None:
    child_id = find_ava(hub)
    screening = hub.contact(child_id, stage="SCREENING", consent=None)

    police = household(hub, "police_researcher", child_id, "MASH_SCREENING", screening)

    shown = [m for m in police if m["withheld"] is None]
    assert shown, "the police's own records relate Jade and Liam to Ava"
    for member in shown:
        assert {b["source"] for b in member["basis"]} == {"POLICE"}
    names = {m["person"]["givenName"] for m in shown}
    assert "Jade" in names
    # and after research with consent, every agency's finds are shown
    research = hub.contact(child_id)
    later = household(hub, "police_researcher", child_id, "MASH_RESEARCH", research)
    assert all(m["withheld"] is None for m in later)
    assert len({b["source"] for m in later for b in m["basis"]}) > 1
