"""Tracing (issue 15 items 1 and 2): one trace per request from the client's call to each
source and the audit commit; its id on the audit event, in the response and in the logs;
nothing personal in any span; OTLP/HTTP export when configured."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from adapters import sources
from hub.app import create_app
from hub.audit.models import AuditEvent
from hub.auth import devissuer
from hub.demo import generator as g
from hub.pages import savedops
from hub.settings import Settings
from hub.store.engine import Store
from hub.telemetry import logs, tracing

# --- the showcase family, as the demo generator makes it ---------------------------------

FAMILY_HOMES = ("HH000000", "HS000001")  # the showcase home and the ex-partner's


def family_data() -> set[str]:
    """Every personal datum the demo holds about the showcase family: the people as the
    generator makes them and as each agency records them (names, dates of birth in ISO and
    en-GB, NHS numbers plain and spaced, addresses and postcodes with and without the space),
    and their homes."""
    population = g.generate(households=10)
    people = [p for p in population.persons if p.household_id in FAMILY_HOMES]
    ids = {p.id for p in people}
    records: list[Any] = [
        *people,
        *(
            r
            for r in (
                *population.health.patients,
                *population.police.persons,
                *population.adult_social_care.persons,
                *population.early_help.persons,
            )
            if r.person_id in ids
        ),
    ]
    values: set[str] = set()
    for r in records:
        values |= {r.given_name, r.family_name}
        if r.date_of_birth is not None:
            values |= {r.date_of_birth.isoformat(), r.date_of_birth.strftime("%d/%m/%Y")}
        if r.nhs_number:
            n = r.nhs_number
            values |= {n, f"{n[:3]} {n[3:6]} {n[6:]}"}
        values |= {getattr(r, "address", None) or "", getattr(r, "postcode", None) or ""}
    for home in population.households:
        if home.id in FAMILY_HOMES:
            values |= {home.address, home.postcode, home.previous_address or ""}
            values |= {home.previous_postcode or ""}
    values |= {v.replace(" ", "") for v in values if v and len(v) <= 8}  # postcodes unspaced
    values.discard("")
    assert {"Ava", "Thompson", "2016-03-14", "943 476 5919", "HT4 2QX"} <= values
    return values


def leaks(spans: Sequence[ReadableSpan], forbidden: set[str]) -> list[tuple[str, str, str]]:
    """(span, attribute, value) for each attribute value holding a forbidden datum: exactly
    for short ones ("Ava"), ignoring case for the rest."""
    out = []
    for span in spans:
        for key, value in (span.attributes or {}).items():
            text = json.dumps(value) if not isinstance(value, str) else value
            for datum in forbidden:
                hit = datum in text if len(datum) < 4 else datum.casefold() in text.casefold()
                if hit:
                    out.append((span.name, key, datum))
    return out


# --- a hub in this process on the real demo sources, its spans in memory ------------------

SEARCH = """query FindAva {
  searchChildren(criteria: {nhsNumber: "9434765919"}, purpose: MASH_SCREENING) { id }
}"""
EVENTS = "query Events { auditEvents(first: 500) { edges { node { id traceId } } } }"
# the README's walk-through, by step number
_OPS = {
    title.split(" ", 1)[0]: (query, variables) for title, query, variables in savedops.OPERATIONS
}


@dataclass
class Traced:
    client: httpx.AsyncClient
    spans: InMemorySpanExporter
    store: Store
    data_dir: Path

    async def gql(
        self,
        role: str,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        token = devissuer.mint(self.data_dir, role)
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return response

    async def event(self, response: httpx.Response) -> AuditEvent:
        event_id = response.headers["x-audit-event-id"]
        async with self.store.sessions() as session:
            found = await session.execute(select(AuditEvent).where(AuditEvent.event_id == event_id))
            return found.scalar_one()

    def trace(self, response: httpx.Response) -> list[ReadableSpan]:
        trace_id = int(response.headers["x-trace-id"], 16)
        return [s for s in self.spans.get_finished_spans() if s.context.trace_id == trace_id]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def traced(
    request: pytest.FixtureRequest,
    demo_data: Path,
    source_config: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Traced]:
    folder = tmp_path_factory.mktemp("traced")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_databases").create())
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    settings = Settings(
        data_dir=demo_data,
        database_url=url,
        sources=source_config,
        dev_issuer=True,
        audit_checkpoint_dir=folder / "checkpoints",
    )
    app = create_app(settings, tracer_provider=provider)
    async with app.router.lifespan_context(app):
        store = Store(url)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield Traced(client, spans, store, demo_data)
        await store.aclose()


async def test_a_research_read_is_one_trace_from_the_operation_to_each_source_and_the_audit(
    traced: Traced,
) -> None:
    # given Ava found, a contact about her moved to research with the family's consent
    found = await traced.gql("mash_social_worker", SEARCH)
    ava = found.json()["data"]["searchChildren"][0]["id"]
    fill = {savedops.CHILD_ID: ava}
    ran = [(SEARCH, {})]

    async def run(step: str, **more: str) -> httpx.Response:
        query, variables = _OPS[step]
        filled = json.loads(json.dumps(variables).replace(savedops.CHILD_ID, ava))
        filled = json.loads(json.dumps(filled).replace(savedops.CONTACT_ID, fill.get("c", "")))
        ran.append((query, filled))
        return await traced.gql("mash_social_worker", query, filled)

    fill["c"] = (await run("2")).json()["data"]["createContact"]["id"]
    await run("4")
    await run("5")
    # when the worker reads her record for research
    read = await run("6")
    assert {s["source"] for s in read.json()["data"]["child"]["sources"]} == {
        s.value for s in sources()
    }

    # then the operation, a call to each of the four sources and the audit commit are
    # one trace, whose id is in the response and on the audit event
    trace_hex = read.headers["x-trace-id"]
    assert len(trace_hex) == 32 and int(trace_hex, 16) != 0
    assert read.headers["traceresponse"].startswith(f"00-{trace_hex}-")
    spans = traced.trace(read)
    named = {s.name: s for s in spans}
    assert {"POST /graphql", "graphql.operation", "store.read", "audit.commit"} <= set(named)
    request, operation = named["POST /graphql"], named["graphql.operation"]
    assert operation.parent is not None and operation.parent.span_id == request.context.span_id
    calls = [s for s in spans if s.name == "source.call"]
    attrs = [dict(s.attributes or {}) for s in calls]
    assert {a["mash.source"] for a in attrs} == {s.value for s in sources()}
    assert {(a["mash.source"], a["mash.source.call"]) for a in attrs} == {
        (s.value, call) for s in sources() for call in ("people", "items")
    }
    assert all(a["mash.source.status"] == "OK" for a in attrs), attrs  # all four know Ava
    assert all(isinstance(a["mash.source.duration_ms"], int) for a in attrs)
    assert all(c.parent and c.parent.span_id == operation.context.span_id for c in calls)
    commit = named["audit.commit"]
    assert commit.parent is not None and commit.parent.span_id == request.context.span_id
    event = await traced.event(read)
    assert (commit.attributes or {})["mash.audit_event_id"] == event.event_id
    assert event.trace_id == trace_hex
    assert (operation.attributes or {})["mash.root_fields"] == ("child",)
    assert (operation.attributes or {})["mash.purpose"] == "MASH_RESEARCH"

    # and no span of the whole walk-through holds a personal datum or the query text
    everything = traced.spans.get_finished_spans()
    assert len(everything) > len(spans)
    forbidden = family_data()
    ids = {ava, fill["c"]}  # ids may be on spans; the rest of what the client sent may not
    for query, variables in ran:
        forbidden |= {line.strip() for line in query.splitlines() if len(line.strip()) > 12}
        forbidden |= {v for v in json.dumps(variables).split('"') if len(v) > 6} - ids
        forbidden.add(query.split("{")[0].split()[-1])  # the operation name a client chose
    assert "disclosed domestic abuse at home" in forbidden  # the contact's concern
    assert leaks(everything, forbidden) == []


async def test_an_incoming_traceparent_is_continued_to_the_sources_and_the_audit_event(
    traced: Traced,
) -> None:
    trace_hex, parent_hex = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    found = await traced.gql(
        "mash_social_worker", SEARCH, headers={"traceparent": f"00-{trace_hex}-{parent_hex}-01"}
    )
    assert found.headers["x-trace-id"] == trace_hex
    spans = traced.trace(found)
    request = next(s for s in spans if s.name == "POST /graphql")
    assert request.parent is not None and request.parent.span_id == int(parent_hex, 16)
    assert request.parent.is_remote
    assert {(s.attributes or {}).get("mash.source") for s in spans if s.name == "source.call"} == {
        s.value for s in sources()
    }
    assert {"graphql.operation", "audit.commit"} <= {s.name for s in spans}
    assert (await traced.event(found)).trace_id == trace_hex
    # and IG sees it on the event
    events = await traced.gql("ig_officer", EVENTS)
    nodes = [e["node"] for e in events.json()["data"]["auditEvents"]["edges"]]
    assert {"id": found.headers["x-audit-event-id"], "traceId": trace_hex} in nodes


async def test_a_malformed_traceparent_starts_a_new_trace(traced: Traced) -> None:
    found = await traced.gql(
        "mash_social_worker", SEARCH, headers={"traceparent": "00-Ava-Thompson-01"}
    )
    request = next(s for s in traced.trace(found) if s.name == "POST /graphql")
    assert request.parent is None
    assert (await traced.event(found)).trace_id == found.headers["x-trace-id"]


async def test_a_span_names_only_the_apps_own_paths(traced: Traced) -> None:
    typed = await traced.client.get("/Ava-Thompson-2016-03-14")
    ig = await traced.client.get("/ig/subject/Thompson")
    names = [s.name for s in traced.trace(typed) + traced.trace(ig)]
    assert names == ["GET other", "GET /ig"]
    assert leaks(traced.trace(typed) + traced.trace(ig), {"Ava", "Thompson", "2016"}) == []


# --- without an exporter: ids, no recording ------------------------------------------------


def test_without_an_endpoint_every_span_has_a_trace_id_and_nothing_is_recorded() -> None:
    tracer = tracing.provider(None).get_tracer("test")
    token = tracing.TRACER.set(tracer)
    try:
        with tracer.start_as_current_span("request") as request, tracing.span("inner") as inner:
            assert not inner.is_recording()
            assert tracing.trace_id() == format(request.get_span_context().trace_id, "032x")
            assert inner.get_span_context().trace_id == request.get_span_context().trace_id
        assert tracing.trace_id() is None
    finally:
        tracing.TRACER.reset(token)


async def test_the_in_process_hub_without_an_exporter_still_names_the_trace(app: Any) -> None:
    token = app.token("mash_social_worker")
    answer = await app.client.post(
        "/graphql",
        json={"query": "query Probe { __typename }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    trace_hex = answer.headers["x-trace-id"]
    event, _ = await app.last_event("Probe")
    assert event.trace_id == trace_hex and int(trace_hex, 16) != 0


# --- the logs --------------------------------------------------------------------------


def _line(message: str) -> dict[str, Any]:
    record = logging.LogRecord("hub.test", logging.INFO, __file__, 1, message, None, None)
    return dict(json.loads(logs.JsonFormatter().format(record)))


@pytest.mark.parametrize("recording", [True, False])
def test_a_log_line_written_in_a_span_carries_its_trace_id(recording: bool) -> None:
    provider = TracerProvider() if recording else tracing.provider(None)
    tracer = provider.get_tracer("test")
    assert "trace_id" not in _line("before")
    request = logs.REQUEST_ID.set("req-12345678")
    try:
        with tracer.start_as_current_span("operation") as span:
            line = _line("source POLICE unavailable: SourceTimedOut")
    finally:
        logs.REQUEST_ID.reset(request)
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["request_id"] == "req-12345678"
    assert "trace_id" not in _line("after")


# --- OTLP/HTTP export ------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A tiny OTLP/HTTP collector on loopback: records every POST."""
    posts: list[tuple[str, str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_configured(
    receiver: tuple[str, list[tuple[str, str, bytes]]], tmp_path: Path
) -> None:
    endpoint, posts = receiver
    devissuer.ensure_keys(tmp_path)
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        dev_issuer=True,
        otlp_endpoint=endpoint,
    )
    assert settings.traces_endpoint == f"{endpoint}/v1/traces"
    app = create_app(settings)
    async with app.router.lifespan_context(app):  # stopping flushes the batch
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.post(
                "/graphql",
                json={"query": "query Probe { __typename }"},
                headers={"Authorization": f"Bearer {devissuer.mint(tmp_path, 'mash_manager')}"},
            )
    assert answer.status_code == 200, answer.text
    assert posts and {(path, kind) for path, kind, _ in posts} == {
        ("/v1/traces", "application/x-protobuf")
    }
    exported = []
    for _, _, body in posts:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "mash-hub"
            exported += [s for scope in resource.scope_spans for s in scope.spans]
    ours = [s for s in exported if s.trace_id.hex() == answer.headers["x-trace-id"]]
    assert {"POST /graphql", "graphql.operation", "audit.commit"} <= {s.name for s in ours}


def test_the_export_endpoint_comes_from_mash_otlp_endpoint_or_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MASH_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert Settings().traces_endpoint is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert Settings().traces_endpoint == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/in")
    assert Settings().traces_endpoint == "http://traces:4318/in"
    monkeypatch.setenv("MASH_OTLP_ENDPOINT", "http://hub-collector:4318")
    assert Settings().traces_endpoint == "http://hub-collector:4318/v1/traces"
