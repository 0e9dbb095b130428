"""The hub store's write discipline."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, select, text

from hub.contacts.models import Contact
from hub.identity import residents
from hub.identity.models import Subject
from hub.reading.models import WithheldItem
from hub.store.engine import Store, alembic_config, migrate_async


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


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


async def _withheld_columns(store: Store) -> tuple[set[str], set[str]]:
    def look(connection: Any) -> tuple[set[str], set[str]]:
        seen = inspect(connection)
        columns = {c["name"] for c in seen.get_columns("withheld_items")}
        indexes = {str(i["name"]) for i in seen.get_indexes("withheld_items")}
        return columns, indexes

    async with store.engine.connect() as conn:
        return await conn.run_sync(look)


async def test_migration_0006_keeps_earlier_decisions_without_a_contact_and_downgrades(
    empty_url: str,
) -> None:
    # given a store at 0005 holding a decision not to share
    await migrate_async(empty_url, "0005")
    store = Store(empty_url)
    earlier = str(uuid.uuid4())
    async with store.writing() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO withheld_items (id, source, item_id, agency, reason_code, reason,"
                " withheld_by, withheld_at) VALUES (:id, 'POLICE', 'incident-1', 'police',"
                " 'PREJUDICE_INVESTIGATION', 'live operation', 'pc-1', :at)"
            ),
            {"id": earlier, "at": datetime(2026, 1, 14, tzinfo=UTC)},
        )
    assert "contact_id" not in (await _withheld_columns(store))[0]
    await store.aclose()

    # when it is brought to the newest revision
    await migrate_async(empty_url)
    store = Store(empty_url)
    later = WithheldItem(
        id=str(uuid.uuid4()),
        source="HEALTH",
        item_id="encounter-1",
        agency="health",
        reason_code="MORE_DETRIMENTAL_TO_CHILD",
        reason="r",
        withheld_by="hv-1",
        withheld_at=datetime(2026, 1, 15, tzinfo=UTC),
        contact_id=str(uuid.uuid4()),
    )
    async with store.writing() as session, session.begin():
        session.add(later)

    # then the earlier decision is kept with no contact, and a new one stores its contact
    async with store.sessions() as session:
        rows = {r.id: r for r in (await session.execute(select(WithheldItem))).scalars()}
    assert (rows[earlier].item_id, rows[earlier].contact_id) == ("incident-1", None)
    assert rows[later.id].contact_id == later.contact_id
    columns, indexes = await _withheld_columns(store)
    assert "contact_id" in columns and "ix_withheld_items_contact_id" in indexes
    await store.aclose()

    # and going back to 0005 drops the column and its index, keeping both decisions
    await asyncio.to_thread(command.downgrade, alembic_config(empty_url), "0005")
    store = Store(empty_url)
    columns, indexes = await _withheld_columns(store)
    async with store.sessions() as session:
        ids = set((await session.execute(text("SELECT id FROM withheld_items"))).scalars())
    await store.aclose()
    assert "contact_id" not in columns and "ix_withheld_items_contact_id" not in indexes
    assert ids == {earlier, later.id}


def test_hub_processes_starting_together_migrate_one_at_a_time(postgres_url: str) -> None:
    """Each hub process migrates at start-up; several starting at once against one empty
    PostgreSQL store must all succeed and leave it at the newest revision."""
    migrate = f"from hub.store.engine import migrate; migrate({postgres_url!r})"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", migrate], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=120)[0].decode(errors="replace") for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs

    async def version() -> str:
        store = Store(postgres_url)
        try:
            async with store.engine.connect() as conn:
                return str(
                    (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
                )
        finally:
            await store.aclose()

    head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
    assert asyncio.run(version()) == head


async def test_migration_0008_clears_old_address_keys_and_adds_household_decisions_and_back(
    empty_url: str,
) -> None:
    before = ScriptDirectory.from_config(alembic_config(empty_url)).get_revision("0008")
    assert before is not None and isinstance(before.down_revision, str)
    # given a store before 0008 whose subject holds an address key of the old form
    await migrate_async(empty_url, before.down_revision)
    store = Store(empty_url)
    subject = str(uuid.uuid4())
    async with store.writing() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO subjects (id, identity_key, demographic_key, postcodes,"
                " address_key, created_at) VALUES (:id, :key, :key, '[]', 'HT42QX|larch close',"
                " :at)"
            ),
            {"id": subject, "key": uuid.uuid4().hex, "at": datetime(2026, 1, 14, tzinfo=UTC)},
        )
    await store.aclose()

    # when it is brought to the newest revision
    await migrate_async(empty_url)
    store = Store(empty_url)
    async with store.sessions() as session:
        row = await session.get(Subject, subject)
    # then the old, street-wide key is gone (filled again, house number and all, when next
    # seen), the subject has a UPRN column, and household decisions can be stored
    assert row is not None and row.address_key is None and row.uprn is None
    decision = await residents.decide(store, subject, subject, "REJECTED", "r", "sw-1")
    assert (await residents.active(store, subject, [subject]))[subject].id == decision.id
    await store.aclose()

    # and going back drops the table and the column, keeping the subject
    await asyncio.to_thread(command.downgrade, alembic_config(empty_url), before.down_revision)
    store = Store(empty_url)

    def look(connection: Any) -> tuple[set[str], set[str]]:
        seen = inspect(connection)
        return set(seen.get_table_names()), {c["name"] for c in seen.get_columns("subjects")}

    async with store.engine.connect() as conn:
        tables, columns = await conn.run_sync(look)
        ids = set((await conn.execute(text("SELECT id FROM subjects"))).scalars())
    await store.aclose()
    assert "household_decisions" not in tables and "uprn" not in columns
    assert ids == {subject}


async def _contact_columns(store: Store) -> tuple[set[str], set[str]]:
    def look(connection: Any) -> tuple[set[str], set[str]]:
        seen = inspect(connection)
        columns = {c["name"] for c in seen.get_columns("contacts")}
        indexes = {str(i["name"]) for i in seen.get_indexes("contacts")}
        return columns, indexes

    async with store.engine.connect() as conn:
        return await conn.run_sync(look)


STRATEGY_COLUMNS = {
    "strategy_held_at",
    "strategy_parents_told",
    "strategy_reason",
    "strategy_recorded_by",
    "strategy_recorded_at",
}


async def test_migration_0007_keeps_earlier_contacts_without_a_strategy_discussion_and_downgrades(
    empty_url: str,
) -> None:
    # given a store at 0006 holding a contact about a child
    await migrate_async(empty_url, "0006")
    store = Store(empty_url)
    earlier, child = str(uuid.uuid4()), str(uuid.uuid4())
    at = datetime(2026, 1, 14, 9, tzinfo=UTC)
    async with store.writing() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO contacts (id, received_at, concern, child_details, referrer_type,"
                " referrer_anonymous, stage, rag, due_at, assigned_staff, assigned_teams,"
                " created_by, updated_at) VALUES (:id, :at, 'a concern', '[]', 'SCHOOL',"
                " false, 'RESEARCH', 'RED', :at, '[]', '[\"mash-team\"]', 'sw-1', :at)"
            ),
            {"id": earlier, "at": at},
        )
        await session.execute(
            text("INSERT INTO contact_subjects (contact_id, subject_id) VALUES (:c, :s)"),
            {"c": earlier, "s": child},
        )
    columns, indexes_before = await _contact_columns(store)
    assert not columns & STRATEGY_COLUMNS
    await store.aclose()

    # when it is brought to the newest revision
    await migrate_async(empty_url)
    store = Store(empty_url)
    async with store.writing() as session, session.begin():
        row = (await session.execute(select(Contact).where(Contact.id == earlier))).scalar_one()
        # then the earlier contact has no strategy discussion, and one can be recorded on it
        assert (row.strategy_held_at, row.strategy_parents_told) == (None, None)
        row.strategy_held_at, row.strategy_parents_told = at, False
        row.strategy_reason, row.strategy_recorded_by, row.strategy_recorded_at = "r", "m-1", at
    async with store.sessions() as session:
        row = (await session.execute(select(Contact).where(Contact.id == earlier))).scalar_one()
    assert (row.strategy_parents_told, row.strategy_recorded_by) == (False, "m-1")
    assert row.strategy_held_at is not None
    assert (await _contact_columns(store))[0] >= STRATEGY_COLUMNS
    await store.aclose()

    # and going back to 0006 drops the columns, keeping the contact, its child and indexes
    await asyncio.to_thread(command.downgrade, alembic_config(empty_url), "0006")
    store = Store(empty_url)
    columns, indexes = await _contact_columns(store)
    async with store.sessions() as session:
        kept = (await session.execute(text("SELECT id, concern FROM contacts"))).all()
        children = (await session.execute(text("SELECT subject_id FROM contact_subjects"))).all()
    await store.aclose()
    assert not columns & STRATEGY_COLUMNS and indexes == indexes_before
    assert [tuple(r) for r in kept] == [(earlier, "a concern")]
    assert [tuple(r) for r in children] == [(child,)]
