"""Where the seeder puts each chunk of the synthetic population (hub/demo/PROTOCOL.md).

`chunk_rows(chunk)` turns one generated chunk into plain row tuples per "<store>.<table>"
(cheap to pickle from a worker process); the sinks append them in batches and build their
indexes once everything is loaded:

- police / early help: the Table definitions of adapters/police.py and adapters/early_help.py,
  via SQLAlchemy (SQLite file or any URL, e.g. PostgreSQL);
- health.sqlite3 and asc.sqlite3: stdlib sqlite3, the FHIR and ASC servers' own stores;
- truth/*.csv: the ground truth for evaluation.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import importlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters import declarations
from adapters.base import SourceDeclaration
from adapters.sql import async_url, family_keys

from . import generator as g

Row = tuple[Any, ...]
Rows = dict[str, list[Row]]
T = TypeVar("T")

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ADDRESS_KEY_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AddressKey"
PLAN_CATEGORY_SYSTEM = "https://mash-hub.example/fhir/CodeSystem/care-plan-category"
_PLAN_DISPLAY = {
    "CPP": "Child protection plan",
    "LAC": "Looked after child",
    "UNBORN": "Unborn child protection plan",
}
_CLASS_DISPLAY = {"EMER": "A&E", "AMB": "Outpatient", "HH": "Home health"}
BATCH = 10_000


# --- normalisation shared with the servers ------------------------------------------------
def name_parts(value: str | None) -> list[str]:
    """Lower-case parts of a family name: "Thompson-Reid" -> ["thompson", "reid"]."""
    cleaned = re.sub(r"[^a-z\- ]", "", (value or "").lower())
    return list(dict.fromkeys(p for p in re.split(r"[\- ]+", cleaned) if p))


def postcode_key(value: str | None) -> str | None:
    """ "HT4 2QX" / "ht42qx" -> "HT42QX" (None stays None)."""
    return "".join(value.split()).upper() if value else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- FHIR resources -----------------------------------------------------------------------
def patient_resource(p: g.HealthPatient, uprn: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": p.id}
    if p.restricted:
        res["meta"] = {
            "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}]
        }
    if p.nhs_number:
        res["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": p.nhs_number}]
    res["name"] = [{"use": "official", "family": p.family_name, "given": [p.given_name]}]
    res["gender"] = p.sex
    res["birthDate"] = p.date_of_birth.isoformat()
    if p.address or p.postcode:
        line, _, city = (p.address or "").partition(", ")
        address: dict[str, Any] = {"use": "home"}
        if line:
            address["line"] = [line]
        if city:
            address["city"] = city
        if p.postcode:
            address["postalCode"] = p.postcode
        if uprn:
            address["extension"] = [
                {
                    "url": ADDRESS_KEY_EXTENSION,
                    "extension": [
                        {"url": "type", "valueCoding": {"code": "uprn"}},
                        {"url": "value", "valueString": uprn},
                    ],
                }
            ]
        res["address"] = [address]
    res["generalPractitioner"] = [{"display": p.gp}]
    return res


def encounter_resource(e: g.HealthEncounter) -> dict[str, Any]:
    n = int(e.id.rsplit("-", 1)[-1])
    start = f"{e.start.isoformat()}T{8 + n % 10:02d}:{(n * 7) % 60:02d}:00+00:00"
    return {
        "resourceType": "Encounter",
        "id": e.id,
        "status": e.status,
        "class": {
            "system": ACT_CODE_SYSTEM,
            "code": e.class_code,
            "display": _CLASS_DISPLAY.get(e.class_code, e.class_code),
        },
        "subject": {"reference": f"Patient/{e.patient_id}"},
        "period": {"start": start},
        "reasonCode": [{"text": e.reason}],
    }


def careplan_resource(c: g.HealthCarePlan) -> dict[str, Any]:
    display = _PLAN_DISPLAY[c.category]
    return {
        "resourceType": "CarePlan",
        "id": c.id,
        "status": c.status,
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {"system": PLAN_CATEGORY_SYSTEM, "code": c.category, "display": display}
                ],
                "text": display,
            }
        ],
        "subject": {"reference": f"Patient/{c.patient_id}"},
        "period": {"start": c.start.isoformat()},
    }


def _json(res: dict[str, Any]) -> str:
    return json.dumps(res, separators=(",", ":"))


# --- one chunk as rows --------------------------------------------------------------------
def _sql_person(p: Any) -> Row:
    return (
        p.id,
        p.given_name,
        p.family_name,
        _iso(p.date_of_birth),
        p.sex,
        p.nhs_number,
        p.postcode,
        p.address,
    )


def _name_keys(persons: Iterable[Any]) -> list[Row]:
    return [
        (p.id, key, _iso(p.date_of_birth)) for p in persons for key in family_keys(p.family_name)
    ]


def _relations(records: Sequence[Any], relations: Iterable[g.Relation]) -> list[Row]:
    """The family relations a source records: those between two people it holds (between
    each of their records, where it holds someone twice)."""
    ids: dict[str, list[str]] = {}
    for r in records:
        ids.setdefault(r.person_id, []).append(r.id)
    return [
        (a, b, rel.relation)
        for rel in relations
        for a in ids.get(rel.person_id, ())
        for b in ids.get(rel.related_id, ())
    ]


def _uprns(chunk: g.Chunk) -> dict[str, str]:
    """The UPRN of each patient's home, where the record holds the current address (a stale
    address has none: its reference is not known)."""
    homes = {h.id: h for h in chunk.households}
    lives = {x.id: homes.get(x.household_id) for x in chunk.persons}
    return {
        p.id: home.uprn
        for p in chunk.health.patients
        if (home := lives.get(p.person_id)) is not None and p.address == home.address
    }


def chunk_rows(chunk: g.Chunk) -> Rows:
    """Every store's rows for one chunk, keyed "<store>.<table>", dates as ISO strings."""
    uprns = _uprns(chunk)
    police, eh, health, asc = (
        chunk.police,
        chunk.early_help,
        chunk.health,
        chunk.adult_social_care,
    )
    rows: Rows = {
        "police.persons": [_sql_person(p) for p in police.persons],
        "police.person_name_keys": _name_keys(police.persons),
        "police.incidents": [
            (i.id, i.occurred_on.isoformat(), i.category, i.dash_risk, i.summary, i.postcode)
            for i in police.incidents
        ],
        "police.person_incident": [
            (i.person_id, i.incident_id, i.role) for i in police.involvements
        ],
        "police.intelligence": [
            (
                i.id,
                i.person_id,
                i.recorded_on.isoformat(),
                i.source_grade,
                i.intelligence_grade,
                i.handling_code,
                int(i.investigation_sensitive),
                i.summary,
                i.text,
            )
            for i in police.intelligence
        ],
        "police.missing_episodes": [
            (m.id, m.person_id, m.reported_on.isoformat(), _iso(m.returned_on), m.risk)
            for m in police.missing_episodes
        ],
        "police.warning_markers": [
            (w.id, w.person_id, w.marker, w.recorded_on.isoformat()) for w in police.warning_markers
        ],
        "police.relations": _relations(police.persons, chunk.relations),
        "early_help.persons": [_sql_person(p) for p in eh.persons],
        "early_help.relations": _relations(eh.persons, chunk.relations),
        "early_help.person_name_keys": _name_keys(eh.persons),
        "early_help.episodes": [
            (
                e.id,
                e.eh_person_id,
                e.start.isoformat(),
                _iso(e.end),
                e.status,
                e.lead_practitioner,
                e.summary,
            )
            for e in eh.episodes
        ],
        "early_help.consents": [
            (c.id, c.eh_person_id, c.status, c.given_by, c.recorded_on.isoformat(), c.scope)
            for c in eh.consents
        ],
        "health.patients": [
            (
                p.id,
                p.nhs_number,
                p.family_name,
                " ".join(name_parts(p.family_name)),
                p.given_name,
                p.date_of_birth.isoformat(),
                postcode_key(p.postcode),
                int(p.restricted),
                _json(patient_resource(p, uprns.get(p.id))),
            )
            for p in health.patients
        ],
        "health.patient_names": [
            (p.id, part) for p in health.patients for part in name_parts(p.family_name)
        ],
        "health.encounters": [
            (e.id, e.patient_id, _json(encounter_resource(e))) for e in health.encounters
        ],
        "health.careplans": [
            (c.id, c.patient_id, _json(careplan_resource(c))) for c in health.care_plans
        ],
        "asc.persons": [
            (
                p.id,
                p.given_name,
                p.family_name,
                " ".join(name_parts(p.family_name)),
                _iso(p.date_of_birth),
                p.sex,
                p.nhs_number,
                p.postcode,
                postcode_key(p.postcode),
                p.address,
            )
            for p in asc.persons
        ],
        "asc.person_names": [
            (p.id, part) for p in asc.persons for part in name_parts(p.family_name)
        ],
        "asc.involvements": [
            (
                i.id,
                i.asc_person_id,
                i.involvement_type,
                i.status,
                i.start.isoformat(),
                _iso(i.end),
                i.summary,
            )
            for i in asc.involvements
        ],
        "truth.households": [
            (
                h.id,
                h.uprn,
                h.postcode,
                h.address,
                h.previous_postcode or "",
                h.previous_address or "",
                int(h.in_area),
                h.shared or "",
            )
            for h in chunk.households
        ],
        "truth.relations": [(r.person_id, r.related_id, r.relation) for r in chunk.relations],
    }
    where = {p.id: (p.household_id, int(p.in_area)) for p in chunk.persons}
    truth: list[Row] = []
    for source, records in (
        ("health", health.patients),
        ("police", police.persons),
        ("adult_social_care", asc.persons),
        ("early_help", eh.persons),
    ):
        truth += [(source, r.id, r.person_id, *where[r.person_id]) for r in records]
    rows["truth.persons"] = truth
    rows["meta.area_persons"] = [(sum(1 for p in chunk.persons if p.in_area),)]
    for d in declarations():
        if d.demo.seeder:
            for key, more in declared_seeder(d).rows(chunk).items():
                rows.setdefault(key, []).extend(more)
    return rows


