"""AdultSocialCareAdapter against the demo REST/JSON API on loopback: OAuth 2.0 client
credentials, cursor paging, batched involvements, Retry-After, retries and error mapping.
(What every adapter must do is in test_contract.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import kind_fields
from adapters.adult_social_care import AdultSocialCareAdapter
from adapters.base import (
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceUnavailable,
    SupportsProbe,
)
from hub.demo import generator as g

from .conftest import DemoServer, RequestLog

TOKEN_PATH = "/oauth/token"


@pytest.fixture
async def asc(asc_config: dict[str, Any]) -> AsyncIterator[AdultSocialCareAdapter]:
    adapter = AdultSocialCareAdapter.from_config(asc_config)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def logged(
    asc_config: dict[str, Any], request_log: RequestLog
) -> AsyncIterator[AdultSocialCareAdapter]:
    """The adapter with every request it sends recorded in `request_log`."""
    adapter = AdultSocialCareAdapter.from_config(asc_config, event_hooks=request_log.hooks)
    yield adapter
    await adapter.aclose()


async def test_asc_adapter_is_an_adapter_that_can_probe(asc: AdultSocialCareAdapter) -> None:
    assert isinstance(asc, Adapter)
    assert isinstance(asc, SupportsProbe)
    assert asc.source == Source("ADULT_SOCIAL_CARE")


async def test_search_finds_jade_by_any_key(asc: AdultSocialCareAdapter) -> None:
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


async def test_mental_health_involvement_is_special_category(
    asc: AdultSocialCareAdapter,
) -> None:
    [jade] = await asc.search(PersonQuery(nhs_number=g.JADE_NHS))
    items = await asc.items([jade.local_id])
    [item] = [i for i in items if i.data["involvement_type"] == "MENTAL_HEALTH"]
    assert item.kind == "adult_social_care.involvement"
    assert item.person_id == jade.local_id
    assert item.labels.agency == "adult_social_care"
    assert item.labels.special_categories == frozenset({"health", "mental_health"})
    assert tuple(item.data) == kind_fields()[item.kind]


async def test_special_categories_follow_the_involvement_type(
    asc: AdultSocialCareAdapter, demo_data: Path
) -> None:
    document = _asc_people(demo_data)
    items = await asc.items(document[:50])
    assert items
    expected = {
        "MENTAL_HEALTH": {"health", "mental_health"},
        "SUBSTANCE_MISUSE": {"health", "substance_misuse"},
        "CARE_ACT_S42": {"health"},
        "CARE_NEEDS": {"health"},
    }
    for i in items:
        assert i.labels.special_categories == expected[i.data["involvement_type"]]


async def test_children_and_unknown_people_are_not_known(asc: AdultSocialCareAdapter) -> None:
    assert await asc.search(PersonQuery(nhs_number=g.AVA_NHS, date_of_birth=g.AVA_DOB)) == []
    query = PersonQuery(
        nhs_number="9000000009",
        family_name="Zzyzx",
        date_of_birth=g.DEFAULT_TODAY,
        postcodes=("ZZ9 9ZZ",),
    )
    assert await asc.search(query) == []
    assert await asc.search(PersonQuery()) == []
    assert await asc.items(["no-such-person"]) == []


async def test_search_follows_the_cursor_across_pages(
    asc_config: dict[str, Any], request_log: RequestLog
) -> None:
    query = PersonQuery(postcodes=(g.SHOWCASE_POSTCODE,), family_name="Smith")
    whole = AdultSocialCareAdapter.from_config(asc_config)
    paged = AdultSocialCareAdapter.from_config(
        {**asc_config, "page_size": 1}, event_hooks=request_log.hooks
    )
    try:
        expected = await whole.search(query)
        assert len(expected) > 2
        assert await paged.search(query) == expected
        assert request_log.count("/persons") >= len(expected)
    finally:
        await whole.aclose()
        await paged.aclose()


async def test_involvements_come_in_one_request_per_fifty_people(
    logged: AdultSocialCareAdapter, request_log: RequestLog, demo_data: Path
) -> None:
    ids = _asc_people(demo_data)[:60]
    items = await logged.items(ids)
    assert items and {i.person_id for i in items} <= set(ids)
    assert request_log.count("/involvements") == 2


async def test_token_is_fetched_once_and_reused_across_calls(
    logged: AdultSocialCareAdapter, request_log: RequestLog
) -> None:
    # Four keys searched concurrently by a fresh adapter still fetch one token.
    people = await logged.search(
        PersonQuery(
            nhs_number=g.JADE_NHS,
            date_of_birth=g.JADE_DOB,
            family_name="Thompson",
            postcodes=(g.SHOWCASE_POSTCODE,),
        )
    )
    await logged.items([p.local_id for p in people])
    await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    assert request_log.count(TOKEN_PATH, method="POST") == 1
    assert logged.tokens_fetched == 1


async def test_token_is_fetched_again_once_it_expires(
    asc_config: dict[str, Any], request_log: RequestLog
) -> None:
    # The demo tokens live 300 s; a leeway of 299 s makes ours stale after about a second.
    adapter = AdultSocialCareAdapter.from_config(
        {**asc_config, "token_leeway_s": 299}, event_hooks=request_log.hooks
    )
    try:
        await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        assert request_log.count(TOKEN_PATH, method="POST") == 1
        await asyncio.sleep(2.1)
        assert await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        assert request_log.count(TOKEN_PATH, method="POST") == 2
    finally:
        await adapter.aclose()


async def test_rejected_token_is_replaced_once_then_the_call_succeeds(
    logged: AdultSocialCareAdapter, request_log: RequestLog, asc_demo: DemoServer
) -> None:
    await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    asc_demo.fault("unauthorized", count=1)
    assert await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    assert request_log.count(TOKEN_PATH, method="POST") == 2


async def test_unauthorized_after_a_fresh_token_means_fix_the_configuration(
    asc: AdultSocialCareAdapter, asc_demo: DemoServer
) -> None:
    await asc.search(PersonQuery(nhs_number=g.JADE_NHS))
    asc_demo.fault("unauthorized")
    with pytest.raises(SourceMisconfigured):
        await asc.search(PersonQuery(nhs_number=g.JADE_NHS))


async def test_wrong_client_secret_means_fix_the_configuration(
    asc_config: dict[str, Any],
) -> None:
    adapter = AdultSocialCareAdapter.from_config({**asc_config, "client_secret": "wrong"})
    try:
        with pytest.raises(SourceMisconfigured) as info:
            await adapter.search(PersonQuery(family_name="Thompson"))
        assert "wrong" not in str(info.value) and "Thompson" not in str(info.value)
        with pytest.raises(SourceMisconfigured):
            await adapter.probe()
    finally:
        await adapter.aclose()


async def test_credentials_can_come_from_the_seeded_client_file(
    asc_demo: DemoServer, demo_data: Path
) -> None:
    adapter = AdultSocialCareAdapter.from_config(
        {"url": asc_demo.url, "credentials_file": str(demo_data / "sources" / "asc_client.json")}
    )
    try:
        assert await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
    finally:
        await adapter.aclose()


def test_unreadable_credentials_file_is_misconfigured(asc_demo: DemoServer, tmp_path: Path) -> None:
    (tmp_path / "client.json").write_text("{not json")
    with pytest.raises(SourceMisconfigured):
        AdultSocialCareAdapter.from_config(
            {"url": asc_demo.url, "credentials_file": str(tmp_path / "client.json")}
        )


@pytest.mark.parametrize("missing", ["client_id", "client_secret"])
def test_missing_client_credentials_are_misconfigured(
    asc_config: dict[str, Any], missing: str
) -> None:
    with pytest.raises(SourceMisconfigured, match=missing):
        AdultSocialCareAdapter.from_config({k: v for k, v in asc_config.items() if k != missing})


async def test_probe_reports_the_person_count_and_checks_credentials(
    logged: AdultSocialCareAdapter, request_log: RequestLog, demo_data: Path
) -> None:
    health = await logged.probe()
    assert (health.reachable, health.authenticated) == (True, True)
    assert health.record_count == len(_asc_people(demo_data))
    assert request_log.count(TOKEN_PATH, method="POST") == 1
    assert request_log.count("/persons") == 0


async def test_retry_after_is_honoured_when_it_fits_the_budget(
    logged: AdultSocialCareAdapter, request_log: RequestLog, asc_demo: DemoServer
) -> None:
    await logged.search(PersonQuery(nhs_number=g.JADE_NHS))  # token first
    asc_demo.fault("ratelimit", count=1)
    started = time.monotonic()
    assert await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert request_log.count("/persons") == 3


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    asc_config: dict[str, Any], asc_demo: DemoServer
) -> None:
    adapter = AdultSocialCareAdapter.from_config({**asc_config, "timeout_s": 0.8})
    try:
        await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        asc_demo.fault("ratelimit", count=1)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        assert time.monotonic() - started < 0.5
    finally:
        await adapter.aclose()


async def test_server_error_is_retried_then_answered(
    logged: AdultSocialCareAdapter, request_log: RequestLog, asc_demo: DemoServer
) -> None:
    await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    asc_demo.fault("error", count=2)
    assert await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    assert request_log.count("/persons") == 4


async def test_persistent_server_error_is_unavailable_after_bounded_retries(
    logged: AdultSocialCareAdapter, request_log: RequestLog, asc_demo: DemoServer
) -> None:
    await logged.search(PersonQuery(nhs_number=g.JADE_NHS))
    asc_demo.fault("error")
    with pytest.raises(SourceUnavailable):
        await logged.items(["ASC000001"])
    assert request_log.count("/involvements") == 3


async def test_hung_source_is_unavailable_within_the_adapters_own_budget(
    asc_config: dict[str, Any], asc_demo: DemoServer
) -> None:
    adapter = AdultSocialCareAdapter.from_config({**asc_config, "timeout_s": 0.5})
    try:
        await adapter.search(PersonQuery(nhs_number=g.JADE_NHS))
        asc_demo.fault("hang")
        started = time.monotonic()
        with pytest.raises(SourceUnavailable):
            await adapter.search(PersonQuery(nhs_number=g.JADE_NHS, family_name="Thompson"))
        assert time.monotonic() - started < 1.0
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("mode", ["malformed", "partial"])
async def test_unreadable_body_is_an_invalid_response(
    asc: AdultSocialCareAdapter, asc_demo: DemoServer, mode: str
) -> None:
    await asc.search(PersonQuery(nhs_number=g.JADE_NHS))
    asc_demo.fault(mode)
    with pytest.raises(SourceResponseInvalid):
        await asc.search(PersonQuery(family_name="Thompson"))
    with pytest.raises(SourceResponseInvalid):
        await asc.items(["ASC000001"])


async def test_closed_port_is_unavailable(closed_port: int, asc_client: dict[str, str]) -> None:
    adapter = AdultSocialCareAdapter.from_config(
        {"url": f"http://127.0.0.1:{closed_port}/api/v1", **asc_client}
    )
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(PersonQuery(family_name="Thompson"))
        assert "Thompson" not in str(info.value)
        with pytest.raises(SourceUnavailable):
            await adapter.items(["ASC000001"])
    finally:
        await adapter.aclose()


async def test_wrong_base_url_is_misconfigured(asc_config: dict[str, Any]) -> None:
    url = asc_config["url"].replace("/api/v1", "/v0")
    adapter = AdultSocialCareAdapter.from_config({**asc_config, "url": url, "token_url": "token"})
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
        ("404", SourceMisconfigured),
        ("503", SourceUnavailable),
        ("text", SourceResponseInvalid),
        ("noitems", SourceResponseInvalid),
        ("offsite", SourceResponseInvalid),
    ],
)
async def test_bad_answers_map_to_what_the_caller_should_do(
    misbehaving_url: str, mode: str, error: type[Exception]
) -> None:
    adapter = AdultSocialCareAdapter.from_config(
        {
            "url": f"{misbehaving_url}/{mode}/api/v1",
            "client_id": "c",
            "client_secret": "s",
            "retries": 0,
        }
    )
    try:
        with pytest.raises(error):
            await adapter.search(PersonQuery(family_name="Thompson"))
        with pytest.raises(error):
            await adapter.items(["ASC000001"])
    finally:
        await adapter.aclose()


def _asc_people(demo_data: Path) -> list[str]:
    """Ids of the adult social care persons, read from the server's own store."""
    import sqlite3

    with sqlite3.connect(demo_data / "sources" / "asc.sqlite3") as db:
        return [r[0] for r in db.execute("SELECT id FROM persons ORDER BY id")]
