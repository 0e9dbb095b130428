"""The hub store: identity subjects, analysts' link decisions and the audit log (SQLAlchemy 2,
async).

SQLite in the data folder by default, PostgreSQL in production. Schema changes go through
the Alembic migrations in `hub/store/migrations`; `migrate()` applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_EVENT_PK = BigInteger().with_variant(Integer(), "sqlite")


class Subject(Base):
    """A person the hub has resolved (a child or a household member) and the keys to find
    them again in each source. The demographics are search keys, never shown from here."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    identity_key: Mapped[str] = mapped_column(String(64), unique=True)
    demographic_key: Mapped[str] = mapped_column(String(64), index=True)
    nhs_number: Mapped[str | None] = mapped_column(String(10), index=True)
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(10))
    postcodes: Mapped[list[Any]] = mapped_column(default=list)
    address_key: Mapped[str | None] = mapped_column(String(200))
    # The home's property reference where the best-identified record carries one (0008).
    uprn: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# A later decision on the same pair supersedes the earlier one: at most one is active.
_ACTIVE = text("superseded_at IS NULL")


class LinkDecision(Base):
    """An analyst's decision that a source record is (CONFIRMED) or is not (REJECTED) the
    subject. `reason` is the analyst's note: stored, shown to readers, never logged."""

    __tablename__ = "link_decisions"
    __table_args__ = (
        Index("ix_link_decisions_subject", "subject_id"),
        Index(
            "ux_link_decisions_active",
            "subject_id",
            "source",
            "source_record_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), ForeignKey("subjects.id"))
    source: Mapped[str] = mapped_column(String(30))
    source_record_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500))
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_by_agency: Mapped[str | None] = mapped_column(String(50))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contact_id: Mapped[str | None] = mapped_column(String(64))


class HouseholdDecision(Base):
    """An analyst's decision that a resident of the child's large shared address (a hostel,
    a block recorded without flat numbers) is (CONFIRMED) or is not (REJECTED) of the child's
    household. Until one confirms, such residents are not household members. A later
    decision on the same pair supersedes the earlier one. `reason`: stored, never logged."""

    __tablename__ = "household_decisions"
    __table_args__ = (
        Index("ix_household_decisions_subject", "subject_id"),
        Index(
            "ux_household_decisions_active",
            "subject_id",
            "resident_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), ForeignKey("subjects.id"))
    resident_id: Mapped[str] = mapped_column(String(36), ForeignKey("subjects.id"))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500))
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_by_agency: Mapped[str | None] = mapped_column(String(50))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    contact_id: Mapped[str | None] = mapped_column(String(64))


