"""Oversight of access to children's records (DOMAIN.md §3 rules 8, 15 and 16): break-glass
grants and the IG alerts they raise, notifications to a child's owning team, "previously
accessed by", and agencies' recorded decisions not to share.

Writes are staged on the operation's `AuditNotes`, so they commit with its audit event or
not at all. Who may do each of these is asked of `policies/contacts.polar`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import declarations

from ..audit.events import AuditNotes
from ..audit.models import AuditEvent, AuditSubject
from ..auth.tokens import Actor
from ..contacts.models import Contact, ContactSubject
from ..contacts.workflow import (
    BREAK_GLASS_REASONS,
    IG_OUTCOMES,
    MAX_SHORT,
    SOURCE_AGENCY,
    WITHHOLD_REASONS,
    ContactError,
    ContactSettings,
    as_utc,
    one_of,
    subject_uuid,
    text,
)
from ..identity.models import Subject
from ..store.base import RowValue
from ..store.bundle import Bundle, columns_of, prepared, row_of
from ..store.engine import Store
from .models import BreakGlassGrant, IgAlert, Notification, WithheldItem
from .records import AssembledRecord


@dataclass(frozen=True)
class Grant(RowValue):
    """A break-glass grant, as the services hand it on (never the ORM row)."""

    id: str
    actor_subject: str
    actor_issuer: str
    actor_agency: str | None
    actor_team: str | None
    subject_id: str
    reason_code: str
    justification: str
    granted_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Alert(RowValue):
    """An IG alert and its review, as the services hand it on (never the ORM row)."""

    id: str
    kind: str
    grant_id: str | None
    subject_id: str
    actor_subject: str
    actor_agency: str | None
    reason_code: str
    raised_at: datetime
    review_outcome: str | None
    review_notes: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


@dataclass(frozen=True)
class Notice(RowValue):
    """A notice for a child's owning team, as the services hand it on (never the ORM
    row)."""

    id: str
    team: str
    agency: str
    kind: str
    subject_id: str
    contact_id: str | None
    actor_subject: str | None
    actor_agency: str | None
    actor_team: str | None
    purpose: str | None
    created_at: datetime


@dataclass(frozen=True)
class Withholding(RowValue):
    """An agency's recorded decision not to share an item, as the services hand it on
    (never the ORM row)."""

    id: str
    source: str
    item_id: str
    agency: str
    reason_code: str
    reason: str
    withheld_by: str
    withheld_at: datetime
    contact_id: str | None


async def _open_contact_teams(session: AsyncSession, subject_id: str) -> list[list[str]]:
    """The assigned teams of each open contact about the child, newest contact first."""
    rows = await session.execute(
        select(Contact.assigned_teams)
        .join(ContactSubject, ContactSubject.contact_id == Contact.id)
        .where(ContactSubject.subject_id == subject_id, Contact.stage != "CLOSED")
        .order_by(Contact.received_at.desc())
    )
    return [list(teams or ()) for teams in rows.scalars()]


def owner_of(open_teams: Sequence[Sequence[str]], default: str) -> str:
    """The first team of the newest open contact that names one, else `default`."""
    return next((str(teams[0]) for teams in open_teams if teams), default)


async def owning_team(session: AsyncSession, subject_id: str, default: str) -> str:
    """The team assigned to the child's newest open contact, else the configured team."""
    return owner_of(await _open_contact_teams(session, subject_id), default)


async def owner(store: Store, subject_id: str, cfg: ContactSettings) -> str:
    async with store.sessions() as session:
        return await owning_team(session, subject_id, cfg.default_owning_team)


def notification(
    team: str, kind: str, subject_id: str, actor: Actor, purpose: str | None, now: datetime
) -> Notification:
    return Notification(
        id=str(uuid.uuid4()),
        team=team,
        agency="council",  # owning teams are the council's children's social care teams
        kind=kind,
        subject_id=subject_id,
        actor_subject=actor.subject,
        actor_agency=actor.agency,
        actor_team=actor.team,
        purpose=purpose,
        created_at=now,
    )


def _stage_rows(notes: AuditNotes, rows: Sequence[Any]) -> None:
    async def write(session: AsyncSession) -> None:
        session.add_all(rows)
        await session.flush()

    notes.staged(write)


