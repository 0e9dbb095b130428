"""The record service: ask every source concurrently, each within its own deadline, and link
what they return to one child and the child's household.

A source that fails or runs out of time is reported as such (`UNAVAILABLE`, `TIMED_OUT`);
it never looks like a source that knows nothing (`NOT_KNOWN`).

Analysts' decisions (`hub.decisions`) outrank the scorer on every query: a rejected source
record is never the child (it may still be a household member by address); a confirmed one
is linked whatever the scorer says; where the search no longer brings it back, it is read by
id (adapters with `SupportsFetch`). Review-band candidates are not linked; they are noted
for the review queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.base import (
    Adapter,
    Item,
    PersonQuery,
    Relation,
    Source,
    SourceError,
    SourcePerson,
    SourceTimedOut,
    SupportsFetch,
    SupportsProbe,
    SupportsRelations,
    swapped_date,
)

from . import decisions, identity
from .breaker import CircuitBreaker
from .identity import Cluster, Demographics, Link
from .store import LinkDecision, Store, Subject

log = logging.getLogger(__name__)
T = TypeVar("T")

OK, NOT_KNOWN, UNAVAILABLE, TIMED_OUT = "OK", "NOT_KNOWN", "UNAVAILABLE", "TIMED_OUT"
# Not in an issued range: a probe that finds no one.
PROBE_NHS_NUMBER = "0000000000"
ADULT_AGE = 18
# Link bands: the scorer's auto and review, and an analyst's confirmation.
AUTO, REVIEW, CONFIRMED = "auto", "review", "confirmed"

Weight = tuple[str, str, float]


def weights_of(link: Link | None) -> tuple[Weight, ...]:
    """The scorer's explanation, (field, level, weight) per field; empty if it gives none."""
    weights = link.weights if link is not None else ()
    return tuple((str(f), str(level), float(w)) for f, level, w in weights)


@dataclass(frozen=True)
class ChildLink:
    """Why a source record is the child's: the scorer's link and band, or an analyst's
    confirmation (`link` is None where the scorer found no match)."""

    band: str
    link: Link | None = None
    decision: LinkDecision | None = None

    @property
    def rule(self) -> str:
        return self.link.rule if self.link is not None else "analyst_confirmed"

    @property
    def agreed(self) -> tuple[str, ...]:
        return self.link.agreed if self.link is not None else ()

    @property
    def score(self) -> float:
        return self.link.score if self.link is not None else 0.0

    @property
    def weights(self) -> tuple[Weight, ...]:
        return weights_of(self.link)


