"""The audit writer: one event per GraphQL operation, committed before the response leaves.

An event holds identifiers, purposes, field paths and outcomes — never returned values,
names, search criteria or tokens. If the event cannot be committed the caller must send an
error and no data (`AuditUnavailable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphql import (
    DocumentNode,
    FloatValueNode,
    GraphQLError,
    IntValueNode,
    StringValueNode,
    Visitor,
    print_ast,
    visit,
)
from prometheus_client import Counter, Gauge
from sqlalchemy import JSON, ColumnDefault, Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from adapters.sql import PlainStatement

from ..auth.tokens import Actor
from ..errors import CLIENT_CODES
from ..store.base import RowValue
from ..store.cursors import SeqCursor
from ..store.engine import Store
from ..telemetry.metrics import GAUGE_MODE
from .models import AUDIT_EVENTS, AUDIT_SUBJECTS, AuditEvent, AuditSubject

# The writers' shared advisory lock key (hub.audit.sequencer takes it exclusively).
WRITE_LOCK = 0x6D617368_0002

OUTCOMES = ("ok", "partial", "redacted", "denied", "error", "invalid", "unauthenticated")

# Every refusal to commit is a response withheld (fail closed): operators alert on any.
WRITE_FAILURES = Counter(
    "mash_hub_audit_write_failures_total", "Audit events the store did not commit"
)
# The highest seq this process has committed. The sequencer's own gauge
# (`mash_hub_audit_sequenced_seq`) says how far the chain has caught up: written ahead of
# chained for long means the sequencer is behind, measured by the writers, not by the
# sequencer itself (a stuck sequencer cannot report that it is stuck).
WRITTEN_SEQ = Gauge(
    "mash_hub_audit_written_seq",
    "Highest audit seq this process committed",
    multiprocess_mode=GAUGE_MODE,
)


class AuditUnavailable(Exception):
    """The audit event could not be committed: no data may leave."""


class StagedWriteRefused(Exception):
    """A write staged with the event was refused with an error the client is meant to see
    (e.g. CONFLICT: the contact changed since the request checked it). Nothing the
    operation staged was committed; its event was, without them, as an error with the
    refusal's code, and `event_id` names it."""

    def __init__(self, error: GraphQLError, event_id: str) -> None:
        super().__init__(error.message)
        self.error, self.event_id = error, event_id

    @property
    def code(self) -> str:
        return str((self.error.extensions or {}).get("code"))


def query_hash(document: DocumentNode | None, raw: str) -> str:
    """SHA-256 of the normalised query: the printed AST with every string and number literal
    blanked (a document may carry a child's name, date of birth or NHS number inline, and
    a hash over them could be reversed by trying every NHS number); the raw text, literals
    blanked the same way, if it did not parse. Variables never reach the hash."""
    if document is not None:
        text = print_ast(visit(document, _BlankLiterals()))
    else:
        text = _NUMBER.sub("0", _STRING.sub('""', raw))
    return hashlib.sha256(text.encode()).hexdigest()


_STRING = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"?')
_NUMBER = re.compile(r"(?<![\w$])-?\d[\d.eE+-]*")


