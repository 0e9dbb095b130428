"""Browser sessions: who signed in to the explorer or the IG page, in an HttpOnly cookie.

A session is a short JWT the hub signs with its own key (EC P-256, in the data folder or
`MASH_SESSION_KEY_FILE`, shared by hubs behind one load balancer), holding the verified
actor from the sign-in. It is read back through a :class:`TokenVerifier` of its own, so it
becomes the same :class:`Actor` a bearer token does, yet is never accepted as a bearer token
(its issuer and audience are the hub's session ones, trusted by nothing else), and a bearer
token is never accepted as a session.

The cookie is HttpOnly, SameSite=Lax (the sign-in returns from the identity provider by a
top-level navigation), Secure except on loopback http, and lapses after the idle time; each
request renews it, never past the maximum from sign-in. A POST authenticated by the cookie
must carry the session's CSRF token in `X-CSRF-Token` (the explorer page holds it) and, when
the browser sends one, an `Origin` of the hub itself.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, generate_key, import_key
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..state import AppState
from .tokens import Actor, AuthError, IssuerConfig, TokenVerifier, bearer_token

COOKIE = "mash_session"
ISSUER = "urn:mash-hub:session"
AUDIENCE = "mash-hub-session"
CSRF_HEADER = "x-csrf-token"
SEALED = "mash-hub-sealed"  # the audience of short signed values the hub gives itself
RENEWED = "mash_session_renewed"  # the renewed cookie, in the request's scope state
RENEW_AFTER_S = 30  # a cookie younger than this is not re-signed
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_ALG = "ES256"


@dataclass(frozen=True)
class Session:
    """A verified session: the actor, its CSRF token, and when it began (Unix seconds)."""

    actor: Actor
    csrf: str
    started: int
    issued: int


def secure(connection: HTTPConnection) -> bool:
    """Secure cookies everywhere but plain http on loopback (where browsers may drop them)."""
    return not (connection.url.scheme == "http" and connection.url.hostname in LOOPBACK)


def own_origin(connection: HTTPConnection) -> str:
    return f"{connection.url.scheme}://{connection.url.netloc}"


def cookie_header(
    connection: HTTPConnection, name: str, value: str, max_age: int, path: str = "/"
) -> str:
    """A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure off loopback http."""
    response = Response()
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=secure(connection),
    )
    return response.headers["set-cookie"]


def _load_or_create_key(path: Path) -> ECKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = generate_key("EC", "P-256", parameters={"alg": _ALG, "use": "sig"}, auto_kid=True)
        data = json.dumps(key.as_dict(private=True)).encode()
        try:  # exclusive: two hub processes starting together keep the first key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    key = import_key(json.loads(path.read_text()), "EC")
    if not key.is_private or key.curve_name != "P-256" or not key.kid:
        raise ValueError(f"{path} is not an EC P-256 private key with a kid")
    return key


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` whole, never truncate it in place: another worker process of the same
    hub may be reading it to check a session cookie at that moment."""
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def verified_claims(token: str) -> dict[str, Any]:
    """The claims of a token whose signature has already been verified."""
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return claims


