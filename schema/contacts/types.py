"""GraphQL types of the MASH contact workflow: contacts, research tasks, consent, decisions,
break-glass grants, IG alerts, notifications, decisions not to share and KPIs.

Codes on input are strings checked by the service, so an unknown one gets a BAD_USER_INPUT
error naming the allowed values; the descriptions list them too.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

import strawberry

from hub.contacts import kpis
from hub.contacts import workflow as svc
from hub.reading.oversight import Alert, Notice, Withholding

from ..common import FieldRedaction, RedactionReason, SourceName


@strawberry.enum(description="Where a contact stands: SCREENING → RESEARCH → DECISION → CLOSED.")
class ContactStage(enum.Enum):
    SCREENING = "SCREENING"
    RESEARCH = "RESEARCH"
    DECISION = "DECISION"
    CLOSED = "CLOSED"


@strawberry.enum(description="RAG rating: sets the timescale for a decision (configured).")
class Rag(enum.Enum):
    RED = "RED"
    AMBER = "AMBER"
    GREEN = "GREEN"


@strawberry.type(description="The child as the referrer described them (no hub id known).")
class ChildDetails:
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    postcode: str | None = None


@strawberry.type(
    description="Who made the contact. An anonymous member of the public is identified to "
    "no one outside the council MASH staff: name and contact details come back redacted."
)
class Referrer:
    type: str
    anonymous: bool
    name: str | None
    contact_details: str | None
    redacted_fields: list[FieldRedaction]


@strawberry.type(description="One agency's research for the contact.")
class ResearchTask:
    agency: str
    status: str
    requested_at: datetime
    due_at: datetime
    completed_at: datetime | None
    overdue: bool
    summary: str | None
    updated_by: str | None


@strawberry.type(description="Consent as recorded: state, who gave it, and the agencies it covers.")
class Consent:
    state: str
    given_by: str | None
    scope: list[str] = strawberry.field(description="Agencies covered; empty means all.")
    recorded_by: str
    recorded_at: datetime


@strawberry.type(description="A manager's decision to share without consent, for this contact.")
class ConsentOverride:
    id: strawberry.ID
    authorised_by: str
    authoriser_role: str
    reason_code: str
    justification: str
    authorised_at: datetime


@strawberry.type(description="The threshold decision, its reasons and the referrer's feedback.")
class ThresholdDecision:
    outcome: str
    reasons: str | None
    referrer_feedback: str | None
    parents_told: bool | None
    decided_by: str | None
    decided_at: datetime | None


@strawberry.type(
    description="An s47 strategy discussion a MASH manager recorded on the contact: with an "
    "S47 or IMMEDIATE_PROTECTION decision, the fact that lets agencies share without consent."
)
class StrategyDiscussion:
    held_at: datetime
    parents_told: bool = strawberry.field(description="Whether the parents were told.")
    reason: str
    recorded_by: str
    recorded_at: datetime


@strawberry.input(description="An s47 strategy discussion held about the contact.")
class StrategyDiscussionInput:
    held_at: datetime | None = strawberry.field(
        default=None, description="When it was held (default: now; never in the future)."
    )
    parents_told: bool = strawberry.field(description="Whether the parents were told.")
    reason: str = strawberry.field(description="Why s47: for those who work the contact.")


@strawberry.type
class StageChange:
    from_stage: ContactStage | None
    to_stage: ContactStage
    reason: str | None
    by: str
    at: datetime


@strawberry.type(
    description="A contact received by the MASH. `overdue`: no decision yet and past `dueAt` "
    "(RED counts wall-clock hours, AMBER and GREEN office hours). The queue — id, "
    "receivedAt, stage, rag, dueAt, overdue, assignedTeams — is shown to the MASH council "
    "team for allocation; everything else only to those who work the contact (assigned "
    "staff or team, agencies with a research task on it, MASH managers): to others each "
    "of those fields is null and listed in `redactedFields` with its reason."
)
class Contact:
    id: strawberry.ID
    received_at: datetime
    concern: str | None
    child_ids: list[strawberry.ID] | None
    child_details: list[ChildDetails] | None
    referrer: Referrer | None
    stage: ContactStage
    rag: Rag
    due_at: datetime
    overdue: bool
    assigned_staff: list[str] | None
    assigned_teams: list[str]
    research_tasks: list[ResearchTask] | None
    consent: Consent | None
    consent_history: list[Consent] | None
    overrides: list[ConsentOverride] | None
    decision: ThresholdDecision | None
    strategy_discussion: StrategyDiscussion | None
    stage_history: list[StageChange] | None
    created_by: str | None
    redacted_fields: list[FieldRedaction] = strawberry.field(
        description="The fields withheld from this reader, each with its reason."
    )


# The contact's fields outside the queue (GraphQL names): those who do not work the contact
# get each as null with a redaction (rule 2).
DETAIL_FIELDS = (
    "concern",
    "childIds",
    "childDetails",
    "referrer",
    "assignedStaff",
    "researchTasks",
    "consent",
    "consentHistory",
    "overrides",
    "decision",
    "strategyDiscussion",
    "stageHistory",
    "createdBy",
)


def utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone (stored as UTC): say so."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def consent_of(row: svc.Consent) -> Consent:
    return Consent(
        state=row.state,
        given_by=row.given_by,
        scope=list(row.scope),
        recorded_by=row.recorded_by,
        recorded_at=utc(row.recorded_at),
    )


def referrer_of(row: svc.ContactSnapshot, show: bool) -> Referrer:
    hidden = [] if show else ["name", "contactDetails"]
    return Referrer(
        type=row.referrer_type,
        anonymous=row.referrer_anonymous,
        name=row.referrer_name if show else None,
        contact_details=row.referrer_contact if show else None,
        redacted_fields=[
            FieldRedaction(field=f, reason=RedactionReason.NOT_PERMITTED) for f in hidden
        ],
    )


def queue_of(row: svc.ContactSnapshot, now: datetime, reason: RedactionReason) -> Contact:
    """The queue's view of a contact (rule 2): what the MASH needs to allocate it."""
    return Contact(
        id=strawberry.ID(row.id),
        received_at=utc(row.received_at),
        concern=None,
        child_ids=None,
        child_details=None,
        referrer=None,
        stage=ContactStage(row.stage),
        rag=Rag(row.rag),
        due_at=utc(row.due_at),
        overdue=svc.overdue(row, now),
        assigned_staff=None,
        assigned_teams=list(row.assigned_teams),
        research_tasks=None,
        consent=None,
        consent_history=None,
        overrides=None,
        decision=None,
        strategy_discussion=None,
        stage_history=None,
        created_by=None,
        redacted_fields=[FieldRedaction(field=f, reason=reason) for f in DETAIL_FIELDS],
    )


