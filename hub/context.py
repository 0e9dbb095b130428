"""The per-request context handed to resolvers: who is asking, the services, the audit notes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Labels

from .audit.events import AuditNotes
from .auth.tokens import Actor
from .contacts import workflow
from .contacts.workflow import ContactFacts, ContactSettings
from .policy.engine import Decision, PolicyEngine, Request, Resource
from .reading.records import RecordService
from .settings import IgSettings
from .store.engine import Store


@dataclass(frozen=True)
class Services:
    """The long-lived parts, built once at start-up by `hub.app`."""

    records: RecordService
    policy: PolicyEngine
    store: Store
    # The hub's clock: contacts' timescales, break-glass expiry. Tests pass their own.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The contact workflow's timescales, office hours and break-glass duration.
    contacts: ContactSettings = field(default_factory=ContactSettings)
    # What the IG anomaly report counts as unusual (office hours, volume).
    ig: IgSettings = field(default_factory=IgSettings)


def policy_request(actor: Actor, purpose: str, facts: ContactFacts) -> Request:
    """The policies' view of one operation: the actor, the purpose and the contact's facts —
    not the contact's identity, so contacts with the same facts share cached decisions."""
    return Request(
        roles=tuple(sorted(actor.roles)),
        agency=actor.agency,
        purpose=purpose,
        team=actor.team,
        has_contact=facts.contact_id is not None,
        stage=facts.stage,
        assigned=facts.assigned,
        consent=facts.consent,
        consent_scope=tuple(sorted(facts.consent_scope)),
        override=facts.override,
        decision=facts.decision,
        strategy_discussion=facts.strategy_discussion,
        break_glass=facts.break_glass,
        machine=actor.machine,
    )


# (kind, labels, consent, flags): everything a record class is decided on.
DecisionKey = tuple[str, Labels, str | None, tuple[str, ...]]

# A source that answered (even "not known", even with its detail withheld) was consulted:
# rule 14 logs the consultation, not only what was shown.
CONSULTED = frozenset({"OK", "NOT_KNOWN", "REDACTED"})


class Access:
    """The one policy door: every authorisation decision of one operation (actor, purpose,
    contact facts) is asked of the policy engine here and noted on the operation's audit
    event, with every redaction it causes.

    Questions: `allows(rule, *args)` (a yes/no rule over the request), `applies(rule,
    resource)` (a yes/no rule over the request and a record class), `decide(...)` (is a
    record class released, which of its fields are hidden) and `relationship(subject)`
    (rule 2). Record-class decisions are made once per class and label set in this
    operation (`_decided`); below that the engine's own cache keeps them across operations.
    """

    def __init__(
        self,
        policy: PolicyEngine,
        actor: Actor,
        purpose: str,
        notes: AuditNotes,
        facts: ContactFacts = workflow.NO_CONTACT,
    ) -> None:
        self.policy = policy
        self.facts = facts
        self.request = policy_request(actor, purpose, facts)
        self.notes = notes
        self._decided: dict[DecisionKey, Decision] = {}
        self._s62_asked: set[tuple[str, str]] = set()
        notes.policy_version(policy.version)
        notes.stage(facts.stage, unless_noted=True)

    def may_read_child(self) -> bool:
        return self.allows("read_child")

    def allows(self, rule: str, *args: str) -> bool:
        """A yes/no policy rule over the request and any further string arguments (e.g.
        "read_child", "decide_link", "update_research" with the agency), noted on the event."""
        allowed = self.policy.allows(rule, self.request, *args)
        self.notes.decision(rule, None, allowed, None if allowed else "NOT_PERMITTED")
        return allowed

    def applies(
        self, rule: str, resource: Resource, said: tuple[str | None, str | None] = (None, None)
    ) -> bool:
        """A yes/no policy rule over the request and a record class (e.g. "notify_owner",
        "s62_logged"), noted on the event with what the yes or the no means (`said`)."""
        allowed = self.policy.applies(rule, self.request, resource)
        self.notes.decision(rule, resource.agency, allowed, said[0] if allowed else said[1])
        return allowed

    def relationship(self, subject_id: str) -> Decision:
        """May this operation read this person's record (rule 2)?"""
        flags = tuple(
            flag
            for flag, held in (
                ("contact_subject", subject_id in self.facts.subject_ids),
                ("glass_subject", subject_id in self.facts.break_glass_subject_ids),
            )
            if held
        )
        return self.decide("child", "child", Labels(agency="council"), flags=flags)

    def consulted(self, statuses: Mapping[str, str]) -> None:
        """The sources this operation asked, with what each said (on the audit event); a
        consultation the policy says must be logged (rule 14, s62) marks the event."""
        self.notes.sources(statuses)
        for source, status in statuses.items():
            if status in CONSULTED and source in workflow.SOURCE_AGENCY:
                self._s62(Resource("source", workflow.SOURCE_AGENCY[source]))

    def decide(
        self,
        path: str,
        kind: str,
        labels: Labels,
        consent: str | None = None,
        flags: tuple[str, ...] = (),
    ) -> Decision:
        key = (kind, labels, consent, flags)
        decision = self._decided.get(key)
        if decision is None:
            resource = Resource.of(kind, labels, consent, flags)
            decision = self._decided[key] = self.policy.decide(self.request, resource)
        self.notes.decision(
            kind,
            labels.agency,
            decision.allowed,
            decision.reason,
            decision.hidden_fields,
            labels.handling_code,
        )
        if not decision.allowed:
            self.notes.redaction(path, decision.reason or "NOT_PERMITTED")
        for name, reason in decision.hidden_fields.items():
            self.notes.redaction(f"{path}.{name}", reason)
        self._s62(Resource(kind, labels.agency))
        return decision

    def _s62(self, consulted: Resource) -> None:
        """Rule 14: is this consultation (a source asked, a record class decided on) one the
        s62 log must list? Asked once per kind and agency in an operation."""
        key = (consulted.kind, consulted.agency)
        if key not in self._s62_asked:
            self._s62_asked.add(key)
            if self.applies("s62_logged", consulted):
                self.notes.police_consulted()


