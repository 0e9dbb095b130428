"""HealthAdapter against the demo FHIR R4 server on loopback: FHIR search semantics, paging,
_revinclude batching, security labels, bearer token, retries and error mapping.
(What every adapter must do is in test_contract.py.)"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters import kind_fields
from adapters.base import (
    Adapter,
    PersonQuery,
    Source,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceUnavailable,
    SupportsProbe,
)
from adapters.health import HealthAdapter
from hub.demo import generator as g

from .conftest import DemoServer, RequestLog


@pytest.fixture
async def health(health_config: dict[str, Any]) -> AsyncIterator[HealthAdapter]:
    adapter = HealthAdapter.from_config(health_config)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def logged(
    health_config: dict[str, Any], request_log: RequestLog
) -> AsyncIterator[HealthAdapter]:
    """The adapter with every request it sends recorded in `request_log`."""
    adapter = HealthAdapter.from_config(health_config, event_hooks=request_log.hooks)
    yield adapter
    await adapter.aclose()


def _store(demo_data: Path) -> sqlite3.Connection:
    return sqlite3.connect(demo_data / "sources" / "health.sqlite3")


async def test_health_adapter_is_an_adapter_that_can_probe(health: HealthAdapter) -> None:
    assert isinstance(health, Adapter)
    assert isinstance(health, SupportsProbe)
    assert health.source == Source("HEALTH")


async def test_search_finds_ava_by_nhs_number_when_spaced(health: HealthAdapter) -> None:
    [ava] = await health.search(PersonQuery(nhs_number="943 476 5919"))
    assert (ava.given_name, ava.family_name) == ("Ava", "Thompson")
    assert ava.date_of_birth == g.AVA_DOB
    assert ava.nhs_number == g.AVA_NHS
    assert ava.sex == "female"
    assert ava.postcode == g.SHOWCASE_POSTCODE
    assert ava.address == g.SHOWCASE_ADDRESS
    assert ava.labels.agency == "health"
    assert ava.labels.location_protected is False


async def test_patient_at_their_current_home_carries_its_uprn(health: HealthAdapter) -> None:
    [ava] = await health.search(PersonQuery(nhs_number=g.AVA_NHS))
    assert ava.uprn == g.SHOWCASE_UPRN
    family = await health.search(PersonQuery(postcodes=(g.SHOWCASE_POSTCODE,)))
    assert {p.given_name for p in family if p.uprn == g.SHOWCASE_UPRN} >= {"Ava", "Noah", "Jade"}


async def test_items_are_labelled_health_and_named_as_in_kinds(health: HealthAdapter) -> None:
    [ava] = await health.search(PersonQuery(nhs_number=g.AVA_NHS))
    items = await health.items([ava.local_id])
    encounters = [i for i in items if i.kind == "health.encounter"]
    plans = [i for i in items if i.kind == "health.plan"]
    assert len([e for e in encounters if e.data["encounter_class"] == "A&E"]) >= 2
    assert ("CPP", "active") in [(p.data["category"], p.data["status"]) for p in plans]
    for item in items:
        assert item.person_id == ava.local_id
        assert item.labels.agency == "health"
        assert "health" in item.labels.special_categories
        assert tuple(item.data) == kind_fields()[item.kind]


async def test_search_is_a_union_of_one_search_per_key(
    logged: HealthAdapter, request_log: RequestLog
) -> None:
    union = await logged.search(
        PersonQuery(nhs_number=g.AVA_NHS, date_of_birth=g.NOAH_DOB, postcodes=("ht42qx",))
    )
    ids = [p.local_id for p in union]
    assert len(ids) == len(set(ids))
    assert {g.AVA_NHS, g.NOAH_NHS, g.JADE_NHS} <= {p.nhs_number for p in union}
    assert request_log.count("/Patient") == 3
    family = await logged.search(PersonQuery(family_name="Thompson-Reid"))
    assert {("Ava", g.AVA_DOB), ("Jade", g.JADE_DOB)} <= {
        (p.given_name, p.date_of_birth) for p in family
    }


async def test_search_follows_next_links_when_results_span_pages(
    health_config: dict[str, Any], request_log: RequestLog
) -> None:
    query = PersonQuery(postcodes=(g.SHOWCASE_POSTCODE,), family_name="Thompson")
    whole = HealthAdapter.from_config(health_config)
    paged = HealthAdapter.from_config(
        {**health_config, "page_size": 2}, event_hooks=request_log.hooks
    )
    try:
        expected = await whole.search(query)
        assert len(expected) > 2
        assert await paged.search(query) == expected
        assert request_log.count("/Patient") > 2  # more pages than keys
    finally:
        await whole.aclose()
        await paged.aclose()


async def test_items_come_in_one_request_per_batch_of_fifty_patients(
    logged: HealthAdapter, request_log: RequestLog, demo_data: Path
) -> None:
    with _store(demo_data) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM patients ORDER BY id LIMIT 60")]
        encounter_count = db.execute(
            f"SELECT count(*) FROM encounters WHERE patient_id IN ({','.join('?' * 60)})", ids
        ).fetchone()[0]
    items = await logged.items(ids)
    assert len([i for i in items if i.kind == "health.encounter"]) == encounter_count
    assert request_log.count("/Patient") == 2
    assert request_log.count("/Encounter") == request_log.count("/CarePlan") == 0
    assert {i.person_id for i in items} <= set(ids)


async def test_restricted_patient_and_their_items_are_location_protected(
    health: HealthAdapter, demo_data: Path
) -> None:
    with _store(demo_data) as db:
        row = db.execute(
            "SELECT p.nhs_number FROM patients p WHERE p.restricted AND p.nhs_number IS NOT NULL"
            " ORDER BY (SELECT count(*) FROM encounters e WHERE e.patient_id = p.id) DESC"
        ).fetchone()
    assert row, "the demo data should contain at least one sensitive patient"
    [person] = await health.search(PersonQuery(nhs_number=row[0]))
    assert person.labels.location_protected is True
    items = await health.items([person.local_id])
    assert all(i.labels.location_protected for i in items)


async def test_sexual_health_encounter_is_labelled_as_such(misbehaving_url: str) -> None:
    # The demo data has no sexual health content: a canned Bundle stands in.
    adapter = HealthAdapter.from_config({"url": f"{misbehaving_url}/sexualhealth/fhir"})
    try:
        items = {i.local_id: i for i in await adapter.items(["p1"])}
    finally:
        await adapter.aclose()
    assert items["e1"].labels.special_categories == {"health", "sexual_health"}
    assert items["e2"].labels.special_categories == {"health"}
    assert all(i.labels.location_protected for i in items.values())


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


async def test_probe_counts_patients_without_reading_any(
    logged: HealthAdapter, request_log: RequestLog, demo_data: Path
) -> None:
    health = await logged.probe()
    assert (health.reachable, health.authenticated) == (True, True)
    with _store(demo_data) as db:
        patients = db.execute("SELECT count(*) FROM patients").fetchone()[0]
    assert health.record_count in (patients, None)
    assert request_log.count("/metadata") == 1


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_means_fix_the_configuration(
    health_config: dict[str, Any], token: str | None
) -> None:
    adapter = HealthAdapter.from_config({**health_config, "token": token})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS))
        with pytest.raises(SourceMisconfigured):
            await adapter.probe()
    finally:
        await adapter.aclose()


async def test_server_error_is_retried_then_answered(
    logged: HealthAdapter, request_log: RequestLog, health_demo: DemoServer
) -> None:
    health_demo.fault("error", count=2)
    assert len(await logged.search(PersonQuery(nhs_number=g.AVA_NHS))) == 1
    assert request_log.count("/Patient") == 3


async def test_persistent_server_error_is_unavailable_after_bounded_retries(
    logged: HealthAdapter, request_log: RequestLog, health_demo: DemoServer
) -> None:
    health_demo.fault("error")
    with pytest.raises(SourceUnavailable) as info:
        await logged.search(PersonQuery(nhs_number=g.AVA_NHS))
    assert request_log.count("/Patient") == 3  # the first try and two retries
    assert g.AVA_NHS not in str(info.value)


async def test_retry_after_is_honoured_when_it_fits_the_budget(
    logged: HealthAdapter, request_log: RequestLog, health_demo: DemoServer
) -> None:
    health_demo.fault("ratelimit", count=1)
    started = time.monotonic()
    assert len(await logged.search(PersonQuery(nhs_number=g.AVA_NHS))) == 1
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert request_log.count("/Patient") == 2


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    health_config: dict[str, Any], health_demo: DemoServer
) -> None:
    adapter = HealthAdapter.from_config({**health_config, "timeout_s": 0.8})
    health_demo.fault("ratelimit", count=1)
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS))
    finally:
        await adapter.aclose()
    assert time.monotonic() - started < 0.5


async def test_slow_answer_beyond_the_budget_is_unavailable(
    health_config: dict[str, Any], health_demo: DemoServer
) -> None:
    adapter = HealthAdapter.from_config({**health_config, "timeout_s": 0.5})
    health_demo.fault("slow", delay_ms=3000)
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS))
    finally:
        await adapter.aclose()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("mode", ["malformed", "partial"])
async def test_unreadable_body_is_an_invalid_response(
    health: HealthAdapter, health_demo: DemoServer, mode: str
) -> None:
    health_demo.fault(mode)
    with pytest.raises(SourceResponseInvalid):
        await health.search(PersonQuery(nhs_number=g.AVA_NHS))
    with pytest.raises(SourceResponseInvalid):
        await health.items(["pat-000001"])


async def test_unauthorized_fault_means_fix_the_configuration(
    health: HealthAdapter, health_demo: DemoServer
) -> None:
    health_demo.fault("unauthorized")
    with pytest.raises(SourceMisconfigured):
        await health.search(PersonQuery(nhs_number=g.AVA_NHS))


async def test_closed_port_is_unavailable_and_says_nothing_personal(closed_port: int) -> None:
    adapter = HealthAdapter.from_config({"url": f"http://127.0.0.1:{closed_port}/fhir"})
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS, family_name="Thompson"))
        assert g.AVA_NHS not in str(info.value) and "Thompson" not in str(info.value)
        assert str(closed_port) not in str(info.value)
        with pytest.raises(SourceUnavailable):
            await adapter.items(["pat-000001"])
        with pytest.raises(SourceUnavailable):
            await adapter.probe()
    finally:
        await adapter.aclose()


async def test_wrong_base_url_is_misconfigured(health_config: dict[str, Any]) -> None:
    url = health_config["url"].replace("/fhir", "/nope")
    adapter = HealthAdapter.from_config({**health_config, "url": url})
    try:
        with pytest.raises(SourceMisconfigured):
            await adapter.search(PersonQuery(nhs_number=g.AVA_NHS))
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    "config",
    [{"url": "sqlite:///x"}, {}, {"url": "http://h/fhir", "timeout_s": "soon"}],
    ids=["not-http", "no-url", "bad-timeout"],
)
def test_bad_configuration_is_misconfigured(config: dict[str, Any]) -> None:
    with pytest.raises(SourceMisconfigured):
        HealthAdapter.from_config(config)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("401", SourceMisconfigured),
        ("403", SourceMisconfigured),
        ("503", SourceUnavailable),
        ("text", SourceResponseInvalid),
        ("patient", SourceResponseInvalid),
        ("badbundle", SourceResponseInvalid),
        ("outcome400", SourceMisconfigured),
        ("outcome503", SourceUnavailable),
        ("offsite", SourceResponseInvalid),
    ],
)
async def test_bad_answers_map_to_what_the_caller_should_do(
    misbehaving_url: str, mode: str, error: type[Exception]
) -> None:
    adapter = HealthAdapter.from_config({"url": f"{misbehaving_url}/{mode}/fhir", "retries": 0})
    try:
        with pytest.raises(error) as info:
            await adapter.search(PersonQuery(family_name="Thompson", date_of_birth=g.AVA_DOB))
        assert "Thompson" not in str(info.value)
        assert "elsewhere" not in str(info.value)
    finally:
        await adapter.aclose()


def test_operation_outcome_code_goes_in_the_message_but_never_its_diagnostics() -> None:
    import httpx

    from adapters.health import outcome_error

    issue = {"code": "too-costly", "diagnostics": "Thompson"}
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    error = outcome_error(httpx.Response(400, content=json.dumps(body).encode()))
    assert isinstance(error, SourceMisconfigured)
    assert "too-costly" in str(error) and "Thompson" not in str(error)
