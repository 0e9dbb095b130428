"""Audit log exports (`mash-hub audit export`): JSON lines, CSV, and FHIR R4 AuditEvent in
the IHE Basic Audit Log Patterns (BALP) shape for health partners.

An export holds what the log holds — identifiers, purposes, field paths, outcomes — and
nothing more. The FHIR query entity of a search carries the hub's root field and the hash
of the normalised query, never its criteria (they may be a child's name). Events are read
in `seq` order in batches, so a large log streams in constant memory.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..audit.models import AuditEvent, AuditSubject
from ..store.engine import Store
from .reports import SubjectEntry, subject_entries, utc

FORMATS = ("jsonl", "csv", "fhir")
BATCH = 1000
HUB = "MASH Hub"
CODES = "urn:mash-hub:"  # the hub's own code systems: purpose, role, agency, team, client

COLUMNS = (
    "seq",
    "event_id",
    "occurred_at",
    "actor_subject",
    "actor_issuer",
    "actor_roles",
    "actor_agency",
    "actor_team",
    "client",
    "client_system",
    "actor_kind",
    "purpose",
    "contact_id",
    "contact_stage",
    "justification",
    "operation_type",
    "operation_name",
    "root_fields",
    "query_hash",
    "outcome",
    "error_code",
    "subjects",
    "subject_entries",
    "sources",
    "fields_returned",
    "fields_redacted",
    "policy_decisions",
    "policy_version",
    "police_consulted",
    "break_glass",
    "consent_override",
    "report",
    "trace_id",
)


@dataclass(frozen=True)
class Exported:
    event: AuditEvent
    subjects: tuple[SubjectEntry, ...]


async def events(
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    subject_id: str | None = None,
    actor_subject: str | None = None,
) -> AsyncIterator[Exported]:
    """Every event in [since, until), oldest first, with its data-subject entries; only
    those about `subject_id` (a subject access request's file) or by `actor_subject`."""
    last = 0
    while True:
        query = select(AuditEvent).where(AuditEvent.seq > last)
        if since:
            query = query.where(AuditEvent.occurred_at >= utc(since))
        if until:
            query = query.where(AuditEvent.occurred_at < utc(until))
        if subject_id:
            about = select(AuditSubject.event_seq).where(AuditSubject.subject_id == subject_id)
            query = query.where(AuditEvent.seq.in_(about))
        if actor_subject:
            query = query.where(AuditEvent.actor_subject == actor_subject)
        async with store.sessions() as session:
            batch = list(
                (await session.execute(query.order_by(AuditEvent.seq).limit(BATCH))).scalars()
            )
        if not batch:
            return
        entries = await subject_entries(store, [e.seq for e in batch])
        for e in batch:
            yield Exported(e, entries.get(e.seq, ()))
        last = batch[-1].seq


def as_dict(item: Exported) -> dict[str, Any]:
    """One event as plain JSON values, in COLUMNS order."""
    e = item.event
    values = {c: getattr(e, c) for c in COLUMNS if c != "subject_entries"}
    values["occurred_at"] = (utc(e.occurred_at) or e.occurred_at).isoformat()
    values["subject_entries"] = [
        {"subject_id": s.subject_id, "relationship": s.relationship} for s in item.subjects
    ]
    return {c: values[c] for c in COLUMNS}


def jsonl_line(item: Exported) -> str:
    return json.dumps(as_dict(item), separators=(",", ":"), sort_keys=False) + "\n"


def csv_header() -> str:
    return _csv_row(COLUMNS)


def csv_line(item: Exported) -> str:
    row = as_dict(item)
    return _csv_row(_cell(row[c]) for c in COLUMNS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    # A cell a spreadsheet would run as a formula (free text such as a justification).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_row(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(cells))
    return buffer.getvalue()


# --- FHIR R4 AuditEvent, IHE BALP ---------------------------------------------------------

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
ENTITY_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
USER_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
# FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure.
OUTCOME = {"ok": "0", "redacted": "0", "partial": "4", "denied": "4", "invalid": "4"}
OUTCOME |= {"unauthenticated": "4", "error": "8"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code} | ({"display": display} if display else {})


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [_coding(system, code)]}


def pattern(e: AuditEvent, subjects: Sequence[SubjectEntry]) -> str | None:
    """PatientRead for a child's record, PatientQuery for a search; None otherwise."""
    relationships = {s.relationship for s in subjects}
    if "searchChildren" in e.root_fields:
        return "PatientQuery"
    if "child" in relationships and ({"child", "_entities"} & set(e.root_fields)):
        return "PatientRead"
    return None


def fhir_audit_event(item: Exported) -> dict[str, Any]:
    """The event as a FHIR R4 AuditEvent (JSON), BALP-shaped for reads and searches."""
    e, subjects = item.event, item.subjects
    kind = pattern(e, subjects)
    outcome = OUTCOME.get(e.outcome, "8")
    purpose = [_concept(CODES + "purpose-of-use", e.purpose)] if e.purpose else []
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": e.event_id,
        "type": _coding(EVENT_TYPE, "rest", "Restful Operation"),
        "action": {"PatientRead": "R", "PatientQuery": "E"}.get(kind or "", "E"),
        "recorded": (utc(e.occurred_at) or e.occurred_at).isoformat(),
        "outcome": outcome,
        "outcomeDesc": e.outcome + (f" ({e.error_code})" if e.error_code else ""),
        "agent": _agents(e, purpose),
        "source": {
            "observer": {"display": HUB},
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": _entities(e, subjects, kind),
    }
    if kind:
        subtype = "read" if kind == "PatientRead" else "search-type"
        resource["subtype"] = [_coding(INTERACTION, subtype, subtype)]
        if outcome == "0":  # the BALP profiles describe successful operations
            resource["meta"] = {"profile": [BALP + kind]}
    if purpose:
        resource["purposeOfEvent"] = purpose
    return resource


def _agents(e: AuditEvent, purpose: list[dict[str, Any]]) -> list[dict[str, Any]]:
    roles = [_concept(CODES + "role", r) for r in e.actor_roles]
    roles += [_concept(CODES + "agency", e.actor_agency)] if e.actor_agency else []
    roles += [_concept(CODES + "team", e.actor_team)] if e.actor_team else []
    user: dict[str, Any] = {
        "type": _concept(USER_TYPE, "humanuser"),
        "requestor": True,
        "who": {"identifier": {"system": e.actor_issuer or CODES + "unauthenticated"}},
    }
    if e.actor_subject:
        user["who"]["identifier"]["value"] = e.actor_subject
    else:
        user["who"] = {"display": "unauthenticated caller"}
    if roles:
        user["role"] = roles
    if purpose:
        user["purposeOfUse"] = purpose
    client = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "requestor": False,
        "who": {
            "identifier": {"system": CODES + "client", "value": e.client},
            **({"display": e.client_system} if e.client_system else {}),
        }
        if e.client
        else {"display": "GraphQL client"},
    }
    server = {
        "type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
        "requestor": False,
        "who": {"display": HUB},
    }
    return [user, client, server]


