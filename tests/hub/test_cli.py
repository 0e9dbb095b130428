"""The `mash-hub` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hub.demo import sources

from .conftest import Hub


def mash_hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_sources_check_reports_every_source_healthy_with_latency_and_count(
    source_config: dict[str, Any], demo_data: Path
) -> None:
    result = mash_hub(
        "sources",
        "check",
        env={"MASH_SOURCES": json.dumps(source_config), "MASH_DATA_DIR": str(demo_data)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == {"POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP", "EDUCATION"}
    assert all("ok" in line and "ms" in line for line in lines.values())
    assert lines["ADULT_SOCIAL_CARE"].split()[-1].isdigit(), "the ASC source says its size"
    assert lines["EDUCATION"].split()[-1].isdigit(), "the education source says its size"


def test_sources_check_exits_non_zero_naming_the_unhealthy_source(
    source_config: dict[str, Any], demo_data: Path
) -> None:
    closed = f"http://127.0.0.1:{sources.free_port()}/fhir"
    config = {**source_config, "HEALTH": {"url": closed, "deadline_ms": 1000}}
    result = mash_hub(
        "sources",
        "check",
        env={"MASH_SOURCES": json.dumps(config), "MASH_DATA_DIR": str(demo_data)},
    )
    assert result.returncode == 1
    health = next(line for line in result.stdout.splitlines() if line.startswith("HEALTH"))
    assert "unhealthy" in health and "SourceUnavailable" in health
    assert (
        "POLICE" in result.stdout
        and "unhealthy" not in result.stdout.split("POLICE")[1].split("\n")[0]
    )


def test_token_prints_only_a_token_the_hub_accepts(hub: Hub) -> None:
    result = mash_hub(
        "token",
        "--role",
        "police_researcher",
        "--sub",
        "pc-1234",
        env={"MASH_DATA_DIR": str(hub.data_dir)},
    )
    assert result.returncode == 0
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    assert (
        mash_hub("token", "--role", "wizard", env={"MASH_DATA_DIR": str(hub.data_dir)}).returncode
        == 2
    )


def test_policy_test_runs_every_decision_table() -> None:
    result = mash_hub("policy", "test")
    assert result.returncode == 0, result.stderr
    assert "decision-table rows pass" in result.stdout


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_demo_stops_the_sources_it_started_when_terminated(demo_data: Path, tmp_path: Path) -> None:
    """SIGTERM (a service manager's or a container's stop) ends the demo and the source
    systems it started; none is left running."""
    data_dir = tmp_path / "var"
    shutil.copytree(demo_data, data_dir)  # seeded already: the demo starts at once
    port = sources.free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", str(port)],
        env={**os.environ, "MASH_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sources.wait_until_up(f"http://127.0.0.1:{port}/healthz", timeout=60, process=demo)
        started = children_of(demo.pid)
        assert len(started) == len(sources.HTTP_SOURCES), "one process per HTTP source"
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) != 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in started):
            time.sleep(0.1)
        assert not [p for p in started if Path(f"/proc/{p}").exists()]
    finally:
        demo.kill()
        demo.wait()


def test_sources_check_reads_the_configuration_the_running_demo_serves(
    demo_data: Path, tmp_path: Path
) -> None:
    """`mash-hub demo` writes its sources into the data folder while it runs, so
    `mash-hub sources check` (same data folder, nothing else set) checks those very
    sources; once the demo stops, the file is gone and nothing is configured."""
    data_dir = tmp_path / "var"
    shutil.copytree(demo_data, data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    env["MASH_DATA_DIR"] = str(data_dir)
    check = [sys.executable, "-m", "hub.cli", "sources", "check"]
    port = sources.free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sources.wait_until_up(f"http://127.0.0.1:{port}/healthz", timeout=60, process=demo)
        result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        for source in ("POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP", "EDUCATION"):
            assert any(
                line.startswith(source) and "ok (reachable, authenticated)" in line
                for line in result.stdout.splitlines()
            ), result.stdout
        assert "hub.env" in result.stderr
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        assert not (data_dir / "hub.env").exists()
        after = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60)
        assert after.returncode == 2 and "no sources configured" in after.stderr
    finally:
        demo.kill()
        demo.wait()
