"""The record service: ask every source concurrently, each within its own deadline, and link
what they return to one child and the child's household.

A source that fails or runs out of time is reported as such (`UNAVAILABLE`, `TIMED_OUT`);
it never looks like a source that knows nothing (`NOT_KNOWN`).

Analysts' decisions (`hub.identity.decisions`) outrank the scorer on every query: a rejected source
record is never the child (it may still be a household member by address); a confirmed one
is linked whatever the scorer says; where the search no longer brings it back, it is read by
id (adapters with `SupportsFetch`). Review-band candidates are not linked; they are noted
for the review queue.

Household means the same home (DOMAIN.md §3 rule 2): a source's relation (parent, partner,
sibling, ...) or the same address -- the same UPRN where both records carry one, else the
same postcode and first line, house number and flat included (`hub.identity.addresses`). A large
shared address (a hostel, a block recorded without flat numbers: `SharedAddressLimits`) is
shown as such: its residents are not household members, and their records are not read,
until an analyst confirms them (`hub.identity.residents`). Items are read only once the household is
known, so no source is asked for the records of someone who is not in it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from prometheus_client import Histogram
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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

from ..identity import decisions, matching, residents
from ..identity.addresses import Home
from ..identity.decisions import Decision
from ..identity.matching import Cluster, Demographics, Link
from ..identity.models import Subject
from ..identity.residents import ResidentDecision
from ..store.bundle import Bundle, columns_of, prepared, row_of
from ..store.engine import Store
from ..telemetry import tracing
from .breaker import CircuitBreaker

log = logging.getLogger(__name__)
T = TypeVar("T")

OK, NOT_KNOWN, UNAVAILABLE, TIMED_OUT = "OK", "NOT_KNOWN", "UNAVAILABLE", "TIMED_OUT"
# Not in an issued range: a probe that finds no one.
PROBE_NHS_NUMBER = "0000000000"
ADULT_AGE = 18
# Link bands: the scorer's auto and review, and an analyst's confirmation.
AUTO, REVIEW, CONFIRMED = "auto", "review", "confirmed"

Weight = tuple[str, str, float]

# Each call to a source (a search or an items round), by source and how it ended: `ok`,
# `not_known`, `timed_out` or `unavailable`. A call the open circuit refused never reached
# the source and is not timed (`mash_hub_source_circuit_open` shows it). Labels are a source
# name and a status, never anything about the person asked for.
SOURCE_SECONDS = Histogram(
    "mash_hub_source_seconds",
    "Time a source took to answer one call, by outcome",
    ["source", "outcome"],
)


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
    decision: Decision | None = None

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
    # every record at the child's home, large shared addresses' residents included
    household: list[SourcePerson] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    candidates: list[SourcePerson] = field(default_factory=list)
    circuit_open: bool = False
    reviews: list[tuple[SourcePerson, Link]] = field(default_factory=list)  # undecided
    # what the source relates to the child's records: (record, relation to the child)
    related: list[tuple[SourcePerson, str]] = field(default_factory=list)
    # how each `household` record is at the child's home: (record, the child's home it
    # matched, "uprn" or "address")
    at_home: list[tuple[SourcePerson, Home, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ChildMatch:
    subject_id: str
    demographics: Demographics
    records: tuple[SourcePerson, ...]


# Why someone is offered as a household member.
SOURCE_RELATION, SHARED_ADDRESS, SHARED_UPRN = "SOURCE_RELATION", "SHARED_ADDRESS", "SHARED_UPRN"
# At the child's address, a large shared one: household only once an analyst confirms.
LARGE_SHARED_ADDRESS = "LARGE_SHARED_ADDRESS"
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
    SHARED_ADDRESS, SHARED_UPRN, LARGE_SHARED_ADDRESS), the source that said so and, for a
    relation, what the person is to the child. `confirmed` is False for a
    LARGE_SHARED_ADDRESS basis no analyst has confirmed: on its own it does not make the
    person household."""

    kind: str
    source: Source
    relation: str | None = None
    confirmed: bool = True


