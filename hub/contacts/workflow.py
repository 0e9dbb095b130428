"""MASH contacts: the enquiry a read serves, its workflow, and the facts the policies decide on.

`ContactFacts` is the interface between the contact workflow and the policy engine: the
request path loads it once per operation (`facts_for`) and the policies read its fields.

Every change to a contact is staged on the operation's `AuditNotes` (as `hub.identity.decisions`
does): it is checked first against the contact as it stands, so bad input gets a clear error
and changes nothing, then applied again inside the audit event's transaction, so the change
and its audit event commit together or neither does. Who may make a change is asked of
`policies/contacts.polar`; this module checks only that the change makes sense.

Break-glass, notifications, "previously accessed by" and decisions not to share are in
`hub.reading.oversight`; the KPIs in `hub.contacts.kpis`.

Free text (the concern, reasons, justifications, notes) is stored for the people working the
contact and never logged; errors never echo it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from graphql import GraphQLError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from adapters import declarations

from ..audit.events import AuditNotes
from ..auth.tokens import Actor
from ..identity.models import Subject
from ..reading.models import BreakGlassGrant
from ..settings import holiday_calendar
from ..store.base import RowValue
from ..store.bundle import Bundle, prepared, when
from ..store.engine import Store
from .models import (
    ConsentOverride,
    ConsentRecord,
    Contact,
    ContactSubject,
    ResearchTask,
    StageTransition,
)

STAGES = ("SCREENING", "RESEARCH", "DECISION", "CLOSED")
CONSENT_STATES = ("GIVEN", "REFUSED", "NOT_SOUGHT", "WITHDRAWN")
DECISIONS = ("NFA", "EARLY_HELP", "S17", "S47", "OPEN_CASE", "IMMEDIATE_PROTECTION")
RAGS = ("RED", "AMBER", "GREEN")
REFERRER_TYPES = (
    "PUBLIC",
    "FAMILY",
    "SCHOOL",
    "HEALTH",
    "POLICE",
    "LOCAL_AUTHORITY",
    "VOLUNTARY_SECTOR",
    "OTHER",
)
# The agencies that research a contact (one task each) and own the sources' items: each
# declared source's agency (adapters.declarations()), so a new source gets its task.
AGENCIES = tuple(dict.fromkeys(d.agency for d in declarations()))
SOURCE_AGENCY = {d.source.value: d.agency for d in declarations()}
TASK_STATUSES = ("REQUESTED", "IN_PROGRESS", "COMPLETED", "DECLINED")
TASK_DONE = ("COMPLETED", "DECLINED")
# DOMAIN.md §3 rule 6: why a manager may authorise sharing without consent.
OVERRIDE_REASONS = (
    "RISK_OF_SIGNIFICANT_HARM",
    "LOSS_OF_EVIDENCE",
    "UNDUE_DELAY",
    "CANNOT_OBTAIN",
    "WOULD_PREJUDICE_PROTECTION",
)
# Rule 15: the emergencies that justify reading a child's record without a relationship.
BREAK_GLASS_REASONS = (
    "IMMEDIATE_RISK_OF_HARM",
    "OUT_OF_HOURS_EMERGENCY",
    "MISSING_CHILD",
    "POLICE_PROTECTION",
)
# Rule 8: why an originating agency decides not to share an item.
WITHHOLD_REASONS = (
    "MORE_DETRIMENTAL_TO_CHILD",
    "PREJUDICE_INVESTIGATION",
    "RISK_TO_THIRD_PARTY",
    "NOT_PROPORTIONATE",
)
IG_OUTCOMES = ("JUSTIFIED", "NOT_JUSTIFIED", "REFERRED")
MAX_TEXT = 4000
MAX_SHORT = 200
RE_REFERRAL_WINDOW = timedelta(days=365)


class ContactError(GraphQLError):
    """An error the client is meant to see (`code` one of hub.errors.CLIENT_CODES). The
    message names fields and codes only, never what the client typed."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message, extensions={"code": code})


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What the policies need to know about the contact (if any) an operation serves.

    Attributes:
        contact_id: the contact, or None when the operation names none.
        stage: one of STAGES, or None without a contact.
        assigned: the actor works this contact (assigned staff or team, or on the MASH
            rota for their agency's research task) — DOMAIN.md §3 rule 2.
        consent: one of CONSENT_STATES, or None when nothing is recorded.
        consent_scope: agencies whose information the consent covers; empty means all.
        override: a manager's recorded decision to share without consent is active.
        decision: the threshold decision (one of DECISIONS) once recorded; "S47" lifts
            the consent requirement (rules 3 and 7).
        strategy_discussion: a manager recorded an s47 strategy discussion on the contact —
            with an s47 decision, the recorded fact that makes s47 (rule 3); the purpose a
            reader names is only a claim checked against it.
        break_glass: the actor holds an active, time-boxed break-glass grant (for the
            operation's purpose BREAK_GLASS only; for the child asked about, or for one of
            the contact's children).
        subject_ids: the hub subjects (children) the contact is about.
        break_glass_subject_ids: the children the actor's active grants cover.
        break_glass_grants: (child, grant id) of those grants, so a read under one can
            name it on its audit event (the IG review queue counts the reads by grant).
    """

    contact_id: str | None = None
    stage: str | None = None
    assigned: bool = False
    consent: str | None = None
    consent_scope: tuple[str, ...] = ()
    override: bool = False
    decision: str | None = None
    strategy_discussion: bool = False
    break_glass: bool = False
    subject_ids: tuple[str, ...] = ()
    break_glass_subject_ids: tuple[str, ...] = ()
    break_glass_grants: tuple[tuple[str, str], ...] = ()

    def grant_for(self, subject_id: str) -> str | None:
        """The active break-glass grant covering this child, if any."""
        return dict(self.break_glass_grants).get(subject_id)


NO_CONTACT = ContactFacts()


@dataclass(frozen=True)
class ContactSettings:
    """The workflow's configuration (from `hub.settings.Settings`)."""

    rag_hours: dict[str, float] = field(
        default_factory=lambda: {"RED": 2.0, "AMBER": 6.0, "GREEN": 24.0}
    )
    office_hours: tuple[int, int] = (9, 17)
    office_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    bank_holidays: str = "GB-ENG"  # see hub.settings.Settings.bank_holidays
    timezone: str = "Europe/London"
    break_glass_minutes: int = 60
    default_owning_team: str = "council-child-protection"

    @classmethod
    def of(cls, settings: Any) -> ContactSettings:
        return cls(
            rag_hours=dict(settings.rag_hours),
            office_hours=tuple(settings.office_hours),
            office_days=tuple(settings.office_days),
            bank_holidays=settings.bank_holidays,
            timezone=settings.timezone,
            break_glass_minutes=settings.break_glass_minutes,
            default_owning_team=settings.default_owning_team,
        )


# --- timescales ------------------------------------------------------------------------


@dataclass(frozen=True)
class Task(RowValue):
    """One agency's research for a contact, as the workflow hands it on."""

    id: str
    contact_id: str
    agency: str
    status: str
    requested_at: datetime
    due_at: datetime
    completed_at: datetime | None
    summary: str | None
    updated_by: str | None


@dataclass(frozen=True)
class Consent(RowValue):
    """A recorded consent fact, as the workflow hands it on."""

    seq: int | None  # None until the store has assigned it
    id: str
    contact_id: str
    state: str
    given_by: str | None
    scope: list[Any]
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Override(RowValue):
    """A manager's decision to share without consent, as the workflow hands it on."""

    seq: int | None  # None until the store has assigned it
    id: str
    contact_id: str
    authorised_by: str
    authoriser_role: str
    reason_code: str
    justification: str
    authorised_at: datetime


@dataclass(frozen=True)
class Transition(RowValue):
    """A change of a contact's stage, as the workflow hands it on."""

    seq: int | None  # None until the store has assigned it
    contact_id: str
    from_stage: str | None
    to_stage: str
    reason: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class ContactSnapshot:
    """A contact and everything about it, as the workflow hands it to the schema and the
    pages (never the ORM row): a copy, so nothing the caller does changes the contact."""

    id: str
    received_at: datetime
    concern: str
    child_details: list[Any]
    referrer_type: str
    referrer_name: str | None
    referrer_contact: str | None
    referrer_anonymous: bool
    stage: str
    rag: str
    due_at: datetime
    assigned_staff: list[Any]
    assigned_teams: list[Any]
    created_by: str
    created_by_agency: str | None
    decision: str | None
    decision_reasons: str | None
    referrer_feedback: str | None
    parents_told: bool | None
    decided_by: str | None
    decided_at: datetime | None
    strategy_held_at: datetime | None
    strategy_parents_told: bool | None
    strategy_reason: str | None
    strategy_recorded_by: str | None
    strategy_recorded_at: datetime | None
    updated_at: datetime
    child_ids: tuple[str, ...]
    tasks: tuple[Task, ...]
    consents: tuple[Consent, ...]
    overrides: tuple[Override, ...]
    transitions: tuple[Transition, ...]

    @classmethod
    def of(cls, row: Contact) -> ContactSnapshot:
        columns = {c.key: getattr(row, c.key) for c in Contact.__table__.columns}
        return cls(
            **columns,
            child_ids=tuple(s.subject_id for s in row.subjects),
            tasks=tuple(Task.of(t) for t in row.tasks),
            consents=tuple(Consent.of(c) for c in row.consents),
            overrides=tuple(Override.of(o) for o in row.overrides),
            transitions=tuple(Transition.of(t) for t in row.transitions),
        )


def add_office_hours(start: datetime, hours: float, cfg: ContactSettings) -> datetime:
    """`start` plus `hours` counted only within office hours (local wall clock; weekdays in
    `office_days` that are not bank holidays), in UTC."""
    tz = ZoneInfo(cfg.timezone)
    calendar = holiday_calendar(cfg.bank_holidays)  # a lazy dict: empty until asked
    closed = () if calendar is None else calendar
    remaining = timedelta(hours=hours)
    at = start.astimezone(tz)
    day = at.date()
    opening, closing = cfg.office_hours
    for _ in range(3660):  # ten years of days: an impossible configuration cannot spin
        if day.weekday() in cfg.office_days and day not in closed:
            day_open = datetime.combine(day, time(opening), tz)
            day_close = datetime.combine(day, time(0), tz) + timedelta(hours=closing)
            begin = max(at, day_open)
            if begin < day_close:
                if remaining <= day_close - begin:
                    return (begin + remaining).astimezone(UTC)
                remaining -= day_close - begin
        day += timedelta(days=1)
        at = datetime.combine(day, time(0), tz)
    raise ValueError("office hours never open: check office_days")


def due_time(received_at: datetime, rag: str, cfg: ContactSettings) -> datetime:
    """When a decision is due: RED on the wall clock, AMBER and GREEN in office hours."""
    hours = cfg.rag_hours[rag]
    if rag == "RED":
        return received_at + timedelta(hours=hours)
    return add_office_hours(received_at, hours, cfg)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def overdue(contact: Contact | ContactSnapshot, now: datetime) -> bool:
    """No decision yet and past its due time."""
    return contact.decided_at is None and now > as_utc(contact.due_at)


def task_overdue(task: ResearchTask | Task, now: datetime) -> bool:
    return task.status not in TASK_DONE and now > as_utc(task.due_at)


# --- input checks ----------------------------------------------------------------------


def one_of(value: str, allowed: Sequence[str], name: str) -> str:
    if value not in allowed:
        raise ContactError(f"{name} must be one of {', '.join(allowed)}")
    return value


def text(value: str | None, name: str, limit: int = MAX_TEXT, required: bool = True) -> str | None:
    """Stripped printable text within `limit`; None when optional and blank."""
    value = (value or "").strip()
    if not value:
        if required:
            raise ContactError(f"give {name}")
        return None
    if len(value) > limit:
        raise ContactError(f"{name} must be at most {limit} characters")
    if not all(ch.isprintable() or ch in "\n\t" for ch in value):
        raise ContactError(f"{name} may hold only printable text")
    return value


def contact_uuid(contact_id: str) -> str:
    try:
        return str(uuid.UUID(str(contact_id)))
    except ValueError:
        raise ContactError("no contact with this id", "NOT_FOUND") from None


def subject_uuid(subject_id: str) -> str:
    try:
        return str(uuid.UUID(str(subject_id)))
    except ValueError:
        raise ContactError("no child with this id", "NOT_FOUND") from None


# --- reading contacts ------------------------------------------------------------------


def _loaded(query: Any) -> Any:
    return query.options(
        selectinload(Contact.subjects),
        selectinload(Contact.tasks),
        selectinload(Contact.consents),
        selectinload(Contact.overrides),
        selectinload(Contact.transitions),
    )


async def get(store: Store, contact_id: str) -> Contact:
    """The contact with everything about it loaded.

    Raises:
        ContactError: NOT_FOUND when there is no such contact.
    """
    cid = contact_uuid(contact_id)
    async with store.sessions() as session:
        row = (await session.execute(_loaded(select(Contact).where(Contact.id == cid)))).scalar()
    if row is None:
        raise ContactError("no contact with this id", "NOT_FOUND")
    return row  # type: ignore[no-any-return]


async def read(store: Store, contact_id: str) -> ContactSnapshot:
    """The contact with everything about it (see `get`), as a value.

    Raises:
        ContactError: NOT_FOUND when there is no such contact.
    """
    return ContactSnapshot.of(await get(store, contact_id))


@dataclass(frozen=True)
class ContactFilter:
    stage: str | None = None
    rag: str | None = None
    child_id: str | None = None
    overdue: bool | None = None
    assigned_team: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


async def find(
    store: Store, filters: ContactFilter, now: datetime, limit: int = 100
) -> list[ContactSnapshot]:
    """Contacts matching every filter, newest first."""
    query = select(Contact)
    if filters.stage:
        query = query.where(Contact.stage == one_of(filters.stage, STAGES, "stage"))
    if filters.rag:
        query = query.where(Contact.rag == one_of(filters.rag, RAGS, "rag"))
    if filters.child_id:
        query = query.where(
            Contact.id.in_(
                select(ContactSubject.contact_id).where(
                    ContactSubject.subject_id == subject_uuid(filters.child_id)
                )
            )
        )
    if filters.received_from:
        query = query.where(Contact.received_at >= as_utc(filters.received_from))
    if filters.received_to:
        query = query.where(Contact.received_at < as_utc(filters.received_to))
    if filters.overdue is not None:
        late = (Contact.decided_at.is_(None)) & (Contact.due_at < now)
        query = query.where(late if filters.overdue else ~late)
    query = query.order_by(Contact.received_at.desc(), Contact.id)
    if not filters.assigned_team:  # a JSON list: filtered below, on every backend alike
        query = query.limit(limit)
    async with store.sessions() as session:
        rows = list((await session.execute(_loaded(query))).scalars())
    if filters.assigned_team:
        rows = [r for r in rows if filters.assigned_team in r.assigned_teams]
    return [ContactSnapshot.of(r) for r in rows[:limit]]


def latest_consent(contact: Contact | ContactSnapshot) -> ConsentRecord | Consent | None:
    return contact.consents[-1] if contact.consents else None


# --- facts for the policies ------------------------------------------------------------


async def active_grants(store: Store, actor: Actor, now: datetime) -> dict[str, str]:
    """The children the actor's unexpired break-glass grants cover, each with its newest
    grant's id."""
    async with store.sessions() as session:
        rows = await session.execute(
            select(BreakGlassGrant.subject_id, BreakGlassGrant.id)
            .where(
                BreakGlassGrant.actor_subject == actor.subject,
                BreakGlassGrant.actor_issuer == actor.issuer,
                BreakGlassGrant.expires_at > now,
                BreakGlassGrant.granted_at <= now,
            )
            .order_by(BreakGlassGrant.granted_at, BreakGlassGrant.id)
        )
        newest = {child: grant for child, grant in rows}
        return dict(sorted(newest.items()))


async def facts_for(
    store: Store,
    actor: Actor,
    purpose: str,
    contact_id: str | None,
    now: datetime,
    subject_id: str | None = None,
) -> ContactFacts:
    """`load_facts` in a session of its own."""
    async with store.sessions() as session:
        return await load_facts(session, actor, purpose, contact_id, now, subject_id)


def _facts(ask: Bundle, glass: bool, contact: bool) -> None:
    """The statement of `load_facts`, built once per shape: the actor's break-glass grants
    (`subject`, `issuer`, `now`) and the contact's facts (`cid`)."""
    if glass:
        ask.add(
            "grants",
            {
                "subject_id": BreakGlassGrant.subject_id,
                "id": BreakGlassGrant.id,
                "granted_at": BreakGlassGrant.granted_at,
            },
            BreakGlassGrant.actor_subject == bindparam("subject"),
            BreakGlassGrant.actor_issuer == bindparam("issuer"),
            BreakGlassGrant.expires_at > bindparam("now"),
            BreakGlassGrant.granted_at <= bindparam("now"),
        )
    if contact:
        ask.add(
            "contact",
            {
                "id": Contact.id,
                "stage": Contact.stage,
                "assigned_staff": Contact.assigned_staff,
                "assigned_teams": Contact.assigned_teams,
                "decision": Contact.decision,
                "strategy_held_at": Contact.strategy_held_at,
            },
            Contact.id == bindparam("cid"),
        )
        ask.add(
            "subjects",
            {"id": ContactSubject.subject_id},
            ContactSubject.contact_id == bindparam("cid"),
        )
        ask.add(
            "tasks", {"agency": ResearchTask.agency}, ResearchTask.contact_id == bindparam("cid")
        )
        ask.add(
            "consent",
            {"state": ConsentRecord.state, "scope": ConsentRecord.scope},
            ConsentRecord.contact_id == bindparam("cid"),
            order_by=(ConsentRecord.seq.desc(),),
            limit=1,
        )
        ask.add(
            "overrides",
            {"seq": ConsentOverride.seq},
            ConsentOverride.contact_id == bindparam("cid"),
            limit=1,
        )


async def load_facts(
    session: AsyncSession,
    actor: Actor,
    purpose: str,
    contact_id: str | None,
    now: datetime,
    subject_id: str | None = None,
) -> ContactFacts:
    """The facts about `contact_id` as they stand at `now`, from the actor's point of view,
    in one statement (the contact, its children, research tasks, latest consent, whether
    consent is overridden, and the actor's break-glass grants).

    `subject_id` (optional) is the child being read: a break-glass grant then counts only
    if it covers that child.

    Raises:
        ContactError: NOT_FOUND when `contact_id` names no contact.
    """
    cid = contact_uuid(contact_id) if contact_id is not None else None
    glass = purpose == "BREAK_GLASS"
    shape = ("contacts.facts", glass, cid is not None)
    ask = prepared(session, shape, lambda bundle: _facts(bundle, glass, cid is not None))
    params: dict[str, Any] = {"cid": cid} if cid is not None else {}
    if glass:
        params |= {"subject": actor.subject, "issuer": actor.issuer, "now": now}
    found = await ask.fetch(session, **params)
    # each child's newest grant (the latest granted, then the greatest id)
    newest = {
        g["subject_id"]: g["id"]
        for g in sorted(found.get("grants", []), key=lambda g: (when(g["granted_at"]), g["id"]))
    }
    held = dict(sorted(newest.items()))
    grants, by_child = tuple(held), tuple(held.items())
    if cid is None:
        glass = bool(grants) if subject_id is None else subject_id in grants
        return ContactFacts(
            break_glass=glass, break_glass_subject_ids=grants, break_glass_grants=by_child
        )
    if not found["contact"]:
        raise ContactError("no contact with this id", "NOT_FOUND")
    contact = found["contact"][0]
    subjects = tuple(sorted(s["id"] for s in found["subjects"]))
    wanted = {subject_id} if subject_id else set(subjects)
    consent = found["consent"][0] if found["consent"] else None
    assigned = (
        actor.subject in (contact["assigned_staff"] or ())
        or (actor.team is not None and actor.team in (contact["assigned_teams"] or ()))
        or any(t["agency"] == actor.agency for t in found["tasks"])
    )
    return ContactFacts(
        contact_id=contact["id"],
        stage=contact["stage"],
        assigned=assigned,
        consent=consent["state"] if consent else None,
        consent_scope=tuple(consent["scope"] or ()) if consent else (),
        override=bool(found["overrides"]),
        decision=contact["decision"],
        strategy_discussion=contact["strategy_held_at"] is not None,
        break_glass=bool(wanted & set(grants)),
        subject_ids=subjects,
        break_glass_subject_ids=grants,
        break_glass_grants=by_child,
    )


def works_on(contact: ContactSnapshot, actor: Actor) -> bool:
    """Assigned by name or team, or of an agency with a research task on the contact: the
    actor's relationship to it, as a fact (`load_facts` asks the same of its rows). Who
    else works every contact (MASH managers) and what each relationship sees is the
    policies' (contacts.polar `works_contact`)."""
    return (
        actor.subject in contact.assigned_staff
        or (actor.team is not None and actor.team in contact.assigned_teams)
        or any(t.agency == actor.agency for t in contact.tasks)
    )


# --- changing contacts -----------------------------------------------------------------

Change = Callable[[Contact], None]


def _stage_change(notes: AuditNotes, contact_id: str, change: Change) -> None:
    async def write(session: AsyncSession) -> None:
        # Changes to one contact take turns (a row lock on PostgreSQL; SQLite's writers take
        # turns anyway); the change is checked again against the contact as it now stands.
        row = (
            await session.execute(
                _loaded(select(Contact).where(Contact.id == contact_id)).with_for_update()
            )
        ).scalar_one()
        try:
            change(row)
        except ContactError as exc:  # it passed against the contact the request read
            raise ContactError(
                f"the contact changed while this request was made ({exc.message}); "
                "reload it and try again",
                "CONFLICT",
            ) from None
        await session.flush()

    notes.staged(write)


def describe(notes: AuditNotes, contact: ContactSnapshot) -> None:
    """Name the contact, its stage and its children on the audit event."""
    notes.contact(contact.id)
    notes.stage(contact.stage)
    for subject_id in contact.child_ids:
        notes.subject(subject_id, "child")


async def change(
    store: Store, notes: AuditNotes, contact_id: str, apply: Change
) -> ContactSnapshot:
    """Check `apply` against the contact as it stands (raising ContactError on bad input,
    nothing changed), then stage it to commit with the audit event. Returns the contact as
    the change leaves it."""
    contact = await get(store, contact_id)
    describe(notes, ContactSnapshot.of(contact))
    apply(contact)
    _stage_change(notes, contact.id, apply)
    notes.stage(contact.stage)
    return ContactSnapshot.of(contact)


@dataclass(frozen=True)
class NewContact:
    concern: str
    rag: str
    referrer_type: str
    referrer_anonymous: bool = False
    referrer_name: str | None = None
    referrer_contact: str | None = None
    child_ids: tuple[str, ...] = ()
    child_details: tuple[dict[str, Any], ...] = ()
    received_at: datetime | None = None


async def create(
    store: Store,
    notes: AuditNotes,
    actor: Actor,
    new: NewContact,
    now: datetime,
    cfg: ContactSettings,
) -> ContactSnapshot:
    """A contact in SCREENING, due by its RAG timescale from when it was received."""
    concern = text(new.concern, "a concern")
    rag = one_of(new.rag, RAGS, "rag")
    referrer_type = one_of(new.referrer_type, REFERRER_TYPES, "referrer.type")
    if new.referrer_anonymous and referrer_type != "PUBLIC":
        raise ContactError("only a member of the public (referrer.type PUBLIC) may be anonymous")
    name = text(new.referrer_name, "referrer.name", MAX_SHORT, required=False)
    reach = text(new.referrer_contact, "referrer.contactDetails", MAX_SHORT, required=False)
    details = [{k: v for k, v in d.items() if v} for d in new.child_details]
    details = [d for d in details if d]
    if not new.child_ids and not details:
        raise ContactError("give the child: childIds or child details")
    child_ids = sorted({subject_uuid(c) for c in new.child_ids})
    received = as_utc(new.received_at) if new.received_at else now
    if received > now:
        raise ContactError("receivedAt cannot be in the future")
    if received < now - RE_REFERRAL_WINDOW:
        raise ContactError("receivedAt must be within the last 12 months")
    if child_ids:
        async with store.sessions() as session:
            known = set(
                (
                    await session.execute(select(Subject.id).where(Subject.id.in_(child_ids)))
                ).scalars()
            )
        if set(child_ids) - known:
            raise ContactError("no child with this id", "NOT_FOUND")
    contact = Contact(
        id=str(uuid.uuid4()),
        received_at=received,
        concern=concern,
        child_details=details,
        referrer_type=referrer_type,
        referrer_name=name,
        referrer_contact=reach,
        referrer_anonymous=new.referrer_anonymous,
        stage="SCREENING",
        rag=rag,
        due_at=due_time(received, rag, cfg),
        assigned_staff=[actor.subject],
        assigned_teams=[actor.team] if actor.team else [],
        created_by=actor.subject,
        created_by_agency=actor.agency,
        updated_at=now,
    )
    contact.subjects = [ContactSubject(contact_id=contact.id, subject_id=s) for s in child_ids]
    contact.tasks, contact.consents, contact.overrides = [], [], []
    contact.transitions = [
        StageTransition(contact_id=contact.id, to_stage="SCREENING", by=actor.subject, at=now)
    ]

    async def write(session: AsyncSession) -> None:
        session.add(contact)
        await session.flush()

    notes.staged(write)
    created = ContactSnapshot.of(contact)
    describe(notes, created)
    return created


def advance(to: str, reason: str | None, actor: Actor, now: datetime, may_reopen: bool) -> Change:
    """Move one stage forward, or back with a reason (managers only); never skip, never
    leave CLOSED. Entering RESEARCH opens one research task per agency; CLOSED needs a
    decision."""
    one_of(to, STAGES, "stage")
    note = text(reason, "a reason", required=False)

    def apply(c: Contact) -> None:
        here, there = STAGES.index(c.stage), STAGES.index(to)
        if c.stage == "CLOSED":
            raise ContactError("a closed contact cannot change stage")
        if there == here + 1:
            if to == "CLOSED" and c.decision is None:
                raise ContactError("record a decision before closing the contact")
        elif there < here:
            if not may_reopen:
                raise ContactError("moving a contact back needs a MASH manager", code="FORBIDDEN")
            if note is None:
                raise ContactError("give a reason for moving the contact back")
        else:
            raise ContactError(f"a contact in {c.stage} can move to {_next(c.stage)} only")
        if to == "RESEARCH":
            open_tasks(c, now, AGENCIES)
        c.transitions.append(
            StageTransition(
                contact_id=c.id,
                from_stage=c.stage,
                to_stage=to,
                reason=note,
                by=actor.subject,
                at=now,
            )
        )
        c.stage, c.updated_at = to, now

    return apply


def _next(stage: str) -> str:
    return STAGES[min(STAGES.index(stage) + 1, len(STAGES) - 1)]


def _ids(contact_id: str, agency: str) -> str:
    """A research task's id: one per (contact, agency), the same on every attempt."""
    return str(uuid.uuid5(uuid.UUID(contact_id), agency))


def open_tasks(c: Contact, now: datetime, agencies: Iterable[str]) -> None:
    have = {t.agency for t in c.tasks}
    for agency in agencies:
        if agency not in have:
            c.tasks.append(
                ResearchTask(
                    id=_ids(c.id, agency),
                    contact_id=c.id,
                    agency=agency,
                    status="REQUESTED",
                    requested_at=now,
                    due_at=max(as_utc(c.due_at), as_utc(now)),
                )
            )


def assign(staff: Sequence[str], teams: Sequence[str], now: datetime) -> Change:
    staff_ = [text(s, "assignedStaff", MAX_SHORT) or "" for s in staff]
    teams_ = [text(t, "assignedTeams", MAX_SHORT) or "" for t in teams]
    if not staff_ and not teams_:
        raise ContactError("assign at least one member of staff or team")

    def apply(c: Contact) -> None:
        if c.stage == "CLOSED":
            raise ContactError("a closed contact cannot be reassigned")
        c.assigned_staff = sorted(set(staff_))
        c.assigned_teams = sorted(set(teams_))
        c.updated_at = now

    return apply


def record_consent(
    state: str,
    given_by: str | None,
    scope: Sequence[str],
    actor: Actor,
    now: datetime,
    record_id: str,
) -> Change:
    one_of(state, CONSENT_STATES, "consent state")
    who = text(given_by, "givenBy", MAX_SHORT, required=state in ("GIVEN", "REFUSED", "WITHDRAWN"))
    agencies = sorted({one_of(a, AGENCIES, "scope") for a in scope})

    def apply(c: Contact) -> None:
        if c.stage == "CLOSED":
            raise ContactError("a closed contact's consent cannot change")
        c.consents.append(
            ConsentRecord(
                id=record_id,
                contact_id=c.id,
                state=state,
                given_by=who,
                scope=agencies,
                recorded_by=actor.subject,
                recorded_at=now,
            )
        )
        c.updated_at = now

    return apply


def override_consent(
    reason_code: str, justification: str, actor: Actor, now: datetime, override_id: str
) -> Change:
    one_of(reason_code, OVERRIDE_REASONS, "reasonCode")
    why = text(justification, "a justification")

    def apply(c: Contact) -> None:
        if c.stage == "CLOSED":
            raise ContactError("a closed contact cannot be overridden")
        c.overrides.append(
            ConsentOverride(
                id=override_id,
                contact_id=c.id,
                authorised_by=actor.subject,
                authoriser_role="mash_manager",
                reason_code=reason_code,
                justification=why or "",
                authorised_at=now,
            )
        )
        c.updated_at = now

    return apply


def update_task(
    agency: str, status: str, summary: str | None, actor: Actor, now: datetime
) -> Change:
    one_of(agency, AGENCIES, "agency")
    one_of(status, TASK_STATUSES, "status")
    note = text(summary, "summary", required=False)

    def apply(c: Contact) -> None:
        if c.stage not in ("RESEARCH", "DECISION"):
            raise ContactError("research tasks are worked in the RESEARCH and DECISION stages")
        task = next((t for t in c.tasks if t.agency == agency), None)
        if task is None:
            open_tasks(c, now, [agency])
            task = c.tasks[-1]
        if task.status in TASK_DONE and status not in TASK_DONE:
            raise ContactError("a finished research task cannot be reopened")
        task.status, task.updated_by = status, actor.subject
        if note is not None:
            task.summary = note
        if status in TASK_DONE and task.completed_at is None:
            task.completed_at = now
        c.updated_at = now

    return apply


def record_decision(
    outcome: str,
    reasons: str,
    feedback: str | None,
    parents_told: bool | None,
    actor: Actor,
    now: datetime,
) -> Change:
    one_of(outcome, DECISIONS, "decision")
    why = text(reasons, "reasons")
    said = text(feedback, "referrerFeedback", required=False)
    if outcome == "S47" and parents_told is None:
        raise ContactError("an S47 decision records whether the parents were told (parentsTold)")

    def apply(c: Contact) -> None:
        if c.stage != "DECISION":
            raise ContactError("move the contact to DECISION before recording a decision")
        if c.decision is not None:
            raise ContactError("this contact already has a decision")
        c.decision, c.decision_reasons, c.referrer_feedback = outcome, why, said
        c.parents_told = parents_told if outcome == "S47" else None
        c.decided_by, c.decided_at, c.updated_at = actor.subject, now, now

    return apply


# Rule 3: at s47 consent is not needed; the parents being told is recorded either way.
STRATEGY_STAGES = ("RESEARCH", "DECISION")


def record_strategy_discussion(
    held_at: datetime | None, parents_told: bool, reason: str, actor: Actor, now: datetime
) -> Change:
    """A manager's record of an s47 strategy discussion, once per contact, in RESEARCH or
    DECISION: when it was held (default now, never in the future), whether the parents were
    told, and why (free text, stored for those who work the contact and never logged)."""
    why = text(reason, "a reason")
    held = as_utc(held_at) if held_at else now
    if held > now:
        raise ContactError("heldAt cannot be in the future")

    def apply(c: Contact) -> None:
        if c.stage not in STRATEGY_STAGES:
            raise ContactError("record a strategy discussion in the RESEARCH or DECISION stage")
        if c.strategy_held_at is not None:
            raise ContactError("this contact already has a strategy discussion recorded")
        if held < as_utc(c.received_at):
            raise ContactError("heldAt cannot be before the contact was received")
        c.strategy_held_at, c.strategy_parents_told, c.strategy_reason = held, parents_told, why
        c.strategy_recorded_by, c.strategy_recorded_at, c.updated_at = actor.subject, now, now

    return apply
