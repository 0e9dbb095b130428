"""Real demo source systems for the adapter tests: seeded once per session into a temporary
folder; the HTTP sources run as child processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.demo import sources
from tests.conftest import PostgresDatabases

HOUSEHOLDS = 300
SEED = 7


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo-sources")
    sources.seed(data_dir, households=HOUSEHOLDS, seed=SEED)
    return data_dir


def _serve(name: str, data_dir: Path) -> Iterator[str]:
    port = sources.free_port()
    proc = sources.start_source_process(name, port, data_dir)
    try:
        sources.wait_until_up(sources.ready_url(name, port), timeout=30, process=proc)
        yield sources.source_url(name, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def health_url(demo_data: Path) -> Iterator[str]:
    yield from _serve("health", demo_data)


@pytest.fixture(scope="session")
def asc_url(demo_data: Path) -> Iterator[str]:
    yield from _serve("asc", demo_data)


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
        police_url=police_url,
        early_help_url=early_help_url,
    )
    return {"police": police_url, "early_help": early_help_url}


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def misbehaving_url() -> Iterator[str]:
    """An HTTP server that answers every request under /<mode>/... badly:
    mode = "401", "403", "503" (that status), "text" (200, not JSON), "patient" (200, a FHIR
    resource that is not a Bundle), "badbundle" (200, a Bundle that fails validation),
    "noitems" (200, JSON without "items")."""
    import threading
    import time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def answer(request: Request) -> Response:
        mode = request.path_params["mode"]
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
        return JSONResponse({"rows": []})

    port = sources.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/{mode}/{rest:path}", answer)]),
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
