"""Retention: `mash-hub audit purge` deletes events past their class's retention period.

Only events already covered by a signed checkpoint are purged, and only after a signed
purge record (pattern, cutoff, highest seq) is appended to the purge file: the chain
entries stay, so `audit verify` still rebuilds the whole chain and accepts a missing event
exactly when a signed purge record covers its class, time and seq. The deletes run with the
purge gate open inside their own transaction; everywhere else the triggers refuse them.
"""

from __future__ import annotations

import asyncio
import fnmatch
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, insert, select

from ..store.engine import Store
from . import checkpoints
from .models import (
    AUDIT_EVENTS,
    AUDIT_PURGE_GATE,
    AUDIT_SUBJECTS,
    AuditChain,
    AuditEvent,
    AuditPurgeGate,
)
from .sequencer import log_id

CHUNK = 1000


def first_rule(event_class: str, rules: dict[str, int]) -> str | None:
    """The retention rule (pattern) for an event class: the first that matches; None = keep."""
    for pattern in rules:
        if fnmatch.fnmatchcase(event_class, pattern):
            return pattern
    return None


async def purge(
    store: Store,
    rules: dict[str, int],
    checkpoint_dir: Path,
    key: Ed25519PrivateKey,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete the events past retention; returns the count purged per pattern."""
    now = now or datetime.now(UTC)
    if not rules:
        return {}
    async with store.engine.connect() as conn:
        lid = await log_id(conn)
        signed = checkpoints.CheckpointState.of(
            checkpoints.last_record(checkpoints.checkpoint_file(checkpoint_dir, lid))
        )
        if signed is None:
            return {}
        newest = (await conn.execute(select(func.max(AuditEvent.seq)))).scalar() or 0
        # Never the newest row: SQLite may hand its rowid out again once it is gone.
        upto = min(signed.seq, newest - 1)
        oldest_cutoff = _iso(now - timedelta(days=min(rules.values())))
        candidates = await conn.execute(
            select(AuditChain.seq, AuditChain.event_class, AuditChain.occurred_at)
            .join(AuditEvent, AuditEvent.seq == AuditChain.seq)
            .where(AuditChain.seq <= upto, AuditChain.occurred_at < oldest_cutoff)
            .order_by(AuditChain.seq)
        )
        chosen: dict[str, list[int]] = {}
        cutoffs = {p: _iso(now - timedelta(days=d)) for p, d in rules.items()}
        for seq, event_class, occurred_at in candidates:
            pattern = first_rule(event_class, rules)
            if pattern is not None and occurred_at < cutoffs[pattern]:
                chosen.setdefault(pattern, []).append(seq)
    path = checkpoints.purge_file(checkpoint_dir, lid)
    for pattern, seqs in chosen.items():
        record = checkpoints.sign(
            {
                "type": "purge",
                "log_id": lid,
                "pattern": pattern,
                "before": _iso(now - timedelta(days=rules[pattern])),
                "upto_seq": seqs[-1],
                "count": len(seqs),
                "time": _iso(now),
            },
            key,
        )
        # The signed record first: a crash after it leaves events that could have gone,
        # never a deletion nobody signed.
        await asyncio.to_thread(checkpoints.append, path, record)
    all_seqs = sorted(s for seqs in chosen.values() for s in seqs)
    async with store.writing() as session, session.begin():
        await session.execute(insert(AuditPurgeGate).values(id=1))
        for i in range(0, len(all_seqs), CHUNK):
            chunk = all_seqs[i : i + CHUNK]
            await session.execute(
                delete(AUDIT_SUBJECTS).where(AUDIT_SUBJECTS.c.event_seq.in_(chunk))
            )
            await session.execute(delete(AUDIT_EVENTS).where(AUDIT_EVENTS.c.seq.in_(chunk)))
        await session.execute(delete(AUDIT_PURGE_GATE))
    return {pattern: len(seqs) for pattern, seqs in chosen.items()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
