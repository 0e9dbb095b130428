"""PoliceAdapter against the seeded demo police database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.base import (
    KINDS,
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceUnavailable,
)
from adapters.police import PoliceAdapter
from hub.demo import generator as g
from hub.demo import sources


@pytest.fixture(scope="session")
def police_db(sql_backend: str, demo_data: Path, request: pytest.FixtureRequest) -> str:
    if sql_backend == "sqlite":
        return sources.default_police_url(demo_data)
    return request.getfixturevalue("postgres_sources")["police"]


@pytest.fixture
async def police(police_db: str) -> AsyncIterator[PoliceAdapter]:
    adapter = PoliceAdapter.from_config({"url": police_db, "timeout_s": 5})
    yield adapter
    await adapter.aclose()


def by_name(people, given, family):
    return [p for p in people if (p.given_name, p.family_name) == (given, family)]


async def test_is_an_adapter(police: PoliceAdapter) -> None:
    assert isinstance(police, Adapter)
    assert police.source is Source.POLICE


async def test_finds_eva_thomson_by_date_of_birth(police: PoliceAdapter) -> None:
    people = await police.search(PersonQuery(date_of_birth=g.AVA_DOB))
    [eva] = by_name(people, "Eva", "Thomson")
    assert eva.source is Source.POLICE
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
        assert tuple(item.data) == KINDS[item.kind]


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
    assert not by_name(by_family, "Eva", "Thomson")


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
    finally:
        await adapter.aclose()


def test_missing_url_is_misconfigured() -> None:
    with pytest.raises(SourceMisconfigured):
        PoliceAdapter.from_config({})
