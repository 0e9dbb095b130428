"""PoliceAdapter against the seeded demo police database (SQLite and PostgreSQL): indexed
candidate search, police content and its labels, probe, error mapping.
(What every adapter must do is in test_contract.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters import kind_fields
from adapters import police as schema
from adapters.base import (
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceUnavailable,
    SupportsProbe,
)
from adapters.police import PoliceAdapter
from adapters.sql import async_url, candidate_search
from hub.demo import generator as g
from hub.demo import sources

from .conftest import QUERIES, full_scans


@pytest.fixture(scope="session")
def police_db(sql_backend: str, demo_data: Path, request: pytest.FixtureRequest) -> str:
    if sql_backend == "sqlite":
        return sources.default_store_url(demo_data, "police")
    return request.getfixturevalue("postgres_sources")["police"]


@pytest.fixture
async def police(police_db: str) -> AsyncIterator[PoliceAdapter]:
    adapter = PoliceAdapter.from_config({"url": police_db, "timeout_s": 5})
    yield adapter
    await adapter.aclose()


def by_name(people, given, family):
    return [p for p in people if (p.given_name, p.family_name) == (given, family)]


async def test_police_adapter_is_an_adapter_that_can_probe(police: PoliceAdapter) -> None:
    assert isinstance(police, Adapter)
    assert isinstance(police, SupportsProbe)
    assert police.source == Source("POLICE")


async def test_finds_eva_thomson_by_date_of_birth(police: PoliceAdapter) -> None:
    people = await police.search(PersonQuery(date_of_birth=g.AVA_DOB))
    [eva] = by_name(people, "Eva", "Thomson")
    assert eva.source == Source("POLICE")
    assert eva.date_of_birth == g.AVA_DOB
    assert eva.nhs_number is None
    assert eva.sex == "female"
    assert eva.postcode == g.SHOWCASE_POSTCODE
    assert eva.address == g.SHOWCASE_ADDRESS
    assert eva.labels.agency == "police"
    assert all(p.date_of_birth == g.AVA_DOB for p in people)


async def test_eva_items_incident_and_conditional_intelligence(police: PoliceAdapter) -> None:
    [eva] = by_name(await police.search(PersonQuery(date_of_birth=g.AVA_DOB)), "Eva", "Thomson")
    items = await police.items([eva.local_id])
    incidents = [i for i in items if i.kind == "police.incident"]
    intel = [i for i in items if i.kind == "police.intelligence"]
    assert len(incidents) == 1
    inc = incidents[0]
    assert inc.data["category"] == "DOMESTIC_ABUSE"
    assert inc.data["dash_risk"] == "HIGH"
    assert inc.data["role"] == "PRESENT"
    assert inc.person_id == eva.local_id
    assert inc.labels.agency == "police"
    assert inc.labels.special_categories == frozenset({"criminal_offence"})
    assert len(intel) == 1
    assert intel[0].labels.handling_code == "C"
    assert intel[0].data["handling_code"] == "C"
    assert intel[0].labels.investigation_sensitive is False
    for item in items:
        assert tuple(item.data) == kind_fields()[item.kind]


async def test_partner_is_suspect_with_intelligence(police: PoliceAdapter) -> None:
    people = await police.search(PersonQuery(family_name="carter", postcodes=("ht42qx",)))
    [liam] = by_name(people, "Liam", "Carter")
    [jade] = by_name(people, "Jade", "Thompson")
    items = await police.items([liam.local_id, jade.local_id])
    liam_roles = {
        (i.data["dash_risk"], i.data["role"])
        for i in items
        if i.kind == "police.incident" and i.person_id == liam.local_id
    }
    assert liam_roles == {("HIGH", "SUSPECT"), ("MEDIUM", "SUSPECT")}
    jade_roles = [
        i.data["role"]
        for i in items
        if i.kind == "police.incident" and i.person_id == jade.local_id
    ]
    assert jade_roles == ["VICTIM"]
    intel = [i for i in items if i.kind == "police.intelligence"]
    assert {(i.labels.handling_code, i.labels.investigation_sensitive) for i in intel} == {
        ("C", False),
        ("P", True),
    }
    assert all(i.person_id == liam.local_id for i in intel)
    assert all(isinstance(i.data["intelligence_grade"], int) for i in intel)


async def test_any_key_matches_and_postcode_is_normalised(police: PoliceAdapter) -> None:
    by_postcode = await police.search(PersonQuery(postcodes=("ht4 2qx",)))
    names = {(p.given_name, p.family_name) for p in by_postcode}
    assert {
        ("Eva", "Thomson"),
        ("Noah", "Thomson"),
        ("Jade", "Thompson"),
        ("Liam", "Carter"),
    } <= names
    by_nhs = await police.search(PersonQuery(nhs_number=g.LIAM_NHS))
    assert [p.given_name for p in by_nhs] == ["Liam"]
    union = await police.search(PersonQuery(nhs_number=g.LIAM_NHS, date_of_birth=g.AVA_DOB))
    assert {"Liam", "Eva"} <= {p.given_name for p in union}
    by_family = await police.search(PersonQuery(family_name="THOMPSON"))
    assert by_name(by_family, "Jade", "Thompson")


async def test_swapped_date_of_birth_is_searched_only_together_with_the_family_key(
    police: PoliceAdapter,
) -> None:
    # Only rows with the family key on the swapped date come back beside the exact date.
    people = await police.search(PersonQuery(family_name="Thompson", date_of_birth=g.NOAH_DOB))
    swapped = {p.date_of_birth for p in people} - {g.NOAH_DOB}
    assert swapped <= {g.NOAH_DOB_SWAPPED}
    assert all(p.date_of_birth in (g.NOAH_DOB, g.NOAH_DOB_SWAPPED) for p in people)


@pytest.mark.parametrize("key", list(QUERIES))
async def test_candidate_search_never_scans_persons(police_db: str, key: str) -> None:
    found = candidate_search(schema.persons, schema.person_name_keys, QUERIES[key])
    assert found is not None
    statement, params = found
    assert await full_scans(police_db, statement.params(params)) == []


async def test_scan_check_sees_a_leading_wildcard_search(police_db: str) -> None:
    # The control for the test above: a LIKE '%...' has no index to use.
    statement = sa.select(schema.persons).where(schema.persons.c.family_name.like("%son"))
    assert await full_scans(police_db, statement) != []


async def test_missing_episodes_and_warning_markers_are_labelled(
    police: PoliceAdapter, police_db: str
) -> None:
    missing = await _rows(police_db, sa.select(schema.missing_episodes.c.person_id))
    markers = await _rows(
        police_db, sa.select(schema.warning_markers.c.person_id, schema.warning_markers.c.marker)
    )
    assert missing and markers, "the demo data has missing episodes and warning markers"
    ids = [missing[0][0], *(m[0] for m in markers)]
    items = await police.items(ids)
    episodes = [i for i in items if i.kind == "police.missing_episode"]
    assert episodes and all(i.labels.agency == "police" for i in episodes)
    found = [i for i in items if i.kind == "police.warning_marker"]
    assert {i.data["marker"] for i in found} == {m[1] for m in markers}
    for item in found:
        health = item.data["marker"] in ("MENTAL_HEALTH", "SELF_HARM")
        expected = {"health", "mental_health"} if health else {"criminal_offence"}
        assert item.labels.special_categories == expected
    for item in [*episodes, *found]:
        assert tuple(item.data) == kind_fields()[item.kind]


async def test_probe_counts_persons(police: PoliceAdapter, police_db: str) -> None:
    health = await police.probe()
    assert (health.reachable, health.authenticated) == (True, True)
    [(count,)] = await _rows(police_db, sa.select(sa.func.count()).select_from(schema.persons))
    assert health.record_count is not None and count
    assert abs(health.record_count - count) <= count // 10  # PostgreSQL gives an estimate


async def test_items_of_a_household_are_read_on_one_connection(
    police: PoliceAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = police._db.engine
    checkouts: list[object] = []
    if isinstance(engine, AsyncEngine):
        sa.event.listen(engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
    else:  # SQLite: plain sqlite3 connections, kept by the source
        checkout = engine.checkout
        monkeypatch.setattr(engine, "checkout", lambda: checkouts.append(1) or checkout())
    people = await police.search(PersonQuery(postcodes=(g.SHOWCASE_POSTCODE,)))
    checkouts.clear()

    items = await police.items([p.local_id for p in people])

    assert {i.kind for i in items} >= {"police.incident", "police.intelligence"}
    assert len(checkouts) == 1, "four tables, one connection"


async def test_unknown_person_is_empty(police: PoliceAdapter) -> None:
    query = PersonQuery(
        nhs_number="9000000009",
        family_name="Zzyzx",
        date_of_birth=g.DEFAULT_TODAY,
        postcodes=("ZZ9 9ZZ",),
    )
    assert await police.search(query) == []
    assert await police.search(PersonQuery()) == []
    assert await police.items(["no-such-person"]) == []
    assert await police.items([]) == []


async def test_unreachable_database_is_unavailable() -> None:
    adapter = PoliceAdapter.from_config(
        {"url": "postgresql://postgres@127.0.0.1:1/x", "timeout_s": 2}
    )
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(PersonQuery(family_name="Thompson"))
        assert "Thompson" not in str(info.value)
        with pytest.raises(SourceUnavailable):
            await adapter.items(["PP000001"])
    finally:
        await adapter.aclose()


async def test_database_without_tables_is_misconfigured(tmp_path: Path) -> None:
    adapter = PoliceAdapter.from_config({"url": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.search(PersonQuery(family_name="Thompson"))
        with pytest.raises(SourceMisconfigured):
            await adapter.probe()
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("change", ["role", "database"])
async def test_unknown_role_or_database_is_misconfigured(
    postgres_sources: dict[str, str], change: str
) -> None:
    url = make_url(postgres_sources["police"])
    url = url.set(username="no_such_role") if change == "role" else url.set(database="nope")
    adapter = PoliceAdapter.from_config({"url": url.render_as_string(hide_password=False)})
    try:
        with pytest.raises(SourceMisconfigured) as info:
            await adapter.probe()
        assert "no_such_role" not in str(info.value) and "nope" not in str(info.value)
    finally:
        await adapter.aclose()


def test_missing_url_is_misconfigured() -> None:
    with pytest.raises(SourceMisconfigured):
        PoliceAdapter.from_config({})


async def _rows(url: str, statement: sa.Select[Any]) -> list[Any]:
    """Rows straight from the source database (to compare the adapter with)."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).all())
    finally:
        await engine.dispose()
