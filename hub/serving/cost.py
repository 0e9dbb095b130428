"""What a query costs: every field it selects, multiplied by the sizes of the lists above it.

A field costs 1 for each time it can be resolved: under a list field the count is multiplied
by the list's size — its `first`, `last` or `limit` argument (a literal or a variable), the
number of `representations` for `_entities`, else `default_list_size`. A connection (a
non-list field with `first`/`last`) hands its size to the first list below it (`edges`). So
`auditEvents(first: 50) { edges { node { id seq } } }` costs 1 + (1 + 50 × (1 + 2)) = 152:
the cost bounds how much one document can make the hub resolve, whatever its shape, before
anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

SIZE_ARGUMENTS = ("first", "last", "limit")


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    op: OperationDefinitionNode,
    variables: Mapping[str, Any],
    default_list_size: int,
) -> int:
    """The cost of running `op` (a document that passed validation) with `variables`."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.get_root_type(op.operation)
    if root is None:
        return 0

    def size(field: FieldNode) -> int | None:
        for arg in field.arguments or ():
            name, value = arg.name.value, arg.value
            if isinstance(value, VariableNode):
                resolved = variables.get(value.name.value)
            elif isinstance(value, IntValueNode):
                resolved = int(value.value)
            elif isinstance(value, ListValueNode):
                resolved = value.values
            else:
                continue
            if name in SIZE_ARGUMENTS and isinstance(resolved, int):
                return max(resolved, 0)
            if name == "representations" and isinstance(resolved, (list, tuple)):
                return len(resolved)
        return None

    def walk(
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        seen: frozenset[str],
        handed: int | None,
    ) -> int:
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += field_cost(sel, parent, seen, handed)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                target = schema.get_type(cond.name.value) if cond else parent
                total += walk(sel.selection_set, target or parent, seen, handed)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                frag = fragments.get(sel.name.value)
                if frag is not None:
                    target = schema.get_type(frag.type_condition.name.value) or parent
                    total += walk(frag.selection_set, target, seen | {sel.name.value}, handed)
        return total

    def field_cost(
        field: FieldNode, parent: GraphQLNamedType, seen: frozenset[str], handed: int | None
    ) -> int:
        fields = getattr(parent, "fields", None) or {}
        definition = fields.get(field.name.value)
        if definition is None or field.selection_set is None:
            return 1  # a leaf, __typename, or an introspection field
        field_type = definition.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        own = size(field)
        named = get_named_type(field_type)
        if isinstance(field_type, GraphQLList):
            many = own if own is not None else handed if handed is not None else default_list_size
            return 1 + many * walk(field.selection_set, named, seen, None)
        return 1 + walk(field.selection_set, named, seen, own)  # a connection hands on its size

    assert isinstance(root, GraphQLObjectType)
    return walk(op.selection_set, root, frozenset(), None)
