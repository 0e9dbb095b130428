"""The per-request context handed to resolvers: who is asking, the services, the audit record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from graphql import GraphQLError

from adapters.base import Labels

from . import contacts
from .audit import AuditRecord
from .auth import Actor
from .contacts import ContactFacts, ContactSettings
from .policy import Decision, PolicyEngine, Request, Resource
from .records import RecordService
from .settings import IgSettings
from .store import Store


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
    )


# (kind, labels, consent, flags): everything a record class is decided on.
DecisionKey = tuple[str, Labels, str | None, tuple[str, ...]]


class Access:
    """Policy decisions for one operation (actor, purpose, contact facts), recording every
    redaction for the audit.

    Decisions are made once per record class and label set in this operation (`_decided`)
    and applied to every record and field that shares them; below that the engine's own
    cache keeps them across operations.
    """

    def __init__(
        self,
        policy: PolicyEngine,
        actor: Actor,
        purpose: str,
        audit: AuditRecord,
        facts: ContactFacts = contacts.NO_CONTACT,
    ) -> None:
        self.policy = policy
        self.facts = facts
        self.request = policy_request(actor, purpose, facts)
        self.audit = audit
        self._decided: dict[DecisionKey, Decision] = {}
        audit.policy_version = policy.version
        audit.contact_stage = facts.stage

    def may_read_child(self) -> bool:
        return self.allows("read_child")

    def allows(self, rule: str) -> bool:
        """A yes/no policy rule over the request (e.g. "read_child", "decide_link"), noted
        on the audit event."""
        allowed = self.policy.allows(rule, self.request)
        self.audit.add_decision(rule, None, allowed, None if allowed else "NOT_PERMITTED")
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
        return self.policy.decide(self.request, Resource("child", "council", flags=flags))

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
        self.audit.add_decision(
            kind,
            labels.agency,
            decision.allowed,
            decision.reason,
            decision.hidden_fields,
            labels.handling_code,
        )
        if not decision.allowed:
            self.audit.add_redaction(path, decision.reason or "NOT_PERMITTED")
        for name, reason in decision.hidden_fields.items():
            self.audit.add_redaction(f"{path}.{name}", reason)
        return decision


@dataclass
class Context:
    actor: Actor
    services: Services
    audit: AuditRecord
    purpose_header: str | None = None
    contact_header: str | None = None
    _access: Access | None = field(default=None, init=False, repr=False)
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def access(self, purpose: str, contact_id: str | None) -> Access:
        """Start reading personal data for a purpose (and contact): the purpose goes on the
        audit event, and the contact's facts are loaded once for the whole operation."""
        self.declare_purpose(purpose, contact_id)
        async with self._loading:  # resolvers of one operation may ask concurrently
            if self._access is None:
                services = self.services
                facts = await contacts.facts_for(
                    services.store, self.actor, purpose, contact_id, services.clock()
                )
                self._access = Access(services.policy, self.actor, purpose, self.audit, facts)
        return self._access

    def declare_purpose(self, purpose: str, contact_id: str | None) -> None:
        """One operation serves one purpose (and one contact), so its audit event says why
        everything in it was read."""
        if (self.audit.purpose, self.audit.contact_id) not in (
            (None, None),
            (purpose, contact_id),
        ):
            raise GraphQLError(
                "one operation serves one purpose and contact: send separate operations",
                extensions={"code": "BAD_USER_INPUT"},
            )
        self.audit.purpose = purpose
        self.audit.contact_id = contact_id
