"""Reading the audit log: IG roles only; the read is itself audited."""

from __future__ import annotations

import uuid
from typing import cast

import strawberry
from strawberry.scalars import JSON

from hub import audit
from hub.context import Context

from ..common import client_error
from .types import AuditEvent, AuditEventConnection, AuditEventEdge, PageInfo, RedactedPath

IG_ROLES = frozenset({"ig_officer"})
MAX_PAGE = 500
DEFAULT_PAGE = 50


@strawberry.type
class AuditQueries:
    @strawberry.field(description="Audit events, oldest first. IG roles only.")
    async def audit_events(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        subject_id: strawberry.ID | None = strawberry.UNSET,
        actor_subject: str | None = strawberry.UNSET,
        outcome: str | None = strawberry.UNSET,
    ) -> AuditEventConnection:
        ctx = info.context
        ctx.declare_purpose("IG_AUDIT", None)
        if not ctx.actor.roles & IG_ROLES:
            raise client_error("the audit log is for information governance roles", "FORBIDDEN")
        first = DEFAULT_PAGE if first is None or first is strawberry.UNSET else first
        if not 0 < first <= MAX_PAGE:
            raise client_error(f"first must be between 1 and {MAX_PAGE}", "BAD_USER_INPUT")
        if outcome and outcome not in audit.OUTCOMES:
            raise client_error(
                f"outcome must be one of {', '.join(audit.OUTCOMES)}", "BAD_USER_INPUT"
            )
        if actor_subject and (len(actor_subject) > 200 or "\x00" in actor_subject):
            raise client_error("actorSubject is not a valid subject", "BAD_USER_INPUT")
        if subject_id:
            try:
                subject_id = strawberry.ID(str(uuid.UUID(str(subject_id))))
            except ValueError:
                raise client_error("subjectId is not a hub id", "BAD_USER_INPUT") from None
        try:
            page = await audit.read_events(
                ctx.services.store,
                first,
                after or None,
                str(subject_id) if subject_id else None,
                actor_subject or None,
                outcome or None,
            )
        except ValueError:
            raise client_error("invalid cursor", "BAD_USER_INPUT") from None
        return AuditEventConnection(
            total_count=page.total_count,
            edges=[
                AuditEventEdge(cursor=audit.encode_cursor(e.seq), node=_event(e))
                for e in page.events
            ],
            page_info=PageInfo(end_cursor=page.end_cursor, has_next_page=page.has_next_page),
        )


def _event(e: audit.AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=strawberry.ID(e.event_id),
        occurred_at=e.occurred_at,
        actor_subject=e.actor_subject,
        actor_issuer=e.actor_issuer,
        actor_roles=list(e.actor_roles),
        actor_agency=e.actor_agency,
        actor_team=e.actor_team,
        client=e.client,
        purpose=e.purpose,
        contact_id=e.contact_id,
        operation_type=e.operation_type,
        operation_name=e.operation_name,
        query_hash=e.query_hash,
        outcome=e.outcome,
        error_code=e.error_code,
        subjects=list(e.subjects),
        sources=cast(JSON, e.sources),
        fields_returned=list(e.fields_returned),
        fields_redacted=[
            RedactedPath(path=r["path"], reason=r["reason"]) for r in e.fields_redacted
        ],
        policy_version=e.policy_version,
    )
