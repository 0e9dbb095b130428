"""AdultSocialCareAdapter against the demo REST/JSON API running on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.adult_social_care import AdultSocialCareAdapter
from adapters.base import (
    KINDS,
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceUnavailable,
)
from hub.demo import generator as g


@pytest.fixture
async def asc(asc_url: str) -> AsyncIterator[AdultSocialCareAdapter]:
    adapter = AdultSocialCareAdapter.from_config({"url": asc_url, "timeout_s": 5})
    yield adapter
    await adapter.aclose()


async def test_is_an_adapter(asc: AdultSocialCareAdapter) -> None:
    assert isinstance(asc, Adapter)
    assert asc.source is Source.ADULT_SOCIAL_CARE


async def test_finds_jade_by_postcode(asc: AdultSocialCareAdapter) -> None:
    people = await asc.search(PersonQuery(postcodes=("ht4 2qx",)))
    [jade] = [p for p in people if p.given_name == "Jade"]
    assert jade.family_name == "Thompson"
    assert jade.date_of_birth == g.JADE_DOB
    assert jade.nhs_number == g.JADE_NHS
    assert jade.sex == "female"
    assert jade.postcode == g.SHOWCASE_POSTCODE
    assert jade.labels.agency == "adult_social_care"
    by_nhs = await asc.search(PersonQuery(nhs_number=g.JADE_NHS))
    assert [p.local_id for p in by_nhs] == [jade.local_id]
    by_family = await asc.search(PersonQuery(family_name="THOMPSON", date_of_birth=g.JADE_DOB))
    assert jade.local_id in {p.local_id for p in by_family}


async def test_mental_health_involvement(asc: AdultSocialCareAdapter) -> None:
    [jade] = await asc.search(PersonQuery(nhs_number=g.JADE_NHS))
    items = await asc.items([jade.local_id])
    assert [i.data["involvement_type"] for i in items] == ["MENTAL_HEALTH"]
    [item] = items
    assert item.kind == "adult_social_care.involvement"
    assert item.person_id == jade.local_id
    assert item.data["status"] == "OPEN"
    assert item.labels.agency == "adult_social_care"
    assert item.labels.special_categories == frozenset({"health", "mental_health"})
    assert tuple(item.data) == KINDS[item.kind]


async def test_special_categories_by_type(asc: AdultSocialCareAdapter) -> None:
    people = await asc.search(PersonQuery(family_name="Smith"))
    people += await asc.search(PersonQuery(postcodes=tuple(p.postcode for p in people)))
    items = await asc.items([p.local_id for p in people[:40]])
    assert items
    expected = {
        "MENTAL_HEALTH": {"health", "mental_health"},
        "SUBSTANCE_MISUSE": {"health", "substance_misuse"},
        "CARE_ACT_S42": {"health"},
        "CARE_NEEDS": {"health"},
    }
    for i in items:
        assert i.labels.special_categories == expected[i.data["involvement_type"]]


async def test_children_are_not_known(asc: AdultSocialCareAdapter) -> None:
    assert await asc.search(PersonQuery(nhs_number=g.AVA_NHS, date_of_birth=g.AVA_DOB)) == []


async def test_unknown_person_is_empty(asc: AdultSocialCareAdapter) -> None:
    query = PersonQuery(
        nhs_number="9000000009",
        family_name="Zzyzx",
        date_of_birth=g.DEFAULT_TODAY,
        postcodes=("ZZ9 9ZZ",),
    )
    assert await asc.search(query) == []
    assert await asc.search(PersonQuery()) == []
    assert await asc.items(["no-such-person"]) == []


async def test_closed_port_is_unavailable(closed_port: int) -> None:
    adapter = AdultSocialCareAdapter.from_config({"url": f"http://127.0.0.1:{closed_port}/api/v1"})
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(PersonQuery(family_name="Thompson"))
        assert "Thompson" not in str(info.value)
        with pytest.raises(SourceUnavailable):
            await adapter.items(["ASC000001"])
    finally:
        await adapter.aclose()


async def test_wrong_base_url_is_misconfigured(asc_url: str) -> None:
    adapter = AdultSocialCareAdapter.from_config({"url": asc_url.replace("/api/v1", "/v0")})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.search(PersonQuery(family_name="Thompson"))
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("401", SourceMisconfigured),
        ("403", SourceMisconfigured),
        ("503", SourceUnavailable),
        ("text", SourceResponseInvalid),
        ("noitems", SourceResponseInvalid),
    ],
)
async def test_bad_answers_map_to_source_errors(
    misbehaving_url: str, mode: str, error: type[Exception]
) -> None:
    adapter = AdultSocialCareAdapter.from_config({"url": f"{misbehaving_url}/{mode}/api/v1"})
    try:
        with pytest.raises(error):
            await adapter.search(PersonQuery(family_name="Thompson"))
        with pytest.raises(error):
            await adapter.items(["ASC000001"])
    finally:
        await adapter.aclose()
