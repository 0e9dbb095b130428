"""The MASH contact workflow: timescales, the store and its facts for the policies, and the
GraphQL workflow end to end on the showcase child (hub store on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from hub.audit.events import AuditNotes, AuditWriter, StagedWriteRefused
from hub.audit.models import AuditEvent
from hub.auth.tokens import Actor
from hub.contacts import kpis
from hub.contacts import workflow as svc
from hub.demo.stack import running_hub
from hub.reading import oversight
from hub.reading.models import WithheldItem
from hub.store.base import Base
from hub.store.engine import Store, migrate_async

from .conftest import FakeContacts, Hub, hub_settings
from .test_app import find_ava, ok, run_sql

CFG = svc.ContactSettings()
LONDON_FRIDAY_4PM = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # GMT in November


# --- timescales ------------------------------------------------------------------------


def test_red_runs_on_the_wall_clock_past_office_hours() -> None:
    saturday_night = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert svc.due_time(saturday_night, "RED", CFG) == saturday_night + timedelta(hours=2)


def test_amber_counts_office_hours_only_across_the_weekend() -> None:
    # one office hour on Friday, five on Monday morning
    assert svc.due_time(LONDON_FRIDAY_4PM, "AMBER", CFG) == datetime(
        2026, 11, 30, 14, 0, tzinfo=UTC
    )


def test_green_is_three_office_days_and_a_contact_out_of_hours_starts_at_opening() -> None:
    sunday = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    assert svc.due_time(sunday, "GREEN", CFG) == datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def test_timescales_and_office_hours_come_from_configuration() -> None:
    cfg = svc.ContactSettings(
        rag_hours={"RED": 1.0, "AMBER": 2.0, "GREEN": 4.0},
        office_hours=(8, 18),
        office_days=(0, 1, 2, 3, 4, 5),
        timezone="UTC",
    )
    saturday_5pm = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    assert svc.due_time(saturday_5pm, "RED", cfg) == saturday_5pm + timedelta(hours=1)
    # Saturday is an office day here: one hour on Saturday, one on Monday at 08:00
    assert svc.due_time(saturday_5pm, "AMBER", cfg) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_settings_read_timescales_office_hours_and_break_glass_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from hub.settings import Settings

    monkeypatch.setenv("MASH_RAG_HOURS", '{"RED": 1, "AMBER": 4, "GREEN": 16}')
    monkeypatch.setenv("MASH_OFFICE_HOURS", "[8, 18]")
    monkeypatch.setenv("MASH_BREAK_GLASS_MINUTES", "30")
    cfg = svc.ContactSettings.of(Settings())
    assert (cfg.rag_hours["RED"], cfg.office_hours, cfg.break_glass_minutes) == (1, (8, 18), 30)
    monkeypatch.setenv("MASH_RAG_HOURS", '{"RED": 1}')
    with pytest.raises(ValidationError, match="rag_hours"):
        Settings()
    monkeypatch.delenv("MASH_RAG_HOURS")
    monkeypatch.setenv("MASH_OFFICE_DAYS", "[]")
    with pytest.raises(ValidationError, match="office_days"):
        Settings()


def test_amber_received_on_christmas_eve_skips_the_bank_holidays() -> None:
    # Thursday 24 December 2026, 16:00 in London: one office hour that day; Christmas Day
    # (Friday), the weekend and Boxing Day observed (Monday 28th) are closed; five hours
    # on Tuesday 29th from 09:00.
    christmas_eve_4pm = datetime(2026, 12, 24, 16, 0, tzinfo=UTC)
    due = svc.due_time(christmas_eve_4pm, "AMBER", CFG)
    assert due == datetime(2026, 12, 29, 14, 0, tzinfo=UTC)
    # without a calendar the same contact would fall due at 14:00 on Christmas Day
    no_calendar = svc.ContactSettings(bank_holidays="none")
    assert svc.due_time(christmas_eve_4pm, "AMBER", no_calendar) == datetime(
        2026, 12, 25, 14, 0, tzinfo=UTC
    )


def test_bank_holidays_follow_the_configured_nation(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from hub.settings import Settings

    # 2 January 2027 is a Saturday; Scotland's 2 January holiday moves to Monday 4th (and
    # New Year's Day observed is Friday 1st in both): a GREEN contact received on
    # Thursday 31 December at 17:00 counts 24 office hours from Monday 4th in England,
    # from Tuesday 5th in Scotland.
    new_years_eve = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    england = svc.due_time(new_years_eve, "GREEN", CFG)
    monkeypatch.setenv("MASH_BANK_HOLIDAYS", "GB-SCT")
    scotland = svc.due_time(new_years_eve, "GREEN", svc.ContactSettings.of(Settings()))
    assert england == datetime(2027, 1, 6, 17, 0, tzinfo=UTC)
    assert scotland == datetime(2027, 1, 7, 17, 0, tzinfo=UTC)
    monkeypatch.setenv("MASH_BANK_HOLIDAYS", "GB-XYZ")
    with pytest.raises(ValidationError, match="unknown bank holiday calendar 'GB-XYZ'"):
        Settings()


def test_office_hours_follow_local_summer_time() -> None:
    # 09:00 in London in June is 08:00 UTC
    monday_early = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    assert svc.due_time(monday_early, "AMBER", CFG) == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)


# --- the store -------------------------------------------------------------------------

ACTOR = Actor("sw-1", "iss", frozenset({"mash_social_worker"}), "council", "team-a", None)
POLICE = Actor("pr-1", "iss", frozenset({"police_researcher"}), "police", "police-desk", None)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    """One store per backend for this module: every test makes its own contacts."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('contacts') / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_databases").create())
    await migrate_async(url)
    s = Store(url)
    yield s
    await s.aclose()


async def commit(store: Store, audit: AuditNotes) -> None:
    """Run the staged writes in one transaction, as the audit writer does."""
    async with store.writing() as session, session.begin():
        for stage in audit.build().staged:
            await stage(session)


async def apply(store: Store, cid: str, change: svc.Change) -> None:
    """One operation: check the change, then commit it as the audit writer would."""
    audit = AuditNotes(ACTOR)
    await svc.change(store, audit, cid, change)
    await commit(store, audit)


async def new_contact(store: Store, now: datetime, rag: str = "AMBER") -> str:
    audit = AuditNotes(ACTOR)
    new = svc.NewContact(
        concern="bruising seen at school",
        rag=rag,
        referrer_type="SCHOOL",
        referrer_name="a teacher",
        child_details=({"given_name": "Ava"},),
    )
    row = await svc.create(store, audit, ACTOR, new, now, CFG)
    await commit(store, audit)
    return row.id


async def test_migration_0004_creates_the_tables_the_models_describe(store: Store) -> None:
    def compare(connection: Any) -> list[Any]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with store.engine.connect() as conn:
        diff = await conn.run_sync(compare)
    assert diff == []