@dataclass(frozen=True)
class HouseholdMember:
    """A person at the child's home or related to the child by a source. `decision`: an
    analyst's active decision about them as a resident of the child's large shared
    address, if any."""

    subject_id: str
    records: tuple[SourcePerson, ...]
    basis: tuple[Basis, ...] = ()
    decision: ResidentDecision | None = None

    @property
    def relation(self) -> str | None:
        """The most telling relation any source records (None: only the address says)."""
        said = {b.relation for b in self.basis if b.relation}
        return next((r for r in RELATION_ORDER if r in said), None)

    @property
    def counts(self) -> bool:
        """Household: some basis stands on its own (or an analyst confirmed it)."""
        return any(b.confirmed for b in self.basis)


@dataclass(frozen=True)
class SharedAddressLimits:
    """When a child's home is a large shared address: more than `max_residents` people whom
    no source relates to the child, or more than `max_family_names` families among them
    (see hub.settings `household_max_*`)."""

    max_residents: int = 6
    max_family_names: int = 2

    def crowded(self, family_names: Sequence[str | None], child_names: set[str]) -> bool:
        return (
            len(family_names) > self.max_residents
            or _families(family_names, child_names) > self.max_family_names
        )


@dataclass
class AssembledRecord:
    """Everything the sources said about one child, before policy. `residents`: the people
    at the child's large shared address no analyst has confirmed -- not household, none of
    their records read."""

    subject_id: str
    demographics: Demographics
    answers: dict[Source, SourceAnswer]
    household: list[HouseholdMember]
    residents: list[HouseholdMember] = field(default_factory=list)


@dataclass(frozen=True)
class Known:
    """What the hub store holds about a child that a read starts from: the subject, the
    analysts' active link decisions and, where the caller loaded them, the active decisions
    on residents of the child's address (by resident id) and the review-band candidates
    already noted ((source, record id) -> (score, explanation)); None: ask the store."""

    subject: Subject
    decisions: Mapping[decisions.Pair, Decision]
    residents: Mapping[str, ResidentDecision] | None = None
    reviews: Mapping[tuple[str, str], tuple[float, list[Any]]] | None = None


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# Built once (see hub.bundle): the subjects a household's people may already be.
_SUBJECTS_BY_KEY = select(Subject).where(
    Subject.identity_key.in_(bindparam("keys", expanding=True))
    | Subject.demographic_key.in_(bindparam("demo_keys", expanding=True))
)


