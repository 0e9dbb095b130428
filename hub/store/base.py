"""The declarative base every domain's tables derive from, and the column types they share.

Each domain owns its tables in its own `models` module (hub/identity/models.py, ...);
`hub.store.metadata` gathers them for the migrations.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


# The key of an append-only table (audit events, consent records, ...): SQLite only
# autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SEQ_PK = BigInteger().with_variant(Integer(), "sqlite")
