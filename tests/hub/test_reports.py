"""IG reports over the audit log, on SQLite and PostgreSQL, from events written at known
times (the audit writer stamps `now`; these tests need last Saturday and 7 a.m.)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub import reports
from hub.reports import Filters, PageRequest
from hub.settings import IgSettings
from hub.store import AuditEvent, AuditSubject, Store, migrate_async

AVA, JADE, OTHER = (str(uuid.uuid4()) for _ in range(3))
# A Wednesday in winter (London = UTC) and one in summer (London = UTC+1).
WINTER = datetime(2026, 1, 14, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    await migrate_async(url)
    store = Store(url)
    yield store
    await store.aclose()


async def add(
    store: Store,
    at: datetime,
    actor: str = "worker-1",
    subjects: dict[str, str] | None = None,
    purpose: str = "MASH_RESEARCH",
    police: bool = False,
    **values: Any,
) -> str:
    event_id = str(uuid.uuid4())
    subjects = {AVA: "child"} if subjects is None else subjects
    async with store.writing() as session, session.begin():
        event = AuditEvent(
            event_id=event_id,
            occurred_at=at,
            actor_subject=actor,
            actor_roles=["mash_social_worker"],
            actor_agency=values.pop("agency", "council"),
            actor_team=values.pop("team", "mash-east"),
            purpose=purpose,
            outcome=values.pop("outcome", "ok"),
            subjects=sorted(subjects),
            sources={"POLICE": "OK"} if police else {},
            fields_returned=["child.police.incidents.dashRisk", "child.health.plans.category"]
            if police
            else [],
            fields_redacted=[{"path": "child.police.intelligence", "reason": "NOT_PERMITTED"}]
            if police
            else [],
            policy_decisions=[],
            root_fields=["child"],
            police_consulted=police,
            **values,
        )
        session.add(event)
        await session.flush()
        for subject, relationship in subjects.items():
            session.add(
                AuditSubject(event_seq=event.seq, subject_id=subject, relationship=relationship)
            )
    return event_id


async def test_subject_access_lists_each_event_about_the_person_with_how_they_figured(
    store: Store,
) -> None:
    read = await add(
        store, WINTER + timedelta(hours=10), subjects={AVA: "child", JADE: "household_member"}
    )
    about_jade = await add(
        store, WINTER + timedelta(hours=11), actor="worker-2", subjects={JADE: "child"}
    )
    await add(store, WINTER + timedelta(hours=12), subjects={OTHER: "child"})

    page = await reports.subject_access(store, Filters(subject_id=JADE), PageRequest())

    assert [r.event.event_id for r in page.rows] == [read, about_jade]
    assert [r.relationship for r in page.rows] == ["household_member", "child"]
    assert page.total_count == 2 and not page.has_next_page
    assert {s.subject_id for s in page.rows[0].subjects} == {AVA, JADE}
    assert page.rows[1].event.actor_subject == "worker-2"


async def test_subject_access_pages_and_keeps_to_the_date_window(store: Store) -> None:
    ids = [await add(store, WINTER + timedelta(days=d, hours=10)) for d in range(5)]
    window = Filters(
        subject_id=AVA, since=WINTER + timedelta(days=1), until=WINTER + timedelta(days=4)
    )

    first = await reports.subject_access(store, window, PageRequest(first=2))
    rest = await reports.subject_access(store, window, PageRequest(first=2, after=first.end_cursor))

    assert first.total_count == 3 and first.has_next_page and not rest.has_next_page
    assert [r.event.event_id for r in (*first.rows, *rest.rows)] == ids[1:4]


async def test_accessor_activity_lists_only_that_users_events_with_their_subjects(
    store: Store,
) -> None:
    mine = await add(
        store,
        WINTER + timedelta(hours=9),
        actor="worker-1",
        subjects={AVA: "child", JADE: "household_member"},
    )
    await add(store, WINTER + timedelta(hours=9), actor="worker-2")

    page = await reports.accessor_activity(store, Filters(actor_subject="worker-1"), PageRequest())

    assert [r.event.event_id for r in page.rows] == [mine]
    assert {(s.subject_id, s.relationship) for s in page.rows[0].subjects} == {
        (AVA, "child"),
        (JADE, "household_member"),
    }


async def test_police_extract_lists_police_consultations_only_with_police_paths(
    store: Store,
) -> None:
    consulted = await add(store, WINTER + timedelta(hours=9), police=True, justification="DA risk")
    await add(store, WINTER + timedelta(hours=10), police=False)

    page = await reports.police_extract(store, Filters(), PageRequest())

    assert [r.event.event_id for r in page.rows] == [consulted]
    row = page.rows[0]
    assert row.event.justification == "DA risk"
    assert row.police_fields_returned == ["child.police.incidents.dashRisk"]
    assert row.police_fields_redacted == [
        {"path": "child.police.intelligence", "reason": "NOT_PERMITTED"}
    ]


async def test_out_of_hours_is_judged_in_local_office_hours(store: Store) -> None:
    rules = IgSettings(office_start=time(8, 0), office_end=time(18, 0))
    # 07:30 UTC: before office hours in winter, 08:30 local in summer.
    winter_early = await add(store, WINTER + timedelta(hours=7, minutes=30))
    await add(store, SUMMER + timedelta(hours=7, minutes=30))
    saturday = await add(store, WINTER + timedelta(days=3, hours=11))
    await add(store, WINTER + timedelta(hours=12))
    # IG's own reads and operations with no data subject are not accesses.
    await add(store, WINTER + timedelta(hours=22), purpose="IG_AUDIT")
    await add(store, WINTER + timedelta(hours=22), subjects={})

    found = [
        a
        for start in (WINTER, SUMMER)
        for a in (
            await reports.anomalies(
                store, Filters(since=start, until=start + timedelta(days=7)), rules, start
            )
        ).anomalies
    ]

    assert [(a.kind, a.event_id) for a in found] == [
        ("OUT_OF_HOURS", winter_early),
        ("OUT_OF_HOURS", saturday),
    ]
    assert found[0].subject_ids == (AVA,) and found[0].actor_agency == "council"


async def test_volume_far_above_a_users_usual_is_flagged_and_a_steady_user_is_not(
    store: Store,
) -> None:
    rules = IgSettings(volume_factor=3.0, volume_floor=5, baseline_days=4)
    day = WINTER + timedelta(days=7)  # a Wednesday, after four baseline days
    for d in range(3, 7):  # both users read 4 records a day, at noon, for four days
        for actor in ("steady", "spiker"):
            for _ in range(4):
                await add(store, WINTER + timedelta(days=d, hours=12), actor=actor)
    for _ in range(5):
        await add(store, day + timedelta(hours=12), actor="steady")
    for _ in range(20):
        await add(store, day + timedelta(hours=13), actor="spiker")
    for _ in range(5):  # a new user's first day: above the floor, no usual at all
        await add(store, day + timedelta(hours=14), actor="newcomer")

    report = await reports.anomalies(
        store, Filters(since=day, until=day + timedelta(days=1)), rules, day
    )

    volume = {a.actor_subject: a for a in report.anomalies if a.kind == "VOLUME"}
    assert set(volume) == {"spiker", "newcomer"}
    assert volume["spiker"].count == 20 and volume["spiker"].usual == 4.0
    assert volume["newcomer"].usual == 0.0
    assert not [a for a in report.anomalies if a.kind == "OUT_OF_HOURS"]


def test_filters_refuse_bad_input_without_echoing_it() -> None:
    for bad in (
        {"subject_id": "Ava Thompson"},
        {"actor_subject": "x" * 201},
        {"actor_subject": "line\nbreak"},
        {"since": SUMMER, "until": WINTER},
    ):
        with pytest.raises(ValueError) as caught:
            Filters(**bad)
        assert "Ava" not in str(caught.value) and "line" not in str(caught.value)
    with pytest.raises(ValueError):
        PageRequest(first=0)
    with pytest.raises(ValueError):
        PageRequest(after="not-a-cursor")


def test_a_reports_own_event_names_what_it_asked_about_by_id() -> None:
    from hub.audit import AuditRecord

    record = AuditRecord(actor=None)
    Filters(subject_id=AVA.upper(), since=WINTER).note(record, "subject_access")

    assert record.report == {
        "name": "subject_access",
        "subject_id": AVA,
        "since": WINTER.isoformat(),
    }
    assert record.subjects == {AVA: "report_subject"}
