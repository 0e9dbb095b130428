"""Checks and conversions shared by the audit queries: who may read the log, what the read's
own event records, and the GraphQL view of audit rows. Messages never echo input."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from hub.audit.events import LoggedEvent
from hub.context import Context
from hub.ig import lookup, reports

from ..common import client_error
from . import types as t

IG_PURPOSE = "IG_AUDIT"


async def open_report(
    ctx: Context,
    report: str,
    subject_id: str | None,
    actor_subject: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    unreviewed_only: bool = False,
) -> reports.Filters:
    """Name the IG purpose, note what is asked about on this read's audit event, then check
    the `read_audit_log` policy. A refused attempt is audited with what it asked for."""
    access = await ctx.access(IG_PURPOSE, None)
    try:
        filters = reports.Filters(
            subject_id or None, actor_subject or None, since, until, unreviewed_only
        )
    except ValueError as exc:
        raise client_error(str(exc), "BAD_USER_INPUT") from None
    filters.note(ctx.notes, report)
    if not access.allows("read_audit_log"):
        raise client_error("the audit log is for information governance roles", "FORBIDDEN")
    return filters


async def find_subjects(ctx: Context, purpose: str, query: dict[str, Any]) -> list[strawberry.ID]:
    """The hub ids of the people matching `query` (hub/ig/lookup.py), for a subject access
    response. Audited with how the lookup was made and whom it found, never what was typed;
    a refused or malformed attempt is audited too."""
    ctx.declare_purpose(purpose, None)
    lookup.note(ctx.notes, None)
    if not ctx.door(purpose).allows("find_subjects"):
        raise client_error(
            "finding people is for information governance answering a subject access "
            "request (purpose SAR_RESPONSE)",
            "FORBIDDEN",
        )
    try:
        asked = lookup.SubjectQuery(**query)
    except ValueError as exc:
        raise client_error(str(exc), "BAD_USER_INPUT") from None
    found = await lookup.find_subjects(ctx.services.store, asked)
    lookup.note(ctx.notes, asked, found)
    return [strawberry.ID(s) for s in found]


async def run_page(
    ctx: Context, name: str, filters: reports.Filters, first: int, after: str | None
) -> reports.Page:
    report = reports.REPORTS[name]
    missing = [f for f in report.required if not getattr(filters, f)]
    if missing:
        raise client_error(f"give {_camel(missing[0])}", "BAD_USER_INPUT")
    try:
        page_request = reports.PageRequest(first, after or None)
    except ValueError as exc:
        raise client_error(str(exc), "BAD_USER_INPUT") from None
    s = ctx.services
    return await report.run(s.store, filters, page_request, reports.Env(s.clock(), s.contacts))


def _page_info(page: reports.Page) -> t.PageInfo:
    return t.PageInfo(end_cursor=page.end_cursor, has_next_page=page.has_next_page)


async def run_report(
    ctx: Context, name: str, filters: reports.Filters, first: int, after: str | None
) -> t.ReportPage:
    page = await run_page(ctx, name, filters, first, after)
    return t.ReportPage(
        total_count=page.total_count,
        entries=[entry(r) for r in page.rows],
        page_info=_page_info(page),
    )


async def run_register(
    ctx: Context,
    name: str,
    filters: reports.Filters,
    first: int,
    after: str | None,
    shape: type[Any],
) -> t.RegisterPage[Any]:
    """A register's page, each row shown as `shape` (whose fields are the row's)."""
    page = await run_page(ctx, name, filters, first, after)
    return t.RegisterPage(
        total_count=page.total_count,
        entries=[shape(**vars(r)) for r in page.rows],
        page_info=_page_info(page),
    )


async def timeliness(
    ctx: Context, filters: reports.Filters, first: int, after: str | None
) -> t.TimelinessReport:
    page = await run_page(ctx, "timeliness", filters, first, after)
    return t.TimelinessReport(
        summary=t.TimelinessSummary(**vars(page.summary)),
        total_count=page.total_count,
        entries=[t.ContactTimeliness(**vars(r)) for r in page.rows],
        page_info=_page_info(page),
    )


async def anomalies(ctx: Context, filters: reports.Filters) -> t.AnomalyReport:
    services = ctx.services
    try:
        found = await reports.anomalies(services.store, filters, services.ig, services.clock())
    except ValueError as exc:  # e.g. a window that starts after now
        raise client_error(str(exc), "BAD_USER_INPUT") from None
    return t.AnomalyReport(
        since=found.since,
        until=found.until,
        truncated=found.truncated,
        anomalies=[
            t.AuditAnomaly(
                kind=t.AnomalyKind(a.kind),
                actor_subject=a.actor_subject,
                actor_agency=a.actor_agency,
                actor_team=a.actor_team,
                occurred_at=a.occurred_at,
                event_id=strawberry.ID(a.event_id) if a.event_id else None,
                subject_ids=[strawberry.ID(s) for s in a.subject_ids],
                count=a.count,
                usual=a.usual,
            )
            for a in found.anomalies
        ],
    )


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.title() for w in rest)


def _redacted(paths: Sequence[dict[str, str]]) -> list[t.RedactedPath]:
    return [t.RedactedPath(path=r["path"], reason=r["reason"]) for r in paths]


def _decisions(decisions: Sequence[dict[str, Any]]) -> list[t.PolicyDecision]:
    return [
        t.PolicyDecision(
            record_class=d["class"],
            agency=d.get("agency"),
            handling_code=d.get("handling_code"),
            decision=d["decision"],
            reason=d.get("reason"),
            hidden_fields=[
                t.RedactedPath(path=f, reason=r) for f, r in (d.get("hidden_fields") or {}).items()
            ],
            count=int(d.get("count", 1)),
        )
        for d in decisions
    ]


def _subjects(entries: Sequence[reports.SubjectEntry]) -> list[t.SubjectEntry]:
    return [
        t.SubjectEntry(subject_id=strawberry.ID(s.subject_id), relationship=s.relationship)
        for s in entries
    ]


def _shown(e: LoggedEvent) -> dict[str, Any]:
    """The fields a raw event and a report entry show alike."""
    return {
        "actor_subject": e.actor_subject,
        "actor_issuer": e.actor_issuer,
        "actor_roles": list(e.actor_roles),
        "actor_agency": e.actor_agency,
        "actor_team": e.actor_team,
        "client": e.client,
        "client_system": e.client_system,
        "actor_kind": e.actor_kind,
        "purpose": e.purpose,
        "contact_id": e.contact_id,
        "contact_stage": e.contact_stage,
        "justification": e.justification,
        "outcome": e.outcome,
        "sources": cast(JSON, e.sources),
        "fields_returned": list(e.fields_returned),
        "fields_redacted": _redacted(e.fields_redacted),
        "policy_decisions": _decisions(e.policy_decisions),
        "police_consulted": e.police_consulted,
    }


def entry(row: reports.Row) -> t.ReportEntry:
    e = row.event
    return t.ReportEntry(
        event_id=strawberry.ID(e.event_id),
        occurred_at=reports.utc(e.occurred_at) or e.occurred_at,
        relationship=row.relationship,
        operation=list(e.root_fields),
        subjects=_subjects(row.subjects),
        break_glass=e.break_glass is not None,
        consent_override=e.consent_override is not None,
        **_shown(e),
    )


def event(e: LoggedEvent, subjects: Sequence[reports.SubjectEntry]) -> t.AuditEvent:
    return t.AuditEvent(
        id=strawberry.ID(e.event_id),
        occurred_at=e.occurred_at,
        operation_type=e.operation_type,
        operation_name=e.operation_name,
        query_hash=e.query_hash,
        error_code=e.error_code,
        subjects=list(e.subjects),
        policy_version=e.policy_version,
        break_glass=cast(JSON, e.break_glass),
        consent_override=cast(JSON, e.consent_override),
        root_fields=list(e.root_fields),
        report=cast(JSON, e.report),
        subject_entries=_subjects(subjects),
        trace_id=e.trace_id,
        **_shown(e),
    )
