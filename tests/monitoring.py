"""What the checked-in monitoring files ask of the hub: the alert rules
(docker/prometheus/alerts.yml) and the Grafana dashboard (docker/grafana/mash-hub.json),
read the way the tests compare them with each other and with a running hub's /metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from hub.settings import PROJECT_ROOT

ALERTS = PROJECT_ROOT / "docker" / "prometheus" / "alerts.yml"
DASHBOARD = PROJECT_ROOT / "docker" / "grafana" / "mash-hub.json"

# The hub's own metrics; PromQL functions and label names never start with this.
_METRIC = re.compile(r"\bmash_hub_[a-z0-9_]+")


def metric_names(expr: str) -> set[str]:
    """The hub metrics (sample names: a histogram's `_bucket`, `_count`...) an expression reads."""
    return set(_METRIC.findall(expr))


def alerts() -> dict[str, str]:
    """Alert name -> expression."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]
