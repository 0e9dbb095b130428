"""The API a partner's documents run against at the gateway: the hub's schema extended by
the example partner subgraphs' own types and fields (gateway/*/schema.graphql).

Documents registered for a client behind the gateway are supergraph operations
(`nurseCaseload`, `ChildRecord.schoolNurse`), not the hub's; `mash-hub trusted-documents`
validates each against the hub's schema or, failing that, this one, so a typo is caught
when the manifest is made rather than by a refusal at the gateway. Federation directives
are dropped: validation needs only the types and fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    GraphQLObjectType,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    SchemaExtensionNode,
    extend_schema,
    parse,
)

from ..settings import PROJECT_ROOT

SUBGRAPHS = PROJECT_ROOT / "gateway"


def subgraph_sdls(folder: Path = SUBGRAPHS) -> list[Path]:
    """The partner subgraphs' SDL files: `schema.graphql` in each folder under `folder`."""
    return sorted(folder.glob("*/schema.graphql"))


def gateway_schema(hub: GraphQLSchema, sdls: Iterable[Path]) -> GraphQLSchema:
    """`hub` with each subgraph's types added and the hub's entity types extended."""
    schema = hub
    for path in sdls:
        definitions = []
        for node in parse(path.read_text()).definitions:
            if isinstance(node, SchemaExtensionNode):
                continue
            if isinstance(node, ObjectTypeDefinitionNode):
                node = _without_directives(node, schema.get_type(node.name.value))
            definitions.append(node)
        schema = extend_schema(schema, DocumentNode(definitions=tuple(definitions)))
    return schema


def _without_directives(
    node: ObjectTypeDefinitionNode, existing: object
) -> ObjectTypeDefinitionNode | ObjectTypeExtensionNode:
    """A subgraph's own type as it is; a type the hub has, as an extension with the new
    fields only (the key field is the hub's already)."""
    fields = tuple(
        FieldDefinitionNode(
            name=f.name, arguments=f.arguments, type=f.type, description=f.description
        )
        for f in node.fields or ()
        if not (isinstance(existing, GraphQLObjectType) and f.name.value in existing.fields)
    )
    if isinstance(existing, GraphQLObjectType):
        return ObjectTypeExtensionNode(name=node.name, fields=fields, directives=(), interfaces=())
    return ObjectTypeDefinitionNode(
        name=node.name, fields=fields, description=node.description, directives=(), interfaces=()
    )
