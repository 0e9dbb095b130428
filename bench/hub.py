"""What the hub costs on top of its sources, for the showcase read, with policy and audit on.

The read: a MASH social worker's `child(id:, purpose: MASH_RESEARCH, contactId:)` for Ava
(DOMAIN.md §6) on a contact walked as the README walks it (create, research, consent), every
section, household, links and the access log selected.

The floor: a plain client that issues exactly the source requests the hub's adapters make
for that read (the same SQL statements with the same parameters through plain `sqlite3`, the
same HTTP requests with the same headers through one keep-alive `httpx` client), all sources
in parallel, and times them itself. The requests are captured, not re-derived: the contact
walk and one read run first in an in-process hub with hooks on the SQL adapters' `fetch`
(their statements, as plain `sqlite3` runs them), SQLAlchemy's cursor and httpx's
transport, which record every statement and request addressed to a source.

Then `mash-hub serve` runs in its own process (so the load generator does not share its GIL)
and floor and hub reads alternate, one each per sample, so the machine's noise falls on both.
- `overhead_p50_ms` / `overhead_p99_ms`: hub percentile minus floor percentile.
- `hub_cpu_ms_per_read`: the hub process's CPU (user + system, /proc) over the sampled
  reads, per read. `floor_cpu_ms_per_read`: this process's CPU spent in the floor reads.
  `cpu_ratio`: hub / floor.
- `throughput_rps`: hub reads per second with 1, 16 and 64 concurrent clients.

`python -m bench hub` writes bench/results/hub.json; `--quick` runs tiny sizes in seconds
(the test suite runs it; its figures mean nothing). `BENCH_HUB_STORE=postgresql` puts the
hub store in a fresh PostgreSQL database (`MASH_TEST_DATABASE_URL`'s server) instead of the
embedded SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from adapters import declarations, sql
from adapters.http import SourceTransport
from hub.auth import devissuer
from hub.demo import sources
from hub.demo.stack import demo_sources, running_hub
from hub.settings import Settings

SHOWCASE_NHS = "9434765919"
CLIENTS = (1, 16, 64)
PG_SERVER = os.environ.get(
    "MASH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

FIND = """query Find($c: PersonSearch!) { searchChildren(criteria: $c, purpose: MASH_SCREENING)
  { id nhsNumber } }"""
CREATE = """mutation Create($input: CreateContactInput!) { createContact(input: $input) { id } }"""
RESEARCH = """mutation Research($id: ID!) {
  advanceContact(id: $id, stage: "RESEARCH", purpose: MASH_SCREENING) { stage } }"""
CONSENT = """mutation Consent($id: ID!) {
  recordConsent(id: $id, state: "GIVEN", givenBy: "mother", purpose: MASH_RESEARCH)
  { consent { state } } }"""


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.title() for w in rest)


def _sections() -> str:
    """Every declared source's section with every field of every item kind (the schema's
    sections are generated from the same declarations)."""
    out = []
    for d in declarations():
        lists = " ".join(
            f"{_camel(k.field)} {{ ...entry ... on {k.type_name} "
            f"{{ {' '.join(_camel(f) for f, _ in k.fields)} }} }}"
            for k in d.kinds
        )
        out.append(
            f"    {_camel(d.section)} {{ __typename ... on {d.type_prefix}Section "
            f"{{ known {lists} }} }}"
        )
    return "\n".join(out)


RECORD = (
    """query Record($id: ID!, $contact: ID!) {
  child(id: $id, purpose: MASH_RESEARCH, contactId: $contact) {
    id person { givenName familyName dateOfBirth nhsNumber postcode agencies }
    links { source rule band score }
    household { relation basis { kind source } person { givenName familyName dateOfBirth } }
    sources { source status latencyMs }
    previouslyAccessedBy { at agency purpose }
"""
    + _sections()
    + """ } }
