"""The partner-system gate: what the hub asks of a request that comes through a partner
system's client (its own machine token, or a person's token issued to that client) before
anything runs — within its rate limits, a registered document, within its cost limit.

Staff using the hub directly (a token naming no partner client) pass untouched. Every
refusal is a `Refusal` that hub/serving/operation.py answers and audits like any other outcome; no
message carries query text or claim values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth.tokens import Actor
from ..settings import PartnerSystem, Settings
from .limits import RateLimiter
from .trusted import TrustedDocuments


@dataclass(frozen=True)
class Refusal:
    """Why a partner's request is refused: HTTP status, error code, a safe message, and
    extra `extensions` (the cost and the limit) and headers (`Retry-After`)."""

    status: int
    code: str
    message: str
    extensions: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PartnerGate:
    systems: dict[str, PartnerSystem]
    documents: TrustedDocuments
    limiter: RateLimiter
    requests_per_window: int
    person_requests_per_window: int
    max_cost: int
    default_list_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PartnerGate:
        """Loads every partner's manifest: a malformed one stops start-up."""
        systems = settings.partners
        return cls(
            systems=systems,
            documents=TrustedDocuments.load(settings.trusted_documents_dir, systems),
            limiter=RateLimiter(settings.partner_rate_window_s),
            requests_per_window=settings.partner_requests_per_minute,
            person_requests_per_window=settings.partner_person_requests_per_minute,
            max_cost=settings.partner_max_cost,
            default_list_size=settings.partner_default_list_size,
        )

    def system(self, actor: Actor | None) -> PartnerSystem | None:
        """The partner system this request came through, if any."""
        if actor is None or actor.client is None:
            return None
        return self.systems.get(actor.client)

    def check_rate(self, actor: Actor, system: PartnerSystem) -> Refusal | None:
        """Per person first (a person through the client), then per client system."""
        assert actor.client is not None
        if not actor.machine:
            limit = system.person_requests_per_minute or self.person_requests_per_window
            wait = self.limiter.hit(f"person {actor.issuer} {actor.subject}", limit)
            if wait is not None:
                return _too_many("person", limit, self.limiter.window_s, wait)
        limit = system.requests_per_minute or self.requests_per_window
        wait = self.limiter.hit(f"client {actor.client}", limit)
        if wait is not None:
            return _too_many("client system", limit, self.limiter.window_s, wait)
        return None

    def check_cost(self, system: PartnerSystem, cost: int) -> Refusal | None:
        limit = system.max_cost or self.max_cost
        if cost <= limit:
            return None
        return Refusal(
            400,
            "QUERY_TOO_COSTLY",
            f"the query costs {cost}, over your client system's limit of {limit} "
            "(fields x list sizes: ask for fewer fields or smaller first/last)",
            {"cost": cost, "limit": limit},
        )


def _too_many(who: str, limit: int, window_s: float, wait: int) -> Refusal:
    return Refusal(
        429,
        "RATE_LIMITED",
        f"over the limit of {limit} requests per {window_s:g} s for this {who}: "
        f"retry after {wait} s",
        {"limit": limit, "retryAfter": wait},
        {"Retry-After": str(wait)},
    )