def declared_seeder(d: SourceDeclaration) -> Any:
    """The demo module a source declares to derive its store from the population
    (`DemoDeclaration.seeder`): a new source's content lives beside its demo server, not
    here."""
    return importlib.import_module(str(d.demo.seeder))


def sqlite_store(d: SourceDeclaration) -> tuple[Sequence[str], Sequence[str]]:
    """The schema and index statements of an HTTP source's stdlib SQLite store."""
    if d.demo.store in SQLITE_STORES:
        return SQLITE_STORES[d.demo.store]
    seeder = declared_seeder(d)
    return tuple(seeder.SCHEMA), tuple(seeder.INDEXES)


def option_file(d: SourceDeclaration, households: int, seed: int) -> dict[str, str]:
    """The content of the adapter options file a source's demo declares."""
    known = OPTION_FILES.get(str(d.demo.options_file))
    if known is not None:
        return known(households, seed)
    options: dict[str, str] = declared_seeder(d).options(households, seed)
    return options


# --- stdlib SQLite stores (health, adult social care) -------------------------------------
HEALTH_SCHEMA = (
    "CREATE TABLE patients (id TEXT PRIMARY KEY, nhs_number TEXT, family TEXT, "
    "family_key TEXT, given TEXT, birth_date TEXT, postcode TEXT, restricted INTEGER, "
    "resource TEXT NOT NULL)",
    "CREATE TABLE patient_names (patient_id TEXT NOT NULL, part TEXT NOT NULL)",
    "CREATE TABLE encounters (id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, "
    "resource TEXT NOT NULL)",
    "CREATE TABLE careplans (id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, "
    "resource TEXT NOT NULL)",
)
HEALTH_INDEXES = (
    "CREATE INDEX ix_patients_nhs_number ON patients (nhs_number)",
    # birth date with the family key: a family-initial filter is read from the index
    "CREATE INDEX ix_patients_birth_date ON patients (birth_date, family_key)",
    "CREATE INDEX ix_patients_family_key ON patients (family_key)",
    "CREATE INDEX ix_patients_postcode ON patients (postcode)",
    "CREATE INDEX ix_patient_names_part ON patient_names (part, patient_id)",
    "CREATE INDEX ix_encounters_patient ON encounters (patient_id)",
    "CREATE INDEX ix_careplans_patient ON careplans (patient_id)",
)
ASC_SCHEMA = (
    "CREATE TABLE persons (id TEXT PRIMARY KEY, given_name TEXT, family_name TEXT, "
    "family_key TEXT, date_of_birth TEXT, sex TEXT, nhs_number TEXT, postcode TEXT, "
    "postcode_key TEXT, address TEXT)",
    "CREATE TABLE person_names (person_id TEXT NOT NULL, part TEXT NOT NULL)",
    "CREATE TABLE involvements (id TEXT PRIMARY KEY, person_id TEXT NOT NULL, "
    'involvement_type TEXT, status TEXT, start TEXT, "end" TEXT, summary TEXT)',
)
ASC_INDEXES = (
    "CREATE INDEX ix_persons_nhs_number ON persons (nhs_number)",
    "CREATE INDEX ix_persons_date_of_birth ON persons (date_of_birth)",
    "CREATE INDEX ix_persons_family_key ON persons (family_key)",
    "CREATE INDEX ix_persons_postcode_key ON persons (postcode_key)",
    "CREATE INDEX ix_person_names_part ON person_names (part, person_id)",
    "CREATE INDEX ix_involvements_person ON involvements (person_id)",
)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