async def break_glass(
    store: Store,
    notes: AuditNotes,
    actor: Actor,
    child_id: str,
    reason_code: str,
    justification: str,
    now: datetime,
    cfg: ContactSettings,
) -> tuple[Grant, Alert, Notice]:
    """A read-only grant for this actor and child until `break_glass_minutes` from now, an
    alert for IG review, and a notice to the child's owning team — all with the audit event."""
    sid = subject_uuid(child_id)
    notes.subject(sid, "child", primary=True)
    one_of(reason_code, BREAK_GLASS_REASONS, "reasonCode")
    why = text(justification, "a justification") or ""
    async with store.sessions() as session:
        if await session.get(Subject, sid) is None:
            raise ContactError("no child with this id", "NOT_FOUND")
        team = await owning_team(session, sid, cfg.default_owning_team)
    grant = BreakGlassGrant(
        id=str(uuid.uuid4()),
        actor_subject=actor.subject,
        actor_issuer=actor.issuer,
        actor_agency=actor.agency,
        actor_team=actor.team,
        subject_id=sid,
        reason_code=reason_code,
        justification=why,
        granted_at=now,
        expires_at=now + timedelta(minutes=cfg.break_glass_minutes),
    )
    alert = IgAlert(
        id=str(uuid.uuid4()),
        kind="BREAK_GLASS",
        grant_id=grant.id,
        subject_id=sid,
        actor_subject=actor.subject,
        actor_agency=actor.agency,
        reason_code=reason_code,
        raised_at=now,
    )
    notice = notification(team, "BREAK_GLASS", sid, actor, "BREAK_GLASS", now)
    _stage_rows(notes, [grant, alert, notice])
    notes.justification(why)
    notes.break_glass(
        {
            "grant_id": grant.id,
            "reason_code": reason_code,
            "expires_at": grant.expires_at.isoformat(),
        }
    )
    return Grant.of(grant), Alert.of(alert), Notice.of(notice)


# The care plans (of the kinds the sources declare as `plan_kind`) that flag a child as
# subject to a child-protection plan or looked after.
PLAN_KINDS = frozenset(d.plan_kind for d in declarations() if d.plan_kind)
FLAG_CATEGORIES = frozenset({"CPP", "LAC"})
# The rule-16 decision on a flagged child's read, as noted on its event (the policy's
# `notify_owner`); events written before it was asked of the policy name it
# LEGACY_FLAG_DECISION.
FLAG_DECISION = "notify_owner"
LEGACY_FLAG_DECISION = "child.protection_flag"
_ENDED = frozenset({"completed", "revoked", "entered-in-error"})


def plan_flags(record: AssembledRecord) -> frozenset[str]:
    """The categories (of FLAG_CATEGORIES) of the child's own current care plans (not a
    household member's)."""
    found: set[str] = set()
    for answer in record.answers.values():
        own = {p.local_id for p, _ in answer.linked}
        for item in answer.items:
            if (
                item.kind in PLAN_KINDS
                and item.person_id in own
                and item.data.get("category") in FLAG_CATEGORIES
                and item.data.get("status") not in _ENDED
            ):
                found.add(str(item.data["category"]))
    return frozenset(found)


async def notifications(store: Store, team: str, limit: int = 100) -> list[Notice]:
    async with store.sessions() as session:
        rows = await session.execute(
            select(Notification)
            .where(Notification.team == team)
            .order_by(Notification.created_at.desc(), Notification.id)
            .limit(limit)
        )
        return [Notice.of(r) for r in rows.scalars()]


async def ig_alerts(store: Store, unreviewed_only: bool, limit: int = 100) -> list[Alert]:
    query = select(IgAlert)
    if unreviewed_only:
        query = query.where(IgAlert.reviewed_at.is_(None))
    async with store.sessions() as session:
        rows = await session.execute(query.order_by(IgAlert.raised_at, IgAlert.id).limit(limit))
        return [Alert.of(r) for r in rows.scalars()]


async def review_alert(
    store: Store,
    audit: AuditNotes,
    actor: Actor,
    alert_id: str,
    outcome: str,
    notes: str | None,
    now: datetime,
) -> Alert:
    try:
        aid = str(uuid.UUID(str(alert_id)))
    except ValueError:
        raise ContactError("no alert with this id", "NOT_FOUND") from None
    one_of(outcome, IG_OUTCOMES, "outcome")
    note = text(notes, "notes", required=False)
    async with store.sessions() as session:
        alert = await session.get(IgAlert, aid)
    if alert is None:
        raise ContactError("no alert with this id", "NOT_FOUND")
    if alert.reviewed_at is not None:
        raise ContactError("this alert has been reviewed already")
    audit.subject(alert.subject_id, "child")

    def apply(a: IgAlert) -> None:
        if a.reviewed_at is not None:
            raise ContactError("this alert has been reviewed already")
        a.review_outcome, a.review_notes = outcome, note
        a.reviewed_by, a.reviewed_at = actor.subject, now

    async def write(session: AsyncSession) -> None:
        row = await session.get(IgAlert, aid, with_for_update=True)
        assert row is not None
        apply(row)
        await session.flush()

    apply(alert)
    audit.staged(write)
    return Alert.of(alert)


