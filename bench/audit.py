"""The audit log's cost on PostgreSQL: write throughput, added latency, sequencing and
verify speed.

ops_per_s: audited operations per second committed by the hub's writer (group commit) from
  CONCURRENCY concurrent requests, with the sequencer chaining alongside.
added_p50_ms / added_p99_ms: what the audit adds to one request: the time `write` takes
  (the request waits for its event's commit before it answers), one request at a time.
sequencer_events_per_s: events chained per second by the sequencer.
verify_events_per_min: events `audit verify` rebuilds and checks per minute (over a log of
  VERIFY_EVENTS bulk-loaded events plus those of the throughput run, vacuumed first).
commit_floor_p50_ms: a bare durable INSERT on the same server (the fsync floor).
load_average_1m: the machine's load when the run ended (other work shares its CPUs).
Everything runs on loopback: a throwaway database on the PostgreSQL server named by
MASH_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from hub.audit import checkpoints
from hub.audit.events import AuditRecord, AuditWriter, event_values
from hub.audit.models import AUDIT_EVENTS, AUDIT_SUBJECTS
from hub.audit.sequencer import Sequencer, SequencerConfig
from hub.audit.verify import verify
from hub.auth.tokens import Actor
from hub.store.engine import Store, migrate_async

SERVER = os.environ.get("MASH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "500"))
VERIFY_EVENTS = int(os.environ.get("BENCH_VERIFY_EVENTS", "200000"))
QUICK = {"SECONDS": 0.5, "SAMPLES": 20, "VERIFY_EVENTS": 2000}  # --quick: checks it runs
CONCURRENCY = 64


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def record(i: int) -> AuditRecord:
    return AuditRecord(
        actor=Actor(
            subject=f"worker-{i % 40}",
            issuer="https://issuer.example",
            roles=frozenset({"mash_social_worker"}),
            agency="council",
            team="mash-east",
            client="mash-portal",
        ),
        operation_type="query",
        operation_name="Record",
        query_hash="ab" * 32,
        purpose="MASH_RESEARCH",
        subjects={str(uuid.UUID(int=i % 5000)): "child", str(uuid.UUID(int=i % 977)): "mother"},
        sources={"POLICE": "OK", "HEALTH": "OK", "EARLY_HELP": "OK"},
        fields_returned=["child.id", "child.police.incidents.dashRisk", "child.health.plans"],
        fields_redacted={"child.police.intelligence.text": "HANDLING_CODE"},
        policy_version="0123456789abcdef",
    )


async def throughput(writer: AuditWriter) -> float:
    done = 0
    stop = time.perf_counter() + SECONDS

    async def client(n: int) -> None:
        nonlocal done
        i = n
        while time.perf_counter() < stop:
            await writer.write(record(i))
            done += 1
            i += CONCURRENCY

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(CONCURRENCY)))
    return done / (time.perf_counter() - started)


async def latency(writer: AuditWriter) -> list[float]:
    samples = []
    for i in range(SAMPLES):
        started = time.perf_counter()
        await writer.write(record(i))
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def commit_floor(url: str) -> list[float]:
    """The server's own cost of one durable commit (a bare INSERT, autocommit): the floor
    under added_p50_ms, set by the disk's fsync, not by the hub."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("CREATE TABLE bench_commit_floor (x int)")
        samples = []
        for _ in range(SAMPLES):
            started = time.perf_counter()
            await conn.execute("INSERT INTO bench_commit_floor VALUES (1)")
            samples.append((time.perf_counter() - started) * 1000)
        await conn.execute("DROP TABLE bench_commit_floor")
    finally:
        await conn.close()
    return samples


async def bulk_load(store: Store, n: int) -> None:
    """Events straight into the tables (the verify benchmark needs many, fast)."""
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        for start in range(0, n, 5000):
            rows, subjects = [], []
            for i in range(start, min(n, start + 5000)):
                values = {**event_values(record(i), str(uuid.uuid4())), "occurred_at": now}
                rows.append(values)
            result = await conn.execute(
                insert(AUDIT_EVENTS).returning(AUDIT_EVENTS.c.seq, sort_by_parameter_order=True),
                rows,
            )
            for (seq,), values in zip(result, rows, strict=True):
                subjects += [
                    {"event_seq": seq, "subject_id": s, "relationship": "child"}
                    for s in values["subjects"]
                ]
            await conn.execute(insert(AUDIT_SUBJECTS), subjects)


async def settle(url: str) -> None:
    """VACUUM (ANALYZE) the just-loaded log, as autovacuum does to any log older than a few
    minutes: `audit verify` runs over an old log, not over rows whose first reader would
    still be setting their hint bits."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("VACUUM (ANALYZE) audit_events, audit_subjects, audit_chain")
    finally:
        await conn.close()


async def measure(url: str, tmp: Path) -> dict[str, Any]:
    await migrate_async(url)
    store = Store(url)
    config = SequencerConfig(
        checkpoint_dir=tmp / "checkpoints", key_file=tmp / "key.pem", checkpoint_interval_s=5
    )
    sequencer = Sequencer(store, config)
    writer = AuditWriter(store)
    try:
        sequencer.start()
        for i in range(200):  # warm up the pool and the statement cache
            await writer.write(record(i))
        floor = await commit_floor(url)
        samples = await latency(writer)
        ops = await throughput(writer)
        await writer.aclose()
        await sequencer.stop()

        await bulk_load(store, VERIFY_EVENTS)
        started = time.perf_counter()
        chained = await sequencer.step(force_checkpoint=True)
        sequencing = chained / (time.perf_counter() - started)
        await settle(url)
        report = await verify(
            store, config.checkpoint_dir, checkpoints.load_public_key(config.key_file)
        )
        assert report.ok, report.finding
    finally:
        await store.aclose()
    return {
        "ops_per_s": round(ops, 1),
        "added_p50_ms": round(statistics.median(samples), 3),
        "added_p99_ms": round(percentile(samples, 99), 3),
        "commit_floor_p50_ms": round(statistics.median(floor), 3),
        "sequencer_events_per_s": round(sequencing, 1),
        "verify_events_per_min": round(report.chained / report.seconds * 60),
        "verified_events": report.chained,
        "concurrency": CONCURRENCY,
        "seconds": SECONDS,
        "latency_samples": SAMPLES,
        "store": "postgresql",
        "verify_workers": min(os.cpu_count() or 1, 4),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }


async def main() -> dict[str, Any]:
    server = make_url(SERVER).set(drivername="postgresql")
    name = f"mash_bench_{uuid.uuid4().hex[:10]}"
    admin = server.render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return await measure(
                server.set(database=name).render_as_string(hide_password=False), Path(tmp)
            )
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def run(quick: bool = False) -> dict[str, Any]:
    if quick:  # the sizes are module settings read by each step
        globals().update(QUICK)
    return asyncio.run(main()) | {"quick": quick}
