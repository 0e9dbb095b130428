"""Request errors that say what to do.

graphql-core's messages name schema coordinates and types ("Argument
'Query.searchChildren(purpose:)' of type 'Purpose!' is required") and quote the client's
values; the hub masks quoted values, which left "Argument '…' of type '…' is required". For
the mistakes people make most, this module writes a message that names the argument or
field in the client's own words and what it accepts: the allowed values of an enum (the
purposes first of all), the format of a date. The client's values are never echoed back:
they can be a child's name or date of birth, and messages are logged.
"""

from __future__ import annotations

import re

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLEnumType,
    GraphQLSchema,
    Node,
    ObjectFieldNode,
    StringValueNode,
    Visitor,
    visit,
)

FORMATS = {
    "Date": "a date written YYYY-MM-DD (for example 2016-03-14)",
    "DateTime": "a date and time in ISO 8601 with its offset (for example 2026-12-04T09:30:00Z)",
}
PURPOSE_HINT = "name the purpose of use of this request"

_REQUIRED_ARG = re.compile(
    r"^Argument '(?P<type>\w+)\.(?P<field>\w+)\((?P<arg>\w+):\)' of type '(?P<of>\w+)!?' "
    r"is required"
)
_NO_SUCH_VALUE = re.compile(r"^Value '(?P<value>.*)' does not exist in '(?P<enum>\w+)' enum")
_BAD_SCALAR = re.compile(r'^Value cannot represent a (?P<scalar>\w+): "(?P<value>.*?)"')
_VARIABLE = re.compile(
    r"^Variable '\$(?P<var>\w+)' (?:has|got) invalid value(?: at '?\.?(?P<at>[\w.\[\]]*)'?)?: "
    r"(?P<rest>.*)$",
    re.S,
)
_NOT_PROVIDED = re.compile(r"^Expected a value of non-null type '(?P<of>\w+)!' to be provided")
_VARIABLE_MISSING = re.compile(r"^Variable '\$(?P<var>\w+)' of (?:required|non-null) type "
                               r"'(?P<of>\w+)!' (?:was not provided|must not be null)")  # fmt: skip


def explain(message: str, document: DocumentNode | None, schema: GraphQLSchema) -> str | None:
    """A message that says what to do for a request error graphql-core reported as
    `message`, or None to keep graphql-core's (masked) message."""
    if m := _REQUIRED_ARG.match(message):
        return _required(m["arg"], m["field"], m["of"], schema)
    if m := _VARIABLE_MISSING.match(message):
        return f"Variable '${m['var']}' is required: {_accepts(m['of'], schema)}."
    if m := _VARIABLE.match(message):
        subject = f"Variable '${m['var']}'" + (f" at '{m['at']}'" if m["at"] else "")
        if missing := _NOT_PROVIDED.match(m["rest"]):
            return f"{subject} is required: {_accepts(missing['of'], schema)}."
        return _value_error(m["rest"], None, schema, subject)
    return _value_error(message, document, schema)


def _value_error(
    message: str, document: DocumentNode | None, schema: GraphQLSchema, subject: str = ""
) -> str | None:
    if m := _NO_SUCH_VALUE.match(message):
        name = _named(document, m["value"], enum=True) if document else None
        what = subject or (f"'{name}'" if name else f"a {m['enum']} value")
        return f"{what} is not a known {m['enum']}: {_accepts(m['enum'], schema)}."
    if (m := _BAD_SCALAR.match(message)) and m["scalar"] in FORMATS:
        name = _named(document, m["value"], enum=False) if document else None
        what = subject or (f"'{name}'" if name else "a value")
        return f"{what} is not a valid {m['scalar']}: expected {FORMATS[m['scalar']]}."
    return None


def _required(arg: str, field: str, of: str, schema: GraphQLSchema) -> str:
    hint = f"{PURPOSE_HINT}, " if of == "Purpose" else ""
    return f"Argument '{arg}' of '{field}' is required: {hint}{_accepts(of, schema)}."


def _accepts(type_name: str, schema: GraphQLSchema) -> str:
    named = schema.get_type(type_name)
    if isinstance(named, GraphQLEnumType):
        return "one of " + ", ".join(named.values)
    if type_name in FORMATS:
        return FORMATS[type_name]
    return f"a {type_name}"


def _named(document: DocumentNode, literal: str, enum: bool) -> str | None:
    """The argument or input field that holds `literal` (an enum value or a string) in the
    document, found by the node's value, never reported back."""
    found: list[str] = []

    class Owners(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            self._check(node.name.value, node.value)

        def enter_object_field(self, node: ObjectFieldNode, *_: object) -> None:
            self._check(node.name.value, node.value)

        def _check(self, name: str, value: Node) -> None:
            kind = "enum_value" if enum else StringValueNode.kind
            if value.kind == kind and getattr(value, "value", None) == literal:
                found.append(name)

    visit(document, Owners())
    return found[0] if len(set(found)) == 1 else None
