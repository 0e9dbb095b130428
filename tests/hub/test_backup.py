"""Backup and restore of a PostgreSQL hub store as the README's operations section does it:
`pg_dump` of a store a hub wrote real audit events and signed checkpoints to, `pg_restore`
into a fresh database, and `mash-hub audit verify` (the CLI, with the data folder's
checkpoint files and public key) passing on the copy, then naming an event edited in it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.hub import read, walk_contact
from hub.auth import devissuer
from hub.demo.stack import running_hub
from hub.settings import Settings

from ..conftest import PostgresDatabases


def tool(name: str) -> str:
    """A PostgreSQL client program; missing is a failure (the README's recipe needs it)."""
    path = shutil.which(name)
    assert path, f"{name} is not installed (PostgreSQL client programs, e.g. postgresql-client)"
    return path


def libpq(url: str) -> str:
    """The URL as the PostgreSQL programs take it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def mash_hub(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MASH_DATA_DIR": str(data_dir), "MASH_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def operate(base: str, token: str, reads: int) -> None:
    """The showcase walk (search, contact, research, consent) and `reads` record reads."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        variables = await walk_contact(client)
        for _ in range(reads):
            await read(client, variables)


async def fetch(url: str, query: str) -> Any:
    conn = await asyncpg.connect(libpq(url))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def tamper(url: str, seq: int) -> str:
    """A superuser's edit of one event (the append-only triggers out of the way)."""
    conn = await asyncpg.connect(libpq(url))
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "UPDATE audit_events SET purpose = 'SAR_RESPONSE' WHERE seq = $1", seq
            )
        return str(await conn.fetchval("SELECT event_id FROM audit_events WHERE seq = $1", seq))
    finally:
        await conn.close()


def test_a_dumped_and_restored_store_verifies_and_a_tampered_event_is_named(
    source_config: dict[str, Any],
    postgres_url: str,
    postgres_databases: PostgresDatabases,
    tmp_path: Path,
) -> None:
    pg_dump, pg_restore = tool("pg_dump"), tool("pg_restore")
    data_dir = tmp_path / "hub"
    settings = Settings(
        data_dir=data_dir, database_url=postgres_url, sources=source_config, dev_issuer=True
    )
    devissuer.ensure_keys(data_dir)
    token = devissuer.mint(data_dir, "mash_social_worker")

    # given a store a hub wrote through its API (its sequencer signs on the way out)
    with running_hub(settings) as base:
        asyncio.run(operate(base, token, reads=3))
    events = asyncio.run(fetch(postgres_url, "SELECT count(*) FROM audit_events"))
    assert events >= 7  # search, create, research, consent, three reads
    checkpoint_files = list((data_dir / "audit-checkpoints").glob("audit-*.jsonl"))
    assert len(checkpoint_files) == 1 and checkpoint_files[0].read_text().strip()

    # when it is dumped and restored into a fresh database
    dump = tmp_path / "hub.dump"
    subprocess.run(
        [pg_dump, "--format=custom", "--file", str(dump), libpq(postgres_url)],
        check=True,
        timeout=120,
    )
    restored = postgres_databases.create()
    try:
        subprocess.run(
            [pg_restore, "--exit-on-error", "--no-owner", "--dbname", restored, str(dump)],
            check=True,
            timeout=120,
        )

        # then the copy verifies against the checkpoints signed for the original
        result = mash_hub(data_dir, restored, "audit", "verify")
        assert result.returncode == 0, result.stderr
        assert f"audit log intact: {events} events chained" in result.stdout
        assert "0 after the last checkpoint, 0 not yet sequenced" in result.stdout

        # and a hub serving the copy carries on the same chain
        with running_hub(settings.model_copy(update={"database_url": restored})) as base:
            asyncio.run(operate(base, token, reads=1))
        result = mash_hub(data_dir, restored, "audit", "verify")
        assert result.returncode == 0, result.stderr
        assert f"audit log intact: {events + 5} events chained" in result.stdout

        # and an event edited in the copy is named
        event_id = asyncio.run(tamper(restored, seq=3))
        result = mash_hub(data_dir, restored, "audit", "verify")
        assert result.returncode == 1
        assert f"seq 3 (event_id {event_id})" in result.stderr, result.stderr
    finally:
        postgres_databases.drop(restored)


def test_a_restore_older_than_the_checkpoints_names_the_first_lost_event(
    source_config: dict[str, Any],
    postgres_url: str,
    postgres_databases: PostgresDatabases,
    tmp_path: Path,
) -> None:
    pg_dump, pg_restore = tool("pg_dump"), tool("pg_restore")
    data_dir = tmp_path / "hub"
    settings = Settings(
        data_dir=data_dir, database_url=postgres_url, sources=source_config, dev_issuer=True
    )
    devissuer.ensure_keys(data_dir)
    token = devissuer.mint(data_dir, "mash_social_worker")
    with running_hub(settings) as base:
        asyncio.run(operate(base, token, reads=1))
    # the backup: the dump and, with it, a copy of the checkpoint folder
    dump = tmp_path / "hub.dump"
    subprocess.run(
        [pg_dump, "--format=custom", "--file", str(dump), libpq(postgres_url)],
        check=True,
        timeout=120,
    )
    backed_up = tmp_path / "checkpoints-at-backup"
    shutil.copytree(data_dir / "audit-checkpoints", backed_up)
    dumped = asyncio.run(fetch(postgres_url, "SELECT max(seq) FROM audit_events"))
    # the hub goes on, signing events the dump does not hold
    with running_hub(settings) as base:
        asyncio.run(operate(base, token, reads=1))

    restored = postgres_databases.create()
    try:
        subprocess.run(
            [pg_restore, "--exit-on-error", "--no-owner", "--dbname", restored, str(dump)],
            check=True,
            timeout=120,
        )
        result = mash_hub(data_dir, restored, "audit", "verify")
        assert result.returncode == 1
        # the events signed after the dump are lost with the restore, and verify says so
        lost = f"seq {dumped + 1}: signed in a checkpoint but gone from the log"
        assert lost in result.stderr, result.stderr
        # against the checkpoints backed up with the dump, the copy is intact
        result = subprocess.run(
            [sys.executable, "-m", "hub.cli", "audit", "verify"],
            env={
                **os.environ,
                "MASH_DATA_DIR": str(data_dir),
                "MASH_DATABASE_URL": restored,
                "MASH_AUDIT_CHECKPOINT_DIR": str(backed_up),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    finally:
        postgres_databases.drop(restored)
