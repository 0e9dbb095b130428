"""The declarative base every domain's tables derive from, and the column types they share.

Each domain owns its tables in its own `models` module (hub/identity/models.py, ...);
`hub.store.metadata` gathers them for the migrations.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self, cast

from sqlalchemy import JSON, BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


# The key of an append-only table (audit events, consent records, ...): SQLite only
# autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SEQ_PK = BigInteger().with_variant(Integer(), "sqlite")


class RowValue:
    """A frozen dataclass a service hands on in place of an ORM row (the schema never sees
    the row): `of(row)` copies the row's attributes named as the class's fields."""

    @classmethod
    def of(cls, row: Any) -> Self:
        names = (f.name for f in dataclasses.fields(cast(Any, cls)))
        return cls(**{name: getattr(row, name) for name in names})
