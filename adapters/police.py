"""Police records system (POLE-style SQL database): persons, incidents, intelligence.

Config: {"url": SQLAlchemy URL (sync-style `sqlite:///...` / `postgresql://...` accepted and
converted to the async driver), "timeout_s": connect/command timeout, optional}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .base import (
    Item,
    Labels,
    PersonQuery,
    Source,
    SourceError,
    SourceMisconfigured,
    SourcePerson,
    SourceUnavailable,
    config_value,
)

metadata = sa.MetaData()

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
sa.Index("ix_police_persons_nhs_number", persons.c.nhs_number)
sa.Index("ix_police_persons_date_of_birth", persons.c.date_of_birth)
sa.Index("ix_police_persons_family_name_lower", sa.func.lower(persons.c.family_name))
sa.Index("ix_police_persons_postcode", persons.c.postcode)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("dash_risk", sa.String(10), nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("postcode", sa.String(10), nullable=True),
)

person_incident = sa.Table(
    "person_incident",
    metadata,
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), primary_key=True),
    sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),
)
sa.Index("ix_police_person_incident_incident", person_incident.c.incident_id)

intelligence = sa.Table(
    "intelligence",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("source_grade", sa.String(1), nullable=False),
    sa.Column("intelligence_grade", sa.Integer, nullable=False),
    sa.Column("handling_code", sa.String(1), nullable=False),
    sa.Column("investigation_sensitive", sa.Boolean, nullable=False, default=False),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("text", sa.Text, nullable=True),
)
sa.Index("ix_police_intelligence_person", intelligence.c.person_id)

AGENCY = "police"
_INCIDENT_CATEGORIES = frozenset({"criminal_offence"})


# --- helpers shared in spirit with the early-help adapter (kept local: adapters are
# independent modules) ---------------------------------------------------------------------
def async_url(url: str) -> str:
    """Turn a sync-style SQLAlchemy URL into its async-driver form."""
    for sync, async_ in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
    ):
        if url.startswith(sync):
            return async_ + url[len(sync) :]
    return url


def make_engine(url: str, timeout_s: float | None) -> AsyncEngine:
    url = async_url(url)
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if url.startswith("postgresql+asyncpg"):
        if timeout_s:
            connect_args = {"timeout": timeout_s, "command_timeout": timeout_s}
        kwargs.update(pool_size=5, max_overflow=5)
    elif url.startswith("sqlite+aiosqlite") and timeout_s:
        connect_args = {"timeout": timeout_s}
    try:
        return create_async_engine(url, connect_args=connect_args, **kwargs)
    except (sa_exc.ArgumentError, ImportError, ValueError):
        raise SourceMisconfigured("invalid database URL for source") from None


def translate_db_error(exc: BaseException, source_name: str) -> SourceError:
    """Map a driver/SQLAlchemy failure to a SourceError; the message names only classes."""
    names: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(names) < 8:
        names.append(type(seen).__name__)
        seen = getattr(seen, "orig", None) or seen.__cause__
    joined = " ".join(names).lower()
    text = str(exc).lower()
    kind = names[-1]
    if any(k in joined for k in ("password", "authorization", "invalidcatalogname")):
        return SourceMisconfigured(f"{source_name} database rejected the connection ({kind})")
    if (
        any(k in joined for k in ("undefinedtable", "undefinedcolumn"))
        or "no such table" in text
        or "no such column" in text
    ):
        return SourceMisconfigured(f"{source_name} database schema mismatch ({kind})")
    return SourceUnavailable(f"{source_name} database unavailable ({kind})")


DB_ERRORS: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, OSError, TimeoutError)


def normalise_name(value: str) -> list[str]:
    """Lower-case name parts, punctuation removed; 'Thompson-Reid' -> ['thompson-reid',
    'thompson', 'reid']."""
    cleaned = re.sub(r"[^a-z\- ]", "", value.lower()).strip(" -")
    if not cleaned:
        return []
    parts = [p for p in re.split(r"[\- ]+", cleaned) if p]
    whole = re.sub(r"\s+", " ", cleaned)
    return list(dict.fromkeys([whole, *parts]))


def canonical_postcode(value: str) -> str:
    raw = "".join(value.split()).upper()
    return f"{raw[:-3]} {raw[-3:]}" if len(raw) > 3 else raw


def normalise_sex(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().lower()
    return {
        "f": "female",
        "female": "female",
        "m": "male",
        "male": "male",
        "o": "other",
        "other": "other",
        "u": "unknown",
        "unknown": "unknown",
    }.get(v, "unknown")


def family_name_condition(column: sa.ColumnElement[Any], family_name: str) -> Any:
    """Case-insensitive, punctuation-insensitive match; a hyphenated stored name matches
    either part."""
    stored = sa.func.replace(sa.func.replace(sa.func.lower(column), "'", ""), ".", "")
    conditions: list[Any] = []
    for name in normalise_name(family_name):
        conditions += [
            sa.func.lower(column) == name,
            stored == name,
            stored.like(f"{name}-%"),
            stored.like(f"%-{name}"),
            stored.like(f"{name} %"),
            stored.like(f"% {name}"),
        ]
    return sa.or_(*conditions) if conditions else None


def search_conditions(table: sa.Table, query: PersonQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.nhs_number:
        conditions.append(table.c.nhs_number == "".join(query.nhs_number.split()))
    if query.date_of_birth:
        conditions.append(table.c.date_of_birth == query.date_of_birth)
    if (
        query.family_name
        and (cond := family_name_condition(table.c.family_name, query.family_name)) is not None
    ):
        conditions.append(cond)
    postcodes = sorted({canonical_postcode(p) for p in query.postcodes if p and p.strip()})
    if postcodes:
        conditions.append(table.c.postcode.in_(postcodes))
    return conditions


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


class PoliceAdapter:
    """Reads the police POLE database with parameterised SQLAlchemy Core queries."""

    source = Source.POLICE

    def __init__(self, url: str, timeout_s: float | None = 10.0) -> None:
        self._engine = make_engine(url, timeout_s)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        url = config_value(config, "url")
        if not isinstance(url, str) or not url:
            raise SourceMisconfigured("adapter configuration key 'url' must be a string")
        return cls(url, float(config.get("timeout_s") or 10.0))

    async def _fetch(self, statement: Any) -> list[Any]:
        try:
            async with self._engine.connect() as conn:
                return list((await conn.execute(statement)).mappings())
        except DB_ERRORS as exc:
            raise translate_db_error(exc, "police") from None

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        conditions = search_conditions(persons, query)
        if not conditions:
            return []
        rows = await self._fetch(
            sa.select(persons).where(sa.or_(*conditions)).order_by(persons.c.id)
        )
        return [
            SourcePerson(
                source=Source.POLICE,
                local_id=r["id"],
                given_name=r["given_name"],
                family_name=r["family_name"],
                date_of_birth=_date(r["date_of_birth"]),
                sex=normalise_sex(r["sex"]),
                nhs_number=r["nhs_number"],
                postcode=r["postcode"],
                address=r["address"],
                labels=Labels(agency=AGENCY),
            )
            for r in rows
        ]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        if not ids:
            return []
        inc_rows = await self._fetch(
            sa.select(
                person_incident.c.person_id,
                person_incident.c.role,
                incidents.c.id,
                incidents.c.occurred_on,
                incidents.c.category,
                incidents.c.dash_risk,
                incidents.c.summary,
            )
            .join(incidents, incidents.c.id == person_incident.c.incident_id)
            .where(person_incident.c.person_id.in_(ids))
            .order_by(incidents.c.occurred_on.desc(), incidents.c.id, person_incident.c.role)
        )
        intel_rows = await self._fetch(
            sa.select(intelligence)
            .where(intelligence.c.person_id.in_(ids))
            .order_by(intelligence.c.recorded_on.desc(), intelligence.c.id)
        )
        out: list[Item] = [
            Item(
                kind="police.incident",
                local_id=r["id"],
                person_id=r["person_id"],
                labels=Labels(agency=AGENCY, special_categories=_INCIDENT_CATEGORIES),
                data={
                    "occurred_on": _date(r["occurred_on"]),
                    "category": r["category"],
                    "dash_risk": r["dash_risk"],
                    "role": r["role"],
                    "summary": r["summary"],
                },
            )
            for r in inc_rows
        ]
        out += [
            Item(
                kind="police.intelligence",
                local_id=r["id"],
                person_id=r["person_id"],
                labels=Labels(
                    agency=AGENCY,
                    handling_code=r["handling_code"],
                    special_categories=_INCIDENT_CATEGORIES,
                    investigation_sensitive=bool(r["investigation_sensitive"]),
                ),
                data={
                    "recorded_on": _date(r["recorded_on"]),
                    "source_grade": r["source_grade"],
                    "intelligence_grade": int(r["intelligence_grade"]),
                    "handling_code": r["handling_code"],
                    "summary": r["summary"],
                    "text": r["text"],
                },
            )
            for r in intel_rows
        ]
        return out

    async def aclose(self) -> None:
        await self._engine.dispose()