@dataclass
class Context:
    actor: Actor
    services: Services
    notes: AuditNotes
    purpose_header: str | None = None
    contact_header: str | None = None
    # The purpose and contact the operation declared (one of each per operation).
    declared: tuple[str | None, str | None] = field(default=(None, None), init=False)
    _access: Access | None = field(default=None, init=False, repr=False)
    _doors: dict[str, Access] = field(default_factory=dict, init=False, repr=False)
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def door(self, purpose: str) -> Access:
        """The policy door for a question that needs no contact facts loaded (contact work,
        reports, notifications): the operation's own `Access` when a read opened one for
        this purpose, else one for the actor and purpose alone. Noted on the same event."""
        if self._access is not None and self._access.request.purpose == purpose:
            return self._access
        door = self._doors.get(purpose)
        if door is None:
            door = self._doors[purpose] = Access(
                self.services.policy, self.actor, purpose, self.notes
            )
        return door

    async def access(
        self, purpose: str, contact_id: str | None, session: AsyncSession | None = None
    ) -> Access:
        """Start reading personal data for a purpose (and contact): the purpose goes on the
        audit event, and the contact's facts are loaded once for the whole operation (in
        `session` when the caller has one open, e.g. a read's one unit of work)."""
        self.declare_purpose(purpose, contact_id)
        async with self._loading:  # resolvers of one operation may ask concurrently
            if self._access is None:
                services, now = self.services, self.services.clock()
                if session is None:
                    facts = await workflow.facts_for(
                        services.store, self.actor, purpose, contact_id, now
                    )
                else:
                    facts = await workflow.load_facts(session, self.actor, purpose, contact_id, now)
                self._access = Access(services.policy, self.actor, purpose, self.notes, facts)
        return self._access

    def declare_purpose(self, purpose: str, contact_id: str | None) -> None:
        """One operation serves one purpose (and one contact), so its audit event says why
        everything in it was read."""
        if self.declared not in ((None, None), (purpose, contact_id)):
            raise GraphQLError(
                "one operation serves one purpose and contact: send separate operations",
                extensions={"code": "BAD_USER_INPUT"},
            )
        self.declared = (purpose, contact_id)
        self.notes.purpose(purpose, contact_id)
