"""Bearer-token authentication: verify a JWT against one of the trusted issuers.

Each trusted issuer (council, police force, NHS, the local development issuer, ...) is an
:class:`IssuerConfig` with its own JSON Web Key Set. A token is checked like this:

1. its header is parsed and its ``alg`` must be an asymmetric algorithm the hub allows;
2. the *unverified* ``iss`` claim is read only to choose the issuer configuration — an issuer
   that is not configured is refused;
3. the signature is verified with that issuer's keys only (a key is bound to its issuer: a
   token claiming issuer B but signed with issuer A's key fails), selected by ``kid``;
4. the claims are validated: ``iss``, ``aud`` and ``exp`` are required, and ``sub`` unless
   the token names its client; ``aud`` must name this hub, ``exp``/``nbf``/``iat`` are
   checked with a small leeway.

A token is a person's or a machine's (:func:`is_machine_token`). A machine token — OAuth 2.0
client credentials: a partner system asking on its own behalf, no person behind it — must
name a configured partner system, and whatever roles, agency or team it claims are dropped:
the policies give it DOMAIN.md rule 17 (flags only) for what it *is*, not what it says. A
person's token issued to a partner system's client keeps that person's rights; the Actor
names the partner (``partner``) so the audit log records both.

Every failure is an :class:`AuthError` whose message is short, generic and safe to return to
the client: it never echoes the token or any claim value. Details go to the debug log only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key
from joserfc.jwt import JWTClaimsRegistry

__all__ = [
    "ALLOWED_ALGORITHMS",
    "Actor",
    "AuthError",
    "IssuerConfig",
    "TokenVerifier",
    "bearer_token",
]

log = logging.getLogger(__name__)

#: The only signature algorithms the hub accepts: asymmetric, so that no verifier ever holds
#: a secret that could mint tokens. ``none`` and the HMAC family are never accepted.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})

#: Which key type (and curve) each allowed algorithm needs.
_ALG_KEY: dict[str, tuple[str, str | None]] = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}

#: Tokens larger than this are refused before any parsing.
MAX_CLAIM_CHARS = 200
MAX_TOKEN_BYTES = 16 * 1024
# A token's checked signature is remembered for this long (its expiry and other time
# claims are checked again on every use): each request of a session carries the same token,
# and an ES256 verification costs more than the rest of the check. A key the issuer retires
# stops being trusted for tokens already seen at most this much later.
VERIFIED_FOR_S = 60.0
VERIFIED_KEPT = 1024

#: On a ``kid`` the cached key set does not know, reload the issuer's keys at most this often.
JWKS_REFETCH_INTERVAL_S = 60.0

#: Cached keys fetched from a URL are reloaded after this long even without an unknown ``kid``.
JWKS_MAX_AGE_S = 3600.0

_JWKS_FETCH_TIMEOUT_S = 5.0
_MAX_JWKS_BYTES = 512 * 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Public types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who is asking: the verified identity behind a request."""

    subject: str
    issuer: str
    roles: frozenset[str]
    agency: str | None
    team: str | None
    client: str | None
    # A client-credentials token: a partner system with no person behind it (rule 17).
    machine: bool = False
    # The partner system `client` names, when it is one (settings: MASH_PARTNER_SYSTEMS).
    partner: str | None = None