def strategy_of(row: svc.ContactSnapshot) -> StrategyDiscussion | None:
    if row.strategy_held_at is None:
        return None
    return StrategyDiscussion(
        held_at=utc(row.strategy_held_at),
        parents_told=bool(row.strategy_parents_told),
        reason=row.strategy_reason or "",
        recorded_by=row.strategy_recorded_by or "",
        recorded_at=utc(row.strategy_recorded_at or row.strategy_held_at),
    )


def contact_of(row: svc.ContactSnapshot, now: datetime, show_referrer: bool) -> Contact:
    """The view of a contact for those who work it; `show_referrer` as the policy said
    (rule 12)."""
    decision = (
        ThresholdDecision(
            outcome=row.decision,
            reasons=row.decision_reasons,
            referrer_feedback=row.referrer_feedback,
            parents_told=row.parents_told,
            decided_by=row.decided_by,
            decided_at=utc_or_none(row.decided_at),
        )
        if row.decision
        else None
    )
    return Contact(
        id=strawberry.ID(row.id),
        received_at=utc(row.received_at),
        concern=row.concern,
        child_ids=[strawberry.ID(s) for s in row.child_ids],
        child_details=[
            ChildDetails(
                given_name=d.get("given_name"),
                family_name=d.get("family_name"),
                date_of_birth=date.fromisoformat(d["date_of_birth"])
                if d.get("date_of_birth")
                else None,
                postcode=d.get("postcode"),
            )
            for d in row.child_details
        ],
        referrer=referrer_of(row, show_referrer),
        stage=ContactStage(row.stage),
        rag=Rag(row.rag),
        due_at=utc(row.due_at),
        overdue=svc.overdue(row, now),
        assigned_staff=list(row.assigned_staff),
        assigned_teams=list(row.assigned_teams),
        research_tasks=[
            ResearchTask(
                agency=t.agency,
                status=t.status,
                requested_at=utc(t.requested_at),
                due_at=utc(t.due_at),
                completed_at=utc_or_none(t.completed_at),
                overdue=svc.task_overdue(t, now),
                summary=t.summary,
                updated_by=t.updated_by,
            )
            for t in sorted(row.tasks, key=lambda t: t.agency)
        ],
        consent=consent_of(row.consents[-1]) if row.consents else None,
        consent_history=[consent_of(c) for c in row.consents],
        overrides=[
            ConsentOverride(
                id=strawberry.ID(o.id),
                authorised_by=o.authorised_by,
                authoriser_role=o.authoriser_role,
                reason_code=o.reason_code,
                justification=o.justification,
                authorised_at=utc(o.authorised_at),
            )
            for o in row.overrides
        ],
        decision=decision,
        strategy_discussion=strategy_of(row),
        stage_history=[
            StageChange(
                from_stage=ContactStage(t.from_stage) if t.from_stage else None,
                to_stage=ContactStage(t.to_stage),
                reason=t.reason,
                by=t.by,
                at=utc(t.at),
            )
            for t in row.transitions
        ],
        created_by=row.created_by,
        redacted_fields=[],
    )


