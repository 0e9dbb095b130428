"""Analysts' identity decisions: confirm or reject that a source record is the child, and
that a resident of the child's large shared address is the child's household."""

from __future__ import annotations

import strawberry

from hub.context import Context
from hub.identity.decisions import CONFIRMED, REJECTED

from ..common import Purpose, SourceName
from . import build
from .types import HouseholdDecision, LinkDecision


@strawberry.type
class IdentityMutations:
    @strawberry.mutation(
        description="Confirm that a source record is this child: it is linked on every later "
        "read, whatever the scorer says. Supersedes an earlier decision. MASH roles only."
    )
    async def confirm_link(
        self,
        info: strawberry.Info[Context, None],
        child_id: strawberry.ID,
        source: SourceName,
        source_record_id: str,
        reason: str,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> LinkDecision:
        return await build.decide(
            info.context,
            CONFIRMED,
            child_id,
            source,
            source_record_id,
            reason,
            purpose,
            contact_id or None,
        )

    @strawberry.mutation(
        description="Reject that a source record is this child: it is never linked to the "
        "child again (it may still show as a household member). Supersedes an earlier "
        "decision. MASH roles only."
    )
    async def reject_link(
        self,
        info: strawberry.Info[Context, None],
        child_id: strawberry.ID,
        source: SourceName,
        source_record_id: str,
        reason: str,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> LinkDecision:
        return await build.decide(
            info.context,
            REJECTED,
            child_id,
            source,
            source_record_id,
            reason,
            purpose,
            contact_id or None,
        )

    @strawberry.mutation(
        description="Confirm that a resident of the child's large shared address (a hostel, a "
        "block recorded without flat numbers; see `ChildRecord.sharedAddressResidents`) is "
        "the child's household: on every later read they are a household member and their "
        "agency records are read. Has no effect on anyone who is not such a resident. "
        "Supersedes an earlier decision. MASH roles working an open contact about the child."
    )
    async def confirm_household_resident(
        self,
        info: strawberry.Info[Context, None],
        child_id: strawberry.ID,
        resident_id: strawberry.ID,
        reason: str,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> HouseholdDecision:
        return await build.decide_household(
            info.context, CONFIRMED, child_id, resident_id, reason, purpose, contact_id or None
        )

    @strawberry.mutation(
        description="Record that a resident of the child's large shared address is not the "
        "child's household (they stay an unconfirmed resident, their records unread). "
        "Supersedes an earlier decision. MASH roles working an open contact about the child."
    )
    async def reject_household_resident(
        self,
        info: strawberry.Info[Context, None],
        child_id: strawberry.ID,
        resident_id: strawberry.ID,
        reason: str,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> HouseholdDecision:
        return await build.decide_household(
            info.context, REJECTED, child_id, resident_id, reason, purpose, contact_id or None
        )
