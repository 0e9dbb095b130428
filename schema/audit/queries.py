"""Reading the audit log and the IG reports: the `read_audit_log` policy (IG roles, purpose
IG_AUDIT) decides; every read is itself audited, naming what it asked about by id."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from hub.audit import events
from hub.context import Context
from hub.ig import reports

from ..common import Purpose, client_error
from . import build
from .types import (
    AnomalyReport,
    AuditEventConnection,
    AuditEventEdge,
    BreakGlassReview,
    ConsentOverrideEntry,
    NotSharedEntry,
    PageInfo,
    RegisterPage,
    ReportPage,
    TimelinessReport,
)

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
        filters = await build.open_report(ctx, "audit_events", subject_id, actor_subject)
        first = DEFAULT_PAGE if first is None or first is strawberry.UNSET else first
        if not 0 < first <= reports.MAX_PAGE:
            raise client_error(f"first must be between 1 and {reports.MAX_PAGE}", "BAD_USER_INPUT")
        if outcome and outcome not in events.OUTCOMES:
            raise client_error(
                f"outcome must be one of {', '.join(events.OUTCOMES)}", "BAD_USER_INPUT"
            )
        try:
            page = await events.read_events(
                ctx.services.store,
                first,
                after or None,
                filters.subject_id,
                filters.actor_subject,
                outcome or None,
            )
        except ValueError:
            raise client_error("invalid cursor", "BAD_USER_INPUT") from None
        entries = await reports.subject_entries(ctx.services.store, [e.seq for e in page.events])
        return AuditEventConnection(
            total_count=page.total_count,
            edges=[
                AuditEventEdge(
                    cursor=events.encode_cursor(e.seq), node=build.event(e, entries.get(e.seq, ()))
                )
                for e in page.events
            ],
            page_info=PageInfo(end_cursor=page.end_cursor, has_next_page=page.has_next_page),
        )

    @strawberry.field(
        description="Find a person's hub id for a subject access request: by NHS number, or "
        "by given name, family name and date of birth (exact, after normalising case, "
        "accents and punctuation). Only the ids of the people the hub has resolved come back, "
        "nothing else about them. IG roles, purpose SAR_RESPONSE; audited with the ids found "
        "and how the lookup was made, never the values given."
    )
    async def find_subjects(
        self,
        info: strawberry.Info[Context, None],
        purpose: Purpose,
        nhs_number: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        date_of_birth: date | None = None,
    ) -> list[strawberry.ID]:
        query = {
            "nhs_number": nhs_number,
            "given_name": given_name,
            "family_name": family_name,
            "date_of_birth": date_of_birth,
        }
        return await build.find_subjects(info.context, purpose.value, query)

    @strawberry.field(
        description="Subject access: who saw this person (a child's or household member's "
        "hub id) — when, why, from which agency and team, what was shown and withheld. "
        "IG roles only; the read is audited."
    )
    async def subject_access_report(
        self,
        info: strawberry.Info[Context, None],
        subject_id: strawberry.ID,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> ReportPage:
        filters = await build.open_report(
            info.context, "subject_access", subject_id, None, since, until
        )
        return await build.run_report(info.context, "subject_access", filters, first, after)

    @strawberry.field(
        description="Accessor activity: what this user (token subject) has looked at. "
        "IG roles only; the read is audited."
    )
    async def accessor_activity_report(
        self,
        info: strawberry.Info[Context, None],
        actor_subject: str,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> ReportPage:
        filters = await build.open_report(
            info.context, "accessor_activity", None, actor_subject, since, until
        )
        return await build.run_report(info.context, "accessor_activity", filters, first, after)

    @strawberry.field(
        description="Data Protection Act 2018 s62 extract: every consultation of "
        "police-originated data, optionally for one user or one subject. IG roles only."
    )
    async def police_s62_extract(
        self,
        info: strawberry.Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        actor_subject: str | None = None,
        subject_id: strawberry.ID | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> ReportPage:
        filters = await build.open_report(
            info.context, "police_s62", subject_id, actor_subject, since, until
        )
        return await build.run_report(info.context, "police_s62", filters, first, after)

    @strawberry.field(
        description="Anomalies in a window (default: the last day): accesses outside office "
        "hours, users far above their usual volume (configured in MASH_IG), and reads of a "
        "flagged child while no contact about the child was open (see AnomalyKind). IG "
        "roles only."
    )
    async def audit_anomalies(
        self,
        info: strawberry.Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        actor_subject: str | None = None,
    ) -> AnomalyReport:
        filters = await build.open_report(
            info.context, "anomalies", None, actor_subject, since, until
        )
        return await build.anomalies(info.context, filters)

    @strawberry.field(
        description="Break-glass review queue: every grant (granted in the window) with who, "
        "which child, the reason and justification, its expiry, the reads made under it and "
        "IG's review; unreviewedOnly for those still to review. IG roles only; the read is "
        "audited (by id, never the justification)."
    )
    async def break_glass_review_report(
        self,
        info: strawberry.Info[Context, None],
        unreviewed_only: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        actor_subject: str | None = None,
        subject_id: strawberry.ID | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> RegisterPage[BreakGlassReview]:
        name = "break_glass_review"
        filters = await build.open_report(
            info.context, name, subject_id, actor_subject, since, until, unreviewed_only
        )
        return await build.run_register(info.context, name, filters, first, after, BreakGlassReview)

    @strawberry.field(
        description="Consent-override register: every decision to share without consent "
        "(authorised in the window), optionally by one authoriser or about one child. IG "
        "roles only; the read is audited."
    )
    async def consent_override_register(
        self,
        info: strawberry.Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        subject_id: strawberry.ID | None = None,
        actor_subject: str | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> RegisterPage[ConsentOverrideEntry]:
        name = "consent_overrides"
        filters = await build.open_report(
            info.context, name, subject_id, actor_subject, since, until
        )
        return await build.run_register(
            info.context, name, filters, first, after, ConsentOverrideEntry
        )

    @strawberry.field(
        description="Decisions-not-to-share register: every item an agency decided not to "
        "share (recorded in the window), with the contact it was made for and that contact's "
        "children; optionally by one user or about one child. IG roles only; the read is "
        "audited."
    )
    async def not_shared_register(
        self,
        info: strawberry.Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        subject_id: strawberry.ID | None = None,
        actor_subject: str | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> RegisterPage[NotSharedEntry]:
        name = "not_shared"
        filters = await build.open_report(
            info.context, name, subject_id, actor_subject, since, until
        )
        return await build.run_register(info.context, name, filters, first, after, NotSharedEntry)

    @strawberry.field(
        description="Timeliness of contacts received in the window: each against its RAG "
        "timescale (MASH_RAG_HOURS), with a summary. IG roles only; the read is audited."
    )
    async def contact_timeliness_report(
        self,
        info: strawberry.Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> TimelinessReport:
        filters = await build.open_report(info.context, "timeliness", None, None, since, until)
        return await build.timeliness(info.context, filters, first, after)
