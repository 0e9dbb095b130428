"""Early help case system (SQL database): persons, episodes, consent records.

Early help is consent-based: the consent record is returned as an item of its own
("early_help.consent") so that policies can decide on it.

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
sa.Index("ix_eh_persons_nhs_number", persons.c.nhs_number)
sa.Index("ix_eh_persons_date_of_birth", persons.c.date_of_birth)
sa.Index("ix_eh_persons_family_name_lower", sa.func.lower(persons.c.family_name))
sa.Index("ix_eh_persons_postcode", persons.c.postcode)

episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("lead_practitioner", sa.String(120), nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
)
sa.Index("ix_eh_episodes_person", episodes.c.person_id)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("given_by", sa.String(120), nullable=True),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("scope", sa.String(200), nullable=True),
)
sa.Index("ix_eh_consents_person", consents.c.person_id)

AGENCY = "early_help"


# --- helpers (duplicated from the police adapter on purpose: adapters are independent
# modules that depend only on adapters.base) ----------------------------------------
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


class EarlyHelpAdapter:
    """Reads the early help database with parameterised SQLAlchemy Core queries."""

    source = Source.EARLY_HELP

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
            raise translate_db_error(exc, "early help") from None

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        conditions = search_conditions(persons, query)
        if not conditions:
            return []
        rows = await self._fetch(
            sa.select(persons).where(sa.or_(*conditions)).order_by(persons.c.id)
        )
        return [
            SourcePerson(
                source=Source.EARLY_HELP,
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
        ep_rows = await self._fetch(
            sa.select(episodes)
            .where(episodes.c.person_id.in_(ids))
            .order_by(episodes.c.start.desc(), episodes.c.id)
        )
        con_rows = await self._fetch(
            sa.select(consents)
            .where(consents.c.person_id.in_(ids))
            .order_by(consents.c.recorded_on.desc(), consents.c.id)
        )
        labels = Labels(agency=AGENCY)
        out: list[Item] = [
            Item(
                kind="early_help.episode",
                local_id=r["id"],
                person_id=r["person_id"],
                labels=labels,
                data={
                    "start": _date(r["start"]),
                    "end": _date(r["end"]),
                    "status": r["status"],
                    "lead_practitioner": r["lead_practitioner"],
                    "summary": r["summary"],
                },
            )
            for r in ep_rows
        ]
        out += [
            Item(
                kind="early_help.consent",
                local_id=r["id"],
                person_id=r["person_id"],
                labels=labels,
                data={
                    "status": r["status"],
                    "given_by": r["given_by"],
                    "recorded_on": _date(r["recorded_on"]),
                    "scope": r["scope"],
                },
            )
            for r in con_rows
        ]
        return out

    async def aclose(self) -> None:
        await self._engine.dispose()
