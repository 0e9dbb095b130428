"""Queries for children: search, then read one record."""

from __future__ import annotations

import strawberry

from hub.context import Context
from hub.reading.reader import Reader

from ..common import Purpose
from . import build
from .types import ChildMatch, ChildRecord, PersonSearch


@strawberry.type
class ChildQueries:
    @strawberry.field(description="Children matching every given criterion, across all sources.")
    async def search_children(
        self,
        info: strawberry.Info[Context, None],
        criteria: PersonSearch,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> list[ChildMatch]:
        access = await build.open_access(info.context, purpose, contact_id or None)
        matches, statuses = await info.context.services.records.search(build.search_query(criteria))
        access.consulted({s.value: st for s, st in statuses.items()})
        return [build.child_match(m, info.context, access) for m in matches]

    @strawberry.field(description="One child's unified record, as this reader may see it.")
    async def child(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,
        purpose: Purpose,
        contact_id: strawberry.ID | None = strawberry.UNSET,
    ) -> ChildRecord | None:
        reader = Reader(info.context)
        read = await reader.child(build.subject_id(id), purpose.value, contact_id or None)
        return build.child_record(read)
