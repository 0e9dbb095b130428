"""What an audit event holds (DOMAIN.md §4): who, why, which subjects (the child and the
household), which sources, the policy decisions per record class, the s62 police marker —
and never a returned value, a name or a raw token."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from adapters.base import Labels
from hub.audit.events import AuditNotes, AuditRecord
from hub.auth.tokens import Actor
from hub.context import Access
from hub.policy.engine import PolicyEngine
from hub.settings import Settings

from .conftest import Hub
from .test_app import AVA, AVA_NHS, RECORD, SEARCH, find_ava, ok

EVENTS = """
query ContentAudit($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) {
    pageInfo { endCursor hasNextPage }
    edges { node { id operationName outcome purpose actorSubject subjects rootFields
      policeConsulted contactStage justification breakGlass consentOverride report
      subjectEntries { subjectId relationship }
      policyDecisions { recordClass agency handlingCode decision reason count
                        hiddenFields { path reason } }
      fieldsRedacted { path reason } fieldsReturned sources } }
  }
}"""


def events_named(hub: Hub, name: str) -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        page = ok(hub.gql("ig_officer", EVENTS, {"first": 500, "after": after}))["auditEvents"]
        found += [e["node"] for e in page["edges"] if e["node"]["operationName"] == name]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def named(query: str, name: str) -> str:
    """The same document under another operation name, to find its event again."""
    return query.replace("query Record(", f"query {name}(").replace("query Find(", f"query {name}(")


def test_a_child_read_records_subjects_decisions_and_the_police_marker(hub: Hub) -> None:
    child_id = find_ava(hub)
    token = hub.token("mash_social_worker")
    ok(
        hub.gql(
            "mash_social_worker",
            named(RECORD, "ContentRead"),
            {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
        )
    )

    event = events_named(hub, "ContentRead")[-1]

    assert event["rootFields"] == ["child"] and event["policeConsulted"] is True
    entries = {(s["subjectId"], s["relationship"]) for s in event["subjectEntries"]}
    assert (child_id, "child") in entries
    household = [s for s, r in entries if r == "household_member"]
    assert len(household) >= 2 and child_id not in household, "Jade and Noah are entered"
    assert set(event["subjects"]) == {s for s, _ in entries}
    decisions = event["policyDecisions"]
    assert {
        "recordClass": "read_child",
        "agency": None,
        "handlingCode": None,
        "decision": "RELEASED",
        "reason": None,
        "count": 1,
        "hiddenFields": [],
    } in decisions
    coded_c = [
        d
        for d in decisions
        if d["recordClass"] == "police.intelligence" and d["handlingCode"] == "C"
    ]
    assert coded_c and coded_c[0]["decision"] == "RELEASED"
    assert {"path": "text", "reason": "ORIGINATOR_RESTRICTED"} in coded_c[0]["hiddenFields"]
    assert all(d["count"] >= 1 for d in decisions)
    # Identifiers, paths, codes — never values, names or the token.
    text = json.dumps(event)
    for value in ("Thompson", "Thomson", "Jade", "Noah", AVA_NHS, "2016-03-14", token):
        assert value not in text
    assert token.split(".")[2] not in text


def test_withheld_classes_are_recorded_with_the_reason(hub: Hub) -> None:
    child_id = find_ava(hub)
    ok(
        hub.gql(
            "early_help_worker",
            named(RECORD, "ContentWithheld"),
            {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
        )
    )

    event = events_named(hub, "ContentWithheld")[-1]

    withheld = {
        (d["recordClass"], d["reason"])
        for d in event["policyDecisions"]
        if d["decision"] == "WITHHELD"
    }
    assert ("police.intelligence", "NOT_PERMITTED") in withheld
    assert event["outcome"] == "redacted" and event["policeConsulted"] is True


def test_a_search_is_marked_police_consulted_and_an_operation_without_police_is_not(
    hub: Hub,
) -> None:
    ok(
        hub.gql(
            "mash_social_worker",
            named(SEARCH, "ContentSearch"),
            {"criteria": AVA, "purpose": "MASH_RESEARCH"},
        )
    )
    ok(hub.gql("mash_social_worker", "query ContentNothing { __typename }"))

    search = events_named(hub, "ContentSearch")[-1]
    nothing = events_named(hub, "ContentNothing")[-1]

    assert search["rootFields"] == ["searchChildren"]
    assert search["sources"]["POLICE"] == "OK" and search["policeConsulted"] is True
    assert {s["relationship"] for s in search["subjectEntries"]} == {"search_result"}
    assert nothing["policeConsulted"] is False and nothing["policyDecisions"] == []
    assert nothing["rootFields"] == []


def test_a_denied_read_records_the_refusing_decision(hub: Hub) -> None:
    child_id = find_ava(hub)
    hub.gql(
        "ig_officer", named(RECORD, "ContentDenied"), {"id": child_id, "purpose": "MASH_RESEARCH"}
    )

    event = events_named(hub, "ContentDenied")[-1]

    assert event["outcome"] == "denied"
    assert [(d["recordClass"], d["decision"], d["reason"]) for d in event["policyDecisions"]] == [
        ("read_child", "WITHHELD", "NOT_PERMITTED")
    ]
    assert event["policeConsulted"] is False


def test_an_unknown_root_field_a_client_typed_is_not_recorded(hub: Hub) -> None:
    response = hub.gql("mash_social_worker", "query ContentUnknown { AvaThompson child }")
    assert response.status_code == 200 and response.json()["errors"]

    event = events_named(hub, "ContentUnknown")[-1]

    assert event["outcome"] == "invalid"
    assert event["rootFields"] == ["child"]
    assert "AvaThompson" not in json.dumps(event)


def test_the_record_aggregates_decisions_per_class() -> None:
    notes = AuditNotes()
    notes.decision("police.incident", "police", True)
    notes.decision("police.incident", "police", True)
    notes.decision("health.encounter", "health", True, None, {"reason": "NOT_PERMITTED"})
    record = notes.build()

    assert [(d["class"], d["count"], d["hidden_fields"]) for d in record.policy_decisions()] == [
        ("health.encounter", 1, {"reason": "NOT_PERMITTED"}),
        ("police.incident", 2, {}),
    ]
    assert not record.police_consulted  # only the policy door marks rule 14's s62 log


def _door(record: AuditNotes) -> Access:
    actor = Actor("sw-1", "dev", frozenset({"mash_social_worker"}), "council", "mash-a", None)
    return Access(PolicyEngine(Settings().policy_dir), actor, "MASH_RESEARCH", record)


def test_the_policy_door_marks_the_s62_log_when_a_police_class_is_decided_on() -> None:
    notes = AuditNotes()

    _door(notes).decide("child.police.incidents", "police.incident", Labels(agency="police"))

    record = notes.build()
    assert record.police_consulted
    noted = [d for d in record.policy_decisions() if d["class"] == "s62_logged"]
    assert [(d["agency"], d["decision"]) for d in noted] == [("police", "RELEASED")]


def test_the_policy_door_marks_the_s62_log_for_a_police_source_that_answered_only() -> None:
    timed_out, not_known, health = (AuditNotes() for _ in range(3))

    _door(timed_out).consulted({"POLICE": "TIMED_OUT"})
    _door(not_known).consulted({"POLICE": "NOT_KNOWN"})
    _door(health).consulted({"HEALTH": "OK"})

    assert not timed_out.build().police_consulted
    assert not_known.build().police_consulted
    assert not health.build().police_consulted


def test_an_event_keeps_the_digest_of_a_justification_never_its_text() -> None:
    from hub.audit.events import event_values

    why = "mother's partner Liam seen at the school gate"
    record = AuditRecord(actor=None, purpose="BREAK_GLASS", justification=why)

    values = event_values(record, "e-1")

    assert why not in str(values) and "Liam" not in str(values)
    assert values["justification"] == "sha256:" + hashlib.sha256(why.encode()).hexdigest()
    assert event_values(AuditRecord(actor=None), "e-2")["justification"] is None


def test_query_hash_is_blind_to_the_values_typed_inline() -> None:
    """A hash over inline NHS numbers could be reversed by trying every number: the audit's
    query hash is of the document's shape, its literals blanked."""
    from graphql import parse

    from hub.audit.events import query_hash

    def h(text: str) -> str:
        return query_hash(parse(text), text)

    ava = '{ searchChildren(criteria: {nhsNumber: "9434765919"}, purpose: MASH_SCREENING) { id } }'
    noah = '{ searchChildren(criteria: {nhsNumber: "9434765927"}, purpose: MASH_SCREENING) { id } }'
    other = '{ searchChildren(criteria: {nhsNumber: "9434765927"}, purpose: MASH_RESEARCH) { id } }'
    assert h(ava) == h(noah)
    assert h(ava) != h(other)  # the shape still counts: purposes are the schema's words
    # a document that does not parse is hashed with its strings and numbers blanked too
    assert query_hash(None, '{ child(id: "Ava Thompson 2016"') == query_hash(
        None, '{ child(id: "Noah Thompson 2019"'
    )
