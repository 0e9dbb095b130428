"""GraphQL types of the audit log, for information governance."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Generic, TypeVar

import strawberry
from strawberry.scalars import JSON

from hub.ig import reports

T = TypeVar("T")


@strawberry.type(description="A withheld field path and the reason.")
class RedactedPath:
    path: str
    reason: str


@strawberry.type(description="A data subject of an audited operation and how they figured in it.")
class SubjectEntry:
    subject_id: strawberry.ID
    relationship: str = strawberry.field(
        description="child, household_member, shared_address_resident, search_result, "
        "lookup_result, person or report_subject"
    )


@strawberry.type(description="A policy decision on a class of record, as audited.")
class PolicyDecision:
    record_class: str = strawberry.field(description="e.g. police.intelligence, read_child")
    agency: str | None
    handling_code: str | None
    decision: str = strawberry.field(description="RELEASED or WITHHELD")
    reason: str | None
    hidden_fields: list[RedactedPath]
    count: int


@strawberry.type(description="One audited GraphQL operation. Holds no returned values.")
class AuditEvent:
    id: strawberry.ID
    occurred_at: datetime
    actor_subject: str | None
    actor_issuer: str | None
    actor_roles: list[str]
    actor_agency: str | None
    actor_team: str | None
    client: str | None
    client_system: str | None = strawberry.field(
        description="The partner system the client id names (MASH_PARTNER_SYSTEMS), if any."
    )
    actor_kind: str | None = strawberry.field(
        description="person, or machine: a partner system's own token, no person behind it."
    )
    purpose: str | None
    contact_id: str | None
    operation_type: str | None
    operation_name: str | None
    query_hash: str | None
    outcome: str
    error_code: str | None
    subjects: list[str]
    sources: JSON
    fields_returned: list[str]
    fields_redacted: list[RedactedPath]
    policy_version: str | None
    contact_stage: str | None
    justification: str | None = strawberry.field(
        description="SHA-256 of the justification the actor gave (the text stays with the "
        "break-glass grant or consent override named in breakGlass / consentOverride)."
    )
    break_glass: JSON | None
    consent_override: JSON | None
    policy_decisions: list[PolicyDecision]
    root_fields: list[str]
    police_consulted: bool
    report: JSON | None = strawberry.field(
        description="An IG report read: the report and what it asked about (ids, dates)."
    )
    subject_entries: list[SubjectEntry]
    trace_id: str | None = strawberry.field(
        default=None,
        description="The request's OpenTelemetry trace id (32 hex digits): its spans and log "
        "lines carry the same id.",
    )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class PageInfo:
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class AuditEventConnection:
    total_count: int
    edges: list[AuditEventEdge]
    page_info: PageInfo


@strawberry.type(description="One access in a report: who, when, why, what, with what outcome.")
class ReportEntry:
    event_id: strawberry.ID
    occurred_at: datetime
    relationship: str | None = strawberry.field(
        description="How the report's subject figured in the operation (subject access only)."
    )
    actor_subject: str | None
    actor_issuer: str | None
    actor_roles: list[str]
    actor_agency: str | None
    actor_team: str | None
    client: str | None
    client_system: str | None = strawberry.field(
        description="The partner system the client id names (MASH_PARTNER_SYSTEMS), if any."
    )
    actor_kind: str | None = strawberry.field(
        description="person, or machine: a partner system's own token, no person behind it."
    )
    purpose: str | None
    contact_id: str | None
    contact_stage: str | None
    justification: str | None
    operation: list[str] = strawberry.field(description="Schema fields at the operation's root.")
    outcome: str
    subjects: list[SubjectEntry]
    sources: JSON
    fields_returned: list[str]
    fields_redacted: list[RedactedPath]
    policy_decisions: list[PolicyDecision]
    police_consulted: bool
    break_glass: bool
    consent_override: bool


@strawberry.type(description="A page of a report, oldest access first.")
class ReportPage:
    total_count: int
    entries: list[ReportEntry]
    page_info: PageInfo


@strawberry.enum(description="What kind of anomaly.")
class AnomalyKind(Enum):
    OUT_OF_HOURS = strawberry.enum_value(
        reports.OUT_OF_HOURS, description="An access outside office hours."
    )
    VOLUME = strawberry.enum_value(
        reports.VOLUME, description="A user's accesses far above their usual."
    )
    FLAGGED_NO_CONTACT = strawberry.enum_value(
        reports.FLAGGED_NO_CONTACT,
        description="A read of a flagged child (a child-protection or looked-after flag "
        "seen on a read, a break-glass grant, or a location-protected record) while no "
        "contact about the child was open.",
    )


@strawberry.type(description="Something information governance should look at.")
class AuditAnomaly:
    kind: AnomalyKind
    actor_subject: str | None
    actor_agency: str | None
    actor_team: str | None
    occurred_at: datetime | None = strawberry.field(
        description="OUT_OF_HOURS, FLAGGED_NO_CONTACT: when."
    )
    event_id: strawberry.ID | None
    subject_ids: list[strawberry.ID]
    count: int = strawberry.field(description="VOLUME: the user's accesses in the window.")
    usual: float = strawberry.field(
        description="VOLUME: the user's usual accesses for a window this long."
    )


@strawberry.type
class AnomalyReport:
    since: datetime
    until: datetime
    anomalies: list[AuditAnomaly]
    truncated: bool


@strawberry.type(description="A page of a register, oldest first.")
class RegisterPage(Generic[T]):
    total_count: int
    entries: list[T]
    page_info: PageInfo


@strawberry.type(
    description="A break-glass grant for IG review: who, which child, why, for how long, "
    "how many reads were made under it, and IG's review of its alert."
)
class BreakGlassReview:
    grant_id: strawberry.ID
    actor_subject: str
    actor_issuer: str
    actor_agency: str | None
    actor_team: str | None
    subject_id: strawberry.ID = strawberry.field(description="The child's hub id.")
    reason_code: str
    justification: str = strawberry.field(
        description="The free text the actor gave: shown to IG to review, never audited."
    )
    granted_at: datetime
    expires_at: datetime
    reads: int = strawberry.field(description="Audited reads that named this grant.")
    alert_id: strawberry.ID | None
    review_outcome: str | None = strawberry.field(
        description="JUSTIFIED, NOT_JUSTIFIED or REFERRED; null until IG has reviewed it."
    )
    reviewed_by: str | None
    reviewed_at: datetime | None


@strawberry.type(description="A manager's recorded decision to share without consent.")
class ConsentOverrideEntry:
    override_id: strawberry.ID
    contact_id: strawberry.ID
    subject_ids: list[strawberry.ID] = strawberry.field(description="The contact's children.")
    authorised_by: str
    authoriser_role: str
    reason_code: str
    authorised_at: datetime


@strawberry.type(
    description="An agency's recorded decision not to share one of its items, with the "
    "contact it was made for and that contact's children when the agency named one."
)
class NotSharedEntry:
    withheld_id: strawberry.ID
    source: str
    item_id: str
    agency: str
    contact_id: strawberry.ID | None = strawberry.field(
        description="The contact the decision was made for; null when none was named."
    )
    subject_ids: list[strawberry.ID] = strawberry.field(
        description="The contact's children (hub ids); empty without a contact."
    )
    withheld_by: str
    reason_code: str
    withheld_at: datetime


@strawberry.type(description="One contact against its RAG timescale (MASH_RAG_HOURS).")
class ContactTimeliness:
    contact_id: strawberry.ID
    subject_ids: list[strawberry.ID]
    received_at: datetime
    rag: str
    target_hours: float | None
    due_at: datetime
    decided_at: datetime | None
    decision: str | None
    stage: str
    hours: float = strawberry.field(
        description="Hours from receipt to decision, or to now while undecided."
    )
    within_target: bool | None = strawberry.field(
        description="Decided by its due time; null while undecided and not yet due."
    )


@strawberry.type(description="Over every contact the filters match.")
class TimelinessSummary:
    contacts: int
    decided: int
    judged: int = strawberry.field(description="Decided, or undecided and past due.")
    within_target: int
    percent_within_target: float | None
    median_hours_to_decision: float | None


@strawberry.type(description="Contacts against their timescales, oldest first.")
class TimelinessReport:
    summary: TimelinessSummary
    total_count: int
    entries: list[ContactTimeliness]
    page_info: PageInfo