async def test_facts_follow_the_contact_through_research_consent_and_override(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    cid = await new_contact(store, now)
    facts = await svc.facts_for(store, ACTOR, "MASH_SCREENING", cid, now)
    assert (facts.stage, facts.assigned, facts.consent, facts.override) == (
        "SCREENING",
        True,
        None,
        False,
    )
    assert not (await svc.facts_for(store, POLICE, "MASH_SCREENING", cid, now)).assigned

    await apply(store, cid, svc.advance("RESEARCH", None, ACTOR, now, False))
    await apply(store, cid, svc.record_consent("GIVEN", "mother", ["health"], ACTOR, now, "c-1"))
    facts = await svc.facts_for(store, POLICE, "MASH_RESEARCH", cid, now)
    # the police researcher is now on the rota for the police research task
    assert (facts.stage, facts.assigned, facts.consent, facts.consent_scope) == (
        "RESEARCH",
        True,
        "GIVEN",
        ("health",),
    )
    contact = await svc.get(store, cid)
    assert sorted(t.agency for t in contact.tasks) == sorted(svc.AGENCIES)
    assert [(t.from_stage, t.to_stage) for t in contact.transitions] == [
        (None, "SCREENING"),
        ("SCREENING", "RESEARCH"),
    ]


async def test_facts_for_an_unknown_contact_is_a_not_found_error(store: Store) -> None:
    with pytest.raises(svc.ContactError) as caught:
        await svc.facts_for(store, ACTOR, "MASH_RESEARCH", str(uuid.uuid4()), datetime.now(UTC))
    assert caught.value.extensions == {"code": "NOT_FOUND"}
    with pytest.raises(svc.ContactError):
        await svc.facts_for(store, ACTOR, "MASH_RESEARCH", "not-a-contact", datetime.now(UTC))


async def test_an_illegal_transition_is_refused_before_anything_is_staged(store: Store) -> None:
    now = datetime.now(UTC)
    cid = await new_contact(store, now)
    audit = AuditNotes(ACTOR)
    for stage, reopen in (("DECISION", True), ("CLOSED", True), ("NOWHERE", True)):
        with pytest.raises(svc.ContactError) as caught:
            await svc.change(store, audit, cid, svc.advance(stage, None, ACTOR, now, reopen))
        assert caught.value.extensions == {"code": "BAD_USER_INPUT"}
    assert audit.build().staged == ()
    assert (await svc.get(store, cid)).stage == "SCREENING"


async def test_a_change_checked_against_a_stale_contact_fails_in_the_audit_transaction(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    cid = await new_contact(store, now)
    first, second = AuditNotes(ACTOR), AuditNotes(ACTOR)
    await svc.change(store, first, cid, svc.advance("RESEARCH", None, ACTOR, now, False))
    await svc.change(store, second, cid, svc.advance("RESEARCH", None, ACTOR, now, False))
    await commit(store, first)
    with pytest.raises(svc.ContactError) as refused:
        await commit(store, second)
    assert refused.value.extensions == {"code": "CONFLICT"}
    assert len((await svc.get(store, cid)).transitions) == 2


async def test_a_stale_change_is_audited_as_a_conflict_and_commits_nothing(
    store: Store,
) -> None:
    """Two people move the same contact at once: the second hears CONFLICT (with why), its
    audit event is committed as that error, and only the first change is kept."""
    now = datetime.now(UTC)
    cid = await new_contact(store, now)
    first, second = AuditNotes(ACTOR), AuditNotes(ACTOR)
    await svc.change(store, first, cid, svc.advance("RESEARCH", None, ACTOR, now, False))
    await svc.change(store, second, cid, svc.advance("RESEARCH", None, ACTOR, now, False))
    second.returned(["advanceContact.stage"])
    writer = AuditWriter(store)
    try:
        kept = await writer.write(first.build())
        with pytest.raises(StagedWriteRefused) as refused:
            await writer.write(second.build())
    finally:
        await writer.aclose()
    assert refused.value.code == "CONFLICT"
    assert "RESEARCH" in refused.value.error.message
    async with store.sessions() as session:
        events = {
            e.event_id: e
            for e in (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.event_id.in_([kept, refused.value.event_id])
                    )
                )
            ).scalars()
        }
    assert (events[kept].outcome, events[kept].error_code) == ("ok", None)
    conflict = events[refused.value.event_id]
    assert (conflict.outcome, conflict.error_code) == ("error", "CONFLICT")
    assert conflict.contact_id == cid and conflict.fields_returned == []
    assert len((await svc.get(store, cid)).transitions) == 2


async def test_overdue_is_derived_from_the_clock(store: Store) -> None:
    received = datetime.now(UTC) - timedelta(hours=3)
    audit = AuditNotes(ACTOR)
    new = svc.NewContact("concern", "RED", "POLICE", received_at=received, child_details=({},))
    with pytest.raises(svc.ContactError):  # empty child details name no child
        await svc.create(store, audit, ACTOR, new, received, CFG)
    new = svc.NewContact(
        "concern", "RED", "POLICE", received_at=received, child_details=({"given_name": "A"},)
    )
    row = await svc.create(store, audit, ACTOR, new, received + timedelta(minutes=1), CFG)
    await commit(store, audit)
    row = await svc.get(store, row.id)
    assert not svc.overdue(row, received + timedelta(hours=1, minutes=59))
    assert svc.overdue(row, received + timedelta(hours=2, minutes=1))
    late = await svc.find(store, svc.ContactFilter(overdue=True), datetime.now(UTC))
    assert row.id in [c.id for c in late]


async def test_break_glass_grant_counts_for_its_actor_and_child_until_it_expires(
    store: Store,
) -> None:
    from hub.identity.models import Subject

    child = str(uuid.uuid4())
    async with store.writing() as session, session.begin():
        session.add(
            Subject(
                id=child,
                identity_key=child,
                demographic_key=child,
                postcodes=[],
                created_at=datetime.now(UTC),
            )
        )
    now = datetime.now(UTC)
    audit = AuditNotes(POLICE)
    grant, alert, notice = await oversight.break_glass(
        store, audit, POLICE, child, "MISSING_CHILD", "found at night", now, CFG
    )
    await commit(store, audit)
    assert grant.expires_at == now + timedelta(minutes=60)
    assert (notice.team, alert.grant_id) == (CFG.default_owning_team, grant.id)
    noted = audit.build().break_glass
    assert noted and noted["grant_id"] == grant.id

    async def glass(actor: Actor, at: datetime, purpose: str = "BREAK_GLASS") -> bool:
        facts = await svc.facts_for(store, actor, purpose, None, at, subject_id=child)
        return facts.break_glass

    assert await glass(POLICE, now + timedelta(minutes=59))
    assert not await glass(POLICE, now + timedelta(minutes=61))
    assert not await glass(ACTOR, now + timedelta(minutes=1))  # someone else's grant
    assert not await glass(POLICE, now + timedelta(minutes=1), "MASH_RESEARCH")
    other = await svc.facts_for(
        store, POLICE, "BREAK_GLASS", None, now, subject_id=str(uuid.uuid4())
    )
    assert not other.break_glass


async def test_break_glass_refuses_an_unknown_reason_code_and_an_empty_justification(
    store: Store,
) -> None:
    audit = AuditNotes(POLICE)
    now = datetime.now(UTC)
    for code, why in (("CURIOSITY", "x"), ("MISSING_CHILD", "  ")):
        with pytest.raises(svc.ContactError) as caught:
            await oversight.break_glass(
                store, audit, POLICE, str(uuid.uuid4()), code, why, now, CFG
            )
        assert caught.value.extensions == {"code": "BAD_USER_INPUT"}
    assert audit.build().staged == ()


