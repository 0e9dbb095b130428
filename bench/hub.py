"""The hub's own cost on the showcase record, with policy and audit on.

overhead: a client's end-to-end latency for `child(...)` minus the slowest source's latency
as the hub measured it (so what the hub adds: auth, identity, policy, audit commit, JSON).
throughput: `child(...)` requests per second from concurrent clients.
Everything runs on loopback: demo sources, the hub (`mash-hub serve`, one uvicorn process),
the embedded SQLite store, and the load generator in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from hub import devissuer
from hub.demo import sources
from hub.demo.stack import demo_sources

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "300"))
CONCURRENCY = 16
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))

SEARCH = """query($c: PersonSearch!) { searchChildren(criteria: $c, purpose: MASH_RESEARCH)
  { id nhsNumber } }"""
RECORD = """query Record($id: ID!) { child(id: $id, purpose: MASH_RESEARCH) {
  id sources { source status latencyMs }
  police { __typename ... on PoliceSection {
    incidents { __typename } intelligence { __typename } } }
  health { __typename ... on HealthSection { encounters { __typename } plans { __typename } } }
  adultSocialCare { __typename ... on AdultSocialCareSection { involvements { __typename } } }
  earlyHelp { __typename ... on EarlyHelpSection { episodes { __typename } } } } }"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(base: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        found = (
            await client.post(
                "/graphql",
                json={
                    "query": SEARCH,
                    "variables": {
                        "c": {
                            "givenName": "Ava",
                            "familyName": "Thompson",
                            "dateOfBirth": "2016-03-14",
                        }
                    },
                },
            )
        ).json()["data"]["searchChildren"]
        child_id = next(m["id"] for m in found if m["nhsNumber"] == "9434765919")
        body = {"query": RECORD, "variables": {"id": child_id}}

        overheads, totals = [], []
        for _ in range(20):  # warm up connections and caches
            await client.post("/graphql", json=body)
        for _ in range(SAMPLES):
            started = time.perf_counter()
            response = await client.post("/graphql", json=body)
            total_ms = (time.perf_counter() - started) * 1000
            record = response.json()["data"]["child"]
            assert all(s["status"] == "OK" for s in record["sources"]), record["sources"]
            slowest = max(s["latencyMs"] for s in record["sources"])
            totals.append(total_ms)
            overheads.append(total_ms - slowest)

        done = 0
        stop = time.perf_counter() + THROUGHPUT_SECONDS

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.post("/graphql", json=body)
                response.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return {
        "overhead_p50_ms": round(statistics.median(overheads), 2),
        "overhead_p99_ms": round(percentile(overheads, 99), 2),
        "total_p50_ms": round(statistics.median(totals), 2),
        "total_p99_ms": round(percentile(totals, 99), 2),
        "throughput_rps": round(done / elapsed, 1),
        "samples": SAMPLES,
        "concurrency": CONCURRENCY,
        "store": "sqlite",
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }


@contextlib.contextmanager
def hub_process(data_dir: Path, config: dict[str, Any]) -> Iterator[str]:
    """`mash-hub serve` in its own process, so the load generator does not share its GIL."""
    port = sources.free_port()
    env = {
        **os.environ,
        "MASH_DATA_DIR": str(data_dir),
        "MASH_SOURCES": json.dumps(config),
        "MASH_DEV_ISSUER": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sources.wait_until_up(f"http://127.0.0.1:{port}/readyz", timeout=60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        with demo_sources(data_dir) as config, hub_process(data_dir, config) as base:
            token = devissuer.mint(data_dir, "mash_social_worker")
            return asyncio.run(measure(base, token))