class SqliteStore:
    """A fresh stdlib SQLite file, filled without journaling, indexed at the end."""

    def __init__(self, path: Path, schema: Sequence[str], indexes: Sequence[str]) -> None:
        _remove_sqlite(path)
        self.path, self.indexes = path, indexes
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-64000")
        for statement in schema:
            self.db.execute(statement)
        self._insert: dict[str, str] = {}

    def write(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        sql = self._insert.get(table)
        if sql is None:
            sql = self._insert[table] = (
                f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})"
            )
        self.db.executemany(sql, rows)

    def finish(self) -> None:
        for statement in self.indexes:
            self.db.execute(statement)
        self.db.commit()
        self.db.execute("ANALYZE")
        self.db.commit()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.close()


# The stdlib SQLite stores by name, and the files of adapter options the seeder writes
# beside them (SourceDeclaration.demo.store / .options_file).
SQLITE_STORES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "health": (HEALTH_SCHEMA, HEALTH_INDEXES),
    "asc": (ASC_SCHEMA, ASC_INDEXES),
}


def asc_client(households: int, seed: int) -> dict[str, str]:
    """The demo OAuth client of the adult social care API (deterministic per seeding)."""
    digest = hashlib.sha256(f"mash-demo-asc:{households}:{seed}".encode()).hexdigest()
    return {
        "client_id": "mash-hub-demo",
        "client_secret": digest[:40],
        "token_url": "/api/v1/oauth/token",
    }


