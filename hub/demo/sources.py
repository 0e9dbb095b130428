"""The demo source systems that stand in for the agencies' own systems (PROTOCOL.md).

- police, early help : SQL databases (SQLite files by default, or any SQLAlchemy URL)
- health            : a FHIR R4 server over health.sqlite3 (hub.demo.fhir_server)
- adult social care : a REST/JSON API with OAuth 2.0 client credentials over asc.sqlite3
                      (hub.demo.asc_server)

`seed(data_dir, ...)` streams the synthetic population (hub.demo.generator) chunk by chunk
into all four stores and writes the ground truth; chunks are generated in worker processes
when there are several, and written in order by this process, so memory stays bounded and
the output is the same however it was produced.

Run one HTTP source:  python -m hub.demo.sources {health|asc} --port P --data-dir D
                      [--token T] [--allow-faults]
Seed from the shell:  python -m hub.demo.sources seed --data-dir D [--households N --seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from adapters import early_help as eh_schema
from adapters import police as police_schema

from . import generator as g
from .asc_server import asc_app
from .fhir_server import fhir_app
from .storage import (
    ASC_INDEXES,
    ASC_SCHEMA,
    HEALTH_INDEXES,
    HEALTH_SCHEMA,
    Rows,
    SqliteStore,
    SqlStore,
    TruthFiles,
    chunk_rows,
)

__all__ = [
    "HTTP_SOURCES",
    "asc_app",
    "aseed",
    "default_early_help_url",
    "default_police_url",
    "fhir_app",
    "free_port",
    "main",
    "ready_url",
    "seed",
    "source_url",
    "sources_dir",
    "start_source_process",
    "wait_until_up",
]

HTTP_SOURCES = ("health", "asc")
ProgressCallback = Callable[[int, int], None]  # (chunks done, chunks in all)


# --- paths and URLs -----------------------------------------------------------------------
def sources_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "sources"


def default_police_url(data_dir: Path) -> str:
    return f"sqlite:///{(sources_dir(data_dir) / 'police.sqlite3').resolve()}"


def default_early_help_url(data_dir: Path) -> str:
    return f"sqlite:///{(sources_dir(data_dir) / 'early_help.sqlite3').resolve()}"


def source_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """The adapter base URL of a running HTTP demo source."""
    return {"health": f"http://{host}:{port}/fhir", "asc": f"http://{host}:{port}/api/v1"}[name]


def ready_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """A URL that answers 200 once the HTTP demo source is serving."""
    return {
        "health": f"http://{host}:{port}/fhir/metadata",
        "asc": f"http://{host}:{port}/api/v1/health",
    }[name]


def asc_client(households: int, seed: int) -> dict[str, str]:
    """The demo OAuth client of the adult social care API (deterministic per seeding)."""
    digest = hashlib.sha256(f"mash-demo-asc:{households}:{seed}".encode()).hexdigest()
    return {
        "client_id": "mash-hub-demo",
        "client_secret": digest[:40],
        "token_url": "/api/v1/oauth/token",
    }


# --- seeding ------------------------------------------------------------------------------
def _rows(households: int, seed: int, index: int) -> Rows:
    return chunk_rows(g.generate_chunk(households, seed, index))


def _chunk_rows_in_order(households: int, seed: int, workers: int) -> Any:
    """Yield every chunk's rows in order; several chunks are built at once in worker
    processes, at most 2 per worker waiting, so memory stays bounded."""
    n = g.chunk_count(households)
    if workers <= 1 or n < 3:
        for index in range(n):
            yield _rows(households, seed, index)
        return
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: collections.deque[concurrent.futures.Future[Rows]] = collections.deque()
        submitted = 0
        while submitted < n or pending:
            while submitted < n and len(pending) < 2 * workers:
                pending.append(pool.submit(_rows, households, seed, submitted))
                submitted += 1
            yield pending.popleft().result()


def _seed_sync(
    data_dir: Path,
    households: int,
    seed: int,
    police_url: str | None,
    early_help_url: str | None,
    progress: ProgressCallback | None,
    workers: int | None,
) -> dict[str, Any]:
    if households < 1:
        raise ValueError("households must be at least 1")
    out = sources_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    stores: dict[str, Any] = {
        "police": SqlStore(police_url or default_police_url(data_dir), police_schema.metadata),
        "early_help": SqlStore(
            early_help_url or default_early_help_url(data_dir), eh_schema.metadata
        ),
        "health": SqliteStore(out / "health.sqlite3", HEALTH_SCHEMA, HEALTH_INDEXES),
        "asc": SqliteStore(out / "asc.sqlite3", ASC_SCHEMA, ASC_INDEXES),
        "truth": TruthFiles(out / "truth"),
    }
    counts: collections.Counter[str] = collections.Counter()
    total = g.chunk_count(households)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    for done, rows in enumerate(_chunk_rows_in_order(households, seed, workers), 1):
        counts["meta.area_persons"] += rows.pop("meta.area_persons")[0][0]
        for key, table_rows in rows.items():
            store, _, table = key.partition(".")
            stores[store].write(table, table_rows)
            counts[key] += len(table_rows)
        if progress:
            progress(done, total)
    for store in stores.values():
        store.finish()
    (out / "asc_client.json").write_text(json.dumps(asc_client(households, seed), indent=2))
    for stale in ("health.json", "asc.json"):
        (out / stale).unlink(missing_ok=True)
    return _summary(households, counts)


def _summary(households: int, counts: collections.Counter[str]) -> dict[str, Any]:
    def part(store: str, names: dict[str, str] | None = None) -> dict[str, int]:
        found = {k.partition(".")[2]: v for k, v in counts.items() if k.startswith(store + ".")}
        if names:
            return {label: found.get(table, 0) for table, label in names.items()}
        return dict(sorted(found.items()))

    return {
        "population": {"households": households, "persons": counts["meta.area_persons"]},
        "health": part(
            "health", {"patients": "Patient", "encounters": "Encounter", "careplans": "CarePlan"}
        ),
        "police": part("police"),
        "adult_social_care": part("asc", {"persons": "persons", "involvements": "involvements"}),
        "early_help": part("early_help"),
        "truth": part("truth"),
    }


async def aseed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    police_url: str | None = None,
    early_help_url: str | None = None,
    *,
    progress: bool | ProgressCallback = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """`seed` for callers inside an event loop (runs in a worker thread)."""
    return await asyncio.to_thread(
        _seed,
        data_dir,
        households,
        seed,
        police_url,
        early_help_url,
        progress=progress,
        workers=workers,
    )


def seed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    police_url: str | None = None,
    early_help_url: str | None = None,
    *,
    progress: bool | ProgressCallback = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Build every demo source from the generator; returns counts per source.

    Deterministic for (households, seed) and idempotent: SQL tables are dropped and
    recreated, files rewritten. `progress=True` shows a progress bar (rich) on the terminal;
    a callable gets (chunks done, chunks in all). `workers`: generator processes (default:
    up to 2). Safe to call from inside a running event loop (it then runs in a thread).
    """
    return _seed(
        data_dir,
        households,
        seed,
        police_url,
        early_help_url,
        progress=progress,
        workers=workers,
    )