class LinkReview(Base):
    """A review-band candidate: a source record the scorer could not decide for the subject,
    waiting for an analyst (the review queue lists those with no active decision)."""

    __tablename__ = "link_reviews"
    __table_args__ = (
        UniqueConstraint("subject_id", "source", "source_record_id", name="uq_link_reviews_pair"),
    )

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(36), ForeignKey("subjects.id"))
    source: Mapped[str] = mapped_column(String(30))
    source_record_id: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[list[Any]] = mapped_column(default=list)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """One GraphQL operation. Holds identifiers and field paths, never returned values."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_police", "police_consulted", "occurred_at"),)

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor_subject: Mapped[str | None] = mapped_column(String(200), index=True)
    actor_issuer: Mapped[str | None] = mapped_column(String(300))
    actor_roles: Mapped[list[Any]] = mapped_column(default=list)
    actor_agency: Mapped[str | None] = mapped_column(String(50))
    actor_team: Mapped[str | None] = mapped_column(String(100))
    client: Mapped[str | None] = mapped_column(String(200))
    # The partner system `client` names (its configured name), and whether a person or the
    # system itself (a client-credentials token) asked: "person" or "machine".
    client_system: Mapped[str | None] = mapped_column(String(200))
    actor_kind: Mapped[str | None] = mapped_column(String(10))
    purpose: Mapped[str | None] = mapped_column(String(40))
    contact_id: Mapped[str | None] = mapped_column(String(64))
    operation_type: Mapped[str | None] = mapped_column(String(20))
    operation_name: Mapped[str | None] = mapped_column(String(200))
    query_hash: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    error_code: Mapped[str | None] = mapped_column(String(50))
    subjects: Mapped[list[Any]] = mapped_column(default=list)
    sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fields_returned: Mapped[list[Any]] = mapped_column(default=list)
    fields_redacted: Mapped[list[Any]] = mapped_column(default=list)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    contact_stage: Mapped[str | None] = mapped_column(String(20))
    justification: Mapped[str | None] = mapped_column(String(1000))
    break_glass: Mapped[dict[str, Any] | None] = mapped_column()
    consent_override: Mapped[dict[str, Any] | None] = mapped_column()
    # Per record class: released or withheld, the reason, the fields hidden, how many.
    policy_decisions: Mapped[list[Any]] = mapped_column(default=list)
    # Schema fields at the operation's root (e.g. "child", "searchChildren"): unlike the
    # operation name, not free text.
    root_fields: Mapped[list[Any]] = mapped_column(default=list)
    # DPA 2018 s62: the operation consulted police-originated data.
    police_consulted: Mapped[bool] = mapped_column(default=False)
    # An IG report read: its name and parameters (ids and dates, never names).
    report: Mapped[dict[str, Any] | None] = mapped_column()
    # The OpenTelemetry trace of the request (32 hex digits), to follow it in the traces.
    trace_id: Mapped[str | None] = mapped_column(String(32))


class AuditSubject(Base):
    """One entry per data subject of an event, so "who saw this child" is an index lookup."""

    __tablename__ = "audit_subjects"
    __table_args__ = (Index("ix_audit_subjects_subject", "subject_id", "event_seq"),)

    event_seq: Mapped[int] = mapped_column(
        _EVENT_PK, ForeignKey("audit_events.seq"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    relationship: Mapped[str] = mapped_column(String(30))


# --- MASH contacts (issue 5): the front door's workflow, break-glass, notifications --------
# Free text here (concern, reasons, justifications) is stored for the people working the
# contact and never copied into the audit log or the logs.


class Contact(Base):
    """A contact about a child received by the MASH, and where it stands."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    concern: Mapped[str] = mapped_column(String(4000))
    # Demographics as the referrer gave them, when no hub subject is known yet.
    child_details: Mapped[list[Any]] = mapped_column(default=list)
    referrer_type: Mapped[str] = mapped_column(String(30))
    referrer_name: Mapped[str | None] = mapped_column(String(200))
    referrer_contact: Mapped[str | None] = mapped_column(String(200))
    referrer_anonymous: Mapped[bool] = mapped_column(default=False)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    rag: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_staff: Mapped[list[Any]] = mapped_column(default=list)
    assigned_teams: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_agency: Mapped[str | None] = mapped_column(String(50))
    decision: Mapped[str | None] = mapped_column(String(30))
    decision_reasons: Mapped[str | None] = mapped_column(String(4000))
    referrer_feedback: Mapped[str | None] = mapped_column(String(4000))
    parents_told: Mapped[bool | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The s47 strategy discussion a manager recorded (DOMAIN.md §3 rule 3), if any: with an
    # s47 decision, the fact that lifts the consent requirement. The reason is free text.
    strategy_held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    strategy_parents_told: Mapped[bool | None] = mapped_column()
    strategy_reason: Mapped[str | None] = mapped_column(String(4000))
    strategy_recorded_by: Mapped[str | None] = mapped_column(String(200))
    strategy_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    subjects: Mapped[list[ContactSubject]] = relationship(
        order_by="ContactSubject.subject_id", cascade="all, delete-orphan", lazy="raise"
    )
    tasks: Mapped[list[ResearchTask]] = relationship(
        order_by="ResearchTask.agency", cascade="all, delete-orphan", lazy="raise"
    )
    consents: Mapped[list[ConsentRecord]] = relationship(
        order_by="ConsentRecord.seq", cascade="all, delete-orphan", lazy="raise"
    )
    overrides: Mapped[list[ConsentOverride]] = relationship(
        order_by="ConsentOverride.seq", cascade="all, delete-orphan", lazy="raise"
    )
    transitions: Mapped[list[StageTransition]] = relationship(
        order_by="StageTransition.seq", cascade="all, delete-orphan", lazy="raise"
    )


class ContactSubject(Base):
    """A hub subject (child) a contact is about: "earlier contacts about this child" and
    "the team working this child" are index lookups."""

    __tablename__ = "contact_subjects"
    __table_args__ = (Index("ix_contact_subjects_subject", "subject_id"),)

    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class ResearchTask(Base):
    """One agency's research for a contact: at most one per agency."""

    __tablename__ = "research_tasks"
    __table_args__ = (UniqueConstraint("contact_id", "agency", name="uq_research_tasks_agency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"))
    agency: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str | None] = mapped_column(String(4000))
    updated_by: Mapped[str | None] = mapped_column(String(200))


