"""Seeding the demo sources: deterministic, idempotent, valid FHIR R4."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

from hub.demo import sources

MODELS = {"Patient": Patient, "Encounter": Encounter, "CarePlan": CarePlan}


def test_seed_is_idempotent_and_deterministic(tmp_path: Path) -> None:
    first = sources.seed(tmp_path, households=40, seed=5)
    health = (tmp_path / "sources" / "health.json").read_bytes()
    second = sources.seed(tmp_path, households=40, seed=5)
    assert first == second
    assert (tmp_path / "sources" / "health.json").read_bytes() == health
    with sqlite3.connect(tmp_path / "sources" / "police.sqlite3") as db:
        assert (
            db.execute("select count(*) from persons").fetchone()[0] == first["police"]["persons"]
        )
        indexes = {r[0] for r in db.execute("select name from sqlite_master where type='index'")}
    assert {"ix_police_persons_nhs_number", "ix_police_persons_family_name_lower"} <= indexes


def test_health_store_is_valid_fhir_r4(tmp_path: Path) -> None:
    sources.seed(tmp_path, households=30, seed=1)
    store = json.loads((tmp_path / "sources" / "health.json").read_text())
    for kind, model in MODELS.items():
        assert store[kind]
        for res in store[kind]:
            model.model_validate(res)


async def test_seed_inside_a_running_loop(tmp_path: Path) -> None:
    counts = sources.seed(tmp_path, households=10, seed=2)
    assert counts["population"]["households"] == 10