fragment entry on Entry { id about redactedFields { field reason } }"""
)


@dataclass(frozen=True)
class Sizes:
    households: int
    samples: int
    warmup: int
    seconds: float  # per throughput level


FULL = Sizes(
    households=int(os.environ.get("BENCH_HUB_HOUSEHOLDS", "300")),  # the demo's population
    samples=int(os.environ.get("BENCH_SAMPLES", "400")),
    warmup=30,
    seconds=float(os.environ.get("BENCH_SECONDS", "10")),
)
QUICK = Sizes(households=12, samples=6, warmup=2, seconds=0.5)


# --- capturing what the adapters send -----------------------------------------------------
@dataclass
class Captured:
    """The source requests of one hub read: SQL per database file, HTTP in order."""

    sql: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    http: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(map(len, self.sql.values())) + len(self.http)


class Capture:
    """Records statements to the source databases and requests to the source servers while
    `recording` is set. The SQL adapters' `fetch` sees each statement an SQLite source runs
    through plain sqlite3, SQLAlchemy's class-level cursor event any other engine's; httpx's
    transport sees each request as sent, auth included."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.databases = {
            str(Path(sa.make_url(c["url"]).database or "").resolve())
            for c in config.values()
            if c["url"].startswith("sqlite")
        }
        self.origins = tuple(c["url"] for c in config.values() if c["url"].startswith("http"))
        self.recording: Captured | None = None

    def on_statement(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.on_sql(conn.engine.url.database or "", statement, params)

    def on_sql(self, database: str, statement: str, params: Any) -> None:
        database = str(Path(database).resolve())
        if self.recording is not None and database in self.databases:
            self.recording.sql.setdefault(database, []).append((statement, params))

    @contextlib.contextmanager
    def installed(self) -> Iterator[Capture]:
        capture = self
        send = httpx.AsyncHTTPTransport.handle_async_request

        async def handle(self: Any, request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            if capture.recording is not None and url.startswith(capture.origins):
                headers = [(k, v) for k, v in request.headers.items() if k != "host"]
                capture.recording.http.append((request.method, url, headers))
            return await send(self, request)

        fetch = sql.fetch

        def plain_fetch(conn: Any, statement: Any, params: Any = None) -> Any:
            # SQLite sources run SQLAlchemy's compiled SQL through plain sqlite3
            if isinstance(conn, sql.PlainConnection):
                capture.on_sql(conn.db.path, *conn.db.plan(statement).bound(params))
            return fetch(conn, statement, params)

        event.listen(Engine, "before_cursor_execute", self.on_statement)
        httpx.AsyncHTTPTransport.handle_async_request = handle  # type: ignore[method-assign]
        sql.fetch = plain_fetch
        try:
            yield self
        finally:
            sql.fetch = fetch
            httpx.AsyncHTTPTransport.handle_async_request = send  # type: ignore[method-assign]
            event.remove(Engine, "before_cursor_execute", self.on_statement)

    @contextlib.contextmanager
    def record(self) -> Iterator[Captured]:
        self.recording = Captured()
        try:
            yield self.recording
        finally:
            self.recording = None


# --- the floor: the same source requests from a plain client ------------------------------
class Floor:
    """Issues a captured read's source requests directly: one `sqlite3` connection per source
    database (its statements in order, in a thread) and every HTTP request at once."""

    def __init__(self, captured: Captured, client: httpx.AsyncClient) -> None:
        self.captured = captured
        self.client = client
        self.connections = {
            db: sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
            for db in captured.sql
        }

    def _sql(self, database: str) -> int:
        db, rows = self.connections[database], 0
        for statement, params in self.captured.sql[database]:
            rows += len(db.execute(statement, params or ()).fetchall())
        return rows

    async def _http(self, method: str, url: str, headers: list[tuple[str, str]]) -> int:
        response = await self.client.request(method, url, headers=headers)
        if response.status_code >= 400:
            raise RuntimeError(f"floor request answered {response.status_code}")
        return len(response.content)

    async def read(self) -> float:
        """One read's source requests, all sources in parallel; wall milliseconds."""
        started = time.perf_counter()
        await asyncio.gather(
            *(asyncio.to_thread(self._sql, db) for db in self.connections),
            *(self._http(*request) for request in self.captured.http),
        )
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        for db in self.connections.values():
            db.close()


# --- the hub ------------------------------------------------------------------------------
async def graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"hub answered {response.status_code}: {body.get('errors')}")
    data: dict[str, Any] = body["data"]
    return data


async def walk_contact(client: httpx.AsyncClient) -> dict[str, str]:
    """Find Ava, open a contact about her, advance it to research and record consent; the
    record read's variables."""
    found = await graphql(client, FIND, c={"familyName": "Thompson", "dateOfBirth": "2016-03-14"})
    child = next(m["id"] for m in found["searchChildren"] if m["nhsNumber"] == SHOWCASE_NHS)
    contact = {
        "childIds": [child],
        "rag": "RED",
        "concern": "benchmark contact",
        "referrer": {"type": "SCHOOL", "name": "Head teacher"},
    }
    contact_id = (await graphql(client, CREATE, input=contact))["createContact"]["id"]
    await graphql(client, RESEARCH, id=contact_id)
    await graphql(client, CONSENT, id=contact_id)
    return {"id": child, "contact": contact_id}


async def read(
    client: httpx.AsyncClient, variables: dict[str, str], query: str = RECORD
) -> dict[str, Any]:
    record: dict[str, Any] = (await graphql(client, query, **variables))["child"]
    not_ok = [(s["source"], s["status"]) for s in record["sources"] if s["status"] != "OK"]
    if not_ok:
        raise RuntimeError(f"sources not OK during the benchmark: {not_ok}")
    # The sections the query selects: a partner's registered document names its own, and a
    # source declared after it was written is not among them.
    sections = [
        record[key]["__typename"] for d in declarations() if (key := _camel(d.section)) in record
    ]
    if not sections or all(typename == "Redaction" for typename in sections):
        raise RuntimeError("the research read is redacted: the contact walk did not take")
    return record


def cpu_ms(pid: int) -> float:
    """User + system CPU of process `pid` so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def capture_read(base: str, token: str, capture: Capture) -> tuple[dict[str, str], Captured]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        variables = await walk_contact(client)
        await read(client, variables)  # the first read fetches tokens and fills pools
        with capture.record() as captured:
            await read(client, variables)
    if not captured.requests:
        raise RuntimeError("captured no source requests for the read")
    return variables, captured


async def load(
    client: httpx.AsyncClient,
    variables: dict[str, str],
    clients: int,
    seconds: float,
    query: str = RECORD,
) -> tuple[float, int]:
    """Reads per second from `clients` concurrent clients for `seconds`, and how many failed
    (e.g. DEADLINE_EXCEEDED when the hub's queue is longer than its request deadline)."""
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            try:
                await read(client, variables, query)
                done += 1
            except RuntimeError:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return round(done / (time.perf_counter() - started), 1), errors


async def measure(
    base: str, pid: int, token: str, variables: dict[str, str], captured: Captured, sizes: Sizes
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=max(CLIENTS) + 8)
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client,
        httpx.AsyncClient(timeout=30) as plain,
        httpx.AsyncClient(timeout=30, transport=SourceTransport(httpx.Limits())) as lean,
    ):
        floor, lean_floor = Floor(captured, plain), Floor(captured, lean)
        try:
            for _ in range(sizes.warmup):
                await floor.read()
                await lean_floor.read()
                await read(client, variables)
            floor_ms, lean_ms, hub_ms, floor_cpu, lean_cpu = [], [], [], 0.0, 0.0
            hub_cpu_before = cpu_ms(pid)
            for _ in range(sizes.samples):
                cpu_started = time.process_time()
                floor_ms.append(await floor.read())
                floor_cpu += (time.process_time() - cpu_started) * 1000
                cpu_started = time.process_time()
                lean_ms.append(await lean_floor.read())
                lean_cpu += (time.process_time() - cpu_started) * 1000
                started = time.perf_counter()
                await read(client, variables)
                hub_ms.append((time.perf_counter() - started) * 1000)
            hub_cpu = (cpu_ms(pid) - hub_cpu_before) / sizes.samples
        finally:
            floor.close()
            lean_floor.close()

        throughput, failed = {}, {}
        for clients in CLIENTS:
            done, errors = await load(client, variables, clients, sizes.seconds)
            throughput[str(clients)], failed[str(clients)] = done, errors

    floor_cpu /= sizes.samples
    figures = {
        "floor_p50_ms": statistics.median(floor_ms),
        "floor_p99_ms": percentile(floor_ms, 99),
        "hub_p50_ms": statistics.median(hub_ms),
        "hub_p99_ms": percentile(hub_ms, 99),
    }
    figures["overhead_p50_ms"] = figures["hub_p50_ms"] - figures["floor_p50_ms"]
    figures["overhead_p99_ms"] = figures["hub_p99_ms"] - figures["floor_p99_ms"]
    figures |= {"hub_cpu_ms_per_read": hub_cpu, "floor_cpu_ms_per_read": floor_cpu}
    # The same floor sending through the hub's own HTTP transport (SourceTransport), leaner
    # than a plain httpx client: what the hub's work costs beyond its leaner requests.
    lean_cpu /= sizes.samples
    figures |= {
        "lean_floor_p50_ms": statistics.median(lean_ms),
        "lean_floor_cpu_ms_per_read": lean_cpu,
    }
    figures["overhead_vs_lean_floor_p50_ms"] = figures["hub_p50_ms"] - figures["lean_floor_p50_ms"]
    rounded = {k: round(v, 2) for k, v in figures.items()}
    return rounded | {
        "cpu_ratio": round(hub_cpu / floor_cpu, 2) if floor_cpu else None,
        "cpu_ratio_vs_lean_floor": round(hub_cpu / lean_cpu, 2) if lean_cpu else None,
        "throughput_rps": throughput,
        "throughput_failed_reads": failed,
    }


@contextlib.contextmanager
def hub_process(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`mash-hub serve` in its own process; its base URL and pid."""
    port = sources.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sources.wait_until_up(f"http://127.0.0.1:{port}/readyz", timeout=60, process=process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextlib.contextmanager
def hub_store() -> Iterator[tuple[str, str | None]]:
    """The store's name and URL (None: the embedded SQLite in the data folder)."""
    if os.environ.get("BENCH_HUB_STORE", "sqlite") != "postgresql":
        yield "sqlite", None
        return
    with postgres_database() as url:
        yield "postgresql", url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway database on the PostgreSQL server PG_SERVER names; dropped on exit."""
    server = sa.make_url(PG_SERVER).set(drivername="postgresql")
    admin = server.render_as_string(hide_password=False)
    name = f"mash_bench_{uuid.uuid4().hex[:10]}"

    async def execute(statement: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    load_before = [round(x, 2) for x in os.getloadavg()]
    with (
        tempfile.TemporaryDirectory() as tmp,
        hub_store() as (store, database_url),
        demo_sources(Path(tmp), say=lambda _: None, households=sizes.households) as config,
    ):
        data_dir = Path(tmp)
        token = devissuer.mint(data_dir, "mash_social_worker")
        settings = Settings(
            data_dir=data_dir, sources=config, dev_issuer=True, database_url=database_url
        )
        capture = Capture(config)
        with capture.installed(), running_hub(settings) as base:
            variables, captured = asyncio.run(capture_read(base, token, capture))
        env = {
            "MASH_DATA_DIR": str(data_dir),
            "MASH_SOURCES": json.dumps(config),
            "MASH_DEV_ISSUER": "true",
            **({"MASH_DATABASE_URL": database_url} if database_url else {}),
        }
        with hub_process(env) as (base, pid):
            figures = asyncio.run(measure(base, pid, token, variables, captured, sizes))
    return figures | {
        "source_requests_per_read": {
            "sql_statements": sum(map(len, captured.sql.values())),
            "http_requests": len(captured.http),
        },
        "samples": sizes.samples,
        "throughput_seconds_per_level": sizes.seconds,
        "store": store,
        "households": sizes.households,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "quick": quick,
    }
