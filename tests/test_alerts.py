"""The Prometheus alert rules under docker/prometheus/ pass Prometheus's own checker and their
unit tests (each alert fires and stays quiet on recorded series), so a broken expression
fails here, not in a council's monitoring on the night it matters.

promtool comes from Debian's `prometheus` package (`.ci/run` installs it); without it these
tests fail, never skip."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from hub.settings import PROJECT_ROOT

PROMETHEUS = PROJECT_ROOT / "docker" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    return subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def alert_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def test_promtool_check_rules_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == alert_names() and quiet == alert_names()


def test_the_alerts_cover_what_an_operator_must_hear_about() -> None:
    assert {
        "MashHubAuditUnavailable",
        "MashHubAuditSequencerBehind",
        "MashHubAuditCheckpointStale",
        "MashHubSourceCircuitOpen",
        "MashHubGraphQLErrorRate",
    } <= alert_names()


def test_prometheus_config_loads_the_rules_and_scrapes_the_hub() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == [RULES.name]
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["hub:8000"]