@dataclass
class SourceAnswer:
    """One source's answer to one question, with its status and how long it took."""

    source: Source
    status: str
    latency_ms: int
    linked: list[tuple[SourcePerson, ChildLink]] = field(default_factory=list)
    household: list[SourcePerson] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    candidates: list[SourcePerson] = field(default_factory=list)
    circuit_open: bool = False
    reviews: list[tuple[SourcePerson, Link]] = field(default_factory=list)  # undecided
    # what the source relates to the child's records: (record, relation to the child)
    related: list[tuple[SourcePerson, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ChildMatch:
    subject_id: str
    demographics: Demographics
    records: tuple[SourcePerson, ...]


# Why someone is offered as a household member.
SOURCE_RELATION, SHARED_ADDRESS, SHARED_UPRN = "SOURCE_RELATION", "SHARED_ADDRESS", "SHARED_UPRN"
# What a related person is to the child, most telling first: a source's relation of a
# person record ("parent" of the child's record), and "parents_partner" (the partner of a
# parent or carer, found through the parent's own relations).
RELATION_ORDER = (
    "parent",
    "carer",
    "parents_partner",
    "twin",
    "sibling",
    "half_sibling",
    "partner",
    "child",
)


@dataclass(frozen=True)
class Basis:
    """One reason a person is in the child's household: the kind (SOURCE_RELATION,
    SHARED_ADDRESS, SHARED_UPRN), the source that said so and, for a relation, what the
    person is to the child."""

    kind: str
    source: Source
    relation: str | None = None


@dataclass(frozen=True)
class HouseholdMember:
    subject_id: str
    records: tuple[SourcePerson, ...]
    basis: tuple[Basis, ...] = ()

    @property
    def relation(self) -> str | None:
        """The most telling relation any source records (None: only the address says)."""
        said = {b.relation for b in self.basis if b.relation}
        return next((r for r in RELATION_ORDER if r in said), None)


@dataclass
class AssembledRecord:
    """Everything the sources said about one child, before policy."""

    subject_id: str
    demographics: Demographics
    answers: dict[Source, SourceAnswer]
    household: list[HouseholdMember]


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class RecordService:
    """Fans out to the adapters and links their answers; knows nothing of policy or GraphQL."""

    def __init__(
        self,
        adapters: Mapping[Source, Adapter],
        deadlines_s: Mapping[Source, float],
        store: Store,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        breakers: Mapping[Source, CircuitBreaker] | None = None,
    ) -> None:
        self.adapters = dict(adapters)
        self.deadlines_s = dict(deadlines_s)
        self.store = store
        self.today = today
        self.breakers = {s: CircuitBreaker() for s in self.adapters} | dict(breakers or {})
        self._probes: set[asyncio.Task[None]] = set()

    async def _ask(
        self, source: Source, work: Callable[[], Awaitable[SourceAnswer]]
    ) -> SourceAnswer:
        breaker = self.breakers[source]
        if not breaker.allows():
            if breaker.wants_probe():
                self._start_probe(source)
            return SourceAnswer(source, UNAVAILABLE, 0, circuit_open=True)
        started = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self.deadlines_s.get(source, 2.0)):
                answer = await work()
        except (TimeoutError, SourceTimedOut):
            breaker.failed()
            return SourceAnswer(source, TIMED_OUT, elapsed())
        except SourceError as exc:
            breaker.failed()
            log.warning("source %s unavailable: %s", source.value, type(exc).__name__)
            return SourceAnswer(source, UNAVAILABLE, elapsed())
        except Exception as exc:  # an adapter bug must not take the record down
            breaker.failed()
            log.error("source %s failed unexpectedly: %s", source.value, type(exc).__name__)
            return SourceAnswer(source, UNAVAILABLE, elapsed())
        breaker.succeeded()
        answer.latency_ms = elapsed()
        return answer

    def _start_probe(self, source: Source) -> None:
        """Ask an open source, in the background, whether it answers again."""

        async def probe() -> None:
            adapter = self.adapters[source]
            try:
                async with asyncio.timeout(self.deadlines_s.get(source, 2.0)):
                    if isinstance(adapter, SupportsProbe):
                        await adapter.probe()
                    else:
                        await adapter.search(PersonQuery(nhs_number=PROBE_NHS_NUMBER))
            except Exception as exc:
                log.info("source %s still failing: %s", source.value, type(exc).__name__)
                self.breakers[source].failed()
            else:
                log.info("source %s answers again: circuit closed", source.value)
                self.breakers[source].succeeded()

        task = asyncio.create_task(probe())
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _fan_out(
        self, work: Callable[[Source, Adapter], Awaitable[SourceAnswer]]
    ) -> dict[Source, SourceAnswer]:
        answers = await asyncio.gather(
            *(self._ask(s, lambda s=s, a=a: work(s, a)) for s, a in self.adapters.items())  # type: ignore[misc]
        )
        return {a.source: a for a in answers}

    async def search(self, query: PersonQuery) -> tuple[list[ChildMatch], dict[Source, str]]:
        """Children matching every given criterion, one per linked person, with the status of
        each source asked."""

        async def ask(source: Source, adapter: Adapter) -> SourceAnswer:
            found = list(await adapter.search(query))
            return SourceAnswer(source, OK if found else NOT_KNOWN, 0, candidates=found)

        answers = await self._fan_out(ask)
        # Only records that agree with what was typed are clustered: a date of birth alone
        # brings back every child born that day in a large source.
        candidates = [c for a in answers.values() for c in a.candidates if _near(query, c)]
        clusters = await asyncio.to_thread(identity.cluster, candidates)
        children = [
            c
            for c in clusters
            if _meets(query, c)
            and c.demographics.date_of_birth is not None
            and age_on(c.demographics.date_of_birth, self.today()) < ADULT_AGE
            # a postcode search must not confirm where a location-protected child lives
            and not (query.postcodes and any(m.labels.location_protected for m in c.members))
        ]
        ids = await self._subjects_for([c.demographics for c in children])
        rejected = await decisions.rejected(self.store, ids)
        matches = [
            ChildMatch(
                i,
                c.demographics,
                tuple(m for m in c.members if (i, m.source, m.local_id) not in rejected),
            )
            for i, c in zip(ids, children, strict=True)
        ]
        return matches, {s: a.status for s, a in answers.items()}

    async def assemble(self, subject_id: str) -> AssembledRecord | None:
        """The child's record from every source, or None if the hub knows no such child."""
        subject = await self._load(subject_id)
        if subject is None:
            return None
        d = Demographics(
            subject.nhs_number,
            subject.given_name,
            subject.family_name,
            subject.date_of_birth,
            tuple(subject.postcodes),
            subject.sex,
            subject.address_key,
        )
        query = PersonQuery(d.nhs_number, d.given_name, d.family_name, d.date_of_birth, d.postcodes)
        decided = await decisions.active(self.store, subject_id)

        async def ask(source: Source, adapter: Adapter) -> SourceAnswer:
            candidates = list(await adapter.search(query))
            candidates += await _confirmed_elsewhere(adapter, source, candidates, decided)
            linked, reviews = _links(d, source, candidates, decided)
            household = _household(d, candidates, linked)
            related = await _related(adapter, linked)
            ids = [c.local_id for c, _ in linked] + [c.local_id for c in household]
            ids += [p.local_id for p, _ in related]
            items = list(await adapter.items(list(dict.fromkeys(ids)))) if ids else []
            return SourceAnswer(
                source,
                OK,
                0,
                linked,
                household,
                items,
                candidates,
                reviews=reviews,
                related=related,
            )

        answers = await self._fan_out(ask)
        # The sibling guard needs every source's household: a twin may be known (with an
        # NHS number) to health only, and must still not be taken for the child in police.
        everyone = [p for a in answers.values() for p in a.household]
        for a in answers.values():
            if a.status != OK:
                continue
            a.linked, doubtful = _sibling_safe(d, a.linked, everyone)
            a.reviews += doubtful
            a.household = _household(d, a.candidates, a.linked)
            own = {c.local_id for c, _ in a.linked}
            a.related = [(p, r) for p, r in a.related if p.local_id not in own]
            keep = own | {c.local_id for c in a.household} | {p.local_id for p, _ in a.related}
            a.items = [i for i in a.items if i.person_id in keep]
            a.status = OK if keep else NOT_KNOWN
        await self._note_reviews(subject_id, answers)
        return AssembledRecord(subject_id, d, answers, await self._household_members(answers))

    async def _household_members(
        self, answers: Mapping[Source, SourceAnswer]
    ) -> list[HouseholdMember]:
        """The people the sources relate to the child or record at the child's address, each
        with its basis. Their records are grouped into people the strict way: an adult's
        records join only on the NHS number or the deterministic rules."""
        basis: dict[tuple[Source, str], list[Basis]] = {}
        records: dict[tuple[Source, str], SourcePerson] = {}
        uprns = {p.uprn for a in answers.values() for p, _ in a.linked if p.uprn}
        for a in answers.values():
            for p in a.household:
                records[(p.source, p.local_id)] = p
                kind = SHARED_UPRN if p.uprn and p.uprn in uprns else SHARED_ADDRESS
                basis.setdefault((p.source, p.local_id), []).append(Basis(kind, p.source))
            for p, relation in a.related:
                records[(p.source, p.local_id)] = p
                basis.setdefault((p.source, p.local_id), []).append(
                    Basis(SOURCE_RELATION, p.source, relation)
                )
        clusters = identity.cluster(list(records.values()), adults_on=self.today())
        ids = await self._subjects_for([c.demographics for c in clusters])
        return [
            HouseholdMember(
                i,
                tuple(c.members),
                tuple(dict.fromkeys(b for m in c.members for b in basis[(m.source, m.local_id)])),
            )
            for i, c in zip(ids, clusters, strict=True)
        ]

    async def _note_reviews(self, subject_id: str, answers: dict[Source, SourceAnswer]) -> None:
        """Queue the review-band candidates for an analyst. The queue is a by-product of
        reading: a store failure here must not fail the read (the next read notes them)."""
        candidates = [
            decisions.Candidate(p.source, p.local_id, link.score, weights_of(link))
            for a in answers.values()
            for p, link in a.reviews
        ]
        try:
            await decisions.note_reviews(self.store, subject_id, candidates)
        except Exception as exc:
            log.warning("review candidates not noted: %s", type(exc).__name__)

    async def _load(self, subject_id: str) -> Subject | None:
        async with self.store.sessions() as session:
            return await session.get(Subject, subject_id)

    async def _subjects_for(self, people: Sequence[Demographics]) -> list[str]:
        """The hub's ids for these people, created on first sight (one query for all).

        A subject first seen without its NHS number is found again by name and date of birth
        and gains the number; search keys seen (postcodes, current address) are remembered.
        """
        keys = [identity.identity_key(d) for d in people]
        demo_keys = [identity.demographic_key(d) for d in people]
        for _ in range(2):
            async with self.store.writing() as session:
                known = list(
                    (
                        await session.execute(
                            select(Subject).where(
                                Subject.identity_key.in_(set(keys))
                                | Subject.demographic_key.in_(set(demo_keys))
                            )
                        )
                    ).scalars()
                )
                ids = [
                    self._resolve(session, known, key, demo_key, d)
                    for key, demo_key, d in zip(keys, demo_keys, people, strict=True)
                ]
                try:
                    if session.new or session.dirty:
                        await session.commit()
                    return ids
                except IntegrityError:  # created concurrently: read them back
                    await session.rollback()
        raise RuntimeError("subjects could not be created")

    @staticmethod
    def _resolve(
        session: Any, known: list[Subject], key: str, demo_key: str, d: Demographics
    ) -> str:
        by_key = next((s for s in known if s.identity_key == key), None)
        by_demo = [s for s in known if s.demographic_key == demo_key]
        if by_key is None and d.nhs_number:
            by_key = next((s for s in by_demo if s.nhs_number is None), None)
            if by_key is not None:  # first seen without the number: it is this subject
                by_key.nhs_number, by_key.identity_key = d.nhs_number, key
        elif by_key is None and by_demo:
            by_key = min(by_demo, key=lambda s: s.nhs_number is None)
        if by_key is None:
            by_key = Subject(
                id=str(uuid.uuid4()),
                identity_key=key,
                demographic_key=demo_key,
                nhs_number=d.nhs_number,
                given_name=d.given_name,
                family_name=d.family_name,
                date_of_birth=d.date_of_birth,
                sex=d.sex,
                postcodes=list(d.postcodes),
                address_key=d.address_key,
                created_at=datetime.now(UTC),
            )
            session.add(by_key)
            known.append(by_key)
            return by_key.id
        postcodes = list(dict.fromkeys([*by_key.postcodes, *d.postcodes]))
        if postcodes != by_key.postcodes:
            by_key.postcodes = postcodes
        if d.address_key and d.nhs_number and by_key.address_key != d.address_key:
            by_key.address_key = d.address_key  # the best-identified record's address
        by_key.address_key = by_key.address_key or d.address_key
        by_key.sex = by_key.sex or d.sex
        return by_key.id


def _links(
    d: Demographics,
    source: Source,
    candidates: list[SourcePerson],
    decided: Mapping[decisions.Pair, LinkDecision],
) -> tuple[list[tuple[SourcePerson, ChildLink]], list[tuple[SourcePerson, Link]]]:
    """(linked, review) candidates: an analyst's decision first, else the scorer's band."""
    linked: list[tuple[SourcePerson, ChildLink]] = []
    reviews: list[tuple[SourcePerson, Link]] = []
    for c in candidates:
        link = identity.match(d, c, include_review=True)
        decision = decided.get((source, c.local_id))
        if decision is not None:
            if decision.decision == decisions.CONFIRMED:
                linked.append((c, ChildLink(CONFIRMED, link, decision)))
        elif link is not None and link.band == AUTO:
            linked.append((c, ChildLink(AUTO, link)))
        elif link is not None and link.band == REVIEW:
            reviews.append((c, link))
    return linked, reviews


def _sibling_safe(
    d: Demographics, linked: list[tuple[SourcePerson, ChildLink]], everyone: list[SourcePerson]
) -> tuple[list[tuple[SourcePerson, ChildLink]], list[tuple[SourcePerson, Link]]]:
    """The sibling guard over the scorer's links: (links kept, links it sends to review).
    An analyst's confirmation stands."""
    scored = [(c, k.link) for c, k in linked if k.decision is None and k.link is not None]
    guarded = identity.sibling_safe(d, scored, everyone, include_review=True)
    kept = {c.local_id for c, link in guarded if link.band == AUTO}
    doubtful = [(c, link) for c, link in guarded if link.band == REVIEW]
    return [(c, k) for c, k in linked if k.decision is not None or c.local_id in kept], doubtful


async def _confirmed_elsewhere(
    adapter: Adapter,
    source: Source,
    candidates: list[SourcePerson],
    decided: Mapping[decisions.Pair, LinkDecision],
) -> list[SourcePerson]:
    """The records an analyst confirmed as the child's that the search no longer brings
    back (the source's record has changed since), read by id where the adapter can."""
    found = {c.local_id for c in candidates}
    missing = sorted(
        record_id
        for (s, record_id), decision in decided.items()
        if s == source and decision.decision == decisions.CONFIRMED and record_id not in found
    )
    if not missing or not isinstance(adapter, SupportsFetch):
        return []
    return list(await adapter.fetch(missing))


async def _related(
    adapter: Adapter, linked: list[tuple[SourcePerson, ChildLink]]
) -> list[tuple[SourcePerson, str]]:
    """What the source relates to the child's records: (record, what it is to the child),
    and the partners of the child's parents and carers. A source that records no relations
    (or cannot answer this optional question) leaves the household to the address."""
    if not linked or not isinstance(adapter, SupportsRelations):
        return []
    own = {c.local_id for c, _ in linked}
    try:
        first = [r for r in await adapter.relations(sorted(own)) if r.related.local_id not in own]
        parents = sorted({r.related.local_id for r in first if r.relation in ("parent", "carer")})
        second: Sequence[Relation] = await adapter.relations(parents) if parents else ()
    except SourceError as exc:
        log.info("source relations not read: %s", type(exc).__name__)
        return []
    found = [(r.related, r.relation) for r in first]
    seen = own | {p.local_id for p, _ in found}
    found += [
        (r.related, "parents_partner")
        for r in second
        if r.relation == "partner" and r.related.local_id not in seen
    ]
    return found


def _household(
    d: Demographics, candidates: list[SourcePerson], linked: list[tuple[SourcePerson, ChildLink]]
) -> list[SourcePerson]:
    """The people a source records at the child's address: where the source knows the
    child, the address (or property reference, UPRN) of its own linked records; elsewhere
    the child's current address."""
    linked_ids = {c.local_id for c, _ in linked}
    homes = {k for c, _ in linked if (k := identity.address_key(c))} or (
        {d.address_key} if d.address_key else set()
    )
    uprns = {c.uprn for c, _ in linked if c.uprn}
    return [
        c
        for c in candidates
        if c.local_id not in linked_ids
        and (identity.address_key(c) in homes or (c.uprn is not None and c.uprn in uprns))
    ]


def _near(query: PersonQuery, r: SourcePerson) -> bool:
    """Could this record be the person searched for? Each given criterion must agree where
    the record holds that field (a date of birth may be day/month swapped)."""
    born = (
        {query.date_of_birth, swapped_date(query.date_of_birth)} if query.date_of_birth else set()
    )
    wanted = {identity.normalise_postcode(p) for p in query.postcodes}
    return all(
        (
            not (query.nhs_number and r.nhs_number) or r.nhs_number == query.nhs_number,
            not (born and r.date_of_birth) or r.date_of_birth in born,
            not (wanted and r.postcode) or identity.normalise_postcode(r.postcode) in wanted,
            not (query.family_name and r.family_name)
            or identity.family_agrees(query.family_name, r.family_name),
            not (query.given_name and r.given_name)
            or identity.given_agrees(query.given_name, r.given_name),
        )
    )


def _meets(query: PersonQuery, c: Cluster) -> bool:
    """Does the cluster agree with every criterion given (each by at least one record)?"""
    records: Sequence[SourcePerson] = c.members
    wanted = {identity.normalise_postcode(p) for p in query.postcodes}
    return all(
        (
            not query.nhs_number or any(r.nhs_number == query.nhs_number for r in records),
            not query.date_of_birth or any(r.date_of_birth == query.date_of_birth for r in records),
            not wanted or any(identity.normalise_postcode(r.postcode) in wanted for r in records),
            not query.family_name
            or any(identity.family_agrees(query.family_name, r.family_name) for r in records),
            not query.given_name
            or any(identity.given_agrees(query.given_name, r.given_name) for r in records),
        )
    )
