"""Analysts' link decisions and the review queue, kept in the hub store.

An analyst confirms or rejects that a source record is a subject (DOMAIN.md §5). A later
decision on the same pair supersedes the earlier one; the record service honours the active
one on every query. Review-band candidates, which the scorer could not decide, wait in the
review queue until an analyst decides them.

The analyst's reason is a note for other readers of the record: stored, never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Source

from ..store.base import RowValue
from ..store.cursors import SeqCursor
from ..store.engine import Store
from .models import LinkDecision, LinkReview, Subject

CONFIRMED, REJECTED = "CONFIRMED", "REJECTED"
MAX_REASON = 500
MAX_RECORD_ID = 200
# uuid5 namespace for source records as audit subjects (see `target_id`).
_TARGETS = uuid.UUID("5b0f6c2e-8f1d-4c4b-9a51-6a7f0d1e2c3b")

Pair = tuple[Source, str]


class UnknownSubject(LookupError):
    """The hub knows no subject with this id."""


@dataclass(frozen=True)
class Decision(RowValue):
    """An analyst's decision on a (subject, source record) pair, as the services hand it
    on (never the ORM row). `reason`: the analyst's note, shown to readers, never logged."""

    id: str
    subject_id: str
    source: str
    source_record_id: str
    decision: str
    reason: str
    decided_by: str
    decided_by_agency: str | None
    decided_at: datetime
    superseded_at: datetime | None
    contact_id: str | None


@dataclass(frozen=True)
class Review(RowValue):
    """A review-band candidate waiting in the queue. `explanation`: [field, level, weight]
    per compared field."""

    seq: int
    subject_id: str
    source: str
    source_record_id: str
    score: float
    explanation: list[Any]
    first_seen_at: datetime


def target_id(source: Source, source_record_id: str) -> str:
    """A source record's id as an audit subject: a UUID derived from (source, record id), so
    "who decided about police record X" is an audit lookup like any other subject's."""
    return str(uuid.uuid5(_TARGETS, f"{source.value}:{source_record_id}"))


def _active(subject_id: Any, source: Any, source_record_id: Any) -> Any:
    """The pair's active decision (values, or columns for a correlated subquery)."""
    return and_(
        LinkDecision.subject_id == subject_id,
        LinkDecision.source == source,
        LinkDecision.source_record_id == source_record_id,
        LinkDecision.superseded_at.is_(None),
    )


def staged_decision(
    subject_id: str,
    source: Source,
    source_record_id: str,
    decision: str,
    reason: str,
    decided_by: str,
    decided_by_agency: str | None = None,
    contact_id: str | None = None,
) -> tuple[Decision, Write]:
    """The decision, and the write that records it (superseding the pair's active
    decision) inside a transaction the caller owns — the audit event's, so both commit or
    neither does.

    The write raises UnknownSubject when there is no such subject.
    """
    if decision not in (CONFIRMED, REJECTED):
        raise ValueError("decision must be CONFIRMED or REJECTED")
    now = datetime.now(UTC)
    row = LinkDecision(
        id=str(uuid.uuid4()),
        subject_id=subject_id,
        source=source.value,
        source_record_id=source_record_id,
        decision=decision,
        reason=reason,
        decided_by=decided_by,
        decided_by_agency=decided_by_agency,
        decided_at=now,
        contact_id=contact_id,
    )

    active = _active(subject_id, source.value, source_record_id)
    return Decision.of(row), superseding(row, LinkDecision, active, now)


async def decide(
    store: Store,
    subject_id: str,
    source: Source,
    source_record_id: str,
    decision: str,
    reason: str,
    decided_by: str,
    decided_by_agency: str | None = None,
    contact_id: str | None = None,
) -> Decision:
    """Record a decision in a transaction of its own (see `staged_decision`).

    Raises:
        UnknownSubject: no such subject.
    """
    return await record(
        store,
        lambda: staged_decision(
            subject_id,
            source,
            source_record_id,
            decision,
            reason,
            decided_by,
            decided_by_agency,
            contact_id,
        ),
    )


V = TypeVar("V")
Write = Callable[[AsyncSession], Awaitable[None]]


def superseding(
    row: Any, model: Any, active: Any, now: datetime, residents: Sequence[str] = ()
) -> Write:
    """The write that records the decision `row` (of `model`, a decision table with
    `superseded_at`), superseding the active decision `active` selects, inside a transaction
    the caller owns. Decisions about one subject take turns (a row lock on PostgreSQL;
    SQLite's writers take turns anyway), so superseding never races another decision.

    Raises (from the write) UnknownSubject when the row's subject, or any of `residents`,
    is not a subject."""

    async def write(session: AsyncSession) -> None:
        if await session.get(Subject, row.subject_id, with_for_update=True) is None:
            raise UnknownSubject(row.subject_id)
        for other in residents:
            if await session.get(Subject, other) is None:
                raise UnknownSubject(other)
        await session.execute(update(model).where(active).values(superseded_at=now))
        session.add(row)
        await session.flush()

    return write


