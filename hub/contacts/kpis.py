"""The figures councils report about their MASH (DOMAIN.md §1): decided within timescale by
RAG rating, time to decision, re-referrals within 12 months, outcome mix and the agencies'
research response times."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..store.engine import Store
from .models import Contact, ContactSubject
from .workflow import (
    AGENCIES,
    RAGS,
    RE_REFERRAL_WINDOW,
    ContactError,
    ContactFilter,
    ContactSnapshot,
    as_utc,
    find,
    overdue,
    task_overdue,
)


@dataclass(frozen=True)
class RagKpi:
    rag: str
    contacts: int
    decided: int
    decided_within_timescale: int
    percent_within_timescale: float | None


@dataclass(frozen=True)
class AgencyKpi:
    agency: str
    tasks: int
    completed: int
    median_response_minutes: float | None
    percent_on_time: float | None


@dataclass(frozen=True)
class Kpis:
    contacts: int
    by_rag: list[RagKpi]
    median_decision_minutes: float | None
    re_referrals: int
    re_referral_percent: float | None
    outcomes: dict[str, int]
    agencies: list[AgencyKpi]


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _minutes(a: datetime, b: datetime) -> float:
    return (as_utc(b) - as_utc(a)).total_seconds() / 60


def within_timescale(contact: Contact | ContactSnapshot, now: datetime) -> bool | None:
    """Was the contact decided within its RAG timescale (its `due_at`, from MASH_RAG_HOURS)?
    None while it is undecided and not yet due: it has neither succeeded nor failed."""
    if contact.decided_at is not None:
        return as_utc(contact.decided_at) <= as_utc(contact.due_at)
    return False if overdue(contact, now) else None


async def compute(store: Store, start: datetime, end: datetime, now: datetime) -> Kpis:
    """The figures councils report, over contacts received in [start, end).

    Timeliness counts contacts that are decided or already overdue (those still within
    their timescale have not yet succeeded or failed). A re-referral is a contact about a
    child with an earlier contact in the 12 months before it.
    """
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ContactError("'to' must be after 'from'")
    rows = await find(store, ContactFilter(received_from=start, received_to=end), now, 10**6)
    subjects = {s for c in rows for s in c.child_ids}
    earlier: dict[str, list[datetime]] = defaultdict(list)
    if subjects:
        async with store.sessions() as session:
            history = await session.execute(
                select(ContactSubject.subject_id, Contact.received_at)
                .join(Contact, Contact.id == ContactSubject.contact_id)
                .where(ContactSubject.subject_id.in_(subjects))
            )
            for sid, at in history:
                earlier[sid].append(as_utc(at))

    def re_referral(c: ContactSnapshot) -> bool:
        t0 = as_utc(c.received_at)
        return any(t0 - RE_REFERRAL_WINDOW <= at < t0 for s in c.child_ids for at in earlier[s])

    by_rag = []
    for rag in RAGS:
        mine = [c for c in rows if c.rag == rag]
        decided = [c for c in mine if c.decided_at is not None]
        verdicts = [within_timescale(c, now) for c in mine]
        on_time = sum(1 for v in verdicts if v)
        judged = sum(1 for v in verdicts if v is not None)
        by_rag.append(RagKpi(rag, len(mine), len(decided), on_time, _pct(on_time, judged)))
    waits = [_minutes(c.received_at, c.decided_at) for c in rows if c.decided_at is not None]
    agencies = []
    for agency in AGENCIES:
        tasks = [t for c in rows for t in c.tasks if t.agency == agency]
        done = [t for t in tasks if t.completed_at is not None]
        times = [_minutes(t.requested_at, t.completed_at) for t in done if t.completed_at]
        prompt = [t for t in done if as_utc(t.completed_at or now) <= as_utc(t.due_at)]
        judged = len(done) + sum(1 for t in tasks if task_overdue(t, now))
        agencies.append(
            AgencyKpi(
                agency,
                len(tasks),
                len(done),
                statistics.median(times) if times else None,
                _pct(len(prompt), judged),
            )
        )
    re_referred = sum(1 for c in rows if re_referral(c))
    return Kpis(
        contacts=len(rows),
        by_rag=by_rag,
        median_decision_minutes=statistics.median(waits) if waits else None,
        re_referrals=re_referred,
        re_referral_percent=_pct(re_referred, len(rows)),
        outcomes=dict(sorted(Counter(c.decision for c in rows if c.decision).items())),
        agencies=agencies,
    )
