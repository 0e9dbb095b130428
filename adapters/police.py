"""Police records system (POLE-style SQL database): persons, incidents, intelligence, missing
episodes and warning markers.

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

persons, person_name_keys = person_tables(metadata, "police")
relations = relation_table(metadata, "police")

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

missing_episodes = sa.Table(
    "missing_episodes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("reported_on", sa.Date, nullable=False),
    sa.Column("returned_on", sa.Date, nullable=True),
    sa.Column("risk", sa.String(10), nullable=False),
)
sa.Index("ix_police_missing_episodes_person", missing_episodes.c.person_id)

warning_markers = sa.Table(
    "warning_markers",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(32), sa.ForeignKey("persons.id"), nullable=False),
    sa.Column("marker", sa.String(40), nullable=False),
    sa.Column("recorded_on", sa.Date, nullable=False),
)
sa.Index("ix_police_warning_markers_person", warning_markers.c.person_id)

AGENCY = "police"

SOURCE = Source("POLICE")
DECLARATION = SourceDeclaration(
    source=SOURCE,
    agency=AGENCY,
    section="police",
    type_prefix="Police",
    position=10,
    kinds=(
        KindDeclaration(
            "police.incident",
            "PoliceIncident",
            "incidents",
            # role: VICTIM, SUSPECT, PRESENT, WITNESS; dash_risk: STANDARD, MEDIUM, HIGH or None
            (
                ("occurred_on", date),
                ("category", str),
                ("dash_risk", str),
                ("role", str),
                ("summary", str),
            ),
        ),
        KindDeclaration(
            "police.intelligence",
            "PoliceIntelligence",
            "intelligence",
            (
                ("recorded_on", date),
                ("source_grade", str),
                ("intelligence_grade", int),
                ("handling_code", str),
                ("summary", str),
                ("text", str),
            ),
            "Intelligence graded 3x5x2: source A-C, intelligence 1-5, handling code P or C.",
        ),
        KindDeclaration(
            "police.missing_episode",
            "PoliceMissingEpisode",
            "missing_episodes",
            # risk: LOW, MEDIUM, HIGH
            (("reported_on", date), ("returned_on", date), ("risk", str)),
            "A missing-person episode; `returnedOn` null while still missing.",
        ),
        KindDeclaration(
            "police.warning_marker",
            "PoliceWarningMarker",
            "warning_markers",
            (("marker", str), ("recorded_on", date)),
            "A police warning marker, e.g. WEAPONS, VIOLENCE, SELF_HARM.",
        ),
    ),
    roles=("police_researcher",),
    demo=DemoDeclaration(store="police"),
)
_CRIMINAL_OFFENCE = frozenset({"criminal_offence"})
# A warning marker tells of offending (criminal offence data) unless it tells of health.
_HEALTH_MARKERS = frozenset({"MENTAL_HEALTH", "SELF_HARM", "SUICIDE_RISK"})
_MENTAL_HEALTH = frozenset({"health", "mental_health"})


class PoliceAdapter(PersonDatabase):
    """The police POLE database: incidents, intelligence, missing episodes, warning markers
    (`PersonDatabase`)."""

    source = SOURCE
    declaration = DECLARATION
    what = "police"
    persons = persons
    name_keys = person_name_keys
    relation_table = relations

    def read_items(self, conn: Connection, ids: Sequence[str]) -> list[Item]:
        return _items(conn, ids)


_INCIDENTS_BASE = sa.select(
    person_incident.c.person_id,
    person_incident.c.role,
    incidents.c.id,
    incidents.c.occurred_on,
    incidents.c.category,
    incidents.c.dash_risk,
    incidents.c.summary,
).join(incidents, incidents.c.id == person_incident.c.incident_id)
_INCIDENTS = by_person(_INCIDENTS_BASE, person_incident.c.person_id)
_INTELLIGENCE = by_person(sa.select(intelligence), intelligence.c.person_id)
_MISSING = by_person(sa.select(missing_episodes), missing_episodes.c.person_id)
_MARKERS = by_person(sa.select(warning_markers), warning_markers.c.person_id)


def _items(conn: Connection, ids: Sequence[str]) -> list[Item]:
    """Every item of the given persons, read on one connection."""
    incident_rows = fetch_by_person(conn, _INCIDENTS, ids)
    intel_rows = fetch_by_person(conn, _INTELLIGENCE, ids)
    missing_rows = fetch_by_person(conn, _MISSING, ids)
    marker_rows = fetch_by_person(conn, _MARKERS, ids)
    return [
        *(_incident(r) for r in sorted(incident_rows, key=newest("occurred_on", "role"))),
        *(_intelligence(r) for r in sorted(intel_rows, key=newest("recorded_on"))),
        *(_missing_episode(r) for r in sorted(missing_rows, key=newest("reported_on"))),
        *(_warning_marker(r) for r in sorted(marker_rows, key=newest("recorded_on"))),
    ]


def _incident(r: Row) -> Item:
    return Item(
        kind="police.incident",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=Labels(agency=AGENCY, special_categories=_CRIMINAL_OFFENCE),
        data={
            "occurred_on": as_date(r["occurred_on"]),
            "category": r["category"],
            "dash_risk": r["dash_risk"],
            "role": r["role"],
            "summary": r["summary"],
        },
    )


def _intelligence(r: Row) -> Item:
    return Item(
        kind="police.intelligence",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=Labels(
            agency=AGENCY,
            handling_code=r["handling_code"],
            special_categories=_CRIMINAL_OFFENCE,
            investigation_sensitive=bool(r["investigation_sensitive"]),
        ),
        data={
            "recorded_on": as_date(r["recorded_on"]),
            "source_grade": r["source_grade"],
            "intelligence_grade": int(r["intelligence_grade"]),
            "handling_code": r["handling_code"],
            "summary": r["summary"],
            "text": r["text"],
        },
    )


def _missing_episode(r: Row) -> Item:
    return Item(
        kind="police.missing_episode",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=Labels(agency=AGENCY),
        data={
            "reported_on": as_date(r["reported_on"]),
            "returned_on": as_date(r["returned_on"]),
            "risk": r["risk"],
        },
    )


def _warning_marker(r: Row) -> Item:
    marker = str(r["marker"])
    return Item(
        kind="police.warning_marker",
        local_id=r["id"],
        person_id=r["person_id"],
        labels=Labels(
            agency=AGENCY,
            special_categories=(
                _MENTAL_HEALTH if marker.upper() in _HEALTH_MARKERS else _CRIMINAL_OFFENCE
            ),
        ),
        data={"marker": marker, "recorded_on": as_date(r["recorded_on"])},
    )


ADAPTER = PoliceAdapter
