"""The audit record is built in one place (issue 12 item 3): services note what they did on
the operation's `AuditNotes`; `AuditNotes.build` is the only code that makes an
`AuditRecord`, and a record, once made, cannot be changed."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from hub.audit.events import AuditNotes, event_values

ROOT = Path(__file__).resolve().parents[2]


def constructions() -> dict[str, int]:
    """Production modules that call `AuditRecord(...)`, with how many times."""
    found: dict[str, int] = {}
    for package in ("hub", "schema", "adapters"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            calls = [
                node
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name | ast.Attribute)
                and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
                == "AuditRecord"
            ]
            if calls:
                found[str(path.relative_to(ROOT))] = len(calls)
    return found


def test_only_the_audit_module_makes_a_record() -> None:
    assert constructions() == {"hub/audit/events.py": 1}


def test_a_record_once_built_cannot_be_changed() -> None:
    record = AuditNotes().build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.outcome = "ok"  # type: ignore[misc]


def test_the_record_is_what_was_noted() -> None:
    notes = AuditNotes(trace_id="0af7651916cd43dd8448eb211c80319c")
    notes.operation("query", "Record", "ab" * 32, ["child"])
    notes.purpose("MASH_RESEARCH", "C-1")
    notes.subject("s-1", "child", primary=True)
    notes.subject("s-2", "household_member")
    notes.subject("s-2", "link_target")  # the first note of a subject stands ...
    notes.subject("s-1", "link_target")
    notes.subject("s-1", "child", primary=True)  # ... unless it is the operation's child
    notes.sources({"POLICE": "OK", "HEALTH": "TIMED_OUT"})
    notes.redaction("child.health", "CONSENT_REQUIRED")
    notes.redaction("child.health", "STAGE_RESTRICTED")  # the first reason stands
    notes.stage("RESEARCH")
    notes.stage("SCREENING", unless_noted=True)  # the policy door's view does not override
    notes.decision("police.incident", "police", True)
    notes.decision("police.incident", "police", True)
    notes.outcome("partial")
    notes.returned(["child.id", "child.id", "child.sources"])

    record = notes.build()

    assert (record.operation_type, record.operation_name, record.root_fields) == (
        "query",
        "Record",
        ("child",),
    )
    assert (record.purpose, record.contact_id, record.contact_stage) == (
        "MASH_RESEARCH",
        "C-1",
        "RESEARCH",
    )
    assert dict(record.subjects) == {"s-1": "child", "s-2": "household_member"}
    assert dict(record.fields_redacted) == {"child.health": "CONSENT_REQUIRED"}
    assert record.fields_returned == ("child.id", "child.sources")
    assert [d["count"] for d in record.policy_decisions()] == [2]
    stored = event_values(record, "e-1")
    assert stored["outcome"] == "partial" and stored["trace_id"] == record.trace_id

    # a later note changes a later build, never a record already made
    notes.decision("police.incident", "police", True)
    assert [d["count"] for d in record.policy_decisions()] == [2]
    assert [d["count"] for d in notes.build().policy_decisions()] == [3]
