"""House style (STYLE.md): ruff for lint and format, mypy --strict over the packages."""

from __future__ import annotations

import subprocess
import sys

from hub.settings import PROJECT_ROOT

TREES = ["hub", "schema", "adapters", "tests", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff_finds_nothing_to_fix() -> None:
    lint = _run("ruff", "check", *TREES)
    assert lint.returncode == 0, lint.stdout
    fmt = _run("ruff", "format", "--check", *TREES)
    assert fmt.returncode == 0, fmt.stdout


def test_mypy_strict_passes_over_the_packages() -> None:
    result = _run("mypy", "hub", "schema", "adapters")
    assert result.returncode == 0, result.stdout
