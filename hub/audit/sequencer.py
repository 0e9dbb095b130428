"""The audit sequencer: a background task that chains committed events in `seq` order and
signs checkpoints of the chain to files at a configured interval.

Exactly one sequencer works at a time across hub processes on PostgreSQL: it holds a
session advisory lock on a connection of its own, which the server releases when that
process dies, so another process takes over on its next try. On SQLite one process serves.
That connection is named `mash-hub audit sequencer (pid N)` (`application_name`), so
`holders` (and an operator's look at `pg_locks` and `pg_stat_activity`) tells which process
of several workers or hosts sequences.

A `seq` is drawn when a row is inserted, not when it commits, so a later seq can become
visible before an earlier one. Writers hold a shared transaction-level advisory lock while
they insert; each round the sequencer takes the same lock exclusively for a moment, which
waits out every transaction that drew a seq, and reads the highest seq then: every seq up
to that horizon has committed or never will, so a missing one is a rolled-back insert, not
a row still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import Gauge
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..store.engine import Store
from ..telemetry.metrics import GAUGE_MODE
from . import chain, checkpoints
from .models import AuditChain, AuditLogIdentity

log = logging.getLogger(__name__)

# Advisory lock key (per database) of the sequencer's role; WRITE_LOCK is the writers' gate.
SEQUENCER_LOCK = 0x6D617368_0001

# How the sequencer's own connection names itself on the server (pg_stat_activity).
LEADER_NAME = f"mash-hub audit sequencer (pid {os.getpid()})"

ACTIVE = Gauge(
    "mash_hub_audit_sequencer_active",
    "1 while this process is the sequencer",
    multiprocess_mode=GAUGE_MODE,
)
SEQUENCED = Gauge(
    "mash_hub_audit_sequenced_seq", "Highest seq in the chain", multiprocess_mode=GAUGE_MODE
)
# The latest signed checkpoint as the sequencer last read or wrote it, and how often one is
# due: operators alert when events wait unsigned behind a checkpoint older than two
# intervals. Processes that do not sequence leave them at 0 (alerts take the max).
CHECKPOINT_TIME = Gauge(
    "mash_hub_audit_checkpoint_timestamp_seconds",
    "Unix time of the latest signed checkpoint",
    multiprocess_mode=GAUGE_MODE,
)
CHECKPOINT_SEQ = Gauge(
    "mash_hub_audit_checkpoint_seq",
    "Last seq the latest checkpoint signs",
    multiprocess_mode=GAUGE_MODE,
)
CHECKPOINT_INTERVAL = Gauge(
    "mash_hub_audit_checkpoint_interval_seconds",
    "Configured interval between checkpoints",
    multiprocess_mode=GAUGE_MODE,
)


async def log_id(conn: AsyncConnection) -> str:
    return str((await conn.execute(select(AuditLogIdentity.log_id))).scalar_one())


async def chain_head(conn: AsyncConnection, lid: str) -> tuple[int, bytes]:
    """(seq, chain hash) at the end of the stored chain."""
    row = (
        await conn.execute(
            select(AuditChain.seq, AuditChain.chain_hash).order_by(AuditChain.seq.desc()).limit(1)
        )
    ).first()
    if row is None:
        return 0, chain.genesis(lid)
    return int(row[0]), bytes.fromhex(row[1])


async def holders(conn: AsyncConnection) -> list[str]:
    """PostgreSQL: the `application_name` of every session of this database holding the
    sequencer's lock (a bigint advisory key shows in `pg_locks` as classid = high 32 bits,
    objid = low 32 bits, objsubid = 1). Exactly one while a hub runs; none when none does."""
    rows = await conn.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid::bigint = :high AND l.objid::bigint = :low"
        ),
        {"high": SEQUENCER_LOCK >> 32, "low": SEQUENCER_LOCK & 0xFFFFFFFF},
    )
    return [str(name) for name in rows.scalars()]


STOP_WAIT_S = 15.0  # how long stop() lets a round in progress finish


@dataclass
class SequencerConfig:
    checkpoint_dir: Path
    key_file: Path
    interval_s: float = 0.5
    checkpoint_interval_s: float = 60.0
    batch: int = 5000


class Sequencer:
    def __init__(self, store: Store, config: SequencerConfig) -> None:
        self.store, self.config = store, config
        self.key: Ed25519PrivateKey = checkpoints.load_or_create_key(config.key_file)
        CHECKPOINT_INTERVAL.set(config.checkpoint_interval_s)
        self._leader: AsyncConnection | None = None
        self._last_checkpoint = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._tables: chain.AuditTables | None = None
        self._chained = 0  # every seq up to here is chained (as far as this process knows)

    @property
    def active(self) -> bool:
        return self._leader is not None or self.store.sqlite

    def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="audit-sequencer")

    async def stop(self) -> None:
        """Stop; if leading, chain what is committed and sign a last checkpoint.

        A round in progress is let finish, not cancelled: cancelling asyncpg in the middle
        of a many-row INSERT can leave the server waiting for the rest of it while the
        connection's clean-up waits for the server, and shutdown would hang. Only a round
        stuck for STOP_WAIT_S is cancelled."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await asyncio.wait({task}, timeout=STOP_WAIT_S)
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_WAIT_S)
        try:
            async with asyncio.timeout(15):  # the store may be away: do not hang shutdown
                if await self._lead():
                    await self.step(force_checkpoint=True)
        except Exception as exc:
            log.warning("audit sequencer: final round failed (%s)", type(exc).__name__)
        await self._resign()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self._lead():
                    await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: try again next round
                log.warning("audit sequencer round failed (%s)", type(exc).__name__)
                await self._resign()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.interval_s):
                    await self._stopping.wait()

    async def _lead(self) -> bool:
        """True while this process holds the sequencer's role."""
        if self.store.sqlite:  # one process per embedded store: it always sequences
            ACTIVE.set(1)
            return True
        if self._leader is not None:
            try:
                await self._leader.execute(text("SELECT 1"))
                await self._leader.commit()
                ACTIVE.set(1)  # every round: it reads 1 for as long as this process leads
                return True
            except Exception:
                await self._resign()
        conn = await self.store.engine.connect()
        try:
            got = (
                await conn.execute(select(func.pg_try_advisory_lock(SEQUENCER_LOCK)))
            ).scalar_one()
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        with contextlib.suppress(Exception):  # a name for operators, not a condition to lead
            await conn.execute(select(func.set_config("application_name", LEADER_NAME, False)))
            await conn.commit()
        self._leader = conn
        self._chained = 0  # another process may have sequenced meanwhile: look again
        # A checkpoint is due at once: whatever the last leader left unsigned gets signed,
        # and the checkpoint gauges read the file from the first round.
        self._last_checkpoint = 0.0
        ACTIVE.set(1)
        log.info("audit sequencer: this process now sequences the audit log")
        return True

    async def _resign(self) -> None:
        conn, self._leader = self._leader, None
        # A process that no longer sequences stops reporting the chain (alerts take the max
        # over processes: a stale head here would hide a stuck one elsewhere); if it leads
        # again, its first round reads the checkpoint file afresh.
        for gauge in (ACTIVE, SEQUENCED, CHECKPOINT_SEQ, CHECKPOINT_TIME):
            gauge.set(0)
        self._last_checkpoint = 0.0
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # drop the session: the server releases the lock
            with contextlib.suppress(Exception):
                await conn.close()

    async def horizon(self) -> int:
        """The highest seq below which no insert is still in flight."""
        async with self.store.engine.connect() as conn:
            # PostgreSQL: a function of migration 0003 takes WRITE_LOCK exclusively, reads,
            # and lets go within one statement. SQLite: one writer at a time, in seq order.
            query = "SELECT max(seq) FROM audit_events"
            if not self.store.sqlite:
                query = "SELECT mash_audit_horizon()"
            top = (await conn.execute(text(query))).scalar()
            await conn.commit()
        return int(top or 0)

    async def step(self, force_checkpoint: bool = False) -> int:
        """Chain every event committed up to the horizon; sign a checkpoint when due.
        Returns the number of events chained."""
        top = await self.horizon()
        done = 0
        if top > self._chained:  # an idle round costs one query
            while True:
                n = await self._chain_batch(top)
                done += n
                if n < self.config.batch:
                    break
            self._chained = top
        SEQUENCED.set(top)
        # Every round that chained events signs them at once: a chained but unsigned event
        # could be rewritten, chain and all, by a database superuser, so the window is one
        # round (`interval_s`), not a checkpoint interval. Ed25519 signs in microseconds.
        due = time.monotonic() - self._last_checkpoint >= self.config.checkpoint_interval_s
        if done or due or force_checkpoint:
            await self.checkpoint()
            self._last_checkpoint = time.monotonic()
        return done

    async def _chain_batch(self, top: int) -> int:
        # Read and hash outside the write transaction (on SQLite it holds the one write
        # turn that requests wait for); insert only if the head has not moved meanwhile.
        async with self.store.engine.connect() as conn:
            if self._tables is None:
                self._tables = await chain.AuditTables.reflect(conn)
            lid = await log_id(conn)
            head_seq, head = await chain_head(conn, lid)
            if head_seq >= top:
                return 0
            entries = await self._tables.entries_between(conn, head_seq, top, self.config.batch)
        rows: list[dict[str, Any]] = []
        for entry in entries:
            head = chain.link(head, entry.digest())
            rows.append(
                {
                    "seq": entry.seq,
                    "event_id": entry.event_id,
                    "occurred_at": entry.occurred_at,
                    "event_class": entry.event_class,
                    "content_hash": entry.content_hash,
                    "chain_hash": head.hex(),
                }
            )
        if not rows:
            return 0
        async with self.store.writing() as session, session.begin():
            now_seq, _ = await chain_head(await session.connection(), lid)
            if now_seq != head_seq:
                raise RuntimeError("the chain head moved: another sequencer is at work")
            await session.execute(insert(AuditChain), rows)
        return len(rows)

    async def checkpoint(self) -> dict[str, Any] | None:
        """Sign and append a checkpoint of the chain since the last one (None if no news)."""
        async with self.store.engine.connect() as conn:
            lid = await log_id(conn)
            path = checkpoints.checkpoint_file(self.config.checkpoint_dir, lid)
            last_record = checkpoints.last_record(path)
            _publish(last_record)
            last = checkpoints.CheckpointState.of(last_record)
            prev_seq = last.seq if last else 0
            prev_head = last.head if last else chain.genesis(lid).hex()
            count = last.count if last else 0
            seqs: list[int] = []
            digests: list[bytes] = []
            head = bytes.fromhex(prev_head)
            async for batch in chain.chain_entries(conn, prev_seq):
                for entry in batch:
                    digest = entry.digest()
                    head = chain.link(head, digest)
                    if head.hex() != entry.chain_hash:
                        # Never sign what does not follow from the last signed head.
                        log.error("audit chain altered at seq %d: checkpoint withheld", entry.seq)
                        return None
                    seqs.append(entry.seq)
                    digests.append(digest)
        if not seqs:
            return None
        record = checkpoints.sign(
            {
                "type": "checkpoint",
                "log_id": lid,
                "prev_seq": prev_seq,
                "prev_head": prev_head,
                "last_seq": seqs[-1],
                "head": head.hex(),
                "count": count + len(seqs),
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "seqs": checkpoints.seq_runs(seqs),
                "leaves": checkpoints.leaves(digests),
            },
            self.key,
        )
        await asyncio.to_thread(checkpoints.append, path, record)
        _publish(record)
        return record


def _publish(record: dict[str, Any] | None) -> None:
    """The checkpoint gauges from the latest checkpoint record (none yet: left as they are)."""
    if record is None:
        return
    CHECKPOINT_SEQ.set(int(record["last_seq"]))
    if record.get("time"):
        CHECKPOINT_TIME.set(datetime.fromisoformat(str(record["time"])).timestamp())
