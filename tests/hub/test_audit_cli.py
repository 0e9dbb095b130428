"""`mash-hub audit verify` and `mash-hub audit purge` as an operator runs them, on the
embedded store (SQLite) in a data folder."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text, update
from typer.testing import CliRunner

from hub import cli
from hub.app import sequencer_config
from hub.audit.events import AuditWriter
from hub.audit.models import AUDIT_EVENTS
from hub.audit.sequencer import Sequencer
from hub.settings import Settings
from hub.store.engine import Store, migrate_async

from .test_audit_integrity import record, restore, superuser


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def mash_hub(data_dir: Path, *args: str, **env: str) -> Result:
    """`mash-hub audit ...` in this process (typer's runner: same code path, no start-up)."""
    result = CliRunner().invoke(
        cli.app, ["audit", *args], env={"MASH_DATA_DIR": str(data_dir), **env}
    )
    return Result(result.exit_code, result.stdout, result.stderr)


def make_log(data_dir: Path, old_invalid: int = 0) -> list[str]:
    """Events written and sequenced as a hub would; `old_invalid` of them a year old."""

    async def run() -> list[str]:
        settings = Settings(data_dir=data_dir)
        await migrate_async(settings.hub_database_url)
        store = Store(settings.hub_database_url)
        writer = AuditWriter(store)
        try:
            ids = [await writer.write(record(i)) for i in range(12)]
            for i in range(old_invalid):
                event_id = await writer.write(record(i, outcome="invalid", operation_type=None))
                async with store.engine.begin() as conn:
                    await superuser(conn, postgres=False)
                    await conn.execute(
                        update(AUDIT_EVENTS)
                        .where(AUDIT_EVENTS.c.event_id == event_id)
                        .values(occurred_at=datetime.now(UTC) - timedelta(days=365))
                    )
                    await restore(conn, postgres=False)
            ids.append(await writer.write(record(99)))
            await Sequencer(store, sequencer_config(settings)).step(force_checkpoint=True)
            return ids
        finally:
            await writer.aclose()
            await store.aclose()

    return asyncio.run(run())


def test_audit_verify_says_intact_then_names_the_row_a_superuser_edited(tmp_path: Path) -> None:
    ids = make_log(tmp_path)
    result = mash_hub(tmp_path, "verify")
    assert result.returncode == 0, result.stderr
    assert "audit log intact: 13 events chained" in result.stdout
    assert (tmp_path / "audit-signing-key.pem.pub").exists()

    async def edit() -> None:
        store = Store(Settings(data_dir=tmp_path).hub_database_url)
        async with store.engine.begin() as conn:
            await superuser(conn, postgres=False)
            await conn.execute(text("UPDATE audit_events SET purpose = 'IG_AUDIT' WHERE seq = 4"))
            await restore(conn, postgres=False)
        await store.aclose()

    asyncio.run(edit())
    result = mash_hub(tmp_path, "verify")
    assert result.returncode == 1
    assert f"seq 4 (event_id {ids[3]})" in result.stderr and "edited" in result.stderr


def test_audit_purge_removes_only_expired_classes_and_verify_still_passes(
    tmp_path: Path,
) -> None:
    make_log(tmp_path, old_invalid=3)
    retention = '{"*.invalid": 30, "query.*": 3650}'
    result = mash_hub(tmp_path, "purge", MASH_AUDIT_RETENTION_DAYS=retention)
    assert result.returncode == 0, result.stderr
    assert "purged 3 audit events (*.invalid: 3)" in result.stdout
    result = mash_hub(tmp_path, "verify")
    assert result.returncode == 0, result.stderr
    assert "16 events chained (3 purged" in result.stdout


def test_audit_purge_refuses_a_retention_below_one_day(tmp_path: Path) -> None:
    result = mash_hub(tmp_path, "purge", MASH_AUDIT_RETENTION_DAYS='{"*.ok": 0}')
    assert result.returncode == 2
    assert "at least 1 day" in result.stderr
