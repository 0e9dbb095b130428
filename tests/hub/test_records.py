"""The record service's memory of subjects, on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from hub.identity import Demographics
from hub.records import RecordService
from hub.store import Store, Subject, migrate_async


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    await migrate_async(url)
    s = Store(url)
    yield s
    await s.aclose()


async def test_subject_first_seen_without_its_nhs_number_gains_it_and_keeps_its_id(
    store: Store,
) -> None:
    service = RecordService({}, {}, store)
    without = Demographics(None, "Ava", "Thompson", date(2016, 3, 14), ("HT42QX",))
    with_nhs = Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14), ("HT17LB",))
    [first] = await service._subjects_for([without])
    [second] = await service._subjects_for([with_nhs])
    [third] = await service._subjects_for([without])
    assert first == second == third
    async with store.sessions() as session:
        subject = await session.get(Subject, first)
    assert subject is not None and subject.nhs_number == "9434765919"
    assert subject.postcodes == ["HT42QX", "HT17LB"]


async def test_two_children_with_different_nhs_numbers_are_two_subjects(store: Store) -> None:
    service = RecordService({}, {}, store)
    ids = await service._subjects_for(
        [
            Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14)),
            Demographics("9434765927", "Noah", "Thompson", date(2019, 5, 7)),
            Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14)),
        ]
    )
    assert ids[0] == ids[2] != ids[1]
