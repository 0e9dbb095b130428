"""EducationAdapter against the demo education REST/JSON API on loopback: the API key, the
showcase child's school record, labels (special categories, location restriction), paging,
batched records and error mapping. (What every adapter must do is in test_contract.py.)"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import date
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
    SupportsFetch,
    SupportsProbe,
)
from adapters.education import EducationAdapter
from hub.demo import generator as g

from .conftest import DemoServer, RequestLog

AVA = PersonQuery(family_name="Thompson", date_of_birth=g.AVA_DOB)


@pytest.fixture
async def education(education_config: dict[str, Any]) -> AsyncIterator[EducationAdapter]:
    adapter = EducationAdapter.from_config(education_config)
    yield adapter
    await adapter.aclose()


async def _ava(adapter: EducationAdapter) -> str:
    people = await adapter.search(AVA)
    [ava] = [p for p in people if p.given_name == "Ava" and p.date_of_birth == g.AVA_DOB]
    return ava.local_id


async def test_education_adapter_is_an_adapter_that_can_probe_and_fetch(
    education: EducationAdapter,
) -> None:
    assert isinstance(education, Adapter)
    assert isinstance(education, SupportsProbe)
    assert isinstance(education, SupportsFetch)
    assert education.source == Source("EDUCATION")
    health = await education.probe()
    assert health.reachable and health.authenticated
    assert health.record_count is not None and health.record_count > 100


async def test_ava_is_found_without_an_nhs_number_by_name_date_or_postcode(
    education: EducationAdapter,
) -> None:
    """Schools hold no NHS numbers: Ava is found by her name and date of birth, or her
    home's postcode, as the hub's identity module then links her."""
    assert await education.search(PersonQuery(nhs_number=g.AVA_NHS)) == []
    ava_id = await _ava(education)
    by_postcode = await education.search(PersonQuery(postcodes=("ht4 2qx",)))
    [ava] = [p for p in by_postcode if p.local_id == ava_id]
    assert (ava.given_name, ava.family_name, ava.nhs_number) == ("Ava", "Thompson", None)
    assert ava.postcode == g.SHOWCASE_POSTCODE
    assert ava.labels.agency == "education"
    assert not ava.labels.location_protected
    assert [p.local_id for p in await education.fetch([ava_id, "UPN-NOBODY"])] == [ava_id]


async def test_ava_attends_a_named_primary_school_is_persistently_absent_and_has_an_ehcp(
    education: EducationAdapter,
) -> None:
    ava_id = await _ava(education)
    items = {i.kind: i for i in await education.items([ava_id])}
    assert set(items) == {"education.enrolment", "education.attendance", "education.sen"}
    school = items["education.enrolment"]
    assert school.data["school"] == "Larchfield Primary School"
    assert school.data["school_urn"] == "117345"
    assert school.data["start"] == date(2020, 9, 1)
    attendance = items["education.attendance"].data
    assert attendance["attendance_percent"] < 90
    assert attendance["persistent_absence"] is True
    sen = items["education.sen"]
    assert sen.data["ehcp"] is True and sen.data["level"] == "EHCP"
    # Her primary need (social, emotional and mental health) is special-category (rule 9).
    assert sen.labels.special_categories == frozenset({"health", "mental_health"})
    for item in items.values():
        assert item.person_id == ava_id
        assert item.labels.agency == "education"
        assert set(item.data) == set(kind_fields()[item.kind])


async def test_a_location_restricted_pupil_and_their_records_carry_the_restriction(
    education: EducationAdapter, demo_data: Path
) -> None:
    with sqlite3.connect(demo_data / "sources" / "education.sqlite3") as db:
        [(pupil_id,)] = db.execute(
            "SELECT id FROM pupils WHERE location_restricted = 1 LIMIT 1"
        ).fetchall()
    [pupil] = await education.fetch([pupil_id])
    assert pupil.labels.location_protected
    items = await education.items([pupil_id])
    assert items and all(i.labels.location_protected for i in items)


async def test_learning_needs_are_not_special_category(
    education: EducationAdapter, demo_data: Path
) -> None:
    with sqlite3.connect(demo_data / "sources" / "education.sqlite3") as db:
        rows = db.execute("SELECT pupil_id, fields FROM records WHERE record_type = 'SEN'")
        by_need = {json.loads(f)["primary_need"]: p for p, f in rows}
    learning = {"MLD", "SPLD", "SLCN"}
    assert set(by_need) & learning and set(by_need) - learning
    for need, pupil in by_need.items():
        [sen] = [i for i in await education.items([pupil]) if i.kind == "education.sen"]
        categories = sen.labels.special_categories
        assert ("health" in categories) == (need not in learning), need


async def test_records_come_in_one_request_per_fifty_pupils_and_pages_are_followed(
    education_config: dict[str, Any], request_log: RequestLog, demo_data: Path
) -> None:
    with sqlite3.connect(demo_data / "sources" / "education.sqlite3") as db:
        ids = [r[0] for r in db.execute("SELECT id FROM pupils ORDER BY id LIMIT 60")]
    whole = EducationAdapter.from_config(education_config, event_hooks=request_log.hooks)
    paged = EducationAdapter.from_config({**education_config, "page_size": 7})
    try:
        items = await whole.items(ids)
        assert len(items) > 60 and {i.person_id for i in items} <= set(ids)
        assert request_log.count("/records") == 2
        assert await paged.items(ids) == items
    finally:
        await whole.aclose()
        await paged.aclose()


async def test_wrong_or_missing_api_key_means_fix_the_configuration(
    education_config: dict[str, Any],
) -> None:
    adapter = EducationAdapter.from_config({**education_config, "api_key": "wrong"})
    try:
        with pytest.raises(SourceMisconfigured) as info:
            await adapter.search(AVA)
        assert "Thompson" not in str(info.value)
    finally:
        await adapter.aclose()
    with pytest.raises(SourceMisconfigured):
        EducationAdapter.from_config({"url": education_config["url"]})


async def test_api_key_can_come_from_the_seeded_file(
    education_demo: DemoServer, demo_data: Path, tmp_path: Path, education_key: str
) -> None:
    plain = tmp_path / "key.txt"
    plain.write_text(education_key + "\n")
    for path in (demo_data / "sources" / "education_api.json", plain):
        adapter = EducationAdapter.from_config({"url": education_demo.url, "api_key_file": path})
        try:
            assert await _ava(adapter)
        finally:
            await adapter.aclose()
    with pytest.raises(SourceMisconfigured):
        EducationAdapter.from_config(
            {"url": education_demo.url, "api_key_file": tmp_path / "missing"}
        )


@pytest.mark.parametrize("mode", ["malformed", "partial"])
async def test_unreadable_body_is_an_invalid_response(
    education: EducationAdapter, education_demo: DemoServer, mode: str
) -> None:
    ava_id = await _ava(education)
    education_demo.fault(mode)
    with pytest.raises(SourceResponseInvalid):
        await education.search(AVA)
    with pytest.raises(SourceResponseInvalid):
        await education.items([ava_id])


async def test_closed_port_is_unavailable(closed_port: int) -> None:
    adapter = EducationAdapter.from_config(
        {"url": f"http://127.0.0.1:{closed_port}/education/v1", "api_key": "k"}
    )
    try:
        with pytest.raises(SourceUnavailable) as info:
            await adapter.search(AVA)
        assert "Thompson" not in str(info.value)
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
    adapter = EducationAdapter.from_config(
        {"url": f"{misbehaving_url}/{mode}/education/v1", "api_key": "k", "retries": 0}
    )
    try:
        with pytest.raises(error):
            await adapter.search(AVA)
        with pytest.raises(error):
            await adapter.items(["UPN0000000001"])
    finally:
        await adapter.aclose()


@pytest.fixture(scope="module")
def records_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback server whose /records answers whatever record the test puts in the list."""
    import threading
    import time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from hub.demo.sources import free_port

    answer: list[dict[str, Any]] = []

    async def records(request: Request) -> JSONResponse:
        return JSONResponse({"items": answer, "next": None})

    port = free_port()
    app = Starlette(routes=[Route("/education/v1/records", records)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/education/v1", answer
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(
    "record",
    [
        {"id": "r1", "pupil_id": "p1", "record_type": "TIMETABLE"},
        {"id": "r1", "pupil_id": "p1", "record_type": "ATTENDANCE", "attendance_percent": "92"},
        {"id": "r1", "pupil_id": "p1", "record_type": "ENROLMENT", "start": "1 Sept"},
        {"pupil_id": "p1", "record_type": "SEN"},
        {"id": "r1", "pupil_id": "p1", "record_type": "SEN", "location_restricted": "no"},
    ],
)
async def test_malformed_records_are_invalid_responses(
    record: dict[str, Any], records_server: tuple[str, list[dict[str, Any]]]
) -> None:
    """A record of an unknown type, a field of the wrong type or a missing id is the
    source's fault, never a silently wrong item."""
    url, answer = records_server
    answer[:] = [record]
    adapter = EducationAdapter.from_config({"url": url, "api_key": "k", "retries": 0})
    try:
        with pytest.raises(SourceResponseInvalid):
            await adapter.items(["p1"])
        answer[:] = [{"id": "r1", "pupil_id": "p1", "record_type": "SEN", "ehcp": True}]
        [item] = await adapter.items(["p1"])
        assert item.kind == "education.sen" and item.data["ehcp"] is True
    finally:
        await adapter.aclose()