def _entities(
    e: AuditEvent, subjects: Sequence[SubjectEntry], kind: str | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    named = {"query-hash": e.query_hash, "policy-version": e.policy_version}
    details = [{"type": k, "valueString": v} for k, v in named.items() if v]
    if e.sources:
        details.append({"type": "sources", "valueString": json.dumps(e.sources)})
    if e.police_consulted:
        details.append({"type": "dpa2018-s62-police-consulted", "valueString": "true"})
    if kind == "PatientQuery":
        query = f"{' '.join(e.root_fields)} sha256:{e.query_hash or ''}"
        out.append(
            {
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(ENTITY_ROLE, "24", "Query"),
                "query": base64.b64encode(query.encode()).decode(),
                "detail": details,
            }
        )
    else:
        data: dict[str, Any] = {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(ENTITY_ROLE, "4", "Domain Resource"),
            "what": {"identifier": {"system": CODES + "operation", "value": e.event_id}},
        }
        if details:
            data["detail"] = details
        out.append(data)
    for s in subjects:
        out.append(
            {
                "what": {"reference": f"Patient/{s.subject_id}"},
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(ENTITY_ROLE, "1", "Patient"),
                "description": s.relationship,
            }
        )
    return out


def fhir_line(item: Exported) -> str:
    """One AuditEvent per line (NDJSON, as FHIR bulk data exports are)."""
    return json.dumps(fhir_audit_event(item), separators=(",", ":")) + "\n"


LINES = {"jsonl": jsonl_line, "csv": csv_line, "fhir": fhir_line}


async def write(
    store: Store,
    fmt: str,
    out: io.TextIOBase | Any,
    since: datetime | None = None,
    until: datetime | None = None,
    subject_id: str | None = None,
    actor_subject: str | None = None,
) -> int:
    """Write every event in the window (about the subject, by the actor, when given) to
    `out` in `fmt`; returns how many."""
    line = LINES[fmt]
    if fmt == "csv":
        out.write(csv_header())
    count = 0
    async for item in events(store, since, until, subject_id, actor_subject):
        out.write(line(item))
        count += 1
    return count
