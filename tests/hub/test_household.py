"""Household means the same home (DOMAIN.md §3 rule 2), end to end: the real hub against the
real demo sources, the hub store on SQLite and PostgreSQL, the demo population's own ground
truth (hub.demo.generator) as the judge.

A child on a long street sees no neighbour; a hostel child sees the hostel's residents as
unconfirmed residents of a large shared address, none of their records, until an analyst
confirms one; a child in a block recorded without flat numbers sees her own flat."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from hub.demo import generator as g
from hub.demo.stack import DEMO_HOUSEHOLDS, DEMO_SEED

from .conftest import Hub
from .test_app import all_events, ok

SEARCH = """
query Find($criteria: PersonSearch!, $purpose: Purpose!) {
  searchChildren(criteria: $criteria, purpose: $purpose) { id nhsNumber }
}"""

ITEM = "__typename ... on Entry { id about aboutPersonId }"
PERSON = "id givenName familyName dateOfBirth relationship agencies"
BASIS = "kind source relation confirmed"
DECISION = "decision { id decision residentId childId reason }"
RECORD = f"""
query Household($id: ID!, $purpose: Purpose!, $contactId: ID) {{
  child(id: $id, purpose: $purpose, contactId: $contactId) {{
    id
    person {{ {PERSON} }}
    household {{ relation basis {{ {BASIS} }} person {{ {PERSON} }} {DECISION} }}
    sharedAddressResidents {{ basis {{ {BASIS} }} person {{ {PERSON} }} {DECISION} }}
    police {{ __typename ... on PoliceSection {{
      incidents {{ {ITEM} }} intelligence {{ {ITEM} }}
      missingEpisodes {{ {ITEM} }} warningMarkers {{ {ITEM} }} }} }}
    health {{ __typename ... on HealthSection {{ encounters {{ {ITEM} }} plans {{ {ITEM} }} }} }}
    adultSocialCare {{ __typename
      ... on AdultSocialCareSection {{ involvements {{ {ITEM} }} }} }}
    earlyHelp {{ __typename
      ... on EarlyHelpSection {{ episodes {{ {ITEM} }} consents {{ {ITEM} }} }} }}
  }}
}}"""

DECIDE = """
mutation %s($childId: ID!, $residentId: ID!, $reason: String!, $purpose: Purpose!,
            $contactId: ID) {
  %s(childId: $childId, residentId: $residentId, reason: $reason, purpose: $purpose,
     contactId: $contactId) {
    id childId residentId decision reason decidedBy decidedByAgency decidedAt supersededAt
    contactId
  }
}"""
CONFIRM = DECIDE % ("ConfirmResident", "confirmHouseholdResident")
REJECT = DECIDE % ("RejectResident", "rejectHouseholdResident")

EVENT_SUBJECTS = """
query Subjects($subject: ID!) {
  auditEvents(first: 200, subjectId: $subject) {
    edges { node { id subjectEntries { subjectId relationship }
                   policyDecisions { recordClass decision } } }
  }
}"""

SECTIONS = {
    "police": ("incidents", "intelligence", "missingEpisodes", "warningMarkers"),
    "health": ("encounters", "plans"),
    "adultSocialCare": ("involvements",),
    "earlyHelp": ("episodes", "consents"),
}
SOURCES = {
    "police": "POLICE",
    "health": "HEALTH",
    "adultSocialCare": "ADULT_SOCIAL_CARE",
    "earlyHelp": "EARLY_HELP",
}


@functools.cache
def population() -> g.Population:
    """The demo population the sources were seeded with: the ground truth."""
    return g.generate(DEMO_HOUSEHOLDS, DEMO_SEED)


def find(hub: Hub, child: g.Person) -> str:
    """The child's hub id, searched for by name and date of birth as a contact gives them."""
    criteria = {
        "givenName": child.given_name,
        "familyName": child.family_name,
        "dateOfBirth": child.date_of_birth.isoformat(),
    }
    variables = {"criteria": criteria, "purpose": "MASH_RESEARCH"}
    [match] = ok(hub.gql("mash_social_worker", SEARCH, variables))["searchChildren"]
    return str(match["id"])


def read(hub: Hub, child_id: str) -> dict[str, Any]:
    variables = {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)}
    return ok(hub.gql("mash_social_worker", RECORD, variables))["child"]  # type: ignore[no-any-return]


def items(record: dict[str, Any]) -> set[tuple[str, str]]:
    """(source, item id) of every item shown in the record."""
    found: set[tuple[str, str]] = set()
    for section, lists in SECTIONS.items():
        value = record[section]
        assert value is not None and value["__typename"] != "Redaction", section
        for name in lists:
            found |= {(SOURCES[section], i["id"]) for i in value[name] if "id" in i}
    return found


