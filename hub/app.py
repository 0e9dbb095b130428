"""The one place where the hub is composed: settings → store, policy, adapters, auth → app.

POST /graphql runs one operation: authenticate, execute, write the audit event, and only
then send the response. If the audit event cannot be committed the client gets an error and
no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from adapters import registry as adapter_registry
from adapters.base import Adapter, Source

from .audit import checkpoints
from .audit.events import AuditNotes, AuditUnavailable, AuditWriter, StagedWriteRefused
from .audit.sequencer import Sequencer, SequencerConfig
from .auth import devissuer, login, session
from .auth.tokens import IssuerConfig, TokenVerifier
from .contacts.workflow import ContactSettings
from .context import Services
from .pages import explorer, ig, mash
from .partners.gate import PartnerGate
from .partners.routers import Routers
from .policy.engine import PolicyEngine
from .reading.breaker import CircuitBreaker
from .reading.records import RecordService, SharedAddressLimits
from .serving.operation import error_body, run_operation
from .settings import Settings
from .state import AppState
from .store.engine import Store, migrate_async
from .telemetry import accesslog, logs, tracing
from .telemetry.metrics import exposition as metrics_text

log = logging.getLogger(__name__)

OPERATIONS = Counter("mash_hub_operations_total", "GraphQL operations by outcome", ["outcome"])
# Every answered operation names its committed audit event (clients can quote it to IG).
AUDIT_HEADER = "x-audit-event-id"
LATENCY = Histogram("mash_hub_operation_seconds", "GraphQL operation latency")
# The paths the app serves at its top level, as spans name them (hub.telemetry.tracing.Traces).
ROUTES = frozenset({"/graphql", ig.PATH, mash.PATH, explorer.PATH, login.PATH})


def build_adapters(settings: Settings) -> dict[Source, Adapter]:
    registry = adapter_registry()
    return {
        Source(source): registry[Source(source)].from_config(config.adapter_config())
        for source, config in settings.sources.items()
    }


def build_verifier(settings: Settings) -> TokenVerifier:
    issuers = [IssuerConfig(**i.token_config()) for i in settings.issuers]
    if settings.dev_issuer:
        issuers.append(devissuer.issuer_config(settings.data_dir))
    partners = {client: system.name for client, system in settings.partners.items()}
    return TokenVerifier(issuers, partners=partners)


def build_sessions(settings: Settings) -> session.Sessions:
    """Browser sessions, for people who signed in through a login issuer (or the dev one)."""
    issuers = {i.issuer for i in settings.login_issuers}
    if settings.dev_issuer:
        issuers.add(devissuer.DEV_ISSUER)
    return session.Sessions(
        settings.session_signing_key,
        idle_s=settings.session_idle_minutes * 60,
        max_s=int(settings.session_max_hours * 3600),
        issuers=frozenset(issuers),
    )


# What each `mash-hub serve --workers N` worker process calls to build its app (uvicorn's
# `factory=True` takes an import string: a spawned worker cannot be handed an app object).
FACTORY = "hub.app:create_app_from_environment"


def create_app_from_environment() -> Starlette:
    """The app of one worker: a fresh process reads the settings as `serve` did."""
    return create_app(Settings.load())


def prepare_shared_keys(settings: Settings) -> None:
    """Make the keys every worker shares before any worker starts. Each process would
    otherwise create a missing key itself, and workers starting together race for the file:
    one could read another's half-written session key, or sign with a key that lost."""
    checkpoints.load_or_create_key(settings.audit_signing_key)
    build_sessions(settings)
    if settings.dev_issuer:
        devissuer.ensure_keys(settings.data_dir)


def sequencer_config(settings: Settings) -> SequencerConfig:
    return SequencerConfig(
        checkpoint_dir=settings.audit_checkpoints,
        key_file=settings.audit_signing_key,
        interval_s=settings.audit_sequencer_interval_s,
        checkpoint_interval_s=settings.audit_checkpoint_interval_s,
    )


# Libraries that log request URLs at INFO: an adapter's URL carries search keys (names,
# dates of birth, NHS numbers), and personal data never goes into logs.
QUIET_LOGGERS = ("httpx", "httpcore", "sqlalchemy.engine", "aiosqlite")


# Net container allocations between two young-generation collections (CPython: 700). A
# child read allocates about 5,000 net (measured: 7 young collections per read at 700), so at
# 700 the collector runs mid-read and promotes the read's in-flight objects to the older
# generations. 2,000 runs it about every other read at under 1 ms p50 per collection. Much
# higher is worse, not better: at 50,000 each young collection walks all 50,000 objects and
# paused 30-55 ms p50, up to 130-200 ms (demo stack, 2 cores). Older generations keep
# CPython's ratios; what made the long pauses was the full collections walking the whole
# start-up heap, which gc.freeze() takes out of their sight (max pause 250-300 ms -> 20-90).
GC_THRESHOLD = (2_000, 10, 10)
_heap_settled = False