async def record(store: Store, stage: Callable[[], tuple[V, Write]]) -> V:
    """A staged decision (`stage` makes it afresh for each try) in a transaction of its
    own; tried once more if the store's unique index saw a race."""
    for _ in range(2):
        decided, write = stage()
        async with store.writing() as session:
            try:  # `write` flushes: the race shows there or at the commit
                await write(session)
                await session.commit()
                return decided
            except IntegrityError:  # defence in depth: the index saw a race; go again
                await session.rollback()
    raise RuntimeError("decision could not be recorded")


async def subject_exists(store: Store, subject_id: str) -> bool:
    async with store.sessions() as session:
        return await session.get(Subject, subject_id) is not None


async def active(store: Store, subject_id: str) -> dict[Pair, Decision]:
    """The subject's active decisions by (source, source record id), in one query."""
    async with store.sessions() as session:
        rows = (
            await session.execute(
                select(LinkDecision).where(
                    LinkDecision.subject_id == subject_id, LinkDecision.superseded_at.is_(None)
                )
            )
        ).scalars()
        return {(Source(r.source), r.source_record_id): Decision.of(r) for r in rows}


async def rejected(store: Store, subject_ids: Sequence[str]) -> set[tuple[str, Source, str]]:
    """(subject id, source, source record id) of every active rejection for these subjects,
    in one query."""
    if not subject_ids:
        return set()
    async with store.sessions() as session:
        rows = await session.execute(
            select(LinkDecision.subject_id, LinkDecision.source, LinkDecision.source_record_id)
            .where(LinkDecision.subject_id.in_(set(subject_ids)))
            .where(LinkDecision.superseded_at.is_(None), LinkDecision.decision == REJECTED)
        )
        return {(s, Source(src), r) for s, src, r in rows}


async def history(store: Store, subject_id: str) -> list[Decision]:
    """Every decision about the subject, oldest first (superseded ones included)."""
    async with store.sessions() as session:
        rows = await session.execute(
            select(LinkDecision)
            .where(LinkDecision.subject_id == subject_id)
            .order_by(LinkDecision.decided_at, LinkDecision.id)
        )
        return [Decision.of(r) for r in rows.scalars()]


@dataclass(frozen=True)
class Candidate:
    """A review-band candidate as the scorer explained it. `explanation`: (field, level,
    weight) per compared field."""

    source: Source
    source_record_id: str
    score: float
    explanation: tuple[tuple[str, str, float], ...] = ()


async def note_reviews(store: Store, subject_id: str, candidates: Sequence[Candidate]) -> None:
    """Remember review-band candidates for the queue (insert new ones, refresh the score and
    explanation of known ones); writes nothing when nothing changed."""
    if not candidates:
        return
    for _ in range(2):
        async with store.writing() as session:
            await stage_reviews(session, subject_id, candidates)
            if not (session.new or session.dirty):
                return
            try:
                await session.commit()
                return
            except IntegrityError:  # noted concurrently by another request: read again
                await session.rollback()


async def stage_reviews(
    session: AsyncSession, subject_id: str, candidates: Sequence[Candidate]
) -> None:
    """`note_reviews`' changes, added to `session` for its caller to commit."""
    if not candidates:
        return
    known = {
        (r.source, r.source_record_id): r
        for r in (
            await session.execute(select(LinkReview).where(LinkReview.subject_id == subject_id))
        ).scalars()
    }
    for c in candidates:
        explanation = [list(w) for w in c.explanation]
        row = known.get((c.source.value, c.source_record_id))
        if row is None:
            session.add(
                LinkReview(
                    subject_id=subject_id,
                    source=c.source.value,
                    source_record_id=c.source_record_id,
                    score=c.score,
                    explanation=explanation,
                    first_seen_at=datetime.now(UTC),
                )
            )
        elif (row.score, row.explanation) != (c.score, explanation):
            row.score, row.explanation = c.score, explanation


def differ(
    noted: Mapping[tuple[str, str], tuple[float, list[Any]]], candidates: Sequence[Candidate]
) -> bool:
    """Would noting these candidates change the queue as `noted` holds it?"""
    return any(
        noted.get((c.source.value, c.source_record_id))
        != (c.score, [list(w) for w in c.explanation])
        for c in candidates
    )


@dataclass(frozen=True)
class ReviewPage:
    reviews: Sequence[Review]
    total_count: int
    end_cursor: str | None
    has_next_page: bool


_CURSOR = SeqCursor("review")
encode_cursor, decode_cursor = _CURSOR.encode, _CURSOR.decode


async def review_queue(store: Store, first: int, after: str | None = None) -> ReviewPage:
    """Review-band candidates no analyst has decided yet, oldest first.

    Raises:
        ValueError: `after` is not a cursor of this queue.
    """
    decided = exists().where(
        _active(LinkReview.subject_id, LinkReview.source, LinkReview.source_record_id)
    )
    query = select(LinkReview).where(~decided)
    async with store.sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        if after:
            query = query.where(LinkReview.seq > decode_cursor(after))
        rows = list(
            (await session.execute(query.order_by(LinkReview.seq).limit(first + 1))).scalars()
        )
    page = rows[:first]
    return ReviewPage(
        reviews=[Review.of(r) for r in page],
        total_count=total,
        end_cursor=encode_cursor(page[-1].seq) if page else None,
        has_next_page=len(rows) > first,
    )
