"""Runs every decision table in policies/ against the policies beside it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hub.policy import PolicyEngine, Request, Resource
from hub.settings import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"
TABLES = sorted(POLICIES.glob("*.cases.toml"))


def _cases() -> list[Any]:
    rows = []
    for table in TABLES:
        for i, case in enumerate(tomllib.loads(table.read_text())["case"]):
            rows.append(pytest.param(case, id=f"{table.stem}[{i}] {case['why']}"))
    return rows


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(POLICIES)


def test_every_policy_file_has_a_decision_table_with_allow_and_deny_rows() -> None:
    for polar in POLICIES.glob("*.polar"):
        table = polar.with_suffix(".cases.toml")
        assert table.exists(), f"{polar.name} has no decision table"
        expects = {c["expect"] for c in tomllib.loads(table.read_text())["case"]}
        assert expects & {"ALLOW", "SHOWN"}, f"{table.name} has no allow row"
        assert expects - {"ALLOW", "SHOWN"}, f"{table.name} has no deny row"


@pytest.mark.parametrize("case", _cases())
def test_policy_decides_as_the_table_says(engine: PolicyEngine, case: dict[str, Any]) -> None:
    request = Request(tuple(sorted(case["roles"])), case.get("agency"), case["purpose"])
    if case.get("rule") == "read_child":
        assert ("ALLOW" if engine.may_read_child(request) else "DENY") == case["expect"]
        return
    resource = Resource(**{**case["resource"], "special_categories": tuple(
        sorted(case["resource"].get("special_categories", ())))})
    decision = engine.decide(request, resource)
    if "field" in case:
        assert decision.allowed, "the record itself must be released for a field row"
        assert decision.hidden_fields.get(case["field"], "SHOWN") == case["expect"]
    else:
        assert ("ALLOW" if decision.allowed else decision.reason) == case["expect"]


def test_policy_engine_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    (tmp_path / "broken.polar").write_text("read_child(req) if req.purpose = ;")
    with pytest.raises(Exception, match="policy failed to load"):
        PolicyEngine(tmp_path)
