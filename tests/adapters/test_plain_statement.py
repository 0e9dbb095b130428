"""PlainStatement: a statement SQLAlchemy compiles once and plain sqlite3 runs must read and
write exactly what SQLAlchemy's own execution does (the SQLite sources, the store's read
path and the audit writer rely on it)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from adapters.sql import PlainStatement

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("born", sa.Date),
    sa.Column("seen_at", sa.DateTime),
    sa.Column("tags", sa.JSON, default=list),
    sa.Column("flag", sa.Boolean),
)
ROWS: list[dict[str, Any]] = [
    {
        "id": i,
        "name": f"n{i}",
        "born": date(2016, 3, i),
        "seen_at": datetime(2026, 1, i, 9, 30, 0 if i % 2 else 15, 0 if i % 3 else 123),
        "tags": [f"t{i}", {"k": i}],
        "flag": bool(i % 2),
    }
    for i in range(1, 8)
]
SELECTS = {
    "expanding ids, a date and a limit": (
        sa.select(things)
        .where(
            things.c.id.in_(sa.bindparam("ids", expanding=True)),
            things.c.born >= sa.bindparam("since"),
        )
        .order_by(things.c.id)
        .limit(3)
    ),
    "a time and a flag": sa.select(things.c.name.label("called"), things.c.tags).where(
        things.c.seen_at > sa.bindparam("after"), things.c.flag == sa.bindparam("flag")
    ),
}
PARAMS = [
    {"ids": [1, 2, 5, 6], "since": date(2016, 3, 2), "after": datetime(2026, 1, 2), "flag": True},
    {"ids": [7], "since": date(2016, 3, 1), "after": datetime(2026, 1, 4, 9, 30), "flag": False},
    {"ids": [], "since": date(2016, 3, 1), "after": datetime(2026, 1, 1), "flag": True},
]


def _engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'things.db'}")
    metadata.create_all(engine)
    return engine


def test_reads_what_sqlalchemy_reads(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.begin() as conn:
        conn.execute(sa.insert(things), ROWS)
    raw = sqlite3.connect(tmp_path / "things.db")
    try:
        for label, statement in SELECTS.items():
            plain = PlainStatement(statement, sqlite.dialect())
            for params in PARAMS:  # the same statement, lists of other lengths
                wanted = {k: v for k, v in params.items() if k in plain.compiled.binds}
                with engine.connect() as conn:
                    expected = [dict(r) for r in conn.execute(statement, wanted).mappings()]
                assert plain.rows(raw, wanted) == expected, (label, params)
            assert any(plain.rows(raw, {k: v for k, v in p.items()}) for p in PARAMS), label
    finally:
        raw.close()
        engine.dispose()


def test_writes_what_sqlalchemy_writes_defaults_included(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    raw = sqlite3.connect(tmp_path / "things.db")
    try:
        given = {
            "id": 1,
            "name": "a",
            "born": date(2016, 3, 14),
            "seen_at": datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC).replace(tzinfo=None),
            "flag": True,
        }
        # what the audit writer does: fill the column defaults, then bind
        plain = PlainStatement(sa.insert(things), sqlite.dialect(), [*given, "tags"])
        raw.execute(*plain.bound({**given, "tags": []}))
        raw.commit()
        with engine.begin() as conn:
            conn.execute(sa.insert(things), {**given, "id": 2})
            rows = [
                dict(r) for r in conn.execute(sa.select(things).order_by(things.c.id)).mappings()
            ]
            stored = conn.exec_driver_sql("SELECT born, seen_at, tags, flag FROM things").all()
        assert rows[0] | {"id": 2} == rows[1]
        assert rows[0]["tags"] == [] and rows[0]["seen_at"] == given["seen_at"]
        assert stored[0] == stored[1], "the same text in the file"
    finally:
        raw.close()
        engine.dispose()
