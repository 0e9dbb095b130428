"""`mash-hub serve --workers N`: several processes on one port, one PostgreSQL hub store,
exactly one audit sequencer among them (and another taking over when it dies), JSON logs
from every worker; the embedded SQLite store refuses more than one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bench.hub import read, walk_contact
from hub.audit.sequencer import holders
from hub.auth import devissuer
from hub.demo import sources
from hub.store.engine import Store


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path  # the hub's own: keys, checkpoints

    def workers(self) -> set[int]:
        """The worker processes uvicorn spawned (not its multiprocessing helpers)."""
        return {pid for pid in children(self.process.pid) if b"spawn_main" in cmdline(pid)}

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.strip()]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def serve_env(data_dir: Path, config: dict[str, Any], database_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "MASH_DATA_DIR": str(data_dir),
        "MASH_SOURCES": json.dumps(config),
        "MASH_DEV_ISSUER": "true",
    }
    env.pop("MASH_DATABASE_URL", None)
    if database_url:
        env["MASH_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def served(source_config: dict[str, Any], postgres_url: str, tmp_path: Path) -> Iterator[Served]:
    port = sources.free_port()
    log, data_dir = tmp_path / "serve.log", tmp_path / "hub"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--workers", "2"],
            env=serve_env(data_dir, source_config, postgres_url),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        sources.wait_until_up(f"{base}/readyz", timeout=90, process=process)
        served = Served(base, process, log, data_dir)
        wait_for(lambda: len(served.workers()) == 2, "two workers")
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sequencers(database_url: str) -> list[str]:
    async def ask() -> list[str]:
        store = Store(database_url)
        try:
            async with store.engine.connect() as conn:
                return await holders(conn)
        finally:
            await store.aclose()

    return asyncio.run(ask())


def pid_of(holder: str) -> int:
    assert holder.startswith("mash-hub audit sequencer (pid "), holder
    return int(holder.rsplit(" ", 1)[1].rstrip(")"))


async def drive(base: str, token: str, reads: int, clients: int = 8) -> None:
    """The showcase walk, then `reads` record reads from `clients` concurrent clients."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        variables = await walk_contact(client)

        async def reader(n: int) -> None:
            # each client its own connection: the kernel hands connections to workers
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as own:
                for _ in range(n):
                    await read(own, variables)

        await asyncio.gather(*(reader(reads // clients) for _ in range(clients)))


def scrape(base: str) -> dict[str, float]:
    """One scrape of /metrics: the sequencer gauge and the operations counted."""
    families = text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text)
    seen: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name in {"mash_hub_audit_sequencer_active", "mash_hub_operations_total"}:
                seen[sample.name] = seen.get(sample.name, 0.0) + sample.value
    return seen


def events(database_url: str) -> int:
    async def count() -> int:
        store = Store(database_url)
        try:
            async with store.engine.connect() as conn:
                found = await conn.execute(text("SELECT count(*) FROM audit_events"))
                return int(found.scalar_one())
        finally:
            await store.aclose()

    return asyncio.run(count())


def assert_scrapes_see_every_worker(base: str, database_url: str) -> None:
    """Whichever worker answers, a scrape reports the one sequencer and every operation
    any worker (a dead one included) counted: each was audited once."""
    for _ in range(6):
        seen = scrape(base)
        assert seen["mash_hub_audit_sequencer_active"] == 1.0, seen
        assert seen["mash_hub_operations_total"] == events(database_url), seen


def audit_verify(data_dir: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "audit", "verify"],
        env={**os.environ, "MASH_DATA_DIR": str(data_dir), "MASH_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_refuses_several_workers_on_the_embedded_sqlite_store(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "serve", "--workers", "2"],
        env=serve_env(tmp_path, {}, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers 2 needs a PostgreSQL hub store" in result.stderr
    assert "MASH_DATABASE_URL" in result.stderr
    assert not (tmp_path / "hub.sqlite3").exists(), "refused before anything started"


def test_two_workers_share_the_load_with_exactly_one_sequencer_that_another_takes_over(
    served: Served, postgres_url: str
) -> None:
    token = devissuer.mint(served.data_dir, "mash_social_worker")
    workers = served.workers()
    cpu_before = {pid: cpu_ms(pid) for pid in workers}

    # Both workers serve reads (each spends CPU on them). Which worker accepts a connection
    # is the kernel's choice, and one may take a whole burst: a few bursts of new
    # connections, until each worker has had some.
    for _ in range(6):
        asyncio.run(drive(served.base, token, reads=24))
        spent = {pid: cpu_ms(pid) - cpu_before[pid] for pid in workers}
        if all(ms > 100 for ms in spent.values()):
            break
    assert all(ms > 100 for ms in spent.values()), f"a worker sat idle: {spent}"
    wait_for(lambda: len(sequencers(postgres_url)) == 1, "a sequencer")
    (holder,) = sequencers(postgres_url)
    leader = pid_of(holder)
    assert leader in workers
    assert_scrapes_see_every_worker(served.base, postgres_url)
    took_over = [line for line in served.log_lines() if "now sequences the audit log" in line]
    assert len(took_over) == 1, took_over

    # the sequencer's process dies: uvicorn replaces the worker, and the other worker (or
    # the replacement) takes the role over; never two at once
    os.kill(leader, signal.SIGKILL)
    seen: list[list[str]] = []

    def new_leader() -> bool:
        seen.append(sequencers(postgres_url))
        return len(seen[-1]) == 1 and pid_of(seen[-1][0]) != leader

    wait_for(new_leader, "another process to take the sequencer over")
    assert all(len(names) <= 1 for names in seen)
    successor = pid_of(seen[-1][0])
    wait_for(lambda: len(served.workers()) == 2, "uvicorn to replace the dead worker")
    assert successor in served.workers()

    asyncio.run(drive(served.base, token, reads=16))
    time.sleep(1.5)  # a sequencer round (0.5 s) chains and signs what was just written
    assert len(sequencers(postgres_url)) == 1
    assert_scrapes_see_every_worker(served.base, postgres_url)

    # every line every process logged is one JSON object (hub.telemetry.logs applies in each worker)
    lines = served.log_lines()
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line

    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=60)
    assert sequencers(postgres_url) == []
    result = audit_verify(served.data_dir, postgres_url)
    assert result.returncode == 0, result.stderr
    assert "audit log intact" in result.stdout and "0 not yet sequenced" in result.stdout
