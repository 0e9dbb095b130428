"""GraphQL types of the audit log, for information governance."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON


@strawberry.type(description="A withheld field path and the reason.")
class RedactedPath:
    path: str
    reason: str


@strawberry.type(description="A data subject of an audited operation and how they figured in it.")
class SubjectEntry:
    subject_id: strawberry.ID
    relationship: str = strawberry.field(
        description="child, household_member, search_result, person or report_subject"
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


@strawberry.type(description="Something information governance should look at.")
class AuditAnomaly:
    kind: str = strawberry.field(description="OUT_OF_HOURS or VOLUME")
    actor_subject: str | None
    actor_agency: str | None
    actor_team: str | None
    occurred_at: datetime | None = strawberry.field(description="OUT_OF_HOURS: when.")
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
