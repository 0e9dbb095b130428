"""Canonical bytes of audit events and the hash chain over them (shared by the sequencer,
which builds the chain, and `audit verify`, which rebuilds it).

An event's content hash is SHA-256 over RFC 8785 (JCS) bytes of every column of its row
(read generically from the database, so columns added by later migrations are covered) and
of its subject entries. Each chain entry binds seq, event id, time, retention class and
content hash; the chain is `H(previous chain hash || entry hash)` from a genesis derived from
the log's id.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import rfc8785
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import AuditChain

MAX_SAFE_INT = 2**53 - 1
# Columns added after events were first chained, left out of an event's content while null:
# an event written before its column existed hashes as it did then, and setting the value
# later (or removing a set one) still changes the hash.
OPTIONAL_COLUMNS = ("trace_id", "client_system", "actor_kind")  # 0009, 0010


def _plain(value: Any) -> Any:
    """A database value as JSON data, the same on every read of the same row."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite keeps no offset; the writer stores UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def _json_is_jcs(value: Any) -> bool:
    """True when `json.dumps(sort_keys, compact, ensure_ascii=False)` gives exactly the
    RFC 8785 bytes: no floats (JCS formats numbers as ECMAScript does), integers within
    the safe range, and keys whose code-point order equals UTF-16 order (below U+D800).
    Strings are escaped alike by both."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is str or kind is bool or v is None:
            continue
        if kind is int:
            if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                return False
        elif kind is list:
            stack.extend(v)
        elif kind is dict:
            for k in v:
                if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                    return False
            stack.extend(v.values())
        else:
            return False
    return True


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of `value`; the `rfc8785` library unless the fast path is exact."""
    if _json_is_jcs(value):
        try:
            return _dumps(value).encode()
        except UnicodeEncodeError:  # a lone surrogate: let the library refuse it
            pass
    return rfc8785.dumps(value)


def event_class(row: Mapping[str, Any]) -> str:
    """The retention class: `<operation type>.<outcome>`, e.g. `query.ok`, `-.invalid`."""
    return f"{row.get('operation_type') or '-'}.{row.get('outcome') or '-'}"


@dataclass(frozen=True)
class RowShape:
    """What a table's column types say about its values: which need converting to JSON
    data (times, decimals, bytes, unknown types) and which may hold something the fast
    canonical path must look into (JSON documents, numbers, unknown types). Text, booleans
    and converted values are always safe."""

    convert: frozenset[str]
    check: frozenset[str]

    @classmethod
    def of(cls, table: Table) -> RowShape | None:
        if not all(c.name.isascii() for c in table.c):
            return None  # key order would need the general path
        convert, check = set(), set()
        for column in table.c:
            kind = column.type
            if isinstance(kind, String | Boolean):
                continue
            if isinstance(kind, DateTime | Date):
                convert.add(column.name)
            elif isinstance(kind, Integer | JSON):
                check.add(column.name)
            else:
                convert.add(column.name)
                check.add(column.name)
        return cls(frozenset(convert), frozenset(check))

    def plain(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for name in self.convert:
            out[name] = _plain(out[name])
        return out

    def safe(self, row: Mapping[str, Any]) -> bool:
        return all(_json_is_jcs(row[name]) for name in self.check if name in row)


def content_hash(
    row: Mapping[str, Any],
    subjects: Sequence[Mapping[str, Any]],
    shapes: tuple[RowShape, RowShape] | None = None,
) -> str:
    """SHA-256 of the RFC 8785 bytes of {"event": row, "subjects": [entries]}. With the
    tables' shapes the same bytes come faster (only the columns that need it are looked at)."""
    if shapes is None:
        event = {k: _plain(v) for k, v in row.items()}
        subs = [{k: _plain(v) for k, v in s.items() if k != "event_seq"} for s in subjects]
        fast = False
    else:
        event = shapes[0].plain(row)
        subs = [shapes[1].plain(s) for s in subjects]
        for s in subs:
            del s["event_seq"]
        fast = shapes[0].safe(event) and all(shapes[1].safe(s) for s in subs)
    return _hash_doc(_without_unset(event), subs, fast)


def _without_unset(event: dict[str, Any]) -> dict[str, Any]:
    """The event's content without the OPTIONAL_COLUMNS it holds no value in."""
    for name in OPTIONAL_COLUMNS:
        if name in event and event[name] is None:
            del event[name]
    return event


def _hash_doc(event: dict[str, Any], subs: list[dict[str, Any]], fast: bool) -> str:
    """SHA-256 of the canonical bytes of an event and its subject entries, already plain
    JSON data; `fast`: the plain encoder is known to give the RFC 8785 bytes."""
    doc = {
        "event": event,
        "subjects": sorted(subs, key=lambda s: sorted((k, str(v)) for k, v in s.items())),
    }
    data = None
    if fast:
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: the library refuses
            data = _dumps(doc).encode()
    if data is None:
        try:
            data = canonical(doc)
        except (rfc8785.CanonicalizationError, UnicodeEncodeError):
            data = _outside_jcs(doc)
    return hashlib.sha256(data).hexdigest()


def _outside_jcs(doc: Any) -> bytes:
    """Bytes for a row RFC 8785 cannot express (an integer past 2**53, NaN, a lone
    surrogate): the hub never writes one, but a tampered row must still hash, to a value
    of its own, rather than stop the sequencer or `audit verify`. Tagged so that it can
    never equal JCS bytes (which are UTF-8 and never begin with a NUL)."""
    return b"\x00outside-jcs:" + json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    ).encode("ascii")


