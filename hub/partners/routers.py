"""Trusted routers: a federation gateway in front of the hub that enforces each partner's
trusted documents at its own edge (gateway/gateway.config.mjs).

Behind such a gateway the hub never sees a partner's registered document: it sees the
subgraph operations the gateway plans from it (`_entities` fetches, the hub's root fields),
which no manifest holds. So the gateway proves itself with its own client-credentials token
in `X-Router-Authorization` — a header of its own, never copied from a client — and a
request that carries a valid one from a client in `MASH_ROUTER_CLIENTS` skips the hub's
document check. Rate and cost limits, policy and audit apply as to any partner request.

A header that is present but does not verify, or names a client the hub does not trust as a
router, is refused (401): a half-configured or forged router is a fault to see at once, not
a request to serve under other rules. Without the header the document gate applies as it
does to a partner calling the hub directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ..auth.tokens import AuthError, TokenVerifier, bearer_token

HEADER = "x-router-authorization"


@dataclass(frozen=True)
class Routers:
    verifier: TokenVerifier
    clients: frozenset[str]

    async def router(self, request: Request) -> str | None:
        """The trusted router that forwarded `request` (its client id), None when it names
        none; AuthError when it names one that does not prove itself."""
        value = request.headers.get(HEADER)
        if value is None:
            return None
        try:
            client = await self.verifier.verify_machine(bearer_token(value))
        except AuthError:
            raise AuthError("invalid router token") from None
        if client not in self.clients:
            raise AuthError("untrusted router")
        return client
