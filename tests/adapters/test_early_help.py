"""EarlyHelpAdapter against the seeded demo early help database (SQLite and PostgreSQL):
indexed candidate search, episodes and consent, probe, error mapping.
(What every adapter must do is in test_contract.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters import early_help as schema
from adapters import kind_fields
from adapters.base import (
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceUnavailable,
    SupportsProbe,
)
from adapters.early_help import EarlyHelpAdapter
from adapters.sql import candidate_search
from hub.demo import generator as g
from hub.demo import sources

from .conftest import QUERIES, full_scans


@pytest.fixture(scope="session")
def early_help_db(sql_backend: str, demo_data: Path, request: pytest.FixtureRequest) -> str:
    if sql_backend == "sqlite":
        return sources.default_store_url(demo_data, "early_help")
    return request.getfixturevalue("postgres_sources")["early_help"]


@pytest.fixture
async def early_help(early_help_db: str) -> AsyncIterator[EarlyHelpAdapter]:
    adapter = EarlyHelpAdapter.from_config({"url": early_help_db})
    yield adapter
    await adapter.aclose()


def by_name(people, given, family):
    return [p for p in people if (p.given_name, p.family_name) == (given, family)]


async def test_early_help_adapter_is_an_adapter_that_can_probe(
    early_help: EarlyHelpAdapter,
) -> None:
    assert isinstance(early_help, Adapter)
    assert isinstance(early_help, SupportsProbe)
    assert early_help.source == Source("EARLY_HELP")
    health = await early_help.probe()
    assert (health.reachable, health.authenticated) == (True, True)
    assert health.record_count and health.record_count > 0


async def test_family_name_with_date_of_birth_finds_noah_keyed_with_day_and_month_swapped(
    early_help: EarlyHelpAdapter,
) -> None:
    people = await early_help.search(PersonQuery(family_name="Thompson", date_of_birth=g.NOAH_DOB))
    [noah] = by_name(people, "Noah", "Thompson")
    assert noah.date_of_birth == g.NOAH_DOB_SWAPPED
    # The swapped date is only searched together with the family key.
    assert {p.date_of_birth for p in people} <= {g.NOAH_DOB, g.NOAH_DOB_SWAPPED}


@pytest.mark.parametrize("key", list(QUERIES))
async def test_candidate_search_never_scans_persons(early_help_db: str, key: str) -> None:
    found = candidate_search(schema.persons, schema.person_name_keys, QUERIES[key])
    assert found is not None
    statement, params = found
    assert await full_scans(early_help_db, statement.params(params)) == []


@pytest.mark.parametrize(
    "family", ["Thompson", "thompson", "Reid", "Thompson-Reid", "THOMPSON REID"]
)
async def test_hyphenated_name_matches_either_part(
    early_help: EarlyHelpAdapter, family: str
) -> None:
    people = await early_help.search(PersonQuery(family_name=family))
    [ava] = by_name(people, "Ava", "Thompson-Reid")
    assert ava.date_of_birth == g.AVA_DOB
    assert ava.postcode == g.SHOWCASE_PREVIOUS_POSTCODE
    assert ava.nhs_number is None
    assert ava.labels.agency == "early_help"


async def test_finds_ava_by_date_of_birth_and_noah_swapped(early_help: EarlyHelpAdapter) -> None:
    [ava] = by_name(
        await early_help.search(PersonQuery(date_of_birth=g.AVA_DOB)), "Ava", "Thompson-Reid"
    )
    assert ava.sex == "female"
    people = await early_help.search(PersonQuery(family_name="Thompson"))
    [noah] = by_name(people, "Noah", "Thompson")
    assert noah.date_of_birth == g.NOAH_DOB_SWAPPED
    by_previous = await early_help.search(PersonQuery(postcodes=(g.SHOWCASE_PREVIOUS_POSTCODE,)))
    assert {p.local_id for p in by_previous} >= {ava.local_id, noah.local_id}


async def test_episode_and_consent_items(early_help: EarlyHelpAdapter) -> None:
    [ava] = by_name(
        await early_help.search(PersonQuery(date_of_birth=g.AVA_DOB)), "Ava", "Thompson-Reid"
    )
    items = await early_help.items([ava.local_id])
    assert sorted(i.kind for i in items) == ["early_help.consent", "early_help.episode"]
    consent = next(i for i in items if i.kind == "early_help.consent")
    assert consent.data["status"] == "GIVEN"
    assert consent.data["given_by"] == "Jade Thompson"
    assert consent.data["scope"] == "share with MASH partners"
    episode = next(i for i in items if i.kind == "early_help.episode")
    assert episode.data["status"] == "OPEN"
    assert episode.data["lead_practitioner"]
    for item in items:
        assert item.person_id == ava.local_id
        assert item.labels.agency == "early_help"
        assert tuple(item.data) == kind_fields()[item.kind]


async def test_unknown_person_is_empty(early_help: EarlyHelpAdapter) -> None:
    query = PersonQuery(
        nhs_number="9000000009",
        family_name="Zzyzx",
        date_of_birth=g.DEFAULT_TODAY,
        postcodes=("ZZ9 9ZZ",),
    )
    assert await early_help.search(query) == []
    assert await early_help.items(["no-such-person"]) == []


async def test_unreachable_database_is_unavailable() -> None:
    adapter = EarlyHelpAdapter.from_config(
        {"url": "postgresql://postgres@127.0.0.1:1/x", "timeout_s": 2}
    )
    try:
        with pytest.raises(SourceUnavailable):
            await adapter.search(PersonQuery(date_of_birth=g.AVA_DOB))
        with pytest.raises(SourceUnavailable):
            await adapter.items(["EH000001"])
    finally:
        await adapter.aclose()


async def test_database_without_tables_is_misconfigured(tmp_path: Path) -> None:
    adapter = EarlyHelpAdapter.from_config({"url": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.items(["EH000001"])
    finally:
        await adapter.aclose()
