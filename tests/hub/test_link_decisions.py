"""Analysts' link decisions: the store, the record service honouring them, and the GraphQL
mutations and review queue end to end (hub store on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from adapters.base import Item, Labels, PersonQuery, Source, SourcePerson
from hub.demo.stack import running_hub
from hub.identity import decisions, matching
from hub.identity.decisions import CONFIRMED, REJECTED
from hub.identity.matching import Demographics
from hub.identity.models import LinkDecision, Subject
from hub.reading.records import RecordService
from hub.store.base import Base
from hub.store.engine import Store, migrate_async

from .conftest import FAKE_CONTACTS, Hub, hub_settings
from .test_app import RECORD, all_events, find_ava, ok, reading, run_sql

# --- the store -------------------------------------------------------------------------


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


async def test_migration_0002_creates_the_tables_the_models_describe(store: Store) -> None:
    def compare(connection: Any) -> list[Any]:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with store.engine.connect() as conn:
        diff = await conn.run_sync(compare)
    assert [d for d in diff if "link_" in str(d)] == []


async def new_subject(store: Store, given: str = "Ava") -> str:
    key = uuid.uuid4().hex
    subject = Subject(
        id=str(uuid.uuid4()),
        identity_key=key,
        demographic_key=key,
        given_name=given,
        family_name="Thompson",
        date_of_birth=date(2016, 3, 14),
        postcodes=["HT17LB"],
        created_at=datetime.now(UTC),
    )
    async with store.writing() as session, session.begin():
        session.add(subject)
    return subject.id


async def decide(store: Store, subject_id: str, decision: str, record: str = "P1") -> LinkDecision:
    return await decisions.decide(
        store, subject_id, Source("POLICE"), record, decision, "a note", "sw-1", "council"
    )


async def test_a_later_decision_on_the_same_pair_supersedes_the_earlier_one(
    store: Store,
) -> None:
    child = await new_subject(store)
    first = await decide(store, child, REJECTED)
    second = await decide(store, child, CONFIRMED)
    await decide(store, child, REJECTED, record="P2")

    active = await decisions.active(store, child)
    assert {k: v.decision for k, v in active.items()} == {
        (Source("POLICE"), "P1"): CONFIRMED,
        (Source("POLICE"), "P2"): REJECTED,
    }
    assert active[(Source("POLICE"), "P1")].id == second.id
    history = await decisions.history(store, child)
    assert [(d.id, d.superseded_at is not None) for d in history[:2]] == [
        (first.id, True),
        (second.id, False),
    ]
    assert await decisions.rejected(store, [child]) == {(child, Source("POLICE"), "P2")}


async def test_the_store_refuses_two_active_decisions_on_one_pair(store: Store) -> None:
    child = await new_subject(store)
    await decide(store, child, REJECTED)
    duplicate = LinkDecision(
        id=str(uuid.uuid4()),
        subject_id=child,
        source="POLICE",
        source_record_id="P1",
        decision=CONFIRMED,
        reason="x",
        decided_by="sw-2",
        decided_at=datetime.now(UTC),
    )
    with pytest.raises(IntegrityError):
        async with store.writing() as session, session.begin():
            session.add(duplicate)


async def test_concurrent_decisions_on_one_pair_leave_exactly_one_active(store: Store) -> None:
    child = await new_subject(store)
    await asyncio.gather(*(decide(store, child, d) for d in (REJECTED, CONFIRMED) * 3))
    history = await decisions.history(store, child)
    assert len(history) == 6
    assert len([d for d in history if d.superseded_at is None]) == 1


async def test_a_decision_about_an_unknown_subject_is_refused(store: Store) -> None:
    with pytest.raises(decisions.UnknownSubject):
        await decide(store, str(uuid.uuid4()), CONFIRMED)


async def test_review_queue_pages_through_undecided_candidates_only(store: Store) -> None:
    ava, noah = await new_subject(store), await new_subject(store, "Noah")
    weights = (("given_name", "similar", 2.5), ("date_of_birth", "exact", 6.0))
    await decisions.note_reviews(
        store,
        ava,
        [decisions.Candidate(Source("POLICE"), f"P{i}", 0.8, weights) for i in range(3)],
    )
    await decisions.note_reviews(store, noah, [decisions.Candidate(Source("HEALTH"), "H1", 0.7)])
    # noted again (a second read): no duplicates, the score refreshed
    await decisions.note_reviews(store, ava, [decisions.Candidate(Source("POLICE"), "P0", 0.85)])
    await decide(store, ava, REJECTED, record="P1")

    page = await decisions.review_queue(store, first=2)
    assert page.total_count == 3 and page.has_next_page
    assert [(r.source_record_id, r.score) for r in page.reviews] == [("P0", 0.85), ("P2", 0.8)]
    assert page.reviews[1].explanation == [list(w) for w in weights]
    assert page.end_cursor is not None
    rest = await decisions.review_queue(store, first=2, after=page.end_cursor)
    assert [(r.subject_id, r.source_record_id) for r in rest.reviews] == [(noah, "H1")]
    assert not rest.has_next_page
    with pytest.raises(ValueError):
        await decisions.review_queue(store, first=2, after="bm90LWEtY3Vyc29y")


# --- the record service honours decisions ------------------------------------------------


@dataclass(frozen=True)
class BandedLink:
    """A link as the Fellegi-Sunter scorer gives it: with a band and weights."""

    rule: str
    agreed: tuple[str, ...]
    score: float
    band: str
    weights: tuple[tuple[str, str, float], ...]


AVA = Demographics(None, "Ava", "Thompson", date(2016, 3, 14), ("HT17LB",))
HOME = "1 Elm Row, Harton"


def person(local_id: str, given: str, born: date = date(2016, 3, 14)) -> SourcePerson:
    return SourcePerson(
        Source("POLICE"),
        local_id,
        given,
        "Thompson",
        born,
        postcode="HT1 7LB",
        address=HOME,
        labels=Labels(agency="police"),
    )


class FakePolice:
    """A police source holding Ava, a near-miss record, and someone unrelated at her home."""

    source = Source("POLICE")
    people = (
        person("P-AVA", "Ava"),
        person("P-NEAR", "Avah"),
        person("P-JADE", "Jade", date(1990, 1, 2)),
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls()

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        return self.people

    async def items(self, person_ids: Sequence[str]) -> Sequence[Item]:
        return [
            Item("police.incident", f"I-{p}", p, Labels(agency="police"), {}) for p in person_ids
        ]

    async def aclose(self) -> None:
        pass


def scorer(
    subject: Demographics, record: SourcePerson, include_review: bool = False
) -> BandedLink | None:
    """Ava's own record: auto; the near miss: review; anyone else: no match."""
    weights = (("given_name", "exact", 3.0), ("date_of_birth", "exact", 6.0))
    if record.local_id == "P-AVA":
        return BandedLink("fellegi_sunter", ("given_name",), 0.99, "auto", weights)
    if record.local_id == "P-NEAR":
        return BandedLink("fellegi_sunter", ("date_of_birth",), 0.6, "review", weights)
    return None


