"""Runs every decision table in policies/ against the policies beside it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hub.policy import PolicyEngine, PolicyError, check_case, load_tables, run_tables
from hub.settings import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(POLICIES)


def test_every_policy_file_has_a_decision_table_with_allow_and_deny_rows() -> None:
    polar_files = list(POLICIES.glob("*.polar"))
    assert polar_files
    for polar in polar_files:
        table = polar.with_suffix("").with_suffix(".cases.toml")
        assert table.exists(), f"{polar.name} has no decision table"
        rows = tomllib.loads(table.read_text())["case"]
        assert all(row.get("why") for row in rows), f"{table.name}: every row needs a why"
        expects = {row["expect"] for row in rows}
        assert expects & {"ALLOW", "SHOWN"}, f"{table.name} has no allow row"
        assert expects - {"ALLOW", "SHOWN"}, f"{table.name} has no deny row"


@pytest.mark.parametrize(
    ("name", "case"), load_tables(POLICIES), ids=lambda v: v if isinstance(v, str) else ""
)
def test_policy_decides_as_the_table_says(
    engine: PolicyEngine, name: str, case: dict[str, Any]
) -> None:
    assert check_case(engine, case) is None, name


def test_run_tables_reports_a_row_the_policy_contradicts(
    engine: PolicyEngine, tmp_path: Path
) -> None:
    (tmp_path / "wrong.cases.toml").write_text(
        '[[case]]\nwhy = "deliberately wrong"\nrule = "read_child"\nroles = ["ig_officer"]\n'
        'agency = "council"\npurpose = "MASH_RESEARCH"\nexpect = "ALLOW"\n'
    )
    failures, total = run_tables(engine, tmp_path)
    assert total == 1 and failures and "expected ALLOW, got DENY" in failures[0]


def test_policy_engine_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    (tmp_path / "broken.polar").write_text("read_child(req) if req.purpose = ;")
    with pytest.raises(PolicyError, match="policy failed to load"):
        PolicyEngine(tmp_path)
