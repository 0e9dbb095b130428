"""The GraphQL API: one sub-package per domain, merged into one federation schema here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError, specified_rules
from strawberry.extensions.max_aliases import create_validator as aliases_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.federation.schema import FederationAny
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import Info

from hub.serving.operation import Documents, ReleasedExecution
from hub.telemetry.tracing import OperationSpan

from .audit.queries import AuditQueries
from .child.queries import ChildQueries
from .child.types import ChildRecord, Person
from .common import client_error
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


# Bounds on one operation: each `child` fans out to every source, so a document may not
# multiply them without limit. The rules are strawberry's own (as its QueryDepthLimiter,
# MaxAliasesLimiter and MaxTokensLimiter extensions add them, in the same order), built once.
MAX_TOKENS = 4000
RULES = (
    *specified_rules,
    depth_limit(12, None),
    aliases_limit(10),
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)


class HubSchema(strawberry.federation.Schema):
    # Each distinct document parsed and validated once (hub.serving.operation).
    documents = Documents(RULES, MAX_TOKENS)

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:  # strawberry builds `_entities` from these annotations
        """`_entities`, with each representation checked first: one that is not an object
        with a known `__typename` and an `id` gets a BAD_USER_INPUT error in its place
        (strawberry's own resolver would fail inside with an internal error); the others
        resolve as usual."""
        problems = [_representation_problem(i, r) for i, r in enumerate(representations)]
        fine = [r for r, problem in zip(representations, problems, strict=True) if not problem]
        resolved = iter(super().entities_resolver(info, fine))
        return [problem or next(resolved) for problem in problems]  # type: ignore[misc]

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs errors with the query text, which may hold names typed inline;
        the hub logs its own masked summary instead (hub.app)."""


ENTITIES = ("ChildRecord", "Person")


def _representation_problem(index: int, representation: Any) -> GraphQLError | None:
    """Why a representation cannot be resolved, or None. Its values are never echoed."""
    where = f"representations[{index}]"
    if not isinstance(representation, dict):
        return client_error(f"{where} is not an object", "BAD_USER_INPUT")
    if representation.get("__typename") not in ENTITIES:
        return client_error(
            f"{where} has an unknown __typename: this hub resolves {', '.join(ENTITIES)}",
            "BAD_USER_INPUT",
        )
    if not isinstance(representation.get("id"), str) or not representation["id"]:
        return client_error(f"{where} needs an id (the entity's key)", "BAD_USER_INPUT")
    return None


schema = HubSchema(
    query=Query,
    mutation=Mutation,
    types=[ChildRecord, Person],
    # the operation's span first: it spans parsing and validation too
    extensions=[OperationSpan, HubSchema.documents.extension()],
    execution_context_class=ReleasedExecution,
)


def sdl() -> str:
    """The schema's SDL as checked in at schema/hub.graphql."""
    return schema.as_str() + "\n"
