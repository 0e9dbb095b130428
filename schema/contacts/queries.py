"""Reading contacts, the MASH's KPIs, a team's notifications and the IG review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from hub.contacts import kpis
from hub.contacts import workflow as svc
from hub.context import Context
from hub.reading import oversight

from ..common import Purpose, client_error
from . import build
from . import types as t

MAX_PAGE = 200


@strawberry.type
class ContactQueries:
    @strawberry.field(
        description="One contact, for a purpose of contact work: all of it if you work it, "
        "its queue fields if you are on the MASH council team, else FORBIDDEN."
    )
    async def contact(
        self, info: strawberry.Info[Context, None], id: strawberry.ID, purpose: Purpose
    ) -> t.Contact:
        ctx = info.context
        cid = svc.contact_uuid(id)
        ctx.declare_purpose(purpose.value, cid)
        build.require(ctx, "read_contact", purpose.value, why="reading contacts")
        row, seen = await build.seen_contact(ctx, cid, purpose.value)
        return build.view(ctx, row, purpose.value, seen)

    @strawberry.field(
        description="Contacts matching every filter, newest first: those you work in full, "
        "the rest of the queue (MASH council team) as queue fields only. `childId` finds only "
        "contacts whose children you may see."
    )
    async def contacts(
        self,
        info: strawberry.Info[Context, None],
        purpose: Purpose,
        filters: t.ContactFilters | None = None,
        first: int = 50,
    ) -> list[t.Contact]:
        ctx = info.context
        ctx.declare_purpose(purpose.value, None)
        build.require(ctx, "read_contact", purpose.value, why="reading contacts")
        if not 0 < first <= MAX_PAGE:
            raise client_error(f"first must be between 1 and {MAX_PAGE}", "BAD_USER_INPUT")
        f = filters or t.ContactFilters()
        query = svc.ContactFilter(
            stage=f.stage,
            rag=f.rag,
            child_id=str(f.child_id) if f.child_id else None,
            overdue=f.overdue,
            assigned_team=f.assigned_team,
            received_from=f.received_from,
            received_to=f.received_to,
        )
        found = await svc.find(ctx.services.store, query, ctx.services.clock(), 10 * first)
        # A queue entry does not show its children, so a child filter must not find it.
        wanted = {build.DETAIL} if query.child_id else {build.DETAIL, build.QUEUE}
        seen = [(r, build.contact_view(ctx, r, purpose.value)) for r in found]
        rows = [(r, v) for r, v in seen if v in wanted][:first]
        for row, _ in rows:
            for subject_id in row.child_ids:
                ctx.notes.subject(subject_id, "child")
        return [build.view(ctx, r, purpose.value, v) for r, v in rows]

    @strawberry.field(
        name="contactKpis",
        description="The MASH's figures over contacts received in [from, to). MASH managers.",
    )
    async def contact_kpis(
        self,
        info: strawberry.Info[Context, None],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> t.ContactKpis:
        ctx = info.context
        build.require(ctx, "view_kpis", "", why="MASH managers only")
        k = await kpis.compute(ctx.services.store, from_, to, ctx.services.clock())
        return t.ContactKpis.of(k)

    @strawberry.field(
        description="A team's notifications, newest first (default: your own team). Your own "
        "team's, or any team's for MASH managers."
    )
    async def notifications(
        self, info: strawberry.Info[Context, None], team: str | None = None
    ) -> list[t.Notification]:
        ctx = info.context
        team = svc.text(team, "team", svc.MAX_SHORT, required=False) or ctx.actor.team
        if not team:
            raise client_error("name a team: your token names none", "BAD_USER_INPUT")
        whose = "OWN_TEAM" if team == ctx.actor.team else "OTHER_TEAM"
        build.require(ctx, "read_notifications", "", whose, why="reading this team's notices")
        rows = await oversight.notifications(ctx.services.store, team)
        for r in rows:
            ctx.notes.subject(r.subject_id, "child")
        return [t.Notification.of(r, build.shows_accessor(ctx, r.actor_agency)) for r in rows]

    @strawberry.field(description="The IG review queue: break-glass alerts, oldest first. IG.")
    async def ig_alerts(
        self, info: strawberry.Info[Context, None], unreviewed_only: bool = True
    ) -> list[t.IgAlert]:
        ctx = info.context
        ctx.declare_purpose(Purpose.IG_AUDIT.value, None)
        build.require(ctx, "review_alerts", "IG_AUDIT", why="IG officers only")
        return [
            t.IgAlert.of(r) for r in await oversight.ig_alerts(ctx.services.store, unreviewed_only)
        ]
