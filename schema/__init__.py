"""The GraphQL API: one sub-package per domain, merged into one federation schema here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from .audit.queries import AuditQueries
from .child.queries import ChildQueries
from .child.types import ChildRecord, Person
from .contacts.mutations import ContactMutations
from .contacts.queries import ContactQueries
from .identity.mutations import IdentityMutations
from .identity.queries import IdentityQueries

SDL_PATH = Path(__file__).resolve().parent / "hub.graphql"


@strawberry.type
class Query(ChildQueries, IdentityQueries, AuditQueries, ContactQueries):
    pass


@strawberry.type
class Mutation(IdentityMutations, ContactMutations):
    pass


class HubSchema(strawberry.federation.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs errors with the query text, which may hold names typed inline;
        the hub logs its own masked summary instead (hub.app)."""


# Bounds on one operation: each `child` fans out to every source, so a document may not
# multiply them without limit.
LIMITS: list[Callable[[], SchemaExtension]] = [
    lambda: QueryDepthLimiter(max_depth=12),
    lambda: MaxAliasesLimiter(max_alias_count=10),
    lambda: MaxTokensLimiter(max_token_count=4000),
]

schema = HubSchema(query=Query, mutation=Mutation, types=[ChildRecord, Person], extensions=LIMITS)


def sdl() -> str:
    """The schema's SDL as checked in at schema/hub.graphql."""
    return schema.as_str() + "\n"
