"""The Grafana dashboard (docker/grafana/mash-hub.json) loads as a Grafana dashboard and shows
the metric of every alert rule, so whoever is paged can see what fired it."""

from __future__ import annotations

from typing import Any

import yaml

from hub.settings import PROJECT_ROOT

from .monitoring import alerts, dashboard, dashboard_exprs, metric_names, panels

GRID_COLUMNS = 24


def test_dashboard_is_grafana_dashboard_json() -> None:
    board = dashboard()
    assert board["title"] == "MASH Hub" and board["uid"] == "mash-hub"
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    everything = panels(board)
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert all(isinstance(i, int) for i in ids)
    for panel in everything:
        assert panel["type"] and panel["title"]
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and all(isinstance(v, int) for v in grid.values())
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        if panel["type"] != "row":
            assert panel["targets"], f"{panel['title']} queries nothing"
            for target in panel["targets"]:
                assert target["refId"] and metric_names(target["expr"]), target


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard()):
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_alert_rule_has_a_panel_showing_its_metrics() -> None:
    board = dashboard()
    for name, expr in alerts().items():
        named = [p for p in panels(board) if name in p.get("description", "")]
        assert named, f"no panel names alert {name}"
        shown = {m for p in named for t in p["targets"] for m in metric_names(t["expr"])}
        assert metric_names(expr) <= shown, f"{name}: {metric_names(expr) - shown} not shown"
        assert metric_names(expr) <= {m for e in dashboard_exprs(board) for m in metric_names(e)}


def test_dashboard_shows_per_source_latency_and_circuit_state() -> None:
    exprs = dashboard_exprs(dashboard())
    assert any("mash_hub_source_seconds_bucket" in e and "by (source, le)" in e for e in exprs)
    assert any("mash_hub_source_circuit_open" in e and "by (source)" in e for e in exprs)


def test_compose_monitoring_profile_provisions_the_dashboard_and_the_rules() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    assert "./docker/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert any(
        v.startswith("./docker/grafana/mash-hub.json:") for v in services["grafana"]["volumes"]
    )
    provider = yaml.safe_load(
        (PROJECT_ROOT / "docker/grafana/provisioning/dashboards/mash-hub.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = yaml.safe_load(
        (PROJECT_ROOT / "docker/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
