"""Real demo source systems for the adapter tests: seeded once per session into a temporary
folder; the HTTP sources run as child processes on loopback ports, with their fault switch
on (hub/demo/PROTOCOL.md) and, for health, a bearer token."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.base import PersonQuery
from adapters.sql import async_url
from hub.demo import sources
from tests.conftest import PostgresDatabases

HOUSEHOLDS = 300
SEED = 7
HEALTH_TOKEN = "adapter-tests-token"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo-sources")
    sources.seed(data_dir, households=HOUSEHOLDS, seed=SEED)
    return data_dir


@dataclass
class DemoServer:
    """One running HTTP demo source: its adapter base URL and its fault switch (at the
    server's root: `PUT /_fault`)."""

    url: str
    root: str

    def fault(self, mode: str, count: int | None = None, delay_ms: int | None = None) -> None:
        body: dict[str, Any] = {"mode": mode}
        if count is not None:
            body["count"] = count
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        httpx.put(f"{self.root}/_fault", json=body, timeout=5).raise_for_status()


def _serve(name: str, data_dir: Path, **options: Any) -> Iterator[DemoServer]:
    port = sources.free_port()
    proc = sources.start_source_process(name, port, data_dir, allow_faults=True, **options)
    try:
        sources.wait_until_up(sources.ready_url(name, port), timeout=30, process=proc)
        yield DemoServer(sources.source_url(name, port), f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def health_server(demo_data: Path) -> Iterator[DemoServer]:
    yield from _serve("health", demo_data, token=HEALTH_TOKEN)


@pytest.fixture(scope="session")
def asc_server(demo_data: Path) -> Iterator[DemoServer]:
    yield from _serve("asc", demo_data)


@pytest.fixture(scope="session")
def education_server(demo_data: Path) -> Iterator[DemoServer]:
    yield from _serve("education", demo_data)


@pytest.fixture
def education_demo(education_server: DemoServer) -> Iterator[DemoServer]:
    """The education server with no fault set before and after the test."""
    education_server.fault("none")
    yield education_server
    education_server.fault("none")


@pytest.fixture(scope="session")
def education_key(demo_data: Path) -> str:
    """The API key the seeder issued to the hub."""
    found: dict[str, str] = json.loads((demo_data / "sources" / "education_api.json").read_text())
    return found["api_key"]


@pytest.fixture
def education_config(education_demo: DemoServer, education_key: str) -> dict[str, Any]:
    return {"url": education_demo.url, "api_key": education_key, "timeout_s": 5}


@pytest.fixture
def health_demo(health_server: DemoServer) -> Iterator[DemoServer]:
    """The health server with no fault set before and after the test."""
    health_server.fault("none")
    yield health_server
    health_server.fault("none")


@pytest.fixture
def asc_demo(asc_server: DemoServer) -> Iterator[DemoServer]:
    """The adult social care server with no fault set before and after the test."""
    asc_server.fault("none")
    yield asc_server
    asc_server.fault("none")


@pytest.fixture
def health_config(health_demo: DemoServer) -> dict[str, Any]:
    return {"url": health_demo.url, "token": HEALTH_TOKEN, "timeout_s": 5}


@pytest.fixture(scope="session")
def asc_client(demo_data: Path) -> dict[str, str]:
    """The OAuth client the seeder registered: client_id, client_secret, token_url."""
    client: dict[str, str] = json.loads((demo_data / "sources" / "asc_client.json").read_text())
    return client


@pytest.fixture
def asc_config(asc_demo: DemoServer, asc_client: dict[str, str]) -> dict[str, Any]:
    return {"url": asc_demo.url, "timeout_s": 5, **asc_client}


@dataclass
class RequestLog:
    """httpx event hooks that record (method, path) of every request an adapter sends."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    @property
    def hooks(self) -> dict[str, list[Callable[..., Any]]]:
        async def record(request: httpx.Request) -> None:
            self.sent.append((request.method, request.url.path))

        return {"request": [record]}

    def count(self, suffix: str, method: str = "GET") -> int:
        return sum(1 for m, p in self.sent if m == method and p.endswith(suffix))


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening."""
    return sources.free_port()


@pytest.fixture(scope="session")
def postgres_sources(
    postgres_databases: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Police and early help seeded into two throwaway PostgreSQL databases."""
    police_url = postgres_databases.create()
    early_help_url = postgres_databases.create()
    sources.seed(
        tmp_path_factory.mktemp("demo-pg"),
        households=HOUSEHOLDS,
        seed=SEED,
        store_urls={"police": police_url, "early_help": early_help_url},
    )
    return {"police": police_url, "early_help": early_help_url}


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_SEXUAL_HEALTH_BUNDLE = {
    "resourceType": "Bundle",
    "type": "searchset",
    "entry": [
        {
            "resource": {
                "resourceType": "Patient",
                "id": "p1",
                "meta": {
                    "security": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                            "code": "R",
                        }
                    ]
                },
            },
            "search": {"mode": "match"},
        },
        *(
            {
                "resource": {
                    "resourceType": "Encounter",
                    "id": eid,
                    "status": "finished",
                    "class": {"code": code},
                    "subject": {"reference": "Patient/p1"},
                    "period": {"start": "2026-01-02"},
                    "reasonCode": [{"text": reason}],
                },
                "search": {"mode": "include"},
            }
            for eid, code, reason in (
                ("e1", "AMB", "Sexual health clinic: contraception"),
                ("e2", "EMER", "Head injury"),
            )
        ),
    ],
}


@pytest.fixture(scope="session")
def misbehaving_url() -> Iterator[str]:
    """An HTTP server that answers every GET under /<mode>/... badly (a POST to
    .../oauth/token gets a good token, so that OAuth clients reach the bad answer):
    mode = a status ("401", "403", "503", ...), "text" (200, not JSON), "patient" (200, a
    FHIR resource that is not a Bundle), "badbundle" (200, a Bundle that fails validation),
    "noitems" (200, JSON without "items"), "sexualhealth" (a restricted patient with a sexual
    health clinic encounter and a plain A&E one), "outcome400"/"outcome503" (an OperationOutcome
    with that status), "offsite" (200, a Bundle or page whose next link leaves the host)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def outcome(status: int, code: str) -> Response:
        body = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": "echo: Thompson"}],
        }
        return JSONResponse(body, status_code=status, media_type="application/fhir+json")

    async def answer(request: Request) -> Response:
        mode = request.path_params["mode"]
        if request.method == "POST" and request.url.path.endswith("/oauth/token"):
            return JSONResponse({"access_token": "t", "token_type": "Bearer", "expires_in": 300})
        if mode.isdigit():
            return JSONResponse({"error": "nope"}, status_code=int(mode))
        if mode == "text":
            return PlainTextResponse("<html>maintenance</html>")
        if mode == "patient":
            return JSONResponse({"resourceType": "Patient", "id": "x"})
        if mode == "badbundle":
            return JSONResponse(
                {
                    "resourceType": "Bundle",
                    "type": "not-a-type",
                    "entry": [{"resource": {"resourceType": "Patient", "birthDate": "not a date"}}],
                }
            )
        if mode == "sexualhealth":
            return JSONResponse(_SEXUAL_HEALTH_BUNDLE)
        if mode == "outcome400":
            return outcome(400, "not-supported")
        if mode == "outcome503":
            return outcome(503, "transient")
        if mode == "offsite":
            elsewhere = "http://elsewhere.example/page2"
            if "/fhir/" in request.url.path:
                link = [{"relation": "next", "url": elsewhere}]
                return JSONResponse({"resourceType": "Bundle", "type": "searchset", "link": link})
            return JSONResponse({"items": [], "next": elsewhere})
        return JSONResponse({"rows": []})

    port = sources.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/{mode}/{rest:path}", answer, methods=["GET", "POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


# --- query plans of the SQL candidate search ----------------------------------------------
# SQLite: `EXPLAIN QUERY PLAN`; a `SCAN persons` line is a full scan. PostgreSQL: `EXPLAIN
# (FORMAT JSON)` with sequential scans and hash/merge joins disabled, so that the plan uses an
# index wherever one can serve the query; a node that reads a table without an index
# condition (a seq scan, or a walk of a whole index) scans it.

# One query per search key, then all keys together.
QUERIES = {
    "nhs_number": PersonQuery(nhs_number="9434765919"),
    "date_of_birth": PersonQuery(date_of_birth=date(2016, 3, 14)),
    "swapped_date_of_birth": PersonQuery(family_name="Thompson", date_of_birth=date(2019, 5, 7)),
    "family_name": PersonQuery(family_name="Thompson-Reid"),
    "postcode": PersonQuery(postcodes=("HT4 2QX", "ht17lb")),
    "all": PersonQuery(
        nhs_number="9434765919",
        family_name="Thompson",
        date_of_birth=date(2019, 5, 7),
        postcodes=("HT4 2QX",),
    ),
}
SCANNED_TABLES = ("persons", "person_name_keys")


async def full_scans(url: str, statement: sa.Select[Any] | None) -> list[str]:
    """The plan lines (SQLite) or nodes (PostgreSQL) of `statement` that read a whole
    persons or person_name_keys table."""
    assert statement is not None
    engine = create_async_engine(async_url(url))
    try:
        expanded = statement.compile(dialect=engine.dialect).construct_expanded_state()
        compiled = expanded.statement
        params = tuple(expanded.parameters[k] for k in expanded.positiontup or ())
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
                tables = "|".join(SCANNED_TABLES)
                return [r[-1] for r in rows if re.search(rf"\bSCAN (TABLE )?({tables})\b", r[-1])]
            # At test size a whole-table walk is cheaper than any lookup, so the planner is
            # asked whether an all-index plan exists: one that it picks at real sizes.
            for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                await conn.exec_driver_sql(f"SET {setting} = off")
            rows = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", params)
            plan = rows.scalar_one()
            return [
                f"{node['Node Type']} on {node['Relation Name']}"
                for node in _nodes(plan[0]["Plan"])
                if node.get("Relation Name") in SCANNED_TABLES
                and not ({"Index Cond", "Recheck Cond"} & node.keys())
            ]
    finally:
        await engine.dispose()


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)
