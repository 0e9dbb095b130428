"""A bundle: several small queries answered by one statement, one round-trip to the store.

Each query becomes one column of a single-row SELECT, holding its rows as a JSON array of
objects (SQLite's `json_group_array(json_object(...))`, PostgreSQL's
`json_agg(json_build_object(...))`). `Bundle.fetch` returns {name: list of dicts};
`row_of` turns a dict back into a (detached) ORM row of a mapped class, with its dates and
times as the ORM would have handed them back on that store.

Rows come back in no guaranteed order: a caller that needs one sorts them (each query's
LIMIT applies in its own ORDER BY, inside the statement).

A bundle is built once per shape and store kind (`prepared`): its conditions compare with
`bindparam`s whose values `fetch` takes, so a read neither rebuilds the statement nor makes
SQLAlchemy recompile it. On an SQLite store's file, a session that has written nothing has
`fetch` read the file through plain sqlite3 (`hub.store.engine.FileReads`), not the session.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    FromClause,
    Select,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from .engine import FILE_READS

M = TypeVar("M", bound=DeclarativeBase)
Columns = Mapping[str, ColumnElement[Any] | QueryableAttribute[Any]]


class Bundle:
    """Queries gathered for one statement on one kind of store."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.queries: dict[str, ColumnElement[Any]] = {}
        self._statement: Select[Any] | None = None

    def add(
        self,
        name: str,
        columns: Columns,
        *where: ColumnElement[bool],
        from_: FromClause | None = None,
        order_by: tuple[Any, ...] = (),
        limit: int | None = None,
    ) -> None:
        """Ask for the rows of `columns` (a name for each) that meet `where`."""
        inner = select(*(c.label(k) for k, c in columns.items()))
        if from_ is not None:
            inner = inner.select_from(from_)
        inner_sq = inner.where(*where).order_by(*order_by).limit(limit).subquery()
        pairs: list[Any] = []
        for key, column in columns.items():
            assert key.isidentifier()  # a literal in the statement
            value: Any = inner_sq.c[key]
            if isinstance(column.type, JSON) and not self.postgres:
                value = func.json(value)  # SQLite keeps JSON as text: embed it as JSON
            pairs += [literal_column(f"'{key}'"), value]
        obj = func.json_build_object(*pairs) if self.postgres else func.json_object(*pairs)
        agg = func.json_agg(obj) if self.postgres else func.json_group_array(obj)
        self.queries[name] = select(agg).select_from(inner_sq).scalar_subquery()

    async def fetch(self, session: AsyncSession, **params: Any) -> dict[str, list[dict[str, Any]]]:
        """Every query's rows, from one statement (none if nothing was asked); `params` are
        the values of the bundle's bound parameters."""
        if not self.queries:
            return {}
        if self._statement is None:
            columns = (type_coerce(q, JSON).label(n) for n, q in self.queries.items())
            self._statement = select(*columns)
        # An SQLite file, and nothing this session has written (or holds to write) to miss.
        untouched = not (
            session.in_transaction() or session.new or session.dirty or session.deleted
        )
        reads = FILE_READS.get(session.bind) if untouched else None  # type: ignore[arg-type]
        if reads is not None:
            row: Any = await reads.json_row(self._statement, params)
        else:
            row = (await session.execute(self._statement, params)).one()
        return {name: list(value or []) for name, value in zip(self.queries, row, strict=True)}


_PREPARED: dict[tuple[Hashable, bool], Bundle] = {}


def prepared(session: AsyncSession, shape: Hashable, build: Callable[[Bundle], None]) -> Bundle:
    """The bundle `build` fills, built once per `shape` (a key naming what `build` adds) and
    kind of store. `build` must add the same queries whenever it is given the same shape,
    with every value a `bindparam`."""
    assert session.bind is not None
    postgres = session.bind.dialect.name == "postgresql"
    bundle = _PREPARED.get((shape, postgres))
    if bundle is None:
        bundle = Bundle(postgres)
        build(bundle)
        _PREPARED[(shape, postgres)] = bundle
    return bundle


def when(value: Any) -> datetime | None:
    """A timestamp from JSON: aware in UTC as PostgreSQL hands them back, naive (stored as
    UTC) as SQLite does."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed


def row_of(model: type[M], data: Mapping[str, Any]) -> M:
    """A detached row of `model` from a bundle's dict of its columns."""
    values: dict[str, Any] = {}
    for column in model.__table__.columns:
        value = data.get(column.key)
        if value is not None and isinstance(column.type, DateTime):
            value = when(value)
        elif value is not None and isinstance(column.type, Date):
            value = date.fromisoformat(str(value))
        values[column.key] = value
    return model(**values)


def columns_of(model: type[DeclarativeBase]) -> dict[str, ColumnElement[Any]]:
    """Every column of a mapped class, by attribute name, for `Bundle.add`."""
    return {c.key: c for c in model.__table__.columns}