def scorer_asked(
    subject: Demographics, record: SourcePerson, include_review: bool = False
) -> BandedLink | None:
    """A scorer that, like hub.identity.matching's, gives review-band links only when asked."""
    link = scorer(subject, record)
    return link if link is None or link.band != "review" or include_review else None


async def linked_ids(service: RecordService, child: str) -> dict[str, str]:
    record = await service.assemble(child)
    assert record is not None
    return {p.local_id: k.band for p, k in record.answers[Source("POLICE")].linked}


@pytest.mark.parametrize("match", [scorer, scorer_asked], ids=["always", "asked"])
async def test_record_service_links_by_band_and_honours_decisions_on_every_read(
    store: Store, monkeypatch: pytest.MonkeyPatch, match: Any
) -> None:
    monkeypatch.setattr(matching, "match", match)
    service = RecordService({Source("POLICE"): FakePolice()}, {Source("POLICE"): 2.0}, store)
    [child] = await service._subjects_for([AVA])

    # given the scorer's bands: auto linked, review queued (not linked), no match left out
    record = await service.assemble(child)
    assert record is not None
    police = record.answers[Source("POLICE")]
    assert {p.local_id: k.band for p, k in police.linked} == {"P-AVA": "auto"}
    assert police.linked[0][1].weights == (
        ("given_name", "exact", 3.0),
        ("date_of_birth", "exact", 6.0),
    )
    assert [p.local_id for p, _ in police.reviews] == ["P-NEAR"]
    queue = await decisions.review_queue(store, 10)
    assert [(r.subject_id, r.source_record_id) for r in queue.reviews] == [(child, "P-NEAR")]

    # when an analyst rejects the auto link and confirms the review candidate
    await decide(store, child, REJECTED, record="P-AVA")
    await decide(store, child, CONFIRMED, record="P-NEAR")

    # then every later read honours both, and the queue is empty
    record = await service.assemble(child)
    assert record is not None
    police = record.answers[Source("POLICE")]
    assert {p.local_id: k.band for p, k in police.linked} == {"P-NEAR": "confirmed"}
    assert police.linked[0][1].decision is not None
    assert police.reviews == []
    # the rejected record is not the child, but still lives at her address
    assert {p.local_id for p in police.household} == {"P-AVA", "P-JADE"}
    assert (await decisions.review_queue(store, 10)).total_count == 0

    # an analyst can link a record the scorer does not match at all
    await decide(store, child, CONFIRMED, record="P-JADE")
    links = await linked_ids(service, child)
    assert links == {"P-NEAR": "confirmed", "P-JADE": "confirmed"}


