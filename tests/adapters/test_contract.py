"""The contract every adapter keeps with the hub, run against its real demo source system.

Found, not known, partial, slow (deadline hit), down, malformed response, auth rejected —
and answering again once the fault is gone. Faults come from outside the adapter: a TCP
fault proxy in front of every source (hang, down, cut, garbage) and, for HTTP sources, the
demo server's own fault switch (malformed or partial bodies, 401).

A new source passes this suite by adding its module, one registry line, configuration, and
one `Contract` entry below.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

import adapters as adapter_package
from adapters import kind_fields, registry
from adapters.base import (
    RELATIONS,
    Adapter,
    PersonQuery,
    Source,
    SourceError,
    SourceMisconfigured,
    SourceResponseInvalid,
    SourceUnavailable,
    SupportsFetch,
    SupportsRelations,
)
from hub.demo import sources
from hub.demo.faults import FaultProxy

FHIR_TOKEN = "contract-suite-token"
SLOW_DEADLINE_S = 0.5
NOBODY = PersonQuery(nhs_number="0000000000")
RELATED_SOURCES = {Source("POLICE"), Source("EARLY_HELP")}


@dataclass
class Contract:
    """How one source is set up for the suite and what it must find."""

    source: Source
    config: dict[str, Any]
    bad_auth: dict[str, Any]
    proxy: FaultProxy
    found: PersonQuery
    found_name: tuple[str, str]
    agency: str
    server_fault: Callable[[str], None] | None = None
    malformed_error: type[SourceError] = SourceResponseInvalid
    extra: dict[str, Any] = field(default_factory=dict)

    def adapter(self, **overrides: Any) -> Adapter:
        return registry()[self.source].from_config({**self.config, **overrides})


def _switch(base: str) -> Callable[[str], None]:
    def set_mode(mode: str) -> None:
        httpx.put(f"{base}/_fault", json={"mode": mode}, timeout=5).raise_for_status()

    return set_mode


@pytest.fixture(scope="session")
def contract_data(
    tmp_path_factory: pytest.TempPathFactory, postgres_databases: Any
) -> dict[str, Any]:
    data_dir = tmp_path_factory.mktemp("contract")
    police_url = postgres_databases.create()
    early_help_url = postgres_databases.create()
    sources.seed(data_dir, 300, 7, {"police": police_url, "early_help": early_help_url})
    return {"data_dir": data_dir, "police": police_url, "early_help": early_help_url}


@pytest.fixture(scope="session")
def contracts(contract_data: dict[str, Any]) -> Iterator[dict[Source, Contract]]:
    data_dir: Path = contract_data["data_dir"]
    processes, proxies = [], []
    try:
        ports = {name: sources.free_port() for name in ("health", "asc", "education")}
        processes.append(
            sources.start_source_process(
                "health", ports["health"], data_dir, token=FHIR_TOKEN, allow_faults=True
            )
        )
        processes.append(
            sources.start_source_process("asc", ports["asc"], data_dir, allow_faults=True)
        )
        processes.append(
            sources.start_source_process(
                "education", ports["education"], data_dir, allow_faults=True
            )
        )
        for (name, port), process in zip(ports.items(), processes, strict=True):
            sources.wait_until_up(sources.ready_url(name, port), timeout=30, process=process)

        def proxied(port: int) -> FaultProxy:
            proxy = FaultProxy("127.0.0.1", port, cut_after=400).start()
            proxies.append(proxy)
            return proxy

        pg = make_url(contract_data["police"])
        sql_proxy = {s: proxied(pg.port or 5432) for s in (Source("POLICE"), Source("EARLY_HELP"))}

        def sql_url(key: str, source: Source, user: str = "postgres") -> str:
            database = make_url(contract_data[key]).database
            return f"postgresql://{user}@127.0.0.1:{sql_proxy[source].port}/{database}"

        health_proxy, asc_proxy = proxied(ports["health"]), proxied(ports["asc"])
        asc_client = json.loads((data_dir / "sources" / "asc_client.json").read_text())
        asc_config = {
            "url": f"http://127.0.0.1:{asc_proxy.port}/api/v1",
            "client_id": asc_client["client_id"],
            "client_secret": asc_client["client_secret"],
            "token_url": asc_client["token_url"],
        }
        education_proxy = proxied(ports["education"])
        education_key = json.loads((data_dir / "sources" / "education_api.json").read_text())
        education_config = {
            "url": f"http://127.0.0.1:{education_proxy.port}/education/v1",
            "api_key": education_key["api_key"],
        }
        yield {
            Source("POLICE"): Contract(
                Source("POLICE"),
                {"url": sql_url("police", Source("POLICE"))},
                {"url": sql_url("police", Source("POLICE"), user="no_such_role")},
                sql_proxy[Source("POLICE")],
                PersonQuery(date_of_birth=_dob("2016-03-14"), family_name="Thompson"),
                ("Eva", "Thomson"),
                "police",
                malformed_error=SourceError,
            ),
            Source("EARLY_HELP"): Contract(
                Source("EARLY_HELP"),
                {"url": sql_url("early_help", Source("EARLY_HELP"))},
                {"url": sql_url("early_help", Source("EARLY_HELP"), user="no_such_role")},
                sql_proxy[Source("EARLY_HELP")],
                PersonQuery(date_of_birth=_dob("2016-03-14"), family_name="Thompson"),
                ("Ava", "Thompson-Reid"),
                "early_help",
                malformed_error=SourceError,
            ),
            Source("HEALTH"): Contract(
                Source("HEALTH"),
                {"url": f"http://127.0.0.1:{health_proxy.port}/fhir", "token": FHIR_TOKEN},
                {"url": f"http://127.0.0.1:{health_proxy.port}/fhir", "token": "wrong"},
                health_proxy,
                PersonQuery(nhs_number="9434765919"),
                ("Ava", "Thompson"),
                "health",
                server_fault=_switch(f"http://127.0.0.1:{ports['health']}"),
            ),
            Source("ADULT_SOCIAL_CARE"): Contract(
                Source("ADULT_SOCIAL_CARE"),
                asc_config,
                {**asc_config, "client_secret": "wrong"},
                asc_proxy,
                PersonQuery(postcodes=("HT4 2QX",)),
                ("Jade", "Thompson"),
                "adult_social_care",
                server_fault=_switch(f"http://127.0.0.1:{ports['asc']}"),
            ),
            Source("EDUCATION"): Contract(
                Source("EDUCATION"),
                education_config,
                {**education_config, "api_key": "wrong"},
                education_proxy,
                PersonQuery(date_of_birth=_dob("2016-03-14"), family_name="Thompson"),
                ("Ava", "Thompson"),
                "education",
                server_fault=_switch(f"http://127.0.0.1:{ports['education']}"),
            ),
        }
    finally:
        for proxy in proxies:
            proxy.stop()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _dob(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture(params=adapter_package.sources(), ids=lambda s: s.value)
async def contract(
    request: pytest.FixtureRequest, contracts: dict[Source, Contract]
) -> AsyncIterator[Contract]:
    c = contracts[request.param]
    c.proxy.mode = "pass"
    if c.server_fault:
        c.server_fault("none")
    yield c
    c.proxy.mode = "pass"
    if c.server_fault:
        c.server_fault("none")


async def _use(c: Contract, work: Callable[[Adapter], Any], **overrides: Any) -> Any:
    adapter = c.adapter(**overrides)
    try:
        return await work(adapter)
    finally:
        await adapter.aclose()


async def test_found_person_comes_back_with_labelled_items(contract: Contract) -> None:
    async def work(a: Adapter) -> None:
        people = await a.search(contract.found)
        match = [p for p in people if (p.given_name, p.family_name) == contract.found_name]
        assert len(match) == 1, [(p.given_name, p.family_name) for p in people]
        assert match[0].source == contract.source
        items = await a.items([match[0].local_id])
        assert items, "the showcase person has content in every source"
        for item in items:
            assert item.labels.agency == contract.agency
            assert item.person_id == match[0].local_id
            assert set(item.data) == set(kind_fields()[item.kind])

    await _use(contract, work)


async def test_person_found_by_search_is_read_again_by_id(contract: Contract) -> None:
    async def work(a: Adapter) -> None:
        assert isinstance(a, SupportsFetch), "every adapter here reads persons by id"
        people = await a.search(contract.found)
        wanted = sorted(p.local_id for p in people)[:3]
        fetched = await a.fetch([*wanted, "no-such-record"])
        assert sorted(p.local_id for p in fetched) == wanted
        by_id = {p.local_id: p for p in people}
        assert all(p == by_id[p.local_id] for p in fetched), "the same record as search gave"
        assert list(await a.fetch([])) == []

    await _use(contract, work)


async def test_relations_where_recorded_are_people_of_the_same_source(contract: Contract) -> None:
    async def work(a: Adapter) -> None:
        if contract.source not in RELATED_SOURCES:  # the HTTP demo sources record none
            assert not isinstance(a, SupportsRelations)
            return
        assert isinstance(a, SupportsRelations)
        people = await a.search(contract.found)
        (child,) = [p for p in people if (p.given_name, p.family_name) == contract.found_name]
        relations = await a.relations([child.local_id])
        assert relations, "the showcase child's family is related in this source"
        assert all(r.person_id == child.local_id for r in relations)
        assert all(
            r.relation in RELATIONS and r.related.source == contract.source for r in relations
        )
        assert list(await a.relations(["no-such-record"])) == []

    await _use(contract, work)


async def test_unknown_person_is_not_known_rather_than_an_error(contract: Contract) -> None:
    async def work(a: Adapter) -> None:
        assert list(await a.search(NOBODY)) == []
        assert list(await a.items(["no-such-record"])) == []

    await _use(contract, work)


async def test_down_source_raises_unavailable_promptly(contract: Contract) -> None:
    contract.proxy.mode = "down"
    started = time.perf_counter()
    with pytest.raises(SourceUnavailable):
        await _use(contract, lambda a: a.search(contract.found))
    assert time.perf_counter() - started < 3


async def test_hung_source_gives_way_to_the_callers_deadline(contract: Contract) -> None:
    contract.proxy.mode = "hang"
    started = time.perf_counter()
    with pytest.raises((TimeoutError, SourceError)):
        async with asyncio.timeout(SLOW_DEADLINE_S):
            await _use(contract, lambda a: a.search(contract.found))
    assert time.perf_counter() - started < SLOW_DEADLINE_S + 0.5


async def test_answer_cut_off_midway_is_an_error_never_a_partial_result(
    contract: Contract,
) -> None:
    if contract.server_fault:
        contract.server_fault("partial")
    else:
        contract.proxy.mode = "cut"
    with pytest.raises(SourceError):
        await _use(contract, lambda a: a.search(contract.found))


async def test_malformed_answer_is_a_source_error(contract: Contract) -> None:
    if contract.server_fault:
        contract.server_fault("malformed")
    else:
        contract.proxy.mode = "garbage"
    with pytest.raises(contract.malformed_error):
        await _use(contract, lambda a: a.search(contract.found))


async def test_rejected_credentials_mean_fix_the_configuration(contract: Contract) -> None:
    with pytest.raises(SourceMisconfigured):
        await _use(contract, lambda a: a.search(contract.found), **contract.bad_auth)


async def test_adapter_answers_again_once_the_source_recovers(contract: Contract) -> None:
    adapter = contract.adapter()
    try:
        assert await adapter.search(contract.found)
        contract.proxy.mode = "down"
        with pytest.raises(SourceError):
            await adapter.search(contract.found)
        contract.proxy.mode = "pass"
        assert await adapter.search(contract.found)
    finally:
        await adapter.aclose()


async def test_source_restarted_between_reads_is_not_an_error(contract: Contract) -> None:
    # Given an adapter that has pooled a connection to the source
    adapter = contract.adapter()
    try:
        assert await adapter.search(contract.found)
        # When the source drops every open connection and comes back before the next read
        contract.proxy.mode = "down"
        contract.proxy.mode = "pass"
        # Then that read answers (nothing checks a pooled connection before using it)
        assert await adapter.search(contract.found)
    finally:
        await adapter.aclose()