async def test_kpis_count_timeliness_outcomes_and_re_referrals(store: Store) -> None:
    from hub.identity.models import Subject

    child = str(uuid.uuid4())
    async with store.writing() as session, session.begin():
        session.add(
            Subject(
                id=child,
                identity_key=child,
                demographic_key=child,
                postcodes=[],
                created_at=datetime.now(UTC),
            )
        )
    t0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday, before the other tests' contacts
    ids = []
    for i, rag in enumerate(("RED", "RED")):
        audit = AuditNotes(ACTOR)
        new = svc.NewContact("c", rag, "POLICE", child_ids=(child,))
        at = t0 + timedelta(days=i)
        ids.append((await svc.create(store, audit, ACTOR, new, at, CFG)).id)
        await commit(store, audit)
    # the first decided in one hour (within RED's two), the second in three
    for cid, took in zip(ids, (1, 3), strict=True):
        start = svc.as_utc((await svc.get(store, cid)).received_at)
        for stage in ("RESEARCH", "DECISION"):
            await apply(store, cid, svc.advance(stage, None, ACTOR, start, False))
        half_hour = start + timedelta(minutes=30)
        await apply(store, cid, svc.update_task("police", "COMPLETED", "known", POLICE, half_hour))
        decided = start + timedelta(hours=took)
        await apply(store, cid, svc.record_decision("S17", "needs", None, None, ACTOR, decided))
    k = await kpis.compute(store, t0, t0 + timedelta(days=7), t0 + timedelta(days=8))
    red = next(r for r in k.by_rag if r.rag == "RED")
    assert (k.contacts, red.decided, red.decided_within_timescale) == (2, 2, 1)
    assert red.percent_within_timescale == 50.0
    assert k.median_decision_minutes == 120.0
    assert (k.re_referrals, k.outcomes) == (1, {"S17": 2})
    police = next(a for a in k.agencies if a.agency == "police")
    assert (police.completed, police.median_response_minutes) == (2, 30.0)
    with pytest.raises(svc.ContactError):
        await kpis.compute(store, t0, t0, t0)


# --- end to end ------------------------------------------------------------------------


class Clock:
    """The hub's clock in these tests: real time, moved on by `offset`."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def chub(
    demo_data: Path,
    source_config: dict[str, Any],
    store_url: str,
    clock: Clock,
    fake_contacts: FakeContacts,
) -> Iterator[Hub]:
    """A second hub on the same store (as when scaled out), whose clock the tests move."""
    with running_hub(hub_settings(demo_data, store_url, source_config), clock=clock) as url:
        yield Hub(url, demo_data, store_url)


@pytest.fixture(autouse=True)
def _reset_clock(clock: Clock) -> Iterator[None]:
    yield
    clock.offset = timedelta()


def gql(
    hub: Hub, role: str, query: str, variables: dict[str, Any] | None = None, **claims: Any
) -> httpx.Response:
    token = hub.token(role, **claims)
    return httpx.post(
        f"{hub.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def error(response: httpx.Response) -> str:
    body = response.json()
    assert response.status_code == 200 and body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


CONTACT = """
  id stage rag dueAt overdue childIds assignedStaff assignedTeams concern
  referrer { type anonymous name contactDetails redactedFields { field reason } }
  researchTasks { agency status dueAt completedAt overdue summary }
  consent { state givenBy scope recordedBy }
  overrides { authorisedBy authoriserRole reasonCode }
  decision { outcome reasons referrerFeedback parentsTold decidedBy }
  stageHistory { fromStage toStage reason by }
