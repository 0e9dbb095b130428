"""The one place where the hub is composed: settings → store, policy, adapters, auth → app.

POST /graphql runs one operation: authenticate, execute, write the audit event, and only
then send the response. If the audit event cannot be committed the client gets an error and
no data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from strawberry.http.ides import get_graphql_ide_html

from adapters import REGISTRY
from adapters.base import Adapter, Source

from . import audit as audit_mod
from . import devissuer
from .audit import AuditRecord, AuditUnavailable, AuditWriter
from .auth import AuthError, IssuerConfig, TokenVerifier, bearer_token
from .context import Context, Services
from .errors import CLIENT_CODES
from .policy import PolicyEngine
from .records import RecordService
from .settings import Settings
from .store import Store, migrate_async

log = logging.getLogger(__name__)

OPERATIONS = Counter("mash_hub_operations_total", "GraphQL operations by outcome", ["outcome"])
LATENCY = Histogram("mash_hub_operation_seconds", "GraphQL operation latency")
MAX_BODY = 256 * 1024


def build_adapters(settings: Settings) -> dict[Source, Adapter]:
    return {
        source: REGISTRY[source].from_config(config.adapter_config())
        for source, config in settings.sources.items()
    }


def build_verifier(settings: Settings) -> TokenVerifier:
    issuers = [IssuerConfig(**i.model_dump()) for i in settings.issuers]
    if settings.dev_issuer:
        issuers.append(devissuer.issuer_config(settings.data_dir))
    return TokenVerifier(issuers)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app. Start-up fails on a policy error or an unreachable/unmigrated store."""
    from schema import schema  # composed here only: schema depends on hub, not the reverse

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        policy = PolicyEngine(settings.policy_dir)
        store = Store(settings.hub_database_url)
        await migrate_async(settings.hub_database_url)
        adapters = build_adapters(settings)
        deadlines = {s: c.deadline_ms / 1000 for s, c in settings.sources.items()}
        state["services"] = Services(RecordService(adapters, deadlines, store), policy, store)
        state["writer"] = AuditWriter(store)
        state["verifier"] = build_verifier(settings)
        try:
            yield
        finally:
            for adapter in adapters.values():
                await adapter.aclose()
            await store.aclose()

    async def graphql_get(request: Request) -> Response:
        return HTMLResponse(get_graphql_ide_html(graphql_ide="graphiql"))

    async def graphql_post(request: Request) -> Response:
        started = time.perf_counter()
        record = AuditRecord(actor=None)
        status, body = await _run(request, record, state, schema)
        try:
            await state["writer"].write(record)
        except AuditUnavailable:
            log.error("audit store unavailable: response withheld")
            OPERATIONS.labels("audit_failed").inc()
            return JSONResponse(_errors("service unavailable", "AUDIT_UNAVAILABLE"), 503)
        OPERATIONS.labels(record.outcome).inc()
        LATENCY.observe(time.perf_counter() - started)
        return JSONResponse(body, status)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services: Services | None = state.get("services")
        if services is None:
            return JSONResponse({"status": "starting"}, 503)
        try:
            async with services.store.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return JSONResponse({"status": "store unavailable"}, 503)
        return JSONResponse({"status": "ready", "policy_version": services.policy.version})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/graphql", graphql_get, methods=["GET"]),
            Route("/graphql", graphql_post, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


async def _run(
    request: Request, record: AuditRecord, state: Mapping[str, Any], schema: Any
) -> tuple[int, dict[str, Any]]:
    """Authenticate and execute one operation, filling the audit record as it goes."""
    try:
        token = bearer_token(request.headers.get("authorization"))
        record.actor = await state["verifier"].verify(token)
    except AuthError as exc:
        record.outcome, record.error_code = "unauthenticated", "UNAUTHENTICATED"
        return 401, _errors(exc.message, "UNAUTHENTICATED")

    try:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ValueError("request body too large")
        payload = json.loads(raw)
        query = payload["query"]
        if not isinstance(query, str):
            raise ValueError("query must be a string")
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
    except (ValueError, KeyError, TypeError):
        record.outcome, record.error_code = "invalid", "BAD_REQUEST"
        return 400, _errors("expected a JSON body with a 'query' string", "BAD_REQUEST")

    record.operation_name = operation_name
    try:
        document = parse(query)
    except GraphQLError as exc:
        record.query_hash = audit_mod.query_hash(None, query)
        record.outcome, record.error_code = "invalid", "GRAPHQL_PARSE_FAILED"
        return 400, {"errors": [_format(exc)]}
    record.query_hash = audit_mod.query_hash(document, query)
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) == 1 or operation_name:
        op = next(
            (o for o in ops if not operation_name or (o.name and o.name.value == operation_name)),
            None,
        )
        if op is not None:
            record.operation_type = op.operation.value
            record.operation_name = op.name.value if op.name else operation_name

    context = Context(
        actor=record.actor,
        services=state["services"],
        audit=record,
        purpose_header=request.headers.get("x-purpose-of-use"),
    )
    result = await schema.execute(
        query, variable_values=variables, context_value=context, operation_name=operation_name
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_format(e) for e in result.errors]
        codes = [e["extensions"]["code"] for e in body["errors"]]
        record.error_code = codes[0]
        if (
            result.data is None
            and not any(c in CLIENT_CODES for c in codes)
            and all(e.original_error is None for e in result.errors)
        ):
            record.outcome = "invalid"
            return 200, body
        record.outcome = "denied" if "FORBIDDEN" in codes else "error"
    else:
        statuses = set(record.sources.values())
        if statuses & {"UNAVAILABLE", "TIMED_OUT"}:
            record.outcome = "partial"
        elif record.fields_redacted:
            record.outcome = "redacted"
    record.fields_returned = sorted(_paths(result.data))
    return 200, body


def _format(error: GraphQLError) -> dict[str, Any]:
    """Client-facing error: our own codes verbatim; validation errors as they are;
    anything unexpected masked, logged without personal data."""
    code = (error.extensions or {}).get("code")
    if code in CLIENT_CODES:
        return {"message": error.message, "path": error.path, "extensions": {"code": code}}
    if error.original_error is None:  # syntax / validation: about the query, not the data
        locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or []]
        return {
            "message": error.message,
            "locations": locations,
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
        }
    # Type and path only: an exception's text may carry personal data.
    log.error("unexpected error at %s: %s", error.path, type(error.original_error).__name__)
    return {
        "message": "internal error",
        "path": error.path,
        "extensions": {"code": "INTERNAL_ERROR"},
    }


def _errors(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _paths(data: Any, prefix: str = "") -> set[str]:
    """Field paths holding a value, list indices dropped: e.g. `child.police.incidents.dashRisk`."""
    if isinstance(data, dict):
        paths: set[str] = set()
        for key, value in data.items():
            if key == "__typename":
                continue
            paths |= _paths(value, f"{prefix}.{key}" if prefix else key)
        return paths
    if isinstance(data, list):
        return set().union(*(_paths(v, prefix) for v in data)) if data else set()
    return {prefix} if data is not None and prefix else set()