@strawberry.input(description="The child as the referrer described them.")
class ChildDetailsInput:
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    postcode: str | None = None


@strawberry.input
class ReferrerInput:
    type: str = strawberry.field(
        description="One of " + ", ".join(svc.REFERRER_TYPES) + "; only PUBLIC may be anonymous."
    )
    anonymous: bool = False
    name: str | None = None
    contact_details: str | None = None


@strawberry.input(
    description="A new contact: the child (hub `childIds` from searchChildren, and/or the "
    "details the referrer gave), the concern, the RAG rating and the referrer."
)
class CreateContactInput:
    concern: str
    rag: str = strawberry.field(description="RED, AMBER or GREEN.")
    referrer: ReferrerInput
    child_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    child: ChildDetailsInput | None = None
    received_at: datetime | None = strawberry.field(
        default=None, description="When the MASH received it (default: now)."
    )


@strawberry.input
class ContactFilters:
    stage: str | None = None
    rag: str | None = None
    child_id: strawberry.ID | None = None
    overdue: bool | None = None
    assigned_team: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


@strawberry.type(
    description="A read-only, time-boxed emergency grant for one child. It raised an IG "
    "alert and notified the child's owning team."
)
class BreakGlassGrant:
    id: strawberry.ID
    child_id: strawberry.ID
    reason_code: str
    granted_at: datetime
    expires_at: datetime
    alert_id: strawberry.ID
    notified_team: str


@strawberry.type(description="An item in the IG review queue (a break-glass use) and its review.")
class IgAlert:
    id: strawberry.ID
    kind: str
    child_id: strawberry.ID
    actor: str
    actor_agency: str | None
    reason_code: str
    raised_at: datetime
    review_outcome: str | None
    review_notes: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None

    @classmethod
    def of(cls, row: Alert) -> IgAlert:
        return cls(
            id=strawberry.ID(row.id),
            kind=row.kind,
            child_id=strawberry.ID(row.subject_id),
            actor=row.actor_subject,
            actor_agency=row.actor_agency,
            reason_code=row.reason_code,
            raised_at=utc(row.raised_at),
            review_outcome=row.review_outcome,
            review_notes=row.review_notes,
            reviewed_by=row.reviewed_by,
            reviewed_at=utc_or_none(row.reviewed_at),
        )