@dataclass(frozen=True)
class Entry:
    """One chain entry, as stored in `audit_chain`."""

    seq: int
    event_id: str
    occurred_at: str
    event_class: str
    content_hash: str
    chain_hash: str = ""

    def digest(self) -> bytes:
        # Text and a seq only: plain compact JSON is already the RFC 8785 form.
        fields = [self.seq, self.event_id, self.occurred_at, self.event_class, self.content_hash]
        return hashlib.sha256(_dumps(fields).encode()).digest()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic collector off for a CPU-bound batch (it would scan every new object many
    times over); back on, as it was, afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def genesis(log_id: str) -> bytes:
    return hashlib.sha256(f"mash-hub audit log {log_id}".encode()).digest()


def link(previous: bytes, entry_digest: bytes) -> bytes:
    return hashlib.sha256(previous + entry_digest).digest()


def entry_for(
    row: Mapping[str, Any],
    subjects: Sequence[Mapping[str, Any]],
    shapes: tuple[RowShape, RowShape] | None = None,
) -> Entry:
    return Entry(
        seq=int(row["seq"]),
        event_id=str(row["event_id"]),
        occurred_at=str(_plain(row["occurred_at"])),
        event_class=event_class(row),
        content_hash=content_hash(row, subjects, shapes),
    )


