"""Information-governance reports over the audit log (DOMAIN.md §4).

Every report reads identifiers, purposes, field paths and outcomes — the audit log holds
nothing else. Callers (the GraphQL reports, the IG web page) check the `read_audit_log`
policy first and audit the read itself: `Filters.audit` is what the report's own event
records about what was asked (ids and dates, never names).

Reports in `REPORTS` share one shape: a coroutine over (store, filters, page) that returns a
`Page` of rows. The contact workflow's reports (break-glass review queue, consent-override
register, decisions-not-to-share register, "flagged child read with no open contact", and
the timeliness of contacts, which needs when each contact arrived) read the contacts tables:
each slots in as one more function here, one registry entry and one GraphQL field.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select

from .audit import AuditRecord
from .settings import IgSettings
from .store import AuditEvent, AuditSubject, Store

MAX_PAGE = 500
MAX_ACTOR = 200
REPORT_SUBJECT = "report_subject"
# Accesses to personal data: operations with data subjects, other than IG's own reads.
IG_PURPOSE = "IG_AUDIT"
OUT_OF_HOURS, VOLUME = "OUT_OF_HOURS", "VOLUME"
DEFAULT_ANOMALY_WINDOW = timedelta(days=1)
MAX_ANOMALIES = 1000


def utc(moment: datetime | None) -> datetime | None:
    """An aware moment in UTC (naive ones are taken as UTC, as the store keeps them)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Filters:
    """What a report is asked about. Ids and dates only."""

    subject_id: str | None = None
    actor_subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        """Normalise, or raise ValueError with a message safe to show (it echoes nothing)."""
        if self.subject_id is not None:
            try:
                object.__setattr__(self, "subject_id", str(uuid.UUID(self.subject_id)))
            except ValueError:
                raise ValueError("the subject id is not a hub id") from None
        actor = self.actor_subject
        if actor is not None and not (0 < len(actor) <= MAX_ACTOR and actor.isprintable()):
            raise ValueError("the actor is not a valid token subject")
        object.__setattr__(self, "since", utc(self.since))
        object.__setattr__(self, "until", utc(self.until))
        if self.since and self.until and self.since > self.until:
            raise ValueError("since is after until")

    def note(self, record: AuditRecord, report: str) -> None:
        """Put on the report's own audit event what it asked about: the report, the ids and
        dates; the subject asked about is one of the event's data subjects."""
        record.report = self.audit(report)
        if self.subject_id:
            record.subjects.setdefault(self.subject_id, REPORT_SUBJECT)

    def audit(self, report: str) -> dict[str, Any]:
        """The parameters the report's own audit event records."""
        values: dict[str, Any] = {
            "subject_id": self.subject_id,
            "actor_subject": self.actor_subject,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {"name": report} | {k: v for k, v in values.items() if v is not None}

    def window(self) -> list[ColumnElement[bool]]:
        clauses = []
        if self.since:
            clauses.append(AuditEvent.occurred_at >= self.since)
        if self.until:
            clauses.append(AuditEvent.occurred_at < self.until)
        return clauses


@dataclass(frozen=True)
class PageRequest:
    first: int = 50
    after: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.first <= MAX_PAGE:
            raise ValueError(f"first must be between 1 and {MAX_PAGE}")
        if self.after is not None:
            decode_cursor(self.after)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"report:{seq}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "report":
            raise ValueError
        return int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


@dataclass(frozen=True)
class SubjectEntry:
    subject_id: str
    relationship: str


@dataclass(frozen=True)
class Row:
    """One audit event as a report shows it. `relationship` is how the report's subject
    figured in it (subject access only); `subjects` every data subject of the event."""

    event: AuditEvent
    subjects: tuple[SubjectEntry, ...] = ()
    relationship: str | None = None

    @property
    def police_fields_returned(self) -> list[str]:
        return [p for p in self.event.fields_returned if p.startswith("child.police")]

    @property
    def police_fields_redacted(self) -> list[dict[str, str]]:
        return [r for r in self.event.fields_redacted if r["path"].startswith("child.police")]

    @property
    def police_decisions(self) -> list[dict[str, Any]]:
        return [d for d in self.event.policy_decisions if d.get("agency") == "police"]


@dataclass(frozen=True)
class Page:
    rows: Sequence[Row]
    total_count: int
    end_cursor: str | None
    has_next_page: bool


def _accesses() -> ColumnElement[bool]:
    """Operations that touched personal data: they have data subjects and are not IG's."""
    return and_(
        exists().where(AuditSubject.event_seq == AuditEvent.seq),
        AuditEvent.purpose.is_distinct_from(IG_PURPOSE),
    )


async def _page(
    store: Store, query: Select[*tuple[Any, ...]], page: PageRequest
) -> tuple[list[Any], int]:
    """(rows of this page plus one, total) for a query whose first column is an event."""
    async with store.sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        if page.after:
            query = query.where(AuditEvent.seq > decode_cursor(page.after))
        rows = list(await session.execute(query.order_by(AuditEvent.seq).limit(page.first + 1)))
    return rows, total


async def subject_entries(store: Store, seqs: Sequence[int]) -> dict[int, tuple[SubjectEntry, ...]]:
    if not seqs:
        return {}
    async with store.sessions() as session:
        entries = (
            await session.execute(
                select(AuditSubject)
                .where(AuditSubject.event_seq.in_(seqs))
                .order_by(AuditSubject.event_seq, AuditSubject.subject_id)
            )
        ).scalars()
        out: dict[int, list[SubjectEntry]] = {}
        for e in entries:
            out.setdefault(e.event_seq, []).append(SubjectEntry(e.subject_id, e.relationship))
    return {seq: tuple(v) for seq, v in out.items()}


def _finish(rows: list[Row], total: int, page: PageRequest) -> Page:
    shown = rows[: page.first]
    return Page(
        rows=shown,
        total_count=total,
        end_cursor=encode_cursor(shown[-1].event.seq) if shown else None,
        has_next_page=len(rows) > page.first,
    )


async def subject_access(store: Store, filters: Filters, page: PageRequest) -> Page:
    """Who saw this person: every event with them as a data subject (the child read, a
    household member's record, a search that found them, an IG report about them)."""
    if not filters.subject_id:
        raise ValueError("subject access needs a subject id")
    query = (
        select(AuditEvent, AuditSubject.relationship)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.subject_id == filters.subject_id, *filters.window())
    )
    rows, total = await _page(store, query, page)
    subjects = await subject_entries(store, [e.seq for e, _ in rows])
    return _finish([Row(e, subjects.get(e.seq, ()), rel) for e, rel in rows], total, page)


