"""`mash-hub audit verify`: rebuild the chain from the database and check it against the
signed checkpoint files; name the first bad event.

Caught: an edited row (its content no longer hashes to its chain entry), a deleted row (a
chain entry with no event and no signed purge covering it), reordered or renumbered rows
(the event id at a seq differs from the chain's), a row inserted below the chain head, an
altered chain table, and a superuser who rewrote rows and recomputed every later hash (the
rebuilt chain differs from a signed checkpoint: its per-event leaves name the event).
"""

from __future__ import annotations

import asyncio
import fnmatch
import multiprocessing
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..store.engine import Store
from . import chain, checkpoints
from .models import AuditEvent
from .sequencer import chain_head, log_id


@dataclass(frozen=True)
class Finding:
    seq: int | None
    event_id: str | None
    problem: str

    def __str__(self) -> str:
        where = "the checkpoint files" if self.seq is None else f"seq {self.seq}"
        who = f" (event_id {self.event_id})" if self.event_id else ""
        return f"first bad event: {where}{who}: {self.problem}"


@dataclass
class Report:
    finding: Finding | None = None
    chained: int = 0
    purged: int = 0
    checkpoints: int = 0
    signed_seq: int = 0
    unsigned_tail: int = 0
    unsequenced: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finding is None


class _Bad(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


@dataclass
class _Purge:
    pattern: str
    before: str
    upto_seq: int

    def covers(self, entry: chain.Entry) -> bool:
        return (
            entry.seq <= self.upto_seq
            and entry.occurred_at < self.before
            and fnmatch.fnmatchcase(entry.event_class, self.pattern)
        )


def _signed_records(
    path: Path, kind: str, lid: str, public: Ed25519PublicKey
) -> list[dict[str, Any]]:
    records = []
    for number, record in checkpoints.read_lines(path):
        if record is None:
            # Torn by a crash mid-write: it signs nothing, and the next line follows the
            # last whole one (continuity is checked), so it hides nothing either.
            continue
        if record.get("type") != kind:
            raise _Bad(Finding(None, None, f"{path.name} line {number} is not a {kind} record"))
        if record.get("log_id") != lid:
            raise _Bad(Finding(None, None, f"{path.name} line {number} is for another log"))
        if not checkpoints.signature_ok(record, public):
            raise _Bad(Finding(None, None, f"{path.name} line {number}: signature invalid"))
        records.append(record)
    return records


def _checkpoint_chain(records: list[dict[str, Any]], lid: str, path: Path) -> None:
    seq, head, count = 0, chain.genesis(lid).hex(), 0
    for number, cp in enumerate(records, 1):
        if (cp["prev_seq"], cp["prev_head"]) != (seq, head):
            raise _Bad(
                Finding(None, None, f"{path.name} checkpoint {number} does not follow the last")
            )
        n = len(checkpoints.runs_to_seqs(cp["seqs"]))
        if cp["count"] != count + n or len(checkpoints.split_leaves(cp["leaves"])) != n:
            raise _Bad(Finding(None, None, f"{path.name} checkpoint {number} is malformed"))
        seq, head, count = cp["last_seq"], cp["head"], cp["count"]


class _Checker:
    """Walks the stored chain once, in seq order, against the events and the checkpoints."""

    def __init__(self, lid: str, cps: list[dict[str, Any]], purges: list[_Purge]) -> None:
        self.head = chain.genesis(lid)
        self.cps, self.purges = cps, purges
        self.cp_index = 0
        self.seqs: list[int] = []
        self.digests: list[bytes] = []
        self.ids: list[str] = []
        self.report = Report(checkpoints=len(cps))

    def entry(self, e: chain.Entry, rebuilt: chain.Entry | None) -> None:
        """Check one stored chain entry against the entry rebuilt from its event row
        (None: no row at that seq)."""
        self._close_checkpoints_before(e.seq)
        if rebuilt is not None:
            if rebuilt.event_id != e.event_id:
                raise _Bad(
                    Finding(
                        e.seq,
                        rebuilt.event_id,
                        "not the event the chain holds at this seq: rows reordered or renumbered",
                    )
                )
            if rebuilt != chain.Entry(
                e.seq, e.event_id, e.occurred_at, e.event_class, e.content_hash
            ):
                raise _Bad(
                    Finding(e.seq, e.event_id, "content differs from its chain entry: row edited")
                )
        elif any(p.covers(e) for p in self.purges):
            self.report.purged += 1
        else:
            raise _Bad(
                Finding(
                    e.seq,
                    e.event_id,
                    "event missing and no signed purge covers it: row deleted",
                )
            )
        digest = e.digest()
        self.head = chain.link(self.head, digest)
        if self.head.hex() != e.chain_hash:
            raise _Bad(Finding(e.seq, e.event_id, "chain hash differs: chain table altered"))
        self.report.chained += 1
        self.seqs.append(e.seq)
        self.digests.append(digest)
        self.ids.append(e.event_id)
        if self.cp_index < len(self.cps) and e.seq == self.cps[self.cp_index]["last_seq"]:
            self._close_checkpoint()

    def _close_checkpoints_before(self, seq: int) -> None:
        while self.cp_index < len(self.cps) and seq > self.cps[self.cp_index]["last_seq"]:
            self._close_checkpoint()

    def _close_checkpoint(self) -> None:
        cp = self.cps[self.cp_index]
        want_seqs = checkpoints.runs_to_seqs(cp["seqs"])
        want_leaves = checkpoints.split_leaves(cp["leaves"])
        got = list(zip(self.seqs, self.digests, self.ids, strict=True))
        for i, want in enumerate(zip(want_seqs, want_leaves, strict=True)):
            if i >= len(got) or got[i][0] > want[0]:
                raise _Bad(
                    Finding(
                        want[0],
                        None,
                        "signed in a checkpoint but gone from the "
                        "log: row deleted and the chain recomputed",
                    )
                )
            seq, digest, event_id = got[i]
            if seq < want[0]:
                raise _Bad(
                    Finding(
                        seq,
                        event_id,
                        "not in the signed checkpoint: row inserted and the chain recomputed",
                    )
                )
            if digest[: checkpoints.LEAF_BYTES] != want[1]:
                raise _Bad(
                    Finding(
                        seq,
                        event_id,
                        "differs from the signed checkpoint: row "
                        "edited or moved and the chain recomputed",
                    )
                )
        if len(got) > len(want_seqs):
            seq, _, event_id = got[len(want_seqs)]
            raise _Bad(
                Finding(
                    seq,
                    event_id,
                    "not in the signed checkpoint: row inserted and the chain recomputed",
                )
            )
        if self.head.hex() != cp["head"]:
            raise _Bad(
                Finding(
                    cp["last_seq"],
                    self.ids[-1] if self.ids else None,
                    "chain head differs from the signed checkpoint",
                )
            )
        self.report.signed_seq = cp["last_seq"]
        self.seqs, self.digests, self.ids = [], [], []
        self.cp_index += 1

    def finish(self) -> None:
        if self.cp_index < len(self.cps):
            self._close_checkpoints_before(self.cps[-1]["last_seq"] + 1)
        self.report.unsigned_tail = len(self.seqs)


BATCH = 10_000
PARALLEL_FROM = 50_000  # below this many events, worker processes cost more than they save


def _rebuild_range(url: str, after: int, upto: int) -> list[chain.Entry]:
    """In a worker process: the entries rebuilt from the event rows with after < seq <= upto."""

    async def run() -> list[chain.Entry]:
        store = Store(url)
        try:
            async with store.engine.connect() as conn:
                tables = await chain.AuditTables.reflect(conn)
                return await tables.entries_between(conn, after, upto, None)
        finally:
            await store.aclose()

    return asyncio.run(run())


async def _rebuilt_batches(
    conn: AsyncConnection, tables: chain.AuditTables, url: str, workers: int
) -> AsyncIterator[tuple[list[chain.Entry], list[chain.Entry]]]:
    """(stored chain entries, entries rebuilt from the rows in the same seq range), in
    order; rebuilding (fetch, canonical bytes, hashes) spread over worker processes."""
    entries = chain.chain_entries(conn, 0, BATCH)
    if workers <= 1:
        after = 0
        async for batch in entries:
            yield batch, await tables.entries_between(conn, after, batch[-1].seq, None)
            after = batch[-1].seq
        return
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: deque[tuple[list[chain.Entry], asyncio.Future[list[chain.Entry]]]] = deque()
        after, more = 0, True
        while True:
            while more and len(pending) < 2 * workers:
                try:
                    batch = await anext(entries)
                except StopAsyncIteration:
                    more = False
                    break
                job = loop.run_in_executor(pool, _rebuild_range, url, after, batch[-1].seq)
                pending.append((batch, job))
                after = batch[-1].seq
            if not pending:
                return
            batch, job = pending.popleft()
            yield batch, await job
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


async def verify(
    store: Store, checkpoint_dir: Path, public: Ed25519PublicKey, workers: int | None = None
) -> Report:
    """Check the whole log; `Report.finding` names the first bad event, if any. `workers`
    processes rebuild entries in parallel (default: by the log's size and the CPUs)."""
    started = time.perf_counter()
    async with store.engine.connect() as conn:
        lid = await log_id(conn)
        tables = await chain.AuditTables.reflect(conn)
        after, cps = 0, []
        try:
            cp_path = checkpoints.checkpoint_file(checkpoint_dir, lid)
            cps = _signed_records(cp_path, "checkpoint", lid, public)
            _checkpoint_chain(cps, lid, cp_path)
            purges = [
                _Purge(r["pattern"], r["before"], int(r["upto_seq"]))
                for r in _signed_records(
                    checkpoints.purge_file(checkpoint_dir, lid), "purge", lid, public
                )
            ]
            checker = _Checker(lid, cps, purges)
            head_seq, _ = await chain_head(conn, lid)
            if workers is None:
                workers = min(os.cpu_count() or 1, 4) if head_seq > PARALLEL_FROM else 1
            async for batch, rebuilt in _rebuilt_batches(conn, tables, store.url, workers):
                by_seq = {r.seq: r for r in rebuilt}
                with chain.paused_gc():
                    for e in batch:
                        checker.entry(e, by_seq.pop(e.seq, None))
                if by_seq:
                    seq = min(by_seq)
                    raise _Bad(
                        Finding(
                            seq,
                            by_seq[seq].event_id,
                            "event below the chain head but not in the chain: "
                            "row inserted or renumbered",
                        )
                    )
                after = batch[-1].seq
            checker.finish()
            report = checker.report
        except _Bad as bad:
            report = Report(finding=bad.finding)
        report.unsequenced = (
            (
                await conn.execute(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.seq > after)
                )
            ).scalar_one()
            if report.ok
            else 0
        )
    if report.ok and not cps and report.chained:
        report.notes.append("no signed checkpoint yet: the chain is checked but unsigned")
    report.seconds = time.perf_counter() - started
    return report
