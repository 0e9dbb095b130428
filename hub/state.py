"""The app's state: what the start-up builds and every route reads, typed. `hub.app`
creates one `AppState` before the routes (they keep the reference) and its lifespan fills
it; a route that runs before start-up finishes gets an AttributeError, as a server that is
not ready should."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .audit.events import AuditWriter
    from .auth.session import Sessions
    from .auth.tokens import TokenVerifier
    from .context import Services
    from .partners.gate import PartnerGate
    from .partners.routers import Routers


@dataclass
class AppState:
    services: Services = field(init=False)
    writer: AuditWriter = field(init=False)
    verifier: TokenVerifier = field(init=False)
    # Partner systems' gate (rates, trusted documents, cost), trusted routers and browser
    # sessions: None where the settings configure none.
    partners: PartnerGate | None = None
    routers: Routers | None = None
    sessions: Sessions | None = None