class AuthError(Exception):
    """Authentication failed. ``message`` is short, generic and safe to show to the client."""

    def __init__(self, message: str = "invalid token") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IssuerConfig:
    """One trusted token issuer and where its public keys are published.

    Exactly one of ``jwks_url`` (fetched over HTTPS; plain HTTP only on loopback) and
    ``jwks_file`` (a local JWKS document) must be given. ``algorithms`` must be a non-empty
    subset of :data:`ALLOWED_ALGORITHMS`.

    ``roles`` and ``agencies``, when given, are what this issuer may assert: a police force's
    identity provider may not mint ``ig_officer`` or claim ``agency: health``. ``None`` (the
    development issuer) trusts whatever it says.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    roles: tuple[str, ...] | None = None
    agencies: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("issuer must be a non-empty string")
        if not isinstance(self.audience, str) or not self.audience:
            raise ValueError("audience must be a non-empty string")
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("exactly one of jwks_url and jwks_file must be given")
        if self.jwks_file is not None:
            object.__setattr__(self, "jwks_file", str(self.jwks_file))
            if not self.jwks_file:
                raise ValueError("jwks_file must not be empty")
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if isinstance(self.algorithms, str):
            raise ValueError("algorithms must be a sequence of algorithm names")
        algorithms = tuple(self.algorithms)
        if not algorithms:
            raise ValueError("algorithms must not be empty")
        bad = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
        if bad:
            raise ValueError(
                f"unsupported algorithm(s) {sorted(map(str, bad))}: only asymmetric "
                f"{sorted(ALLOWED_ALGORITHMS)} are allowed"
            )
        object.__setattr__(self, "algorithms", algorithms)


def bearer_token(authorization_header: str | None) -> str:
    """Extract the token from an ``Authorization: Bearer <token>`` header value."""
    if not authorization_header or not isinstance(authorization_header, str):
        raise AuthError("missing bearer token")
    match = _BEARER.match(authorization_header.strip())
    if not match:
        raise AuthError("missing bearer token")
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# Key sets
# ---------------------------------------------------------------------------------------------


def _check_jwks_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError("jwks_url is not a valid URL") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("jwks_url must be an https URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("jwks_url must use https (plain http is allowed only on loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_jwks(document: Any) -> dict[str | None, list[Key]]:
    """Public signing keys from a JWKS document, grouped by ``kid`` (``None`` = no kid).

    Private key material is dropped; symmetric keys, encryption keys and key types the hub
    does not accept are ignored.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str | None, list[Key]] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kty = entry.get("kty")
        if kty not in ("RSA", "EC"):
            continue
        if entry.get("use") not in (None, "sig"):
            continue
        try:
            key = import_key(dict(entry), kty)
            if key.is_private:
                key = import_key(key.as_dict(private=False), kty)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("ignoring an unusable key in a JWKS document: %s", type(exc).__name__)
            continue
        kid = entry.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else None, []).append(key)
    return keys


@dataclass
class _IssuerKeys:
    """The cached keys of one issuer, reloaded from its file or URL when needed."""

    config: IssuerConfig
    clock: Callable[[], float]
    refetch_interval_s: float
    keys: dict[str | None, list[Key]] | None = None
    loaded_at: float = 0.0
    last_refetch: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def candidates(self, kid: str | None, alg: str) -> list[Key]:
        """Keys of this issuer that may have signed a token with this ``kid`` and ``alg``."""
        async with self.lock:
            if self.keys is None or self._stale():
                await self._load()
            found = self._select(kid, alg)
            if not found and kid is not None and self._may_refetch():
                # Unknown kid: the issuer may have rotated its keys. Reload, but not too often,
                # so that tokens with made-up kids cannot make the hub hammer the issuer.
                self.last_refetch = self.clock()
                await self._load()
                found = self._select(kid, alg)
            return found

    def _stale(self) -> bool:
        return self.config.jwks_url is not None and self.clock() - self.loaded_at > JWKS_MAX_AGE_S

    def _may_refetch(self) -> bool:
        return (
            self.last_refetch is None or self.clock() - self.last_refetch >= self.refetch_interval_s
        )

    def _select(self, kid: str | None, alg: str) -> list[Key]:
        assert self.keys is not None
        if kid is not None:
            # A key published without a kid may still sign tokens that carry one.
            pool = self.keys.get(kid) or self.keys.get(None, [])
        else:
            pool = [k for group in self.keys.values() for k in group]
        return [k for k in pool if _key_fits(k, alg)]

    async def _load(self) -> None:
        try:
            if self.config.jwks_file is not None:
                raw = await asyncio.to_thread(Path(self.config.jwks_file).read_bytes)
            else:
                raw = await self._fetch(self.config.jwks_url or "")
            keys = _parse_jwks(json.loads(raw))
        except (OSError, ValueError, httpx.HTTPError) as exc:
            log.warning(
                "could not load the keys of issuer %s: %s", self.config.issuer, type(exc).__name__
            )
            if self.keys is None:
                raise AuthError("issuer keys unavailable") from None
            return  # keep serving the keys we already have
        self.keys = keys
        self.loaded_at = self.clock()

    @staticmethod
    async def _fetch(url: str) -> bytes:
        async with httpx.AsyncClient(
            timeout=_JWKS_FETCH_TIMEOUT_S, follow_redirects=False, trust_env=False
        ) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            return response.content


