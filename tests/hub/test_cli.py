"""The `mash-hub` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert set(lines) == {"POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP"}
    assert all("ok" in line and "ms" in line for line in lines.values())
    assert lines["ADULT_SOCIAL_CARE"].split()[-1].isdigit(), "the ASC source says its size"


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