class MovedPolice(FakePolice):
    """Police after Ava's record was edited: search no longer finds P-AVA; read by id, it
    is still there."""

    async def search(self, query: PersonQuery) -> Sequence[SourcePerson]:
        return [p for p in self.people if p.local_id != "P-AVA"]

    async def fetch(self, person_ids: Sequence[str]) -> Sequence[SourcePerson]:
        return [p for p in self.people if p.local_id in person_ids]


class MovedPoliceWithoutFetch(MovedPolice):
    fetch = None  # type: ignore[assignment]


async def test_a_confirmed_record_the_search_no_longer_finds_is_read_by_id(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matching, "match", scorer)
    child = await new_subject(store)
    await decide(store, child, CONFIRMED, record="P-AVA")
    service = RecordService({Source("POLICE"): MovedPolice()}, {Source("POLICE"): 2.0}, store)
    record = await service.assemble(child)
    assert record is not None
    police = record.answers[Source("POLICE")]
    assert {p.local_id: k.band for p, k in police.linked} == {"P-AVA": "confirmed"}
    assert {i.person_id for i in police.items} >= {"P-AVA"}, "its items are read too"

    # an adapter that cannot read by id still answers, without the record
    service = RecordService(
        {Source("POLICE"): MovedPoliceWithoutFetch()}, {Source("POLICE"): 2.0}, store
    )
    assert await linked_ids(service, child) == {}


