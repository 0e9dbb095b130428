"""GraphQL types of the audit log, for information governance."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON


@strawberry.type(description="A withheld field path and the reason.")
class RedactedPath:
    path: str
    reason: str


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
