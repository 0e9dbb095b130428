"""The hub store's write discipline."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from hub.store import Store, Subject, migrate_async


def subject() -> Subject:
    key = uuid.uuid4().hex
    return Subject(
        id=str(uuid.uuid4()),
        identity_key=key,
        demographic_key=key,
        postcodes=[],
        created_at=datetime.now(UTC),
    )


async def test_sqlite_writers_in_one_process_take_turns_instead_of_failing(
    tmp_path: Path,
) -> None:
    # SQLite has one writer at a time; a second one waits only as long as its busy timeout
    # and then fails "database is locked" — which for the audit writer means a 503. With no
    # busy wait at all, only turn-taking keeps three overlapping writers from failing.
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    await migrate_async(url)
    store = Store(url)

    def no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    event.listen(store.engine.sync_engine, "connect", no_busy_wait)

    async def write_slowly() -> None:
        async with store.writing() as session, session.begin():
            session.add(subject())
            await session.flush()  # holds the write lock from here to commit
            await asyncio.sleep(0.05)

    await asyncio.gather(write_slowly(), write_slowly(), write_slowly())
    async with store.sessions() as session:
        assert len((await session.execute(select(Subject))).scalars().all()) == 3
    await store.aclose()
