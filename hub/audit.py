"""The audit writer: one event per GraphQL operation, committed before the response leaves.

An event holds identifiers, purposes, field paths and outcomes — never returned values,
names, search criteria or tokens. If the event cannot be committed the caller must send an
error and no data (`AuditUnavailable`).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import DocumentNode, print_ast
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .auth import Actor
from .store import AuditEvent, AuditSubject, Store

AuditEventRow = AuditEvent

OUTCOMES = ("ok", "partial", "redacted", "denied", "error", "invalid", "unauthenticated")
# A police source that answered (even "not known", even with its detail withheld) was
# consulted: DPA 2018 s62 logs the consultation, not only what was shown.
POLICE_CONSULTED = frozenset({"OK", "NOT_KNOWN", "REDACTED"})


class AuditUnavailable(Exception):
    """The audit event could not be committed: no data may leave."""


def query_hash(document: DocumentNode | None, raw: str) -> str:
    """SHA-256 of the normalised query (printed AST), or of the raw text if it did not parse."""
    text = print_ast(document) if document is not None else raw
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class AuditRecord:
    """What one operation did, gathered while it ran."""

    actor: Actor | None
    operation_type: str | None = None
    operation_name: str | None = None
    query_hash: str | None = None
    purpose: str | None = None
    contact_id: str | None = None
    outcome: str = "ok"
    error_code: str | None = None
    subjects: dict[str, str] = field(default_factory=dict)  # subject id -> relationship
    sources: dict[str, str] = field(default_factory=dict)  # source -> status
    fields_returned: list[str] = field(default_factory=list)
    fields_redacted: dict[str, str] = field(default_factory=dict)  # path -> reason
    policy_version: str | None = None
    # Set by the contact workflow and the policies (issue 5), persisted by the writer:
    contact_stage: str | None = None
    justification: str | None = None  # free text the actor gave (break-glass, override)
    break_glass: dict[str, Any] | None = None  # grant id, reason code, expiry
    consent_override: dict[str, Any] | None = None  # override id, authoriser, reason code
    # (kind, agency, handling code, released, reason) -> hidden fields and count
    decisions: dict[tuple[str, str, str | None, bool, str | None], PolicyDecision] = field(
        default_factory=dict
    )
    root_fields: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None  # an IG report read: name and parameters (ids only)
    # Writes an operation makes (e.g. an analyst's decision) run in the audit event's own
    # transaction: both commit, or neither does and the client gets an error.
    staged: list[Callable[[AsyncSession], Awaitable[None]]] = field(default_factory=list)

    def add_redaction(self, path: str, reason: str) -> None:
        self.fields_redacted.setdefault(path, reason)

    def add_decision(
        self,
        kind: str,
        agency: str | None,
        released: bool,
        reason: str | None = None,
        hidden_fields: Mapping[str, str] | None = None,
        handling_code: str | None = None,
    ) -> None:
        """Note one policy decision on a class of record (many records share a class)."""
        key = (kind, agency or "", handling_code, released, reason)
        decision = self.decisions.setdefault(key, PolicyDecision())
        decision.count += 1
        decision.hidden_fields.update(hidden_fields or {})

    @property
    def police_consulted(self) -> bool:
        """The operation consulted police-originated data (the s62 extract lists it)."""
        return self.sources.get("POLICE") in POLICE_CONSULTED or any(
            agency == "police" for _, agency, *_ in self.decisions
        )

    def policy_decisions(self) -> list[dict[str, Any]]:
        """The decisions as stored: one entry per class and outcome, in a stable order."""
        return [
            {
                "class": kind,
                "agency": agency or None,
                "handling_code": code,
                "decision": "RELEASED" if released else "WITHHELD",
                "reason": reason,
                "hidden_fields": dict(sorted(d.hidden_fields.items())),
                "count": d.count,
            }
            for (kind, agency, code, released, reason), d in sorted(
                self.decisions.items(), key=lambda kv: repr(kv[0])
            )
        ]


@dataclass
class PolicyDecision:
    count: int = 0
    hidden_fields: dict[str, str] = field(default_factory=dict)


class AuditWriter:
    """Writes audit events to the hub store, each in its own committed transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def write(self, record: AuditRecord) -> str:
        """Commit one event and its subject entries; returns the event id.

        Raises:
            AuditUnavailable: the store did not commit it.
        """
        event_id = str(uuid.uuid4())
        actor = record.actor
        values: dict[str, Any] = {
            "event_id": event_id,
            "occurred_at": datetime.now(UTC),
            "actor_subject": actor.subject if actor else None,
            "actor_issuer": actor.issuer if actor else None,
            "actor_roles": sorted(actor.roles) if actor else [],
            "actor_agency": actor.agency if actor else None,
            "actor_team": actor.team if actor else None,
            "client": actor.client if actor else None,
            "purpose": record.purpose,
            "contact_id": record.contact_id,
            "operation_type": record.operation_type,
            "operation_name": record.operation_name,
            "query_hash": record.query_hash,
            "outcome": record.outcome,
            "error_code": record.error_code,
            "subjects": sorted(record.subjects),
            "sources": dict(sorted(record.sources.items())),
            "fields_returned": sorted(set(record.fields_returned)),
            "fields_redacted": [
                {"path": p, "reason": r} for p, r in sorted(record.fields_redacted.items())
            ],
            "policy_version": record.policy_version,
            "contact_stage": record.contact_stage,
            "justification": record.justification,
            "break_glass": record.break_glass,
            "consent_override": record.consent_override,
            "policy_decisions": record.policy_decisions(),
            "root_fields": sorted(set(record.root_fields)),
            "police_consulted": record.police_consulted,
            "report": record.report,
        }
        try:
            async with self.store.writing() as session, session.begin():
                for stage in record.staged:
                    await stage(session)
                seq = (
                    await session.execute(
                        insert(AuditEvent).values(values).returning(AuditEvent.seq)
                    )
                ).scalar_one()
                if record.subjects:
                    await session.execute(
                        insert(AuditSubject),
                        [
                            {"event_seq": seq, "subject_id": s, "relationship": r}
                            for s, r in record.subjects.items()
                        ],
                    )
        except Exception as exc:  # any store failure means: fail closed
            raise AuditUnavailable("audit event not committed") from exc
        return event_id


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[AuditEvent]
    total_count: int
    end_cursor: str | None
    has_next_page: bool


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "audit":
            raise ValueError
        return int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


async def read_events(
    store: Store,
    first: int,
    after: str | None = None,
    subject_id: str | None = None,
    actor_subject: str | None = None,
    outcome: str | None = None,
) -> AuditPage:
    """A page of events, oldest first, with the total matching the filters."""
    query = select(AuditEvent)
    if subject_id:
        query = query.where(
            AuditEvent.seq.in_(
                select(AuditSubject.event_seq).where(AuditSubject.subject_id == subject_id)
            )
        )
    if actor_subject:
        query = query.where(AuditEvent.actor_subject == actor_subject)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    async with store.sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        if after:
            query = query.where(AuditEvent.seq > decode_cursor(after))
        rows = list(
            (await session.execute(query.order_by(AuditEvent.seq).limit(first + 1))).scalars()
        )
    page = rows[:first]
    return AuditPage(
        events=page,
        total_count=total,
        end_cursor=encode_cursor(page[-1].seq) if page else None,
        has_next_page=len(rows) > first,
    )
