"""The demo source systems that stand in for the agencies' own systems (PROTOCOL.md).

`seed(data_dir, ...)` streams the synthetic population (hub.demo.generator) chunk by chunk
into every declared source's store and writes the ground truth; chunks are generated in
worker processes when there are several, and written in order by this process, so memory
stays bounded and the output is the same however it was produced.

Which stores and servers there are is read from the sources' declarations
(`SourceDeclaration.demo`): a SQL source's store is a database (`--store-url STORE=URL`, default
a SQLite file), an HTTP source's store a SQLite file its demo server serves.

Run one HTTP source:  python -m hub.demo.sources STORE --port P --data-dir D
                      [--token T] [--allow-faults]
Seed from the shell:  python -m hub.demo.sources seed --data-dir D [--households N --seed S]
                      [--store-url STORE=URL ...]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import importlib
import inspect
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from adapters import declarations, registry
from adapters.base import SourceDeclaration

from . import generator as g
from .storage import (
    Rows,
    SqliteStore,
    SqlStore,
    TruthFiles,
    chunk_rows,
    option_file,
    sqlite_store,
)

__all__ = [
    "HTTP_SOURCES",
    "SQL_STORES",
    "aseed",
    "default_store_url",
    "free_port",
    "main",
    "ready_url",
    "seed",
    "source_url",
    "sources_dir",
    "start_source_process",
    "wait_until_up",
]

# The declared sources with a demo server (by store name), and those read as SQL databases.
HTTP_DEMOS: dict[str, SourceDeclaration] = {
    d.demo.store: d for d in declarations() if d.demo.server is not None
}
HTTP_SOURCES = tuple(HTTP_DEMOS)
SQL_STORES = tuple(d.demo.store for d in declarations() if d.demo.server is None)
ProgressCallback = Callable[[int, int], None]  # (chunks done, chunks in all)


# --- paths and URLs -----------------------------------------------------------------------
def sources_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "sources"


def default_store_url(data_dir: Path, store: str) -> str:
    """A SQL source's demo database: a SQLite file in the data folder."""
    return f"sqlite:///{(sources_dir(data_dir) / f'{store}.sqlite3').resolve()}"


def source_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """The adapter base URL of a running HTTP demo source."""
    return f"http://{host}:{port}/{HTTP_DEMOS[name].demo.base_path}"


def ready_url(name: str, port: int, host: str = "127.0.0.1") -> str:
    """A URL that answers 200 once the HTTP demo source is serving."""
    return f"{source_url(name, port, host)}/{HTTP_DEMOS[name].demo.ready_path}"


def _sql_metadata(d: SourceDeclaration) -> sa.MetaData:
    """A SQL source's tables: the `metadata` its adapter module defines (PROTOCOL.md)."""
    metadata: sa.MetaData = importlib.import_module(registry()[d.source].__module__).metadata
    return metadata


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
    store_urls: Mapping[str, str],
    progress: ProgressCallback | None,
    workers: int | None,
) -> dict[str, Any]:
    if households < 1:
        raise ValueError("households must be at least 1")
    out = sources_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(store_urls) - set(SQL_STORES)
    if unknown:
        raise ValueError(f"no SQL demo store {sorted(unknown)}; one of {SQL_STORES}")
    stores: dict[str, Any] = {}
    for d in declarations():
        name = d.demo.store
        if d.demo.server is None:
            url = store_urls.get(name) or default_store_url(data_dir, name)
            stores[name] = SqlStore(url, _sql_metadata(d))
        else:
            stores[name] = SqliteStore(out / f"{name}.sqlite3", *sqlite_store(d))
    stores["truth"] = TruthFiles(out / "truth")
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
    for d in declarations():
        if d.demo.options_file:
            options = option_file(d, households, seed)
            (out / d.demo.options_file).write_text(json.dumps(options, indent=2))
    return _summary(households, counts)


def _summary(households: int, counts: collections.Counter[str]) -> dict[str, Any]:
    """Rows written per table, per source (by agency) and for the ground truth."""

    def part(store: str) -> dict[str, int]:
        found = {k.partition(".")[2]: v for k, v in counts.items() if k.startswith(store + ".")}
        return dict(sorted(found.items()))

    return {
        "population": {"households": households, "persons": counts["meta.area_persons"]},
        **{d.agency: part(d.demo.store) for d in declarations()},
        "truth": part("truth"),
    }


async def aseed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    store_urls: Mapping[str, str] | None = None,
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
        store_urls,
        progress=progress,
        workers=workers,
    )


def seed(
    data_dir: Path,
    households: int = 300,
    seed: int = 7,
    store_urls: Mapping[str, str] | None = None,
    *,
    progress: bool | ProgressCallback = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Build every demo source from the generator; returns counts per source.

    `store_urls`: a SQLAlchemy URL per SQL store (e.g. PostgreSQL), default SQLite files.
    Deterministic for (households, seed) and idempotent: SQL tables are dropped and
    recreated, files rewritten. `progress=True` shows a progress bar (rich) on the terminal;
    a callable gets (chunks done, chunks in all). `workers`: generator processes (default:
    up to 2). Safe to call from inside a running event loop (it then runs in a thread).
    """
    return _seed(
        data_dir,
        households,
        seed,
        store_urls,
        progress=progress,
        workers=workers,
    )


def _seed(
    data_dir: Path,
    households: int,
    seed: int,
    store_urls: Mapping[str, str] | None,
    *,
    progress: bool | ProgressCallback,
    workers: int | None,
) -> dict[str, Any]:
    args = (Path(data_dir), households, seed, dict(store_urls or {}))
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
    """Start one HTTP demo source (by store name, one of HTTP_SOURCES) in a child process on
    loopback. `token`: the bearer token a server that asks for one requires; `allow_faults`:
    enable PUT /_fault."""
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


def store_urls(pairs: list[str]) -> dict[str, str]:
    """`STORE=URL` pairs (the CLI's `--store-url`) as a mapping."""
    urls: dict[str, str] = {}
    for pair in pairs:
        store, sep, url = pair.partition("=")
        if not sep or store not in SQL_STORES or not url:
            raise ValueError(f"--store-url wants STORE=URL with STORE one of {SQL_STORES}")
        urls[store] = url
    return urls


def server_app(name: str, data_dir: Path, *, token: str | None, allow_faults: bool) -> Any:
    """The ASGI app of one HTTP demo source: its declared factory ("module:function")."""
    module, _, function = str(HTTP_DEMOS[name].demo.server).partition(":")
    factory = getattr(importlib.import_module(module), function)
    extra = {"token": token} if token and "token" in inspect.signature(factory).parameters else {}
    return factory(data_dir, allow_faults=allow_faults, **extra)


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
    parser.add_argument(
        "--store-url",
        action="append",
        default=[],
        metavar="STORE=URL",
        help=f"a SQL store's database (one of {', '.join(SQL_STORES)}); default SQLite files",
    )
    parser.add_argument("--token", help="bearer token every request must carry (if asked)")
    parser.add_argument("--allow-faults", action="store_true", help="enable PUT /_fault")
    args = parser.parse_args(argv)
    if args.name == "seed":
        started = time.perf_counter()
        counts = seed(
            args.data_dir,
            args.households,
            args.seed,
            store_urls(args.store_url),
            progress=sys.stderr.isatty(),
            workers=args.workers,
        )
        print(json.dumps(counts, indent=2))
        print(f"seeded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        return 0
    if not args.port:
        parser.error("--port is required to serve a source")
    import uvicorn

    app = server_app(args.name, args.data_dir, token=args.token, allow_faults=args.allow_faults)
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
