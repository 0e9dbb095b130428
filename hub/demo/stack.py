"""Run the demo stack: seeded source systems on loopback and a hub server. Used by
`mash-hub demo`, the end-to-end tests and the benchmarks, so all three run the same parts."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from adapters import declarations

from ..app import create_app
from ..settings import Settings
from . import sources

DEMO_HOUSEHOLDS = 300
DEMO_SEED = 7
STORE_FORMAT = 5  # bump when the demo sources' storage changes: older data is re-seeded


def ensure_seeded(
    data_dir: Path,
    households: int = DEMO_HOUSEHOLDS,
    seed: int = DEMO_SEED,
    say: Callable[[str], None] = print,
) -> None:
    """Generate the demo sources unless the data folder already holds this exact seeding."""
    marker = data_dir / "sources" / "seeded.json"
    # The declared stores too: a newly declared source's store is seeded, not found missing.
    stores = sorted(d.demo.store for d in declarations())
    wanted = {"households": households, "seed": seed, "format": STORE_FORMAT, "stores": stores}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    say(f"generating demo data ({households} households, seed {seed}) ...")
    sources.seed(data_dir, households, seed, progress=sys.stderr.isatty())
    marker.write_text(json.dumps(wanted))


def sql_source_config(data_dir: Path) -> dict[str, Any]:
    """`MASH_SOURCES` for the declared SQL sources: their demo SQLite files."""
    return {
        d.source.value: {"url": sources.default_store_url(data_dir, d.demo.store)}
        for d in declarations()
        if d.demo.server is None
    }


@contextlib.contextmanager
def demo_sources(
    data_dir: Path,
    say: Callable[[str], None] = print,
    households: int = DEMO_HOUSEHOLDS,
    seed: int = DEMO_SEED,
) -> Iterator[dict[str, Any]]:
    """Seed (once, deterministically) and start the demo source systems; yields the
    `MASH_SOURCES` configuration for them; stops the processes it started on exit."""
    ensure_seeded(data_dir, households, seed, say=say)
    config = sql_source_config(data_dir)
    processes = []
    try:
        ports = {}
        for name, d in sources.HTTP_DEMOS.items():
            ports[name] = sources.free_port()
            processes.append(sources.start_source_process(name, ports[name], data_dir))
            config[d.source.value] = {"url": sources.source_url(name, ports[name])}
        for process, name in zip(processes, sources.HTTP_DEMOS, strict=True):
            ready = sources.ready_url(name, ports[name])
            sources.wait_until_up(ready, timeout=30, process=process)
        for d in declarations():
            options = data_dir / "sources" / (d.demo.options_file or "")
            if d.demo.options_file and options.exists():  # e.g. OAuth client credentials
                config[d.source.value]["options"] = json.loads(options.read_text())
        yield config
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.wait(timeout=10)


@contextlib.contextmanager
def running_hub(
    settings: Settings, port: int | None = None, clock: Callable[[], datetime] | None = None
) -> Iterator[str]:
    """Serve the hub on loopback in a background thread; yields its base URL. `clock`
    replaces the hub's clock (tests that move time)."""
    port = port or sources.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("hub did not start")
            time.sleep(0.02)
        httpx.get(f"{base}/healthz", timeout=5).raise_for_status()
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
