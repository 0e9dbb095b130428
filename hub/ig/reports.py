"""Information-governance reports over the audit log (DOMAIN.md §4).

Every report reads identifiers, purposes, field paths and outcomes — the audit log holds
nothing else. Callers (the GraphQL reports, the IG web page) check the `read_audit_log`
policy first and audit the read itself: `Filters.audit` is what the report's own event
records about what was asked (ids and dates, never names).

Reports in `REPORTS` share one shape: a coroutine over (store, filters, page, env) that
returns a `Page` of rows. The audit-log reports (subject access, accessor activity, police
s62) page `Row`s of audit events by sequence number. The contact workflow's registers read
the contacts tables and page their own rows by position: the break-glass review queue
(`GlassEntry`, with the reads made under each grant and IG's review), the consent-override
register (`OverrideEntry`), the decisions-not-to-share register (`WithheldEntry`) and the
timeliness of contacts (`TimelinessEntry`, with a `TimelinessSummary`).

Anomalies are not paged: OUT_OF_HOURS, VOLUME and FLAGGED_NO_CONTACT (see
`flagged_without_contact` for what "flagged" means here).

Free text stays out of every report but the break-glass queue, which shows IG the
justification it reviews; no report copies free text into its own audit event.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select

from ..audit.events import AuditNotes, LoggedEvent
from ..audit.models import AuditEvent, AuditSubject
from ..contacts.kpis import within_timescale
from ..contacts.models import ConsentOverride, Contact, ContactSubject, StageTransition
from ..contacts.workflow import ContactSettings
from ..reading.models import BreakGlassGrant, IgAlert, Notification, WithheldItem
from ..reading.oversight import FLAG_DECISION, LEGACY_FLAG_DECISION
from ..settings import IgSettings
from ..store.cursors import SeqCursor
from ..store.engine import Store

MAX_PAGE = 500
MAX_ACTOR = 200
REPORT_SUBJECT = "report_subject"
# Accesses to personal data: operations with data subjects, other than IG's own reads.
IG_PURPOSE = "IG_AUDIT"
OUT_OF_HOURS, VOLUME = "OUT_OF_HOURS", "VOLUME"
FLAGGED_NO_CONTACT = "FLAGGED_NO_CONTACT"
# Outcomes of an operation that returned (some of) a record.
READ_OUTCOMES = ("ok", "partial", "redacted")
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
    unreviewed_only: bool = False

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

    def note(self, notes: AuditNotes, report: str) -> None:
        """Put on the report's own audit event what it asked about: the report, the ids and
        dates; the subject asked about is one of the event's data subjects."""
        notes.report(self.audit(report))
        if self.subject_id:
            notes.subject(self.subject_id, REPORT_SUBJECT)

    def audit(self, report: str) -> dict[str, Any]:
        """The parameters the report's own audit event records."""
        values: dict[str, Any] = {
            "subject_id": self.subject_id,
            "actor_subject": self.actor_subject,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "unreviewed_only": self.unreviewed_only or None,
        }
        return {"name": report} | {k: v for k, v in values.items() if v is not None}

    def window(self, column: Any = AuditEvent.occurred_at) -> list[ColumnElement[bool]]:
        """[since, until) over `column` (by default when the audit event happened)."""
        clauses = []
        if self.since:
            clauses.append(column >= self.since)
        if self.until:
            clauses.append(column < self.until)
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


_CURSOR = SeqCursor("report")
encode_cursor, decode_cursor = _CURSOR.encode, _CURSOR.decode


@dataclass(frozen=True)
class SubjectEntry:
    subject_id: str
    relationship: str


@dataclass(frozen=True)
class Row:
    """One audit event as a report shows it. `relationship` is how the report's subject
    figured in it (subject access only); `subjects` every data subject of the event."""

    event: LoggedEvent
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
    """A page of a report's rows (`Row`s for the audit-log reports, the register's own rows
    otherwise); `summary` is over every row the filters match, not only this page's."""

    rows: Sequence[Any]
    total_count: int
    end_cursor: str | None
    has_next_page: bool
    summary: Any = None


