"""The review queue: candidate links no analyst has decided yet."""

from __future__ import annotations

import strawberry

from adapters.base import Source
from hub.context import Context
from hub.identity import decisions

from ..audit.types import PageInfo
from ..common import Purpose, client_error
from . import build
from .types import LinkReview, LinkReviewConnection, LinkReviewEdge

MAX_PAGE = 200
DEFAULT_PAGE = 50


@strawberry.type
class IdentityQueries:
    @strawberry.field(
        description="Review-band candidate links waiting for an analyst, oldest first. "
        "MASH roles only."
    )
    async def review_queue(
        self,
        info: strawberry.Info[Context, None],
        first: int | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        *,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> LinkReviewConnection:
        ctx = info.context
        await build.open_decider(ctx, purpose, contact_id or None)
        first = DEFAULT_PAGE if first is None or first is strawberry.UNSET else first
        if not 0 < first <= MAX_PAGE:
            raise client_error(f"first must be between 1 and {MAX_PAGE}", "BAD_USER_INPUT")
        try:
            page = await decisions.review_queue(ctx.services.store, first, after or None)
        except ValueError:
            raise client_error("invalid cursor", "BAD_USER_INPUT") from None
        for r in page.reviews:
            ctx.notes.subject(r.subject_id, "child")
            target = decisions.target_id(Source(r.source), r.source_record_id)
            ctx.notes.subject(target, "link_target")
        return LinkReviewConnection(
            total_count=page.total_count,
            edges=[
                LinkReviewEdge(cursor=decisions.encode_cursor(r.seq), node=LinkReview.of(r))
                for r in page.reviews
            ],
            page_info=PageInfo(end_cursor=page.end_cursor, has_next_page=page.has_next_page),
        )
