"""Audit integrity on SQLite and PostgreSQL: group commit, the sequencer's chain, signed
checkpoints, append-only guards, retention, and `audit verify` against each kind of
tampering."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.audit import chain, checkpoints
from hub.audit.events import WRITE_LOCK, AuditRecord, AuditUnavailable, AuditWriter, event_values
from hub.audit.models import AUDIT_EVENTS, AUDIT_SUBJECTS, AuditChain, AuditEvent, AuditSubject
from hub.audit.retention import purge
from hub.audit.sequencer import Sequencer, SequencerConfig
from hub.audit.verify import Report, verify
from hub.auth.tokens import Actor
from hub.store.engine import Store, migrate_async

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@dataclass
class Log:
    store: Store
    writer: AuditWriter
    sequencer: Sequencer
    checkpoint_dir: Path
    key_file: Path

    @property
    def postgres(self) -> bool:
        return not self.store.sqlite

    async def write(self, n: int, **fields: Any) -> list[str]:
        return list(
            await asyncio.gather(*(self.writer.write(record(i, **fields)) for i in range(n)))
        )

    async def verify(self, workers: int | None = None) -> Report:
        public = checkpoints.load_public_key(self.key_file)
        return await verify(self.store, self.checkpoint_dir, public, workers)

    async def seq_of(self, event_id: str) -> int:
        async with self.store.sessions() as s:
            return int(
                (
                    await s.execute(select(AuditEvent.seq).where(AuditEvent.event_id == event_id))
                ).scalar_one()
            )

    async def as_superuser(self, *statements: str, params: dict[str, Any] | None = None) -> None:
        """Run statements with the append-only triggers out of the way, as a superuser can."""
        async with self.store.engine.begin() as conn:
            await superuser(conn, self.postgres)
            for sql in statements:
                await conn.execute(text(sql), params or {})
            await restore(conn, self.postgres)


async def superuser(conn: AsyncConnection, postgres: bool) -> None:
    if postgres:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for table in ("audit_events", "audit_subjects", "audit_chain"):
            await conn.execute(text(f"DROP TRIGGER {table}_no_update"))
            await conn.execute(text(f"DROP TRIGGER {table}_no_delete"))


async def restore(conn: AsyncConnection, postgres: bool) -> None:
    if not postgres:  # put the guards back, as the migration made them
        for table in ("audit_events", "audit_subjects", "audit_chain"):
            gate = (
                " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_gate)"
                if table != "audit_chain"
                else ""
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}{gate} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )
            )


def record(i: int = 0, **fields: Any) -> AuditRecord:
    actor = Actor(
        subject=f"worker-{i % 7}",
        issuer="https://issuer.test",
        roles=frozenset({"mash_social_worker"}),
        agency="council",
        team=None,
        client="test",
    )
    values: dict[str, Any] = {
        "operation_type": "query",
        "operation_name": "Record",
        "query_hash": "ab" * 32,
        "purpose": "MASH_RESEARCH",
        "subjects": {f"00000000-0000-0000-0000-{i % 50:012d}": "child"},
        "sources": {"POLICE": "OK"},
        "fields_returned": ["child.id"],
        "policy_version": "v1",
    }
    return AuditRecord(actor=actor, **(values | fields))


@contextlib.asynccontextmanager
async def open_log(url: str, tmp_path: Path) -> AsyncIterator[Log]:
    await migrate_async(url)
    store = Store(url)
    config = SequencerConfig(
        checkpoint_dir=tmp_path / "checkpoints",
        key_file=tmp_path / "keys" / "audit.pem",
        checkpoint_interval_s=3600,
    )
    writer = AuditWriter(store)
    try:
        yield Log(store, writer, Sequencer(store, config), config.checkpoint_dir, config.key_file)
    finally:
        await writer.aclose()
        await store.aclose()


@pytest.fixture(params=["sqlite", "postgres"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Log]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    async with open_log(url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def pg_log(postgres_url: str, tmp_path: Path) -> AsyncIterator[Log]:
    """PostgreSQL only: roles, and seqs that commit out of order (SQLite has one writer at
    a time, so its seqs commit in order)."""
    async with open_log(postgres_url, tmp_path) as opened:
        yield opened


async def sequenced_log(log: Log, n: int = 30) -> list[str]:
    ids = await log.write(n)
    await log.sequencer.step(force_checkpoint=True)
    return ids


async def test_concurrent_events_share_commits_and_each_is_stored_with_its_subjects(
    log: Log,
) -> None:
    ids = await log.write(300)
    async with log.store.sessions() as s:
        stored = set((await s.execute(select(AuditEvent.event_id))).scalars())
        subjects = (await s.execute(select(func.count()).select_from(AuditSubject))).scalar()
    assert stored == set(ids) and len(ids) == 300
    assert subjects == 300


async def test_a_failed_commit_fails_every_request_of_its_batch_closed(log: Log) -> None:
    await log.write(1)
    async with log.store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        results = await asyncio.gather(
            *(log.writer.write(record(i)) for i in range(20)), return_exceptions=True
        )
    finally:
        async with log.store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    assert all(isinstance(r, AuditUnavailable) for r in results)
    assert len(await log.write(3)) == 3  # and the writer carries on once the store is back


async def test_staged_writes_commit_with_their_event_or_not_at_all(log: Log) -> None:
    async def fails(session: Any) -> None:
        raise RuntimeError("the decision could not be stored")

    async def marks(session: Any) -> None:
        await session.execute(text("INSERT INTO audit_purge_gate (id) VALUES (7)"))
        await session.execute(text("DELETE FROM audit_purge_gate WHERE id = 7"))

    bad, good, plain = await asyncio.gather(
        log.writer.write(record(1, staged=[fails])),
        log.writer.write(record(2, staged=[marks])),
        log.writer.write(record(3)),
        return_exceptions=True,
    )
    assert isinstance(bad, AuditUnavailable)
    assert isinstance(good, str) and isinstance(plain, str)
    async with log.store.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(AuditEvent))).scalar() == 2


async def test_update_delete_and_truncate_of_audit_rows_are_refused(log: Log) -> None:
    await sequenced_log(log, 3)
    statements = [
        "UPDATE audit_events SET outcome = 'ok'",
        "DELETE FROM audit_events",
        "DELETE FROM audit_subjects",
        "UPDATE audit_chain SET chain_hash = 'x'",
        "DELETE FROM audit_chain",
    ]
    if log.postgres:
        statements += ["TRUNCATE audit_events CASCADE", "TRUNCATE audit_chain"]
    for sql in statements:
        with pytest.raises(Exception, match="append-only"):
            async with log.store.engine.begin() as conn:
                await conn.execute(text(sql))
    assert (await log.verify()).ok


async def test_postgres_has_an_insert_only_writer_role_and_a_reader_role(pg_log: Log) -> None:
    log = pg_log
    await migrate_async(log.store.url)  # idempotent: the roles exist already
    async with log.store.engine.connect() as conn:

        async def can(role: str, privilege: str, table: str = "audit_events") -> bool:
            return bool(
                (
                    await conn.execute(
                        text("SELECT has_table_privilege(:r, :t, :p)"),
                        {"r": role, "t": table, "p": privilege},
                    )
                ).scalar()
            )

        assert await can("mash_audit_writer", "INSERT")
        assert not await can("mash_audit_writer", "UPDATE")
        assert not await can("mash_audit_writer", "DELETE")
        assert not await can("mash_audit_writer", "TRUNCATE")
        assert await can("mash_audit_reader", "SELECT")
        assert await can("mash_audit_reader", "SELECT", "audit_chain")
        assert not await can("mash_audit_reader", "INSERT")


async def test_the_sequencer_chains_every_event_and_signs_checkpoints_in_files(
    log: Log,
) -> None:
    ids = await sequenced_log(log, 40)
    await log.write(5)  # not yet sequenced
    async with log.store.sessions() as s:
        chained = list(
            (await s.execute(select(AuditChain.event_id).order_by(AuditChain.seq))).scalars()
        )
    assert chained == ids or sorted(chained) == sorted(ids)
    files = list(log.checkpoint_dir.glob("audit-*.jsonl"))
    assert len(files) == 1
    line = json.loads(files[0].read_text().splitlines()[-1])
    assert line["count"] == 40 and line["last_seq"] == max([await log.seq_of(i) for i in ids])
    public = checkpoints.load_public_key(log.key_file)
    assert checkpoints.signature_ok(line, public)
    assert not checkpoints.signature_ok({**line, "count": 41}, public)
    report = await log.verify()
    assert report.ok and report.chained == 40 and report.unsequenced == 5
    assert report.signed_seq == line["last_seq"]


async def test_verify_names_an_edited_row(log: Log) -> None:
    ids = await sequenced_log(log)
    seq = await log.seq_of(ids[11])
    assert (await log.verify(workers=2)).ok
    await log.as_superuser(f"UPDATE audit_events SET purpose = 'SAR_RESPONSE' WHERE seq = {seq}")
    for workers in (1, 2):  # inline, and rebuilt in worker processes
        report = await log.verify(workers)
        assert report.finding is not None
        assert (report.finding.seq, report.finding.event_id) == (seq, ids[11])
        assert "edited" in report.finding.problem


async def test_verify_names_a_deleted_row(log: Log) -> None:
    ids = await sequenced_log(log)
    seq = await log.seq_of(ids[5])
    await log.as_superuser(
        f"DELETE FROM audit_subjects WHERE event_seq = {seq}",
        f"DELETE FROM audit_events WHERE seq = {seq}",
    )
    report = await log.verify()
    assert report.finding is not None
    assert (report.finding.seq, report.finding.event_id) == (seq, ids[5])
    assert "deleted" in report.finding.problem


async def test_verify_names_reordered_rows(log: Log) -> None:
    ids = await sequenced_log(log)
    a, b = sorted([await log.seq_of(ids[8]), await log.seq_of(ids[20])])
    # Swap two events' places in the log (their seqs), subjects and all.
    big = 10**9
    await log.as_superuser(
        f"UPDATE audit_subjects SET event_seq = {big} WHERE event_seq = {a}",
        f"UPDATE audit_events SET seq = {big} WHERE seq = {a}",
        f"UPDATE audit_subjects SET event_seq = {a} WHERE event_seq = {b}",
        f"UPDATE audit_events SET seq = {a} WHERE seq = {b}",
        f"UPDATE audit_subjects SET event_seq = {b} WHERE event_seq = {big}",
        f"UPDATE audit_events SET seq = {b} WHERE seq = {big}",
    )
    report = await log.verify()
    assert report.finding is not None
    assert report.finding.seq == a
    assert "reordered" in report.finding.problem


async def recompute_chain_from(log: Log, seq: int) -> None:
    """What a superuser with the code could do: rebuild every chain entry from `seq` on."""
    async with log.store.engine.begin() as conn:
        await superuser(conn, log.postgres)
        tables = await chain.AuditTables.reflect(conn)
        lid = (await conn.execute(text("SELECT log_id FROM audit_log_identity"))).scalar_one()
        head = chain.genesis(lid)
        entries = [e async for batch in chain.chain_entries(conn, 0) for e in batch]
        events = {r["seq"]: (r, s) for r, s in await tables.events_between(conn, 0, None, 10**6)}
        for e in entries:
            if e.seq >= seq:
                rebuilt = chain.entry_for(*events[e.seq])
                head = chain.link(head, rebuilt.digest())
                await conn.execute(
                    text(
                        "UPDATE audit_chain SET content_hash = :c, chain_hash = :h WHERE seq = :s"
                    ),
                    {"c": rebuilt.content_hash, "h": head.hex(), "s": e.seq},
                )
            else:
                head = bytes.fromhex(e.chain_hash)
        await restore(conn, log.postgres)


async def test_verify_names_a_row_edited_by_a_superuser_who_recomputed_the_chain(
    log: Log,
) -> None:
    ids = await sequenced_log(log)
    await sequenced_log(log, 10)  # a second checkpoint after the first
    seq = await log.seq_of(ids[17])
    await log.as_superuser(
        f"UPDATE audit_events SET actor_subject = 'someone-else' WHERE seq = {seq}"
    )
    await recompute_chain_from(log, seq)
    report = await log.verify()
    assert report.finding is not None
    assert (report.finding.seq, report.finding.event_id) == (seq, ids[17])
    assert "signed checkpoint" in report.finding.problem


async def test_verify_catches_a_forged_checkpoint_line(log: Log) -> None:
    await sequenced_log(log, 5)
    path = next(log.checkpoint_dir.glob("audit-*.jsonl"))
    line = json.loads(path.read_text())
    path.write_text(json.dumps({**line, "head": "00" * 32}) + "\n")
    report = await log.verify()
    assert report.finding is not None and "signature invalid" in report.finding.problem


async def test_a_late_committing_earlier_seq_is_not_skipped(pg_log: Log) -> None:
    log = pg_log
    # A writer transaction draws a seq and has not committed yet...
    late = log.store.engine.connect()
    conn = await late.__aenter__()
    tx = await conn.begin()
    await conn.execute(select(func.pg_advisory_xact_lock_shared(WRITE_LOCK)))
    await conn.execute(
        text(
            "INSERT INTO audit_events (event_id, occurred_at, actor_roles, outcome, subjects, "
            "sources, fields_returned, fields_redacted) VALUES ('late', now(), '[]', 'ok', "
            "'[]', '{}', '[]', '[]')"
        )
    )
    # ...while a later one commits, and the sequencer runs.
    later = await log.write(1)
    step = asyncio.create_task(log.sequencer.step())
    await asyncio.sleep(0.3)
    await tx.commit()
    await late.__aexit__(None, None, None)
    await step
    # A rolled-back insert leaves a gap for good: that is no gap in the chain.
    async with log.store.engine.connect() as c2:
        await c2.execute(
            text(
                "INSERT INTO audit_events (event_id, occurred_at, actor_roles, "
                "outcome, subjects, sources, fields_returned, fields_redacted) "
                "VALUES ('gone', now(), '[]', 'ok', '[]', '{}', '[]', '[]')"
            )
        )
        await c2.rollback()
    await log.write(2)
    await log.sequencer.step(force_checkpoint=True)
    async with log.store.sessions() as s:
        chained = list(
            (await s.execute(select(AuditChain.event_id).order_by(AuditChain.seq))).scalars()
        )
    assert chained[:2] == ["late", later[0]]
    assert len(chained) == 4
    assert (await log.verify()).ok


async def test_purge_by_class_keeps_the_log_verifiable(log: Log) -> None:
    old_invalid = await log.write(10, outcome="invalid", operation_type=None)
    kept = await log.write(10)
    await log.sequencer.step(force_checkpoint=True)
    key = checkpoints.load_or_create_key(log.key_file)
    later = datetime.now(UTC) + timedelta(days=31)
    counts = await purge(log.store, {"*.invalid": 30}, log.checkpoint_dir, key, now=later)
    assert counts == {"*.invalid": 10}
    async with log.store.sessions() as s:
        left = set((await s.execute(select(AuditEvent.event_id))).scalars())
    assert left == set(kept) and not left & set(old_invalid)
    report = await log.verify()
    assert report.ok and report.purged == 10 and report.chained == 20
    # Without the signed purge record the same gap is a deletion.
    next(log.checkpoint_dir.glob("audit-*.purges.jsonl")).unlink()
    report = await log.verify()
    assert report.finding is not None and "deleted" in report.finding.problem


async def test_writers_wait_while_the_sequencer_holds_the_horizon_lock(pg_log: Log) -> None:
    log = pg_log
    await log.write(1)  # the writer's connection is open
    async with log.store.engine.connect() as conn:
        await conn.execute(select(func.pg_advisory_lock(WRITE_LOCK)))
        waiting = asyncio.create_task(log.writer.write(record(1)))
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done, "the writer drew a seq while the horizon was being read"
        await conn.execute(select(func.pg_advisory_unlock(WRITE_LOCK)))
        await conn.commit()
    assert isinstance(await waiting, str)


async def test_a_checkpoint_line_torn_by_a_crash_is_skipped_and_the_next_one_follows(
    log: Log,
) -> None:
    await sequenced_log(log, 5)
    path = next(log.checkpoint_dir.glob("audit-*.jsonl"))
    with path.open("ab") as f:
        f.write(b'{"type":"checkpoint","log_id":"torn')  # the process died mid-write
    await sequenced_log(log, 5)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[1].endswith("torn")
    report = await log.verify()
    assert report.ok and report.checkpoints == 2 and report.unsigned_tail == 0


ODD_TEXT = ["a", "é", "\u2028", "\x1f", '"', "\\", "/", "\U0001f600", "\ue000", "ß", "\\u0041"]


def odd_json(rng: random.Random, depth: int = 0) -> Any:
    """JSON values where a naive encoder and RFC 8785 may differ: floats, integers of 16
    digits, keys outside the Basic Multilingual Plane, escapes."""
    kind = rng.choice(
        ["str", "int", "float", "bool", "none", "list", "dict"][: 7 - (depth > 2) * 2]
    )
    if kind == "str":
        return "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(0, 4)))
    if kind == "int":
        return rng.choice([0, -7, 2**53 - 1, -(2**53 - 1), 10**15, 123])
    if kind == "float":
        return rng.choice([0.5, 1.0, -2.25, 1e21, 1e-7])
    if kind in ("bool", "none"):
        return rng.random() < 0.5 if kind == "bool" else None
    if kind == "list":
        return [odd_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {
        "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(0, 2))): odd_json(rng, depth + 1)
        for _ in range(rng.randint(0, 3))
    }


async def test_the_fast_reader_rebuilds_exactly_the_generic_entries(log: Log) -> None:
    """On PostgreSQL entries are read as one JSON array per row; whatever the rows hold
    (floats, huge integers, astral keys, escapes), the hashes equal the generic path's."""
    rng = random.Random(62)
    await log.write(5)  # ordinary events among the odd ones
    async with log.store.engine.begin() as conn:
        for i in range(120):
            values = event_values(record(i), f"odd-{i}")
            for column in ("sources", "fields_returned", "report", "break_glass"):
                values[column] = odd_json(rng)
            values["operation_name"] = "".join(rng.choice(ODD_TEXT) for _ in range(5))
            seq = (
                await conn.execute(insert(AUDIT_EVENTS).returning(AUDIT_EVENTS.c.seq), values)
            ).scalar_one()
            subjects = [
                {
                    "event_seq": seq,
                    "subject_id": f"s-{i}-{j}",
                    "relationship": "".join(rng.choice(ODD_TEXT) for _ in range(4)),
                }
                for j in range(1 + i % 3)
            ]
            await conn.execute(insert(AUDIT_SUBJECTS), subjects)
    async with log.store.engine.connect() as conn:
        tables = await chain.AuditTables.reflect(conn)
        fast = await tables.entries_between(conn, 0, None, None)
        generic = [
            chain.entry_for(r, s) for r, s in await tables.events_between(conn, 0, None, None)
        ]
        assert fast == generic
        assert len(fast) == 125
        assert await tables.entries_between(conn, 3, 60, 10) == generic[3:13]
    assert await log.sequencer.step(force_checkpoint=True) == 125
    assert (await log.verify(workers=2)).ok


