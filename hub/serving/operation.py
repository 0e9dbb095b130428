"""One GraphQL operation over HTTP: read the request, authenticate, execute, and note on
the operation's `AuditNotes` who asked, what and how it ended (the services note what they
did). The caller (hub.app) builds the record from the notes and commits it before
responding.

Everything a client can send is checked here so that bad input gets a clear error, is
audited as `invalid`, and never echoes what the client typed (it may be a child's name).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from ..audit import events
from ..audit.events import AuditNotes
from ..auth import session
from ..auth.tokens import AuthError
from ..context import Context
from ..errors import CLIENT_CODES
from ..partners.gate import PartnerGate, Refusal
from ..partners.routers import Routers
from ..partners.trusted import UntrustedDocument, requested_id
from ..settings import PartnerSystem, Settings
from ..state import AppState
from . import messages
from .cost import query_cost

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
MAX_NAME = 100
_QUOTED = re.compile(r"""(["'])(.*?)\1""")


class BadRequest(Exception):
    """The request is not a GraphQL operation we can run: HTTP 400, audited as invalid."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True)
class Prepared:
    """One query text parsed and validated: its document (None if it does not parse, with
    `parse_error`), whether it parses within the token limit, the validation errors (of a
    document within the limit), and the audit's hash of it."""

    query: str
    document: DocumentNode | None
    parse_error: GraphQLError | None
    within_limit: bool
    errors: tuple[GraphQLError, ...]
    hash: str


# The document the running operation prepared, so execution parses nothing again even
# when the text is too long to cache.
_CURRENT: ContextVar[Prepared | None] = ContextVar("prepared_document", default=None)
_EXECUTION: ContextVar[StrawberryGraphQLCoreExecutionContext | None] = ContextVar(
    "graphql_execution", default=None
)


class ReleasedExecution(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution context refers to itself (its async helpers are its own
    bound methods), so every operation left a reference cycle holding all it had touched
    (the request's context and audit notes, the executor's field caches: some 700 objects
    for a child read) for the garbage collector to find. `run_operation` cuts the cycle
    once the operation is done (`release_execution`), so they go as soon as it returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _EXECUTION.set(self)


def release_execution() -> None:
    """Cut this operation's execution context out of its own reference cycle."""
    execution = _EXECUTION.get()
    if execution is not None:
        _EXECUTION.set(None)
        vars(execution).pop("async_helpers", None)


class Documents:
    """Parses and validates each distinct query text once (an LRU of `size` texts of at most
    `max_chars`), with validation rules built once. Errors are strawberry's own: a document
    over `max_tokens` fails as its token limiter does, and validation runs the same rules in
    the same order, so clients see the same messages as with strawberry's limit extensions.
    """

    def __init__(
        self,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        size: int = 512,
        max_chars: int = 32 * 1024,
    ) -> None:
        self.rules = tuple(rules)
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self._cached = lru_cache(maxsize=size)(self._prepare)

    def prepare(self, schema: GraphQLSchema, query: str) -> Prepared:
        current = _CURRENT.get()
        if current is not None and current.query is query:
            return current
        if len(query) > self.max_chars:
            return self._prepare(schema, query)
        return self._cached(schema, query)

    def _prepare(self, schema: GraphQLSchema, query: str) -> Prepared:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            try:  # the whole text, for the audit hash and a plain syntax error
                document = parse(query)
            except GraphQLError as exc:
                return Prepared(query, None, exc, False, (), events.query_hash(None, query))
            return Prepared(query, document, None, False, (), events.query_hash(document, query))
        errors = tuple(validate(schema, document, self.rules))
        return Prepared(query, document, None, True, errors, events.query_hash(document, query))

    def extension(self) -> type[SchemaExtension]:
        """A schema extension that hands strawberry the prepared document and its validation
        errors, so it neither parses nor validates again."""
        documents = self

        class PreparedDocument(SchemaExtension):
            def on_parse(self) -> Iterator[None]:
                ctx = self.execution_context
                prepared = documents.prepare(ctx.schema._schema, ctx.query or "")
                if prepared.within_limit:
                    ctx.graphql_document = prepared.document
                else:  # strawberry parses and fails as its token limiter would
                    ctx.parse_options["max_tokens"] = documents.max_tokens
                yield

            def on_validate(self) -> Iterator[None]:
                ctx = self.execution_context
                prepared = documents.prepare(ctx.schema._schema, ctx.query or "")
                ctx.pre_execution_errors = list(prepared.errors)
                yield

        return PreparedDocument


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


async def read_body(request: Request) -> bytes:
    """The body, refusing to buffer more than MAX_BODY."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest("request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Payload:
    """A request body: the query text (None when a partner names a document by id only),
    variables, operation name and the document id it names, if any."""

    query: str | None
    variables: dict[str, Any]
    operation_name: str | None
    document_id: str | None = None


def parse_payload(raw: bytes, by_id: bool = False) -> Payload:
    """The body; with `by_id` (partner clients) a registered document id may stand in for
    the query text."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object with a 'query' string")
    query, variables, name = (
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
    )
    doc_id = None
    if by_id:
        try:
            doc_id = requested_id(payload)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    if not isinstance(query, str) and not (doc_id is not None and query is None):
        raise BadRequest("the body must be a JSON object with a 'query' string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("'variables' must be a JSON object")
    if name is not None and not isinstance(name, str):
        raise BadRequest("'operationName' must be a string")
    return Payload(query, variables or {}, name, doc_id)


def refused(notes: AuditNotes, refusal: Refusal) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A partner request refused before it ran: audited as denied with the refusal's code."""
    notes.outcome("denied", refusal.code)
    body = error_body(refusal.message, refusal.code)
    body["errors"][0]["extensions"].update(refusal.extensions)
    return refusal.status, body, refusal.headers


def select_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    """The operation to run, as the GraphQL spec chooses it."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        for op in ops:
            if op.name and op.name.value == name:
                return op
        raise BadRequest(
            "no operation in the document has the given operationName", "GRAPHQL_VALIDATION_FAILED"
        )
    if len(ops) != 1:
        raise BadRequest(
            "give operationName: the document has several operations", "GRAPHQL_VALIDATION_FAILED"
        )
    return ops[0]


async def run_operation(
    request: Request,
    notes: AuditNotes,
    state: AppState,
    schema: Any,
    settings: Settings,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Authenticate and execute one operation; returns (HTTP status, JSON body, headers).

    A request through a partner system's client passes the partner gate first (rate,
    trusted document, cost: hub/partners/gate.py); staff using the hub directly do not. Through
    a trusted router (hub/partners/routers.py) the document check is the router's, not repeated."""
    routers: Routers | None = state.routers
    try:
        notes.actor = await session.authenticate(request, state)  # bearer, or the cookie
        routed = await routers.router(request) if routers is not None else None
    except AuthError as exc:
        notes.outcome("unauthenticated", "UNAUTHENTICATED")
        return 401, error_body(exc.message, "UNAUTHENTICATED"), {}

    gate: PartnerGate | None = state.partners
    system = gate.system(notes.actor) if gate is not None else None
    if gate is not None and system is not None:
        refusal = gate.check_rate(notes.actor, system)
        if refusal is not None:
            return refused(notes, refusal)

    try:
        documents_gated = system is not None and routed is None
        payload = parse_payload(await read_body(request), by_id=documents_gated)
        query, variables, operation_name = payload.query, payload.variables, payload.operation_name
        if gate is not None and documents_gated:
            trusted = _trusted_text(gate, notes, payload)
            if isinstance(trusted, Refusal):
                return refused(notes, trusted)
            query = trusted
        assert query is not None
        prepared = schema.documents.prepare(schema._schema, query)
        notes.query_hash(prepared.hash)
        if prepared.document is None:
            message = prepared.parse_error.message if prepared.parse_error else "syntax error"
            raise BadRequest(sanitise(message, schema), "GRAPHQL_PARSE_FAILED")
        document = prepared.document
        op = select_operation(document, operation_name)
    except BadRequest as exc:
        notes.outcome("invalid", exc.code)
        return 400, error_body(exc.message, exc.code), {}
    # Only names the schema has: an unknown field name is client-typed text.
    root_type = schema._schema.get_root_type(op.operation)
    notes.operation(
        op.operation.value,
        op.name.value[:MAX_NAME] if op.name else None,
        root_fields=(
            n for n in root_fields(document, op) if root_type is not None and n in root_type.fields
        ),
    )

    if gate is not None and system is not None and prepared.within_limit and not prepared.errors:
        refusal = _cost_refusal(gate, system, schema, document, op, variables)
        if refusal is not None:
            return refused(notes, refusal)

    context = Context(
        actor=notes.actor,
        services=state.services,
        notes=notes,
        purpose_header=request.headers.get("x-purpose-of-use"),
        contact_header=request.headers.get("x-contact-id"),
    )
    token = _CURRENT.set(prepared)
    try:
        async with asyncio.timeout(settings.request_deadline_ms / 1000):
            result = await schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
    except TimeoutError:
        notes.outcome("error", "DEADLINE_EXCEEDED")
        return 504, error_body("the request ran past its deadline", "DEADLINE_EXCEEDED"), {}
    finally:
        _CURRENT.reset(token)
        release_execution()

    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [format_error(e, schema, document) for e in result.errors]
        codes = [e["extensions"]["code"] for e in body["errors"]]
        if result.data is None and all(e.path is None for e in result.errors):
            notes.outcome("invalid", codes[0])  # validation or variables: nothing ran
        elif "FORBIDDEN" in codes:
            notes.outcome("denied", codes[0])
        else:
            notes.outcome("error", codes[0])
    elif set(notes.sources_said.values()) & {"UNAVAILABLE", "TIMED_OUT"}:
        notes.outcome("partial")
    elif notes.anything_redacted:
        notes.outcome("redacted")
    notes.returned(returned_paths(result.data, document, op))
    return 200, body, {}


def _trusted_text(gate: PartnerGate, notes: AuditNotes, payload: Payload) -> str | Refusal:
    """The registered text a partner's request runs, or why it may not run (the refused
    text is audited by its hash, literals blanked, like any other)."""
    assert notes.actor is not None and notes.actor.client is not None
    if payload.query is not None:
        notes.query_hash(events.query_hash(None, payload.query))
    try:
        return gate.documents.resolve(notes.actor.client, payload.query, payload.document_id)
    except UntrustedDocument as exc:
        return Refusal(400, "UNTRUSTED_DOCUMENT", exc.message)


def _cost_refusal(
    gate: PartnerGate,
    system: PartnerSystem,
    schema: Any,
    document: DocumentNode,
    op: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> Refusal | None:
    cost = query_cost(schema._schema, document, op, variables, gate.default_list_size)
    return gate.check_cost(system, cost)


def format_error(
    error: GraphQLError, schema: Any, document: DocumentNode | None = None
) -> dict[str, Any]:
    """Client-facing error: our own codes verbatim; request errors (syntax, validation,
    variables) saying what to do where `messages` knows the mistake, else with any quoted
    input removed; anything else masked, logged without data."""
    code = (error.extensions or {}).get("code")
    if code in CLIENT_CODES:
        return {"message": error.message, "path": error.path, "extensions": {"code": code}}
    if error.path is None:
        locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or []]
        explained = messages.explain(error.message, document, schema._schema)
        return {
            "message": explained or sanitise(error.message, schema),
            "locations": locations,
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
        }
    # Type and path only: an exception's text may carry personal data.
    cause = type(error.original_error).__name__ if error.original_error else "GraphQLError"
    log.error("unexpected error at %s: %s", error.path, cause)
    return {
        "message": "internal error",
        "path": error.path,
        "extensions": {"code": "INTERNAL_ERROR"},
    }


def sanitise(message: str, schema: Any) -> str:
    """Replace quoted text in a GraphQL message unless it is a name from the schema, so a
    client's literal values (names, dates of birth) are not echoed back or logged."""
    names = vocabulary(schema._schema)
    return _QUOTED.sub(
        lambda m: m.group(0) if m.group(2).lstrip("$") in names else f"{m.group(1)}…{m.group(1)}",
        message,
    )


@cache
def vocabulary(gql: GraphQLSchema) -> frozenset[str]:
    """Every type, field, argument and enum value name in the schema."""
    names: set[str] = set()
    for type_name, t in gql.type_map.items():
        names.add(type_name)
        if isinstance(t, GraphQLEnumType):
            names.update(t.values)
        for field_name, field in (getattr(t, "fields", None) or {}).items():
            names.add(field_name)
            if not isinstance(t, GraphQLInputObjectType):
                names.update(field.args)
    return frozenset(names)


def root_fields(document: DocumentNode, op: OperationDefinitionNode) -> set[str]:
    """Schema fields the operation asks for at its root, e.g. `child`, `searchChildren`
    (schema names, unlike the operation name a client chooses)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    out: set[str] = set()
    pending, seen = [op.selection_set], set()
    while pending:
        for sel in pending.pop().selections:
            if isinstance(sel, FieldNode):
                out.add(sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                pending.append(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                seen.add(sel.name.value)
                if sel.name.value in fragments:
                    pending.append(fragments[sel.name.value].selection_set)
    return out


def returned_paths(data: Any, document: DocumentNode, op: OperationDefinitionNode) -> set[str]:
    """Schema field paths that came back with a value, e.g. `child.police.incidents.dashRisk`
    — by field name, not by the client's aliases (which are free text)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    out: set[str] = set()
    _walk(data, op.selection_set, "", _Selections(fragments), out)
    return out


class _Selections:
    """Each selection set's fields (fragments spread), worked out once per operation: a
    list of items walks the same set once per item."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.known: dict[int, list[tuple[str, str, SelectionSetNode | None]]] = {}

    def of(self, selection_set: SelectionSetNode) -> list[tuple[str, str, SelectionSetNode | None]]:
        found = self.known.get(id(selection_set))
        if found is None:
            found = self.known[id(selection_set)] = [
                (f.alias.value if f.alias else f.name.value, f.name.value, f.selection_set)
                for f in self._fields(selection_set)
                if f.name.value != "__typename"
            ]
        return found

    def _fields(self, selection_set: SelectionSetNode) -> Iterator[FieldNode]:
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                yield sel
            elif isinstance(sel, InlineFragmentNode):
                yield from self._fields(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in self.fragments:
                yield from self._fields(self.fragments[sel.name.value].selection_set)


def _walk(
    value: Any, selection_set: SelectionSetNode, prefix: str, sets: _Selections, out: set[str]
) -> None:
    # A module function, not a closure: a recursive closure is a reference cycle per call.
    if isinstance(value, list):
        for v in value:
            _walk(v, selection_set, prefix, sets, out)
        return
    if not isinstance(value, dict):
        return
    for key, name, subselection in sets.of(selection_set):
        if key not in value:
            continue
        path = f"{prefix}.{name}" if prefix else name
        if subselection is not None:
            _walk(value[key], subselection, path, sets, out)
        elif value[key] not in (None, []):
            out.add(path)