class RecordService:
    """Fans out to the adapters and links their answers; knows nothing of policy or GraphQL."""

    def __init__(
        self,
        adapters: Mapping[Source, Adapter],
        deadlines_s: Mapping[Source, float],
        store: Store,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        breakers: Mapping[Source, CircuitBreaker] | None = None,
        shared_address: SharedAddressLimits = SharedAddressLimits(),
    ) -> None:
        self.adapters = dict(adapters)
        self.shared_address = shared_address
        self.deadlines_s = dict(deadlines_s)
        self.store = store
        self.today = today
        self.breakers = {s: CircuitBreaker(source=s.value) for s in self.adapters}
        self.breakers |= dict(breakers or {})
        self._probes: set[asyncio.Task[None]] = set()

    async def _ask(
        self, source: Source, call: str, work: Callable[[], Awaitable[SourceAnswer]]
    ) -> SourceAnswer:
        """One call to one source, in a span of its own (source, call, status, duration)."""
        with tracing.source_call(source.value, call) as span:
            answer = await self._answer(source, work)
            tracing.source_answered(span, answer.status, answer.latency_ms, answer.circuit_open)
            return answer

    async def _answer(
        self, source: Source, work: Callable[[], Awaitable[SourceAnswer]]
    ) -> SourceAnswer:
        breaker = self.breakers[source]
        if not breaker.allows():
            if breaker.wants_probe():
                self._start_probe(source)
            return SourceAnswer(source, UNAVAILABLE, 0, circuit_open=True)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.deadlines_s.get(source, 2.0)):
                answer = await work()
        except (TimeoutError, SourceTimedOut):
            breaker.failed()
            answer = SourceAnswer(source, TIMED_OUT, 0)
        except SourceError as exc:
            breaker.failed()
            log.warning("source %s unavailable: %s", source.value, type(exc).__name__)
            answer = SourceAnswer(source, UNAVAILABLE, 0)
        except Exception as exc:  # an adapter bug must not take the record down
            breaker.failed()
            log.error("source %s failed unexpectedly: %s", source.value, type(exc).__name__)
            answer = SourceAnswer(source, UNAVAILABLE, 0)
        else:
            breaker.succeeded()
        seconds = time.perf_counter() - started
        SOURCE_SECONDS.labels(source.value, answer.status.lower()).observe(seconds)
        answer.latency_ms = round(seconds * 1000)
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
        self,
        call: str,
        work: Callable[[Source, Adapter], Awaitable[SourceAnswer]],
        only: Sequence[Source] | None = None,
    ) -> dict[Source, SourceAnswer]:
        adapters = {s: a for s, a in self.adapters.items() if only is None or s in only}
        answers = await asyncio.gather(
            *(self._ask(s, call, lambda s=s, a=a: work(s, a)) for s, a in adapters.items())  # type: ignore[misc]
        )
        return {a.source: a for a in answers}

    async def search(self, query: PersonQuery) -> tuple[list[ChildMatch], dict[Source, str]]:
        """Children matching every given criterion, one per linked person, with the status of
        each source asked."""

        async def ask(source: Source, adapter: Adapter) -> SourceAnswer:
            found = list(await adapter.search(query))
            return SourceAnswer(source, OK if found else NOT_KNOWN, 0, candidates=found)

        answers = await self._fan_out("search", ask)
        # Only records that agree with what was typed are clustered: a date of birth alone
        # brings back every child born that day in a large source.
        candidates = [c for a in answers.values() for c in a.candidates if _near(query, c)]
        clusters = await asyncio.to_thread(matching.cluster, candidates)
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
        """The child's record from every source, or None if the hub knows no such child
        (loading what the hub knows of the child on its own; `hub.reading.reader` loads it with the
        rest of a read and calls `gather`)."""
        subject = await self._load(subject_id)
        if subject is None:
            return None
        return await self.gather(Known(subject, await decisions.active(self.store, subject_id)))

    async def gather(self, known: Known) -> AssembledRecord:
        """The child's record from every source, starting from what the hub knows of them."""
        subject, subject_id, decided = known.subject, known.subject.id, known.decisions
        d = Demographics(
            subject.nhs_number,
            subject.given_name,
            subject.family_name,
            subject.date_of_birth,
            tuple(subject.postcodes),
            subject.sex,
            subject.address_key,
            subject.uprn,
        )
        query = PersonQuery(d.nhs_number, d.given_name, d.family_name, d.date_of_birth, d.postcodes)

        async def find(source: Source, adapter: Adapter) -> SourceAnswer:
            candidates = list(await adapter.search(query))
            candidates += await _confirmed_elsewhere(adapter, source, candidates, decided)
            linked, reviews = _links(d, source, candidates, decided)
            related = await _related(adapter, linked)
            return SourceAnswer(
                source, OK, 0, linked, candidates=candidates, reviews=reviews, related=related
            )

        answers = await self._fan_out("people", find)
        # The sibling guard needs every source's household: a twin may be known (with an
        # NHS number) to health only, and must still not be taken for the child in police.
        found = [a for a in answers.values() if a.status == OK]
        everyone = [p for a in found for p, _, _ in _at_home(d, a.candidates, a.linked)]
        for a in found:
            a.linked, doubtful = _sibling_safe(d, a.linked, everyone)
            a.reviews += doubtful
            a.at_home = _at_home(d, a.candidates, a.linked)
            a.household = [p for p, _, _ in a.at_home]
            own = {c.local_id for c, _ in a.linked}
            a.related = [(p, r) for p, r in a.related if p.local_id not in own]
        household, unconfirmed = await self._household_members(known, d, answers)
        await self._read_items(answers, household)
        return AssembledRecord(subject_id, d, answers, household, unconfirmed)

    async def _read_items(
        self, answers: dict[Source, SourceAnswer], household: Sequence[HouseholdMember]
    ) -> None:
        """Read the items of the child's records and of the household's, from each source
        that answered; a source that fails now reports so (its section is not a clean
        one)."""
        wanted = {
            s: {c.local_id for c, _ in a.linked} for s, a in answers.items() if a.status == OK
        }
        for member in household:
            for r in member.records:
                if r.source in wanted:
                    wanted[r.source].add(r.local_id)

        async def read(source: Source, adapter: Adapter) -> SourceAnswer:
            ids = sorted(wanted[source])
            return SourceAnswer(source, OK, 0, items=list(await adapter.items(ids)) if ids else [])

        for source, got in (await self._fan_out("items", read, only=list(wanted))).items():
            a = answers[source]
            if got.status != OK:
                answers[source] = replace(got, latency_ms=a.latency_ms + got.latency_ms)
                continue
            a.items = [i for i in got.items if i.person_id in wanted[source]]
            a.latency_ms += got.latency_ms
            a.status = OK if wanted[source] else NOT_KNOWN

    async def _household_members(
        self, known: Known, d: Demographics, answers: Mapping[Source, SourceAnswer]
    ) -> tuple[list[HouseholdMember], list[HouseholdMember]]:
        """(household, unconfirmed residents): the people the sources relate to the child
        or record at the child's home, each with its basis. Their records are grouped into
        people the strict way: an adult's records join only on the NHS number or the
        deterministic rules. Residents of a large shared address count only once an
        analyst confirms them."""
        records: dict[decisions.Pair, SourcePerson] = {}
        related: set[decisions.Pair] = set()
        for a in answers.values():
            for p in a.household:
                records[(p.source, p.local_id)] = p
            for p, _ in a.related:
                records[(p.source, p.local_id)] = p
                related.add((p.source, p.local_id))
        clusters = matching.cluster(list(records.values()), adults_on=self.today())
        crowded = self._crowded(d, answers, clusters, related)
        basis: dict[decisions.Pair, list[Basis]] = {}
        for a in answers.values():
            for p, home, how in a.at_home:
                kind = SHARED_UPRN if how == "uprn" else SHARED_ADDRESS
                large = (home, how) in crowded
                basis.setdefault((p.source, p.local_id), []).append(
                    Basis(LARGE_SHARED_ADDRESS if large else kind, p.source, confirmed=not large)
                )
            for p, relation in a.related:
                basis.setdefault((p.source, p.local_id), []).append(
                    Basis(SOURCE_RELATION, p.source, relation)
                )
        subject_id = known.subject.id
        ids = await self._settle(known, [c.demographics for c in clusters], _reviews(answers))
        people = [
            HouseholdMember(
                i,
                tuple(c.members),
                tuple(dict.fromkeys(b for m in c.members for b in basis[(m.source, m.local_id)])),
            )
            for i, c in zip(ids, clusters, strict=True)
            if i != subject_id  # the child's own record the guard held back is not kin
        ]
        at_large = [m.subject_id for m in people if any(not b.confirmed for b in m.basis)]
        if known.residents is None:
            decided = await residents.active(self.store, subject_id, at_large)
        else:
            decided = {r: known.residents[r] for r in at_large if r in known.residents}
        people = [_decided(m, decided.get(m.subject_id)) for m in people]
        return [m for m in people if m.counts], [m for m in people if not m.counts]

    def _crowded(
        self,
        d: Demographics,
        answers: Mapping[Source, SourceAnswer],
        clusters: Sequence[Cluster],
        related: set[decisions.Pair],
    ) -> set[tuple[Home, str]]:
        """The (home, how) matches that are a large shared address. A home is one place
        however the sources wrote it (homes sharing a UPRN or an address key are merged).
        Matches on a UPRN are crowded when many unrelated people share that UPRN (a
        hostel); matches on the address when many do at the place as a whole (a block
        recorded without flat numbers, whose flats' UPRNs still tell its families apart)."""
        place = _places([h for a in answers.values() for _, h, _ in a.at_home])
        child_names = {
            part
            for name in [
                d.family_name,
                *(c.family_name for a in answers.values() for c, _ in a.linked),
            ]
            for part in _name_parts(name)
        }
        by_uprn: dict[int, list[str | None]] = {}
        anyhow: dict[int, list[str | None]] = {}
        homes = {
            (p.source, p.local_id): (h, how) for a in answers.values() for p, h, how in a.at_home
        }
        for c in clusters:
            keys = [(m.source, m.local_id) for m in c.members]
            if any(k in related for k in keys):
                continue  # kin by a source's relation: household whatever the address
            matched = [homes[k] for k in keys if k in homes]
            for where in {place[h] for h, _ in matched}:
                anyhow.setdefault(where, []).append(c.anchor.family_name)
            for where in {place[h] for h, how in matched if how == "uprn"}:
                by_uprn.setdefault(where, []).append(c.anchor.family_name)
        limits = self.shared_address
        crowded_uprn = {w for w, names in by_uprn.items() if limits.crowded(names, child_names)}
        crowded_any = {w for w, names in anyhow.items() if limits.crowded(names, child_names)}
        return {
            (h, how)
            for h, how in homes.values()
            if place[h] in (crowded_uprn if how == "uprn" else crowded_any)
        }

    async def _load(self, subject_id: str) -> Subject | None:
        async with self.store.sessions() as session:
            return await session.get(Subject, subject_id)

    async def _subjects_for(self, people: Sequence[Demographics]) -> list[str]:
        """The hub's ids for these people, created on first sight (one query for all).

        A subject first seen without its NHS number is found again by name and date of birth
        and gains the number; search keys seen (postcodes, current address) are remembered.
        """
        for _ in range(2):
            async with self.store.writing() as session:
                try:
                    ids, _changed = await self._match(session, people)
                    if session.new or session.dirty:
                        await session.commit()
                    return ids
                except IntegrityError:  # created concurrently: read them back
                    await session.rollback()
        raise RuntimeError("subjects could not be created")

    async def _settle(
        self, known: Known, people: Sequence[Demographics], reviews: Sequence[decisions.Candidate]
    ) -> list[str]:
        """The household's subject ids (`_subjects_for`), with the review-band candidates
        noted for the review queue, in at most one write: none when the store already holds
        both as they are (read first, outside SQLite's turn for writers). The queue is a
        by-product of reading: a store failure noting it alone does not fail the read."""
        ids: list[str] = []
        subjects_change = False
        if people:
            async with self.store.sessions() as session:
                ids, subjects_change = await self._look(session, people)
        noted = known.reviews
        reviews_change = bool(reviews) and (noted is None or decisions.differ(noted, reviews))
        if not (subjects_change or reviews_change):
            return ids
        try:
            for _ in range(2):
                async with self.store.writing() as session:
                    # A subject another read created since this one looked: its INSERT
                    # fails at the first flush, which staging the reviews' query may make.
                    try:
                        ids, _changed = await self._match(session, people)
                        await decisions.stage_reviews(session, known.subject.id, reviews)
                        if session.new or session.dirty:
                            await session.commit()
                        return ids
                    except IntegrityError:  # written concurrently: read again
                        await session.rollback()
            raise RuntimeError("subjects could not be created")
        except Exception as exc:
            if subjects_change:
                raise
            log.warning("review candidates not noted: %s", type(exc).__name__)
            return ids

    async def _look(
        self, session: AsyncSession, people: Sequence[Demographics]
    ) -> tuple[list[str], bool]:
        """`_match` without writing: the subjects as a bundle (on SQLite, a read of the
        store's file), resolved on detached rows; (ids, whether anything would change). Ids
        of subjects it would create are new, so a change always goes on to `_match`."""
        keys = [matching.identity_key(d) for d in people]
        demo_keys = [matching.demographic_key(d) for d in people]
        found = await prepared(session, "records.subjects", _subjects_by_key).fetch(
            session, keys=sorted(set(keys)), demo_keys=sorted(set(demo_keys))
        )
        known = [row_of(Subject, r) for r in found["subjects"]]
        before = [_resolved_state(s) for s in known]
        added = _Added()
        ids = [
            self._resolve(added, known, key, demo_key, d)
            for key, demo_key, d in zip(keys, demo_keys, people, strict=True)
        ]
        changed = bool(added.rows) or any(
            _resolved_state(s) != b for s, b in zip(known, before, strict=False)
        )
        return ids, changed

    async def _match(
        self, session: AsyncSession, people: Sequence[Demographics]
    ) -> tuple[list[str], bool]:
        """(ids, whether the session now holds new or changed subjects): see `_resolve`."""
        if not people:
            return [], False
        keys = [matching.identity_key(d) for d in people]
        demo_keys = [matching.demographic_key(d) for d in people]
        found = await session.execute(
            _SUBJECTS_BY_KEY, {"keys": sorted(set(keys)), "demo_keys": sorted(set(demo_keys))}
        )
        known = list(found.scalars())
        ids = [
            self._resolve(session, known, key, demo_key, d)
            for key, demo_key, d in zip(keys, demo_keys, people, strict=True)
        ]
        changed = bool(session.new) or any(session.is_modified(o) for o in session.dirty)
        return ids, changed

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
                uprn=d.uprn,
                created_at=datetime.now(UTC),
            )
            session.add(by_key)
            known.append(by_key)
            return by_key.id
        postcodes = list(dict.fromkeys([*by_key.postcodes, *d.postcodes]))
        if postcodes != by_key.postcodes:
            by_key.postcodes = postcodes
        if d.address_key and (
            by_key.address_key is None
            or (d.nhs_number and by_key.address_key != d.address_key)  # the best-identified
        ):
            by_key.address_key, by_key.uprn = d.address_key, d.uprn
        elif d.uprn and by_key.address_key == d.address_key and by_key.uprn != d.uprn:
            by_key.uprn = d.uprn  # the same home, with its property reference
        by_key.sex = by_key.sex or d.sex
        return by_key.id


