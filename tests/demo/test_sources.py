"""Seeding the demo sources: deterministic, idempotent, valid FHIR R4, consistent truth."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

from adapters.sql import family_keys
from hub.demo import generator as g
from hub.demo import sources

MODELS = {"patients": Patient, "encounters": Encounter, "careplans": CarePlan}
STORES = ("police.sqlite3", "early_help.sqlite3", "health.sqlite3", "asc.sqlite3")


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in STORES:
        with sqlite3.connect(folder / name) as db:
            tables = [
                r[0]
                for r in db.execute(
                    "select name from sqlite_master where type='table' "
                    "and name not like 'sqlite_%' order by name"
                )
            ]
            for table in tables:
                for row in db.execute(f"select * from {table} order by rowid"):
                    h.update(repr(row).encode())
    for name in ("persons", "households", "relations"):
        h.update((folder / "truth" / f"{name}.csv").read_bytes())
    h.update((folder / "asc_client.json").read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    data_dir = tmp_path_factory.mktemp("seeded")
    return data_dir, sources.seed(data_dir, households=300, seed=5)


def test_seed_is_idempotent_and_deterministic(
    seeded: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    data_dir, first = seeded
    again = sources.seed(tmp_path, households=300, seed=5, workers=1)
    assert first == again
    assert _digest(sources.sources_dir(data_dir)) == _digest(sources.sources_dir(tmp_path))
    sources.seed(tmp_path, households=300, seed=6)
    assert _digest(sources.sources_dir(data_dir)) != _digest(sources.sources_dir(tmp_path))


def test_parallel_and_serial_seeding_agree(tmp_path: Path) -> None:
    households = 2 * g.CHUNK + 5  # three chunks
    serial = sources.seed(tmp_path / "a", households=households, seed=2, workers=1)
    parallel = sources.seed(tmp_path / "b", households=households, seed=2, workers=2)
    assert serial == parallel
    assert _digest(tmp_path / "a" / "sources") == _digest(tmp_path / "b" / "sources")


def test_sql_stores_have_the_protocol_tables_and_indexes(
    seeded: tuple[Path, dict[str, object]],
) -> None:
    data_dir, counts = seeded
    folder = sources.sources_dir(data_dir)
    with sqlite3.connect(folder / "police.sqlite3") as db:
        assert (
            db.execute("select count(*) from persons").fetchone()[0] == counts["police"]["persons"]
        )  # type: ignore[index]
        indexes = {r[0] for r in db.execute("select name from sqlite_master where type='index'")}
        keys = db.execute(
            "select family_key from person_name_keys k join persons p on p.id = k.person_id "
            "where p.id = 'PP000001'"
        ).fetchall()
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert {
        "ix_police_persons_nhs_number",
        "ix_police_persons_date_of_birth",
        "ix_police_persons_postcode",
        "ix_police_person_name_keys_key_dob",
    } <= indexes
    assert [k for (k,) in keys] == family_keys("Thomson")
    assert {"missing_episodes", "warning_markers", "person_name_keys"} <= tables
    with sqlite3.connect(folder / "early_help.sqlite3") as db:
        rows = db.execute(
            "select k.family_key from person_name_keys k where k.person_id = 'EH000001' order by 1"
        ).fetchall()
    assert [k for (k,) in rows] == sorted(family_keys("Thompson-Reid"))


def test_health_store_holds_valid_fhir_r4(seeded: tuple[Path, dict[str, object]]) -> None:
    data_dir, _ = seeded
    with sqlite3.connect(sources.sources_dir(data_dir) / "health.sqlite3") as db:
        for table, model in MODELS.items():
            rows = db.execute(f"select resource from {table} limit 300").fetchall()
            assert rows
            for (raw,) in rows:
                model.model_validate(json.loads(raw))
        [(restricted,)] = db.execute(
            "select resource from patients where restricted = 1 limit 1"
        ).fetchall() or [(None,)]
    if restricted:
        assert json.loads(restricted)["meta"]["security"][0]["code"] == "R"


def test_ground_truth_maps_every_record_to_a_person(seeded: tuple[Path, dict[str, object]]) -> None:
    data_dir, _ = seeded
    folder = sources.sources_dir(data_dir)
    with (folder / "truth" / "persons.csv").open() as f:
        truth = list(csv.DictReader(f))
    with (folder / "truth" / "households.csv").open() as f:
        rows = list(csv.DictReader(f))
    households = {r["household_uid"] for r in rows}
    shared = {r["shared"] for r in rows}
    assert shared == {"", "hostel", "block"}, "the large shared addresses are in the truth"
    by_source: dict[str, set[str]] = {}
    for row in truth:
        assert row["person_uid"].startswith("PER") and row["household_uid"] in households
        by_source.setdefault(row["source"], set()).add(row["local_id"])
    stores = {
        "police": ("police.sqlite3", "persons"),
        "early_help": ("early_help.sqlite3", "persons"),
        "health": ("health.sqlite3", "patients"),
        "adult_social_care": ("asc.sqlite3", "persons"),
    }
    for source, (file, table) in stores.items():
        with sqlite3.connect(folder / file) as db:
            ids = {r[0] for r in db.execute(f"select id from {table}")}
        assert ids == by_source[source]
    ava = {(r["source"], r["local_id"]) for r in truth if r["person_uid"] == "PER000000"}
    assert ava >= {("health", "pat-000001"), ("police", "PP000001"), ("early_help", "EH000001")}
    with (folder / "truth" / "relations.csv").open() as f:
        relations = {(r["person_uid"], r["related_uid"], r["relation"]) for r in csv.DictReader(f)}
    assert ("PER000002", "PER000000", "parent") in relations
    assert ("PER000000", "PER000001", "sibling") in relations


def test_progress_callback_sees_every_chunk(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    sources.seed(
        tmp_path, households=g.CHUNK + 1, seed=1, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 2), (2, 2)]


async def test_seed_inside_a_running_loop(tmp_path: Path) -> None:
    counts = sources.seed(tmp_path, households=10, seed=2)
    assert counts["population"]["households"] == 10
