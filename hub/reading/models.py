"""Oversight's tables (hub.reading.oversight): break-glass grants and the IG alerts they
raise, notifications to a child's owning team, and agencies' decisions not to share an item.

Free text here (justifications, reasons, review notes) is stored for the people who need it
and never copied into the audit log or the logs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..store.base import Base


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
