"""The per-request context handed to resolvers: who is asking, the services, the audit record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from graphql import GraphQLError

from adapters.base import Labels

from .audit import AuditRecord
from .auth import Actor
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
    # What the IG anomaly report counts as unusual (office hours, volume).
    ig: IgSettings = field(default_factory=IgSettings)


class Access:
    """Policy decisions for one actor and purpose, recording every redaction for the audit."""

    def __init__(self, policy: PolicyEngine, actor: Actor, purpose: str, audit: AuditRecord):
        self.policy = policy
        self.request = Request(tuple(sorted(actor.roles)), actor.agency, purpose)
        self.audit = audit
        audit.policy_version = policy.version

    def may_read_child(self) -> bool:
        return self.allows("read_child")

    def allows(self, rule: str) -> bool:
        """A yes/no policy rule over the request (e.g. "read_child", "decide_link"), noted
        on the audit event."""
        allowed = self.policy.allows(rule, self.request)
        self.audit.add_decision(rule, None, allowed, None if allowed else "NOT_PERMITTED")
        return allowed

    def decide(self, path: str, kind: str, labels: Labels, consent: str | None = None) -> Decision:
        resource = Resource.of(kind, labels, consent)
        decision = self.policy.decide(self.request, resource)
        self.audit.add_decision(
            kind,
            resource.agency,
            decision.allowed,
            decision.reason,
            decision.hidden_fields,
            resource.handling_code,
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

    def access(self, purpose: str, contact_id: str | None) -> Access:
        """Start reading personal data for a purpose; the purpose goes on the audit event."""
        self.declare_purpose(purpose, contact_id)
        return Access(self.services.policy, self.actor, purpose, self.audit)

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
