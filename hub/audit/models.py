"""The audit log's tables: one event per operation and its data subjects, the sequencer's
hash chain, the log's identity and the purge job's gate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from ..store.base import SEQ_PK, Base


class AuditEvent(Base):
    """One GraphQL operation. Holds identifiers and field paths, never returned values."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_police", "police_consulted", "occurred_at"),)

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=True)
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

    event_seq: Mapped[int] = mapped_column(SEQ_PK, ForeignKey("audit_events.seq"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    relationship: Mapped[str] = mapped_column(String(30))


class AuditChain(Base):
    """The sequencer's hash chain: one entry per sequenced event, in `seq` order.

    Kept apart from the events so the events stay insert-only; entries are insert-only
    too, and outlive a purged event (its content hash keeps the chain verifiable).
    """

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=False)
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
