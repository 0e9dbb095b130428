"""`mash-hub policy explain`: the decision on one question and the rule that made it."""

from __future__ import annotations

from typer.testing import CliRunner

from hub.cli import app


def explain(*args: str) -> list[str]:
    result = CliRunner().invoke(app, ["policy", "explain", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_explain_names_stage_gating_for_a_screening_police_researcher_reading_health() -> None:
    lines = explain(
        *("--role", "police_researcher", "--agency", "police", "--purpose", "MASH_RESEARCH"),
        *("--stage", "SCREENING", "--kind", "health.section"),
    )
    assert lines[0] == "decision: STAGE_RESTRICTED"
    assert lines[1].startswith("because:  rule 3:")


def test_explain_a_field_hidden_by_handling_code_c() -> None:
    lines = explain(
        *("--role", "mash_social_worker", "--agency", "council", "--purpose", "MASH_RESEARCH"),
        *("--stage", "RESEARCH", "--consent", "GIVEN", "--kind", "police.intelligence"),
        *("--handling-code", "C", "--field", "text"),
    )
    assert lines == [
        "decision: ORIGINATOR_RESTRICTED",
        "because:  rule 13: handling code C shows its permitted summary only outside police",
    ]
    shown = explain(
        *("--role", "mash_social_worker", "--agency", "council", "--purpose", "MASH_RESEARCH"),
        *("--stage", "RESEARCH", "--consent", "GIVEN", "--kind", "police.intelligence"),
        *("--handling-code", "C", "--field", "summary"),
    )
    assert shown[0] == "decision: SHOWN"


def test_explain_whole_record_access_and_yes_no_rules() -> None:
    ig = explain("--role", "ig_officer", "--agency", "council", "--purpose", "MASH_RESEARCH")
    assert ig[0] == "decision: DENY" and any("rule 1:" in line for line in ig)
    glass = explain(
        *("--role", "mash_manager", "--agency", "council", "--purpose", "BREAK_GLASS"),
        *("--break-glass", "--rule", "may_write"),
    )
    assert glass[0] == "decision: DENY" and "rule 15:" in glass[1]
    research = explain(
        "--role",
        "mash_manager",
        "--agency",
        "council",
        "--purpose",
        "MASH_RESEARCH",
        "--rule",
        "may_write",
    )
    assert research[0] == "decision: ALLOW"
