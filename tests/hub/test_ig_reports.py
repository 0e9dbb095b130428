"""The IG reports through GraphQL, end to end: reads of Ava by MASH staff show up in her
subject-access report, the user's activity and the s62 extract; only IG may ask; and every
report read is itself audited by id."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.ig.reports import out_of_hours
from hub.settings import IgSettings

from .conftest import Hub
from .test_app import AVA, RECORD, SEARCH, find_ava, ok
from .test_contacts import ADVANCE, CHILD, CONSENT, DECIDE, GLASS, OVERRIDE, create_for, gql

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
    child_id, since, _ = read_ava(hub)
    return child_id, since


def read_ava(hub: Hub) -> tuple[str, str, str]:
    """As reads_of_ava, and the read's audit event id (other tests' reads may fall in the
    same window)."""
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    ok(hub.gql("mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}))
    child_id = find_ava(hub)
    response = hub.gql(
        "mash_social_worker",
        RECORD,
        {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
    )
    ok(response)
    return child_id, since, response.headers["x-audit-event-id"]


def test_subject_access_report_lists_who_saw_ava_and_its_own_read_is_audited(hub: Hub) -> None:
    child_id, since, read_id = read_ava(hub)

    report = ok(hub.gql("ig_officer", SUBJECT_ACCESS, {"id": child_id, "since": since}))
    entries = report["subjectAccessReport"]["entries"]

    seen = [(e["operation"], e["relationship"], e["outcome"]) for e in entries]
    assert (["searchChildren"], "search_result", "ok") in seen
    assert (["child"], "child", "redacted") in seen  # C-coded intelligence text withheld
    read = next(e for e in entries if e["eventId"] == read_id)
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
    child_id, since, read_id = read_ava(hub)

    activity = ok(
        hub.gql("ig_officer", ACTIVITY, {"actor": "demo-mash_social_worker", "since": since})
    )
    extract = ok(hub.gql("ig_officer", S62, {"since": since, "id": child_id}))

    entries = activity["accessorActivityReport"]["entries"]
    assert {e["actorSubject"] for e in entries} == {"demo-mash_social_worker"}
    read = next(e for e in entries if e["eventId"] == read_id)
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


# --- the contact workflow's registers ----------------------------------------------------

PAGE = "totalCount pageInfo { endCursor hasNextPage }"
GLASS_QUEUE = f"""
query GlassQueue($actor: String, $unreviewed: Boolean! = false) {{
  breakGlassReviewReport(actorSubject: $actor, unreviewedOnly: $unreviewed) {{ {PAGE}
    entries {{ grantId actorSubject actorAgency actorTeam subjectId reasonCode justification
              grantedAt expiresAt reads alertId reviewOutcome reviewedBy reviewedAt }} }}
}}"""
OVERRIDES = f"""
query Overrides($since: DateTime, $id: ID, $actor: String) {{
  consentOverrideRegister(since: $since, subjectId: $id, actorSubject: $actor) {{ {PAGE}
    entries {{ overrideId contactId subjectIds authorisedBy authoriserRole reasonCode
              authorisedAt }} }}
}}"""
NOT_SHARED = f"""
query NotShared($actor: String, $id: ID) {{
  notSharedRegister(actorSubject: $actor, subjectId: $id) {{ {PAGE}
    entries {{ withheldId source itemId agency contactId subjectIds withheldBy reasonCode
              withheldAt }} }}
}}"""
WITHHOLD = """mutation Withhold($item: String!, $contact: ID) { withholdItem(source: POLICE,
  itemId: $item, reasonCode: "PREJUDICE_INVESTIGATION", reason: "live operation",
  purpose: MASH_RESEARCH, contactId: $contact) { id contactId } }"""
TIMELINESS = f"""
query Timeliness($since: DateTime) {{
  contactTimelinessReport(since: $since) {{ {PAGE}
    summary {{ contacts decided judged withinTarget percentWithinTarget medianHoursToDecision }}
    entries {{ contactId subjectIds receivedAt rag targetHours dueAt decidedAt decision stage
              hours withinTarget }} }}
}}"""


def test_break_glass_queue_shows_the_grant_its_reads_and_then_igs_review(hub: Hub) -> None:
    ava = find_ava(hub)
    desk = {"team": "police-night-desk", "sub": f"pc-{uuid.uuid4().hex[:8]}"}
    why = "child reported missing at 2am"
    variables = {"child": ava, "code": "OUT_OF_HOURS_EMERGENCY", "why": why}
    granted = ok(gql(hub, "police_researcher", GLASS, variables, **desk))["breakGlass"]
    for _ in range(2):
        ok(gql(hub, "police_researcher", CHILD, {"id": ava, "purpose": "BREAK_GLASS"}, **desk))

    asked = {"actor": desk["sub"], "unreviewed": True}
    queue = ok(hub.gql("ig_officer", GLASS_QUEUE, asked))["breakGlassReviewReport"]

    (entry,) = queue["entries"]
    assert (entry["grantId"], entry["subjectId"], entry["reads"]) == (granted["id"], ava, 2)
    assert (entry["actorAgency"], entry["actorTeam"]) == ("police", "police-night-desk")
    assert (entry["justification"], entry["reviewOutcome"]) == (why, None)
    assert entry["alertId"] == granted["alertId"]
    # the report's own event names what it asked, never the justification it showed
    own = event_named(hub, "GlassQueue")
    assert own["report"] == {
        "name": "break_glass_review",
        "actor_subject": desk["sub"],
        "unreviewed_only": True,
    }
    assert why not in json.dumps(own)
    review = """mutation R($id: ID!) { reviewIgAlert(id: $id, outcome: "JUSTIFIED") { id } }"""
    ok(hub.gql("ig_officer", review, {"id": entry["alertId"]}))
    after = ok(hub.gql("ig_officer", GLASS_QUEUE, asked))["breakGlassReviewReport"]
    everything = ok(hub.gql("ig_officer", GLASS_QUEUE, {"actor": desk["sub"]}))
    (reviewed,) = everything["breakGlassReviewReport"]["entries"]
    assert after["entries"] == [] and after["totalCount"] == 0
    assert (reviewed["reviewOutcome"], reviewed["reviewedBy"]) == ("JUSTIFIED", "demo-ig_officer")
    refused = hub.gql("police_researcher", GLASS_QUEUE, {"actor": desk["sub"]}).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN" and refused["data"] is None


def test_override_and_timeliness_reports_follow_a_contact_to_its_decision(hub: Hub) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    ava = find_ava(hub)
    cid = create_for(hub, ava)["id"]
    stage = {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"}
    ok(gql(hub, "mash_social_worker", ADVANCE, stage))
    ok(gql(hub, "mash_social_worker", CONSENT, {"id": cid, "state": "REFUSED", "by": "mother"}))
    why = {"id": cid, "code": "RISK_OF_SIGNIFICANT_HARM", "why": "mother's partner is violent"}
    ok(gql(hub, "mash_manager", OVERRIDE, why))
    ok(gql(hub, "mash_social_worker", ADVANCE, stage | {"stage": "DECISION"}))
    ok(gql(hub, "mash_manager", DECIDE, {"id": cid, "decision": "S47", "told": False}))

    overrides = ok(
        hub.gql("ig_officer", OVERRIDES, {"since": since, "id": ava, "actor": "demo-mash_manager"})
    )["consentOverrideRegister"]
    timeliness = ok(hub.gql("ig_officer", TIMELINESS, {"since": since}))
    timeliness = timeliness["contactTimelinessReport"]

    (override,) = overrides["entries"]
    assert (override["contactId"], override["subjectIds"], override["reasonCode"]) == (
        cid,
        [ava],
        "RISK_OF_SIGNIFICANT_HARM",
    )
    assert override["authoriserRole"] == "mash_manager"
    (contact,) = [e for e in timeliness["entries"] if e["contactId"] == cid]
    assert (contact["rag"], contact["targetHours"], contact["decision"]) == ("RED", 2.0, "S47")
    assert contact["withinTarget"] is True and contact["hours"] < 1
    assert contact["stage"] == "DECISION" and contact["decidedAt"]
    summary = timeliness["summary"]
    assert summary["contacts"] == timeliness["totalCount"] >= 1
    assert summary["withinTarget"] >= 1 and summary["medianHoursToDecision"] is not None
    assert "violent" not in json.dumps(event_named(hub, "Overrides"))


def test_not_shared_register_lists_an_agencys_decision_without_its_reason(hub: Hub) -> None:
    officer = {"sub": f"pc-{uuid.uuid4().hex[:8]}"}
    item = f"incident-{uuid.uuid4().hex[:8]}"
    withhold = """mutation W($item: String!) { withholdItem(source: POLICE, itemId: $item,
      reasonCode: "PREJUDICE_INVESTIGATION", reason: "live operation", purpose: MASH_RESEARCH) {
      id } }"""
    row = ok(gql(hub, "police_researcher", withhold, {"item": item}, **officer))["withholdItem"]

    register = ok(hub.gql("ig_officer", NOT_SHARED, {"actor": officer["sub"]}))

    (entry,) = register["notSharedRegister"]["entries"]
    assert (entry["withheldId"], entry["itemId"], entry["agency"], entry["source"]) == (
        row["id"],
        item,
        "police",
        "POLICE",
    )
    assert (entry["withheldBy"], entry["reasonCode"]) == (officer["sub"], "PREJUDICE_INVESTIGATION")
    assert (entry["contactId"], entry["subjectIds"]) == (None, [])
    assert "live operation" not in json.dumps(register)


def find_noah(hub: Hub) -> str:
    noah = {"givenName": "Noah", "familyName": "Thompson", "dateOfBirth": "2019-05-07"}
    asked = {"criteria": noah, "purpose": "MASH_RESEARCH"}
    found = ok(hub.gql("mash_social_worker", SEARCH, asked))
    ids = {m["id"] for m in found["searchChildren"] if m["givenName"] == "Noah"}
    assert len(ids) == 1, found
    return ids.pop()


def contact_in_research(hub: Hub, child_id: str) -> str:
    """A contact about the child in RESEARCH: the police researcher works it (police task)."""
    cid = str(create_for(hub, child_id)["id"])
    stage = {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"}
    ok(gql(hub, "mash_social_worker", ADVANCE, stage))
    return cid


def test_not_shared_register_names_the_contact_and_children_and_finds_them_by_child(
    hub: Hub,
) -> None:
    # given one officer's decisions: for a contact about Ava, about Noah, and for no contact
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    officer = {"sub": f"pc-{uuid.uuid4().hex[:8]}", "team": "police-desk"}
    ava, noah = find_ava(hub), find_noah(hub)
    about_ava, about_noah = contact_in_research(hub, ava), contact_in_research(hub, noah)
    made = {}
    for name, contact in (("ava", about_ava), ("noah", about_noah), ("none", None)):
        item = f"incident-{uuid.uuid4().hex[:8]}"
        made[name] = ok(
            gql(hub, "police_researcher", WITHHOLD, {"item": item, "contact": contact}, **officer)
        )["withholdItem"]
    assert [made[n]["contactId"] for n in ("ava", "noah", "none")] == [about_ava, about_noah, None]

    # when IG reads the register: everything by the officer, then about Ava, then about Noah
    asked = {"actor": officer["sub"]}
    everything = ok(hub.gql("ig_officer", NOT_SHARED, asked))["notSharedRegister"]
    for_ava = ok(hub.gql("ig_officer", NOT_SHARED, asked | {"id": ava}))["notSharedRegister"]
    own = event_named(hub, "NotShared")
    for_noah = ok(hub.gql("ig_officer", NOT_SHARED, asked | {"id": noah}))["notSharedRegister"]

    # then each row names its contact and that contact's children, and the filter picks by child
    rows = {e["withheldId"]: (e["contactId"], e["subjectIds"]) for e in everything["entries"]}
    assert rows == {
        made["ava"]["id"]: (about_ava, [ava]),
        made["noah"]["id"]: (about_noah, [noah]),
        made["none"]["id"]: (None, []),
    }
    assert [e["withheldId"] for e in for_ava["entries"]] == [made["ava"]["id"]]
    assert for_ava["totalCount"] == 1
    assert [e["withheldId"] for e in for_noah["entries"]] == [made["noah"]["id"]]
    # the register's own audit event names the child asked about, by id
    asked_about = {"name": "not_shared", "subject_id": ava, "actor_subject": officer["sub"]}
    assert own["report"] == asked_about
    assert own["subjectEntries"] == [{"subjectId": ava, "relationship": "report_subject"}]
    # and the decision is in Ava's subject-access report, as about her, without its reason
    access = ok(hub.gql("ig_officer", SUBJECT_ACCESS, {"id": ava, "since": since}))
    decisions = [
        e
        for e in access["subjectAccessReport"]["entries"]
        if e["operation"] == ["withholdItem"] and e["actorSubject"] == officer["sub"]
    ]
    assert [(e["contactId"], e["relationship"]) for e in decisions] == [(about_ava, "child")]
    assert decisions[0]["subjects"] == [{"subjectId": ava, "relationship": "child"}]
    assert "live operation" not in json.dumps(access)
