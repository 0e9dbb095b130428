"""Fixtures shared by the whole test suite.

PostgreSQL: `postgres_url` yields the URL of a throwaway database on a real server
(`postgresql://user@host:port/mash_test_<random>`), dropped afterwards. The server is the one
named by MASH_TEST_DATABASE_URL (its database is used only to CREATE/DROP the throwaway one),
else postgresql://postgres@127.0.0.1:5432/postgres. When the server is unreachable the test is
skipped, or fails when MASH_REQUIRE_POSTGRES=1 (as in CI).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _run(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to completion in a fresh loop on a worker thread (safe whether or not
    the calling thread has an event loop)."""
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["result"] = asyncio.run(coro_fn())
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def postgres_server_url() -> URL:
    """The maintenance URL of the test PostgreSQL server (plain `postgresql` driver name)."""
    raw = os.environ.get("MASH_TEST_DATABASE_URL") or DEFAULT_POSTGRES_SERVER
    url = make_url(raw).set(drivername="postgresql")
    if not url.database:
        url = url.set(database="postgres")
    return url


def _dsn(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL test server unreachable ({reason})"
    if os.environ.get("MASH_REQUIRE_POSTGRES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class PostgresDatabases:
    """Creates throwaway databases on the test server and drops them on `drop_all()`."""

    def __init__(self, server: URL) -> None:
        self.server = server
        self.created: list[str] = []

    def create(self) -> str:
        import asyncpg

        name = f"mash_test_{uuid.uuid4().hex[:12]}"

        async def create() -> None:
            conn = await asyncpg.connect(_dsn(self.server), timeout=5)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        try:
            _run(create)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            _unreachable(type(exc).__name__)
        self.created.append(name)
        return _dsn(self.server.set(database=name))

    def drop(self, url: str) -> None:
        import asyncpg

        name = make_url(url).database

        async def drop() -> None:
            conn = await asyncpg.connect(_dsn(self.server), timeout=5)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        try:
            _run(drop)
        finally:
            if name in self.created:
                self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(_dsn(self.server.set(database=name)))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Session-wide factory of throwaway PostgreSQL databases (for module/session fixtures)."""
    factory = PostgresDatabases(postgres_server_url())
    yield factory
    factory.drop_all()


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test: `postgresql://.../mash_test_<hex>`."""
    url = postgres_databases.create()
    yield url
    postgres_databases.drop(url)