def _subjects_by_key(bundle: Bundle) -> None:
    bundle.add(
        "subjects",
        columns_of(Subject),
        Subject.identity_key.in_(bindparam("keys", expanding=True))
        | Subject.demographic_key.in_(bindparam("demo_keys", expanding=True)),
    )


def _resolved_state(s: Subject) -> tuple[Any, ...]:
    """What `RecordService._resolve` may change on a known subject."""
    return (s.nhs_number, s.identity_key, tuple(s.postcodes), s.address_key, s.uprn, s.sex)


class _Added:
    """Stands in for the session when `_resolve` only looks: keeps what it would add."""

    def __init__(self) -> None:
        self.rows: list[Subject] = []

    def add(self, row: Subject) -> None:
        self.rows.append(row)


def _reviews(answers: Mapping[Source, SourceAnswer]) -> list[decisions.Candidate]:
    """The review-band candidates of every source, for the analysts' queue."""
    return [
        decisions.Candidate(p.source, p.local_id, link.score, weights_of(link))
        for a in answers.values()
        for p, link in a.reviews
    ]


def _links(
    d: Demographics,
    source: Source,
    candidates: list[SourcePerson],
    decided: Mapping[decisions.Pair, Decision],
) -> tuple[list[tuple[SourcePerson, ChildLink]], list[tuple[SourcePerson, Link]]]:
    """(linked, review) candidates: an analyst's decision first, else the scorer's band."""
    linked: list[tuple[SourcePerson, ChildLink]] = []
    reviews: list[tuple[SourcePerson, Link]] = []
    for c in candidates:
        link = matching.match(d, c, include_review=True)
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
    guarded = matching.sibling_safe(d, scored, everyone, include_review=True)
    kept = {c.local_id for c, link in guarded if link.band == AUTO}
    doubtful = [(c, link) for c, link in guarded if link.band == REVIEW]
    return [(c, k) for c, k in linked if k.decision is not None or c.local_id in kept], doubtful


