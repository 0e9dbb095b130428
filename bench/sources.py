"""Search and record latency through the hub's record service at two scales of source.

For each scale (persons per source ≈ 2.5 × households) the harness seeds the demo sources
once (cached under bench/.data/, reused by later runs), starts them on loopback, and drives
`RecordService.search` (a child's name and date of birth, as an analyst types them) and
`RecordService.assemble` (the whole record: every source asked, identity, household) for a
fixed sample of children, after a warm-up over as many other children (pools and caches warm
as in a running system; no measured lookup repeats a warm-up one). `ratio_large_small` is p50
at the large scale over p50 at the small one, for search and for record; the headline is the
worse of the two.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from adapters import sources
from adapters.base import PersonQuery, SupportsProbe
from hub.app import build_adapters
from hub.demo.stack import demo_sources
from hub.reading.records import RecordService
from hub.settings import Settings
from hub.store.engine import Store, migrate_async

DATA = Path(__file__).resolve().parent / ".data"
SMALL = int(os.environ.get("BENCH_SOURCES_SMALL", "4000"))  # ≈ 10 k persons per source
LARGE = int(os.environ.get("BENCH_SOURCES_LARGE", "400000"))  # ≈ 1 M persons per source
SAMPLE = int(os.environ.get("BENCH_SOURCES_SAMPLE", "200"))
SEED = 7
TODAY = date(2026, 11, 26)  # the generator default "today"


def _children(data_dir: Path, n: int) -> list[PersonQuery]:
    """A fixed sample of children as health records them (name and date of birth)."""
    with sqlite3.connect(data_dir / "sources" / "health.sqlite3") as db:
        rows = db.execute(
            "SELECT given, family, birth_date FROM patients WHERE birth_date > ? "
            "AND given NOT LIKE 'Baby%' ORDER BY id",
            ((TODAY.replace(year=TODAY.year - 17)).isoformat(),),
        ).fetchall()
    picked = random.Random(SEED).sample(rows, min(n, len(rows)))
    return [
        PersonQuery(given_name=g, family_name=f, date_of_birth=date.fromisoformat(b))
        for g, f, b in picked
    ]


async def _counts(service: RecordService) -> dict[str, int | None]:
    """Person records per source, as each adapter's probe reports them."""
    counts: dict[str, int | None] = {}
    for source, adapter in service.adapters.items():
        health = await adapter.probe() if isinstance(adapter, SupportsProbe) else None
        counts[source.value] = health.record_count if health else None
    return counts


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


async def _measure(config: dict[str, Any], data_dir: Path, samples: int) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, sources=config)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/hub.sqlite3"
        await migrate_async(url)
        store = Store(url)
        deadlines = {s: 10.0 for s in sources()}
        service = RecordService(build_adapters(settings), deadlines, store)
        sample = _children(data_dir, 2 * samples)
        warmup, queries = sample[:samples], sample[samples:]
        search_ms, record_ms, statuses = [], [], set()
        # Warm pools and caches as a running system has them, with other children than the
        # measured ones: no measured lookup repeats one already made.
        for q in warmup:
            matches, _ = await service.search(q)
            if matches:
                await service.assemble(matches[0].subject_id)
        for q in queries:
            started = time.perf_counter()
            matches, _ = await service.search(q)
            search_ms.append((time.perf_counter() - started) * 1000)
            if not matches:
                continue
            started = time.perf_counter()
            record = await service.assemble(matches[0].subject_id)
            record_ms.append((time.perf_counter() - started) * 1000)
            assert record is not None
            statuses |= {a.status for a in record.answers.values()}
        # Each source on its own, for the same queries: how much of the search is the source.
        per_source = {}
        for source, adapter in service.adapters.items():
            times = []
            for q in queries:
                started = time.perf_counter()
                await adapter.search(q)
                times.append((time.perf_counter() - started) * 1000)
            per_source[source.value] = _summary(times)
        counts = await _counts(service)
        for adapter in service.adapters.values():
            await adapter.aclose()
        await store.aclose()
    return {
        "queries": len(queries),
        "records": len(record_ms),
        "search": _summary(search_ms),
        "record": _summary(record_ms),
        "statuses_seen": sorted(statuses),
        "source_search": per_source,
        "persons_per_source": counts,
    }


def _scale(households: int, root: Path = DATA, samples: int = SAMPLE) -> dict[str, Any]:
    data_dir = root / f"households-{households}"
    started = time.perf_counter()
    with demo_sources(data_dir, households=households, seed=SEED) as config:
        ready_s = time.perf_counter() - started
        figures = asyncio.run(_measure(config, data_dir, samples))
    result = {
        "households": households,
        "persons_per_source": figures.pop("persons_per_source"),
        "seed_or_start_s": round(ready_s, 1),
        **figures,
    }
    print(f"sources bench at {households} households: {result}", flush=True)
    return result


def run(quick: bool = False) -> dict[str, Any]:
    if quick:  # tiny populations in a throw-away folder: checks the harness runs
        with tempfile.TemporaryDirectory() as tmp:
            small, large = _scale(20, Path(tmp), 3), _scale(40, Path(tmp), 3)
    else:
        small, large = _scale(SMALL), _scale(LARGE)
    search_ratio = large["search"]["p50_ms"] / small["search"]["p50_ms"]
    record_ratio = large["record"]["p50_ms"] / small["record"]["p50_ms"]
    return {
        "ratio_large_small": round(max(search_ratio, record_ratio), 3),
        "ratio_search": round(search_ratio, 3),
        "ratio_record": round(record_ratio, 3),
        "goal_ratio": 1.2,
        "small": small,
        "large": large,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "quick": quick,
    }
