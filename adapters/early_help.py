"""Early help case system (SQL database): persons, episodes, consent records.

Early help is consent-based: the consent record is returned as an item of its own
("early_help.consent") so that policies can decide on it.

The Table definitions below are the schema the demo seeder creates (hub/demo/PROTOCOL.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from .base import (
    DemoDeclaration,
    Item,
    KindDeclaration,
    Labels,
    PersonQuery,
    Relation,
    Source,
    SourceDeclaration,
    SourceHealth,
    SourcePerson,
)
from .sql import (
    DEFAULT_TIMEOUT_S,
    SqlSource,
    as_date,
    by_person,
    fetch_by_person,
    person_from_row,
    person_tables,
    relation_table,
    sql_settings,
)

metadata = sa.MetaData()

persons, person_name_keys = person_tables(metadata, "eh")
relations = relation_table(metadata, "eh")

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

SOURCE = Source("EARLY_HELP")
DECLARATION = SourceDeclaration(
    source=SOURCE,
    agency=AGENCY,
    section="early_help",
    type_prefix="EarlyHelp",
    position=40,
    kinds=(
        KindDeclaration(
            "early_help.episode",
            "EarlyHelpEpisode",
            "episodes",
            (
                ("start", date),
                ("end", date),
                ("status", str),
                ("lead_practitioner", str),
                ("summary", str),
            ),
        ),
        KindDeclaration(
            "early_help.consent",
            "EarlyHelpConsent",
            "consents",
            # status: GIVEN, REFUSED, NOT_SOUGHT, WITHDRAWN
            (("status", str), ("given_by", str), ("recorded_on", date), ("scope", str)),
        ),
    ),
    roles=("early_help_worker",),
    demo=DemoDeclaration(store="early_help"),
    consent_kind="early_help.consent",
)


class EarlyHelpAdapter:
    """Reads the early help database with parameterised SQLAlchemy Core queries.

    Config: {"url": SQLAlchemy URL (sync-style `sqlite:///...` / `postgresql://...` accepted
    and converted to the async driver), "timeout_s": connect/command timeout, optional}.
    """

    source = SOURCE
    declaration = DECLARATION

    def __init__(self, url: str, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> None:
        self._db = SqlSource("early help", url, timeout_s)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(*sql_settings(config))

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        rows = await self._db.search(persons, person_name_keys, query)
        return [person_from_row(SOURCE, AGENCY, r) for r in rows]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        ids = sorted(set(person_ids))
        return await self._db.run(lambda conn: _items(conn, ids)) if ids else []

    async def relations(self, person_ids: Sequence[str]) -> Sequence[Relation]:
        rows = await self._db.relations(persons, relations, person_ids)
        return [Relation(i, rel, person_from_row(SOURCE, AGENCY, r)) for i, rel, r in rows]

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        rows = await self._db.persons_by_id(persons, person_ids)
        return [person_from_row(SOURCE, AGENCY, r) for r in rows]

    async def probe(self) -> SourceHealth:
        return await self._db.probe(persons)

    async def aclose(self) -> None:
        await self._db.aclose()


_LABELS = Labels(agency=AGENCY)
_EPISODES = by_person(sa.select(episodes), episodes.c.person_id)
_CONSENTS = by_person(sa.select(consents), consents.c.person_id)


def _items(conn: sa.Connection, ids: Sequence[str]) -> list[Item]:
    """Every episode and consent record of the given persons, read on one connection."""
    episode_rows = fetch_by_person(conn, _EPISODES, ids)
    consent_rows = fetch_by_person(conn, _CONSENTS, ids)
    return [
        *(_episode(r) for r in sorted(episode_rows, key=_newest("start"))),
        *(_consent(r) for r in sorted(consent_rows, key=_newest("recorded_on"))),
    ]


def _newest(date_column: str) -> Any:
    """Sort key: newest first, then by id for a stable order."""
    return lambda r: (-(as_date(r[date_column]) or date.min).toordinal(), r["id"])


def _episode(r: RowMapping) -> Item:
    return Item(
        kind="early_help.episode",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=_LABELS,
        data={
            "start": as_date(r["start"]),
            "end": as_date(r["end"]),
            "status": r["status"],
            "lead_practitioner": r["lead_practitioner"],
            "summary": r["summary"],
        },
    )


def _consent(r: RowMapping) -> Item:
    return Item(
        kind="early_help.consent",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=_LABELS,
        data={
            "status": r["status"],
            "given_by": r["given_by"],
            "recorded_on": as_date(r["recorded_on"]),
            "scope": r["scope"],
        },
    )


ADAPTER = EarlyHelpAdapter