"""
CREATE = f"""mutation Create($input: CreateContactInput!) {{
  createContact(input: $input) {{ {CONTACT} }} }}"""
ADVANCE = f"""mutation Advance($id: ID!, $stage: String!, $purpose: Purpose!, $reason: String) {{
  advanceContact(id: $id, stage: $stage, purpose: $purpose, reason: $reason) {{ {CONTACT} }} }}"""
CONSENT = f"""mutation Consent($id: ID!, $state: String!, $by: String, $scope: [String!]) {{
  recordConsent(id: $id, state: $state, purpose: MASH_RESEARCH, givenBy: $by, scope: $scope)
  {{ {CONTACT} }} }}"""
OVERRIDE = f"""mutation Override($id: ID!, $code: String!, $why: String!) {{
  overrideConsent(id: $id, reasonCode: $code, justification: $why, purpose: MASH_RESEARCH)
  {{ {CONTACT} }} }}"""
TASK = f"""mutation Task($id: ID!, $agency: String!, $status: String!, $purpose: Purpose!) {{
  updateResearchTask(id: $id, agency: $agency, status: $status, purpose: $purpose,
                     summary: "known to police: yes") {{ {CONTACT} }} }}"""
DECIDE = f"""mutation Decide($id: ID!, $decision: String!, $told: Boolean) {{
  recordDecision(id: $id, decision: $decision, reasons: "risk of significant harm",
                 referrerFeedback: "thank you; s47 enquiry opened", parentsTold: $told,
                 purpose: THRESHOLD_DECISION) {{ {CONTACT} }} }}"""
READ = f"""query Read($id: ID!, $purpose: Purpose!) {{
  contact(id: $id, purpose: $purpose) {{ {CONTACT} }} }}"""
GLASS = """mutation Glass($child: ID!, $code: String!, $why: String!) {
  breakGlass(childId: $child, reasonCode: $code, justification: $why) {
    id childId reasonCode grantedAt expiresAt alertId notifiedTeam } }"""
ALERTS = """query Alerts { igAlerts { id kind childId actor actorAgency reasonCode raisedAt
  reviewOutcome reviewedBy reviewedAt } }"""
NOTICES = """query Notices($team: String) { notifications(team: $team) {
  id team agency kind childId actor actorAgency actorTeam purpose createdAt } }"""
EVENTS = """query Audit { auditEvents(first: 200) { edges { node {
  operationName purpose contactId outcome subjects } } } }"""


def create_for(hub: Hub, child_id: str, **referrer: Any) -> dict[str, Any]:
    data = ok(
        gql(
            hub,
            "mash_social_worker",
            CREATE,
            {
                "input": {
                    "childIds": [child_id],
                    "concern": "Ava disclosed that her mother's partner hit her mother",
                    "rag": "RED",
                    "referrer": referrer or {"type": "SCHOOL", "name": "Head teacher"},
                }
            },
        )
    )
    return data["createContact"]  # type: ignore[no-any-return]


def store_facts(
    hub: Hub, actor: Actor, purpose: str, cid: str | None, now: datetime, **kw: Any
) -> svc.ContactFacts:
    async def run() -> svc.ContactFacts:
        store = Store(hub.database_url)
        try:
            return await svc.facts_for(store, actor, purpose, cid, now, **kw)
        finally:
            await store.aclose()

    return asyncio.run(run())


def test_ava_contact_is_created_and_moved_to_research_with_consent_recorded(chub: Hub) -> None:
    ava = find_ava(chub)
    contact = create_for(chub, ava)
    cid = contact["id"]
    assert (contact["stage"], contact["rag"], contact["childIds"]) == ("SCREENING", "RED", [ava])
    assert contact["assignedStaff"] == ["demo-mash_social_worker"]
    assert contact["overdue"] is False

    moved = ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    assert moved["advanceContact"]["stage"] == "RESEARCH"
    tasks = moved["advanceContact"]["researchTasks"]
    assert [t["agency"] for t in tasks] == sorted(svc.AGENCIES)
    assert {t["status"] for t in tasks} == {"REQUESTED"}

    consent = ok(
        gql(chub, "mash_social_worker", CONSENT, {"id": cid, "state": "GIVEN", "by": "mother"})
    )
    assert consent["recordConsent"]["consent"] == {
        "state": "GIVEN",
        "givenBy": "mother",
        "scope": [],
        "recordedBy": "demo-mash_social_worker",
    }
    read = ok(gql(chub, "mash_manager", READ, {"id": cid, "purpose": "MASH_RESEARCH"}))["contact"]
    assert (read["stage"], read["consent"]["state"]) == ("RESEARCH", "GIVEN")
    assert [(h["fromStage"], h["toStage"]) for h in read["stageHistory"]] == [
        (None, "SCREENING"),
        ("SCREENING", "RESEARCH"),
    ]

    # the facts the policies read
    worker = Actor(
        "demo-mash_social_worker", "x", frozenset({"mash_social_worker"}), "council", None, None
    )
    facts = store_facts(chub, worker, "MASH_RESEARCH", cid, datetime.now(UTC))
    assert (facts.stage, facts.consent, facts.assigned, facts.subject_ids) == (
        "RESEARCH",
        "GIVEN",
        True,
        (ava,),
    )
    # one audit event per operation, naming the contact and the child
    events = [
        e
        for e in ok(gql(chub, "ig_officer", EVENTS))["auditEvents"]["edges"]
        if e["node"]["contactId"] == cid
    ]
    assert [e["node"]["operationName"] for e in events] == ["Create", "Advance", "Consent", "Read"]
    assert all(ava in e["node"]["subjects"] and e["node"]["outcome"] == "ok" for e in events)


def test_break_glass_works_for_one_hour_then_stops_with_an_alert_and_a_notification(
    chub: Hub, clock: Clock
) -> None:
    ava = find_ava(chub)
    desk = {"team": "police-night-desk", "sub": "pc-night"}
    grant = ok(
        gql(
            chub,
            "police_researcher",
            GLASS,
            {
                "child": ava,
                "code": "OUT_OF_HOURS_EMERGENCY",
                "why": "child reported missing at 2am",
            },
            **desk,
        )
    )["breakGlass"]
    granted = datetime.fromisoformat(grant["grantedAt"])
    assert datetime.fromisoformat(grant["expiresAt"]) - granted == timedelta(minutes=60)

    officer = Actor(
        "pc-night",
        "https://dev-issuer.mash-hub.invalid",
        frozenset({"police_researcher"}),
        "police",
        "police-night-desk",
        None,
    )
    assert store_facts(
        chub, officer, "BREAK_GLASS", None, granted + timedelta(minutes=59), subject_id=ava
    ).break_glass

    # read-only: no change to a contact or an item under break-glass
    contact = create_for(chub, ava)
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": contact["id"], "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    refused = gql(
        chub,
        "police_researcher",
        TASK,
        {"id": contact["id"], "agency": "police", "status": "COMPLETED", "purpose": "BREAK_GLASS"},
        **desk,
    )
    assert error(refused) == "FORBIDDEN"
    withhold = """mutation W { withholdItem(source: POLICE, itemId: "x",
      reasonCode: "NOT_PROPORTIONATE", reason: "r", purpose: BREAK_GLASS) { id } }"""
    assert error(gql(chub, "police_researcher", withhold, **desk)) == "FORBIDDEN"

    # an hour later it has stopped
    clock.offset = timedelta(minutes=61)
    assert not store_facts(chub, officer, "BREAK_GLASS", None, clock(), subject_id=ava).break_glass
    # the IG alert and the owning team's notification exist
    alerts = ok(gql(chub, "ig_officer", ALERTS))["igAlerts"]
    alert = next(a for a in alerts if a["id"] == grant["alertId"])
    assert (alert["kind"], alert["childId"], alert["actorAgency"], alert["reviewedAt"]) == (
        "BREAK_GLASS",
        ava,
        "police",
        None,
    )
    notices = ok(gql(chub, "mash_manager", NOTICES, {"team": grant["notifiedTeam"]}))[
        "notifications"
    ]
    mine = [
        n for n in notices if n["kind"] == "BREAK_GLASS" and n["actorTeam"] == "police-night-desk"
    ]
    assert mine and mine[0]["childId"] == ava and mine[0]["agency"] == "council"
    assert mine[0]["actor"] == "pc-night"  # a MASH manager sees names
    # IG reviews it, once
    review = """mutation R($id: ID!) { reviewIgAlert(id: $id, outcome: "JUSTIFIED", notes: "ok") {
                reviewOutcome reviewedBy } }"""
    done = ok(gql(chub, "ig_officer", review, {"id": alert["id"]}))["reviewIgAlert"]
    assert done == {"reviewOutcome": "JUSTIFIED", "reviewedBy": "demo-ig_officer"}
    assert error(gql(chub, "ig_officer", review, {"id": alert["id"]})) == "BAD_USER_INPUT"


def test_break_glass_is_refused_to_ig_and_for_an_unknown_child(chub: Hub) -> None:
    ava = find_ava(chub)
    args = {"child": ava, "code": "MISSING_CHILD", "why": "w"}
    assert error(gql(chub, "ig_officer", GLASS, args)) == "FORBIDDEN"
    assert (
        error(gql(chub, "police_researcher", GLASS, {**args, "child": str(uuid.uuid4())}))
        == "NOT_FOUND"
    )
    assert (
        error(gql(chub, "police_researcher", GLASS, {**args, "code": "BORED"})) == "BAD_USER_INPUT"
    )


def test_bad_input_gets_a_clear_error_and_changes_nothing(chub: Hub) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    sw = "mash_social_worker"
    bad_rag = {
        "input": {
            "childIds": [ava],
            "concern": "c",
            "rag": "PURPLE",
            "referrer": {"type": "SCHOOL"},
        }
    }
    response = gql(chub, sw, CREATE, bad_rag)
    assert error(response) == "BAD_USER_INPUT" and "RED, AMBER, GREEN" in response.text
    skip = gql(chub, sw, ADVANCE, {"id": cid, "stage": "DECISION", "purpose": "MASH_SCREENING"})
    assert error(skip) == "BAD_USER_INPUT"
    assert error(gql(chub, sw, CONSENT, {"id": cid, "state": "MAYBE"})) == "BAD_USER_INPUT"
    assert (
        error(gql(chub, "mash_manager", OVERRIDE, {"id": cid, "code": "UNDUE_DELAY", "why": " "}))
        == "BAD_USER_INPUT"
    )
    assert (
        error(gql(chub, "mash_manager", OVERRIDE, {"id": cid, "code": "BECAUSE", "why": "w"}))
        == "BAD_USER_INPUT"
    )
    assert (
        error(gql(chub, sw, OVERRIDE, {"id": cid, "code": "UNDUE_DELAY", "why": "w"}))
        == "FORBIDDEN"
    )
    assert (
        error(gql(chub, sw, READ, {"id": str(uuid.uuid4()), "purpose": "MASH_SCREENING"}))
        == "NOT_FOUND"
    )
    read = ok(gql(chub, sw, READ, {"id": cid, "purpose": "MASH_SCREENING"}))["contact"]
    assert (read["stage"], read["consent"], read["overrides"], len(read["stageHistory"])) == (
        "SCREENING",
        None,
        [],
        1,
    )


def test_contact_goes_from_research_to_an_s47_decision_with_override_and_is_closed(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    ok(gql(chub, "mash_social_worker", CONSENT, {"id": cid, "state": "REFUSED", "by": "mother"}))
    over = ok(
        gql(
            chub,
            "mash_manager",
            OVERRIDE,
            {"id": cid, "code": "RISK_OF_SIGNIFICANT_HARM", "why": "DASH high"},
        )
    )
    assert over["overrideConsent"]["overrides"] == [
        {
            "authorisedBy": "demo-mash_manager",
            "authoriserRole": "mash_manager",
            "reasonCode": "RISK_OF_SIGNIFICANT_HARM",
        }
    ]
    # the police researcher answers for police, not for health
    assert (
        error(
            gql(
                chub,
                "police_researcher",
                TASK,
                {"id": cid, "agency": "health", "status": "COMPLETED", "purpose": "MASH_RESEARCH"},
            )
        )
        == "FORBIDDEN"
    )
    done = ok(
        gql(
            chub,
            "police_researcher",
            TASK,
            {"id": cid, "agency": "police", "status": "COMPLETED", "purpose": "MASH_RESEARCH"},
        )
    )
    police = next(t for t in done["updateResearchTask"]["researchTasks"] if t["agency"] == "police")
    assert police["status"] == "COMPLETED" and police["completedAt"]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "DECISION", "purpose": "MASH_RESEARCH"},
        )
    )
    # a social worker may not move it back; a manager may, with a reason
    back = {"id": cid, "stage": "RESEARCH", "purpose": "THRESHOLD_DECISION"}
    assert error(gql(chub, "mash_social_worker", ADVANCE, back)) == "FORBIDDEN"
    assert error(gql(chub, "mash_manager", ADVANCE, back)) == "BAD_USER_INPUT"
    ok(gql(chub, "mash_manager", ADVANCE, {**back, "reason": "health not yet answered"}))
    ok(
        gql(
            chub,
            "mash_manager",
            ADVANCE,
            {"id": cid, "stage": "DECISION", "purpose": "MASH_RESEARCH"},
        )
    )
    assert (
        error(
            gql(chub, "mash_social_worker", DECIDE, {"id": cid, "decision": "S47", "told": False})
        )
        == "FORBIDDEN"
    )
    assert (
        error(gql(chub, "mash_manager", DECIDE, {"id": cid, "decision": "S47"})) == "BAD_USER_INPUT"
    )
    decided = ok(gql(chub, "mash_manager", DECIDE, {"id": cid, "decision": "S47", "told": False}))
    assert decided["recordDecision"]["decision"] == {
        "outcome": "S47",
        "reasons": "risk of significant harm",
        "referrerFeedback": "thank you; s47 enquiry opened",
        "parentsTold": False,
        "decidedBy": "demo-mash_manager",
    }
    closed = ok(
        gql(
            chub,
            "mash_manager",
            ADVANCE,
            {"id": cid, "stage": "CLOSED", "purpose": "THRESHOLD_DECISION"},
        )
    )
    assert closed["advanceContact"]["stage"] == "CLOSED"
    # closed, it is still not another team's to read: the queue fields only
    queue = gql(chub, "mash_social_worker", READ, {"id": cid, "purpose": "MASH_RESEARCH"}, **EAST)
    assert ok(queue)["contact"]["stage"] == "CLOSED"
    assert ok(queue)["contact"]["concern"] is None and ok(queue)["contact"]["decision"] is None
    assert "risk of significant harm" not in queue.text
    history = [
        (h["fromStage"], h["toStage"], h["reason"])
        for h in closed["advanceContact"]["stageHistory"]
    ]
    assert ("DECISION", "RESEARCH", "health not yet answered") in history
    assert (
        error(
            gql(
                chub,
                "mash_manager",
                ADVANCE,
                {"id": cid, "stage": "DECISION", "purpose": "THRESHOLD_DECISION", "reason": "r"},
            )
        )
        == "BAD_USER_INPUT"
    )

    kpis = """query K($from: DateTime!, $to: DateTime!) { contactKpis(from: $from, to: $to) {
      contacts reReferrals outcomes { outcome contacts } byRag { rag decided }
      agencies { agency completed medianResponseMinutes } medianDecisionMinutes } }"""
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    k = ok(gql(chub, "mash_manager", kpis, window))["contactKpis"]
    assert k["contacts"] >= 2 and k["reReferrals"] >= 1  # Ava has had several contacts today
    assert {"outcome": "S47", "contacts": 1} in k["outcomes"] or any(
        o["outcome"] == "S47" for o in k["outcomes"]
    )
    assert next(a for a in k["agencies"] if a["agency"] == "police")["completed"] >= 1
    assert error(gql(chub, "mash_social_worker", kpis, window)) == "FORBIDDEN"


DESK = "police-desk"  # not the MASH team the dev tokens name by default
EAST = {"team": "council-east-mash", "sub": "sw-east"}  # council MASH, not assigned


def test_an_anonymous_member_of_the_public_is_not_identified_to_other_agencies(chub: Hub) -> None:
    ava = find_ava(chub)
    cid = create_for(
        chub, ava, type="PUBLIC", anonymous=True, name="a neighbour", contactDetails="07000"
    )["id"]
    # rule 2: the police have no part in it until research opens their task
    early = gql(chub, "police_researcher", READ, {"id": cid, "purpose": "MASH_RESEARCH"}, team=DESK)
    assert error(early) == "FORBIDDEN"
    listed = """query L($child: ID!) { contacts(purpose: MASH_RESEARCH, filters: {childId: $child})
      { id } }"""
    assert cid not in [
        c["id"]
        for c in ok(gql(chub, "police_researcher", listed, {"child": ava}, team=DESK))["contacts"]
    ]
    assert cid in [
        c["id"] for c in ok(gql(chub, "mash_social_worker", listed, {"child": ava}))["contacts"]
    ]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    police = ok(
        gql(chub, "police_researcher", READ, {"id": cid, "purpose": "MASH_RESEARCH"}, team=DESK)
    )["contact"]
    assert police["referrer"] == {
        "type": "PUBLIC",
        "anonymous": True,
        "name": None,
        "contactDetails": None,
        "redactedFields": [
            {"field": "name", "reason": "NOT_PERMITTED"},
            {"field": "contactDetails", "reason": "NOT_PERMITTED"},
        ],
    }
    council = ok(gql(chub, "mash_social_worker", READ, {"id": cid, "purpose": "MASH_RESEARCH"}))[
        "contact"
    ]
    assert cid in [
        c["id"]
        for c in ok(gql(chub, "police_researcher", listed, {"child": ava}, team=DESK))["contacts"]
    ]
    assert council["referrer"]["name"] == "a neighbour"
    assert (
        error(gql(chub, "ig_officer", READ, {"id": cid, "purpose": "MASH_RESEARCH"})) == "FORBIDDEN"
    )


CHILD = """query Child($id: ID!, $purpose: Purpose!, $contact: ID) {
  child(id: $id, purpose: $purpose, contactId: $contact) {
  previouslyAccessedBy { at agency team purpose staff }
  police { __typename ... on PoliceSection { incidents { __typename
    ... on PoliceIncident { id } ... on Redaction { reason agency } } } } } }"""


def test_reading_a_flagged_child_from_outside_the_owning_team_notifies_it(chub: Hub) -> None:
    ava = find_ava(chub)  # Ava has a child protection plan flag (health CarePlan CPP)
    owner = asyncio.run(_owner(chub, ava))
    outsider = {"team": "police-day-desk", "sub": "pc-day"}
    before = ok(gql(chub, "mash_manager", NOTICES, {"team": owner}))["notifications"]
    read = gql(
        chub,
        "police_researcher",
        CHILD,
        {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
        **outsider,
    )
    ok(read)
    assert asyncio.run(_flag_decisions(chub, read)) == ["OWNING_TEAM_NOTIFIED"]
    after = ok(gql(chub, "mash_manager", NOTICES, {"team": owner}))["notifications"]
    new = [n for n in after if n["id"] not in {b["id"] for b in before}]
    assert [(n["kind"], n["childId"], n["actorTeam"], n["purpose"]) for n in new] == [
        ("FLAGGED_CHILD_READ", ava, "police-day-desk", "MASH_RESEARCH")
    ]
    # a reader in the owning team is not an outsider; the event notes the flag all the same
    own = gql(
        chub,
        "mash_social_worker",
        CHILD,
        {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
        team=owner,
    )
    ok(own)
    assert asyncio.run(_flag_decisions(chub, own)) == ["READER_IN_OWNING_TEAM"]
    again = ok(gql(chub, "mash_manager", NOTICES, {"team": owner}))["notifications"]
    assert len(again) == len(after)
    # a team reads its own notices, not another team's
    assert (
        error(gql(chub, "police_researcher", NOTICES, {"team": owner}, **outsider)) == "FORBIDDEN"
    )


async def _flag_decisions(hub: Hub, response: httpx.Response) -> list[str]:
    """The reasons of the child-protection-flag decisions on the response's audit event."""
    store = Store(hub.database_url)
    try:
        async with store.sessions() as session:
            decisions = (
                await session.execute(
                    select(AuditEvent.policy_decisions).where(
                        AuditEvent.event_id == response.headers["x-audit-event-id"]
                    )
                )
            ).scalar_one()
    finally:
        await store.aclose()
    return [d["reason"] for d in decisions if d["class"] == oversight.FLAG_DECISION]


