"""The contact workflow's changes. Each is one audited operation: the change is staged on
the audit record and commits in the audit event's transaction (hub.contacts.workflow)."""

from __future__ import annotations

import uuid

import strawberry

from hub.contacts import workflow as svc
from hub.context import Context
from hub.reading import oversight

from ..child.build import subject_id
from ..common import Purpose, SourceName
from . import build
from . import types as t


@strawberry.type
class ContactMutations:
    @strawberry.mutation(
        description="Record a contact received by the MASH, in SCREENING (purpose "
        "MASH_SCREENING). MASH social workers and managers."
    )
    async def create_contact(
        self, info: strawberry.Info[Context, None], input: t.CreateContactInput
    ) -> t.Contact:
        ctx = info.context
        ctx.declare_purpose(Purpose.MASH_SCREENING.value, None)
        build.require(ctx, "create_contact", "MASH_SCREENING", why="recording contacts")
        new = svc.NewContact(
            concern=input.concern,
            rag=input.rag,
            referrer_type=input.referrer.type,
            referrer_anonymous=input.referrer.anonymous,
            referrer_name=input.referrer.name,
            referrer_contact=input.referrer.contact_details,
            child_ids=tuple(str(c) for c in input.child_ids),
            child_details=build.details(input.child),
            received_at=input.received_at,
        )
        s = ctx.services
        row = await svc.create(s.store, ctx.notes, ctx.actor, new, s.clock(), s.contacts)
        return build.view(ctx, row, "MASH_SCREENING")

    @strawberry.mutation(
        description="Move a contact one stage on (SCREENING → RESEARCH → DECISION → CLOSED), "
        "or back a stage with a reason (MASH managers). Entering RESEARCH opens one research "
        "task per agency; closing needs a decision."
    )
    async def advance_contact(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        stage: str,
        purpose: Purpose,
        reason: str | None = None,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(
            ctx, purpose, id, "advance_contact", "changing contacts' stage"
        )
        reopen = build.allowed(ctx, "reopen_contact", purpose.value)
        change = svc.advance(stage, reason, ctx.actor, ctx.services.clock(), reopen)
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(description="Assign staff and teams to a contact. MASH managers.")
    async def assign_contact(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        purpose: Purpose,
        staff: list[str] | None = None,
        teams: list[str] | None = None,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(ctx, purpose, id, "assign_contact", "allocating contacts")
        change = svc.assign(staff or [], teams or [], ctx.services.clock())
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Record the family's consent: state GIVEN, REFUSED, NOT_SOUGHT or "
        "WITHDRAWN, who gave it, and the agencies it covers (empty: all)."
    )
    async def record_consent(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        state: str,
        purpose: Purpose,
        given_by: str | None = None,
        scope: list[str] | None = None,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(ctx, purpose, id, "record_consent", "recording consent")
        change = svc.record_consent(
            state, given_by, scope or [], ctx.actor, ctx.services.clock(), str(uuid.uuid4())
        )
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Authorise sharing without consent for this contact only. MASH managers; "
        "reasonCode one of " + ", ".join(svc.OVERRIDE_REASONS) + ", and a justification."
    )
    async def override_consent(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        reason_code: str,
        justification: str,
        purpose: Purpose,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(
            ctx, purpose, id, "override_consent", "authorising sharing without consent"
        )
        override_id = str(uuid.uuid4())
        change = svc.override_consent(
            reason_code, justification, ctx.actor, ctx.services.clock(), override_id
        )
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        ctx.notes.justification(row.overrides[-1].justification)
        ctx.notes.consent_override(
            {
                "override_id": override_id,
                "authoriser": ctx.actor.subject,
                "authoriser_role": "mash_manager",
                "reason_code": reason_code,
            }
        )
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Update an agency's research task: status REQUESTED, IN_PROGRESS, "
        "COMPLETED or DECLINED, and a summary. That agency's practitioners, or MASH staff."
    )
    async def update_research_task(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        agency: str,
        status: str,
        purpose: Purpose,
        summary: str | None = None,
    ) -> t.Contact:
        ctx = info.context
        ctx.declare_purpose(purpose.value, svc.contact_uuid(id))
        svc.one_of(agency, svc.AGENCIES, "agency")
        row = await build.open_contact(
            ctx, purpose, id, "update_research", "updating this agency's research", agency
        )
        change = svc.update_task(agency, status, summary, ctx.actor, ctx.services.clock())
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Record the threshold decision (NFA, EARLY_HELP, S17, S47, OPEN_CASE, "
        "IMMEDIATE_PROTECTION) with reasons and the referrer's feedback; for S47 whether "
        "the parents were told. MASH managers, in the DECISION stage."
    )
    async def record_decision(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        decision: str,
        reasons: str,
        purpose: Purpose,
        referrer_feedback: str | None = None,
        parents_told: bool | None = None,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(ctx, purpose, id, "record_decision", "recording decisions")
        change = svc.record_decision(
            decision, reasons, referrer_feedback, parents_told, ctx.actor, ctx.services.clock()
        )
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Record an s47 strategy discussion held about the contact (in RESEARCH or "
        "DECISION, once): when, whether the parents were told, and why. With an S47 or "
        "IMMEDIATE_PROTECTION decision it is the fact that lets agencies share without "
        "consent; naming S47_STRATEGY does not. MASH managers, for S47_STRATEGY or "
        "THRESHOLD_DECISION."
    )
    async def record_strategy_discussion(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        purpose: Purpose,
        input: t.StrategyDiscussionInput,
    ) -> t.Contact:
        ctx = info.context
        row = await build.open_contact(
            ctx, purpose, id, "record_strategy_discussion", "recording s47 strategy discussions"
        )
        change = svc.record_strategy_discussion(
            input.held_at, input.parents_told, input.reason, ctx.actor, ctx.services.clock()
        )
        row = await svc.change(ctx.services.store, ctx.notes, row.id, change)
        # The event keeps the reason's digest, never its text
        # (hub.audit.events.justification_digest).
        ctx.notes.justification(row.strategy_reason)
        return build.view(ctx, row, purpose.value)

    @strawberry.mutation(
        description="Break glass: a read-only grant to read this child under purpose "
        "BREAK_GLASS for a configured time (default 60 minutes). reasonCode one of "
        + ", ".join(svc.BREAK_GLASS_REASONS)
        + "; raises an IG alert and notifies the child's owning team."
    )
    async def break_glass(
        self,
        info: strawberry.Info[Context, None],
        child_id: strawberry.ID,
        reason_code: str,
        justification: str,
    ) -> t.BreakGlassGrant:
        ctx = info.context
        sid = subject_id(child_id)
        ctx.notes.subject(sid, "child", primary=True)
        ctx.declare_purpose(Purpose.BREAK_GLASS.value, None)
        build.require(ctx, "break_glass", "BREAK_GLASS", why="breaking glass")
        s = ctx.services
        grant, alert, notice = await oversight.break_glass(
            s.store, ctx.notes, ctx.actor, sid, reason_code, justification, s.clock(), s.contacts
        )
        return t.BreakGlassGrant(
            id=strawberry.ID(grant.id),
            child_id=strawberry.ID(sid),
            reason_code=grant.reason_code,
            granted_at=grant.granted_at,
            expires_at=grant.expires_at,
            alert_id=strawberry.ID(alert.id),
            notified_team=notice.team,
        )

    @strawberry.mutation(
        description="Record your agency's decision not to share one of its items (reasonCode "
        "one of " + ", ".join(svc.WITHHOLD_REASONS) + ", and a reason): other agencies then "
        "see it as withheld by your agency. The item's originating agency's practitioners. "
        "contactId (optional) names the contact the decision is made for: one you work; the "
        "decision is then audited with that contact's children and shown with them in the "
        "decisions-not-to-share register."
    )
    async def withhold_item(
        self,
        info: strawberry.Info[Context, None],
        source: SourceName,
        item_id: str,
        reason_code: str,
        reason: str,
        purpose: Purpose,
        contact_id: strawberry.ID | None = None,
    ) -> t.WithheldItem:
        ctx = info.context
        cid = svc.contact_uuid(contact_id) if contact_id is not None else None
        ctx.declare_purpose(purpose.value, cid)
        agency = svc.SOURCE_AGENCY[source.value]
        build.require(
            ctx, "withhold_item", purpose.value, agency, why="only the originating agency withholds"
        )
        if cid is not None:
            await build.worked_contact(ctx, cid, purpose.value)
        s = ctx.services
        row = await oversight.withhold(
            s.store,
            ctx.notes,
            ctx.actor,
            source.value,
            item_id,
            reason_code,
            reason,
            s.clock(),
            contact_id=cid,
        )
        return t.WithheldItem.of(row, source)

    @strawberry.mutation(
        description="Record IG's review of an alert: outcome "
        + ", ".join(svc.IG_OUTCOMES)
        + ", with notes. IG officers."
    )
    async def review_ig_alert(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        outcome: str,
        notes: str | None = None,
    ) -> t.IgAlert:
        ctx = info.context
        ctx.declare_purpose(Purpose.IG_AUDIT.value, None)
        build.require(ctx, "review_alerts", "IG_AUDIT", why="reviewing IG alerts")
        row = await oversight.review_alert(
            ctx.services.store, ctx.notes, ctx.actor, id, outcome, notes, ctx.services.clock()
        )
        return t.IgAlert.of(row)
