"""The record service: its memory of subjects, and the household it assembles (the same
home, never the street), on both stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.base import (
    Item,
    Labels,
    PersonQuery,
    Relation,
    Source,
    SourcePerson,
    SourceUnavailable,
)
from hub.identity import decisions, residents
from hub.identity.decisions import CONFIRMED, REJECTED, UnknownSubject
from hub.identity.matching import Demographics
from hub.identity.models import Subject
from hub.reading.records import (
    AssembledRecord,
    HouseholdMember,
    Known,
    RecordService,
    SharedAddressLimits,
)
from hub.settings import Settings
from hub.store.engine import Store, migrate_async


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


# SQLite's writers take turns in the hub (the other read would wait for this one): the race
# is PostgreSQL's.
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_household_member_created_by_another_read_meanwhile_is_read_back_not_an_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a child, and a household member no read has seen yet
    service = RecordService({}, {}, store)
    [child] = await service._subjects_for(
        [Demographics("9434765919", "Ava", "Thompson", date(2016, 3, 14))]
    )
    mother = Demographics("9434765927", "Jade", "Thompson", date(1990, 1, 2))
    async with store.sessions() as session:
        subject = await session.get(Subject, child)
    assert subject is not None

    # when another read creates the mother after this one looked (and before it flushes: the
    # query that stages review candidates flushes first)
    other = RecordService({}, {}, store)
    stage = decisions.stage_reviews
    raced: list[str] = []

    async def stage_after_a_race(*args: Any, **kwargs: Any) -> None:
        if not raced:
            raced.extend(await other._subjects_for([mother]))
        await stage(*args, **kwargs)

    monkeypatch.setattr(decisions, "stage_reviews", stage_after_a_race)
    review = decisions.Candidate(Source("POLICE"), "P-NEAR", 0.6)
    ids = await service._settle(Known(subject, {}, reviews={}), [mother], [review])

    # then the read gets the one subject the other read made, and the review is noted
    assert raced and ids == raced
    async with store.sessions() as session:
        mothers = (
            (
                await session.execute(
                    select(Subject.id).where(Subject.nhs_number == mother.nhs_number)
                )
            )
            .scalars()
            .all()
        )
    assert mothers == raced
    queue = await decisions.review_queue(store, 10)
    assert [(r.subject_id, r.source_record_id) for r in queue.reviews] == [(child, "P-NEAR")]


# --- the household: the same home, never the street (DOMAIN.md §3 rule 2) -----------------

CHILD = Demographics(None, "Mia", "Ward", date(2017, 4, 2), ("HT42QX",))


def at(
    local_id: str,
    given: str,
    family: str,
    born: date,
    address: str,
    uprn: str | None = None,
    postcode: str = "HT4 2QX",
) -> SourcePerson:
    return SourcePerson(
        Source("HEALTH"),
        local_id,
        given,
        family,
        born,
        postcode=postcode,
        address=address,
        labels=Labels(agency="health"),
        uprn=uprn,
    )


class FakeSource:
    """A source holding the people given, one item each, and the relations given; it notes
    whose items it was asked for."""

    source = Source("HEALTH")

    def __init__(
        self, people: list[SourcePerson], relations: list[tuple[str, str, str]] = ()
    ) -> None:
        self.people = people
        self.related = relations
        self.asked: set[str] = set()

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        return self.people

    async def relations(self, person_ids: Sequence[str]) -> Sequence[Relation]:
        by_id = {p.local_id: p for p in self.people}
        return [
            Relation(a, relation, by_id[b]) for a, b, relation in self.related if a in person_ids
        ]

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        self.asked |= set(person_ids)
        return [
            Item("health.encounter", f"E-{p}", p, Labels(agency="health"), {}) for p in person_ids
        ]

    async def aclose(self) -> None:
        pass


MIA = at("P-MIA", "Mia", "Ward", date(2017, 4, 2), "14 Larch Close, Hilltown", "U14")


async def household_of(
    store: Store, source: FakeSource, limits: SharedAddressLimits | None = None
) -> tuple[AssembledRecord, str]:
    limits = limits or SharedAddressLimits(
        Settings().household_max_residents, Settings().household_max_family_names
    )
    service = RecordService(
        {Source("HEALTH"): source},
        {Source("HEALTH"): 2.0},
        store,
        today=lambda: date(2026, 11, 26),
        shared_address=limits,
    )
    [child] = await service._subjects_for([CHILD])
    record = await service.assemble(child)
    assert record is not None
    return record, child


def given_names(members: Sequence[HouseholdMember]) -> set[str | None]:
    return {m.records[0].given_name for m in members}


async def test_household_is_the_same_house_and_flat_when_neighbours_share_the_street(
    store: Store,
) -> None:
    source = FakeSource(
        [
            MIA,
            at("P-MUM", "Jo", "Ward", date(1988, 1, 5), "14 Larch Cl"),
            at("P-16", "Ann", "Hale", date(1970, 6, 1), "16 Larch Close, Hilltown"),
            at("P-F2", "Bo", "Lee", date(1980, 6, 1), "Flat 2, 14A Larch Close"),
            at("P-OTHER-UPRN", "Cy", "Rae", date(1975, 6, 1), "14 Larch Close", "U99"),
        ]
    )
    record, _ = await household_of(store, source)
    assert given_names(record.household) == {"Jo"}
    assert record.residents == []
    assert source.asked == {"P-MIA", "P-MUM"}, "no neighbour's items are asked for"
    [mum] = record.household
    assert [(b.kind, b.confirmed) for b in mum.basis] == [("SHARED_ADDRESS", True)]


async def test_household_counts_a_shared_uprn_when_the_lines_are_written_differently(
    store: Store,
) -> None:
    source = FakeSource(
        [MIA, at("P-DAD", "Ed", "Ward", date(1985, 2, 2), "Flat 1, 14 Larch Close", "U14")]
    )
    record, _ = await household_of(store, source)
    [dad] = record.household
    assert [b.kind for b in dad.basis] == ["SHARED_UPRN"]


HOSTEL = "Harbour House, 2 Quay Street, Hilltown"


def hostel(residents: int, family: str | None = None) -> FakeSource:
    child = at("P-MIA", "Mia", "Ward", date(2017, 4, 2), HOSTEL, "H1")
    mum = at("P-MUM", "Jo", "Ward", date(1988, 1, 5), HOSTEL, "H1")
    others = [
        at(
            f"P-R{i}",
            f"Res{chr(97 + i)}",
            family or f"Name{chr(97 + i)}",
            date(1980 + i, 1, 1),
            HOSTEL,
            "H1",
        )
        for i in range(residents)
    ]
    return FakeSource([child, mum, *others], [("P-MIA", "P-MUM", "parent")])


async def test_shared_address_residents_are_unconfirmed_and_unread_when_many_people_live_there(
    store: Store,
) -> None:
    source = hostel(7, family="Kerr")  # seven people, one family: more than six
    record, _ = await household_of(store, source)
    assert given_names(record.household) == {"Jo"}, "her mother: kin by a source's relation"
    assert len(record.residents) == 7
    for r in record.residents:
        assert [(b.kind, b.confirmed) for b in r.basis] == [("LARGE_SHARED_ADDRESS", False)]
    assert source.asked == {"P-MIA", "P-MUM"}, "no resident's items are asked for"
    read = {i.person_id for a in record.answers.values() for i in a.items}
    assert read == {"P-MIA", "P-MUM"}


async def test_large_shared_address_is_many_families_when_few_people_have_many_names(
    store: Store,
) -> None:
    record, _ = await household_of(store, hostel(3))  # three people, three family names
    assert len(record.residents) == 3 and given_names(record.household) == {"Jo"}
    # two families besides the child's is a household, e.g. a blended family
    record, _ = await household_of(store, hostel(2))
    assert record.residents == [] and len(record.household) == 3


async def test_shared_address_limits_are_a_setting_when_a_council_sets_its_own(
    store: Store,
) -> None:
    wide = SharedAddressLimits(max_residents=10, max_family_names=10)
    record, _ = await household_of(store, hostel(7), wide)
    assert record.residents == [] and len(record.household) == 8
    defaults = Settings()
    assert (defaults.household_max_residents, defaults.household_max_family_names) == (6, 2)


async def test_resident_is_household_and_read_when_an_analyst_confirms_them(store: Store) -> None:
    source = hostel(7, family="Kerr")
    record, child = await household_of(store, source)
    chosen = record.residents[0]
    other = record.residents[1]
    await residents.decide(store, child, chosen.subject_id, CONFIRMED, "shares the room", "sw-1")
    await residents.decide(store, child, other.subject_id, REJECTED, "another room", "sw-1")

    record, _ = await household_of(store, source)
    [confirmed] = [m for m in record.household if m.subject_id == chosen.subject_id]
    assert [(b.kind, b.confirmed) for b in confirmed.basis] == [("LARGE_SHARED_ADDRESS", True)]
    assert confirmed.decision is not None and confirmed.decision.decision == CONFIRMED
    assert chosen.records[0].local_id in source.asked
    [rejected] = [r for r in record.residents if r.subject_id == other.subject_id]
    assert rejected.decision is not None and rejected.decision.decision == REJECTED
    assert other.records[0].local_id not in source.asked
    assert len(record.residents) == 6

    # a later decision supersedes: rejected again, the resident is no longer household
    await residents.decide(store, child, chosen.subject_id, REJECTED, "moved rooms", "sw-2")
    record, _ = await household_of(store, source)
    assert chosen.subject_id not in {m.subject_id for m in record.household}


async def test_confirmation_changes_nothing_when_the_person_is_not_a_resident(store: Store) -> None:
    source = FakeSource([MIA, at("P-16", "Ann", "Hale", date(1970, 6, 1), "16 Larch Close")])
    service = RecordService({Source("HEALTH"): source}, {Source("HEALTH"): 2.0}, store)
    [child, neighbour] = await service._subjects_for(
        [CHILD, Demographics(None, "Ann", "Hale", date(1970, 6, 1))]
    )
    await residents.decide(store, child, neighbour, CONFIRMED, "wrongly confirmed", "sw-1")
    record = await service.assemble(child)
    assert record is not None and record.household == [] and record.residents == []
    assert source.asked == {"P-MIA"}


async def test_household_decision_needs_both_subjects_when_it_is_recorded(store: Store) -> None:
    service = RecordService({}, {}, store)
    [child] = await service._subjects_for([CHILD])
    with pytest.raises(UnknownSubject):
        await residents.decide(store, child, str(uuid.uuid4()), CONFIRMED, "r", "sw-1")
    with pytest.raises(ValueError, match="CONFIRMED or REJECTED"):
        residents.staged_decision(child, child, "MAYBE", "r", "sw-1")


async def test_subject_keeps_its_current_home_with_its_uprn_when_records_add_to_it(
    store: Store,
) -> None:
    service = RecordService({}, {}, store)
    born = date(2016, 3, 14)
    first = Demographics(None, "Ava", "Thompson", born, ("HT42QX",), None, "HT42QX|14 larch close")
    [ava] = await service._subjects_for([first])
    # the same home, now with its property reference
    await service._subjects_for([replace(first, uprn="100023456789")])
    async with store.sessions() as session:
        subject = await session.get(Subject, ava)
    assert subject is not None
    assert (subject.address_key, subject.uprn) == ("HT42QX|14 larch close", "100023456789")
    # the best-identified record (an NHS number) at another home moves the subject, UPRN too
    moved = replace(first, nhs_number="9434765919", address_key="HT17LB|7 mill lane")
    await service._subjects_for([moved])
    async with store.sessions() as session:
        subject = await session.get(Subject, ava)
    assert subject is not None and (subject.address_key, subject.uprn) == (
        "HT17LB|7 mill lane",
        None,
    )


class FailingItems(FakeSource):
    """Finds people, then fails when asked for their items."""

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        raise SourceUnavailable("down")


async def test_source_is_unavailable_not_clean_when_it_fails_once_the_household_is_known(
    store: Store,
) -> None:
    source = FailingItems([MIA, at("P-MUM", "Jo", "Ward", date(1988, 1, 5), "14 Larch Close")])
    record, _ = await household_of(store, source)
    answer = record.answers[Source("HEALTH")]
    assert answer.status == "UNAVAILABLE"
    assert answer.items == [] and answer.linked == []