async def test_search_leaves_a_rejected_record_out_of_the_childs_sources(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = RecordService({Source("POLICE"): FakePolice()}, {Source("POLICE"): 2.0}, store)
    query = PersonQuery(given_name="Ava", family_name="Thompson", date_of_birth=date(2016, 3, 14))
    matches, _ = await service.search(query)
    [ava] = [m for m in matches if m.demographics.given_name == "Ava"]
    assert {r.local_id for r in ava.records} == {"P-AVA", "P-NEAR"}
    await decide(store, ava.subject_id, REJECTED, record="P-AVA")
    matches, _ = await service.search(query)
    [again] = [m for m in matches if m.demographics.given_name == "Ava"]
    assert again.subject_id == ava.subject_id
    assert {r.local_id for r in again.records} == {"P-NEAR"}


# --- end to end through the hub -----------------------------------------------------------

LINKS = """
query Links($id: ID!, $purpose: Purpose!, $contactId: ID) {
  child(id: $id, purpose: $purpose, contactId: $contactId) {
    links { source sourceRecordId rule band score explanation { field level weight }
            decision { id decision reason decidedBy supersededAt } }
  }
}"""

DECIDE = """
mutation %s($childId: ID!, $source: SourceName!, $sourceRecordId: String!, $reason: String!,
            $purpose: Purpose!, $contactId: ID) {
  %s(childId: $childId, source: $source, sourceRecordId: $sourceRecordId, reason: $reason,
     purpose: $purpose, contactId: $contactId) {
    id childId source sourceRecordId targetId decision reason decidedBy decidedByAgency
    decidedAt supersededAt contactId
  }
}"""
CONFIRM = DECIDE % ("Confirm", "confirmLink")
REJECT = DECIDE % ("Reject", "rejectLink")

QUEUE = """
query Queue($first: Int, $after: String, $purpose: Purpose!) {
  reviewQueue(first: $first, after: $after, purpose: $purpose) {
    totalCount
    pageInfo { endCursor hasNextPage }
    edges { cursor node { childId source sourceRecordId score band firstSeenAt
                          explanation { field level weight } } }
  }
}"""


def police_link(hub: Hub, child_id: str) -> dict[str, Any] | None:
    links = ok(hub.gql("mash_social_worker", LINKS, reading(hub, child_id)))
    police = [x for x in links["child"]["links"] if x["source"] == "POLICE"]
    assert len(police) <= 1, police
    return police[0] if police else None


def decide_vars(
    child_id: str, record_id: str, reason: str = "DOB and address agree"
) -> dict[str, Any]:
    return {
        "childId": child_id,
        "source": "POLICE",
        "sourceRecordId": record_id,
        "reason": reason,
        "purpose": "MASH_RESEARCH",
        "contactId": FAKE_CONTACTS.add(child_id, stage="RESEARCH", assigned=True),
    }


def error_code(response: Any) -> str:
    body = response.json()
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


def test_rejected_police_link_stays_rejected_and_confirming_it_links_it_again(
    hub: Hub, source_config: dict[str, Any]
) -> None:
    child_id = find_ava(hub)
    eva = police_link(hub, child_id)
    assert eva is not None and eva["band"] in ("auto", "confirmed")
    before = len(all_events(hub))
    try:
        # when a social worker rejects Ava's police link ("Eva Thomson")
        rejected = ok(
            hub.gql("mash_social_worker", REJECT, decide_vars(child_id, eva["sourceRecordId"]))
        )["rejectLink"]
        assert rejected["decision"] == "REJECTED" and rejected["childId"] == child_id
        assert rejected["decidedBy"] == "demo-mash_social_worker"
        assert (
            rejected["contactId"].startswith("test-contact-") and rejected["supersededAt"] is None
        )

        # then the next read links no police record, and no police item is the child's
        assert police_link(hub, child_id) is None
        record = ok(hub.gql("mash_social_worker", RECORD, reading(hub, child_id)))["child"]
        police = record["police"]
        if police["__typename"] == "PoliceSection":
            assert all(i.get("about") != "CHILD" for i in police["incidents"]), police
        status = {s["source"]: s["status"] for s in record["sources"]}["POLICE"]
        assert status in ("OK", "NOT_KNOWN")  # OK only for household members at her address
        assert status == "OK" or not police["known"]

        # and the mutation is audited with its purpose, the child and the source record
        event = next(e for e in all_events(hub)[before:] if e["operationName"] == "Reject")
        assert (event["operationType"], event["outcome"]) == ("mutation", "ok")
        assert event["purpose"] == "MASH_RESEARCH"
        assert child_id in event["subjects"] and rejected["targetId"] in event["subjects"]
        assert "DOB and address agree" not in str(event)

        # and the decision survives a restart of the hub
        with running_hub(hub_settings(hub.data_dir, hub.database_url, source_config)) as url:
            assert police_link(Hub(url, hub.data_dir, hub.database_url), child_id) is None
    finally:
        # when an analyst confirms it again (a new decision superseding the rejection)
        confirmed = ok(
            hub.gql(
                "mash_manager",
                CONFIRM,
                decide_vars(child_id, eva["sourceRecordId"], "same child: checked with police"),
            )
        )["confirmLink"]
    assert confirmed["decision"] == "CONFIRMED" and confirmed["decidedByAgency"] == "council"
    # then it is linked again, with band confirmed and the decision shown
    again = police_link(hub, child_id)
    assert again is not None and again["sourceRecordId"] == eva["sourceRecordId"]
    assert again["band"] == "confirmed" and again["rule"] == eva["rule"]
    assert again["decision"]["id"] == confirmed["id"]
    assert again["decision"]["reason"] == "same child: checked with police"
    assert again["decision"]["supersededAt"] is None


def test_links_carry_their_band_and_explanation(hub: Hub) -> None:
    child_id = find_ava(hub)
    links = ok(hub.gql("mash_social_worker", LINKS, reading(hub, child_id)))
    health = [x for x in links["child"]["links"] if x["source"] == "HEALTH"]
    assert health and all(x["band"] in ("auto", "confirmed") for x in health)
    for link in links["child"]["links"]:
        assert link["band"] in ("auto", "review", "confirmed")
        assert all(isinstance(w["weight"], float) for w in link["explanation"])
    # a candidate shown for review waits in the queue
    waiting = {
        (x["source"], x["sourceRecordId"]) for x in links["child"]["links"] if x["band"] == "review"
    }
    assert waiting <= queued_for(hub, child_id)


def queued_for(hub: Hub, child_id: str) -> set[tuple[str, str]]:
    queued: set[tuple[str, str]] = set()
    after = None
    while True:
        variables = {"first": 200, "after": after, "purpose": "MASH_RESEARCH"}
        page = ok(hub.gql("mash_manager", QUEUE, variables))["reviewQueue"]
        nodes = [e["node"] for e in page["edges"]]
        queued |= {(n["source"], n["sourceRecordId"]) for n in nodes if n["childId"] == child_id}
        if not page["pageInfo"]["hasNextPage"]:
            return queued
        after = page["pageInfo"]["endCursor"]


@pytest.mark.parametrize("role", ["early_help_worker", "ig_officer", "police_researcher"])
def test_only_mash_roles_may_decide_links_or_read_the_review_queue(hub: Hub, role: str) -> None:
    child_id = find_ava(hub)
    before = len(all_events(hub))
    response = hub.gql(role, REJECT, decide_vars(child_id, "whatever"))
    assert error_code(response) == "FORBIDDEN"
    assert response.json()["data"] is None
    event = all_events(hub)[before]
    assert (event["operationName"], event["outcome"]) == ("Reject", "denied")
    assert child_id in event["subjects"]
    queue = hub.gql(role, QUEUE, {"first": 5, "purpose": "MASH_RESEARCH"})
    assert error_code(queue) == "FORBIDDEN"
    eva = police_link(hub, child_id)
    assert eva is not None, "a refused decision changes nothing"


def test_decisions_with_bad_input_get_clear_errors(hub: Hub) -> None:
    child_id = find_ava(hub)

    def attempt(**changes: Any) -> tuple[str, str]:
        variables = {**decide_vars(child_id, "P-none"), **changes}
        body = hub.gql("mash_social_worker", CONFIRM, variables).json()
        return body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]

    assert attempt(childId=str(uuid.uuid4())) == ("NOT_FOUND", "no child with this id")
    assert attempt(childId="not-an-id") == ("NOT_FOUND", "no child with this id")
    assert attempt(reason="   ") == ("BAD_USER_INPUT", "give a reason for the decision")
    assert attempt(reason="x" * 501) == (
        "BAD_USER_INPUT",
        "reason must be at most 500 characters",
    )
    assert attempt(reason="ok\x00")[0] == "BAD_USER_INPUT"
    assert attempt(sourceRecordId="")[0] == "BAD_USER_INPUT"
    assert attempt(contactId="x" * 65)[0] == "BAD_USER_INPUT"
    code, message = attempt(source="FIRE_SERVICE")
    assert code == "GRAPHQL_VALIDATION_FAILED" and "SourceName" in message
    code, _ = attempt(purpose="IG_AUDIT")
    assert code == "FORBIDDEN"


