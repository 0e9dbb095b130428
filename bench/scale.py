"""Scale-out: the showcase read's throughput with `mash-hub serve --workers 1` and then
`--workers 2` on one PostgreSQL hub store, in the same run, and the audit log afterwards.

The read is bench.hub's: a MASH social worker walks a contact (create, research, consent)
and reads Ava's whole record with `contactId`. `clients` concurrent clients (keep-alive
connections, as a load balancer keeps them) read for `seconds` at each worker count, in
`rounds` alternating runs (1, 2, 1, 2 workers, each a fresh `serve`) so that the machine's
other load, which comes and goes, falls on both counts; each count's figures pool its runs.

The clients open their connections one after another, RAMP_S apart, during a warm-up.
uvicorn's workers share one listening socket and each accepts greedily: connections opened
in one burst all land on the worker that wakes first (measured: 4 clients started at once,
worker 2 used 0.01 cores while worker 1 used 0.91). Arriving as load ramps up, a connection
finds the busy worker inside a read and the idle one accepts it. `cores_busy` per worker in
the figures shows how evenly the run spread.

- `throughput_rps`, `p50_ms`, `p99_ms` per worker count; `ratio`: 2 workers / 1.
- `sequencers_seen`: the most sessions ever seen holding the sequencer's advisory lock in
  `pg_locks` (polled every SEQUENCER_POLL_S during every run; `hub.audit.sequencer.holders`), and
  `sequencer_processes`: how many distinct processes held it within one run (a takeover
  would show two).
- `audit_verify_passed`: `mash-hub audit verify` on the store once both hubs have stopped.
- `cpu`: where the machine's CPU went during each run, per process group, from /proc: the
  hub's workers (each), the load generator (this process), the demo source servers,
  PostgreSQL's backends (every `postgres` process on the machine) and the rest (other
  users of the machine), in cores busy on average, and the machine's idle share.
  `explanation` splits the ratio into the CPU the workers got (2 vs 1) times the reads per
  core-second of it, and below 1.5x says what stopped it: `reads_per_hub_core_s` (reads
  per second of worker CPU) tells the hub's own scaling from the CPU it was given, and
  `worker_preemptions_per_read` (the kernel's nonvoluntary context switches of the
  workers' event-loop threads) how often other processes took the CPU from them mid-read.

`python -m bench scale` writes bench/results/scale.json; `--quick` runs tiny sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.audit.sequencer import holders
from hub.auth import devissuer
from hub.demo import sources
from hub.demo.stack import demo_sources
from hub.store.engine import Store

from .hub import percentile, postgres_database, read, walk_contact

GOAL_RATIO = 1.5
RAMP_S = 0.05
SEQUENCER_POLL_S = 0.5
WORKER_COUNTS = (1, 2)


@dataclass(frozen=True)
class Sizes:
    households: int
    clients: int
    warmup_s: float
    seconds: float
    rounds: int  # runs per worker count, alternating


FULL = Sizes(
    households=int(os.environ.get("BENCH_HUB_HOUSEHOLDS", "300")),
    clients=int(os.environ.get("BENCH_SCALE_CLIENTS", "16")),
    warmup_s=5.0,
    seconds=float(os.environ.get("BENCH_SECONDS", "20")),
    rounds=int(os.environ.get("BENCH_SCALE_ROUNDS", "2")),
)
QUICK = Sizes(households=12, clients=4, warmup_s=0.5, seconds=1.0, rounds=1)


# --- CPU by process, from /proc -----------------------------------------------------------
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of `pid` (0 once it is gone)."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> set[int]:
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def workers_of(serve_pid: int) -> list[int]:
    """The hub's worker processes: uvicorn's spawned children (not multiprocessing's
    helpers), or with one worker the serving process itself."""
    spawned = []
    for pid in sorted(children(serve_pid)):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                spawned.append(pid)
    return spawned or [serve_pid]


def postgres_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.add(int(entry.name))
    return pids


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuProfile:
    """Ticks per process group between `start` and `stop`: the hub's workers (each), this
    process (the load generator), the demo sources, PostgreSQL and the rest."""

    def __init__(self, serve_pid: int, source_pids: set[int]) -> None:
        self.serve_pid, self.source_pids = serve_pid, source_pids

    def _groups(self) -> dict[str, int]:
        workers = workers_of(self.serve_pid)
        groups = {f"hub_worker_{i + 1}": cpu_ticks(pid) for i, pid in enumerate(workers)}
        if workers != [self.serve_pid]:
            groups["hub_supervisor"] = cpu_ticks(self.serve_pid)
        groups["load_generator"] = cpu_ticks(os.getpid())
        groups["demo_sources"] = sum(map(cpu_ticks, self.source_pids))
        groups["postgresql"] = sum(map(cpu_ticks, postgres_pids()))
        return groups

    def _preempted(self) -> int:
        """Times the workers' event-loop threads were switched out while runnable (the
        kernel's nonvoluntary context switches): how often another process took their CPU."""
        total = 0
        for pid in workers_of(self.serve_pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("nonvoluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        return total

    def start(self) -> None:
        self._before, self._machine = self._groups(), machine_ticks()
        self._preempted_before = self._preempted()
        self._started = time.monotonic()

    def stop(self) -> dict[str, Any]:
        after, (busy, total) = self._groups(), machine_ticks()
        seconds = time.monotonic() - self._started
        hz = os.sysconf("SC_CLK_TCK")
        cores = {
            name: round((after[name] - self._before.get(name, 0)) / hz / seconds, 2)
            for name in after
        }
        machine_busy = (busy - self._machine[0]) / hz / seconds
        cores["other_processes"] = round(max(0.0, machine_busy - sum(cores.values())), 2)
        share_idle = 1 - (busy - self._machine[0]) / max(1, total - self._machine[1])
        return {
            "cores_busy": cores,
            "machine_idle_share": round(share_idle, 3),
            "worker_preemptions": self._preempted() - self._preempted_before,
        }


# --- the hub under test -------------------------------------------------------------------
@contextlib.contextmanager
def serving(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """`mash-hub serve --workers N` in its own process group; its base URL and pid."""
    port = sources.free_port()
    command = [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)]
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        sources.wait_until_up(f"{base}/readyz", timeout=120, process=process)
        deadline = time.monotonic() + 60
        while len(workers_of(process.pid)) < workers:  # every worker up
            if time.monotonic() > deadline:
                raise RuntimeError("the hub's workers did not all start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def watch_sequencers(database_url: str, seen: list[list[str]], stop: asyncio.Event) -> None:
    store = Store(database_url)
    try:
        while not stop.is_set():
            async with store.engine.connect() as conn:
                seen.append(await holders(conn))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SEQUENCER_POLL_S):
                    await stop.wait()
    finally:
        await store.aclose()


@dataclass
class Sample:
    """One measured run of `seconds` at one worker count."""

    latencies: list[float]
    elapsed: float
    errors: int
    holders: list[list[str]]  # each poll's sequencer lock holders
    cpu: dict[str, Any]


async def drive(
    base: str, token: str, sizes: Sizes, database_url: str, profile: CpuProfile
) -> Sample:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=sizes.clients, max_keepalive_connections=sizes.clients)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:
        variables = await walk_contact(client)
        latencies: list[float] = []
        errors = 0

        async def client_loop(until: float, record: bool, delay: float = 0.0) -> None:
            nonlocal errors
            await asyncio.sleep(delay)
            while time.perf_counter() < until:
                started = time.perf_counter()
                try:
                    await read(client, variables)
                except (RuntimeError, httpx.HTTPError):
                    errors += int(record)
                    continue
                if record:
                    latencies.append((time.perf_counter() - started) * 1000)

        async def level(seconds: float, record: bool, ramp_s: float = 0.0) -> float:
            until = time.perf_counter() + seconds
            started = time.perf_counter()
            await asyncio.gather(
                *(client_loop(until, record, i * ramp_s) for i in range(sizes.clients))
            )
            return time.perf_counter() - started

        # The warm-up opens the keep-alive connections the measurement uses, one client
        # after another (RAMP_S apart) as load ramps up in service: see the docstring.
        await level(sizes.warmup_s, record=False, ramp_s=RAMP_S)
        seen: list[list[str]] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_sequencers(database_url, seen, stop))
        profile.start()
        elapsed = await level(sizes.seconds, record=True)
        cpu = profile.stop()
        stop.set()
        await watcher
    return Sample(latencies, elapsed, errors, seen, cpu)


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """The runs of one worker count as one: reads over their whole time, latencies pooled,
    CPU shares weighted by each run's length."""
    latencies = [ms for sample in samples for ms in sample.latencies]
    elapsed = sum(sample.elapsed for sample in samples)
    throughput = len(latencies) / elapsed

    def weighted(value: Any) -> float:
        return round(sum(value(s) * s.elapsed for s in samples) / elapsed, 3)

    names = samples[0].cpu["cores_busy"].keys()
    cores = {name: weighted(lambda s, n=name: s.cpu["cores_busy"].get(n, 0.0)) for name in names}
    hub = sum(v for k, v in cores.items() if k.startswith("hub_worker"))
    preempted = sum(sample.cpu["worker_preemptions"] for sample in samples)
    return {
        "throughput_rps": round(throughput, 1),
        "reads_per_hub_core_s": round(throughput / hub, 1) if hub else None,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "reads": len(latencies),
        "failed_reads": sum(sample.errors for sample in samples),
        # per run (each run is a new `serve`): the most holders in one poll, and how many
        # processes held the role over the run (a takeover would show 2)
        "sequencers_max": max(len(names) for s in samples for names in s.holders),
        "sequencer_processes_per_run": max(
            len({name for names in s.holders for name in names}) for s in samples
        ),
        "sequencer_polls": sum(len(s.holders) for s in samples),
        "cores_busy": cores,
        "machine_idle_share": weighted(lambda s: s.cpu["machine_idle_share"]),
        "worker_preemptions_per_read": round(preempted / len(latencies), 1) if latencies else None,
    }