@dataclass(frozen=True)
class Env:
    """What a report may need besides the store: the hub's clock and the contact workflow's
    timescales (MASH_RAG_HOURS)."""

    now: datetime
    contacts: ContactSettings = field(default_factory=ContactSettings)


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
    return _finish(
        [Row(LoggedEvent.of(e), subjects.get(e.seq, ()), rel) for e, rel in rows], total, page
    )


async def access_times(store: Store, filters: Filters, limit: int = 10_000) -> list[datetime]:
    """When each event of the subject access report happened (its every page), oldest
    first, at most `limit`: what a chart of accesses over time counts."""
    if not filters.subject_id:
        raise ValueError("subject access needs a subject id")
    query = (
        select(AuditEvent.occurred_at)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(AuditSubject.subject_id == filters.subject_id, *filters.window())
        .order_by(AuditEvent.seq)
        .limit(limit)
    )
    async with store.sessions() as session:
        found = await session.execute(query)
        return [at for at in (utc(m) for m in found.scalars()) if at is not None]


async def accessor_activity(store: Store, filters: Filters, page: PageRequest) -> Page:
    """What this user has looked at: their events with the data subjects of each."""
    if not filters.actor_subject:
        raise ValueError("accessor activity needs an actor")
    query = select(AuditEvent).where(
        AuditEvent.actor_subject == filters.actor_subject, *filters.window()
    )
    rows, total = await _page(store, query, page)
    subjects = await subject_entries(store, [e.seq for (e,) in rows])
    return _finish([Row(LoggedEvent.of(e), subjects.get(e.seq, ())) for (e,) in rows], total, page)


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
    return _finish([Row(LoggedEvent.of(e), subjects.get(e.seq, ())) for (e,) in rows], total, page)


@dataclass(frozen=True)
class Anomaly:
    """Something IG should look at. OUT_OF_HOURS: one access outside office hours (`event`
    set). FLAGGED_NO_CONTACT: one read of a flagged child while no contact about them was
    open (`event` set; `subject_ids` the child). VOLUME: a user's accesses in the window
    (`count`) against their usual (`usual`, the baseline rate scaled to the window)."""

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
    """Users far above their usual volume, reads of flagged children with no open contact
    and out-of-hours accesses, in the window (default: the day before `now`), optionally
    for one actor; at most MAX_ANOMALIES, with `truncated` set when there were more."""
    until = filters.until or utc(now) or now
    since = filters.since or until - DEFAULT_ANOMALY_WINDOW
    window = Filters(filters.subject_id, filters.actor_subject, since, until)
    found = await _volume(store, window, rules)
    flagged, cut = await flagged_without_contact(store, window, MAX_ANOMALIES - len(found))
    found += flagged
    late, truncated = await _out_of_hours(store, window, rules, MAX_ANOMALIES - len(found))
    return AnomalyReport(since, until, found + late, cut or truncated)


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


