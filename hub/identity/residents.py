"""Analysts' decisions on the residents of a child's large shared address, kept in the hub
store (DOMAIN.md §3 rule 2).

A hostel, or a block recorded without flat numbers, puts many unrelated people at one
address key. Its residents are not the child's household (their agency records are not
read) until an analyst confirms one; a rejection says so explicitly. A later decision on
the same (child, resident) pair supersedes the earlier one; the record service honours the
active one on every read. A decision about someone who is not (or no longer) a resident of
the child's large shared address changes nothing: a confirmation never makes a neighbour
household.

The analyst's reason is a note for other readers of the record: stored, never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select

from ..store.base import RowValue
from ..store.engine import Store
from .decisions import CONFIRMED, REJECTED, Write, record, superseding
from .models import HouseholdDecision, Subject


@dataclass(frozen=True)
class ResidentDecision(RowValue):
    """An analyst's decision on a resident of the child's large shared address, as the
    services hand it on (never the ORM row). `reason`: stored, never logged."""

    id: str
    subject_id: str
    resident_id: str
    decision: str
    reason: str
    decided_by: str
    decided_by_agency: str | None
    decided_at: datetime
    superseded_at: datetime | None
    contact_id: str | None


def staged_decision(
    subject_id: str,
    resident_id: str,
    decision: str,
    reason: str,
    decided_by: str,
    decided_by_agency: str | None = None,
    contact_id: str | None = None,
) -> tuple[ResidentDecision, Write]:
    """The decision, and the write that records it (superseding the pair's active
    decision) inside a transaction the caller owns -- the audit event's, so both commit or
    neither does.

    The write raises UnknownSubject when the child or the resident is not a subject.
    """
    if decision not in (CONFIRMED, REJECTED):
        raise ValueError("decision must be CONFIRMED or REJECTED")
    now = datetime.now(UTC)
    row = HouseholdDecision(
        id=str(uuid.uuid4()),
        subject_id=subject_id,
        resident_id=resident_id,
        decision=decision,
        reason=reason,
        decided_by=decided_by,
        decided_by_agency=decided_by_agency,
        decided_at=now,
        contact_id=contact_id,
    )

    active = and_(
        HouseholdDecision.subject_id == subject_id,
        HouseholdDecision.resident_id == resident_id,
        HouseholdDecision.superseded_at.is_(None),
    )
    return ResidentDecision.of(row), superseding(
        row, HouseholdDecision, active, now, residents=(resident_id,)
    )


async def decide(
    store: Store,
    subject_id: str,
    resident_id: str,
    decision: str,
    reason: str,
    decided_by: str,
    decided_by_agency: str | None = None,
    contact_id: str | None = None,
) -> ResidentDecision:
    """Record a decision in a transaction of its own (see `staged_decision`).

    Raises:
        UnknownSubject: no such child or resident.
    """
    return await record(
        store,
        lambda: staged_decision(
            subject_id, resident_id, decision, reason, decided_by, decided_by_agency, contact_id
        ),
    )


async def active(
    store: Store, subject_id: str, resident_ids: Sequence[str]
) -> dict[str, ResidentDecision]:
    """The child's active decisions about these residents, by resident id, in one query."""
    if not resident_ids:
        return {}
    async with store.sessions() as session:
        rows = (
            await session.execute(
                select(HouseholdDecision).where(
                    HouseholdDecision.subject_id == subject_id,
                    HouseholdDecision.resident_id.in_(set(resident_ids)),
                    HouseholdDecision.superseded_at.is_(None),
                )
            )
        ).scalars()
        return {r.resident_id: ResidentDecision.of(r) for r in rows}


async def subjects_exist(store: Store, *subject_ids: str) -> bool:
    async with store.sessions() as session:
        found = await session.execute(select(Subject.id).where(Subject.id.in_(set(subject_ids))))
        return set(found.scalars()) == set(subject_ids)
