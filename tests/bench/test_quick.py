"""Every benchmark harness runs in its quick mode (tiny sizes, seconds) and writes its
figures: a harness that no longer runs on this code fails here, not months later. No timing
is asserted; the figures of a quick run mean nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import HARNESSES
from hub.settings import PROJECT_ROOT

# The keys each harness promises (dotted paths into its JSON), as the README quotes them.
KEYS = {
    "hub": [
        "floor_p50_ms",
        "hub_p50_ms",
        "hub_p99_ms",
        "overhead_p50_ms",
        "overhead_p99_ms",
        "hub_cpu_ms_per_read",
        "floor_cpu_ms_per_read",
        "cpu_ratio",
        "lean_floor_p50_ms",
        "overhead_vs_lean_floor_p50_ms",
        "cpu_ratio_vs_lean_floor",
        "throughput_rps.1",
        "throughput_rps.16",
        "throughput_rps.64",
        "store",
        "load_average_before",
        "load_average_after",
        "cpu_count",
    ],
    "sources": ["ratio_large_small", "small.search.p50_ms", "large.record.p50_ms"],
    "identity": [
        "febrl4.auto.precision",
        "generated.seed_8.shipped_thresholds",
        "query_time.search_and_score_p50_ms",
    ],
    "policy": ["policy_cpu_ms_p50", "policy_cold_engine_cpu_ms_p50", "engine_calls_per_page"],
    "audit": ["ops_per_s", "added_p50_ms", "verify_events_per_min"],
    "gateway": [
        "direct_p50_ms",
        "direct_p99_ms",
        "gateway_p50_ms",
        "gateway_p99_ms",
        "gateway_added_p50_ms",
        "federated_p50_ms",
        "throughput_rps.direct.1",
        "throughput_rps.gateway.16",
        "load_average_before",
        "load_average_after",
        "cpu_count",
    ],
    "scale": [
        "throughput_rps.1",
        "throughput_rps.2",
        "p50_ms.1",
        "p99_ms.2",
        "ratio",
        "sequencers_seen",
        "audit_verify_passed",
        "load_average_before",
        "load_average_after",
        "cpu_count",
        "runs.2.cores_busy.hub_worker_2",
    ],
}


def lookup(figures: dict[str, Any], dotted: str) -> Any:
    value: Any = figures
    for part in dotted.split("."):
        value = value[part]
    return value


def test_every_harness_has_its_keys_listed() -> None:
    assert set(KEYS) == set(HARNESSES)


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_runs_in_quick_mode_and_writes_its_figures(name: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path), name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / f"{name}.json").read_text())
    assert figures["quick"] is True
    for key in KEYS[name]:
        assert lookup(figures, key) is not None, key
    # a quick run never touches the committed figures
    committed = PROJECT_ROOT / "bench" / "results" / f"{name}.json"
    assert not committed.exists() or json.loads(committed.read_text()).get("quick") is not True
    if name == "scale":
        # two workers on one store: exactly one sequencer, and the log verifies after
        assert figures["sequencers_seen"] == 1, figures
        assert figures["sequencer_processes"] == {"1": 1, "2": 1}, figures
        assert figures["audit_verify_passed"] is True, figures["audit_verify"]
        assert all(run["reads"] > 0 for run in figures["runs"].values()), figures
    if name == "hub":
        # The floor replays the adapters' own requests: it must have captured both kinds
        # (the demo has SQL and HTTP sources); sent through the hub's own transport, they
        # take less than the hub, which sends them and does the rest.
        requests = figures["source_requests_per_read"]
        assert requests["sql_statements"] > 0 and requests["http_requests"] > 0
        assert figures["floor_p50_ms"] > 0
        assert 0 < figures["lean_floor_p50_ms"] < figures["hub_p50_ms"]
        assert figures["floor_cpu_ms_per_read"] > 0 and figures["hub_cpu_ms_per_read"] > 0
    if name == "gateway":  # every sampled read went both ways and answered in full
        assert figures["gateway_p50_ms"] > 0 and figures["direct_p50_ms"] > 0
        assert figures["throughput_failed_reads"]["gateway"] == {"1": 0, "16": 0}