async def flagged_without_contact(
    store: Store, filters: Filters, limit: int
) -> tuple[list[Anomaly], bool]:
    """FLAGGED_NO_CONTACT: a read that returned a flagged child's record at a moment when no
    contact about that child was open (received by then, and not CLOSED by then).

    "Flagged", from what the hub keeps, at the moment of the read:
    - the read's own event notes the child-protection flag decision (`FLAG_DECISION`: the
      read found a current child-protection-plan or looked-after care plan, rule 16),
      whoever read it;
    - the hub store holds a FLAGGED_CHILD_READ notification about the child from then or
      earlier (an earlier read found the flag; written for readers outside the child's
      owning team);
    - a break-glass grant for the child from then or earlier (a "glass subject", rule 15);
    - or the read's own event withheld part of the child's record as LOCATION_PROTECTED
      (a sensitive-flagged patient or refuge address, rule 11).
    Reads whose whole record was withheld (no relationship) returned nothing and are not
    counted.
    """
    query = (
        select(AuditEvent, AuditSubject.subject_id)
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(
            AuditSubject.relationship == "child",
            AuditEvent.outcome.in_(READ_OUTCOMES),
            AuditEvent.purpose.is_distinct_from(IG_PURPOSE),
            *filters.window(),
            *_actor_clause(filters),
        )
        .order_by(AuditEvent.seq)
    )
    async with store.sessions() as session:
        reads = [
            (e, child)
            for e, child in await session.execute(query)
            if e.fields_returned and not any(r["path"] == "child" for r in e.fields_redacted)
        ]
        children = {child for _, child in reads}
        flags = await _flagged_since(session, children)
        spans = await _open_spans(session, children)
    found: list[Anomaly] = []
    for e, child in reads:
        at = utc(e.occurred_at) or e.occurred_at
        located = any(
            r["reason"] == "LOCATION_PROTECTED"
            # another person's protected location (a household member, a shared address's
            # resident) does not make the child flagged
            and not r["path"].startswith(("child.household", "child.sharedAddressResidents"))
            for r in e.fields_redacted
        )
        noted = any(
            d.get("class") in (FLAG_DECISION, LEGACY_FLAG_DECISION)
            for d in e.policy_decisions or ()
        )
        if not (located or noted or any(t <= at for t in flags.get(child, ()))):
            continue
        if any(start <= at and (end is None or at < end) for start, end in spans.get(child, ())):
            continue
        if len(found) >= limit:
            return found, True
        found.append(
            Anomaly(
                FLAGGED_NO_CONTACT,
                e.actor_subject,
                e.actor_agency,
                e.actor_team,
                occurred_at=at,
                event_id=e.event_id,
                subject_ids=(child,),
            )
        )
    return found, False


async def _flagged_since(session: Any, children: set[str]) -> dict[str, list[datetime]]:
    """When each child was first known flagged: flagged-child-read notices, break-glass."""
    out: dict[str, list[datetime]] = {}
    if not children:
        return out
    notices = select(Notification.subject_id, Notification.created_at).where(
        Notification.kind == "FLAGGED_CHILD_READ", Notification.subject_id.in_(children)
    )
    grants = select(BreakGlassGrant.subject_id, BreakGlassGrant.granted_at).where(
        BreakGlassGrant.subject_id.in_(children)
    )
    for query in (notices, grants):
        for child, at in await session.execute(query):
            out.setdefault(child, []).append(utc(at) or at)
    return out