async def _owner(hub: Hub, child: str) -> str:
    store = Store(hub.database_url)
    try:
        return await oversight.owner(store, child, svc.ContactSettings())
    finally:
        await store.aclose()


def test_previously_accessed_by_shows_earlier_reads_with_names_only_for_managers(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    ok(
        gql(
            chub,
            "health_practitioner",
            CHILD,
            {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
            team="hv-team",
        )
    )
    seen = ok(
        gql(
            chub,
            "police_researcher",
            CHILD,
            {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
        )
    )
    past = seen["child"]["previouslyAccessedBy"]
    assert 0 < len(past) <= 25
    assert past[0] == {
        "at": past[0]["at"],
        "agency": "health",
        "team": "hv-team",
        "purpose": "MASH_RESEARCH",
        "staff": None,
    }
    managed = ok(
        gql(
            chub,
            "mash_manager",
            CHILD,
            {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
        )
    )
    latest = managed["child"]["previouslyAccessedBy"][0]
    assert (latest["agency"], latest["staff"]) == ("police", "demo-police_researcher")


def test_an_item_withheld_by_police_is_a_typed_redaction_for_other_agencies(chub: Hub) -> None:
    ava = find_ava(chub)
    police_view = ok(
        gql(
            chub,
            "police_researcher",
            CHILD,
            {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
        )
    )
    incidents = police_view["child"]["police"]["incidents"]
    item = next(i["id"] for i in incidents if i["__typename"] == "PoliceIncident")
    withhold = """mutation W($item: String!) { withholdItem(source: POLICE, itemId: $item,
      reasonCode: "PREJUDICE_INVESTIGATION", reason: "live operation", purpose: MASH_RESEARCH) {
      source itemId agency reasonCode withheldBy } }"""
    assert error(gql(chub, "health_practitioner", withhold, {"item": item})) == "FORBIDDEN"
    row = ok(gql(chub, "police_researcher", withhold, {"item": item}))["withholdItem"]
    try:
        assert (row["agency"], row["withheldBy"]) == ("police", "demo-police_researcher")
        assert error(gql(chub, "police_researcher", withhold, {"item": item})) == "BAD_USER_INPUT"
        council = ok(
            gql(
                chub,
                "mash_social_worker",
                CHILD,
                {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
            )
        )
        redacted = [
            i for i in council["child"]["police"]["incidents"] if i["__typename"] == "Redaction"
        ]
        assert {
            "__typename": "Redaction",
            "reason": "WITHHELD_BY_ORIGINATOR",
            "agency": "police",
        } in redacted
        own = ok(
            gql(
                chub,
                "police_researcher",
                CHILD,
                {"id": ava, "purpose": "MASH_RESEARCH", "contact": chub.contact(ava)},
            )
        )
        assert item in [i.get("id") for i in own["child"]["police"]["incidents"]]
    finally:
        run_sql(chub.database_url, f"DELETE FROM withheld_items WHERE item_id = '{item}'")


def withheld_rows(hub: Hub, item: str) -> list[tuple[str, str | None]]:
    """The stored decisions not to share this item: (agency, contact id)."""

    async def run() -> list[tuple[str, str | None]]:
        store = Store(hub.database_url)
        try:
            async with store.sessions() as session:
                rows = await session.execute(
                    select(WithheldItem.agency, WithheldItem.contact_id).where(
                        WithheldItem.item_id == item
                    )
                )
                return [(agency, cid) for agency, cid in rows]
        finally:
            await store.aclose()

    return asyncio.run(run())


WITHHOLD_FOR = """mutation W($item: String!, $contact: ID) { withholdItem(source: POLICE,
  itemId: $item, reasonCode: "RISK_TO_THIRD_PARTY", reason: "the informant would be known",
  purpose: MASH_RESEARCH, contactId: $contact) { id itemId contactId } }"""


def test_withhold_item_for_a_contact_is_refused_unless_the_researcher_works_it(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]  # in SCREENING: no police task, police not assigned
    desk = {"team": "police-desk"}  # not the MASH team the contact is assigned to
    unknown = str(uuid.uuid4())
    item = f"incident-{uuid.uuid4().hex[:8]}"

    refused = gql(chub, "police_researcher", WITHHOLD_FOR, {"item": item, "contact": cid}, **desk)
    assert error(refused) == "FORBIDDEN"
    assert "not yours" in refused.json()["errors"][0]["message"]
    for bad in (unknown, "not-a-contact"):
        missing = gql(
            chub, "police_researcher", WITHHOLD_FOR, {"item": item, "contact": bad}, **desk
        )
        assert error(missing) == "NOT_FOUND"
        assert bad not in json.dumps(missing.json()["errors"])
    # another agency's practitioner is refused before the contact is looked at
    health = gql(chub, "health_practitioner", WITHHOLD_FOR, {"item": item, "contact": cid})
    assert error(health) == "FORBIDDEN"
    assert withheld_rows(chub, item) == []  # nothing stored

    # once the contact is in RESEARCH the police researcher works it (the police task)
    stage = {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"}
    ok(gql(chub, "mash_social_worker", ADVANCE, stage))
    row = ok(gql(chub, "police_researcher", WITHHOLD_FOR, {"item": item, "contact": cid}, **desk))
    assert (row["withholdItem"]["itemId"], row["withholdItem"]["contactId"]) == (item, cid)
    assert withheld_rows(chub, item) == [("police", cid)]

    # without a contact the decision is stored with none
    bare = f"incident-{uuid.uuid4().hex[:8]}"
    row = ok(gql(chub, "police_researcher", WITHHOLD_FOR, {"item": bare}, **desk))
    assert row["withholdItem"]["contactId"] is None
    assert withheld_rows(chub, bare) == [("police", None)]


# --- who sees a contact (DOMAIN.md §3 rule 2) -----------------------------------------

QUEUE_FIELDS = {"id", "receivedAt", "stage", "rag", "dueAt", "overdue", "assignedTeams"}
OTHER_TEAM = EAST
POLICE_DESK = {"team": "police-desk", "sub": "pc-desk"}  # police, not assigned
EVERYTHING = """
  id receivedAt stage rag dueAt overdue assignedTeams concern childIds assignedStaff createdBy
  childDetails { givenName familyName dateOfBirth postcode }
  referrer { type anonymous name contactDetails redactedFields { field reason } }
  researchTasks { agency status summary updatedBy }
  consent { state givenBy } consentHistory { state givenBy }
  overrides { authorisedBy reasonCode justification }
  decision { outcome reasons }
  strategyDiscussion { heldAt parentsTold reason recordedBy recordedAt }
  stageHistory { fromStage toStage by }
  redactedFields { field reason }
"""
READ_ALL = f"""query ReadAll($id: ID!, $purpose: Purpose!) {{
  contact(id: $id, purpose: $purpose) {{ {EVERYTHING} }} }}"""
LIST_ALL = f"""query ListAll($filters: ContactFilters) {{
  contacts(purpose: MASH_SCREENING, filters: $filters, first: 200) {{ {EVERYTHING} }} }}"""
STRATEGY = """mutation Strategy($id: ID!, $purpose: Purpose!, $input: StrategyDiscussionInput!) {
  recordStrategyDiscussion(id: $id, purpose: $purpose, input: $input) {
    stage strategyDiscussion { heldAt parentsTold reason recordedBy recordedAt } } }"""
SECTIONS = """query Sections($id: ID!, $purpose: Purpose!, $contact: ID) {
  child(id: $id, purpose: $purpose, contactId: $contact) {
    health { __typename ... on Redaction { reason agency knownToAgency } }
    adultSocialCare { __typename ... on Redaction { reason agency } }
    police { __typename ... on Redaction { reason agency } } } }"""


def contact_fields(hub: Hub) -> set[str]:
    """Every field of the Contact type, as the live schema says."""
    query = '{ __type(name: "Contact") { fields { name } } }'
    return {f["name"] for f in ok(gql(hub, "mash_social_worker", query))["__type"]["fields"]}


def audit_event(hub: Hub, response: httpx.Response) -> dict[str, Any]:
    """The audit event the response names, as stored."""

    async def run() -> dict[str, Any]:
        store = Store(hub.database_url)
        try:
            async with store.sessions() as session:
                row = (
                    await session.execute(
                        select(AuditEvent).where(
                            AuditEvent.event_id == response.headers["x-audit-event-id"]
                        )
                    )
                ).scalar_one()
                return {c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns}
        finally:
            await store.aclose()

    return asyncio.run(run())


def anonymous_contact(hub: Hub, child: str) -> str:
    """A contact about `child` from an anonymous member of the public who left a name and a
    phone number, taken by the default MASH team's social worker."""
    return str(
        create_for(
            hub,
            child,
            type="PUBLIC",
            anonymous=True,
            name="Pat Caller",
            contactDetails="07700900123",
        )["id"]
    )


def test_contact_shows_another_teams_social_worker_only_the_queue_when_they_do_not_work_it(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = anonymous_contact(chub, ava)

    response = gql(
        chub, "mash_social_worker", READ_ALL, {"id": cid, "purpose": "MASH_SCREENING"}, **OTHER_TEAM
    )
    seen = ok(response)["contact"]
    assert (seen["id"], seen["stage"], seen["rag"], seen["assignedTeams"]) == (
        cid,
        "SCREENING",
        "RED",
        ["mash-team"],
    )
    assert seen["dueAt"] and seen["receivedAt"] and seen["overdue"] is False
    detail = contact_fields(chub) - QUEUE_FIELDS - {"redactedFields"}
    assert "concern" in detail and "referrer" in detail and "childIds" in detail
    assert {k for k, v in seen.items() if v is not None} == QUEUE_FIELDS | {"redactedFields"}
    assert sorted(r["field"] for r in seen["redactedFields"]) == sorted(detail)
    assert {r["reason"] for r in seen["redactedFields"]} == {"NO_RELATIONSHIP"}
    for secret in ("Pat Caller", "07700900123", "disclosed", ava):
        assert secret not in response.text
    event = audit_event(chub, response)
    assert (event["outcome"], event["contact_id"], event["purpose"]) == (
        "redacted",
        cid,
        "MASH_SCREENING",
    )
    redacted = {r["path"]: r["reason"] for r in event["fields_redacted"]}
    assert redacted["contact.concern"] == redacted["contact.referrer"] == "NO_RELATIONSHIP"
    assert "contact.concern" not in event["fields_returned"]

    # the list shows it the same way, and a child filter does not find what it does not show
    listed = ok(
        gql(chub, "mash_social_worker", LIST_ALL, {"filters": {"stage": "SCREENING"}}, **OTHER_TEAM)
    )
    [entry] = [c for c in listed["contacts"] if c["id"] == cid]
    assert entry == seen
    by_child = ok(
        gql(chub, "mash_social_worker", LIST_ALL, {"filters": {"childId": ava}}, **OTHER_TEAM)
    )
    assert cid not in [c["id"] for c in by_child["contacts"]]


def test_contact_is_refused_to_a_police_researcher_when_police_have_no_task_on_it(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = anonymous_contact(chub, ava)  # in SCREENING: no research task yet
    refused = gql(
        chub, "police_researcher", READ_ALL, {"id": cid, "purpose": "MASH_RESEARCH"}, **POLICE_DESK
    )
    assert error(refused) == "FORBIDDEN"
    assert refused.json()["data"] is None
    assert "Pat Caller" not in refused.text
    event = audit_event(chub, refused)
    assert (event["outcome"], event["error_code"], event["contact_id"]) == (
        "denied",
        "FORBIDDEN",
        cid,
    )
    listed = gql(
        chub, "police_researcher", LIST_ALL, {"filters": {"stage": "SCREENING"}}, **POLICE_DESK
    )
    assert cid not in [c["id"] for c in ok(listed)["contacts"]]
    assert "Pat Caller" not in listed.text


def test_contact_shows_everything_to_those_who_work_it_with_the_anonymous_referrer_kept(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = anonymous_contact(chub, ava)
    # the social worker whose team it is assigned to
    own = ok(gql(chub, "mash_social_worker", READ_ALL, {"id": cid, "purpose": "MASH_SCREENING"}))[
        "contact"
    ]
    assert own["redactedFields"] == []
    assert (own["concern"], own["childIds"], own["referrer"]["name"]) == (
        "Ava disclosed that her mother's partner hit her mother",
        [ava],
        "Pat Caller",
    )
    # a MASH manager on another team works every contact
    boss = ok(
        gql(chub, "mash_manager", READ_ALL, {"id": cid, "purpose": "MASH_SCREENING"}, **OTHER_TEAM)
    )
    assert boss["contact"]["redactedFields"] == [] and boss["contact"]["childIds"] == [ava]
    # the police, once research gives them a task: all of it but who the caller was (rule 12)
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    police = gql(
        chub, "police_researcher", READ_ALL, {"id": cid, "purpose": "MASH_RESEARCH"}, **POLICE_DESK
    )
    seen = ok(police)["contact"]
    assert seen["redactedFields"] == [] and seen["concern"] and seen["childIds"] == [ava]
    assert seen["referrer"]["name"] is None and seen["referrer"]["contactDetails"] is None
    assert "Pat Caller" not in police.text and "07700900123" not in police.text
    assert [t["agency"] for t in seen["researchTasks"]] == sorted(svc.AGENCIES)


def test_contact_changes_by_someone_who_does_not_work_it_are_refused_and_change_nothing(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    research = {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"}
    task = {"id": cid, "agency": "police", "status": "COMPLETED", "purpose": "MASH_RESEARCH"}
    attempts = [
        ("mash_social_worker", ADVANCE, research, OTHER_TEAM),
        ("mash_social_worker", CONSENT, {"id": cid, "state": "GIVEN", "by": "mother"}, OTHER_TEAM),
        ("mash_social_worker", TASK, task, OTHER_TEAM),
        ("police_researcher", TASK, task, POLICE_DESK),
    ]
    for role, mutation, variables, claims in attempts:
        refused = gql(chub, role, mutation, variables, **claims)
        assert error(refused) == "FORBIDDEN", (role, mutation)
        assert refused.json()["data"] is None
        event = audit_event(chub, refused)
        assert (event["outcome"], event["contact_id"]) == ("denied", cid)
    unchanged = ok(
        gql(chub, "mash_social_worker", READ_ALL, {"id": cid, "purpose": "MASH_SCREENING"})
    )
    contact = unchanged["contact"]
    assert (contact["stage"], contact["consent"], contact["consentHistory"]) == (
        "SCREENING",
        None,
        [],
    )
    assert contact["researchTasks"] == [] and len(contact["stageHistory"]) == 1

    # a manager allocates any contact: the other team then works it
    assign = """mutation Assign($id: ID!) { assignContact(id: $id, purpose: MASH_SCREENING,
      teams: ["council-east-mash"]) { assignedTeams redactedFields { field } } }"""
    allocated = ok(gql(chub, "mash_manager", assign, {"id": cid}, **OTHER_TEAM))["assignContact"]
    assert allocated == {"assignedTeams": ["council-east-mash"], "redactedFields": []}
    moved = ok(gql(chub, "mash_social_worker", ADVANCE, research, **OTHER_TEAM))
    assert moved["advanceContact"]["stage"] == "RESEARCH"
    # and the team it was taken from now sees only the queue
    old = ok(gql(chub, "mash_social_worker", READ_ALL, {"id": cid, "purpose": "MASH_RESEARCH"}))
    assert old["contact"]["concern"] is None and old["contact"]["stage"] == "RESEARCH"


# --- purposes are claims checked against recorded facts (rule 3) ----------------------


def health_of(hub: Hub, role: str, child: str, purpose: str, cid: str) -> httpx.Response:
    variables = {"id": child, "purpose": purpose, "contact": cid}
    return gql(hub, role, SECTIONS, variables, **POLICE_DESK)


def test_s47_strategy_gets_consent_required_until_a_strategy_discussion_is_recorded(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    # in research, no consent, no override, no s47 decision: the purpose alone opens nothing
    claimed = health_of(chub, "police_researcher", ava, "S47_STRATEGY", cid)
    sections = ok(claimed)["child"]
    assert sections["health"] == {
        "__typename": "Redaction",
        "reason": "CONSENT_REQUIRED",
        "agency": "health",
        "knownToAgency": True,
    }
    assert sections["adultSocialCare"]["reason"] == "CONSENT_REQUIRED"
    assert sections["police"]["__typename"] == "PoliceSection"  # its own agency's
    event = audit_event(chub, claimed)
    assert (event["purpose"], event["contact_id"], event["contact_stage"]) == (
        "S47_STRATEGY",
        cid,
        "RESEARCH",
    )
    assert {"path": "child.health", "reason": "CONSENT_REQUIRED"} in event["fields_redacted"]

    # only a manager records the s47 fact, for a strategy or threshold purpose
    reason = "DASH high; the child disclosed; Pat Caller's account"
    given = {"parentsTold": False, "reason": reason}
    as_strategy = {"id": cid, "purpose": "S47_STRATEGY", "input": given}
    assert error(gql(chub, "mash_social_worker", STRATEGY, as_strategy)) == "FORBIDDEN"
    research = {**as_strategy, "purpose": "MASH_RESEARCH"}
    assert error(gql(chub, "mash_manager", STRATEGY, research)) == "FORBIDDEN"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    future = {**as_strategy, "input": {**given, "heldAt": later}}
    assert error(gql(chub, "mash_manager", STRATEGY, future)) == "BAD_USER_INPUT"
    assert (
        ok(health_of(chub, "police_researcher", ava, "S47_STRATEGY", cid))["child"]["health"][
            "reason"
        ]
        == "CONSENT_REQUIRED"
    ), "refused attempts recorded nothing"

    recorded = gql(chub, "mash_manager", STRATEGY, as_strategy)
    discussion = ok(recorded)["recordStrategyDiscussion"]["strategyDiscussion"]
    assert (discussion["parentsTold"], discussion["recordedBy"], discussion["reason"]) == (
        False,
        "demo-mash_manager",
        reason,
    )
    assert discussion["heldAt"] == discussion["recordedAt"]
    event = audit_event(chub, recorded)
    assert (event["outcome"], event["purpose"], event["contact_id"]) == ("ok", "S47_STRATEGY", cid)
    assert event["justification"].startswith("sha256:")
    assert "Pat Caller" not in json.dumps(event, default=str)
    assert error(gql(chub, "mash_manager", STRATEGY, as_strategy)) == "BAD_USER_INPUT"  # once

    # with the fact recorded, other agencies' detail is shared without consent
    opened = ok(health_of(chub, "police_researcher", ava, "S47_STRATEGY", cid))["child"]
    assert opened["health"]["__typename"] == "HealthSection"
    assert opened["adultSocialCare"]["__typename"] == "AdultSocialCareSection"
    facts = store_facts(chub, ACTOR, "MASH_RESEARCH", cid, datetime.now(UTC))
    assert facts.strategy_discussion and facts.decision is None


def test_s47_strategy_discussion_is_refused_when_the_contact_is_not_in_research_or_decision(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    given = {"parentsTold": True, "reason": "strategy meeting held"}
    screening = gql(
        chub, "mash_manager", STRATEGY, {"id": cid, "purpose": "S47_STRATEGY", "input": given}
    )
    assert error(screening) == "BAD_USER_INPUT"
    assert "strategy meeting held" not in screening.text
    unchanged = ok(gql(chub, "mash_manager", READ_ALL, {"id": cid, "purpose": "MASH_SCREENING"}))
    assert unchanged["contact"]["strategyDiscussion"] is None


def test_threshold_decision_gets_stage_restricted_when_the_contact_is_before_the_decision_stage(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    ok(gql(chub, "mash_social_worker", CONSENT, {"id": cid, "state": "GIVEN", "by": "mother"}))
    # in research with consent: research reads the detail, a threshold-decision claim does not
    assert (
        ok(health_of(chub, "police_researcher", ava, "MASH_RESEARCH", cid))["child"]["health"][
            "__typename"
        ]
        == "HealthSection"
    )
    claimed = health_of(chub, "police_researcher", ava, "THRESHOLD_DECISION", cid)
    health = ok(claimed)["child"]["health"]
    assert (health["reason"], health["knownToAgency"]) == ("STAGE_RESTRICTED", True)
    event = audit_event(chub, claimed)
    assert (event["purpose"], event["contact_stage"]) == ("THRESHOLD_DECISION", "RESEARCH")
    assert {"path": "child.health", "reason": "STAGE_RESTRICTED"} in event["fields_redacted"]
    # at the decision stage the claim holds
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "DECISION", "purpose": "MASH_RESEARCH"},
        )
    )
    decided = ok(health_of(chub, "police_researcher", ava, "THRESHOLD_DECISION", cid))["child"]
    assert decided["health"]["__typename"] == "HealthSection"


def test_child_record_is_read_by_a_mash_manager_on_any_open_contact_but_not_by_another_team(
    chub: Hub,
) -> None:
    ava = find_ava(chub)
    cid = create_for(chub, ava)["id"]
    ok(
        gql(
            chub,
            "mash_social_worker",
            ADVANCE,
            {"id": cid, "stage": "RESEARCH", "purpose": "MASH_SCREENING"},
        )
    )
    variables = {"id": ava, "purpose": "MASH_RESEARCH", "contact": cid}
    other = ok(gql(chub, "mash_social_worker", SECTIONS, variables, **OTHER_TEAM))["child"]
    assert other["health"]["reason"] == "NO_RELATIONSHIP"
    boss = ok(gql(chub, "mash_manager", SECTIONS, variables, **OTHER_TEAM))["child"]
    assert boss["health"]["reason"] == "CONSENT_REQUIRED", "related, but no consent yet"