def written(people: list[g.Person]) -> set[tuple[str, str, str]]:
    """(given, family, date of birth) of every source record of these people, as written."""
    pop = population()
    ids = {p.id for p in people}
    records = [
        *pop.health.patients,
        *pop.police.persons,
        *pop.adult_social_care.persons,
        *pop.early_help.persons,
    ]
    return {
        (r.given_name, r.family_name, r.date_of_birth.isoformat())
        for r in records
        if r.person_id in ids and r.date_of_birth
    }


def who(person: dict[str, Any]) -> tuple[str, str, str]:
    return (person["givenName"], person["familyName"], person["dateOfBirth"])


def not_leaked(child: g.Person, record: dict[str, Any]) -> None:
    """No neighbour is a household member and no record of a neighbour's alone is shown."""
    pop = population()
    home = [child, *pop.housemates(child.id)]
    neighbours = pop.neighbours(child.id)
    theirs = pop.items_of(p.id for p in neighbours) - pop.items_of(p.id for p in home)
    assert theirs, "the neighbours hold agency records: the test could fail"
    assert items(record) & theirs == set()
    strangers = written(neighbours)
    assert [m for m in record["household"] if who(m["person"]) in strangers] == []


def test_long_street_child_household_is_her_own_home_when_her_street_has_many_addresses(
    hub: Hub,
) -> None:
    pop = population()
    child = pop.long_street_child()
    postcode = pop.long_street()
    street = [h for h in pop.households if h.postcode == postcode]
    assert len(street) >= 20, "a long street: many numbered houses under one postcode"

    record = read(hub, find(hub, child))

    not_leaked(child, record)
    assert record["sharedAddressResidents"] == [], "a street of houses is no shared address"
    family = written(pop.housemates(child.id))
    members = {who(m["person"]) for m in record["household"]}
    assert members and members <= family, "her household is her family, and only them"
    assert all(b["confirmed"] for m in record["household"] for b in m["basis"])
    kinds = {b["kind"] for m in record["household"] for b in m["basis"]}
    assert kinds <= {"SOURCE_RELATION", "SHARED_ADDRESS", "SHARED_UPRN"}


def test_showcase_child_has_no_shared_address_residents_when_her_home_is_a_house(
    hub: Hub,
) -> None:
    ava = next(p for p in population().persons if p.nhs_number == g.AVA_NHS)
    record = read(hub, find(hub, ava))
    assert record["sharedAddressResidents"] == []
    names = {m["person"]["givenName"] for m in record["household"]}
    assert {"Jade", "Noah", "Liam"} <= names
    family = written(population().housemates(ava.id))
    assert {who(m["person"]) for m in record["household"]} <= family


def residents_by_truth(record: dict[str, Any], people: list[g.Person]) -> dict[str, dict[str, Any]]:
    """The record's shared-address residents that are these people, by truth person id."""
    found: dict[str, dict[str, Any]] = {}
    for p in people:
        mine = written([p])
        match = [r for r in record["sharedAddressResidents"] if who(r["person"]) in mine]
        if match:
            found[p.id] = match[0]
    return found