async def accessor_activity(store: Store, filters: Filters, page: PageRequest) -> Page:
    """What this user has looked at: their events with the data subjects of each."""
    if not filters.actor_subject:
        raise ValueError("accessor activity needs an actor")
    query = select(AuditEvent).where(
        AuditEvent.actor_subject == filters.actor_subject, *filters.window()
    )
    rows, total = await _page(store, query, page)
    subjects = await subject_entries(store, [e.seq for (e,) in rows])
    return _finish([Row(e, subjects.get(e.seq, ())) for (e,) in rows], total, page)


async def police_extract(store: Store, filters: Filters, page: PageRequest) -> Page:
    """DPA 2018 s62: every consultation of police-originated data — when, who, why (purpose,
    contact, justification), about whom, what was shown and withheld."""
    clauses = [AuditEvent.police_consulted.is_(True), *filters.window()]
    if filters.actor_subject:
        clauses.append(AuditEvent.actor_subject == filters.actor_subject)
    if filters.subject_id:
        clauses.append(
            exists().where(
                AuditSubject.event_seq == AuditEvent.seq,
                AuditSubject.subject_id == filters.subject_id,
            )
        )
    rows, total = await _page(store, select(AuditEvent).where(*clauses), page)
    subjects = await subject_entries(store, [e.seq for (e,) in rows])
    return _finish([Row(e, subjects.get(e.seq, ())) for (e,) in rows], total, page)


@dataclass(frozen=True)
class Anomaly:
    """Something IG should look at. OUT_OF_HOURS: one access outside office hours (`event`
    set). VOLUME: a user's accesses in the window (`count`) against their usual (`usual`,
    the baseline rate scaled to the window)."""

    kind: str
    actor_subject: str | None
    actor_agency: str | None = None
    actor_team: str | None = None
    occurred_at: datetime | None = None
    event_id: str | None = None
    subject_ids: tuple[str, ...] = ()
    count: int = 0
    usual: float = 0.0
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AnomalyReport:
    since: datetime
    until: datetime
    anomalies: list[Anomaly] = field(default_factory=list)
    truncated: bool = False


