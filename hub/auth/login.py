"""Signing in (`/auth`): OpenID Connect authorization code with PKCE, and the demo's
one-click sign-in through its development issuer.

`GET /auth/login` lists the issuers configured with a `client_id` (and, in demo or dev
mode, the demo roles). `GET /auth/start?issuer=N` sends the browser to issuer N's
authorization endpoint with a fresh `state`, `nonce` and PKCE (S256) challenge, kept in a
short signed cookie for this path only. `GET /auth/callback` checks the state, exchanges the
code (with the PKCE verifier, and the client secret when there is one), verifies the ID
token against the issuer's published keys (issuer, audience = client id, expiry, nonce, and
the roles and agencies the issuer may assert) and starts the hub's session
(:mod:`hub.auth.session`). No token reaches the browser. `POST /auth/logout` ends the session.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..settings import IssuerSetting, Settings
from ..state import AppState
from . import devissuer, session
from .session import Sessions
from .tokens import Actor, AuthError, IssuerConfig, TokenVerifier

log = logging.getLogger(__name__)

PATH = "/auth"
# the explorer's templates, which the sign-in page shares
TEMPLATES = Path(__file__).resolve().parents[1] / "pages" / "templates" / "explorer"
PENDING = "mash_login"  # the sign-in under way: state, nonce, PKCE verifier (signed)
PENDING_S = 600
DEV_CSRF = "mash_login_csrf"
DISCOVERY_MAX_AGE_S = 3600.0
# Where a sign-in may return to: the hub's own pages, never a URL a link supplied.
DESTINATIONS = ("/graphql", "/ig/", "/mash/")
MAX_FORM = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on form
    # posts, and the forms check their origin. Page URLs never leave the site.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
)


class LoginError(Exception):
    """The sign-in cannot go on; `message` is safe to show (it names no claim value)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def render(
    name: str, status: int = 200, headers: Mapping[str, str] = SECURITY_HEADERS, **context: Any
) -> HTMLResponse:
    html = _env.get_template(name).render(**context)
    return HTMLResponse(html, status, headers=dict(headers))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _destination(value: str | None) -> str:
    return value if value in DESTINATIONS else DESTINATIONS[0]


def _check_endpoint(url: object) -> str:
    """An endpoint from discovery: https, or plain http on loopback only."""
    if not isinstance(url, str):
        raise LoginError("the identity provider's configuration is incomplete", 502)
    parts = urlsplit(url)
    loopback = parts.hostname in session.LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise LoginError("the identity provider's endpoints must use https", 502)
    return url