class _BlankLiterals(Visitor):
    """Every string and number literal replaced by an empty one (enum values stay: they are
    the schema's own words)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> StringValueNode:
        return StringValueNode(value="", block=False)

    def enter_int_value(self, node: IntValueNode, *_: Any) -> IntValueNode:
        return IntValueNode(value="0")

    def enter_float_value(self, node: FloatValueNode, *_: Any) -> FloatValueNode:
        return FloatValueNode(value="0")


@dataclass(frozen=True)
class AuditRecord:
    """What one operation did: the audit event as the writer stores it. Made in one place,
    `AuditNotes.build` (tests may make one directly); frozen, so nothing changes it after."""

    actor: Actor | None
    operation_type: str | None = None
    operation_name: str | None = None
    query_hash: str | None = None
    purpose: str | None = None
    contact_id: str | None = None
    outcome: str = "ok"
    error_code: str | None = None
    subjects: Mapping[str, str] = field(default_factory=dict)  # subject id -> relationship
    sources: Mapping[str, str] = field(default_factory=dict)  # source -> status
    fields_returned: Sequence[str] = ()
    fields_redacted: Mapping[str, str] = field(default_factory=dict)  # path -> reason
    policy_version: str | None = None
    contact_stage: str | None = None
    justification: str | None = None  # free text the actor gave (break-glass, override)
    break_glass: Mapping[str, Any] | None = None  # grant id, reason code, expiry
    consent_override: Mapping[str, Any] | None = None  # override id, authoriser, reason code
    # (kind, agency, handling code, released, reason) -> hidden fields and count
    decisions: Mapping[tuple[str, str, str | None, bool, str | None], PolicyDecision] = field(
        default_factory=dict
    )
    root_fields: Sequence[str] = ()
    # Rule 14 (DPA 2018 s62): the policy said this operation's consultation is s62-logged.
    police_consulted: bool = False
    report: Mapping[str, Any] | None = None  # an IG report read: name and parameters (ids)
    trace_id: str | None = None  # the request's OpenTelemetry trace (hub.telemetry.tracing)
    # Writes an operation makes (e.g. an analyst's decision) run in the audit event's own
    # transaction: both commit, or neither does and the client gets an error.
    staged: Sequence[Callable[[AsyncSession], Awaitable[None]]] = ()

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


class AuditNotes:
    """What one operation did, as it happens: the runner (hub.serving.operation, the IG and MASH
    pages) notes who asked and what was asked; the services note facts as statements (a
    subject read, what each source said, a policy decision and the redactions it caused, the
    contact's stage, a justification given); `build` makes the operation's `AuditRecord` from
    them. No module but this one makes or changes a record: services state what they did
    and never read the event back (the purpose and contact they work for are theirs, on the
    request context)."""

    def __init__(self, actor: Actor | None = None, trace_id: str | None = None) -> None:
        self.actor = actor
        self._trace_id = trace_id
        self._operation: dict[str, Any] = {}
        self._outcome: tuple[str, str | None] = ("ok", None)
        self._returned: list[str] = []
        self._purpose: tuple[str | None, str | None] = (None, None)
        self._subjects: dict[str, str] = {}
        self._sources: dict[str, str] = {}
        self._redacted: dict[str, str] = {}
        self._decisions: dict[tuple[str, str, str | None, bool, str | None], PolicyDecision] = {}
        self._policy_version: str | None = None
        self._stage: str | None = None
        self._justification: str | None = None
        self._break_glass: dict[str, Any] | None = None
        self._consent_override: dict[str, Any] | None = None
        self._police_consulted = False
        self._report: dict[str, Any] | None = None
        self._staged: list[Callable[[AsyncSession], Awaitable[None]]] = []

    # --- the runner: who asked, what, and how it ended -------------------------------------
    def operation(
        self,
        kind: str | None,
        name: str | None = None,
        query_hash: str | None = None,
        root_fields: Iterable[str] = (),
    ) -> None:
        """The operation asked: its type ("query", "ig_page", ...), name, normalised-query
        hash and root fields (only what is given replaces what was noted)."""
        given = {"operation_type": kind, "operation_name": name, "query_hash": query_hash}
        self._operation |= {k: v for k, v in given.items() if v is not None}
        if root_fields:
            self._operation["root_fields"] = sorted(set(root_fields))

    def query_hash(self, digest: str | None) -> None:
        if digest is not None:
            self._operation["query_hash"] = digest

    def outcome(self, outcome: str, code: str | None = None) -> None:
        self._outcome = (outcome, code)

    def returned(self, paths: Iterable[str]) -> None:
        """The field paths the response carried."""
        self._returned = sorted(set(paths))

    @property
    def ended(self) -> tuple[str, str | None]:
        """The outcome and error code noted so far."""
        return self._outcome

    @property
    def sources_said(self) -> Mapping[str, str]:
        return dict(self._sources)

    @property
    def anything_redacted(self) -> bool:
        return bool(self._redacted)

    # --- the services: what the operation did -----------------------------------------------
    def purpose(self, purpose: str | None, contact_id: str | None) -> None:
        """Why the operation read (one purpose and contact per operation: the context
        checks that before noting it)."""
        self._purpose = (purpose, contact_id)

    def contact(self, contact_id: str) -> None:
        """The contact the operation worked on (a contact mutation names its own)."""
        self._purpose = (self._purpose[0], contact_id)

    def subject(self, subject_id: str, relationship: str, *, primary: bool = False) -> None:
        """A data subject of the operation and how it figured in it; the first note of a
        subject stands unless this one is the operation's `primary` subject (the child)."""
        if primary:
            self._subjects[subject_id] = relationship
        else:
            self._subjects.setdefault(subject_id, relationship)

    def sources(self, statuses: Mapping[str, str]) -> None:
        """What each source asked said (OK, NOT_KNOWN, UNAVAILABLE, ...)."""
        self._sources.update(statuses)

    def decision(
        self,
        kind: str,
        agency: str | None,
        released: bool,
        reason: str | None = None,
        hidden_fields: Mapping[str, str] | None = None,
        handling_code: str | None = None,
    ) -> None:
        """One policy decision on a class of record (many records share a class)."""
        key = (kind, agency or "", handling_code, released, reason)
        decision = self._decisions.setdefault(key, PolicyDecision())
        decision.count += 1
        decision.hidden_fields.update(hidden_fields or {})

    def redaction(self, path: str, reason: str) -> None:
        """A field path withheld and why (the first reason for a path stands)."""
        self._redacted.setdefault(path, reason)

    def policy_version(self, version: str) -> None:
        self._policy_version = version

    def stage(self, stage: str | None, *, unless_noted: bool = False) -> None:
        """The contact's stage when the operation ran (`unless_noted`: the policy door's
        view of it, which a contact change noted first overrides)."""
        if not (unless_noted and self._stage is not None):
            self._stage = stage

    def justification(self, text: str | None) -> None:
        """Free text the actor gave (stored as a digest, never as text)."""
        self._justification = text

    def break_glass(self, grant: Mapping[str, Any], *, unless_noted: bool = False) -> None:
        if not (unless_noted and self._break_glass is not None):
            self._break_glass = dict(grant)

    def consent_override(self, override: Mapping[str, Any]) -> None:
        self._consent_override = dict(override)

    def police_consulted(self) -> None:
        """Rule 14 (s62): the policy said this operation's consultation is logged."""
        self._police_consulted = True

    def report(self, parameters: Mapping[str, Any]) -> None:
        """An IG report read: its name and parameters (ids and dates, never names)."""
        self._report = dict(parameters)

    def staged(self, write: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """A write to commit in the audit event's own transaction."""
        self._staged.append(write)

    # --- the record ---------------------------------------------------------------------
    def build(self) -> AuditRecord:
        """The operation's audit record, from everything noted."""
        purpose, contact_id = self._purpose
        return AuditRecord(
            actor=self.actor,
            operation_type=self._operation.get("operation_type"),
            operation_name=self._operation.get("operation_name"),
            query_hash=self._operation.get("query_hash"),
            purpose=purpose,
            contact_id=contact_id,
            outcome=self._outcome[0],
            error_code=self._outcome[1],
            subjects=dict(self._subjects),
            sources=dict(self._sources),
            fields_returned=tuple(self._returned),
            fields_redacted=dict(self._redacted),
            policy_version=self._policy_version,
            contact_stage=self._stage,
            justification=self._justification,
            break_glass=self._break_glass,
            consent_override=self._consent_override,
            decisions={
                k: PolicyDecision(v.count, dict(v.hidden_fields))
                for k, v in self._decisions.items()
            },
            root_fields=tuple(self._operation.get("root_fields", ())),
            police_consulted=self._police_consulted,
            report=self._report,
            trace_id=self._trace_id,
            staged=tuple(self._staged),
        )


@dataclass
class PolicyDecision:
    count: int = 0
    hidden_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    values: dict[str, Any]
    subjects: list[dict[str, Any]]
    staged: list[Callable[[AsyncSession], Awaitable[None]]]
    done: asyncio.Future[None]


class AuditWriter:
    """Writes audit events to the hub store with group commit.

    `write` hands the event to one writer task per process and waits for its commit. The
    task takes every event waiting at that moment and inserts them in one transaction, so
    concurrent requests share a commit; any failure fails every request in that batch
    closed. An event with staged writes commits in a transaction of its own, with them.
    On PostgreSQL each transaction holds the writers' shared advisory lock while it draws
    seqs (see hub.audit.sequencer: how the sequencer knows no earlier seq is still in flight).
    """

    def __init__(self, store: Store, max_batch: int = 1000, commit_timeout_s: float = 10.0):
        self.store = store
        self.max_batch = max_batch
        self.commit_timeout_s = commit_timeout_s
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: AsyncConnection | None = None  # PostgreSQL: the writer's own connection
        self._file: sqlite3.Connection | None = None  # SQLite: the writer's own connection
        self._written = 0  # the highest seq committed by this writer

    def _committed(self, seqs: Iterable[int]) -> None:
        self._written = max([self._written, *seqs])
        WRITTEN_SEQ.set(self._written)

    async def write(self, record: AuditRecord) -> str:
        """Commit one event and its subject entries; returns the event id.

        Raises:
            AuditUnavailable: the store did not commit it.
        """
        event_id = str(uuid.uuid4())
        pending = _Pending(
            values=event_values(record, event_id),
            subjects=[{"subject_id": s, "relationship": r} for s, r in record.subjects.items()],
            staged=list(record.staged),
            done=asyncio.get_running_loop().create_future(),
        )
        self._queue_for_this_loop().put_nowait(pending)
        try:
            await pending.done
        except asyncio.CancelledError:
            raise
        except StagedWriteRefused:
            raise
        except Exception as exc:  # any store failure means: fail closed
            WRITE_FAILURES.inc()
            raise AuditUnavailable("audit event not committed") from exc
        return event_id

    def _queue_for_this_loop(self) -> asyncio.Queue[_Pending]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._task is None or self._task.done():
            self._loop, self._queue = loop, asyncio.Queue()
            # In a context of its own: created by the first request's write, it must not
            # carry that request's ids (and trace) into every later log line and span.
            self._task = loop.create_task(
                self._run(self._queue), name="audit-writer", context=contextvars.Context()
            )
        return self._queue

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(Exception):
                file.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            plain = [p for p in batch if not p.staged]
            if plain:
                await self._commit(plain)
            for p in batch:
                if p.staged:
                    await self._commit_staged(p)

    async def _commit_staged(self, p: _Pending) -> None:
        """An event with staged writes, in a transaction of its own. If a staged write is
        refused with a client error (e.g. CONFLICT), the event is committed alone, as that
        error (nothing staged, nothing returned): the attempt is audited and the client
        hears why. Any other failure fails closed."""
        loop = asyncio.get_running_loop()
        attempt = _Pending(p.values, p.subjects, p.staged, loop.create_future())
        try:
            await self._commit([attempt])
            error = attempt.done.exception()
            code = (getattr(error, "extensions", None) or {}).get("code")
            if isinstance(error, GraphQLError) and code in CLIENT_CODES:
                values = {**p.values, "outcome": "error", "error_code": code}
                retry = _Pending(
                    {**values, "fields_returned": []}, p.subjects, [], loop.create_future()
                )
                await self._commit([retry])
                failed = retry.done.exception()
                error = failed or StagedWriteRefused(error, values["event_id"])
        except BaseException:
            if not p.done.done():
                p.done.set_exception(AuditUnavailable("audit writer stopped"))
            raise
        if error is None:
            p.done.set_result(None)
        else:
            p.done.set_exception(error)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            async with asyncio.timeout(self.commit_timeout_s):
                if batch[0].staged:
                    await self._insert(batch)
                elif self.store.sqlite:
                    await self._insert_sqlite(batch)
                else:
                    await self._insert_postgres(batch)
        except asyncio.CancelledError:
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(AuditUnavailable("audit writer stopped"))
            raise
        except Exception as exc:
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            return
        for p in batch:
            if not p.done.done():
                p.done.set_result(None)

    async def _insert(self, batch: list[_Pending]) -> None:
        async with self.store.writing() as session, session.begin():
            if not self.store.sqlite:
                await session.execute(select(func.pg_advisory_xact_lock_shared(WRITE_LOCK)))
            for p in batch:
                for stage in p.staged:
                    await stage(session)
            rows = await session.execute(
                insert(AUDIT_EVENTS).returning(
                    AUDIT_EVENTS.c.seq,
                    AUDIT_EVENTS.c.event_id,
                    sort_by_parameter_order=True,
                ),
                [p.values for p in batch],
            )
            seqs = {event_id: seq for seq, event_id in rows}
            subjects = [
                {"event_seq": seqs[p.values["event_id"]], **s} for p in batch for s in p.subjects
            ]
            if subjects:
                await session.execute(insert(AUDIT_SUBJECTS), subjects)
        self._committed(seqs.values())  # only once the transaction has committed

    async def _insert_sqlite(self, batch: list[_Pending]) -> None:
        """The hot path on SQLite: the batch in one transaction on the writer's own plain
        `sqlite3` connection, in one hop to a worker thread, in this process's turn to
        write (seqs are drawn in commit order, as the sequencer's horizon needs).
        SQLAlchemy compiles the INSERTs and types the values. A store in memory (tests)
        goes through a session (`_insert`)."""
        if self._file is None:
            self._file = self.store.file_writer()
            if self._file is None:
                await self._insert(batch)
                return
        conn = self._file
        events = [_sqlite_insert(AUDIT_EVENTS, p.values) for p in batch]
        subjects = [(p.values["event_id"], s) for p in batch for s in p.subjects]
        try:
            async with self.store.write_turn():
                seqs = await asyncio.to_thread(_write_file, conn, batch, events, subjects)
        except BaseException:
            # Cancelled (the commit deadline), the thread may still be using it; in doubt
            # either way: a fresh connection next time.
            self._file = None
            raise
        self._committed(seqs)

    async def _insert_postgres(self, batch: list[_Pending]) -> None:
        """The hot path: one statement, its own transaction (one round trip), on a
        connection of the writer's own (no pool checkout, no ping). It takes the writers'
        shared lock before drawing seqs, inserts the events from arrays (`unnest`, the same
        statement whatever the batch size, so asyncpg prepares it once) and their subject
        entries, all or nothing."""
        if self._conn is None:
            self._conn = await self.store.engine.connect()
        try:
            raw = (await self._conn.get_raw_connection()).driver_connection
            assert raw is not None
            subjects = [{"event_id": p.values["event_id"], **s} for p in batch for s in p.subjects]
            rows = await raw.fetch(*_batch_insert([p.values for p in batch], subjects))
            self._committed(int(r["seq"]) for r in rows)
        except BaseException:
            await self._drop_connection()  # in doubt: a fresh connection next time
            raise


_SQLITE_DIALECT = sqlite.dialect()
_INSERTS: dict[tuple[str, tuple[str, ...]], PlainStatement] = {}


def _sqlite_insert(table: Table, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """An INSERT of `values` into `table` for plain sqlite3: the SQL (compiled once per
    set of columns) and its values, typed by the columns' bind processors (JSON, times)."""
    values = dict(values)
    for column in table.columns:  # the column defaults SQLAlchemy's execution would apply
        default = column.default
        if column.key not in values and isinstance(default, ColumnDefault):
            values[column.key] = default.arg(None) if default.is_callable else default.arg
    key = (table.name, tuple(values))
    plain = _INSERTS.get(key)
    if plain is None:
        plain = _INSERTS[key] = PlainStatement(insert(table), _SQLITE_DIALECT, list(values))
    return plain.bound(values)


def _write_file(
    conn: sqlite3.Connection,
    batch: list[_Pending],
    events: list[tuple[str, list[Any]]],
    subjects: list[tuple[str, dict[str, Any]]],
) -> list[int]:
    """One transaction: the events (their seqs drawn here), then their subject entries."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        seqs: dict[str, int] = {}
        for p, (sql, args) in zip(batch, events, strict=True):
            seq = conn.execute(sql, args).lastrowid
            assert seq is not None
            seqs[p.values["event_id"]] = seq
        for event_id, entry in subjects:
            conn.execute(*_sqlite_insert(AUDIT_SUBJECTS, {"event_seq": seqs[event_id], **entry}))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return list(seqs.values())


def _arrays(
    table: Table, rows: list[dict[str, Any]], names: list[str], first: int
) -> tuple[list[str], list[list[Any]]]:
    """`$n::type[]` placeholders and the column arrays for `unnest` (JSON goes as text)."""
    types, arrays = [], []
    for i, name in enumerate(names, first):
        column_type = table.c[name].type
        values = [row.get(name) for row in rows]
        if isinstance(column_type, JSON):
            values = [None if v is None else json.dumps(v) for v in values]
        types.append(f"${i}::{column_type.compile(dialect=_PG)}[]")
        arrays.append(values)
    return types, arrays


def _batch_insert(events: list[dict[str, Any]], subjects: list[dict[str, Any]]) -> tuple[Any, ...]:
    """One statement: the shared lock (an InitPlan, so it runs before any seq is drawn),
    the events, and their subject entries joined to the new seqs by event id."""
    names = list(events[0])
    event_types, event_arrays = _arrays(AUDIT_EVENTS, events, names, 1)
    sub_names = [c.name for c in AUDIT_SUBJECTS.c if c.name != "event_seq"]
    sub_types, sub_arrays = _arrays(AUDIT_SUBJECTS, subjects, sub_names, len(names) + 2)
    n = len(names) + 1
    sql = (
        f"WITH gate AS (SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})), "
        f"ev AS (INSERT INTO audit_events ({', '.join(names)}) "
        f"SELECT * FROM unnest({', '.join(event_types)}) WHERE (SELECT true FROM gate) "
        f"RETURNING seq, event_id), "
        f"sub AS (INSERT INTO audit_subjects (event_seq, {', '.join(sub_names)}) "
        f"SELECT ev.seq, {', '.join('s.' + c for c in sub_names)} "
        f"FROM unnest(${n}::varchar[], {', '.join(sub_types)}) "
        f"AS s(event_id, {', '.join(sub_names)}) JOIN ev USING (event_id)) "
        f"SELECT seq, event_id FROM ev"
    )
    return (sql, *event_arrays, [s["event_id"] for s in subjects], *sub_arrays)


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def justification_digest(text: str | None) -> str | None:
    """What the event keeps of a justification: its SHA-256, never the text.

    The text is free text a person typed (it may name people), so it stays with the
    break-glass grant or consent override it justifies, which the event names by id; the
    digest proves which text was given at the time.
    """
    if text is None:
        return None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def event_values(record: AuditRecord, event_id: str) -> dict[str, Any]:
    actor = record.actor
    return {
        "event_id": event_id,
        "occurred_at": datetime.now(UTC),
        "actor_subject": actor.subject if actor else None,
        "actor_issuer": actor.issuer if actor else None,
        "actor_roles": sorted(actor.roles) if actor else [],
        "actor_agency": actor.agency if actor else None,
        "actor_team": actor.team if actor else None,
        "client": actor.client if actor else None,
        "client_system": actor.partner if actor else None,
        "actor_kind": ("machine" if actor.machine else "person") if actor else None,
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
        "justification": justification_digest(record.justification),
        "break_glass": record.break_glass,
        "consent_override": record.consent_override,
        "policy_decisions": record.policy_decisions(),
        "root_fields": sorted(set(record.root_fields)),
        "police_consulted": record.police_consulted,
        "report": record.report,
        "trace_id": record.trace_id,
    }


@dataclass(frozen=True)
class LoggedEvent(RowValue):
    """An audit event as the log holds it, as the services hand it on (never the ORM
    row): the same fields as `AuditEvent`."""

    seq: int
    event_id: str
    occurred_at: datetime
    actor_subject: str | None
    actor_issuer: str | None
    actor_roles: list[Any]
    actor_agency: str | None
    actor_team: str | None
    client: str | None
    client_system: str | None
    actor_kind: str | None
    purpose: str | None
    contact_id: str | None
    operation_type: str | None
    operation_name: str | None
    query_hash: str | None
    outcome: str
    error_code: str | None
    subjects: list[Any]
    sources: dict[str, Any]
    fields_returned: list[Any]
    fields_redacted: list[Any]
    policy_version: str | None
    contact_stage: str | None
    justification: str | None
    break_glass: dict[str, Any] | None
    consent_override: dict[str, Any] | None
    policy_decisions: list[Any]
    root_fields: list[Any]
    police_consulted: bool
    report: dict[str, Any] | None
    trace_id: str | None


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[LoggedEvent]
    total_count: int
    end_cursor: str | None
    has_next_page: bool


_CURSOR = SeqCursor("audit")
encode_cursor, decode_cursor = _CURSOR.encode, _CURSOR.decode


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
        events=[LoggedEvent.of(r) for r in page],
        total_count=total,
        end_cursor=encode_cursor(page[-1].seq) if page else None,
        has_next_page=len(rows) > first,
    )
