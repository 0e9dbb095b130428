"""Tracing: OpenTelemetry spans for one request, from the client's call to each source.

Every traced request has a trace id, exported or not: it goes on the audit event
(`trace_id`), in the response (`X-Trace-Id` and W3C `traceresponse`) and on every log line
written while the request runs (`hub.telemetry.logs`), so an incident can be followed from a user's
complaint to a source's timeout. An incoming W3C `traceparent` is continued.

Spans are recorded and exported over OTLP/HTTP only when an endpoint is configured
(`Settings.traces_endpoint`); otherwise the sampler records nothing: the request's span
costs a random id, and the spans inside it cost nothing (see `span`).

The spans: the HTTP request (`hub.app` through `Traces`), the GraphQL operation
(`OperationSpan`, a schema extension), each source call (`source_call`: one per adapter round
a read makes of a source), the reader's store session and the audit commit (`span`).

What a span may say: ids, enum values, statuses, counts and durations. Never a name, date
of birth, NHS number, address, postcode, the query text, its variables or the operation
name a client chose; and never an exception's text (it may quote any of those), only its
class. That is why the helpers here set attributes and statuses themselves instead of
leaving it to the SDK's exception recording or strawberry's stock extension.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

SERVICE = "mash-hub"
TRACE_HEADER = b"x-trace-id"
# Probes and scrapes: frequent, and nothing to follow.
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})

# The running request's tracer (set by `Traces`): each app has its own provider, and code
# outside a request (the CLI, benchmarks) traces into a no-op (stateless, so one shared
# default is safe).
TRACER: ContextVar[trace.Tracer] = ContextVar("tracer", default=trace.NoOpTracer())  # noqa: B039
_PROPAGATOR = TraceContextTextMapPropagator()


def provider(endpoint: str | None) -> TracerProvider:
    """The hub's tracer provider: exporting to `endpoint` over OTLP/HTTP in batches, or,
    without one, recording nothing while still giving every request a trace id."""
    resource = Resource.create({"service.name": SERVICE})
    if endpoint is None:
        return TracerProvider(sampler=ALWAYS_OFF, resource=resource)
    # Imported here: the exporter (and protobuf) load only where something is exported.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    traced = TracerProvider(resource=resource)
    traced.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return traced


def trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[Span]:
    """A child span of the current one. An exception ends it as an error named by its class
    only (its text may hold personal data).

    Within a trace that is not recorded (no exporter, or the sampler said no: samplers
    decide per trace) this is the current span itself: a child would record nothing and
    carry the same trace id, and skipping it keeps unexported tracing nearly free."""
    parent = trace.get_current_span()
    if not parent.is_recording():
        yield parent
        return
    with TRACER.get().start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def annotate(current: Span, attributes: Mapping[str, AttributeValue]) -> None:
    """Add attributes to a span (nothing is built for a span that records nothing)."""
    if current.is_recording():
        current.set_attributes(attributes)


def source_call(source: str, call: str) -> contextlib.AbstractContextManager[Span]:
    """The span of one call to one source (`call`: search, people or items); the caller
    annotates it with `source_answered`."""
    return span("source.call", {"mash.source": source, "mash.source.call": call})


def source_answered(current: Span, status: str, duration_ms: int, circuit_open: bool) -> None:
    annotate(
        current,
        {
            "mash.source.status": status,
            "mash.source.duration_ms": duration_ms,
            "mash.source.circuit_open": circuit_open,
        },
    )


class OperationSpan(SchemaExtension):
    """The GraphQL operation's span. Unlike strawberry's stock OpenTelemetryExtension it
    records neither the query text nor the variables: only the operation type, the schema's
    root field names, the purpose, the contact id and the audit's literal-free query hash,
    as the operation's audit record (built from `context.notes`) holds them."""

    def on_operation(self) -> Iterator[None]:
        with span("graphql.operation") as current:
            yield
            notes = getattr(self.execution_context.context, "notes", None)
            if notes is not None and current.is_recording():
                record = notes.build()
                annotate(current, _operation_attributes(record, self.execution_context.result))


def _operation_attributes(audit: Any, result: Any) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue | None] = {
        "graphql.operation.type": audit.operation_type,
        "mash.root_fields": list(audit.root_fields),
        "mash.purpose": audit.purpose,
        "mash.contact_id": audit.contact_id,
        "mash.query_hash": audit.query_hash,
        "mash.errors": len(getattr(result, "errors", None) or ()),
    }
    return {k: v for k, v in values.items() if v is not None}


class Traces:
    """ASGI middleware: each HTTP request (but probes and scrapes) runs in a server span,
    continuing the caller's W3C `traceparent` if it sent one, with the app's tracer in
    `TRACER`; the response names the trace (`X-Trace-Id`, `traceresponse`). `routes`: the
    app's mounts (`/graphql`, `/ig`, ...), the only paths a span names."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, routes: frozenset[str]) -> None:
        self.app, self.tracer, self.routes = app, tracer, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        parent = _PROPAGATOR.extract(_trace_headers(scope["headers"]))
        method = scope["method"]
        # The app's own mount only: below it paths hold ids, and any other path is text a
        # client typed.
        route = "/" + scope["path"].split("/", 2)[1]
        route = route if route in self.routes else "other"
        current = self.tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        )
        headers = _response_headers(current.get_span_context())

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
                annotate(current, {"http.response.status_code": message["status"]})
            await send(message)

        tracer = TRACER.set(self.tracer)
        attached = otel_context.attach(trace.set_span_in_context(current, parent))
        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            current.end()
            otel_context.detach(attached)
            TRACER.reset(tracer)


def _trace_headers(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }


def _response_headers(context: trace.SpanContext) -> list[tuple[bytes, bytes]]:
    if not context.is_valid:
        return []
    trace_hex = format(context.trace_id, "032x")
    parent = f"00-{trace_hex}-{context.span_id:016x}-{context.trace_flags:02x}"
    return [(TRACE_HEADER, trace_hex.encode()), (b"traceresponse", parent.encode())]