@dataclass
class Provider:
    """One issuer people sign in through: its setting, discovered endpoints, ID-token keys."""

    setting: IssuerSetting
    metadata: dict[str, Any] = field(default_factory=dict)
    fetched_at: float = 0.0
    verifier: TokenVerifier | None = None

    @property
    def client_id(self) -> str:
        return self.setting.client_id or ""

    async def discover(self) -> dict[str, Any]:
        if self.metadata and time.monotonic() - self.fetched_at < DISCOVERY_MAX_AGE_S:
            return self.metadata
        issuer = self.setting.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        _check_endpoint(url)
        try:
            async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                metadata = response.json()
        except (httpx.HTTPError, ValueError):
            log.warning("OpenID discovery failed for issuer %s", issuer)
            raise LoginError("the identity provider cannot be reached: try again", 502) from None
        if not isinstance(metadata, dict) or metadata.get("issuer") != issuer:
            raise LoginError("the identity provider's configuration names another issuer", 502)
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            _check_endpoint(metadata.get(name))
        if "S256" not in metadata.get("code_challenge_methods_supported", ["S256"]):
            raise LoginError("the identity provider does not support PKCE (S256)", 502)
        if self.verifier is None or metadata["jwks_uri"] != self.metadata.get("jwks_uri"):
            self.verifier = TokenVerifier(
                [
                    IssuerConfig(
                        issuer=issuer,
                        audience=self.client_id,
                        jwks_url=metadata["jwks_uri"],
                        algorithms=self.setting.algorithms,
                        roles=self.setting.roles,
                        agencies=self.setting.agencies,
                    )
                ]
            )
        self.metadata, self.fetched_at = metadata, time.monotonic()
        return metadata

    async def redeem(self, code: str, verifier: str, redirect_uri: str) -> str:
        """Exchange an authorization code for the ID token."""
        metadata = await self.discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": self.client_id,
        }
        auth = None
        if self.setting.client_secret is not None:
            auth = httpx.BasicAuth(self.client_id, self.setting.client_secret.get_secret_value())
            del form["client_id"]
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                response = await client.post(
                    metadata["token_endpoint"],
                    data=form,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError:
            raise LoginError("the identity provider cannot be reached: try again", 502) from None
        if response.status_code != 200:
            log.info("token endpoint refused the code: HTTP %s", response.status_code)
            raise LoginError("the sign-in was not accepted: try again", 401)
        id_token = response.json().get("id_token") if response.content else None
        if not isinstance(id_token, str):
            raise LoginError("the identity provider sent no ID token", 502)
        return id_token

    async def actor(self, id_token: str, nonce: str) -> Actor:
        await self.discover()
        assert self.verifier is not None
        try:
            actor = await self.verifier.verify(id_token)
        except AuthError as exc:
            log.info("ID token refused: %s", exc.message)
            raise LoginError(f"the sign-in was not accepted ({exc.message})", 401) from None
        if not hmac.compare_digest(str(session.verified_claims(id_token).get("nonce", "")), nonce):
            raise LoginError("the sign-in was not accepted (nonce)", 401)
        # the client is the hub's own registration with this issuer
        return dataclasses.replace(actor, client=self.client_id)


def routes(state: AppState, settings: Settings) -> list[BaseRoute]:
    """The sign-in routes, to mount at `/auth`. `state.sessions` (and, for the dev
    sign-in, `state.verifier`) are filled at start-up."""
    pages = Login(state, settings)
    return [
        Route("/login", pages.choose, methods=["GET"]),
        Route("/start", pages.start, methods=["GET"]),
        Route("/callback", pages.callback, methods=["GET"]),
        Route("/dev", pages.dev, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/style.css", pages.stylesheet, methods=["GET"]),
    ]


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise LoginError("the form is too large", 413)
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {k: v[0] for k, v in fields.items()}


class Login:
    def __init__(self, state: AppState, settings: Settings) -> None:
        self.state, self.settings = state, settings
        self.providers = [Provider(i) for i in settings.login_issuers]

    @property
    def sessions(self) -> Sessions:
        sessions = self.state.sessions
        assert sessions is not None  # the app builds them whenever the sign-in is mounted
        return sessions

    def _redirect_uri(self, request: Request) -> str:
        return f"{session.own_origin(request)}{PATH}/callback"

    async def choose(self, request: Request, error: str | None = None) -> Response:
        csrf = request.cookies.get(DEV_CSRF) or secrets.token_urlsafe(32)
        page = render(
            "signin.html",
            401 if error else 200,
            providers=[
                (n, p.setting.label or p.setting.issuer) for n, p in enumerate(self.providers)
            ],
            roles=sorted(devissuer.ROLES) if self.settings.dev_issuer else [],
            next=_destination(request.query_params.get("next")),
            csrf=csrf,
            error=error,
            signed_out="signed_out" in request.query_params,
        )
        if request.cookies.get(DEV_CSRF) != csrf:
            page.raw_headers.append(
                (
                    b"set-cookie",
                    session.cookie_header(request, DEV_CSRF, csrf, PENDING_S, PATH).encode(),
                )
            )
        return page

    async def start(self, request: Request) -> Response:
        try:
            number = int(request.query_params.get("issuer", "0"))
            provider = self.providers[number]
        except (ValueError, IndexError):
            return await self.choose(request, "There is no such identity provider.")
        try:
            metadata = await provider.discover()
        except LoginError as exc:
            return await self.choose(request, exc.message)
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": self._redirect_uri(request),
                "scope": " ".join(provider.setting.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        pending = {
            "issuer": number,
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "next": _destination(request.query_params.get("next")),
        }
        response = RedirectResponse(f"{metadata['authorization_endpoint']}?{query}", 303)
        value = self.sessions.seal(pending, PENDING_S)
        header = session.cookie_header(request, PENDING, value, PENDING_S, PATH)
        response.raw_headers.append((b"set-cookie", header.encode("latin-1")))
        return response

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        try:
            pending = self.sessions.unseal(request.cookies.get(PENDING, ""))
            if pending is None:
                raise LoginError("the sign-in expired or was started elsewhere: try again")
            if not hmac.compare_digest(str(pending["state"]), params.get("state", "")):
                raise LoginError("the sign-in was started elsewhere: try again")
            if "error" in params or not params.get("code"):
                raise LoginError("the identity provider did not sign you in", 401)
            provider = self.providers[int(pending["issuer"])]
            id_token = await provider.redeem(
                params["code"], str(pending["verifier"]), self._redirect_uri(request)
            )
            actor = await provider.actor(id_token, str(pending["nonce"]))
        except (LoginError, IndexError, KeyError, ValueError) as exc:
            message = exc.message if isinstance(exc, LoginError) else "try again"
            response = await self.choose(request, f"Not signed in: {message}.")
            response.delete_cookie(PENDING, path=PATH)
            return response
        response = RedirectResponse(_destination(str(pending.get("next"))), 303)
        response.delete_cookie(PENDING, path=PATH)
        self.sessions.set_cookie(response, request, actor)
        log.info("signed in through %s", actor.issuer)
        return response

    async def dev(self, request: Request) -> Response:
        """One click signs in as a demo role (demo and dev mode only)."""
        if not self.settings.dev_issuer:
            return render("signin.html", 404, providers=[], roles=[], error="Not available.")
        try:
            form = await _form(request)
        except LoginError as exc:
            return await self.choose(request, exc.message)
        expected = request.cookies.get(DEV_CSRF, "")
        origin = request.headers.get("origin")
        if (
            not expected
            or not hmac.compare_digest(expected, form.get("csrf", ""))
            or (origin is not None and origin != session.own_origin(request))
        ):
            return await self.choose(request, "The form expired or came from another site.")
        role = form.get("role", "")
        if role not in devissuer.ROLES:
            return await self.choose(request, "There is no such demo role.")
        token = devissuer.mint(self.settings.data_dir, role, ttl_s=60)
        actor: Actor = await self.state.verifier.verify(token)  # as any bearer token is
        response = RedirectResponse(_destination(form.get("next")), 303)
        self.sessions.set_cookie(response, request, actor)
        return response

    async def logout(self, request: Request) -> Response:
        try:
            form = await _form(request)
            current = await self.sessions.read(request.cookies.get(session.COOKIE, ""))
        except (LoginError, AuthError):
            current = None
            form = {}
        if current is not None and not session.csrf_ok(request, current, form.get("csrf")):
            return await self.choose(request, "The form expired or came from another site.")
        response = RedirectResponse(f"{PATH}/login?signed_out=1", 303)
        response.delete_cookie(session.COOKIE, path="/")
        return response

    async def stylesheet(self, request: Request) -> Response:
        return Response((TEMPLATES / "explorer.css").read_text(), media_type="text/css")