def out_of_hours(moment: datetime, rules: IgSettings) -> bool:
    local = (utc(moment) or moment).astimezone(rules.zone)
    in_hours = rules.office_start <= local.time() < rules.office_end
    return local.weekday() not in rules.office_days or not in_hours


async def anomalies(
    store: Store, filters: Filters, rules: IgSettings, now: datetime
) -> AnomalyReport:
    """Out-of-hours accesses and users far above their usual volume, in the window
    (default: the day before `now`), optionally for one actor."""
    until = filters.until or utc(now) or now
    since = filters.since or until - DEFAULT_ANOMALY_WINDOW
    window = Filters(filters.subject_id, filters.actor_subject, since, until)
    found = await _volume(store, window, rules)
    late, truncated = await _out_of_hours(store, window, rules, MAX_ANOMALIES - len(found))
    return AnomalyReport(since, until, found + late, truncated)


def _actor_clause(filters: Filters) -> list[ColumnElement[bool]]:
    if filters.actor_subject:
        return [AuditEvent.actor_subject == filters.actor_subject]
    return []


async def _out_of_hours(
    store: Store, filters: Filters, rules: IgSettings, limit: int
) -> tuple[list[Anomaly], bool]:
    query = (
        select(
            AuditEvent.occurred_at,
            AuditEvent.actor_subject,
            AuditEvent.actor_agency,
            AuditEvent.actor_team,
            AuditEvent.event_id,
            AuditEvent.subjects,
        )
        .where(_accesses(), *filters.window(), *_actor_clause(filters))
        .order_by(AuditEvent.seq)
    )
    found: list[Anomaly] = []
    async with store.sessions() as session:
        for at, actor, agency, team, event_id, subjects in await session.execute(query):
            if not out_of_hours(at, rules):
                continue
            if len(found) >= limit:
                return found, True
            found.append(
                Anomaly(
                    OUT_OF_HOURS,
                    actor,
                    agency,
                    team,
                    occurred_at=utc(at),
                    event_id=event_id,
                    subject_ids=tuple(subjects),
                )
            )
    return found, False


async def _volume(store: Store, filters: Filters, rules: IgSettings) -> list[Anomaly]:
    assert filters.since is not None and filters.until is not None
    span = filters.until - filters.since
    baseline = Filters(
        since=filters.since - timedelta(days=rules.baseline_days), until=filters.since
    )
    counts = await _counts(store, filters)
    usual = await _counts(store, baseline)
    scale = span / timedelta(days=rules.baseline_days)
    found = []
    for (actor, agency, team), count in sorted(counts.items(), key=lambda kv: -kv[1]):
        expected = usual.get((actor, agency, team), 0) * scale
        if count >= rules.volume_floor and count > rules.volume_factor * expected:
            found.append(
                Anomaly(
                    VOLUME,
                    actor,
                    agency,
                    team,
                    count=count,
                    usual=round(expected, 2),
                    since=filters.since,
                    until=filters.until,
                )
            )
    return found


async def _counts(store: Store, filters: Filters) -> dict[tuple[Any, Any, Any], int]:
    query = (
        select(
            AuditEvent.actor_subject,
            AuditEvent.actor_agency,
            AuditEvent.actor_team,
            func.count(),
        )
        .where(_accesses(), *filters.window(), *_actor_clause(filters))
        .group_by(AuditEvent.actor_subject, AuditEvent.actor_agency, AuditEvent.actor_team)
    )
    async with store.sessions() as session:
        return {(a, g, t): n for a, g, t, n in await session.execute(query)}


@dataclass(frozen=True)
class Report:
    """A paged report: its title, the filters it takes (`required` among them) and how it
    runs."""

    name: str
    title: str
    filters: tuple[str, ...]
    required: tuple[str, ...]
    run: Callable[[Store, Filters, PageRequest], Awaitable[Page]]


REPORTS: dict[str, Report] = {
    "subject_access": Report(
        "subject_access",
        "Subject access: who saw this person",
        ("subject_id", "since", "until"),
        ("subject_id",),
        subject_access,
    ),
    "accessor_activity": Report(
        "accessor_activity",
        "Accessor activity: what this user looked at",
        ("actor_subject", "since", "until"),
        ("actor_subject",),
        accessor_activity,
    ),
    "police_s62": Report(
        "police_s62",
        "Police consultations (DPA 2018 s62)",
        ("actor_subject", "subject_id", "since", "until"),
        (),
        police_extract,
    ),
}
