"""Tests for hub.auth.tokens (token verification) and hub.auth.devissuer (the local
development issuer)."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import Key, generate_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters import declarations
from hub.auth import devissuer
from hub.auth.devissuer import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    ROLE_AGENCY,
    ROLES,
    ensure_keys,
    issuer_config,
    mint,
)
from hub.auth.tokens import Actor, AuthError, IssuerConfig, TokenVerifier, bearer_token

OTHER_ISSUER = "https://police-idp.example.test"
OTHER_AUDIENCE = "mash-hub"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(iss: str = DEV_ISSUER, aud: Any = DEV_AUDIENCE, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "sub": "someone",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["mash_social_worker"],
        "agency": "council",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: Key, alg: str, kid: str | None = "use-key") -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid == "use-key":
        kid = key.kid
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def _ec_key(kid: str | None = None) -> Key:
    if kid:
        return generate_key("EC", "P-256", parameters={"alg": "ES256", "kid": kid})
    return generate_key("EC", "P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)


def _rsa_key(kid: str) -> Key:
    return generate_key("RSA", 2048, parameters={"alg": "RS256", "kid": kid})


def _write_jwks(path: Path, *keys: Key) -> str:
    path.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return str(path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def dev_verifier(data_dir: Path) -> TokenVerifier:
    return TokenVerifier([issuer_config(data_dir)])


def _dev_private_key(data_dir: Path) -> Key:
    from joserfc.jwk import import_key

    ensure_keys(data_dir)
    return import_key(json.loads((data_dir / "dev-issuer" / "private.jwk.json").read_text()), "EC")


class JwksServer:
    """A real HTTP server on loopback that publishes a mutable JWKS document."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.hits = 0
        app = Starlette(routes=[Route("/jwks.json", self._jwks)])
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    async def _jwks(self, request: Request) -> JSONResponse:
        self.hits += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("JWKS test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# the dev issuer and the happy path
# --------------------------------------------------------------------------------------------


async def test_verify_returns_actor_with_role_and_agency_for_a_valid_dev_token(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = mint(data_dir, "police_researcher")
    actor = await dev_verifier.verify(token)
    assert actor == Actor(
        subject="demo-police_researcher",
        issuer=DEV_ISSUER,
        roles=frozenset({"police_researcher"}),
        agency="police",
        team="mash-team",
        client="mash-hub-demo",
    )


async def test_verify_uses_minted_overrides_for_agency_subject_and_team(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = mint(data_dir, "mash_manager", agency="other_council", sub="alice", team="north")
    actor = await dev_verifier.verify(token)
    assert (actor.subject, actor.agency, actor.team) == ("alice", "other_council", "north")
    assert actor.roles == frozenset({"mash_manager"})


def test_ensure_keys_creates_a_private_key_readable_only_by_the_owner_and_a_public_jwks(
    data_dir: Path,
) -> None:
    jwks_path = ensure_keys(data_dir)
    private_path = data_dir / "dev-issuer" / "private.jwk.json"
    assert jwks_path == data_dir / "dev-issuer" / "jwks.json"
    assert private_path.stat().st_mode & 0o777 == 0o600
    private = json.loads(private_path.read_text())
    assert private["kty"] == "EC" and private["crv"] == "P-256" and "d" in private
    assert private["kid"]
    public = json.loads(jwks_path.read_text())["keys"]
    assert len(public) == 1 and "d" not in public[0]
    assert public[0]["kid"] == private["kid"]


def test_ensure_keys_is_idempotent_and_keeps_the_existing_key(data_dir: Path) -> None:
    ensure_keys(data_dir)
    private_path = data_dir / "dev-issuer" / "private.jwk.json"
    before = private_path.read_text()
    jwks_before = (data_dir / "dev-issuer" / "jwks.json").read_text()
    ensure_keys(data_dir)
    assert private_path.read_text() == before
    assert (data_dir / "dev-issuer" / "jwks.json").read_text() == jwks_before


def test_ensure_keys_restores_a_missing_jwks_from_the_private_key(data_dir: Path) -> None:
    jwks_path = ensure_keys(data_dir)
    original = json.loads(jwks_path.read_text())
    jwks_path.unlink()
    assert json.loads(ensure_keys(data_dir).read_text()) == original


def test_mint_writes_the_documented_header_and_claims(data_dir: Path) -> None:
    token = mint(data_dir, "health_practitioner", now=1_700_000_000, ttl_s=60)
    header_b64, payload_b64, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert header["alg"] == "ES256" and header["kid"]
    assert claims == {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "demo-health_practitioner",
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_060,
        "roles": ["health_practitioner"],
        "agency": "health",
        "team": "mash-team",
        "azp": "mash-hub-demo",
    }


def test_mint_raises_value_error_naming_the_allowed_roles_for_an_unknown_role(
    data_dir: Path,
) -> None:
    with pytest.raises(ValueError) as info:
        mint(data_dir, "superuser")
    for role in ROLES:
        assert role in str(info.value)


def test_role_agency_covers_every_documented_role() -> None:
    documented = {  # DESIGN.md's roles
        "mash_social_worker",
        "mash_manager",
        "police_researcher",
        "health_practitioner",
        "asc_practitioner",
        "early_help_worker",
        "ig_officer",
        "partner_system",
    }
    # and each source's practitioners, as its adapter module declares them
    declared = {role: d.agency for d in declarations() for role in d.roles}
    assert documented | set(declared) == ROLES
    assert {role: ROLE_AGENCY[role] for role in declared} == declared
    assert ROLE_AGENCY["asc_practitioner"] == "adult_social_care"
    assert ROLE_AGENCY["partner_system"] == "partner"


# --------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------


async def test_verify_rejects_an_expired_token(data_dir: Path, dev_verifier: TokenVerifier) -> None:
    token = mint(data_dir, "mash_social_worker", now=int(time.time()) - 7200, ttl_s=3600)
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    assert info.value.message == "token expired"


async def test_verify_accepts_a_token_expired_within_the_leeway(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = mint(data_dir, "mash_social_worker", now=int(time.time()) - 70, ttl_s=60)
    actor = await dev_verifier.verify(token)
    assert actor.subject == "demo-mash_social_worker"


async def test_verify_rejects_a_token_that_is_not_yet_valid(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = mint(data_dir, "mash_social_worker", now=int(time.time()) + 3600)
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    assert info.value.message == "token not yet valid"


async def test_verify_rejects_a_token_for_another_audience(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = _sign(_claims(aud="some-other-service"), _dev_private_key(data_dir), "ES256")
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    assert info.value.message == "token not intended for this service"


async def test_verify_accepts_an_audience_list_that_names_the_hub(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = _sign(_claims(aud=["other", DEV_AUDIENCE]), _dev_private_key(data_dir), "ES256")
    actor = await dev_verifier.verify(token)
    assert actor.subject == "someone"


async def test_verify_rejects_an_audience_list_that_does_not_name_the_hub(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = _sign(_claims(aud=["other", "another"]), _dev_private_key(data_dir), "ES256")
    with pytest.raises(AuthError):
        await dev_verifier.verify(token)


@pytest.mark.parametrize("claim", ["exp", "aud", "sub", "iss"])
async def test_verify_rejects_a_token_missing_a_required_claim(
    data_dir: Path, dev_verifier: TokenVerifier, claim: str
) -> None:
    claims = _claims()
    del claims[claim]
    token = _sign(claims, _dev_private_key(data_dir), "ES256")
    with pytest.raises(AuthError):
        await dev_verifier.verify(token)


async def test_verify_accepts_roles_as_a_space_separated_string_and_client_id_as_client(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    claims = _claims(roles="mash_manager ig_officer", client_id="partner-app")
    actor = await dev_verifier.verify(_sign(claims, _dev_private_key(data_dir), "ES256"))
    assert actor.roles == frozenset({"mash_manager", "ig_officer"})
    assert actor.client == "partner-app"
    assert actor.team is None


async def test_verify_rejects_roles_that_are_not_strings(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    claims = _claims(roles=[{"role": "ig_officer"}])
    with pytest.raises(AuthError):
        await dev_verifier.verify(_sign(claims, _dev_private_key(data_dir), "ES256"))


async def test_verify_error_message_never_echoes_the_token_or_claim_values(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    claims = _claims(aud="secret-audience-value", sub="secret-subject")
    token = _sign(claims, _dev_private_key(data_dir), "ES256")
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    text = str(info.value)
    assert "secret" not in text and token not in text and len(text) < 60


# --------------------------------------------------------------------------------------------
# algorithms and keys
# --------------------------------------------------------------------------------------------


async def test_verify_rejects_an_hs256_token_signed_with_a_symmetric_key(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    secret = generate_key("oct", 256, parameters={"kid": "shared"})
    token = _sign(_claims(), secret, "HS256")
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    assert info.value.message == "unsupported token algorithm"


async def test_verify_rejects_an_hs256_token_keyed_with_the_issuers_public_key(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    import hashlib
    import hmac

    public_jwks = (data_dir / "dev-issuer" / "jwks.json").read_bytes()
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims())}"
    mac = hmac.new(public_jwks, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(AuthError):
        await dev_verifier.verify(token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_verify_rejects_an_unsigned_token_with_alg_none(
    data_dir: Path, dev_verifier: TokenVerifier, alg: str
) -> None:
    token = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(AuthError):
        await dev_verifier.verify(token)
    with pytest.raises(AuthError):
        await dev_verifier.verify(token + "c2ln")


async def test_verify_rejects_a_token_signed_by_a_different_key_claiming_the_dev_issuer(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    real_kid = _dev_private_key(data_dir).kid
    forger = _ec_key()
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(_sign(_claims(), forger, "ES256"))
    assert info.value.message == "invalid token"
    with pytest.raises(AuthError):  # even when it borrows the real key's kid
        await dev_verifier.verify(_sign(_claims(), forger, "ES256", kid=real_kid))
    with pytest.raises(AuthError):  # or leaves the kid out
        await dev_verifier.verify(_sign(_claims(), forger, "ES256", kid=None))


async def test_verify_rejects_a_token_with_a_tampered_payload(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = mint(data_dir, "early_help_worker")
    header, _, signature = token.split(".")
    forged = ".".join([header, _b64(_claims(roles=["ig_officer"])), signature])
    with pytest.raises(AuthError):
        await dev_verifier.verify(forged)


async def test_verify_rejects_a_token_from_an_untrusted_issuer(
    data_dir: Path, dev_verifier: TokenVerifier
) -> None:
    token = _sign(_claims(iss="https://evil.example"), _dev_private_key(data_dir), "ES256")
    with pytest.raises(AuthError) as info:
        await dev_verifier.verify(token)
    assert info.value.message == "untrusted issuer"


async def test_verify_rejects_token_when_signed_by_another_issuers_key(tmp_path: Path) -> None:
    key_a, key_b = _ec_key("key-a"), _ec_key("key-b")
    verifier = TokenVerifier(
        [
            IssuerConfig(
                "https://a.example", "mash-hub", jwks_file=_write_jwks(tmp_path / "a.json", key_a)
            ),
            IssuerConfig(
                "https://b.example", "mash-hub", jwks_file=_write_jwks(tmp_path / "b.json", key_b)
            ),
        ]
    )
    # Each issuer's own tokens verify ...
    for iss, key in (("https://a.example", key_a), ("https://b.example", key_b)):
        actor = await verifier.verify(_sign(_claims(iss=iss, aud="mash-hub"), key, "ES256"))
        assert actor.issuer == iss
    # ... but a token claiming issuer A and signed with issuer B's key does not, with B's kid,
    # A's kid, or no kid at all.
    for kid in ("key-b", "key-a", None):
        token = _sign(_claims(iss="https://a.example", aud="mash-hub"), key_b, "ES256", kid=kid)
        with pytest.raises(AuthError):
            await verifier.verify(token)


async def test_verify_accepts_an_rs256_token_from_a_second_issuer(
    data_dir: Path, tmp_path: Path
) -> None:
    rsa = _rsa_key("police-2025")
    police = IssuerConfig(
        OTHER_ISSUER, OTHER_AUDIENCE, jwks_file=_write_jwks(tmp_path / "police.json", rsa)
    )
    verifier = TokenVerifier([issuer_config(data_dir), police])
    claims = _claims(iss=OTHER_ISSUER, aud=OTHER_AUDIENCE, agency="police", azp="niche-rms")
    actor = await verifier.verify(_sign(claims, rsa, "RS256"))
    assert actor.issuer == OTHER_ISSUER and actor.agency == "police" and actor.client == "niche-rms"
    # and the dev issuer still works next to it
    assert (await verifier.verify(mint(data_dir, "ig_officer"))).roles == {"ig_officer"}


async def test_verify_rejects_an_algorithm_outside_the_issuers_allow_list(tmp_path: Path) -> None:
    rsa = _rsa_key("rsa-1")
    config = IssuerConfig(
        OTHER_ISSUER,
        OTHER_AUDIENCE,
        jwks_file=_write_jwks(tmp_path / "k.json", rsa),
        algorithms=("ES256",),
    )
    with pytest.raises(AuthError):
        await TokenVerifier([config]).verify(_sign(_claims(iss=OTHER_ISSUER), rsa, "RS256"))


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d.e", "!!!.???.***", "e30.e30.e30", "x" * 20000]
)
async def test_verify_rejects_malformed_tokens(dev_verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(AuthError):
        await dev_verifier.verify(token)


# --------------------------------------------------------------------------------------------
# JWKS over HTTP
# --------------------------------------------------------------------------------------------


async def test_verify_fetches_jwks_from_url_and_refetches_once_on_an_unknown_kid(
    jwks_server: JwksServer,
) -> None:
    first, second, third = _rsa_key("k1"), _rsa_key("k2"), _rsa_key("k3")
    jwks_server.keys = [first]
    config = IssuerConfig(OTHER_ISSUER, OTHER_AUDIENCE, jwks_url=jwks_server.url)
    verifier = TokenVerifier([config])
    claims = _claims(iss=OTHER_ISSUER, aud=OTHER_AUDIENCE)

    assert (await verifier.verify(_sign(claims, first, "RS256"))).issuer == OTHER_ISSUER
    assert (await verifier.verify(_sign(claims, first, "RS256"))).issuer == OTHER_ISSUER
    assert jwks_server.hits == 1  # cached

    # The issuer rotates in a new key: an unknown kid triggers one refetch.
    jwks_server.keys = [first, second]
    assert (await verifier.verify(_sign(claims, second, "RS256"))).issuer == OTHER_ISSUER
    assert jwks_server.hits == 2

    # Another unknown kid within 60 s does not make the hub fetch again.
    jwks_server.keys = [first, second, third]
    with pytest.raises(AuthError):
        await verifier.verify(_sign(claims, third, "RS256"))
    assert jwks_server.hits == 2
    assert (await verifier.verify(_sign(claims, second, "RS256"))).issuer == OTHER_ISSUER
    assert jwks_server.hits == 2


async def test_verify_refetches_again_once_the_refetch_interval_has_passed(
    jwks_server: JwksServer,
) -> None:
    now = [1000.0]
    first, second = _ec_key("e1"), _ec_key("e2")
    jwks_server.keys = [first]
    verifier = TokenVerifier(
        [IssuerConfig(OTHER_ISSUER, OTHER_AUDIENCE, jwks_url=jwks_server.url)],
        clock=lambda: now[0],
    )
    claims = _claims(iss=OTHER_ISSUER, aud=OTHER_AUDIENCE)
    await verifier.verify(_sign(claims, first, "ES256"))
    with pytest.raises(AuthError):
        await verifier.verify(_sign(claims, _ec_key("bogus"), "ES256"))
    assert jwks_server.hits == 2
    jwks_server.keys = [first, second]
    now[0] += 30
    with pytest.raises(AuthError):
        await verifier.verify(_sign(claims, second, "ES256"))
    assert jwks_server.hits == 2
    now[0] += 31
    await verifier.verify(_sign(claims, second, "ES256"))
    assert jwks_server.hits == 3


async def test_verify_reports_unavailable_keys_without_leaking_details() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = IssuerConfig(
        OTHER_ISSUER, OTHER_AUDIENCE, jwks_url=f"http://127.0.0.1:{port}/jwks.json"
    )
    token = _sign(_claims(iss=OTHER_ISSUER), _rsa_key("k"), "RS256")
    with pytest.raises(AuthError) as info:
        await TokenVerifier([config]).verify(token)
    assert str(port) not in str(info.value)


# --------------------------------------------------------------------------------------------
# IssuerConfig and bearer_token
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("HS256",), ("RS256", "HS256"), ("none",), ("PS256",), ()])
def test_issuer_config_raises_value_error_for_algorithms_outside_the_allow_list(
    algorithms: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError):
        IssuerConfig(
            "https://x.example", "mash-hub", jwks_file="/tmp/x.json", algorithms=algorithms
        )


def test_issuer_config_requires_exactly_one_key_source() -> None:
    with pytest.raises(ValueError):
        IssuerConfig("https://x.example", "mash-hub")
    with pytest.raises(ValueError):
        IssuerConfig(
            "https://x.example", "mash-hub", jwks_url="https://x.example/jwks", jwks_file="/x"
        )


def test_issuer_config_refuses_plain_http_jwks_urls_off_loopback() -> None:
    with pytest.raises(ValueError):
        IssuerConfig("https://x.example", "mash-hub", jwks_url="http://x.example/jwks.json")
    IssuerConfig("https://x.example", "mash-hub", jwks_url="http://127.0.0.1:9/jwks.json")
    IssuerConfig("https://x.example", "mash-hub", jwks_url="https://x.example/jwks.json")


def test_dev_issuer_config_trusts_only_es256_from_the_dev_jwks(data_dir: Path) -> None:
    config = issuer_config(data_dir)
    assert config.issuer == DEV_ISSUER and config.audience == DEV_AUDIENCE
    assert config.jwks_file == str(data_dir / "dev-issuer" / "jwks.json")
    assert config.jwks_url is None and config.algorithms == ("ES256",)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("  Bearer   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_token_extracts_the_token(header: str, expected: str) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "abc.def.ghi",
        "Bearer a b",
        "Token abc.def.ghi",
    ],
)
def test_bearer_token_raises_missing_bearer_token_when_absent_or_malformed(
    header: str | None,
) -> None:
    with pytest.raises(AuthError) as info:
        bearer_token(header)
    assert info.value.message == "missing bearer token"


async def test_verify_rejects_a_role_or_agency_the_issuer_may_not_assert(tmp_path: Path) -> None:
    base = devissuer.issuer_config(tmp_path)
    police_only = dataclasses.replace(base, roles=("police_researcher",), agencies=("police",))
    verifier = TokenVerifier([police_only])
    ok_token = devissuer.mint(tmp_path, "police_researcher")
    assert (await verifier.verify(ok_token)).agency == "police"
    with pytest.raises(AuthError, match="role"):
        await verifier.verify(devissuer.mint(tmp_path, "ig_officer", agency="police"))
    with pytest.raises(AuthError, match="agency"):
        await verifier.verify(devissuer.mint(tmp_path, "police_researcher", agency="health"))


async def test_verify_rejects_claims_the_audit_log_could_not_hold(tmp_path: Path) -> None:
    verifier = TokenVerifier([devissuer.issuer_config(tmp_path)])
    with pytest.raises(AuthError):
        await verifier.verify(devissuer.mint(tmp_path, "mash_social_worker", sub="a\x00b"))
    with pytest.raises(AuthError):
        await verifier.verify(devissuer.mint(tmp_path, "mash_social_worker", team="x" * 500))