class AuditTables:
    """The audit tables as the database has them now (reflected, so every column counts)."""

    def __init__(self, events: Table, subjects: Table) -> None:
        self.events, self.subjects = events, subjects
        event_shape, subject_shape = RowShape.of(events), RowShape.of(subjects)
        self.shapes = (event_shape, subject_shape) if event_shape and subject_shape else None
        self._json_rows: _JsonRows | None = None

    def entry(self, row: Mapping[str, Any], subjects: Sequence[Mapping[str, Any]]) -> Entry:
        return entry_for(row, subjects, self.shapes)

    @classmethod
    async def reflect(cls, conn: AsyncConnection) -> AuditTables:
        def load(sync_conn: Any) -> AuditTables:
            meta = MetaData()
            return cls(
                Table("audit_events", meta, autoload_with=sync_conn),
                Table("audit_subjects", meta, autoload_with=sync_conn),
            )

        return await conn.run_sync(load)

    async def events_between(
        self, conn: AsyncConnection, after: int, upto: int | None, limit: int | None
    ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Events with after < seq <= upto (oldest first, at most `limit`), each with its
        subject entries."""
        seq = self.events.c.seq
        query = select(self.events).where(seq > after).order_by(seq)
        if limit is not None:
            query = query.limit(limit)
        if upto is not None:
            query = query.where(seq <= upto)
        rows = [dict(r._mapping) for r in await conn.execute(query)]
        if not rows:
            return []
        event_seq = self.subjects.c.event_seq
        subjects: dict[int, list[dict[str, Any]]] = {}
        for s in await conn.execute(
            select(self.subjects).where(event_seq > after, event_seq <= rows[-1]["seq"])
        ):
            subjects.setdefault(s.event_seq, []).append(dict(s._mapping))
        return [(r, subjects.get(r["seq"], [])) for r in rows]

    async def entries_between(
        self, conn: AsyncConnection, after: int, upto: int | None, limit: int | None
    ) -> list[Entry]:
        """The chain entries rebuilt from the events with after < seq <= upto (oldest first,
        at most `limit`): exactly `entry(row, subjects)` over `events_between`, read faster
        on PostgreSQL (see `_JsonRows`)."""
        if conn.dialect.name == "postgresql" and self.shapes is not None:
            reader = self._json_rows or _JsonRows.of(self.events, self.shapes[0])
            if reader is not None:
                self._json_rows = reader
                return await reader.entries(conn, self, after, upto, limit)
        return [self.entry(r, s) for r, s in await self.events_between(conn, after, upto, limit)]

    async def subject_entries(
        self, conn: AsyncConnection, after: int, upto: int
    ) -> dict[int, list[dict[str, Any]]]:
        """Plain subject entries (without their event_seq) of the events after < seq <= upto,
        by event seq."""
        event_seq = self.subjects.c.event_seq
        names = [c.name for c in self.subjects.c]
        shape = self.shapes[1] if self.shapes else None
        out: dict[int, list[dict[str, Any]]] = {}
        result = await conn.execute(
            select(self.subjects).where(event_seq > after, event_seq <= upto)
        )
        for values in result:
            s = dict(zip(names, values, strict=True))
            out.setdefault(s.pop("event_seq"), []).append(shape.plain(s) if shape else s)
        return out


class _JsonRows:
    """Reads event rows on PostgreSQL as one JSON array per row (`json_build_array` of every
    column that needs no converting; times and other converted types come natively), so a
    row costs one `json.loads` instead of a driver decode per JSON column. The values are the
    ones the generic read gives: JSON columns embed their stored text, text and numbers are
    JSON-encoded by the server and decode to the same Python values."""

    MAX_ARGS = 100  # PostgreSQL's limit on a function's arguments

    def __init__(
        self, events: Table, native: list[str], packed: list[str], native_checked: list[str]
    ) -> None:
        self.events, self.native, self.packed = events, native, packed
        # Converted columns whose plain values may still be unsafe (e.g. floats).
        self.native_checked = native_checked
        packed_row = cast(func.json_build_array(*(events.c[n] for n in packed)), Text)
        self.query_columns = [events.c.seq, *(events.c[n] for n in native), packed_row]

    @classmethod
    def of(cls, events: Table, shape: RowShape) -> _JsonRows | None:
        native = [c.name for c in events.c if c.name in shape.convert]
        packed = [c.name for c in events.c if c.name not in shape.convert]
        if not packed or len(packed) > cls.MAX_ARGS:
            return None
        return cls(events, native, packed, [n for n in native if n in shape.check])

    async def entries(
        self,
        conn: AsyncConnection,
        tables: AuditTables,
        after: int,
        upto: int | None,
        limit: int | None,
    ) -> list[Entry]:
        seq = self.events.c.seq
        query = select(*self.query_columns).where(seq > after).order_by(seq)
        if upto is not None:
            query = query.where(seq <= upto)
        if limit is not None:
            query = query.limit(limit)
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        subjects = await tables.subject_entries(conn, after, rows[-1][0])
        subject_shape = tables.shapes[1] if tables.shapes else None
        # Subject columns the fast path must look into (usually none: ids and text).
        subject_checked = subject_shape is not None and bool(subject_shape.check - {"event_seq"})
        n = len(self.native) + 1
        decode, packed, native = _DECODER.decode, self.packed, self.native
        out = []
        with paused_gc():  # tens of thousands of small acyclic objects: nothing to collect
            for values in rows:
                text = values[n]
                _NUMBERS.unsafe = False
                row = dict(zip(packed, decode(text), strict=True))
                # ASCII with no escapes: every key is below U+D800, so only numbers can differ.
                if _NUMBERS.unsafe or not text.isascii() or "\\u" in text:
                    safe = _json_is_jcs(row)
                else:
                    safe = True
                for name, value in zip(native, values[1:n], strict=True):
                    row[name] = _plain(value)
                if safe and self.native_checked:
                    safe = all(_json_is_jcs(row[name]) for name in self.native_checked)
                subs = subjects.get(values[0], [])
                if safe and subject_checked:
                    safe = all(subject_shape.safe(s) for s in subs)  # type: ignore[union-attr]
                out.append(
                    Entry(
                        seq=int(row["seq"]),
                        event_id=str(row["event_id"]),
                        occurred_at=str(row["occurred_at"]),
                        event_class=event_class(row),
                        content_hash=_hash_doc(_without_unset(row), subs, safe),
                    )
                )
        return out


class _NumberWatch:
    """Set when the decoder meets a float or an integer of 16 digits or more: JCS formats
    numbers as ECMAScript does, so such a row takes the exact check. Read right after each
    synchronous decode."""

    unsafe = False

    def parse_float(self, literal: str) -> float:
        self.unsafe = True
        return float(literal)

    def parse_int(self, literal: str) -> int:
        if len(literal) > 15:
            self.unsafe = True
        return int(literal)


_NUMBERS = _NumberWatch()
_DECODER = json.JSONDecoder(parse_float=_NUMBERS.parse_float, parse_int=_NUMBERS.parse_int)


async def chain_entries(
    conn: AsyncConnection, after: int, batch: int = 20_000
) -> AsyncIterator[list[Entry]]:
    """Stored chain entries with seq > after, oldest first, in batches."""
    while True:
        rows = (
            await conn.execute(
                select(
                    AuditChain.seq,
                    AuditChain.event_id,
                    AuditChain.occurred_at,
                    AuditChain.event_class,
                    AuditChain.content_hash,
                    AuditChain.chain_hash,
                )
                .where(AuditChain.seq > after)
                .order_by(AuditChain.seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            return
        yield [Entry(*r) for r in rows]
        after = rows[-1][0]
