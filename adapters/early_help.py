"""Early help case system (SQL database): persons, episodes, consent records.

Early help is consent-based: the consent record is returned as an item of its own
("early_help.consent") so that policies can decide on it.

The Table definitions below are the schema the demo seeder creates (hub/demo/PROTOCOL.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa

from .base import (
    DemoDeclaration,
    Item,
    KindDeclaration,
    Labels,
    Source,
    SourceDeclaration,
)
from .sql import (
    Connection,
    PersonDatabase,
    Row,
    as_date,
    by_person,
    fetch_by_person,
    newest,
    person_tables,
    relation_table,
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


class EarlyHelpAdapter(PersonDatabase):
    """The early help database: episodes and consent records (`PersonDatabase`)."""

    source = SOURCE
    declaration = DECLARATION
    what = "early help"
    persons = persons
    name_keys = person_name_keys
    relation_table = relations

    def read_items(self, conn: Connection, ids: Sequence[str]) -> list[Item]:
        return _items(conn, ids)


_LABELS = Labels(agency=AGENCY)
_EPISODES = by_person(sa.select(episodes), episodes.c.person_id)
_CONSENTS = by_person(sa.select(consents), consents.c.person_id)


def _items(conn: Connection, ids: Sequence[str]) -> list[Item]:
    """Every episode and consent record of the given persons, read on one connection."""
    episode_rows = fetch_by_person(conn, _EPISODES, ids)
    consent_rows = fetch_by_person(conn, _CONSENTS, ids)
    return [
        *(_episode(r) for r in sorted(episode_rows, key=newest("start"))),
        *(_consent(r) for r in sorted(consent_rows, key=newest("recorded_on"))),
    ]


def _episode(r: Row) -> Item:
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


def _consent(r: Row) -> Item:
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
