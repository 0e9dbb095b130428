"""IG reports over the audit log, on SQLite and PostgreSQL, from events written at known
times (the audit writer stamps `now`; these tests need last Saturday and 7 a.m.)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.audit.models import AuditEvent, AuditSubject
from hub.contacts.models import ConsentOverride, Contact, ContactSubject, StageTransition
from hub.contacts.workflow import ContactSettings
from hub.ig import reports
from hub.ig.reports import Env, Filters, PageRequest
from hub.reading.models import BreakGlassGrant, IgAlert, Notification, WithheldItem
from hub.reading.oversight import FLAG_DECISION
from hub.settings import IgSettings
from hub.store.engine import Store, migrate_async

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
            fields_returned=values.pop(
                "fields_returned",
                ["child.police.incidents.dashRisk", "child.health.plans.category"]
                if police
                else [],
            ),
            fields_redacted=values.pop(
                "fields_redacted",
                [{"path": "child.police.intelligence", "reason": "NOT_PERMITTED"}]
                if police
                else [],
            ),
            policy_decisions=values.pop("policy_decisions", []),
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
    from hub.audit.events import AuditNotes

    notes = AuditNotes()
    Filters(subject_id=AVA.upper(), since=WINTER).note(notes, "subject_access")
    record = notes.build()

    assert record.report == {
        "name": "subject_access",
        "subject_id": AVA,
        "since": WINTER.isoformat(),
    }
    assert record.subjects == {AVA: "report_subject"}


# --- the contact workflow's registers and the flagged-child anomaly -----------------------

ENV = Env(WINTER + timedelta(days=30), ContactSettings())


async def put(store: Store, *rows: Any) -> None:
    async with store.writing() as session, session.begin():
        for row in rows:  # one at a time: rows may depend on earlier ones (foreign keys)
            session.add(row)
            await session.flush()


def contact(
    received: datetime,
    children: tuple[str, ...] = (AVA,),
    rag: str = "RED",
    due_hours: float = 2,
    decided_after: float | None = None,
    stage: str = "SCREENING",
) -> Contact:
    decided = received + timedelta(hours=decided_after) if decided_after is not None else None
    row = Contact(
        id=str(uuid.uuid4()),
        received_at=received,
        concern="Ava said her mother's partner hit her",
        child_details=[],
        referrer_type="SCHOOL",
        referrer_name="Head teacher",
        stage=stage,
        rag=rag,
        due_at=received + timedelta(hours=due_hours),
        assigned_staff=[],
        assigned_teams=[],
        created_by="worker-1",
        decision="S47" if decided else None,
        decided_at=decided,
        decided_by="manager-1" if decided else None,
        updated_at=received,
    )
    row.subjects = [ContactSubject(subject_id=c) for c in children]
    return row


def grant(actor: str, child: str, at: datetime, why: str = "child missing at 2am") -> Any:
    g = BreakGlassGrant(
        id=str(uuid.uuid4()),
        actor_subject=actor,
        actor_issuer="https://police.example",
        actor_agency="police",
        actor_team="night-desk",
        subject_id=child,
        reason_code="MISSING_CHILD",
        justification=why,
        granted_at=at,
        expires_at=at + timedelta(hours=1),
    )
    alert = IgAlert(
        id=str(uuid.uuid4()),
        kind="BREAK_GLASS",
        grant_id=g.id,
        subject_id=child,
        actor_subject=actor,
        actor_agency="police",
        reason_code="MISSING_CHILD",
        raised_at=at,
    )
    return g, alert


async def test_break_glass_queue_counts_the_reads_under_each_grant_and_shows_igs_review(
    store: Store,
) -> None:
    at = WINTER + timedelta(hours=2)
    reviewed, reviewed_alert = grant("pc-1", AVA, at)
    open_, open_alert = grant("pc-2", JADE, at + timedelta(hours=1), why="refuge check")
    reviewed_alert.review_outcome, reviewed_alert.reviewed_by = "JUSTIFIED", "ig-1"
    reviewed_alert.reviewed_at = at + timedelta(days=1)
    await put(store, reviewed, reviewed_alert, open_, open_alert)
    glass: dict[str, Any] = {"purpose": "BREAK_GLASS", "police": True}
    # the grant's own operation names it but is not a read under it
    await add(store, at, actor="pc-1", break_glass={"grant_id": reviewed.id}, **glass)
    for minutes in (5, 10):
        await add(
            store,
            at + timedelta(minutes=minutes),
            actor="pc-1",
            break_glass={"grant_id": reviewed.id, "use": "READ"},
            **glass,
        )
    await add(
        store,
        at + timedelta(hours=1, minutes=5),
        actor="pc-2",
        subjects={JADE: "child"},
        break_glass={"grant_id": open_.id, "use": "READ"},
        outcome="denied",
        **glass,
    )

    page = await reports.break_glass_queue(store, Filters(), PageRequest(), ENV)
    unreviewed = await reports.break_glass_queue(
        store, Filters(unreviewed_only=True), PageRequest(), ENV
    )
    of_jade = await reports.break_glass_queue(store, Filters(subject_id=JADE), PageRequest(), ENV)
    later = await reports.break_glass_queue(
        store, Filters(since=at + timedelta(minutes=30)), PageRequest(), ENV
    )

    first, second = page.rows
    assert (first.grant_id, first.reads, first.subject_id) == (reviewed.id, 2, AVA)
    assert (first.review_outcome, first.reviewed_by) == ("JUSTIFIED", "ig-1")
    assert first.reviewed_at == at + timedelta(days=1) and first.granted_at == at
    assert (first.actor_agency, first.actor_team, first.reason_code) == (
        "police",
        "night-desk",
        "MISSING_CHILD",
    )
    assert first.justification == "child missing at 2am"  # what IG reviews
    assert (second.grant_id, second.reads, second.review_outcome) == (open_.id, 0, None)
    assert second.alert_id == open_alert.id
    assert [r.grant_id for r in unreviewed.rows] == [open_.id]
    assert [r.grant_id for r in of_jade.rows] == [open_.id]
    assert [r.grant_id for r in later.rows] == [open_.id] and later.total_count == 1


async def test_consent_override_register_lists_overrides_with_the_contacts_children(
    store: Store,
) -> None:
    about_ava = contact(WINTER, children=(AVA, JADE))
    about_other = contact(WINTER, children=(OTHER,))
    overrides = [
        ConsentOverride(
            id=str(uuid.uuid4()),
            contact_id=c.id,
            authorised_by=by,
            authoriser_role="mash_manager",
            reason_code=code,
            justification="mother refused; DASH high",
            authorised_at=WINTER + timedelta(hours=h),
        )
        for c, by, code, h in (
            (about_ava, "manager-1", "RISK_OF_SIGNIFICANT_HARM", 3),
            (about_other, "manager-2", "UNDUE_DELAY", 4),
        )
    ]
    await put(store, about_ava, about_other, *overrides)

    everything = await reports.consent_overrides(store, Filters(), PageRequest(), ENV)
    for_ava = await reports.consent_overrides(store, Filters(subject_id=AVA), PageRequest(), ENV)
    by_two = await reports.consent_overrides(
        store, Filters(actor_subject="manager-2"), PageRequest(), ENV
    )
    early = await reports.consent_overrides(
        store, Filters(until=WINTER + timedelta(hours=3, minutes=30)), PageRequest(), ENV
    )

    row = everything.rows[0]
    assert everything.total_count == 2
    assert (row.contact_id, row.subject_ids) == (about_ava.id, tuple(sorted((AVA, JADE))))
    assert (row.authorised_by, row.authoriser_role, row.reason_code) == (
        "manager-1",
        "mash_manager",
        "RISK_OF_SIGNIFICANT_HARM",
    )
    assert not hasattr(row, "justification")  # free text stays with the contact
    assert [r.override_id for r in for_ava.rows] == [overrides[0].id]
    assert [r.override_id for r in by_two.rows] == [overrides[1].id]
    assert [r.override_id for r in early.rows] == [overrides[0].id]


async def test_not_shared_register_pages_through_decisions_by_who_and_when(store: Store) -> None:
    items = [
        WithheldItem(
            id=str(uuid.uuid4()),
            source="POLICE",
            item_id=f"incident-{n}",
            agency="police",
            reason_code="PREJUDICE_INVESTIGATION",
            reason="live operation against the partner",
            withheld_by="pc-1" if n < 2 else "pc-2",
            withheld_at=WINTER + timedelta(hours=n),
        )
        for n in range(3)
    ]
    await put(store, *items)

    first = await reports.not_shared(store, Filters(), PageRequest(first=2), ENV)
    rest = await reports.not_shared(
        store, Filters(), PageRequest(first=2, after=first.end_cursor), ENV
    )
    by_two = await reports.not_shared(store, Filters(actor_subject="pc-2"), PageRequest(), ENV)

    assert first.total_count == 3 and first.has_next_page and not rest.has_next_page
    assert [r.item_id for r in (*first.rows, *rest.rows)] == [f"incident-{n}" for n in range(3)]
    assert (first.rows[0].agency, first.rows[0].withheld_by, first.rows[0].reason_code) == (
        "police",
        "pc-1",
        "PREJUDICE_INVESTIGATION",
    )
    assert not hasattr(first.rows[0], "reason")
    assert [r.item_id for r in by_two.rows] == ["incident-2"]


async def test_not_shared_register_names_each_decisions_contact_and_children_and_filters_by_child(
    store: Store,
) -> None:
    about_ava = contact(WINTER, children=(AVA, JADE))
    about_other = contact(WINTER, children=(OTHER,))

    def decision(n: int, contact_id: str | None) -> WithheldItem:
        return WithheldItem(
            id=str(uuid.uuid4()),
            source="HEALTH",
            item_id=f"encounter-{n}",
            agency="health",
            reason_code="MORE_DETRIMENTAL_TO_CHILD",
            reason="disclosure would put the child at risk",
            withheld_by="hv-1",
            withheld_at=WINTER + timedelta(hours=n),
            contact_id=contact_id,
        )

    items = [decision(0, about_ava.id), decision(1, about_other.id), decision(2, None)]
    await put(store, about_ava, about_other, *items)

    everything = await reports.not_shared(store, Filters(), PageRequest(), ENV)
    for_jade = await reports.not_shared(store, Filters(subject_id=JADE), PageRequest(), ENV)
    for_other = await reports.not_shared(store, Filters(subject_id=OTHER), PageRequest(), ENV)
    for_nobody = await reports.not_shared(
        store, Filters(subject_id=str(uuid.uuid4())), PageRequest(), ENV
    )

    ava_row, other_row, bare_row = everything.rows
    assert (ava_row.contact_id, ava_row.subject_ids) == (about_ava.id, tuple(sorted((AVA, JADE))))
    assert (other_row.contact_id, other_row.subject_ids) == (about_other.id, (OTHER,))
    assert (bare_row.contact_id, bare_row.subject_ids) == (None, ())
    assert [r.withheld_id for r in for_jade.rows] == [items[0].id]
    assert for_jade.total_count == 1
    assert [r.withheld_id for r in for_other.rows] == [items[1].id]
    assert for_nobody.rows == [] and for_nobody.total_count == 0


async def test_timeliness_judges_each_contact_against_its_timescale_with_a_summary(
    store: Store,
) -> None:
    day = WINTER + timedelta(days=1)
    on_time = contact(day, decided_after=1.5, stage="CLOSED")
    late = contact(day + timedelta(hours=1), rag="AMBER", due_hours=6, decided_after=30.5)
    overdue = contact(day + timedelta(hours=2))
    waiting = contact(day + timedelta(hours=3), rag="GREEN", due_hours=24)
    await put(store, on_time, late, overdue, waiting, contact(WINTER - timedelta(days=1)))
    env = Env(
        day + timedelta(hours=5), ContactSettings(rag_hours={"RED": 2, "AMBER": 6, "GREEN": 24})
    )

    page = await reports.timeliness(
        store, Filters(since=day, until=day + timedelta(days=1)), PageRequest(first=3), env
    )
    rest = await reports.timeliness(
        store,
        Filters(since=day, until=day + timedelta(days=1)),
        PageRequest(first=3, after=page.end_cursor),
        env,
    )

    rows = [*page.rows, *rest.rows]
    assert [r.contact_id for r in rows] == [on_time.id, late.id, overdue.id, waiting.id]
    assert [r.within_target for r in rows] == [True, False, False, None]
    assert [r.hours for r in rows] == [1.5, 30.5, 3.0, 2.0]
    assert [r.target_hours for r in rows] == [2, 6, 2, 24]
    assert rows[0].decision == "S47" and rows[0].stage == "CLOSED" and rows[0].subject_ids == (AVA,)
    assert page.has_next_page and page.total_count == 4
    summary = page.summary
    assert (summary.contacts, summary.decided, summary.judged, summary.within_target) == (
        4,
        2,
        3,
        1,
    )
    assert summary.percent_within_target == 33.3 and summary.median_hours_to_decision == 16.0
    assert rest.summary == summary


async def test_a_read_of_a_flagged_child_while_no_contact_about_them_is_open_is_an_anomaly(
    store: Store,
) -> None:
    """Ava is flagged by a flagged-child-read notice, Jade by a break-glass grant, Other by a
    location-protected redaction or the flag decision on the read itself (a read of Other
    with neither is not counted); Ava's contact is open 10:00-12:00."""
    day = WINTER + timedelta(days=2)
    notice = Notification(
        id=str(uuid.uuid4()),
        team="mash-east",
        agency="council",
        kind="FLAGGED_CHILD_READ",
        subject_id=AVA,
        created_at=day + timedelta(hours=9),
    )
    ava_contact = contact(day + timedelta(hours=10), stage="CLOSED")
    closed = StageTransition(
        contact_id=ava_contact.id,
        from_stage="DECISION",
        to_stage="CLOSED",
        by="manager-1",
        at=day + timedelta(hours=12),
    )
    glass, alert = grant("pc-1", JADE, day + timedelta(hours=13))
    await put(store, notice, ava_contact, closed, glass, alert)
    read: dict[str, Any] = {"police": True}
    await add(store, day + timedelta(hours=8), **read)  # before anyone knew Ava was flagged
    await add(store, day + timedelta(hours=9, minutes=30), **read)  # flagged, no contact yet
    await add(store, day + timedelta(hours=11), **read)  # her contact is open
    await add(store, day + timedelta(hours=14), actor="worker-9", **read)  # closed again
    await add(store, day + timedelta(hours=12), subjects={JADE: "child"}, **read)  # pre-glass
    await add(store, day + timedelta(hours=15), subjects={JADE: "child"}, **read)
    located = [{"path": "child.person.address", "reason": "LOCATION_PROTECTED"}]
    await add(
        store, day + timedelta(hours=16), subjects={OTHER: "child"}, fields_redacted=located, **read
    )
    await add(store, day + timedelta(hours=16, minutes=30), subjects={OTHER: "child"}, **read)
    noted = [{"class": FLAG_DECISION, "decision": "RELEASED", "reason": "READER_IN_OWNING_TEAM"}]
    await add(  # the read itself found the flag (no notice: the reader was in the team)
        store,
        day + timedelta(hours=16, minutes=45),
        subjects={OTHER: "child"},
        policy_decisions=noted,
        **read,
    )
    withheld = [{"path": "child", "reason": "NO_RELATIONSHIP"}]
    await add(store, day + timedelta(hours=17), fields_redacted=withheld, **read)  # saw nothing
    await add(store, day + timedelta(hours=17), purpose="IG_AUDIT", **read)  # IG's own read

    report = await reports.anomalies(
        store, Filters(since=day, until=day + timedelta(days=1)), IgSettings(), day
    )

    flagged = [
        (a.occurred_at, a.subject_ids, a.actor_subject)
        for a in report.anomalies
        if a.kind == reports.FLAGGED_NO_CONTACT
    ]
    assert flagged == [
        (day + timedelta(hours=9, minutes=30), (AVA,), "worker-1"),
        (day + timedelta(hours=14), (AVA,), "worker-9"),
        (day + timedelta(hours=15), (JADE,), "worker-1"),
        (day + timedelta(hours=16), (OTHER,), "worker-1"),
        (day + timedelta(hours=16, minutes=45), (OTHER,), "worker-1"),
    ]
    one = await reports.anomalies(
        store,
        Filters(actor_subject="worker-9", since=day, until=day + timedelta(days=1)),
        IgSettings(),
        day,
    )
    assert [a.kind for a in one.anomalies] == [reports.FLAGGED_NO_CONTACT]