def _seed(
    data_dir: Path,
    households: int,
    seed: int,
    police_url: str | None,
    early_help_url: str | None,
    *,
    progress: bool | ProgressCallback,
    workers: int | None,
) -> dict[str, Any]:
    args = (Path(data_dir), households, seed, police_url, early_help_url)
    if progress is True:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("seeding {task.fields[households]} households"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("seed", total=g.chunk_count(households), households=households)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done)

            return _in_thread_if_loop(lambda: _seed_sync(*args, advance, workers))
    callback = progress if callable(progress) else None
    return _in_thread_if_loop(lambda: _seed_sync(*args, callback, workers))


def _in_thread_if_loop(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    result: dict[str, Any] = {}
    error: list[BaseException] = []

    def worker() -> None:
        try:
            result.update(work())
        except BaseException as exc:
            error.append(exc)

    t = threading.Thread(target=worker, name="mash-demo-seed")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result


# --- processes ----------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_source_process(
    name: str,
    port: int,
    data_dir: Path,
    *,
    token: str | None = None,
    allow_faults: bool = False,
) -> subprocess.Popen[bytes]:
    """Start one HTTP demo source ("health" or "asc") in a child process on loopback.
    `token`: the bearer token the health server requires; `allow_faults`: enable PUT /_fault."""
    if name not in HTTP_SOURCES:
        raise ValueError(f"unknown HTTP source {name!r}; expected one of {HTTP_SOURCES}")
    command = [
        sys.executable,
        "-m",
        "hub.demo.sources",
        name,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
    ]
    if token:
        command += ["--token", token]
    if allow_faults:
        command.append("--allow-faults")
    return subprocess.Popen(command)


def wait_until_up(
    url: str, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers 2xx; TimeoutError after `timeout` seconds (RuntimeError
    at once if `process` has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"source process exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not come up within {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hub.demo.sources", description="Serve or seed the MASH Hub demo sources."
    )
    parser.add_argument("name", choices=[*HTTP_SOURCES, "seed"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path("var"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--police-url")
    parser.add_argument("--early-help-url")
    parser.add_argument("--token", help="health: bearer token every request must carry")
    parser.add_argument("--allow-faults", action="store_true", help="enable PUT /_fault")
    args = parser.parse_args(argv)
    if args.name == "seed":
        started = time.perf_counter()
        counts = seed(
            args.data_dir,
            args.households,
            args.seed,
            args.police_url,
            args.early_help_url,
            progress=sys.stderr.isatty(),
            workers=args.workers,
        )
        print(json.dumps(counts, indent=2))
        print(f"seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 0
    if not args.port:
        parser.error("--port is required to serve a source")
    import uvicorn

    if args.name == "health":
        app = fhir_app(args.data_dir, token=args.token, allow_faults=args.allow_faults)
    else:
        app = asc_app(args.data_dir, allow_faults=args.allow_faults)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