OPTION_FILES: dict[str, Callable[[int, int], dict[str, str]]] = {"asc_client.json": asc_client}


# --- SQL sources via SQLAlchemy (police, early help) --------------------------------------
def _converters(table: sa.Table) -> list[Any]:
    """Per column: turn the ISO string / 0-1 of a row back into what the driver wants."""
    out: list[Any] = []
    for col in table.columns:
        if isinstance(col.type, sa.Date):
            out.append(lambda v: date.fromisoformat(v) if v is not None else None)
        elif isinstance(col.type, sa.Boolean):
            out.append(lambda v: bool(v) if v is not None else None)
        else:
            out.append(None)
    return out


class SqlStore:
    """The tables of `metadata` at `url`, dropped and recreated; rows appended in batches;
    indexes created after loading. SQLite through the stdlib driver (sync engine, fast path),
    anything else (PostgreSQL) through its async driver on a private event loop thread."""

    def __init__(self, url: str, metadata: sa.MetaData) -> None:
        self.metadata = metadata
        self.tables = {t.name: t for t in metadata.sorted_tables}
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            path = sa.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _remove_sqlite(Path(path))
            self.engine = sa.create_engine(url.replace("sqlite+aiosqlite", "sqlite"))
            self.conn = self.engine.connect()
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-64000"):
                self.conn.exec_driver_sql(f"PRAGMA {pragma}")
            for table in self.tables.values():
                self.conn.execute(sa.schema.CreateTable(table))
            self._insert = {
                name: f"INSERT INTO {name} VALUES ({', '.join('?' * len(t.columns))})"
                for name, t in self.tables.items()
            }
        else:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()
            self.aengine: AsyncEngine = create_async_engine(async_url(url))
            self.conv = {name: _converters(t) for name, t in self.tables.items()}
            self._run(self._create())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _create(self) -> None:
        async with self.aengine.begin() as conn:
            await conn.run_sync(self.metadata.drop_all)
            for table in self.tables.values():
                await conn.execute(sa.schema.CreateTable(table))

    async def _insert_async(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        async with self.aengine.begin() as conn:
            await conn.execute(table.insert(), rows)

    def write(self, table: str, rows: list[Row]) -> None:
        if not rows:
            return
        if self.sqlite:
            self.conn.exec_driver_sql(self._insert[table], rows)
            return
        t = self.tables[table]
        names = [c.name for c in t.columns]
        conv = self.conv[table]
        for start in range(0, len(rows), BATCH):
            dicts = [
                {n: (f(v) if f else v) for n, f, v in zip(names, conv, row, strict=True)}
                for row in rows[start : start + BATCH]
            ]
            self._run(self._insert_async(t, dicts))

    async def _indexes(self) -> None:
        async with self.aengine.begin() as conn:
            for table in self.tables.values():
                for index in sorted(table.indexes, key=lambda i: i.name or ""):
                    await conn.execute(sa.schema.CreateIndex(index))
            await conn.exec_driver_sql("ANALYZE")
        await self.aengine.dispose()

    def finish(self) -> None:
        if self.sqlite:
            for table in self.tables.values():
                for index in sorted(table.indexes, key=lambda i: i.name or ""):
                    self.conn.execute(sa.schema.CreateIndex(index))
            self.conn.commit()
            self.conn.exec_driver_sql("ANALYZE")
            self.conn.commit()
            self.conn.close()
            self.engine.dispose()
            return
        try:
            self._run(self._indexes())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


# --- ground truth -------------------------------------------------------------------------
TRUTH_HEADERS = {
    "persons": ("source", "local_id", "person_uid", "household_uid", "in_area"),
    "households": (
        "household_uid",
        "uprn",
        "postcode",
        "address",
        "previous_postcode",
        "previous_address",
        "in_area",
        "shared",
    ),
    "relations": ("person_uid", "related_uid", "relation"),
}


class TruthFiles:
    """truth/persons.csv, truth/households.csv, truth/relations.csv."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.files = {
            name: (folder / f"{name}.csv").open("w", newline="") for name in TRUTH_HEADERS
        }
        self.writers = {name: csv.writer(f) for name, f in self.files.items()}
        for name, header in TRUTH_HEADERS.items():
            self.writers[name].writerow(header)

    def write(self, table: str, rows: list[Row]) -> None:
        self.writers[table].writerows(rows)

    def finish(self) -> None:
        for f in self.files.values():
            f.close()