class ConsentRecord(Base):
    """Consent as a recorded fact (DOMAIN.md §3 rule 5); the latest record is the one in force."""

    __tablename__ = "consent_records"

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    given_by: Mapped[str | None] = mapped_column(String(200))
    scope: Mapped[list[Any]] = mapped_column(default=list)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsentOverride(Base):
    """A manager's recorded decision to share without consent, for this contact only."""

    __tablename__ = "consent_overrides"

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"), index=True)
    authorised_by: Mapped[str] = mapped_column(String(200))
    authoriser_role: Mapped[str] = mapped_column(String(50))
    reason_code: Mapped[str] = mapped_column(String(40))
    justification: Mapped[str] = mapped_column(String(4000))
    authorised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StageTransition(Base):
    """Every change of a contact's stage, with the reason when it moved back."""

    __tablename__ = "stage_transitions"

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(4000))
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BreakGlassGrant(Base):
    """A time-boxed, read-only emergency grant for one actor and one child."""

    __tablename__ = "break_glass_grants"
    __table_args__ = (Index("ix_break_glass_actor", "actor_subject", "expires_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor_subject: Mapped[str] = mapped_column(String(200))
    actor_issuer: Mapped[str] = mapped_column(String(300))
    actor_agency: Mapped[str | None] = mapped_column(String(50))
    actor_team: Mapped[str | None] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(36), index=True)
    reason_code: Mapped[str] = mapped_column(String(40))
    justification: Mapped[str] = mapped_column(String(4000))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IgAlert(Base):
    """An item for information governance to review (a break-glass use), and its review."""

    __tablename__ = "ig_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    grant_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("break_glass_grants.id"))
    subject_id: Mapped[str] = mapped_column(String(36))
    actor_subject: Mapped[str] = mapped_column(String(200))
    actor_agency: Mapped[str | None] = mapped_column(String(50))
    reason_code: Mapped[str] = mapped_column(String(40))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    review_outcome: Mapped[str | None] = mapped_column(String(30))
    review_notes: Mapped[str | None] = mapped_column(String(4000))
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """A notice for the team that owns a child: someone outside it looked, or broke glass."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_team", "team", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    team: Mapped[str] = mapped_column(String(100))
    agency: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str | None] = mapped_column(String(36))
    actor_subject: Mapped[str | None] = mapped_column(String(200))
    actor_agency: Mapped[str | None] = mapped_column(String(50))
    actor_team: Mapped[str | None] = mapped_column(String(100))
    purpose: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WithheldItem(Base):
    """An originating agency's recorded decision not to share one item (rule 8), and the
    contact it was made for, if the agency named one (its children are that contact's)."""

    __tablename__ = "withheld_items"
    __table_args__ = (UniqueConstraint("source", "item_id", name="uq_withheld_items_item"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(30))
    item_id: Mapped[str] = mapped_column(String(200))
    agency: Mapped[str] = mapped_column(String(50))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(4000))
    withheld_by: Mapped[str] = mapped_column(String(200))
    withheld_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The contact the decision was made for, when the agency named one (migration 0006).
    contact_id: Mapped[str | None] = mapped_column(String(36), index=True)


class AuditChain(Base):
    """The sequencer's hash chain: one entry per sequenced event, in `seq` order.

    Kept apart from the events so the events stay insert-only; entries are insert-only
    too, and outlive a purged event (its content hash keeps the chain verifiable).
    """

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(_EVENT_PK, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36))
    occurred_at: Mapped[str] = mapped_column(String(40))  # canonical ISO text, UTC
    event_class: Mapped[str] = mapped_column(String(80))  # "<operation type>.<outcome>"
    content_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class AuditLogIdentity(Base):
    """One row: the id that names this log's chain genesis and its checkpoint files."""

    __tablename__ = "audit_log_identity"

    log_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditPurgeGate(Base):
    """Open (a row present) only inside the purge job's own transaction: the append-only
    triggers let DELETEs of events through while it is."""

    __tablename__ = "audit_purge_gate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


# Core handles on the audit tables (bulk inserts and the purge's deletes).
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)
AUDIT_SUBJECTS = cast(Table, AuditSubject.__table__)
AUDIT_PURGE_GATE = cast(Table, AuditPurgeGate.__table__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=FULL")  # an audit event committed is on disk
    cursor.close()


def async_url(url: str) -> str:
    """Map a plain SQLAlchemy URL to its async driver (aiosqlite, asyncpg)."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


class Store:
    """Owns the hub store's engine and session factory.

    SQLite allows one writer at a time and answers a second with "database is locked"
    rather than waiting when a reading transaction wants to write; so on SQLite this
    process's writes take turns (`writing`), and WAL lets reads go on beside them.
    """

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.sqlite = self.url.startswith("sqlite")
        if self.sqlite:
            Path(make_url(self.url).database or "").parent.mkdir(parents=True, exist_ok=True)
        # A server can drop pooled connections (restart, failover): check each before use.
        # A file cannot, and on SQLite each check is one more trip to aiosqlite's thread.
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=not self.sqlite)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_turn = asyncio.Lock()
        if self.sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a read-modify-write transaction; the caller commits."""
        async with contextlib.AsyncExitStack() as stack:
            if self.sqlite:
                await stack.enter_async_context(self._write_turn)
            yield await stack.enter_async_context(self.sessions())

    async def aclose(self) -> None:
        await self.engine.dispose()


# PostgreSQL advisory lock held while migrating (hub.audit.events and hub.audit.sequencer
# hold others).
MIGRATE_LOCK = 0x6D617368_0003


def alembic_config(url: str) -> Config:
    """The Alembic configuration of the hub store's migrations, for `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = async_url(url)
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the store's schema up to `revision`, by default the newest (idempotent)."""
    from alembic import command

    if make_url(url).drivername.startswith("sqlite"):
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def migrate_async(url: str, revision: str = "head") -> None:
    """`migrate` from inside an event loop (Alembic's async env starts its own)."""
    await asyncio.to_thread(migrate, url, revision)