async def _open_spans(
    session: Any, children: set[str]
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each child's contacts as [opened, closed) spans; a reopened contact has several."""
    if not children:
        return {}
    rows = await session.execute(
        select(ContactSubject.subject_id, Contact.id, Contact.received_at)
        .join(Contact, Contact.id == ContactSubject.contact_id)
        .where(ContactSubject.subject_id.in_(children))
    )
    contacts = [(child, cid, utc(at) or at) for child, cid, at in rows]
    moves: dict[str, list[tuple[datetime, str]]] = {}
    if contacts:
        changes = await session.execute(
            select(StageTransition.contact_id, StageTransition.at, StageTransition.to_stage)
            .where(StageTransition.contact_id.in_({cid for _, cid, _ in contacts}))
            .order_by(StageTransition.seq)
        )
        for cid, at, stage in changes:
            moves.setdefault(cid, []).append((utc(at) or at, stage))
    out: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for child, cid, received in contacts:
        start: datetime | None = received
        for at, stage in moves.get(cid, []):
            if stage == "CLOSED" and start is not None:
                out.setdefault(child, []).append((start, at))
                start = None
            elif stage != "CLOSED" and start is None:
                start = at
        if start is not None:
            out.setdefault(child, []).append((start, None))
    return out


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


# --- the contact workflow's registers ---------------------------------------------------


async def _positioned(
    store: Store, query: Select[*tuple[Any, ...]], page: PageRequest
) -> tuple[list[Any], int]:
    """(rows of this page plus one, total) for a register ordered by its own columns; its
    cursors are positions in that order."""
    start = decode_cursor(page.after) if page.after else 0
    async with store.sessions() as session:
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = list(await session.execute(query.offset(start).limit(page.first + 1)))
    return rows, total


def _positions(rows: list[Any], total: int, page: PageRequest, summary: Any = None) -> Page:
    start = decode_cursor(page.after) if page.after else 0
    shown = rows[: page.first]
    return Page(
        rows=shown,
        total_count=total,
        end_cursor=encode_cursor(start + len(shown)) if shown else None,
        has_next_page=len(rows) > page.first,
        summary=summary,
    )


async def _contact_children(store: Store, contact_ids: set[str]) -> dict[str, tuple[str, ...]]:
    if not contact_ids:
        return {}
    async with store.sessions() as session:
        rows = await session.execute(
            select(ContactSubject.contact_id, ContactSubject.subject_id)
            .where(ContactSubject.contact_id.in_(contact_ids))
            .order_by(ContactSubject.contact_id, ContactSubject.subject_id)
        )
        out: dict[str, list[str]] = {}
        for cid, sid in rows:
            out.setdefault(cid, []).append(sid)
    return {cid: tuple(sids) for cid, sids in out.items()}


def _about(contact_id: Any, filters: Filters) -> list[ColumnElement[bool]]:
    if not filters.subject_id:
        return []
    return [
        contact_id.in_(
            select(ContactSubject.contact_id).where(ContactSubject.subject_id == filters.subject_id)
        )
    ]


@dataclass(frozen=True)
class GlassEntry:
    """A break-glass grant as IG reviews it: who, which child, why (the justification is
    what IG reviews, so it is shown here — and never put on an audit event), how long, how
    many reads were made under it, and IG's review of its alert."""

    grant_id: str
    actor_subject: str
    actor_issuer: str
    actor_agency: str | None
    actor_team: str | None
    subject_id: str
    reason_code: str
    justification: str
    granted_at: datetime
    expires_at: datetime
    reads: int
    alert_id: str | None
    review_outcome: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


GRANT_ID = AuditEvent.break_glass["grant_id"].as_string()


async def break_glass_queue(store: Store, filters: Filters, page: PageRequest, env: Env) -> Page:
    """Every break-glass grant (granted in the window; optionally for one actor or child, or
    only those whose alert IG has not reviewed), oldest first. `reads`: audit events of
    reads that named the grant (a read under break-glass records its grant id)."""
    clauses = [*filters.window(BreakGlassGrant.granted_at)]
    if filters.actor_subject:
        clauses.append(BreakGlassGrant.actor_subject == filters.actor_subject)
    if filters.subject_id:
        clauses.append(BreakGlassGrant.subject_id == filters.subject_id)
    if filters.unreviewed_only:
        clauses.append(or_(IgAlert.id.is_(None), IgAlert.reviewed_at.is_(None)))
    query = (
        select(BreakGlassGrant, IgAlert)
        .outerjoin(IgAlert, IgAlert.grant_id == BreakGlassGrant.id)
        .where(*clauses)
        .order_by(BreakGlassGrant.granted_at, BreakGlassGrant.id)
    )
    rows, total = await _positioned(store, query, page)
    reads = await _reads_under(store, {g.id for g, _ in rows})
    return _positions(
        [
            GlassEntry(
                g.id,
                g.actor_subject,
                g.actor_issuer,
                g.actor_agency,
                g.actor_team,
                g.subject_id,
                g.reason_code,
                g.justification,
                _aware(g.granted_at),
                _aware(g.expires_at),
                reads.get(g.id, 0),
                a.id if a else None,
                a.review_outcome if a else None,
                a.reviewed_by if a else None,
                utc(a.reviewed_at) if a else None,
            )
            for g, a in rows
        ],
        total,
        page,
    )


async def _reads_under(store: Store, grant_ids: set[str]) -> dict[str, int]:
    if not grant_ids:
        return {}
    async with store.sessions() as session:
        rows = await session.execute(
            select(GRANT_ID, func.count())
            .where(
                GRANT_ID.in_(grant_ids),
                AuditEvent.break_glass["use"].as_string() == "READ",
                AuditEvent.outcome.in_(READ_OUTCOMES),
            )
            .group_by(GRANT_ID)
        )
        return {grant: n for grant, n in rows}


def _aware(moment: datetime) -> datetime:
    return utc(moment) or moment


@dataclass(frozen=True)
class OverrideEntry:
    """A manager's decision to share without consent, as stored (no justification text)."""

    override_id: str
    contact_id: str
    subject_ids: tuple[str, ...]
    authorised_by: str
    authoriser_role: str
    reason_code: str
    authorised_at: datetime


async def consent_overrides(store: Store, filters: Filters, page: PageRequest, env: Env) -> Page:
    """Every consent override authorised in the window, optionally by one authoriser or
    about one child, oldest first."""
    clauses = [
        *filters.window(ConsentOverride.authorised_at),
        *_about(ConsentOverride.contact_id, filters),
    ]
    if filters.actor_subject:
        clauses.append(ConsentOverride.authorised_by == filters.actor_subject)
    query = select(ConsentOverride).where(*clauses).order_by(ConsentOverride.seq)
    rows, total = await _positioned(store, query, page)
    children = await _contact_children(store, {o.contact_id for (o,) in rows})
    entries = [
        OverrideEntry(
            o.id,
            o.contact_id,
            children.get(o.contact_id, ()),
            o.authorised_by,
            o.authoriser_role,
            o.reason_code,
            _aware(o.authorised_at),
        )
        for (o,) in rows
    ]
    return _positions(entries, total, page)


@dataclass(frozen=True)
class WithheldEntry:
    """An agency's decision not to share one of its items (no reason text), with the contact
    it was made for and that contact's children — none when the agency named no contact
    (and for decisions recorded before contacts were stored with them)."""

    withheld_id: str
    source: str
    item_id: str
    agency: str
    contact_id: str | None
    subject_ids: tuple[str, ...]
    withheld_by: str
    reason_code: str
    withheld_at: datetime


async def not_shared(store: Store, filters: Filters, page: PageRequest, env: Env) -> Page:
    """Every decision not to share recorded in the window, optionally by one user or for a
    contact about one child, oldest first."""
    clauses = [
        *filters.window(WithheldItem.withheld_at),
        *_about(WithheldItem.contact_id, filters),
    ]
    if filters.actor_subject:
        clauses.append(WithheldItem.withheld_by == filters.actor_subject)
    query = select(WithheldItem).where(*clauses).order_by(WithheldItem.withheld_at, WithheldItem.id)
    rows, total = await _positioned(store, query, page)
    children = await _contact_children(store, {w.contact_id for (w,) in rows if w.contact_id})
    entries = [
        WithheldEntry(
            w.id,
            w.source,
            w.item_id,
            w.agency,
            w.contact_id,
            children.get(w.contact_id, ()) if w.contact_id else (),
            w.withheld_by,
            w.reason_code,
            _aware(w.withheld_at),
        )
        for (w,) in rows
    ]
    return _positions(entries, total, page)


@dataclass(frozen=True)
class TimelinessEntry:
    """One contact against its RAG timescale. `hours` is received to decision, or received
    to now while undecided; `within_target` is None while undecided and not yet due."""

    contact_id: str
    subject_ids: tuple[str, ...]
    received_at: datetime
    rag: str
    target_hours: float | None
    due_at: datetime
    decided_at: datetime | None
    decision: str | None
    stage: str
    hours: float
    within_target: bool | None


@dataclass(frozen=True)
class TimelinessSummary:
    """Over every contact the filters match: how many, decided, judged (decided, or
    undecided past due), decided within target, that as a percentage of judged, and the
    median hours to decision."""

    contacts: int
    decided: int
    judged: int
    within_target: int
    percent_within_target: float | None
    median_hours_to_decision: float | None


async def timeliness(store: Store, filters: Filters, page: PageRequest, env: Env) -> Page:
    """Contacts received in the window, oldest first, each against its RAG timescale (as
    the KPIs judge it), with a summary over all of them."""
    query = (
        select(Contact)
        .where(*filters.window(Contact.received_at), *_about(Contact.id, filters))
        .order_by(Contact.received_at, Contact.id)
    )
    async with store.sessions() as session:
        contacts = list((await session.execute(query)).scalars())
    now = _aware(env.now)
    verdicts = [within_timescale(c, now) for c in contacts]
    taken = [_hours(c.received_at, c.decided_at or now) for c in contacts]
    start = decode_cursor(page.after) if page.after else 0
    window = range(start, min(start + page.first + 1, len(contacts)))
    children = await _contact_children(store, {contacts[i].id for i in window})
    rows = [
        TimelinessEntry(
            c.id,
            children.get(c.id, ()),
            _aware(c.received_at),
            c.rag,
            env.contacts.rag_hours.get(c.rag),
            _aware(c.due_at),
            utc(c.decided_at),
            c.decision,
            c.stage,
            taken[i],
            verdicts[i],
        )
        for i in window
        for c in (contacts[i],)
    ]
    decided = [taken[i] for i, c in enumerate(contacts) if c.decided_at is not None]
    judged = sum(1 for v in verdicts if v is not None)
    on_time = sum(1 for v in verdicts if v)
    summary = TimelinessSummary(
        contacts=len(contacts),
        decided=len(decided),
        judged=judged,
        within_target=on_time,
        percent_within_target=round(100 * on_time / judged, 1) if judged else None,
        median_hours_to_decision=round(statistics.median(decided), 2) if decided else None,
    )
    return _positions(rows, len(contacts), page, summary)


def _hours(start: datetime, end: datetime) -> float:
    return round((_aware(end) - _aware(start)).total_seconds() / 3600, 2)


@dataclass(frozen=True)
class Report:
    """A paged report: its title, the filters it takes (`required` among them), how it runs,
    and what its rows are (`events`: audit events; otherwise a register's own rows)."""

    name: str
    title: str
    filters: tuple[str, ...]
    required: tuple[str, ...]
    run: Callable[[Store, Filters, PageRequest, Env], Awaitable[Page]]
    rows: str = "events"


def _events(
    report: Callable[[Store, Filters, PageRequest], Awaitable[Page]],
) -> Callable[[Store, Filters, PageRequest, Env], Awaitable[Page]]:
    async def run(store: Store, filters: Filters, page: PageRequest, env: Env) -> Page:
        return await report(store, filters, page)

    return run


REPORTS: dict[str, Report] = {
    "subject_access": Report(
        "subject_access",
        "Subject access: who saw this person",
        ("subject_id", "since", "until"),
        ("subject_id",),
        _events(subject_access),
    ),
    "accessor_activity": Report(
        "accessor_activity",
        "Accessor activity: what this user looked at",
        ("actor_subject", "since", "until"),
        ("actor_subject",),
        _events(accessor_activity),
    ),
    "police_s62": Report(
        "police_s62",
        "Police consultations (DPA 2018 s62)",
        ("actor_subject", "subject_id", "since", "until"),
        (),
        _events(police_extract),
    ),
    "break_glass_review": Report(
        "break_glass_review",
        "Break-glass review queue: each grant, the reads under it and IG's review",
        ("unreviewed_only", "actor_subject", "subject_id", "since", "until"),
        (),
        break_glass_queue,
        "grants",
    ),
    "consent_overrides": Report(
        "consent_overrides",
        "Consent-override register: sharing without consent",
        ("subject_id", "actor_subject", "since", "until"),
        (),
        consent_overrides,
        "overrides",
    ),
    "not_shared": Report(
        "not_shared",
        "Decisions-not-to-share register",
        ("subject_id", "actor_subject", "since", "until"),
        (),
        not_shared,
        "withheld",
    ),
    "timeliness": Report(
        "timeliness",
        "Timeliness of contacts against their RAG timescales",
        ("since", "until"),
        (),
        timeliness,
        "contacts",
    ),
}
