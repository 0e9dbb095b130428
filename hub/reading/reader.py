"""The reader: one child's record for one operation, always in this order.

1. **Open.** The child goes on the audit event (an attempt is audited too), then the
   purpose and contact (`Context.access`).
2. **Load**, in one store session of at most two statements (`hub.store.bundle`; on the
   embedded SQLite store they read its file directly, `hub.store.engine.FileReads`): the
   contact's facts, unless this operation loaded them already; and, once the policy lets this reader
   read this child, what the hub knows of the child — the subject, analysts' link and
   household decisions, the review candidates already noted, the open contacts' teams and
   the latest earlier reads.
3. **Decide** whether to read at all, through the one policy door (`hub.context.Access`):
   child records for this purpose (else FORBIDDEN), this child (rule 2: else every part
   comes back withheld and no source is asked).
4. **Fan out** to the sources (`RecordService.gather`). Between its two rounds (people,
   then their items) the household's subject ids are read, and written — with any new
   review candidates, in one commit — only when the store does not hold them yet.
5. **After the fan-out**: the agencies' decisions not to share any of the items read
   (rule 8; only now are the items known), the flags of the child's care plans and, for a
   flagged child, the owning team's notice where the policy says so (rule 16, staged to
   commit with the audit event).
6. **Return** one `ChildRead`. The schema maps it, deciding each section, item and field
   through the same door as it does; the audit event commits after the operation
   (`hub.app`), in the writer's own transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Source

from ..audit.models import AuditEvent, AuditSubject
from ..contacts.models import Contact, ContactSubject
from ..contacts.workflow import as_utc
from ..context import Access, Context
from ..errors import ClientError
from ..identity.decisions import Decision
from ..identity.models import HouseholdDecision, LinkDecision, LinkReview, Subject
from ..identity.residents import ResidentDecision
from ..policy.engine import Resource
from ..store.bundle import Bundle, columns_of, prepared, row_of, when
from ..telemetry import tracing
from . import oversight
from .oversight import ACCESS_OUTCOMES, PastAccess
from .records import AssembledRecord, Known

PAST_ACCESSES = 25


@dataclass(frozen=True)
class ChildRead:
    """One read of one child, before the schema maps it: the door its decisions go through;
    the assembled record (None when it is withheld, with `withheld_reason`); and what the
    hub store adds to it."""

    subject_id: str
    access: Access
    record: AssembledRecord | None
    withheld_reason: str | None = None
    withheld: Mapping[tuple[str, str], oversight.Withholding] = field(default_factory=dict)
    plans: frozenset[str] = frozenset()
    open_contact: bool = False
    past: Sequence[PastAccess] = ()


@dataclass(frozen=True)
class Loaded:
    """What step 2 loads about the child (None: the hub knows no such child)."""

    known: Known | None
    open_teams: list[list[str]]
    past: list[PastAccess]


class Reader:
    """Reads children's records for one operation (its context: actor, services, audit notes)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def child(self, subject_id: str, purpose: str, contact_id: str | None) -> ChildRead:
        """The child's record as this operation may read it.

        Raises:
            ClientError: BAD_USER_INPUT (a malformed contact id), NOT_FOUND (no such
                contact or child), FORBIDDEN (no reading child records for this purpose).
        """
        ctx, services = self.ctx, self.ctx.services
        ctx.notes.subject(subject_id, "child", primary=True)
        with tracing.span("store.read"):
            async with services.store.sessions() as session:
                access = await ctx.access(purpose, valid_contact_id(contact_id), session)
                if not access.may_read_child():
                    raise ClientError(
                        "not permitted to read child records for this purpose", "FORBIDDEN"
                    )
                relationship = access.relationship(subject_id)
                if not relationship.allowed:
                    return ChildRead(subject_id, access, None, relationship.reason)
                loaded = await load(session, subject_id)
        if loaded.known is None:
            raise ClientError("no child with this id", "NOT_FOUND")
        record = await services.records.gather(loaded.known)
        self._note_glass_read(access, subject_id)
        items = [(s.value, i.local_id) for s, a in record.answers.items() for i in a.items]
        withheld = await oversight.withheld(services.store, items)
        plans = oversight.plan_flags(record)
        if plans:
            team = oversight.owner_of(loaded.open_teams, services.contacts.default_owning_team)
            self._notify_owner(access, subject_id, plans, team)
        return ChildRead(
            subject_id,
            access,
            record,
            withheld=withheld,
            plans=plans,
            open_contact=bool(loaded.open_teams),
            past=loaded.past,
        )

    def _note_glass_read(self, access: Access, subject_id: str) -> None:
        """A read under break-glass names its grant on the audit event (the first, if one
        operation reads several children), so IG's review queue can count the grant's
        reads."""
        grant = access.facts.grant_for(subject_id)
        if access.request.purpose == "BREAK_GLASS" and grant:
            self.ctx.notes.break_glass({"grant_id": grant, "use": "READ"}, unless_noted=True)

    def _notify_owner(
        self, access: Access, subject_id: str, plans: frozenset[str], team: str
    ) -> None:
        """Rule 16: reading a flagged child tells the owning team, where the policy says so.
        The decision is noted on the event whoever reads, so IG's FLAGGED_NO_CONTACT anomaly
        sees every flagged read, the owning team's own included (the fact, never the plan)."""
        flags = tuple(sorted({"CPP": "child_protection", "LAC": "looked_after"}[p] for p in plans))
        child = Resource("child", "council", flags=flags, owner_team=team)
        said = ("OWNING_TEAM_NOTIFIED", "READER_IN_OWNING_TEAM")
        if access.applies("notify_owner", child, said):
            ctx = self.ctx
            purpose = access.request.purpose
            oversight.notify_read(
                ctx.notes,
                ctx.declared[1],
                ctx.actor,
                subject_id,
                team,
                purpose,
                ctx.services.clock(),
            )