# --- previously accessed by ------------------------------------------------------------

ACCESS_OUTCOMES = ("ok", "partial", "redacted")


@dataclass(frozen=True)
class PastAccess:
    at: datetime
    agency: str | None
    team: str | None
    purpose: str | None
    actor: str | None
    operation: str | None


async def previously_accessed(store: Store, subject_id: str, limit: int = 25) -> list[PastAccess]:
    """The latest operations that returned this child's data, newest first (the current
    operation is not in the log until it commits, so it is never among them)."""
    async with store.sessions() as session:
        return await _past(session, subject_id, limit)


async def _past(session: AsyncSession, subject_id: str, limit: int) -> list[PastAccess]:
    rows = await session.execute(
        select(
            AuditEvent.occurred_at,
            AuditEvent.actor_agency,
            AuditEvent.actor_team,
            AuditEvent.purpose,
            AuditEvent.actor_subject,
            AuditEvent.operation_type,
        )
        .join(AuditSubject, AuditSubject.event_seq == AuditEvent.seq)
        .where(
            AuditSubject.subject_id == subject_id,
            AuditSubject.relationship == "child",
            AuditEvent.outcome.in_(ACCESS_OUTCOMES),
        )
        # newest first along the (subject_id, event_seq) index, not by sorting every read
        .order_by(AuditSubject.event_seq.desc())
        .limit(limit)
    )
    return [PastAccess(as_utc(r[0]), *r[1:]) for r in rows]


def notify_read(
    notes: AuditNotes,
    contact_id: str | None,
    actor: Actor,
    subject_id: str,
    team: str,
    purpose: str | None,
    now: datetime,
) -> Notification:
    """Someone read a child with a child-protection or looked-after flag, and the policy
    said the owning team hears of it (rule 16): commits with the read's audit event."""
    notice = notification(team, "FLAGGED_CHILD_READ", subject_id, actor, purpose, now)
    notice.contact_id = contact_id
    _stage_rows(notes, [notice])
    return notice


# --- decisions not to share ------------------------------------------------------------


async def withheld(
    store: Store, items: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Withholding]:
    """The recorded decisions not to share among these (source, item id) pairs."""
    async with store.sessions() as session:
        return await _withheld(session, items)


def _withheld_query(bundle: Bundle) -> None:
    bundle.add(
        "withheld",
        columns_of(WithheldItem),
        WithheldItem.source.in_(bindparam("sources", expanding=True)),
        WithheldItem.item_id.in_(bindparam("ids", expanding=True)),
    )


async def _withheld(
    session: AsyncSession, items: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Withholding]:
    wanted = set(items)
    if not wanted:
        return {}
    found = await prepared(session, "oversight.withheld", _withheld_query).fetch(
        session, sources=sorted({s for s, _ in wanted}), ids=sorted({i for _, i in wanted})
    )
    rows = (row_of(WithheldItem, r) for r in found["withheld"])
    return {
        (r.source, r.item_id): Withholding.of(r) for r in rows if (r.source, r.item_id) in wanted
    }


async def withhold(
    store: Store,
    notes: AuditNotes,
    actor: Actor,
    source: str,
    item_id: str,
    reason_code: str,
    reason: str,
    now: datetime,
    contact_id: str | None = None,
) -> Withholding:
    """Record the originating agency's decision not to share one of its items, for the
    contact `contact_id` when it names one (the caller has checked the actor works it)."""
    one_of(source, tuple(SOURCE_AGENCY), "source")
    item = text(item_id, "itemId", MAX_SHORT) or ""
    one_of(reason_code, WITHHOLD_REASONS, "reasonCode")
    why = text(reason, "a reason") or ""
    if await withheld(store, [(source, item)]):
        raise ContactError("this item is already withheld")
    row = WithheldItem(
        id=str(uuid.uuid4()),
        source=source,
        item_id=item,
        agency=SOURCE_AGENCY[source],
        reason_code=reason_code,
        reason=why,
        withheld_by=actor.subject,
        withheld_at=now,
        contact_id=contact_id,
    )
    _stage_rows(notes, [row])
    return Withholding.of(row)