def test_review_queue_pages_with_cursors_for_mash_roles(hub: Hub) -> None:
    first = ok(hub.gql("mash_manager", QUEUE, {"first": 1, "purpose": "MASH_RESEARCH"}))
    queue = first["reviewQueue"]
    assert queue["totalCount"] >= len(queue["edges"])
    assert all(e["node"]["band"] == "review" for e in queue["edges"])
    if queue["pageInfo"]["hasNextPage"]:
        after = queue["pageInfo"]["endCursor"]
        more = ok(
            hub.gql("mash_manager", QUEUE, {"first": 1, "after": after, "purpose": "MASH_RESEARCH"})
        )["reviewQueue"]
        assert more["edges"] and more["edges"][0]["cursor"] != queue["edges"][0]["cursor"]
    bad = hub.gql("mash_manager", QUEUE, {"first": 1, "after": "nope", "purpose": "MASH_RESEARCH"})
    assert error_code(bad) == "BAD_USER_INPUT"
    too_many = hub.gql("mash_manager", QUEUE, {"first": 10_000, "purpose": "MASH_RESEARCH"})
    assert error_code(too_many) == "BAD_USER_INPUT"


def test_a_decision_is_not_kept_when_its_audit_event_cannot_be_committed(hub: Hub) -> None:
    child_id = find_ava(hub)
    before = police_link(hub, child_id)
    assert before is not None and before["band"] in ("auto", "confirmed")
    run_sql(hub.database_url, "ALTER TABLE audit_events RENAME TO audit_events_away")
    try:
        response = hub.gql("mash_social_worker", REJECT, decide_vars(child_id, "PP000001"))
    finally:
        run_sql(hub.database_url, "ALTER TABLE audit_events_away RENAME TO audit_events")
    assert response.status_code == 503
    assert error_code(response) == "AUDIT_UNAVAILABLE"
    after = police_link(hub, child_id)
    assert after is not None and after["band"] == before["band"], "the rejection was not kept"