def _key_fits(key: Key, alg: str) -> bool:
    kty, crv = _ALG_KEY[alg]
    if key.key_type != kty:
        return False
    if crv is not None and isinstance(key, ECKey) and key.curve_name != crv:
        return False
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
        return False
    designed_alg = key.get("alg")
    return designed_alg is None or designed_alg == alg


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _b64json(segment: str) -> dict[str, Any]:
    if not _B64URL.match(segment):
        raise AuthError("invalid token")
    try:
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AuthError("invalid token") from None
    if not isinstance(data, dict):
        raise AuthError("invalid token")
    return data


def _optional_str(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise AuthError("invalid token")
        return value
    return None


#: `gty` (grant type) values that mark a client-credentials token (Auth0 and others).
_MACHINE_GRANTS = frozenset({"client-credentials", "client_credentials"})


def is_machine_token(claims: Mapping[str, Any], client: str | None) -> bool:
    """Whether a verified token was issued to a client on its own behalf (OAuth 2.0 client
    credentials), not to a person. The rule, from the claims providers actually set:

    - it names its client (``client_id``, RFC 9068, or ``azp``) — a token naming no client
      is never a machine's; and
    - its grant says so (``gty`` client-credentials; Entra ID's ``idtyp`` ``app``), or it
      has no ``sub``, or its ``sub`` is the client id (RFC 9068 §2.2: "in cases of access
      tokens obtained through grants where no resource owner is involved, such as the
      client credentials grant, the value of sub SHOULD correspond to an identifier the
      authorization server uses to indicate the client application"; oidc-provider does so).
    """
    if client is None:
        return False
    if claims.get("gty") in _MACHINE_GRANTS or claims.get("idtyp") == "app":
        return True
    sub = claims.get("sub")
    return sub is None or sub == client


def _roles(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(r, str) for r in value):
        return frozenset(r for r in value if r)
    raise AuthError("invalid token")


class TokenVerifier:
    """Verify bearer JWTs against a fixed set of trusted issuers."""

    def __init__(
        self,
        issuers: Sequence[IssuerConfig],
        leeway_s: int = 30,
        *,
        jwks_refetch_interval_s: float = JWKS_REFETCH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        partners: Mapping[str, str] | None = None,
    ) -> None:
        """`partners` maps a partner system's client id to its name."""
        self._partners = dict(partners or {})
        if leeway_s < 0:
            raise ValueError("leeway_s must not be negative")
        self._leeway_s = int(leeway_s)
        self._clock = clock
        self._verified_recently: OrderedDict[str, tuple[float, dict[str, Any], IssuerConfig]]
        self._verified_recently = OrderedDict()
        self._issuers: dict[str, _IssuerKeys] = {}
        for config in issuers:
            if not isinstance(config, IssuerConfig):
                raise TypeError("issuers must be IssuerConfig instances")
            if config.issuer in self._issuers:
                raise ValueError(f"issuer configured twice: {config.issuer}")
            self._issuers[config.issuer] = _IssuerKeys(config, clock, jwks_refetch_interval_s)

    @property
    def issuers(self) -> tuple[IssuerConfig, ...]:
        return tuple(entry.config for entry in self._issuers.values())

    async def verify(self, token: str) -> Actor:
        """Verify ``token`` and return the :class:`Actor` it identifies, or raise AuthError."""
        claims, config = await self._verified(token)
        client = _optional_str(claims, "azp", "client_id")
        if is_machine_token(claims, client):
            actor = self._machine(client or "", config.issuer)
        else:
            actor = Actor(
                subject=claims["sub"],
                issuer=config.issuer,
                roles=_roles(claims.get("roles")),
                agency=_optional_str(claims, "agency"),
                team=_optional_str(claims, "team"),
                client=client,
                partner=self._partners.get(client) if client else None,
            )
        texts = [actor.subject, actor.agency, actor.team, actor.client, *actor.roles]
        if not all(_plain(t) for t in texts if t is not None):
            raise AuthError("invalid token")
        if config.roles is not None and not actor.roles <= set(config.roles):
            raise AuthError("token claims a role its issuer may not grant")
        # A machine token asserts no agency (its claims were dropped): nothing to limit.
        if (
            not actor.machine
            and config.agencies is not None
            and actor.agency not in config.agencies
        ):
            raise AuthError("token claims an agency its issuer may not assert")
        return actor

    async def verify_machine(self, token: str) -> str:
        """Verify a client-credentials ``token`` (a router's, say: hub/partners/routers.py)
        and return the client id it names, or raise AuthError — a person's token is not a
        machine's. Which clients are trusted for what is the caller's decision."""
        claims, _ = await self._verified(token)
        client = _optional_str(claims, "azp", "client_id")
        if client is None or not is_machine_token(claims, client) or not _plain(client):
            raise AuthError("not a client-credentials token")
        return client

    async def _verified(self, token: str) -> tuple[dict[str, Any], IssuerConfig]:
        """The claims of ``token`` once its signature and registered claims are checked
        against the issuer it names, with that issuer's configuration."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise AuthError("invalid token")
        seen = self._verified_recently.get(token)
        if seen is not None and self._clock() - seen[0] < VERIFIED_FOR_S:
            _, seen_claims, seen_config = seen
            self._validate_claims(seen_claims, seen_config)  # expiry: checked every time
            return dict(seen_claims), seen_config
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise AuthError("invalid token")
        header = _b64json(parts[0])
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise AuthError("unsupported token algorithm")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("invalid token")

        # The unverified issuer is used only to pick whose keys to verify with.
        unverified_iss = _b64json(parts[1]).get("iss")
        if not isinstance(unverified_iss, str):
            raise AuthError("invalid token")
        entry = self._issuers.get(unverified_iss)
        if entry is None:
            log.debug("token from an issuer that is not trusted")
            raise AuthError("untrusted issuer")
        config = entry.config
        if alg not in config.algorithms:
            raise AuthError("unsupported token algorithm")

        verified = None
        for key in await entry.candidates(kid, alg):
            try:
                verified = jwt.decode(token, key, algorithms=[alg])
                break
            except JoseError:
                continue
            except (ValueError, TypeError):
                continue
        if verified is None:
            log.debug("token signature did not verify with any key of issuer %s", config.issuer)
            raise AuthError("invalid token")
        claims: dict[str, Any] = verified.claims
        self._validate_claims(claims, config)
        self._verified_recently[token] = (self._clock(), dict(claims), config)
        while len(self._verified_recently) > VERIFIED_KEPT:
            self._verified_recently.popitem(last=False)
        return claims, config

    def _machine(self, client: str, issuer: str) -> Actor:
        """A partner system's own token: known clients only; no claimed role, agency or team
        survives (rule 17 is decided on the token kind)."""
        partner = self._partners.get(client)
        if partner is None:
            log.debug("client-credentials token from a client that is not a partner system")
            raise AuthError("unknown client system")
        return Actor(client, issuer, frozenset(), None, None, client, True, partner)

    def _validate_claims(self, claims: dict[str, Any], config: IssuerConfig) -> None:
        registry = JWTClaimsRegistry(
            leeway=self._leeway_s,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.audience},
            exp={"essential": True},
            # A client-credentials token may carry no sub (checked below).
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise AuthError("token expired") from None
        except JoseError as exc:
            claim = getattr(exc, "claim", None) or ""
            log.debug("token claims rejected: %s %s", type(exc).__name__, claim)
            if (
                claim in ("nbf", "iat")
                and isinstance(exc, InvalidClaimError)
                and isinstance(claims.get(claim), (int, float))
            ):
                raise AuthError("token not yet valid") from None
            if claim == "aud":
                raise AuthError("token not intended for this service") from None
            raise AuthError("invalid token") from None
        # Values joserfc does not type-check for every shape the hub relies on.
        if claims.get("iss") != config.issuer:
            raise AuthError("invalid token")
        sub = claims.get("sub")
        if sub is None and claims.get("client_id") is None and claims.get("azp") is None:
            raise AuthError("invalid token")
        if sub is not None and (not isinstance(sub, str) or not sub):
            raise AuthError("invalid token")
        aud = claims.get("aud")
        if not (aud == config.audience or (isinstance(aud, list) and config.audience in aud)):
            raise AuthError("token not intended for this service")


def _plain(text: str) -> bool:
    """A claim the audit log can hold: printable, not over-long."""
    return isinstance(text, str) and 0 < len(text) <= MAX_CLAIM_CHARS and text.isprintable()
