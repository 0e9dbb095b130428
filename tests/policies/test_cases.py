"""Runs every decision table in policies/ against the policies beside it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hub.policy.engine import PolicyEngine, PolicyError, check_case, load_tables, run_tables
from hub.settings import PROJECT_ROOT
from schema.common import RedactionReason

POLICIES = PROJECT_ROOT / "policies"
ALLOWING = {"ALLOW", "SHOWN"}
RULE_NUMBERS = re.compile(r"^rules? ((?:\d+)(?:(?:, | and )\d+)*):")


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


def test_every_rule_of_domain_section_3_has_an_allow_and_a_deny_row() -> None:
    allow: dict[int, int] = {}
    deny: dict[int, int] = {}
    for name, case in load_tables(POLICIES):
        if name.startswith(("identity.", "contacts.", "audit_log.")):
            # Identity decisions, who may work contacts and who reads the audit log are not §3
            # rules about reading records (contacts.polar cites the rule where it applies one).
            continue
        numbers = RULE_NUMBERS.match(case["why"])
        assert numbers, f"{name}: the why must start with the rule it checks"
        for n in re.findall(r"\d+", numbers.group(1)):
            tally = allow if case["expect"] in ALLOWING else deny
            tally[int(n)] = tally.get(int(n), 0) + 1
    rules = set(range(1, 17))
    assert rules - set(allow) == set(), "rules without an allow row"
    assert rules - set(deny) == set(), "rules without a deny row"
    assert sum(allow.values()) >= 16 and sum(deny.values()) >= 16


def test_every_reason_the_policies_give_is_a_typed_redaction_reason() -> None:
    text = "\n".join(f.read_text() for f in POLICIES.glob("*.polar"))
    reasons = set(re.findall(r'^(?:withhold|hide_field)\(.*?"([A-Z_]+)",\s*$', text, re.M))
    assert {"STAGE_RESTRICTED", "NO_RELATIONSHIP", "LOCATION_PROTECTED"} <= reasons
    assert reasons <= {r.value for r in RedactionReason}, reasons - {
        r.value for r in RedactionReason
    }
