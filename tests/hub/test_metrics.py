"""/metrics on a running hub against the demo sources (hub store on SQLite and PostgreSQL):
every metric the alert rules and the dashboard read is exported after a read, so those
files cannot drift from the code; and the values mean what the alerts take them to mean."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hub.demo import sources
from hub.demo.stack import running_hub

from ..monitoring import alerts, dashboard, dashboard_exprs, metric_names
from .conftest import FakeContacts, Hub, hub_settings
from .test_app import AVA, SEARCH, ok, read_record, run_sql

SOURCES = {"POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP", "EDUCATION"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def settled(url: str, timeout: float = 20) -> Samples:
    """/metrics once the sequencer has chained and signed every event this hub wrote."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        written = value(samples, "mash_hub_audit_written_seq")
        signed = value(samples, "mash_hub_audit_checkpoint_seq")
        if (written > 0 and signed >= written) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_every_metric_the_alerts_and_dashboard_read_is_exported_after_a_read(hub: Hub) -> None:
    read_record(hub, "mash_social_worker")
    exported = {name for name, _ in settled(hub.url)}
    wanted = {m for expr in alerts().values() for m in metric_names(expr)}
    wanted |= {m for expr in dashboard_exprs(dashboard()) for m in metric_names(expr)}
    assert "mash_hub_source_seconds_bucket" in wanted and "mash_hub_audit_written_seq" in wanted
    assert wanted - exported == set()


def test_after_a_read_the_audit_gauges_show_a_chained_and_signed_log(hub: Hub) -> None:
    read_record(hub, "mash_social_worker")
    samples = settled(hub.url)
    written = value(samples, "mash_hub_audit_written_seq")
    assert value(samples, "mash_hub_audit_sequencer_active") == 1
    assert value(samples, "mash_hub_audit_sequenced_seq") >= written > 0
    assert value(samples, "mash_hub_audit_checkpoint_seq") >= written
    signed_at = value(samples, "mash_hub_audit_checkpoint_timestamp_seconds")
    assert time.time() - 120 < signed_at <= time.time() + 1
    assert value(samples, "mash_hub_audit_checkpoint_interval_seconds") == 60


def test_each_source_call_is_timed_by_source_and_outcome(hub: Hub) -> None:
    before = scrape(hub.url)
    read_record(hub, "mash_social_worker")
    after = scrape(hub.url)
    for source in SOURCES:
        key = ("mash_hub_source_seconds_count", frozenset({("source", source), ("outcome", "ok")}))
        # a read asks each source twice: the search round, then the items round
        assert after[key] - before.get(key, 0) >= 2, source
        assert value(after, "mash_hub_source_circuit_open", source=source) == 0
    labels = {dict(k[1]).get("outcome") for k in after if k[0] == "mash_hub_source_seconds_count"}
    assert labels <= {"ok", "not_known", "timed_out", "unavailable"}


def test_a_failing_source_opens_its_circuit_gauge_and_is_timed_as_unavailable(
    demo_data: Path,
    source_config: dict[str, Any],
    tmp_path: Path,
    fake_contacts: FakeContacts,
) -> None:
    dead = f"http://127.0.0.1:{sources.free_port()}/fhir"  # nothing listens there
    health = {"url": dead, "deadline_ms": 1500, "circuit_failures": 1, "circuit_reset_s": 600}
    config = {**source_config, "HEALTH": health}
    store = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    with running_hub(hub_settings(demo_data, store, config)) as url:
        assert value(scrape(url), "mash_hub_source_circuit_open", source="HEALTH") == 0
        before = scrape(url)
        ok(
            Hub(url, demo_data, store).gql(
                "mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}
            )
        )
        after = scrape(url)
    failed = (
        "mash_hub_source_seconds_count",
        frozenset({("source", "HEALTH"), ("outcome", "unavailable")}),
    )
    assert after[failed] - before.get(failed, 0) == 1
    assert value(after, "mash_hub_source_circuit_open", source="HEALTH") == 1
    assert value(after, "mash_hub_source_circuit_open", source="POLICE") == 0


def test_an_audit_event_the_store_refuses_counts_as_an_audit_write_failure(
    hub: Hub, source_config: dict[str, Any]
) -> None:
    with running_hub(hub_settings(hub.data_dir, hub.database_url, source_config)) as base:
        other = Hub(base, hub.data_dir, hub.database_url)
        before = value(scrape(base), "mash_hub_audit_write_failures_total")
        run_sql(hub.database_url, "ALTER TABLE audit_events RENAME TO audit_events_away")
        try:
            response = other.gql(
                "mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}
            )
        finally:
            run_sql(hub.database_url, "ALTER TABLE audit_events_away RENAME TO audit_events")
        after = scrape(base)
    assert response.status_code == 503
    assert value(after, "mash_hub_audit_write_failures_total") == before + 1
    failed = ("mash_hub_operations_total", frozenset({("outcome", "audit_failed")}))
    assert after[failed] >= 1