def settle_heap() -> None:
    """Once per process, after start-up: move everything alive now (modules, the schema,
    policy, adapters, pools; it lives as long as the process) out of the collector's sight
    with `gc.freeze()`, so that no collection walks it again, and raise the young-generation
    threshold (GC_THRESHOLD). Later app instances in the same process (tests) leave it be."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()  # start-up's own garbage is not frozen for ever
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """The ASGI app. Start-up fails on a policy error or an unreachable/unmigrated store.

    `clock` replaces the hub's clock (contacts' timescales, break-glass expiry) in tests;
    `tracer_provider` the one built from the settings (`hub.telemetry.tracing.provider`), which the
    app shuts down (flushing its spans) when it stops."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    accesslog.install()
    from schema import schema  # composed here only: schema depends on hub, not the reverse

    state = AppState()
    traces = tracer_provider or tracing.provider(settings.traces_endpoint)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        policy = PolicyEngine(settings.policy_dir)
        store = Store(settings.hub_database_url)
        await migrate_async(settings.hub_database_url)
        adapters = build_adapters(settings)
        deadlines = {Source(s): c.deadline_ms / 1000 for s, c in settings.sources.items()}
        breakers = {
            Source(s): CircuitBreaker(c.circuit_failures, c.circuit_reset_s, source=s)
            for s, c in settings.sources.items()
        }
        limits = SharedAddressLimits(
            settings.household_max_residents, settings.household_max_family_names
        )
        records = RecordService(
            adapters, deadlines, store, breakers=breakers, shared_address=limits
        )
        state.services = Services(
            records, policy, store, contacts=ContactSettings.of(settings), ig=settings.ig
        )
        if clock is not None:
            state.services = dataclasses.replace(state.services, clock=clock)
        state.writer = writer = AuditWriter(store)
        state.verifier = build_verifier(settings)
        state.partners = PartnerGate.from_settings(settings)
        state.routers = Routers(state.verifier, frozenset(settings.router_clients))
        state.sessions = build_sessions(settings)
        sequencer = None
        if settings.audit_sequencer:
            sequencer = Sequencer(store, sequencer_config(settings))
            sequencer.start()
        settle_heap()
        try:
            yield
        finally:
            await writer.aclose()
            if sequencer is not None:
                await sequencer.stop()
            for adapter in adapters.values():
                await adapter.aclose()
            await store.aclose()
            if tracer_provider is None:  # ours: export what is left, off the event loop
                await asyncio.to_thread(traces.shutdown)

    async def graphql_post(request: Request) -> Response:
        started = time.perf_counter()
        notes = AuditNotes(trace_id=tracing.trace_id())
        try:
            status, body, headers = await run_operation(request, notes, state, schema, settings)
        except Exception as exc:  # never unaudited, never a stack trace to the client
            log.error("operation failed: %s", type(exc).__name__)
            notes.outcome("error", "INTERNAL_ERROR")
            status, body, headers = 500, error_body("internal error", "INTERNAL_ERROR"), {}
        record = notes.build()
        try:
            with tracing.span("audit.commit", {"mash.outcome": record.outcome}) as commit:
                event_id = await state.writer.write(record)
                tracing.annotate(commit, {"mash.audit_event_id": event_id})
            logs.AUDIT_EVENT_ID.set(event_id)
        except StagedWriteRefused as refused:  # audited as the error the client now sees
            logs.AUDIT_EVENT_ID.set(refused.event_id)
            OPERATIONS.labels("error").inc()
            body = error_body(refused.error.message, refused.code)
            return JSONResponse(body, 200, headers={AUDIT_HEADER: refused.event_id})
        except AuditUnavailable as exc:
            cause = type(exc.__cause__).__name__
            log.error("audit store unavailable (%s): response withheld", cause)
            OPERATIONS.labels("audit_failed").inc()
            return JSONResponse(error_body("service unavailable", "AUDIT_UNAVAILABLE"), 503)
        OPERATIONS.labels(record.outcome).inc()
        LATENCY.observe(time.perf_counter() - started)
        return JSONResponse(body, status, headers={**headers, AUDIT_HEADER: event_id})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services: Services | None = getattr(state, "services", None)
        if services is None:
            return JSONResponse({"status": "starting"}, 503)
        try:
            async with services.store.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return JSONResponse({"status": "store unavailable"}, 503)
        return JSONResponse({"status": "ready", "policy_version": services.policy.version})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(metrics_text(), media_type=CONTENT_TYPE_LATEST)

    explorer_page, explorer_routes = explorer.routes(state, settings)
    return Starlette(
        routes=[
            explorer_page,  # GET /graphql: the explorer, for a signed-in person
            Route("/graphql", graphql_post, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Mount(ig.PATH, routes=ig.routes(state)),  # the IG web page
            Mount(mash.PATH, routes=mash.routes(state)),  # the manager's page
            Mount(explorer.PATH, routes=explorer_routes),  # its files and their licences
            Mount(login.PATH, routes=login.routes(state, settings)),  # signing in
        ],
        middleware=[
            Middleware(logs.RequestIds),
            Middleware(tracing.Traces, tracer=traces.get_tracer("hub"), routes=ROUTES),
            Middleware(session.RenewCookie),
        ],
        lifespan=lifespan,
    )
