"""`mash-hub audit export`: JSON lines, CSV and FHIR R4 AuditEvent (IHE BALP), from the log
of a real hub after reads of Ava; FHIR validated with fhir.resources' R4B models."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from typer.testing import CliRunner

from hub.cli import app

from .conftest import Hub
from .test_app import AVA, AVA_NHS, RECORD, SEARCH, find_ava, ok

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."


def export(hub: Hub, *args: str) -> Any:
    env = {"MASH_DATABASE_URL": hub.database_url, "MASH_DATA_DIR": str(hub.data_dir)}
    return CliRunner().invoke(app, ["audit", "export", *args], env=env)


@pytest.fixture(scope="module")
def reads(hub: Hub) -> tuple[str, str]:
    """Reads of Ava to export: a search, a record read, and a refused read. Returns a moment
    just before them and the record read's audit event id (the window may also hold the
    previous test module's last operations)."""
    moment = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    ok(hub.gql("mash_social_worker", SEARCH, {"criteria": AVA, "purpose": "MASH_RESEARCH"}))
    child_id = find_ava(hub)
    record = hub.gql(
        "mash_social_worker",
        RECORD,
        {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
    )
    ok(record)
    hub.gql(
        "ig_officer",
        RECORD,
        {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
    )
    return moment, record.headers["x-audit-event-id"]


@pytest.fixture(scope="module")
def since(reads: tuple[str, str]) -> str:
    return reads[0]


def test_fhir_export_validates_as_r4_audit_events_in_the_balp_shape(hub: Hub, since: str) -> None:
    result = export(hub, "--format", "fhir", "--since", since)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    resources = [FhirAuditEvent.model_validate(r) for r in lines]  # raises if not valid R4
    child_id = find_ava(hub)

    reads = [r for r in lines if BALP + "PatientRead" in r.get("meta", {}).get("profile", [])]
    queries = [r for r in lines if BALP + "PatientQuery" in r.get("meta", {}).get("profile", [])]
    assert reads and queries and len(resources) == len(lines)
    read = reads[-1]
    assert read["subtype"][0]["code"] == "read" and read["action"] == "R"
    assert read["outcome"] == "0"
    patients = [e for e in read["entity"] if e["role"]["code"] == "1"]
    assert {"reference": f"Patient/{child_id}"} in [p["what"] for p in patients]
    assert any(p["description"] == "household_member" for p in patients)
    assert read["purposeOfEvent"][0]["coding"][0]["code"] == "MASH_RESEARCH"
    user, client, server = read["agent"]
    assert user["requestor"] and user["who"]["identifier"]["value"] == "demo-mash_social_worker"
    assert client["type"]["coding"][0]["code"] == "110153"
    assert server["type"]["coding"][0]["code"] == "110152"
    query = queries[-1]
    assert query["subtype"][0]["code"] == "search-type" and query["action"] == "E"
    assert next(e for e in query["entity"] if e["role"]["code"] == "24")["query"]
    # the refused read is exported as a failure and does not claim the success profile
    refused = [r for r in lines if r["outcomeDesc"].startswith("denied")]
    assert refused and all(r["outcome"] == "4" and "meta" not in r for r in refused)
    text = result.stdout
    for value in ("Thompson", "Thomson", "Jade", AVA_NHS, "2016-03-14"):
        assert value not in text


def test_jsonl_and_csv_exports_hold_the_same_events_with_subject_entries(
    hub: Hub, reads: tuple[str, str], tmp_path: Path
) -> None:
    since, read_id = reads
    out = tmp_path / "audit.jsonl"
    as_jsonl = export(hub, "--format", "jsonl", "--since", since, "--out", str(out))
    as_csv = export(hub, "--format", "csv", "--since", since)
    assert as_jsonl.exit_code == 0 and as_csv.exit_code == 0, as_jsonl.output + as_csv.output

    events = [json.loads(line) for line in out.read_text().splitlines()]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    ids = [e["event_id"] for e in events]
    assert [r["event_id"] for r in rows][: len(ids)] == ids  # later exports may add events
    read = next(e for e in events if e["event_id"] == read_id)
    assert (read["root_fields"], read["actor_roles"]) == (["child"], ["mash_social_worker"])
    assert {"subject_id": find_ava(hub), "relationship": "child"} in read["subject_entries"]
    assert read["police_consulted"] is True and read["policy_decisions"]
    row = next(r for r in rows if r["event_id"] == read["event_id"])
    assert json.loads(row["subject_entries"]) == read["subject_entries"]
    assert row["police_consulted"] == "true"
    assert not (tmp_path / "audit.jsonl.partial").exists()


def test_an_export_is_itself_audited_and_a_window_in_the_future_is_empty(hub: Hub) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = export(hub, "--format", "jsonl", "--since", later)
    assert result.exit_code == 0 and result.stdout == ""

    own = export(
        hub, "--format", "jsonl", "--since", (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    )
    audited = [json.loads(line) for line in own.stdout.splitlines()]
    exports = [e for e in audited if e["operation_name"] == "audit export"]
    assert exports[-1]["report"]["format"] == "jsonl" and exports[-1]["purpose"] == "IG_AUDIT"
    assert any(
        e["report"].get("since") == datetime.fromisoformat(later).isoformat() for e in exports
    )


def names(event: dict[str, Any]) -> set[str]:
    return {s["subject_id"] for s in event["subject_entries"]}


def test_a_subject_access_export_holds_only_events_about_the_person_and_names_them(
    hub: Hub, since: str
) -> None:
    """For a parent's subject access request: `--subject` exports every event about the
    child (and nothing else); the export's own event names the child as its subject."""
    child_id = find_ava(hub)
    everything = export(hub, "--format", "jsonl", "--since", since)
    about = export(hub, "--format", "jsonl", "--since", since, "--subject", child_id)
    assert about.exit_code == 0, about.output
    every = [json.loads(line) for line in everything.stdout.splitlines()]
    mine = [json.loads(line) for line in about.stdout.splitlines()]
    assert mine and all(child_id in names(e) for e in mine)
    assert {e["event_id"] for e in every if child_id in names(e)} <= {e["event_id"] for e in mine}
    assert any(child_id not in names(e) for e in every), "the unfiltered export holds others"
    own = mine[-1]  # the export's own event, written before it ran
    assert own["operation_name"] == "audit export"
    report = own["report"]
    assert (report["name"], report["subject_id"], report["format"]) == ("export", child_id, "jsonl")
    assert {"subject_id": child_id, "relationship": "report_subject"} in own["subject_entries"]

    worker = "demo-mash_social_worker"
    by_worker = export(hub, "--format", "jsonl", "--since", since, "--actor", worker)
    users = {json.loads(line)["actor_subject"] for line in by_worker.stdout.splitlines()}
    assert users == {worker}


def test_bad_arguments_are_refused_before_anything_is_written(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    for args in (
        ["--format", "xml"],
        ["--since", "last tuesday"],
        ["--since", "2026-02-01", "--until", "2026-01-01"],
        ["--subject", "Ava Thompson"],
    ):
        result = export(hub, *args, "--out", str(out))
        assert result.exit_code == 2, result.output
        assert not out.exists()


def test_no_export_when_its_own_audit_event_cannot_be_written(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"  # no tables: the export's event cannot be committed
    out = tmp_path / "audit.jsonl"
    env = {"MASH_DATABASE_URL": f"sqlite:///{empty}", "MASH_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["audit", "export", "--out", str(out)], env=env)
    assert result.exit_code == 1 and "nothing exported" in result.output
    assert not out.exists() and not (tmp_path / "audit.jsonl.partial").exists()