def test_hostel_child_sees_residents_unconfirmed_and_none_of_their_records_until_one_is_confirmed(
    hub: Hub,
) -> None:
    pop = population()
    child = pop.hostel_child()
    [hostel] = [a for a in pop.shared_addresses() if a.kind == "hostel"]
    others = [p for p in pop.neighbours(child.id) if p.household_id in hostel.household_ids]
    assert len(others) >= 7, "a hostel: many unrelated adults at one address"
    child_id = find(hub, child)

    # a hostel's residents are listed as such, unconfirmed, and none of their records is read
    record = read(hub, child_id)
    not_leaked(child, record)
    residents = record["sharedAddressResidents"]
    assert len(residents) >= 7
    for r in residents:
        assert r["person"]["relationship"] == "SHARED_ADDRESS_RESIDENT"
        assert r["basis"] and all(
            b["kind"] == "LARGE_SHARED_ADDRESS" and not b["confirmed"] for b in r["basis"]
        )
        assert r["decision"] is None
    assert written(pop.housemates(child.id)) & {who(r["person"]) for r in residents} == set()
    mother = written(pop.housemates(child.id))
    assert any(who(m["person"]) in mother for m in record["household"]), "her mother is kin"

    # when an analyst confirms a resident known to adult social care as her household
    asc_known = {a.person_id for a in pop.adult_social_care.persons}
    listed = residents_by_truth(record, [p for p in others if p.id in asc_known])
    assert listed, "a resident known to adult social care is listed"
    person_id, resident = sorted(listed.items())[0]
    resident_id = resident["person"]["id"]
    contact = hub.contact(child_id)
    decided = ok(
        hub.gql(
            "mash_manager",
            CONFIRM,
            {
                "childId": child_id,
                "residentId": resident_id,
                "reason": "lives with the family in the family room",
                "purpose": "MASH_RESEARCH",
                "contactId": contact,
            },
        )
    )["confirmHouseholdResident"]
    assert (decided["decision"], decided["childId"], decided["residentId"]) == (
        "CONFIRMED",
        child_id,
        resident_id,
    )
    assert decided["contactId"] == contact and decided["decidedByAgency"] == "council"

    # then that one is a household member, their records read, the basis confirmed
    after = read(hub, child_id)
    [member] = [m for m in after["household"] if m["person"]["id"] == resident_id]
    assert member["person"]["relationship"] == "HOUSEHOLD_MEMBER"
    assert {"kind": "LARGE_SHARED_ADDRESS", "confirmed": True} in [
        {"kind": b["kind"], "confirmed": b["confirmed"]} for b in member["basis"]
    ]
    assert member["decision"]["decision"] == "CONFIRMED"
    theirs = pop.items_of([person_id])
    assert theirs & items(after), "the confirmed resident's records are read"
    assert resident_id not in {r["person"]["id"] for r in after["sharedAddressResidents"]}
    rest = [p for p in others if p.id != person_id]
    still = pop.items_of(p.id for p in rest) - pop.items_of([child.id, person_id])
    assert items(after) & still == set(), "the other residents' records are still unread"

    # and the decision is one audited operation naming the child and the resident
    [event] = [e for e in all_events(hub) if e["operationName"] == "ConfirmResident"]
    assert event["outcome"] == "ok" and event["purpose"] == "MASH_RESEARCH"
    assert set(event["subjects"]) == {child_id, resident_id}
    entries = ok(hub.gql("ig_officer", EVENT_SUBJECTS, {"subject": resident_id}))["auditEvents"]
    [node] = [e["node"] for e in entries["edges"] if e["node"]["id"] == event["id"]]
    roles = {s["subjectId"]: s["relationship"] for s in node["subjectEntries"]}
    assert roles == {child_id: "child", resident_id: "shared_address_resident"}
    decided_on = [d for d in node["policyDecisions"] if d["recordClass"] == "decide_household"]
    assert [d["decision"] for d in decided_on] == ["RELEASED"]


def test_block_child_household_is_her_flat_when_the_block_is_recorded_without_flat_numbers(
    hub: Hub,
) -> None:
    pop = population()
    child = pop.block_child()
    record = read(hub, find(hub, child))

    not_leaked(child, record)
    family = written(pop.housemates(child.id))
    members = {who(m["person"]) for m in record["household"]}
    assert members and members <= family
    residents = {who(r["person"]) for r in record["sharedAddressResidents"]}
    assert residents, "the other flats' people, recorded at the block's name, are listed"
    assert residents & family == set()


def test_household_decision_is_refused_when_the_actor_is_not_a_mash_analyst_working_the_child(
    hub: Hub,
) -> None:
    pop = population()
    child_id = find(hub, pop.hostel_child())
    resident = read(hub, child_id)["sharedAddressResidents"][0]["person"]["id"]
    variables = {
        "childId": child_id,
        "residentId": resident,
        "reason": "not household",
        "purpose": "MASH_RESEARCH",
        "contactId": hub.contact(child_id),
    }
    # a police researcher does not decide a child's household
    refused = hub.gql("police_researcher", REJECT, variables).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # a MASH social worker who does not work an open contact about the child does not either
    unrelated = {**variables, "contactId": None}
    refused = hub.gql("mash_social_worker", REJECT, unrelated).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # and neither refusal changed anything
    again = read(hub, child_id)
    assert [r for r in again["sharedAddressResidents"] if r["person"]["id"] == resident]
    assert all(r["decision"] is None for r in again["sharedAddressResidents"])


@pytest.mark.parametrize("reason", ["", " ", "x" * 501])
def test_household_decision_is_refused_when_the_reason_is_missing_or_too_long(
    hub: Hub, reason: str
) -> None:
    child_id = find(hub, population().block_child())
    resident = read(hub, child_id)["sharedAddressResidents"][0]["person"]["id"]
    variables = {
        "childId": child_id,
        "residentId": resident,
        "reason": reason,
        "purpose": "MASH_RESEARCH",
        "contactId": hub.contact(child_id),
    }
    refused = hub.gql("mash_manager", CONFIRM, variables).json()
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