async def _confirmed_elsewhere(
    adapter: Adapter,
    source: Source,
    candidates: list[SourcePerson],
    decided: Mapping[decisions.Pair, Decision],
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


def _at_home(
    d: Demographics, candidates: list[SourcePerson], linked: list[tuple[SourcePerson, ChildLink]]
) -> list[tuple[SourcePerson, Home, str]]:
    """The records a source holds at the child's home, each with the home it matched and
    how ("uprn" or "address", see `Home.matches`): where the source knows the child, the
    homes of its own linked records; elsewhere the subject's current home."""
    linked_ids = {c.local_id for c, _ in linked}
    homes = list(dict.fromkeys(h for c, _ in linked if (h := Home.of(c)).uprn or h.key))
    if not homes and (d.uprn or d.address_key):
        homes = [Home(d.uprn, d.address_key)]
    found: list[tuple[SourcePerson, Home, str]] = []
    for c in candidates:
        if c.local_id in linked_ids:
            continue
        theirs = Home.of(c)
        match = next(((h, how) for h in homes if (how := h.matches(theirs))), None)
        if match is not None:
            found.append((c, *match))
    return found


def _places(homes: Sequence[Home]) -> dict[Home, int]:
    """Each home's place: homes sharing a UPRN or an address key are one place."""
    unique = list(dict.fromkeys(homes))
    parent = list(range(len(unique)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(unique):
        for j, b in enumerate(unique[:i]):
            if (a.uprn and a.uprn == b.uprn) or (a.key and a.key == b.key):
                parent[root(i)] = root(j)
    return {h: root(i) for i, h in enumerate(unique)}


def _name_parts(name: str | None) -> set[str]:
    return set(matching.normalise((name or "").replace("-", " ")).split())


def _families(names: Sequence[str | None], child_names: set[str]) -> int:
    """How many families these family names are, leaving out the child's: names sharing a
    part (Smith, Smith-Jones) are one family."""
    families: list[set[str]] = []
    for name in names:
        parts = _name_parts(name)
        if not parts or parts & child_names:
            continue
        joined = [f for f in families if f & parts]
        for f in joined:
            families.remove(f)
            parts |= f
        families.append(parts)
    return len(families)


def _decided(member: HouseholdMember, decision: ResidentDecision | None) -> HouseholdMember:
    """An analyst's confirmation makes a large shared address's resident household."""
    if decision is None:
        return member
    basis = member.basis
    if decision.decision == decisions.CONFIRMED:
        basis = tuple(replace(b, confirmed=True) for b in basis)
    return replace(member, basis=basis, decision=decision)


def _near(query: PersonQuery, r: SourcePerson) -> bool:
    """Could this record be the person searched for? Each given criterion must agree where
    the record holds that field (a date of birth may be day/month swapped)."""
    born = (
        {query.date_of_birth, swapped_date(query.date_of_birth)} if query.date_of_birth else set()
    )
    wanted = {matching.normalise_postcode(p) for p in query.postcodes}
    return all(
        (
            not (query.nhs_number and r.nhs_number) or r.nhs_number == query.nhs_number,
            not (born and r.date_of_birth) or r.date_of_birth in born,
            not (wanted and r.postcode) or matching.normalise_postcode(r.postcode) in wanted,
            not (query.family_name and r.family_name)
            or matching.family_agrees(query.family_name, r.family_name),
            not (query.given_name and r.given_name)
            or matching.given_agrees(query.given_name, r.given_name),
        )
    )


def _meets(query: PersonQuery, c: Cluster) -> bool:
    """Does the cluster agree with every criterion given (each by at least one record)?"""
    records: Sequence[SourcePerson] = c.members
    wanted = {matching.normalise_postcode(p) for p in query.postcodes}
    return all(
        (
            not query.nhs_number or any(r.nhs_number == query.nhs_number for r in records),
            not query.date_of_birth or any(r.date_of_birth == query.date_of_birth for r in records),
            not wanted or any(matching.normalise_postcode(r.postcode) in wanted for r in records),
            not query.family_name
            or any(matching.family_agrees(query.family_name, r.family_name) for r in records),
            not query.given_name
            or any(matching.given_agrees(query.given_name, r.given_name) for r in records),
        )
    )
