"""The contact workflow's tables (issue 5): contacts, the children they are about, research
tasks, consent, consent overrides and stage changes.

Free text here (concern, reasons, justifications) is stored for the people working the
contact and never copied into the audit log or the logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..store.base import SEQ_PK, Base


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

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=True)
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

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=True)
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

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id"), index=True)
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(4000))
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
