"""What the SQL adapters (police, early help) share: configuration, the engine and one
connection per adapter call, error translation, the indexed candidate search and the
person-row mapping.

Candidate search is a UNION of indexed lookups, one per key the query gives (NHS number; date
of birth; swapped day and month with a family key; family key, with the date of birth when
given; postcode). Each branch is a plain index search on both SQLite and PostgreSQL; an OR
across columns, a LIKE '%…' or an IN-subquery inside an OR would let the planner fall back
to scanning every person.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Self, TypeAlias, TypeVar, cast
from urllib.parse import quote

import jellyfish
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler

from .base import (
    Item,
    Labels,
    PersonQuery,
    Relation,
    Source,
    SourceDeclaration,
    SourceError,
    SourceHealth,
    SourceMisconfigured,
    SourcePerson,
    SourceResponseInvalid,
    SourceTimedOut,
    SourceUnavailable,
    config_value,
    name_parts,
    swapped_date,
)

DEFAULT_TIMEOUT_S = 10.0
POOL_SIZE = 3
T = TypeVar("T")
DB_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.SQLAlchemyError,
    sqlite3.Error,
    OSError,
    TimeoutError,
)
# A row as the adapters read it: by column name, values typed as SQLAlchemy would hand them.
Row: TypeAlias = Mapping[str, Any]

_ASYNC_DRIVERS = (
    ("sqlite://", "sqlite+aiosqlite://"),
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("postgresql+psycopg://", "postgresql+asyncpg://"),
    ("postgresql+psycopg2://", "postgresql+asyncpg://"),
)
# Exception class names (anywhere in the cause chain) that mean "fix the configuration".
_MISCONFIGURED = (
    "invalidpassword",
    "invalidauthorizationspecification",  # unknown role
    "invalidcatalogname",  # unknown database
    "insufficientprivilege",
    "undefinedtable",
    "undefinedcolumn",
)
_MISCONFIGURED_TEXT = ("no such table", "no such column", "unable to open database file")


def family_keys(family_name: str | None) -> list[str]:
    """Metaphone keys of each part of a family name ("Thompson-Reid" -> two keys), so a
    hyphenated, double-barrelled or re-ordered surname is found by any of its parts."""
    plain = re.sub(r"['.’]", "", family_name or "")
    parts = [p for p in re.split(r"[\s\-]+", plain) if p.isalpha()]
    return list(dict.fromkeys(k for p in parts if (k := jellyfish.metaphone(p))))


def async_url(url: str) -> str:
    """Turn a sync-style SQLAlchemy URL into its async-driver form."""
    for sync, async_ in _ASYNC_DRIVERS:
        if url.startswith(sync):
            return async_ + url[len(sync) :]
    return url


def make_engine(url: str, timeout_s: float | None) -> PlainSqlite | AsyncEngine:
    """A small pooled engine that never logs statement parameters (they are search keys).

    SQLite gets `PlainSqlite` (the standard library's driver, blocking): `SqlSource.run`
    hands it one worker thread per adapter call, where aiosqlite would hop to its thread and
    back for every step of every statement. Other databases get an async engine (asyncpg:
    no thread at all).

    Pooled connections are not pinged before use: a ping is a round trip on every read to
    guard against the rare restart, which `SqlSource.run` handles by retrying once."""
    try:
        parsed = make_url(async_url(url))
    except (sa_exc.ArgumentError, ValueError):
        raise SourceMisconfigured("invalid database URL for source") from None
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"hide_parameters": True}
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                raise SourceMisconfigured("a SQLite source needs a database file")
            return PlainSqlite(parsed.database, timeout_s)
        if parsed.drivername == "postgresql+asyncpg":
            if timeout_s:
                connect_args = {"timeout": timeout_s, "command_timeout": timeout_s}
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
        return create_async_engine(parsed, connect_args=connect_args, **kwargs)
    except (sa_exc.ArgumentError, ImportError, ValueError):
        raise SourceMisconfigured("invalid database URL for source") from None


def translate_db_error(exc: BaseException, source_name: str) -> SourceError:
    """Map a driver/SQLAlchemy failure to what the caller should do. The message names only
    exception classes: driver text can quote statements and values."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 8:
        chain.append(seen)
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    names = " ".join(c.__name__.lower() for e in chain for c in type(e).__mro__)
    text = " ".join(str(e).lower() for e in chain)
    kind = type(chain[-1]).__name__
    if any(k in names for k in _MISCONFIGURED) or any(t in text for t in _MISCONFIGURED_TEXT):
        return SourceMisconfigured(f"{source_name} database refused or lacks the schema ({kind})")
    if "timeout" in names:
        return SourceTimedOut(f"{source_name} database did not answer in time ({kind})")
    if "protocolerror" in names:
        return SourceResponseInvalid(f"{source_name} database sent an unreadable reply ({kind})")
    return SourceUnavailable(f"{source_name} database unavailable ({kind})")


def sql_settings(config: Mapping[str, Any]) -> tuple[str, float]:
    """`url` (required, a SQLAlchemy URL; sync-style accepted) and `timeout_s` (optional)."""
    url = config_value(config, "url")
    if not isinstance(url, str) or not url:
        raise SourceMisconfigured("adapter configuration key 'url' must be a string")
    try:
        timeout_s = float(config.get("timeout_s") or DEFAULT_TIMEOUT_S)
    except (TypeError, ValueError):
        raise SourceMisconfigured(
            "adapter configuration key 'timeout_s' must be a number"
        ) from None
    return url, timeout_s


def canonical_postcode(value: str) -> str:
    raw = "".join(value.split()).upper()
    return f"{raw[:-3]} {raw[-3:]}" if len(raw) > 3 else raw


def normalise_sex(value: str | None) -> str | None:
    if not value:
        return None
    return {
        "f": "female",
        "female": "female",
        "m": "male",
        "male": "male",
        "o": "other",
        "other": "other",
    }.get(value.strip().lower(), "unknown")


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def person_tables(metadata: sa.MetaData, prefix: str) -> tuple[sa.Table, sa.Table]:
    """`persons` and `person_name_keys` as every SQL source that `candidate_search` reads
    must have them (hub/demo/PROTOCOL.md), with their indexes named `ix_<prefix>_...`."""
    persons = sa.Table(
        "persons",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column("date_of_birth", sa.Date, nullable=True),
        sa.Column("sex", sa.String(16), nullable=True),
        sa.Column("nhs_number", sa.String(10), nullable=True),
        sa.Column("postcode", sa.String(10), nullable=True),
        sa.Column("address", sa.String(200), nullable=True),
    )
    sa.Index(f"ix_{prefix}_persons_nhs_number", persons.c.nhs_number)
    # Date of birth with the family name: a search by date of birth filters on the name in
    # the index, fetching only the rows it keeps.
    sa.Index(f"ix_{prefix}_persons_date_of_birth", persons.c.date_of_birth, persons.c.family_name)
    sa.Index(f"ix_{prefix}_persons_postcode", persons.c.postcode)
    name_keys = sa.Table(
        "person_name_keys",
        metadata,
        sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("family_key", sa.String(32), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=True),
    )
    sa.Index(
        f"ix_{prefix}_person_name_keys_key_dob", name_keys.c.family_key, name_keys.c.date_of_birth
    )
    sa.Index(f"ix_{prefix}_person_name_keys_person", name_keys.c.person_id)
    return persons, name_keys


def relation_table(metadata: sa.MetaData, prefix: str) -> sa.Table:
    """`relations(person_id, related_id, relation)`: `person_id` is the `relation` (parent,
    child, partner, sibling, half_sibling, twin, carer) of `related_id`, both `persons`."""
    relations = sa.Table(
        "relations",
        metadata,
        sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("related_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
    )
    sa.Index(f"ix_{prefix}_relations_related", relations.c.related_id)
    return relations


def candidate_search(
    persons: sa.Table, name_keys: sa.Table, query: PersonQuery
) -> tuple[sa.Select[Any], dict[str, Any]] | None:
    """Every person matching any key of `query`, by id, as a statement and its parameters;
    None when it gives no key. The statement depends only on which keys are given (and how
    many family-name initials), so each shape is built once and its compiled form reused."""
    params: dict[str, Any] = {}
    if query.nhs_number and (nhs := "".join(query.nhs_number.split())):
        params["nhs"] = nhs
    dob = query.date_of_birth
    initials: list[str] = []
    if dob:
        params["dob"] = dob
        initials = sorted({p[0].lower() for p in name_parts(query.family_name) if p})
        for n, i in enumerate(initials):
            params |= {f"i{n}": f"{i}%", f"i{n}_dash": f"%-{i}%", f"i{n}_space": f"% {i}%"}
    keys = family_keys(query.family_name)
    by_key = None
    if keys:
        swapped = swapped_date(dob) if dob else None
        if dob is None:
            by_key = "any_date"
        elif swapped is not None:  # dob itself is covered above; the key narrows the swap
            by_key = "swapped"
            params["swapped"] = swapped
        if by_key:
            params["keys"] = list(keys)
    postcodes = sorted({canonical_postcode(p) for p in query.postcodes if p and p.strip()})
    if postcodes:
        params["postcodes"] = postcodes
    if not params:
        return None
    shape = (
        "nhs" in params,
        dob is not None,
        len(initials),
        by_key,
        bool(postcodes),
    )
    return _candidate_statement(persons, name_keys, *shape), params


@functools.lru_cache(maxsize=512)
def _candidate_statement(
    persons: sa.Table,
    name_keys: sa.Table,
    nhs: bool,
    dob: bool,
    initials: int,
    by_key: str | None,
    postcodes: bool,
) -> sa.Select[Any]:
    """The union of one branch per key given, with bound parameters (see candidate_search)."""
    branches: list[sa.Select[Any]] = []
    if nhs:
        branches.append(sa.select(persons).where(persons.c.nhs_number == sa.bindparam("nhs")))
    if dob:
        # In a large source a date of birth alone brings back a hundred people; with a family
        # name given, only those whose family name (any part) shares an initial with it: a
        # residual filter on the few rows the date-of-birth index finds, typos kept.
        same_day = sa.select(persons).where(persons.c.date_of_birth == sa.bindparam("dob"))
        if initials:
            family = sa.func.lower(persons.c.family_name)
            same_day = same_day.where(
                sa.or_(
                    *(
                        family.like(sa.bindparam(f"i{n}{suffix}"))
                        for n in range(initials)
                        for suffix in ("", "_dash", "_space")
                    )
                )
            )
        branches.append(same_day)
    if by_key:
        # An IN-subquery, not a join: a person with two matching keys comes back once.
        ids = sa.select(name_keys.c.person_id).where(
            name_keys.c.family_key.in_(sa.bindparam("keys", expanding=True))
        )
        if by_key == "swapped":
            ids = ids.where(name_keys.c.date_of_birth == sa.bindparam("swapped"))
        branches.append(sa.select(persons).where(persons.c.id.in_(ids)))
    if postcodes:
        branches.append(
            sa.select(persons).where(
                persons.c.postcode.in_(sa.bindparam("postcodes", expanding=True))
            )
        )
    found = sa.union(*branches).subquery("candidates")
    return sa.select(found).order_by(found.c.id)


def person_from_row(source: Source, agency: str, row: Row) -> SourcePerson:
    return SourcePerson(
        source=source,
        local_id=str(row["id"]),
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=as_date(row["date_of_birth"]),
        sex=normalise_sex(row["sex"]),
        nhs_number=row["nhs_number"],
        postcode=row["postcode"],
        address=row["address"],
        labels=Labels(agency=agency),
    )


def size_estimate(dialect: str, table: sa.Table) -> sa.Select[Any]:
    """How many rows `table` has, without counting a million of them: the highest rowid on
    SQLite (exact for a table never deleted from), the planner's estimate on PostgreSQL (a
    count only while the table has never been analysed)."""
    if dialect == "sqlite":
        return sa.select(sa.func.max(sa.literal_column("rowid"))).select_from(table)
    if dialect != "postgresql":
        return sa.select(sa.func.count()).select_from(table)
    reltuples: sa.ColumnClause[float] = sa.column("reltuples")
    counted = sa.select(sa.func.count()).select_from(table).scalar_subquery()
    return (
        sa.select(sa.case((reltuples >= 0, sa.cast(reltuples, sa.BigInteger)), else_=counted))
        .select_from(sa.table("pg_class"))
        .where(sa.column("oid") == sa.cast(sa.literal(table.name), postgresql.REGCLASS))
    )


class PlainSqlite:
    """An SQLite source file read through the standard library's `sqlite3`.

    SQLAlchemy builds and compiles each statement (once: the adapters' statements are built
    once per shape) and types its values both ways (its bind and result processors, so a
    row reads as SQLAlchemy's own would); `sqlite3` runs it. Per statement that is a tenth
    of the CPU of a pooled SQLAlchemy connection's execute, the hub's largest cost per
    source statement after the fan-out's HTTP. Connections are kept for reuse (read-only,
    `query_only`), one per concurrent adapter call.
    """

    dialect = sqlite_dialect.dialect()

    def __init__(self, path: str, timeout_s: float | None) -> None:
        self.path = path
        self.timeout_s = timeout_s or DEFAULT_TIMEOUT_S
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._plans: dict[int, tuple[sa.Select[Any], PlainStatement]] = {}

    def checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        uri = f"file:{quote(self.path)}?mode=ro"  # never creates a missing file
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_s, check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
        return conn

    def checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def run(self, work: Callable[[PlainConnection], T]) -> T:
        """`work` on one connection of this file (blocking: call it in a worker thread); a
        connection that failed is closed, not kept."""
        raw = self.checkout()
        try:
            result = work(PlainConnection(self, raw))
        except BaseException:
            raw.close()
            raise
        self.checkin(raw)
        return result

    def plan(self, statement: sa.Select[Any]) -> PlainStatement:
        held = self._plans.get(id(statement))
        if held is None or held[0] is not statement:
            held = (statement, PlainStatement(statement, self.dialect))
            with self._lock:
                self._plans[id(statement)] = held
        return held[1]

    def dispose(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PlainStatement:
    """A statement compiled once by SQLAlchemy for a plain DBAPI (`sqlite3`) to run: each
    call's values typed by the statement's bind processors (dates, times, JSON, booleans,
    expanding IN lists spelled out) and, for a SELECT, each row's by its columns' result
    processors and keyed by their names, as SQLAlchemy's own execution would hand them."""

    def __init__(
        self,
        statement: sa.Select[Any] | sa.Insert,
        dialect: sa.Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
        )
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.binds: dict[str, Any] = {}
        self.expanding: list[str] = []
        # values the statement carries itself (e.g. a LIMIT's)
        self.defaults: dict[str, Any] = {
            name: bind.effective_value for name, bind in compiled.binds.items()
        }
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds[name] = processor
            if bind.expanding:
                self.expanding.append(name)
        # By the lengths of the expanding lists: the SQL and, per placeholder, where its
        # value comes from (a parameter, or an item of a list one) and its processor.
        self._shapes: dict[tuple[int, ...], tuple[str, list[tuple[str, int, Any]]]] = {}
        columns = list(statement.selected_columns) if isinstance(statement, sa.Select) else []
        self.names = [str(c.key) for c in columns]
        self.results = [
            (i, p)
            for i, c in enumerate(columns)
            if (p := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        ]

    def bound(self, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        """The SQL to run for `params` (expanding lists spelled out) and its values."""
        values = dict(params or {})
        shape = tuple(len(values.get(k, self.defaults[k]) or ()) for k in self.expanding)
        held = self._shapes.get(shape)
        if held is None:
            held = self._shapes[shape] = self._spell(values)
        sql, slots = held
        args = []
        for name, index, process in slots:
            value: Any = values[name] if name in values else self.defaults[name]
            if index >= 0:
                value = value[index]
            args.append(value if process is None else process(value))
        return sql, args

    def _spell(self, values: dict[str, Any]) -> tuple[str, list[tuple[str, int, Any]]]:
        state = self.compiled.construct_expanded_state(values)
        item_of = {
            spelled: (name, i)
            for name, names in (state.parameter_expansion or {}).items()
            for i, spelled in enumerate(names)
        }
        slots = []
        for key in state.positiontup or ():
            name, index = item_of.get(key, (key, -1))
            slots.append((name, index, self.binds.get(name)))
        return state.statement, slots

    def rows(self, conn: sqlite3.Connection, params: Mapping[str, Any] | None) -> list[Row]:
        found = conn.execute(*self.bound(params)).fetchall()
        names, results = self.names, self.results
        out: list[Row] = []
        for raw in found:
            row = list(raw)
            for i, process in results:
                row[i] = process(row[i])
            out.append(dict(zip(names, row, strict=True)))
        return out


class PlainConnection:
    """One `sqlite3` connection of a PlainSqlite source, for one adapter call."""

    def __init__(self, db: PlainSqlite, conn: sqlite3.Connection) -> None:
        self.db = db
        self.conn = conn


# What an adapter call's statements run on: SQLAlchemy's connection (PostgreSQL) or plain
# sqlite3 (SQLite); `fetch` takes either.
Connection: TypeAlias = sa.Connection | PlainConnection


def fetch(
    conn: Connection, statement: sa.Select[Any], params: Mapping[str, Any] | None = None
) -> list[Row]:
    if isinstance(conn, PlainConnection):
        return conn.db.plan(statement).rows(conn.conn, params)
    # RowMapping is a Mapping by column name (keys typed Any upstream)
    return cast("list[Row]", list(conn.execute(statement, params).mappings()))


def by_person(statement: sa.Select[Any], column: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """`statement` for a batch of person ids, the expanding parameter `ids`: built once (at
    import, or once per table), so a read neither rebuilds nor re-keys it."""
    return statement.where(column.in_(sa.bindparam("ids", expanding=True)))


def fetch_by_person(conn: Connection, statement: sa.Select[Any], ids: Sequence[str]) -> list[Row]:
    """Rows of `statement` (from `by_person`) for the given person ids, in batches small
    enough for any driver's parameter limit."""
    rows: list[Row] = []
    for start in range(0, len(ids), 500):
        rows += fetch(conn, statement, {"ids": list(ids[start : start + 500])})
    return rows


@functools.cache
def _persons_by_id(persons: sa.Table) -> sa.Select[Any]:
    return by_person(sa.select(persons), persons.c.id)


@functools.cache
def _relations_of(persons: sa.Table, relations: sa.Table) -> sa.Select[Any]:
    statement = sa.select(
        relations.c.related_id.label("asked_id"), relations.c.relation, persons
    ).join(persons, persons.c.id == relations.c.person_id)
    return by_person(statement, relations.c.related_id)


class SqlSource:
    """One agency database: one connection per adapter call, parameterised statements only,
    and every driver failure translated into a SourceError.

    An adapter call gives `run` one plain function of a connection that issues all of its
    statements: on SQLite it runs in one worker thread on one plain `sqlite3` connection,
    elsewhere on one async connection through `run_sync`."""

    def __init__(self, name: str, url: str, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> None:
        self.name = name
        self.engine = make_engine(url, timeout_s)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """`work` on one connection; a SourceError for any database failure."""
        try:
            try:
                return await self._run(work)
            except sa_exc.DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
            # The database dropped a pooled connection (restarted, failed over): SQLAlchemy
            # has invalidated the pool, so one more try gets a fresh connection. Reads only,
            # so a retry is always safe; still down, it fails again and is translated below.
            return await self._run(work)
        except DB_ERRORS as exc:
            raise translate_db_error(exc, self.name) from None

    async def _run(self, work: Callable[[Connection], T]) -> T:
        engine = self.engine
        if isinstance(engine, AsyncEngine):
            async with engine.connect() as conn:
                return await conn.run_sync(work)

        # Cancelling the await (the caller's deadline) leaves the thread to finish its few
        # indexed lookups; the connect timeout bounds a wait on a locked file.
        return await asyncio.to_thread(engine.run, work)

    async def search(self, persons: sa.Table, name_keys: sa.Table, query: PersonQuery) -> list[Row]:
        found = candidate_search(persons, name_keys, query)
        if found is None:
            return []
        statement, params = found
        return await self.run(lambda c: fetch(c, statement, params))

    async def persons_by_id(self, persons: sa.Table, ids: Sequence[str]) -> list[Row]:
        wanted = sorted(set(ids))
        return await self.run(lambda c: fetch_by_person(c, _persons_by_id(persons), wanted))

    async def relations(
        self, persons: sa.Table, relations: sa.Table, ids: Sequence[str]
    ) -> list[tuple[str, str, Row]]:
        """(person asked about, relation, the related person's row) for the given ids."""
        statement = _relations_of(persons, relations)
        wanted = sorted(set(ids))
        rows = await self.run(lambda c: fetch_by_person(c, statement, wanted))
        return [(str(r["asked_id"]), str(r["relation"]), r) for r in rows]

    async def probe(self, persons: sa.Table) -> SourceHealth:
        """Connect, check the persons table is there and estimate its size cheaply."""
        statement = size_estimate(self.engine.dialect.name, persons)
        rows = await self.run(lambda c: fetch(c, statement))
        value = next(iter(rows[0].values()), None) if rows else None
        return SourceHealth(reachable=True, authenticated=True, record_count=int(value or 0))

    async def aclose(self) -> None:
        if isinstance(self.engine, AsyncEngine):
            await self.engine.dispose()
        else:
            self.engine.dispose()


def newest(date_column: str, *then: str) -> Callable[[Row], Any]:
    """Sort key for item rows: newest first, then by id (and `then`) for a stable order."""
    return lambda r: (
        -(as_date(r[date_column]) or date.min).toordinal(),
        r["id"],
        *(r[c] for c in then),
    )


class PersonDatabase:
    """An agency's SQL database with the shared person tables (`person_tables`, and
    `relation_table` where it records relations): search, fetch by id, relations, probe and
    close are the same for each. A subclass names its source (`source`, `declaration`,
    `what` for messages), its tables, and reads its items in `read_items`: one plain
    function of one connection that issues every statement (see `SqlSource.run`).

    Config: {"url": SQLAlchemy URL (sync-style `sqlite:///...` / `postgresql://...` accepted
    and converted to the async driver), "timeout_s": connect/command timeout, optional}.
    """

    source: ClassVar[Source]
    declaration: ClassVar[SourceDeclaration]
    what: ClassVar[str]
    persons: ClassVar[sa.Table]
    name_keys: ClassVar[sa.Table]
    relation_table: ClassVar[sa.Table | None] = None

    def __init__(self, url: str, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> None:
        self._db = SqlSource(self.what, url, timeout_s)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(*sql_settings(config))

    def read_items(self, conn: Connection, ids: Sequence[str]) -> list[Item]:
        """Every item of the given persons (sorted, distinct ids), read on `conn`."""
        raise NotImplementedError

    def _person(self, row: Row) -> SourcePerson:
        return person_from_row(self.source, self.declaration.agency, row)

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        rows = await self._db.search(self.persons, self.name_keys, query)
        return [self._person(r) for r in rows]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        return await self._db.run(lambda conn: self.read_items(conn, ids)) if ids else []

    async def relations(self, person_ids: Sequence[str]) -> Sequence[Relation]:
        if self.relation_table is None:
            return []
        rows = await self._db.relations(self.persons, self.relation_table, person_ids)
        return [Relation(i, rel, self._person(r)) for i, rel, r in rows]

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        rows = await self._db.persons_by_id(self.persons, person_ids)
        return [self._person(r) for r in rows]

    async def probe(self) -> SourceHealth:
        return await self._db.probe(self.persons)

    async def aclose(self) -> None:
        await self._db.aclose()
