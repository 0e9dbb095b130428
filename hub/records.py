"""The record service: ask every source concurrently, each within its own deadline, and link
what they return to one child and the child's household.

A source that fails or runs out of time is reported as such (`UNAVAILABLE`, `TIMED_OUT`);
it never looks like a source that knows nothing (`NOT_KNOWN`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.base import Adapter, Item, PersonQuery, Source, SourceError, SourcePerson

from . import identity
from .identity import Cluster, Demographics, Link
from .store import Store, Subject

log = logging.getLogger(__name__)
T = TypeVar("T")

OK, NOT_KNOWN, UNAVAILABLE, TIMED_OUT = "OK", "NOT_KNOWN", "UNAVAILABLE", "TIMED_OUT"
ADULT_AGE = 18


@dataclass
class SourceAnswer:
    """One source's answer to one question, with its status and how long it took."""

    source: Source
    status: str
    latency_ms: int
    linked: list[tuple[SourcePerson, Link]] = field(default_factory=list)
    household: list[SourcePerson] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    candidates: list[SourcePerson] = field(default_factory=list)


@dataclass(frozen=True)
class ChildMatch:
    subject_id: str
    demographics: Demographics
    records: tuple[SourcePerson, ...]


@dataclass(frozen=True)
class HouseholdMember:
    subject_id: str
    records: tuple[SourcePerson, ...]


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
    ) -> None:
        self.adapters = dict(adapters)
        self.deadlines_s = dict(deadlines_s)
        self.store = store
        self.today = today

    async def _ask(
        self, source: Source, work: Callable[[], Awaitable[SourceAnswer]]
    ) -> SourceAnswer:
        started = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self.deadlines_s.get(source, 2.0)):
                answer = await work()
        except TimeoutError:
            return SourceAnswer(source, TIMED_OUT, elapsed())
        except SourceError as exc:
            log.warning("source %s unavailable: %s", source.value, type(exc).__name__)
            return SourceAnswer(source, UNAVAILABLE, elapsed())
        except Exception as exc:  # an adapter bug must not take the record down
            log.error("source %s failed unexpectedly: %s", source.value, type(exc).__name__)
            return SourceAnswer(source, UNAVAILABLE, elapsed())
        answer.latency_ms = elapsed()
        return answer

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
        candidates = [c for a in answers.values() for c in a.candidates]
        children = [
            c
            for c in identity.cluster(candidates)
            if _meets(query, c)
            and not (
                c.demographics.date_of_birth
                and age_on(c.demographics.date_of_birth, self.today()) >= ADULT_AGE
            )
        ]
        ids = await self._subjects_for([c.demographics for c in children])
        matches = [
            ChildMatch(i, c.demographics, tuple(c.members))
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
        )
        query = PersonQuery(d.nhs_number, d.given_name, d.family_name, d.date_of_birth, d.postcodes)

        async def ask(source: Source, adapter: Adapter) -> SourceAnswer:
            candidates = list(await adapter.search(query))
            linked = [(c, link) for c in candidates if (link := identity.match(d, c))]
            linked_ids = {c.local_id for c, _ in linked}
            addresses = set(d.postcodes) | {
                identity.normalise_postcode(c.postcode) for c, _ in linked if c.postcode
            }
            household = [
                c
                for c in candidates
                if c.local_id not in linked_ids
                and identity.normalise_postcode(c.postcode) in addresses
            ]
            ids = [c.local_id for c, _ in linked] + [c.local_id for c in household]
            items = list(await adapter.items(ids)) if ids else []
            status = OK if (linked or household) else NOT_KNOWN
            return SourceAnswer(source, status, 0, linked, household, items)

        answers = await self._fan_out(ask)
        clusters = identity.cluster([p for a in answers.values() for p in a.household])
        ids = await self._subjects_for([c.demographics for c in clusters])
        members = [HouseholdMember(i, tuple(c.members)) for i, c in zip(ids, clusters, strict=True)]
        return AssembledRecord(subject_id, d, answers, members)

    async def _load(self, subject_id: str) -> Subject | None:
        async with self.store.sessions() as session:
            return await session.get(Subject, subject_id)

    async def _subjects_for(self, people: Sequence[Demographics]) -> list[str]:
        """The hub's ids for these people, created on first sight (one round trip for all);
        postcodes seen are added to what the hub remembers."""
        keys = [identity.identity_key(d) for d in people]
        for _ in range(2):
            async with self.store.sessions() as session:
                found = {
                    s.identity_key: s
                    for s in (
                        await session.execute(
                            select(Subject).where(Subject.identity_key.in_(set(keys)))
                        )
                    ).scalars()
                }
                changed = False
                for key, d in zip(keys, people, strict=True):
                    subject = found.get(key)
                    if subject is None:
                        subject = found[key] = Subject(
                            id=str(uuid.uuid4()),
                            identity_key=key,
                            nhs_number=d.nhs_number,
                            given_name=d.given_name,
                            family_name=d.family_name,
                            date_of_birth=d.date_of_birth,
                            postcodes=list(d.postcodes),
                            created_at=datetime.now(UTC),
                        )
                        session.add(subject)
                        changed = True
                    merged = list(dict.fromkeys([*subject.postcodes, *d.postcodes]))
                    if merged != subject.postcodes:
                        subject.postcodes = merged
                        changed = True
                try:
                    if changed:
                        await session.commit()
                    return [found[key].id for key in keys]
                except IntegrityError:  # created concurrently: read them back
                    await session.rollback()
        raise RuntimeError("subjects could not be created")


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
