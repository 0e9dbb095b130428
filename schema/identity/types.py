"""GraphQL types of identity linkage: link explanations, analysts' decisions, the review
queue."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry

from adapters.base import Source
from hub.identity.decisions import Decision, Review, target_id
from hub.identity.residents import ResidentDecision

from ..audit.types import PageInfo
from ..common import SourceName


@strawberry.enum(description="An analyst's decision on a candidate link.")
class LinkDecisionKind(enum.Enum):
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"


@strawberry.type(
    description="One compared field of a link's explanation: how well it agreed (`level`) "
    "and the weight that contributed to the score."
)
class LinkWeight:
    field: str
    level: str
    weight: float

    @classmethod
    def all(cls, weights: Sequence[Sequence[Any]]) -> list[LinkWeight]:
        return [cls(field=str(f), level=str(lv), weight=float(w)) for f, lv, w in weights]


@strawberry.type(
    description="An analyst's decision that a source record is (CONFIRMED) or is not "
    "(REJECTED) the child. A later decision on the same pair supersedes it. `targetId` is "
    "the source record's id as an audit subject."
)
class LinkDecision:
    id: strawberry.ID
    child_id: strawberry.ID
    source: SourceName
    source_record_id: str
    target_id: strawberry.ID
    decision: LinkDecisionKind
    reason: str
    decided_by: str
    decided_by_agency: str | None
    decided_at: datetime
    superseded_at: datetime | None
    contact_id: strawberry.ID | None

    @classmethod
    def of(cls, row: Decision) -> LinkDecision:
        source = Source(row.source)
        return cls(
            id=strawberry.ID(row.id),
            child_id=strawberry.ID(row.subject_id),
            source=source,
            source_record_id=row.source_record_id,
            target_id=strawberry.ID(target_id(source, row.source_record_id)),
            decision=LinkDecisionKind(row.decision),
            reason=row.reason,
            decided_by=row.decided_by,
            decided_by_agency=row.decided_by_agency,
            decided_at=row.decided_at,
            superseded_at=row.superseded_at,
            contact_id=strawberry.ID(row.contact_id) if row.contact_id else None,
        )


@strawberry.type(
    description="An analyst's decision that a resident of the child's large shared address "
    "(a hostel, a block recorded without flat numbers) is (CONFIRMED) or is not (REJECTED) "
    "of the child's household. A later decision on the same pair supersedes it."
)
class HouseholdDecision:
    id: strawberry.ID
    child_id: strawberry.ID
    resident_id: strawberry.ID
    decision: LinkDecisionKind
    reason: str
    decided_by: str
    decided_by_agency: str | None
    decided_at: datetime
    superseded_at: datetime | None
    contact_id: strawberry.ID | None

    @classmethod
    def of(cls, row: ResidentDecision) -> HouseholdDecision:
        return cls(
            id=strawberry.ID(row.id),
            child_id=strawberry.ID(row.subject_id),
            resident_id=strawberry.ID(row.resident_id),
            decision=LinkDecisionKind(row.decision),
            reason=row.reason,
            decided_by=row.decided_by,
            decided_by_agency=row.decided_by_agency,
            decided_at=row.decided_at,
            superseded_at=row.superseded_at,
            contact_id=strawberry.ID(row.contact_id) if row.contact_id else None,
        )


@strawberry.type(
    description="A review-band candidate waiting for an analyst: the scorer could neither "
    "link this source record to the child nor rule it out. Read the child, then confirm or "
    "reject the link."
)
class LinkReview:
    child_id: strawberry.ID
    source: SourceName
    source_record_id: str
    score: float
    band: str
    explanation: list[LinkWeight]
    first_seen_at: datetime

    @classmethod
    def of(cls, row: Review) -> LinkReview:
        return cls(
            child_id=strawberry.ID(row.subject_id),
            source=Source(row.source),
            source_record_id=row.source_record_id,
            score=row.score,
            band="review",
            explanation=LinkWeight.all(row.explanation),
            first_seen_at=row.first_seen_at,
        )


@strawberry.type
class LinkReviewEdge:
    cursor: str
    node: LinkReview


@strawberry.type
class LinkReviewConnection:
    total_count: int
    edges: list[LinkReviewEdge]
    page_info: PageInfo
