"""The fifth source, end to end: the demo education system behind the real hub, read as a
MASH practitioner would (hub store on SQLite and PostgreSQL).

Given the demo sources, when a social worker researches Ava with the family's consent, then
her school, her attendance (persistently absent) and her EHCP show; at screening the
education section is a typed redaction; and a location-protected child's school never shows,
to anyone (DOMAIN.md §3 rules 3, 5, 11)."""

from __future__ import annotations

import sqlite3
from typing import Any

from .conftest import Hub
from .test_app import find_ava, ok

EDUCATION = """
query Education($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    sources { source status }
    links { source rule }
    education {
      __typename
      ... on Redaction { reason agency knownToAgency }
      ... on EducationSection {
        known
        enrolments { __typename
          ... on EducationEnrolment { about school schoolUrn start
                                      redactedFields { field reason } }
          ... on Redaction { reason } }
        attendance { __typename
          ... on EducationAttendance { about academicYear attendancePercent persistentAbsence } }
        exclusions { __typename ... on EducationExclusion { exclusionType days } }
        specialEducationalNeeds { __typename
          ... on EducationSen { about level ehcp primaryNeed }
          ... on Redaction { reason } }
        missingEducation { __typename ... on EducationMissingEducation { reportedOn } }
      }
    }
  }
}"""

SEARCH = """
query Find($criteria: PersonSearch!) {
  searchChildren(criteria: $criteria, purpose: MASH_RESEARCH) { id sources }
}"""


def _read(hub: Hub, role: str, child_id: str, purpose: str, **facts: Any) -> dict[str, Any]:
    variables = {"id": child_id, "purpose": purpose, "contactId": hub.contact(child_id, **facts)}
    return ok(hub.gql(role, EDUCATION, variables))["child"]  # type: ignore[no-any-return]


def test_research_with_consent_shows_avas_school_attendance_and_ehcp(hub: Hub) -> None:
    child_id = find_ava(hub)
    record = _read(hub, "mash_social_worker", child_id, "MASH_RESEARCH")
    assert {s["source"]: s["status"] for s in record["sources"]}["EDUCATION"] == "OK"
    # The school holds no NHS number: her record there is linked by name, date and address.
    assert any(link["source"] == "EDUCATION" for link in record["links"])
    education = record["education"]
    assert education["__typename"] == "EducationSection" and education["known"]
    [school] = [e for e in education["enrolments"] if e["about"] == "CHILD"]
    assert school["school"] == "Larchfield Primary School"
    assert school["schoolUrn"] == "117345" and school["redactedFields"] == []
    [attendance] = [a for a in education["attendance"] if a["about"] == "CHILD"]
    assert attendance["persistentAbsence"] is True and attendance["attendancePercent"] < 90
    assert {"about": "CHILD", "level": "EHCP", "ehcp": True, "primaryNeed": "SEMH"} in [
        {k: v for k, v in s.items() if k != "__typename"}
        for s in education["specialEducationalNeeds"]
    ]


def test_screening_redacts_the_education_section_with_a_typed_reason(hub: Hub) -> None:
    child_id = find_ava(hub)
    record = _read(
        hub, "mash_social_worker", child_id, "MASH_SCREENING", stage="SCREENING", consent=None
    )
    assert record["education"] == {
        "__typename": "Redaction",
        "reason": "STAGE_RESTRICTED",
        "agency": "education",
        "knownToAgency": True,
    }
    assert {s["source"]: s["status"] for s in record["sources"]}["EDUCATION"] == "REDACTED"


def test_refused_consent_withholds_education_detail(hub: Hub) -> None:
    child_id = find_ava(hub)
    record = _read(hub, "mash_social_worker", child_id, "MASH_RESEARCH", consent="REFUSED")
    assert record["education"]["__typename"] == "Redaction"
    assert record["education"]["reason"] == "CONSENT_REQUIRED"


def test_a_location_protected_childs_school_never_shows_to_any_role(hub: Hub) -> None:
    store = hub.data_dir / "sources" / "education.sqlite3"
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT given_name, family_name, date_of_birth FROM pupils "
            "WHERE location_restricted = 1"
        ).fetchall()
    assert rows, "the demo population has a location-restricted pupil"
    given, family, born = rows[0]
    criteria = {"givenName": given, "familyName": family, "dateOfBirth": born}
    matches = ok(hub.gql("mash_social_worker", SEARCH, {"criteria": criteria}))
    [child_id] = [m["id"] for m in matches["searchChildren"] if "EDUCATION" in m["sources"]]
    shown = 0
    for role, purpose, facts in (
        ("mash_social_worker", "MASH_RESEARCH", {}),
        ("mash_manager", "S47_STRATEGY", {"decision": "S47"}),
        ("education_practitioner", "MASH_RESEARCH", {}),
    ):
        record = _read(hub, role, child_id, purpose, **facts)
        enrolments = record["education"]["enrolments"]
        assert enrolments, role
        for e in enrolments:
            if e["__typename"] != "EducationEnrolment":
                continue
            shown += 1
            assert e["school"] is None and e["schoolUrn"] is None, role
            assert {"field": "school", "reason": "LOCATION_PROTECTED"} in e["redactedFields"]
            assert {"field": "schoolUrn", "reason": "LOCATION_PROTECTED"} in e["redactedFields"]
    assert shown >= 3, "the enrolment itself is shared; only where the school is stays hidden"
