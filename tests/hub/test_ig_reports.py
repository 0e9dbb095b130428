"""The IG reports through GraphQL, end to end: reads of Ava by MASH staff show up in her
subject-access report, the user's activity and the s62 extract; only IG may ask; and every
report read is itself audited by id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.reports import out_of_hours
from hub.settings import IgSettings

from .conftest import Hub
from .test_app import AVA, RECORD, SEARCH, find_ava, ok

ENTRY = """totalCount pageInfo { endCursor hasNextPage }
  entries { eventId occurredAt relationship actorSubject actorRoles actorAgency actorTeam
            purpose contactId operation outcome policeConsulted breakGlass consentOverride
            subjects { subjectId relationship } fieldsReturned fieldsRedacted { path reason }
            policyDecisions { recordClass decision reason } }"""
SUBJECT_ACCESS = f"""
query SubjectAccess($id: ID!, $since: DateTime, $first: Int! = 500, $after: String) {{
  subjectAccessReport(subjectId: $id, since: $since, first: $first, after: $after) {{ {ENTRY} }}
}}"""
ACTIVITY = f"""
query Activity($actor: String!, $since: DateTime) {{
  accessorActivityReport(actorSubject: $actor, since: $since, first: 500) {{ {ENTRY} }}
}}"""
S62 = f"""
query S62($since: DateTime, $id: ID) {{
  policeS62Extract(since: $since, subjectId: $id, first: 500) {{ {ENTRY} }}
}}"""
ANOMALIES = """
query Anomalies($since: DateTime, $actor: String) {
  auditAnomalies(since: $since, actorSubject: $actor) {
    since until truncated anomalies { kind actorSubject occurredAt eventId subjectIds count usual }
  }
}"""
OWN_EVENTS = """
query OwnEvents($first: Int, $after: String) {
  auditEvents(first: $first, after: $after) {
    pageInfo { endCursor hasNextPage }
    edges { node { operationName outcome purpose report errorCode
                   subjectEntries { subjectId relationship } } }
  }
}"""


def event_named(hub: Hub, name: str) -> dict[str, Any]:
    found, after = [], None
    while True:
        page = ok(hub.gql("ig_officer", OWN_EVENTS, {"first": 500, "after": after}))
        page = page["auditEvents"]
        found += [e["node"] for e in page["edges"] if e["node"]["operationName"] == name]
        if not page["pageInfo"]["hasNextPage"]:
            return found[-1]
        after = page["pageInfo"]["endCursor"]


def reads_of_ava(hub: Hub) -> tuple[str, str]:
    """A search and a read of Ava by a social worker; (child id, since) for the reports."""
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    ok(hub.gql("mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}))
    child_id = find_ava(hub)
    ok(
        hub.gql(
            "mash_social_worker",
            RECORD,
            {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
        )
    )
    return child_id, since


def test_subject_access_report_lists_who_saw_ava_and_its_own_read_is_audited(hub: Hub) -> None:
    child_id, since = reads_of_ava(hub)

    report = ok(hub.gql("ig_officer", SUBJECT_ACCESS, {"id": child_id, "since": since}))
    entries = report["subjectAccessReport"]["entries"]

    seen = [(e["operation"], e["relationship"], e["outcome"]) for e in entries]
    assert (["searchChildren"], "search_result", "ok") in seen
    assert (["child"], "child", "redacted") in seen  # C-coded intelligence text withheld
    read = next(e for e in entries if e["operation"] == ["child"])
    assert read["purpose"] == "MASH_RESEARCH" and read["actorAgency"] == "council"
    assert read["actorRoles"] == ["mash_social_worker"] and read["policeConsulted"]
    assert "child.police.incidents.dashRisk" in read["fieldsReturned"]
    assert report["subjectAccessReport"]["totalCount"] == len(entries)
    own = event_named(hub, "SubjectAccess")
    assert own["purpose"] == "IG_AUDIT" and own["outcome"] == "ok"
    assert own["report"] == {"name": "subject_access", "subject_id": child_id, "since": since}
    assert own["subjectEntries"] == [{"subjectId": child_id, "relationship": "report_subject"}]
    # the next subject-access report shows IG's own look at her record
    again = ok(hub.gql("ig_officer", SUBJECT_ACCESS, {"id": child_id, "since": since}))
    assert any(
        e["purpose"] == "IG_AUDIT" and e["relationship"] == "report_subject"
        for e in again["subjectAccessReport"]["entries"]
    )


def test_subject_access_report_pages_with_a_cursor(hub: Hub) -> None:
    child_id, since = reads_of_ava(hub)
    variables = {"id": child_id, "since": since, "first": 1}

    first = ok(hub.gql("ig_officer", SUBJECT_ACCESS, variables))["subjectAccessReport"]
    after = first["pageInfo"]["endCursor"]
    second = ok(hub.gql("ig_officer", SUBJECT_ACCESS, variables | {"after": after}))

    assert first["pageInfo"]["hasNextPage"] and len(first["entries"]) == 1
    nxt = second["subjectAccessReport"]["entries"]
    assert nxt and nxt[0]["eventId"] != first["entries"][0]["eventId"]


def test_accessor_activity_and_s62_extract_show_the_social_workers_read(hub: Hub) -> None:
    child_id, since = reads_of_ava(hub)

    activity = ok(
        hub.gql("ig_officer", ACTIVITY, {"actor": "demo-mash_social_worker", "since": since})
    )
    extract = ok(hub.gql("ig_officer", S62, {"since": since, "id": child_id}))

    entries = activity["accessorActivityReport"]["entries"]
    assert {e["actorSubject"] for e in entries} == {"demo-mash_social_worker"}
    read = next(e for e in entries if e["operation"] == ["child"])
    assert {"subjectId": child_id, "relationship": "child"} in read["subjects"]
    assert any(s["relationship"] == "household_member" for s in read["subjects"])
    police = extract["policeS62Extract"]["entries"]
    assert police and all(e["policeConsulted"] for e in police)
    assert {"searchChildren"} | {"child"} <= {op for e in police for op in e["operation"]}
    own = event_named(hub, "Activity")
    assert own["report"]["actor_subject"] == "demo-mash_social_worker"


def test_anomalies_flag_this_read_exactly_when_now_is_out_of_office_hours(hub: Hub) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    child_id, _ = reads_of_ava(hub)
    now = datetime.now(UTC)

    report = ok(
        hub.gql("ig_officer", ANOMALIES, {"since": since, "actor": "demo-mash_social_worker"})
    )

    late = [a for a in report["auditAnomalies"]["anomalies"] if a["kind"] == "OUT_OF_HOURS"]
    if out_of_hours(now, IgSettings()) and out_of_hours(now - timedelta(seconds=30), IgSettings()):
        assert any(child_id in a["subjectIds"] for a in late)
    elif not out_of_hours(now - timedelta(seconds=30), IgSettings()) and not out_of_hours(
        now, IgSettings()
    ):
        assert late == []
    assert not report["auditAnomalies"]["truncated"]


def test_only_ig_may_ask_and_a_refused_attempt_is_audited_with_what_it_asked(hub: Hub) -> None:
    child_id = find_ava(hub)
    for role in ("mash_manager", "police_researcher", "partner_system"):
        body = hub.gql(
            role, SUBJECT_ACCESS.replace("SubjectAccess", "Snoop"), {"id": child_id}
        ).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body["data"] is None
        refused = event_named(hub, "Snoop")
        assert refused["outcome"] == "denied" and refused["report"]["subject_id"] == child_id
    listing = hub.gql("mash_manager", "query { auditEvents(first: 1) { totalCount } }").json()
    assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_bad_report_input_gets_a_clear_error_that_echoes_nothing(hub: Hub) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    future = hub.gql("ig_officer", ANOMALIES, {"since": later}).json()
    assert future["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", future
    for variables in (
        {"id": ""},
        {"id": "Ava Thompson"},
        {"id": "00000000-0000-0000-0000-000000000000", "first": 0},
        {"id": "00000000-0000-0000-0000-000000000000", "after": "Thompson"},
    ):
        body = hub.gql("ig_officer", SUBJECT_ACCESS, variables).json()
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert "Thompson" not in json.dumps(body)