@strawberry.type(
    description="A notice for a child's owning team: someone outside it read a child with a "
    "child-protection or looked-after flag (FLAGGED_CHILD_READ), or broke glass (BREAK_GLASS)."
)
class Notification:
    id: strawberry.ID
    team: str
    agency: str
    kind: str
    child_id: strawberry.ID
    contact_id: strawberry.ID | None
    actor: str | None
    actor_agency: str | None
    actor_team: str | None
    purpose: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Notice, show_actor: bool) -> Notification:
        return cls(
            id=strawberry.ID(row.id),
            team=row.team,
            agency=row.agency,
            kind=row.kind,
            child_id=strawberry.ID(row.subject_id),
            contact_id=strawberry.ID(row.contact_id) if row.contact_id else None,
            actor=row.actor_subject if show_actor else None,
            actor_agency=row.actor_agency,
            actor_team=row.actor_team,
            purpose=row.purpose,
            created_at=utc(row.created_at),
        )


@strawberry.type(description="An originating agency's recorded decision not to share an item.")
class WithheldItem:
    id: strawberry.ID
    source: SourceName
    item_id: str
    agency: str
    reason_code: str
    reason: str
    withheld_by: str
    withheld_at: datetime
    contact_id: strawberry.ID | None = strawberry.field(
        description="The contact the decision was made for, if the agency named one."
    )

    @classmethod
    def of(cls, row: Withholding, source: SourceName) -> WithheldItem:
        return cls(
            id=strawberry.ID(row.id),
            source=source,
            item_id=row.item_id,
            agency=row.agency,
            reason_code=row.reason_code,
            reason=row.reason,
            withheld_by=row.withheld_by,
            withheld_at=utc(row.withheld_at),
            contact_id=strawberry.ID(row.contact_id) if row.contact_id else None,
        )


@strawberry.type(description="Decided within timescale, for one RAG rating.")
class RagKpi:
    rag: Rag
    contacts: int
    decided: int
    decided_within_timescale: int
    percent_within_timescale: float | None = strawberry.field(
        description="Of the contacts decided or already overdue."
    )


@strawberry.type
class OutcomeCount:
    outcome: str
    contacts: int


@strawberry.type(description="How quickly one agency answered its research tasks.")
class AgencyKpi:
    agency: str
    tasks: int
    completed: int
    median_response_minutes: float | None
    percent_on_time: float | None


@strawberry.type(description="The MASH's figures over contacts received in a period.")
class ContactKpis:
    contacts: int
    by_rag: list[RagKpi]
    median_decision_minutes: float | None
    re_referrals: int = strawberry.field(
        description="Contacts about a child with an earlier contact in the 12 months before."
    )
    re_referral_percent: float | None
    outcomes: list[OutcomeCount]
    agencies: list[AgencyKpi]

    @classmethod
    def of(cls, k: kpis.Kpis) -> ContactKpis:
        return cls(
            contacts=k.contacts,
            by_rag=[
                RagKpi(
                    rag=Rag(r.rag),
                    contacts=r.contacts,
                    decided=r.decided,
                    decided_within_timescale=r.decided_within_timescale,
                    percent_within_timescale=r.percent_within_timescale,
                )
                for r in k.by_rag
            ],
            median_decision_minutes=k.median_decision_minutes,
            re_referrals=k.re_referrals,
            re_referral_percent=k.re_referral_percent,
            outcomes=[OutcomeCount(outcome=o, contacts=n) for o, n in k.outcomes.items()],
            agencies=[
                AgencyKpi(
                    agency=a.agency,
                    tasks=a.tasks,
                    completed=a.completed,
                    median_response_minutes=a.median_response_minutes,
                    percent_on_time=a.percent_on_time,
                )
                for a in k.agencies
            ],
        )


@strawberry.type(
    description="An earlier read of this child: when, by which agency and team, for which "
    "purpose; `staff` only where the policy lets this reader see names."
)
class PastAccess:
    at: datetime
    agency: str | None
    team: str | None
    purpose: str | None
    staff: str | None
