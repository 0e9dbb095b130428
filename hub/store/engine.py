"""The hub store's engine: its connections and sessions (SQLAlchemy 2, async), and the
migrations that bring its schema up to date.

SQLite in the data folder by default, PostgreSQL in production. The tables belong to the
domains (hub/<domain>/models.py, gathered in `hub.store.metadata`). Schema changes go
through the Alembic migrations in `hub/store/migrations`; `migrate()` applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from adapters.sql import PlainSqlite

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


BUSY_TIMEOUT_S = 10.0  # how long a statement waits for another writer's turn


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=FULL")  # an audit event committed is on disk
    cursor.close()


def async_url(url: str) -> str:
    """Map a plain SQLAlchemy URL to its async driver (aiosqlite, asyncpg)."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


class FileReads:
    """Reads of an SQLite store's file through plain `sqlite3`, for the read path's bundles
    (`hub.store.bundle`): one hop to a worker thread per statement, where the async engine
    makes four through aiosqlite and SQLAlchemy's session adds its own work (about 0.6 ms of
    CPU per statement against 0.05). The file is read as an SQLite source's is
    (`adapters.sql.PlainSqlite`: read-only connections kept for reuse, each statement
    compiled and typed by SQLAlchemy once); WAL lets them read beside the one writer."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = PlainSqlite(path, BUSY_TIMEOUT_S)

    async def json_row(self, statement: Select[Any], params: Mapping[str, Any]) -> list[Any]:
        """The one row of `statement`, every column JSON text decoded."""
        plan = self.db.plan(statement)
        rows = await asyncio.to_thread(self.db.run, lambda c: plan.rows(c.conn, params))
        return list(rows[0].values())

    def close(self) -> None:
        self.db.dispose()


# The file reads of each open SQLite store, by its engine (found from a session's bind).
FILE_READS: dict[AsyncEngine, FileReads] = {}


class Store:
    """Owns the hub store's engine and session factory.

    SQLite allows one writer at a time and answers a second with "database is locked"
    rather than waiting when a reading transaction wants to write; so on SQLite this
    process's writes take turns (`writing`), and WAL lets reads go on beside them.
    """

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.sqlite = self.url.startswith("sqlite")
        if self.sqlite:
            Path(make_url(self.url).database or "").parent.mkdir(parents=True, exist_ok=True)
        # A server can drop pooled connections (restart, failover): check each before use.
        # A file cannot, and on SQLite each check is one more trip to aiosqlite's thread.
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=not self.sqlite)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_turn = asyncio.Lock()
        if self.sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            database = make_url(self.url).database
            if database and database != ":memory:" and not database.startswith("file:"):
                FILE_READS[self.engine] = FileReads(database)

    def file_writer(self) -> sqlite3.Connection | None:
        """A plain `sqlite3` connection to an SQLite store's file for a writer of its own
        (the audit writer), set up as the engine's are; None for PostgreSQL or a store in
        memory. Its writes take the same turns as the sessions' (`write_turn`)."""
        reads = FILE_READS.get(self.engine)
        if reads is None:
            return None
        conn = sqlite3.connect(reads.path, check_same_thread=False, isolation_level=None)
        _sqlite_pragmas(conn, None)
        return conn

    @contextlib.asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """This process's turn to write an SQLite store (nothing to wait for on PostgreSQL)."""
        if not self.sqlite:
            yield
            return
        async with self._write_turn:
            yield

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a read-modify-write transaction; the caller commits."""
        async with contextlib.AsyncExitStack() as stack:
            if self.sqlite:
                await stack.enter_async_context(self._write_turn)
            yield await stack.enter_async_context(self.sessions())

    async def aclose(self) -> None:
        reads = FILE_READS.pop(self.engine, None)
        if reads is not None:
            reads.close()
        await self.engine.dispose()


# PostgreSQL advisory lock held while migrating (hub.audit.events and hub.audit.sequencer
# hold others).
MIGRATE_LOCK = 0x6D617368_0003


def alembic_config(url: str) -> Config:
    """The Alembic configuration of the hub store's migrations, for `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = async_url(url)
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the store's schema up to `revision`, by default the newest (idempotent)."""
    from alembic import command

    if make_url(url).drivername.startswith("sqlite"):
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def migrate_async(url: str, revision: str = "head") -> None:
    """`migrate` from inside an event loop (Alembic's async env starts its own)."""
    await asyncio.to_thread(migrate, url, revision)
