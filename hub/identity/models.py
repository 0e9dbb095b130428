"""The identity domain's tables: the people the hub has resolved (subjects), analysts' link
and household decisions, and the review queue's candidates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.base import SEQ_PK, Base


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

    seq: Mapped[int] = mapped_column(SEQ_PK, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(36), ForeignKey("subjects.id"))
    source: Mapped[str] = mapped_column(String(30))
    source_record_id: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    explanation: Mapped[list[Any]] = mapped_column(default=list)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