def audit_verify(env: dict[str, str]) -> tuple[bool, str]:
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "audit", "verify"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode == 0, (done.stdout or done.stderr).strip().splitlines()[0]


def hub_cores(run: dict[str, Any]) -> float:
    return float(sum(v for k, v in run["cores_busy"].items() if k.startswith("hub_worker")))


def explain(runs: dict[str, dict[str, Any]], ratio: float) -> str:
    """The throughput ratio as (CPU the workers got, 2 vs 1) x (reads per core, 2 vs 1),
    from the CPU profiles, and, below GOAL_RATIO, what stopped it."""
    one, two = runs["1"], runs["2"]
    got = hub_cores(two) / hub_cores(one) if hub_cores(one) else 0.0
    per_core = (one["reads_per_hub_core_s"] or 0.0, two["reads_per_hub_core_s"] or 0.0)
    efficiency = per_core[1] / per_core[0] if per_core[0] else 0.0
    rivals = {k: v for k, v in two["cores_busy"].items() if not k.startswith("hub_")}
    rivals_text = ", ".join(
        f"{name.replace('_', ' ')} {cores:.2f}"
        for name, cores in sorted(rivals.items(), key=lambda kv: -kv[1])
    )
    verdict = (
        f"2 workers gave {ratio:.2f}x one worker"
        + (f", below {GOAL_RATIO}x. " if ratio < GOAL_RATIO else ". ")
        + f"That is {got:.2f}x the CPU for the hub's workers ({hub_cores(two):.2f} of the "
        f"machine's {os.cpu_count()} cores against {hub_cores(one):.2f}) times "
        f"{efficiency:.2f}x the reads per core-second of that CPU ({per_core[1]} against "
        f"{per_core[0]}). "
    )
    cpu = (
        f"The machine had {100 * two['machine_idle_share']:.1f}% idle with 2 workers "
        f"({100 * one['machine_idle_share']:.1f}% with one); besides the workers, its cores "
        f"went to: {rivals_text} ('other processes' is work on this machine outside the "
        f"benchmark), so a second worker could add only what they left. "
    )
    work = (
        "The reads per core held, so the store, its locks and the one sequencer did not "
        "stop the second worker."
        if efficiency >= 0.85
        else f"The reads per core fell {100 * (1 - efficiency):.0f}%: the workers were "
        f"preempted {one['worker_preemptions_per_read']} times per read with 1 worker and "
        f"{two['worker_preemptions_per_read']} with 2 (each switch costs a worker its CPU "
        "caches); this profile does not rule out contention in the store."
    )
    return verdict + cpu + work


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    load_before = [round(x, 2) for x in os.getloadavg()]
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as database_url,
        demo_sources(Path(tmp), say=lambda _: None, households=sizes.households) as config,
    ):
        data_dir = Path(tmp)
        source_pids = children(os.getpid())  # the demo's HTTP source servers
        env = {
            "MASH_DATA_DIR": str(data_dir),
            "MASH_SOURCES": json.dumps(config),
            "MASH_DEV_ISSUER": "true",
            "MASH_DATABASE_URL": database_url,
        }
        log = data_dir / "serve.log"
        samples: dict[int, list[Sample]] = {workers: [] for workers in WORKER_COUNTS}
        rounds = []
        for _ in range(sizes.rounds):  # 1, 2, 1, 2: the machine's other load falls on both
            for workers in WORKER_COUNTS:
                with serving(env, workers, log) as (base, pid):
                    token = devissuer.mint(data_dir, "mash_social_worker")
                    profile = CpuProfile(pid, source_pids)
                    sample = asyncio.run(drive(base, token, sizes, database_url, profile))
                samples[workers].append(sample)
                rounds.append({"workers": workers} | summarise([sample]))
        verified, summary = audit_verify(env)
    runs = {str(workers): summarise(taken) for workers, taken in samples.items()}
    ratio = runs["2"]["throughput_rps"] / runs["1"]["throughput_rps"]
    return {
        "throughput_rps": {k: r["throughput_rps"] for k, r in runs.items()},
        "p50_ms": {k: r["p50_ms"] for k, r in runs.items()},
        "p99_ms": {k: r["p99_ms"] for k, r in runs.items()},
        "ratio": round(ratio, 2),
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "explanation": explain(runs, ratio),
        "sequencers_seen": max(r["sequencers_max"] for r in runs.values()),
        "sequencer_processes": {k: r["sequencer_processes_per_run"] for k, r in runs.items()},
        "audit_verify_passed": verified,
        "audit_verify": summary,
        "runs": runs,
        "rounds": [
            {
                "workers": r["workers"],
                "throughput_rps": r["throughput_rps"],
                "reads_per_hub_core_s": r["reads_per_hub_core_s"],
                "hub_cores": round(hub_cores(r), 2),
                "other_processes": r["cores_busy"]["other_processes"],
            }
            for r in rounds
        ],
        "clients": sizes.clients,
        "seconds_per_run": sizes.seconds,
        "runs_per_worker_count": sizes.rounds,
        "store": "postgresql",
        "households": sizes.households,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "quick": quick,
    }
