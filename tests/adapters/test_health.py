"""HealthAdapter against the demo FHIR R4 server running on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.base import (
    KINDS,
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceUnavailable,
)
from adapters.health import HealthAdapter
from hub.demo import generator as g


@pytest.fixture
async def health(health_url: str) -> AsyncIterator[HealthAdapter]:
    adapter = HealthAdapter.from_config({"url": health_url, "timeout_s": 5})
    yield adapter
    await adapter.aclose()


async def test_is_an_adapter(health: HealthAdapter) -> None:
    assert isinstance(health, Adapter)
    assert health.source is Source.HEALTH


async def test_finds_ava_by_nhs_number(health: HealthAdapter) -> None:
    [ava] = await health.search(PersonQuery(nhs_number="943 476 5919"))
    assert (ava.given_name, ava.family_name) == ("Ava", "Thompson")
    assert ava.date_of_birth == g.AVA_DOB
    assert ava.nhs_number == g.AVA_NHS
    assert ava.sex == "female"
    assert ava.postcode == g.SHOWCASE_POSTCODE
    assert ava.address == g.SHOWCASE_ADDRESS
    assert ava.labels.agency == "health"
    assert ava.labels.location_protected is False


async def test_ava_has_two_ae_attendances_and_a_child_protection_plan(
    health: HealthAdapter,
) -> None:
    [ava] = await health.search(PersonQuery(nhs_number=g.AVA_NHS))
    items = await health.items([ava.local_id])
    encounters = [i for i in items if i.kind == "health.encounter"]
    plans = [i for i in items if i.kind == "health.plan"]
    assert len(encounters) == 2
    assert {e.data["encounter_class"] for e in encounters} == {"A&E"}
    assert all(e.data["reason"] for e in encounters)
    assert [(p.data["category"], p.data["status"]) for p in plans] == [("CPP", "active")]
    for item in items:
        assert item.person_id == ava.local_id
        assert item.labels.agency == "health"
        assert item.labels.special_categories == frozenset({"health"})
        assert tuple(item.data) == KINDS[item.kind]


async def test_any_key_is_a_union(health: HealthAdapter) -> None:
    family = await health.search(PersonQuery(family_name="thompson"))
    names = {(p.given_name, p.date_of_birth) for p in family}
    assert {("Ava", g.AVA_DOB), ("Noah", g.NOAH_DOB), ("Jade", g.JADE_DOB)} <= names
    assert all("thompson" in (p.family_name or "").lower() for p in family)
    by_dob = await health.search(PersonQuery(date_of_birth=g.NOAH_DOB))
    assert g.NOAH_NHS in {p.nhs_number for p in by_dob}
    by_postcode = await health.search(PersonQuery(postcodes=("ht42qx",)))
    assert {g.AVA_NHS, g.NOAH_NHS, g.JADE_NHS, g.LIAM_NHS} <= {p.nhs_number for p in by_postcode}
    union = await health.search(PersonQuery(nhs_number=g.AVA_NHS, date_of_birth=g.NOAH_DOB))
    ids = [p.local_id for p in union]
    assert len(ids) == len(set(ids))
    assert {g.AVA_NHS, g.NOAH_NHS} <= {p.nhs_number for p in union}


async def test_items_for_several_people(health: HealthAdapter) -> None:
    people = await health.search(PersonQuery(postcodes=(g.SHOWCASE_POSTCODE,)))
    items = await health.items([p.local_id for p in people])
    [ava] = [p for p in people if p.nhs_number == g.AVA_NHS]
    assert {i.person_id for i in items} == {ava.local_id}  # only Ava has health items


async def test_restricted_patient_is_location_protected(
    health: HealthAdapter, demo_data: Path
) -> None:
    store = json.loads((demo_data / "sources" / "health.json").read_text())
    restricted = [p for p in store["Patient"] if p.get("meta", {}).get("security")]
    assert restricted, "the demo data should contain at least one sensitive patient"
    nhs = restricted[0]["identifier"][0]["value"]
    [person] = await health.search(PersonQuery(nhs_number=nhs))
    assert person.labels.location_protected is True


async def test_unknown_person_is_empty(health: HealthAdapter) -> None:
    query = PersonQuery(
        nhs_number="9000000009",
        family_name="Zzyzx",
        date_of_birth=g.DEFAULT_TODAY,
        postcodes=("ZZ9 9ZZ",),
    )
    assert await health.search(query) == []
    assert await health.search(PersonQuery()) == []
    assert await health.items(["no-such-patient"]) == []


async def test_closed_port_is_unavailable(closed_port: int) -> None:
    adapter = HealthAdapter.from_config({"url": f"http://127.0.0.1:{closed_port}/fhir"})
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS, family_name="Thompson"))
        assert g.AVA_NHS not in str(info.value) and "Thompson" not in str(info.value)
        with pytest.raises(SourceUnavailable):
            await adapter.items(["pat-000001"])
    finally:
        await adapter.aclose()


async def test_wrong_base_url_is_misconfigured(health_url: str) -> None:
    adapter = HealthAdapter.from_config({"url": health_url.replace("/fhir", "/nope")})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS))
    finally:
        await adapter.aclose()


def test_non_http_url_is_misconfigured() -> None:
    with pytest.raises(SourceMisconfigured):
        HealthAdapter.from_config({"url": "sqlite:///x"})


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("401", SourceMisconfigured),
        ("403", SourceMisconfigured),
        ("503", SourceUnavailable),
        ("text", SourceResponseInvalid),
        ("patient", SourceResponseInvalid),
        ("badbundle", SourceResponseInvalid),
    ],
)
async def test_bad_answers_map_to_source_errors(
    misbehaving_url: str, mode: str, error: type[Exception]
) -> None:
    adapter = HealthAdapter.from_config({"url": f"{misbehaving_url}/{mode}/fhir"})
    try:
        with pytest.raises(error):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS, date_of_birth=g.AVA_DOB))
    finally:
        await adapter.aclose()
