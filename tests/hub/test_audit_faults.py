"""Nothing unaudited under faults, and one sequencer across hub processes.

Real hub processes (`mash-hub serve`, uvicorn) on a private PostgreSQL cluster started for
these tests (never the shared server: this one gets restarted), concurrent clients, SIGKILL
of the hub and a restart of PostgreSQL mid-run. Every response that reached a client with
data names its audit event (`x-audit-event-id`); each of those must be a committed row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from hub.auth import devissuer
from hub.demo.sources import free_port, wait_until_up
from hub.store.engine import migrate

PG_BIN = Path("/usr/lib/postgresql/15/bin")
QUERY = {"query": "query Ping { __typename }"}


@dataclass
class Cluster:
    """A private PostgreSQL cluster, run as the `postgres` OS user (it refuses root)."""

    root: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self.ctl("-o", options, "-l", str(self.root / "log"), "-w", "start")

    def restart(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self.ctl("-o", options, "-l", str(self.root / "log"), "-m", "fast", "-w", "restart")

    @staticmethod
    def _as_postgres() -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(self.url("postgres"))
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="mash-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    c = Cluster(root, free_port())
    subprocess.run(
        [
            *c._as_postgres(),
            str(PG_BIN / "initdb"),
            "-D",
            str(root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    c.start()
    try:
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.ctl("-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class HubProcess:
    data_dir: Path
    database_url: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MASH_DATA_DIR": str(self.data_dir),
            "MASH_DATABASE_URL": self.database_url,
            "MASH_DEV_ISSUER": "true",
            "MASH_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        }

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        wait_until_up(f"{self.base}/readyz", timeout=60, process=self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def sequencing(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        metrics = httpx.get(f"{self.base}/metrics", timeout=5).text
        return "mash_hub_audit_sequencer_active 1.0" in metrics

    def verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "audit", "verify"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


@dataclass
class Load:
    """Concurrent clients; keeps every answer: (status, had data, audit event id)."""

    bases: list[str]
    token: str
    answers: list[tuple[int, bool, str | None]] = field(default_factory=list)
    failures: int = 0
    running: bool = True

    async def client(self, base: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=15) as http:
            while self.running:
                try:
                    response = await http.post("/graphql", json=QUERY)
                except httpx.HTTPError:
                    self.failures += 1
                    await asyncio.sleep(0.05)
                    continue
                body = response.json()
                self.answers.append(
                    (
                        response.status_code,
                        body.get("data") is not None,
                        response.headers.get("x-audit-event-id"),
                    )
                )

    def answered_with_data(self) -> list[str | None]:
        return [event for status, data, event in self.answers if data]


def run_load(load: Load, clients_per_hub: int, script: list[tuple[float, object]]) -> None:
    """Clients run while `script` (delay, action) steps run one after another in a thread."""

    async def main() -> None:
        tasks = [
            asyncio.create_task(load.client(base))
            for base in load.bases
            for _ in range(clients_per_hub)
        ]
        for delay, action in script:
            await asyncio.sleep(delay)
            await asyncio.to_thread(action)  # type: ignore[arg-type]
        load.running = False
        await asyncio.gather(*tasks)

    asyncio.run(main())


async def committed(database_url: str, event_ids: set[str]) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM audit_events WHERE event_id = ANY($1::text[])", list(event_ids)
        )
    finally:
        await conn.close()
    return {r["event_id"] for r in rows}


def test_no_response_with_data_leaves_without_a_committed_event_under_kills_and_restarts(
    cluster: Cluster, tmp_path: Path
) -> None:
    devissuer.ensure_keys(tmp_path)
    hub = HubProcess(tmp_path, cluster.create_database("faults"))
    hub.start()
    hub.wait_ready()
    load = Load([hub.base], devissuer.mint(tmp_path, "mash_social_worker"))
    counts: dict[str, int] = {}

    def mark(name: str) -> None:
        counts[name] = len(load.answered_with_data())

    def kill_and_restart_hub() -> None:
        mark("before kill")
        hub.kill()
        hub.start()
        hub.wait_ready()
        mark("hub restarted")

    def restart_postgres() -> None:
        mark("before postgres restart")
        cluster.restart()
        mark("postgres restarted")

    try:
        run_load(
            load,
            8,
            [(1.5, kill_and_restart_hub), (1.5, restart_postgres), (2.0, lambda: None)],
        )
    finally:
        hub.stop()
    with_data = load.answered_with_data()
    # Given answers in every phase...
    assert counts["before kill"] > 0
    assert counts["before postgres restart"] > counts["hub restarted"]
    assert len(with_data) > counts["postgres restarted"]
    # ...every answer with data names an event, and every such event was committed.
    assert None not in with_data
    ids = {e for e in with_data if e}
    assert len(ids) == len(with_data)
    assert asyncio.run(committed(hub.database_url, ids)) == ids
    # Refusals (the store away) carried no data.
    assert all(not data for status, data, _ in load.answers if status != 200)
    result = hub.verify()
    assert result.returncode == 0, result.stderr
    assert "audit log intact" in result.stdout


def test_two_hub_processes_have_exactly_one_sequencer_and_the_log_verifies(
    cluster: Cluster, tmp_path: Path
) -> None:
    devissuer.ensure_keys(tmp_path)
    url = cluster.create_database("two_hubs")
    migrate(url)  # once, as a deployment does: two processes must not race to create tables
    hubs = [HubProcess(tmp_path, url), HubProcess(tmp_path, url)]
    for hub in hubs:
        hub.start()
    load = Load([h.base for h in hubs], devissuer.mint(tmp_path, "mash_social_worker"))
    leaders: list[list[bool]] = []
    try:
        for hub in hubs:
            hub.wait_ready()

        def look() -> None:
            leaders.append([h.sequencing() for h in hubs])

        def kill_the_sequencer() -> None:
            look()
            for h in hubs:
                if h.sequencing():
                    h.kill()
            for _ in range(300):  # the other takes over once the server drops the lock
                if any(h.sequencing() for h in hubs):
                    break
                time.sleep(0.1)
            look()

        run_load(load, 6, [(1.0, look), (1.5, look), (0.5, kill_the_sequencer), (1.0, look)])
    finally:
        for hub in hubs:
            hub.stop()
    assert all(sum(seen) == 1 for seen in leaders[:3]), leaders
    assert leaders[2] != leaders[3] and sum(leaders[3]) == 1, leaders
    with_data = [e for e in load.answered_with_data() if e]
    assert len(with_data) > 50
    assert asyncio.run(committed(url, set(with_data))) == set(with_data)
    result = hubs[0].verify()
    assert result.returncode == 0, result.stderr
    assert "audit log intact" in result.stdout
