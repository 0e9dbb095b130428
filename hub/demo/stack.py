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

from ..app import create_app
from ..settings import Settings
from . import sources

DEMO_HOUSEHOLDS = 300
DEMO_SEED = 7
STORE_FORMAT = 5  # bump when the demo sources' storage changes: older data is re-seeded
# (process name, source, base path, path that answers 2xx when the source is up)
HTTP_SOURCES = (
    ("health", "HEALTH", "fhir", "metadata"),
    ("asc", "ADULT_SOCIAL_CARE", "api/v1", "health"),
)


def ensure_seeded(
    data_dir: Path,
    households: int = DEMO_HOUSEHOLDS,
    seed: int = DEMO_SEED,
    say: Callable[[str], None] = print,
) -> None:
    """Generate the demo sources unless the data folder already holds this exact seeding."""
    marker = data_dir / "sources" / "seeded.json"
    wanted = {"households": households, "seed": seed, "format": STORE_FORMAT}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    say(f"generating demo data ({households} households, seed {seed}) ...")
    sources.seed(data_dir, households, seed, progress=sys.stderr.isatty())
    marker.write_text(json.dumps(wanted))


def sql_source_config(data_dir: Path) -> dict[str, Any]:
    folder = (data_dir / "sources").resolve()
    return {
        "POLICE": {"url": f"sqlite:///{folder / 'police.sqlite3'}"},
        "EARLY_HELP": {"url": f"sqlite:///{folder / 'early_help.sqlite3'}"},
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
        for name, source, path, _ in HTTP_SOURCES:
            port = sources.free_port()
            processes.append(sources.start_source_process(name, port, data_dir))
            config[source] = {"url": f"http://127.0.0.1:{port}/{path}"}
        for process, (_, source, _, probe) in zip(processes, HTTP_SOURCES, strict=True):
            sources.wait_until_up(f"{config[source]['url']}/{probe}", timeout=30, process=process)
        client = data_dir / "sources" / "asc_client.json"
        if client.exists():  # the adult social care source wants OAuth client credentials
            config["ADULT_SOCIAL_CARE"]["options"] = json.loads(client.read_text())
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