def valid_contact_id(contact_id: str | None) -> str | None:
    if contact_id is not None and not (0 < len(contact_id) <= 64 and contact_id.isprintable()):
        raise ClientError("contactId is not a valid contact id", "BAD_USER_INPUT")
    return contact_id


def _load(ask: Bundle) -> None:
    """The statement of `load`, built once: the child is the parameter `subject_id`."""
    subject_id: BindParameter[str] = bindparam("subject_id")
    ask.add("subject", columns_of(Subject), Subject.id == subject_id)
    ask.add(
        "links",
        columns_of(LinkDecision),
        LinkDecision.subject_id == subject_id,
        LinkDecision.superseded_at.is_(None),
    )
    ask.add(
        "residents",
        columns_of(HouseholdDecision),
        HouseholdDecision.subject_id == subject_id,
        HouseholdDecision.superseded_at.is_(None),
    )
    ask.add(
        "reviews",
        {
            "source": LinkReview.source,
            "source_record_id": LinkReview.source_record_id,
            "score": LinkReview.score,
            "explanation": LinkReview.explanation,
        },
        LinkReview.subject_id == subject_id,
    )
    ask.add(
        "open",
        {"teams": Contact.assigned_teams, "received_at": Contact.received_at},
        ContactSubject.subject_id == subject_id,
        Contact.stage != "CLOSED",
        from_=Contact.__table__.join(
            ContactSubject.__table__, ContactSubject.contact_id == Contact.id
        ),
    )
    ask.add(
        "past",
        {
            "seq": AuditSubject.event_seq,
            "at": AuditEvent.occurred_at,
            "agency": AuditEvent.actor_agency,
            "team": AuditEvent.actor_team,
            "purpose": AuditEvent.purpose,
            "actor": AuditEvent.actor_subject,
            "operation": AuditEvent.operation_type,
        },
        AuditSubject.subject_id == subject_id,
        AuditSubject.relationship == "child",
        AuditEvent.outcome.in_(ACCESS_OUTCOMES),
        from_=AuditEvent.__table__.join(
            AuditSubject.__table__, AuditSubject.event_seq == AuditEvent.seq
        ),
        # newest first along the (subject_id, event_seq) index, not by sorting every read
        order_by=(AuditSubject.event_seq.desc(),),
        limit=PAST_ACCESSES,
    )


async def load(session: AsyncSession, subject_id: str) -> Loaded:
    """Everything the hub store holds that a read of this child needs, in one statement."""
    found = await prepared(session, "reader.load", _load).fetch(session, subject_id=subject_id)
    open_contacts = sorted(found["open"], key=lambda c: _at(c["received_at"]), reverse=True)
    past = [
        PastAccess(
            as_utc(_at(p["at"])), p["agency"], p["team"], p["purpose"], p["actor"], p["operation"]
        )
        for p in sorted(found["past"], key=lambda p: int(p["seq"]), reverse=True)
    ]
    open_teams = [list(c["teams"] or ()) for c in open_contacts]
    if not found["subject"]:
        return Loaded(None, open_teams, past)
    links = [Decision.of(row_of(LinkDecision, r)) for r in found["links"]]
    residents = [ResidentDecision.of(row_of(HouseholdDecision, r)) for r in found["residents"]]
    known = Known(
        row_of(Subject, found["subject"][0]),
        {(Source(r.source), r.source_record_id): r for r in links},
        {r.resident_id: r for r in residents},
        {
            (r["source"], r["source_record_id"]): (float(r["score"]), list(r["explanation"] or ()))
            for r in found["reviews"]
        },
    )
    return Loaded(known, open_teams, past)


def _at(value: Any) -> datetime:
    at = when(value)
    assert at is not None
    return at