async def test_stop_lets_a_round_in_progress_finish_instead_of_cutting_it(log: Log) -> None:
    """Cancelling a round mid-INSERT can hang shutdown (asyncpg's clean-up waits for a
    server that waits for the rest of the statement): stop() lets the round finish."""
    entered, started, finished = asyncio.Event(), [], []
    chain_batch = log.sequencer._chain_batch

    async def slow_batch(top: int) -> int:
        entered.set()
        started.append(top)
        await asyncio.sleep(0.3)  # a round that is still writing when stop() is called
        done = await chain_batch(top)
        finished.append(done)
        return done

    log.sequencer._chain_batch = slow_batch  # type: ignore[method-assign]
    await log.write(10)
    log.sequencer.start()
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.wait_for(log.sequencer.stop(), 30)
    assert finished[0] == 10, "the round in progress chained its events"
    assert len(finished) == len(started), "no round was cut off"
    report = await log.verify()
    assert report.ok and report.chained == 10 and report.unsigned_tail == 0


async def test_a_superusers_rewrite_right_after_a_round_is_caught(log: Log) -> None:
    """No unsigned window: an ordinary round (no checkpoint forced, the checkpoint interval
    an hour away) signs what it chained, so rewriting an event and recomputing the chain a
    moment later is caught like any other rewrite."""
    await sequenced_log(log, 5)  # a checkpoint now: the next is an hour away
    ids = await log.write(12)
    assert await log.sequencer.step() == 12  # one ordinary round
    seq = await log.seq_of(ids[7])
    await log.as_superuser(
        f"UPDATE audit_events SET actor_subject = 'someone-else' WHERE seq = {seq}"
    )
    await recompute_chain_from(log, seq)
    report = await log.verify()
    assert report.finding is not None
    assert (report.finding.seq, report.finding.event_id) == (seq, ids[7])
    assert "signed checkpoint" in report.finding.problem


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_events_chained_before_the_trace_id_column_still_verify_and_stay_sealed(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # given events written and chained (and signed) before migration 0009 added trace_id
    # (and 0010 the partner system and actor kind)
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    await migrate_async(url, "0008")
    old = [
        {
            k: v
            for k, v in event_values(record(i), f"old-{i}").items()
            if k not in chain.OPTIONAL_COLUMNS
        }
        for i in range(2)
    ]
    store = Store(url)
    config = SequencerConfig(tmp_path / "checkpoints", tmp_path / "keys" / "audit.pem")
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(AUDIT_EVENTS), old)
        assert await Sequencer(store, config).step(force_checkpoint=True) == 2
    finally:
        await store.aclose()

    # when the store is migrated and new events, with and without a trace id, are chained
    async with open_log(url, tmp_path) as log:
        traced = await log.writer.write(record(2, trace_id="4bf92f3577b34da6a3ce929d0e0e4736"))
        await log.writer.write(record(3))
        assert await log.sequencer.step(force_checkpoint=True) == 2

        # then the whole log verifies, the old events as they were hashed before 0009
        assert (await log.verify()).ok
        # and a trace id or partner system written onto an old event, or a trace id taken
        # off a new one, is found
        seq = await log.seq_of("old-0")
        await log.as_superuser(
            f"UPDATE audit_events SET client_system = 'Someone EPR' WHERE seq = {seq}"
        )
        report = await log.verify()
        assert report.finding is not None and report.finding.event_id == "old-0"
        await log.as_superuser(f"UPDATE audit_events SET client_system = NULL WHERE seq = {seq}")
        assert (await log.verify()).ok
        seq = await log.seq_of("old-1")
        await log.as_superuser(f"UPDATE audit_events SET trace_id = 'f' WHERE seq = {seq}")
        report = await log.verify()
        assert report.finding is not None and report.finding.event_id == "old-1"
        await log.as_superuser(f"UPDATE audit_events SET trace_id = NULL WHERE seq = {seq}")
        assert (await log.verify()).ok
        seq = await log.seq_of(traced)
        await log.as_superuser(f"UPDATE audit_events SET trace_id = NULL WHERE seq = {seq}")
        report = await log.verify()
        assert report.finding is not None and report.finding.event_id == traced