class Sessions:
    """Mint and read session cookies.

    Args:
        key_file: the signing key (created, mode 0600, when missing).
        idle_s: a session lapses this long after its last renewal.
        max_s: and at the latest this long after sign-in.
        issuers: the identity providers a session may name as where the person signed in.
    """

    def __init__(
        self,
        key_file: Path,
        idle_s: int,
        max_s: int,
        issuers: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = _load_or_create_key(key_file)
        jwks = key_file.with_name(key_file.name + ".public.json")
        _write_atomically(jwks, json.dumps({"keys": [self._key.as_dict(private=False)]}))
        config = IssuerConfig(ISSUER, AUDIENCE, jwks_file=str(jwks), algorithms=(_ALG,))
        self._verifier = TokenVerifier([config], leeway_s=0)
        self.idle_s, self.max_s, self.issuers, self.clock = idle_s, max_s, issuers, clock

    def mint(self, actor: Actor, started: int | None = None, csrf: str | None = None) -> str:
        """A session cookie value for `actor` (verified at sign-in)."""
        if actor.issuer not in self.issuers:
            raise AuthError("untrusted issuer")
        now = int(self.clock())
        started = now if started is None else started
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": actor.subject,
            "idp": actor.issuer,
            "roles": sorted(actor.roles),
            "agency": actor.agency,
            "team": actor.team,
            "azp": actor.client,
            "iat": now,
            "exp": min(now + self.idle_s, started + self.max_s),
            "started": started,
            "csrf": csrf or secrets.token_urlsafe(32),
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": _ALG, "kid": self._key.kid}, claims, self._key, [_ALG])

    def seal(self, data: dict[str, Any], ttl_s: int) -> str:
        """`data`, signed and expiring after `ttl_s` (readable, so nothing secret for long:
        the sign-in's state, nonce and PKCE verifier)."""
        now = int(self.clock())
        claims = {"aud": SEALED, "iat": now, "exp": now + ttl_s, "data": data}
        return jwt.encode({"alg": _ALG, "kid": self._key.kid}, claims, self._key, [_ALG])

    def unseal(self, value: str) -> dict[str, Any] | None:
        """What `seal` signed, if the value is ours and has not expired."""
        try:
            token = jwt.decode(value, self._key, algorithms=[_ALG])
            registry = JWTClaimsRegistry(
                now=int(self.clock()),
                aud={"essential": True, "value": SEALED},
                exp={"essential": True},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError, TypeError):
            return None
        data = token.claims.get("data")
        return data if isinstance(data, dict) else None

    async def read(self, value: str) -> Session:
        """The session a cookie value holds; AuthError when it is not a live one of ours."""
        actor = await self._verifier.verify(value)
        claims = verified_claims(value)
        idp, csrf, started = claims.get("idp"), claims.get("csrf"), claims.get("started")
        if idp not in self.issuers or not isinstance(csrf, str) or not isinstance(started, int):
            raise AuthError("invalid session")
        if self.clock() >= started + self.max_s:
            raise AuthError("session expired")
        actor = dataclasses.replace(actor, issuer=idp)
        return Session(actor, csrf, started, int(claims["iat"]))

    async def from_request(self, request: HTTPConnection) -> Session | None:
        """The request's live session (renewed on the way out), or None."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            session = await self.read(value)
        except AuthError:
            return None
        if self.clock() - session.issued >= RENEW_AFTER_S:
            renewed = self.mint(session.actor, session.started, session.csrf)
            header = cookie_header(request, COOKIE, renewed, self.idle_s)
            request.scope.setdefault("state", {})[RENEWED] = header
        return session

    def set_cookie(self, response: Response, request: HTTPConnection, actor: Actor) -> None:
        """Start a session for `actor` on `response`."""
        header = cookie_header(request, COOKIE, self.mint(actor), self.idle_s)
        response.raw_headers.append((b"set-cookie", header.encode("latin-1")))


def csrf_ok(request: Request, session: Session, given: str | None) -> bool:
    """A state-changing request from the hub's own page: its token and (if sent) Origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        return False
    return bool(given) and hmac.compare_digest(session.csrf, given or "")


async def authenticate(request: Request, state: AppState) -> Actor:
    """The actor behind a GraphQL request: a bearer token when one is sent, else the
    session cookie with its CSRF token. Raises AuthError."""
    header = request.headers.get("authorization")
    sessions: Sessions | None = state.sessions
    if header is None and sessions is not None and COOKIE in request.cookies:
        session = await sessions.from_request(request)
        if session is None:
            raise AuthError("session expired: sign in again")
        if not csrf_ok(request, session, request.headers.get(CSRF_HEADER)):
            raise AuthError("missing or wrong CSRF token: reload the explorer")
        return session.actor
    actor: Actor = await state.verifier.verify(bearer_token(header))
    return actor


class RenewCookie:
    """ASGI middleware: sends the renewed session cookie a handler's read left in scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_renewed(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = scope.get("state", {}).get(RENEWED)
                if header:
                    headers = list(message.get("headers", []))
                    headers.append((b"set-cookie", header.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_renewed)
