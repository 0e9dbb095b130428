"""Which tokens are machines' (hub/auth/tokens.py `is_machine_token`) and what the Actor of each
kind carries, with tokens signed by a key of the test's own; and where the partner systems
come from (settings)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, generate_key

from hub.auth.tokens import AuthError, IssuerConfig, TokenVerifier, is_machine_token
from hub.settings import Settings

ISSUER, AUDIENCE = "https://idp.test", "https://mash-hub.test"


@pytest.mark.parametrize(
    ("claims", "client", "machine"),
    [
        ({"sub": "epr"}, "epr", True),  # RFC 9068: sub is the client for client credentials
        ({}, "epr", True),  # no person at all
        ({"sub": "svc-account-7", "gty": "client-credentials"}, "epr", True),  # Auth0
        ({"sub": "0f3c", "idtyp": "app"}, "epr", True),  # Entra ID
        ({"sub": "sam.social"}, "epr", False),  # a person signed in through the client
        ({"sub": "epr"}, None, False),  # no client named: never a machine
    ],
)
def test_a_machine_token_is_told_by_its_claims(
    claims: dict[str, Any], client: str | None, machine: bool
) -> None:
    assert is_machine_token(claims, client) is machine


@pytest.fixture
def signer(tmp_path: Path) -> tuple[ECKey, TokenVerifier]:
    key = generate_key("EC", "P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    config = IssuerConfig(ISSUER, AUDIENCE, jwks_file=str(jwks), agencies=("council",))
    return key, TokenVerifier([config], partners={"epr": "Northshire NHS Trust EPR"})


def sign(key: ECKey, **claims: Any) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    payload = {k: v for k, v in {**base, **claims}.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, payload, key)


async def test_a_machine_token_keeps_none_of_its_claimed_roles_agency_or_team(
    signer: tuple[ECKey, TokenVerifier],
) -> None:
    key, verifier = signer
    token = sign(key, sub="epr", client_id="epr", roles=["mash_manager"], agency="police", team="t")
    actor = await verifier.verify(token)
    assert actor.machine and actor.partner == "Northshire NHS Trust EPR"
    assert (actor.subject, actor.client, actor.roles, actor.agency, actor.team) == (
        "epr",
        "epr",
        frozenset(),
        None,
        None,
    )


async def test_a_persons_token_through_a_partner_client_keeps_the_persons_claims(
    signer: tuple[ECKey, TokenVerifier],
) -> None:
    key, verifier = signer
    token = sign(key, sub="sam", azp="epr", roles=["mash_social_worker"], agency="council")
    actor = await verifier.verify(token)
    assert not actor.machine and actor.partner == "Northshire NHS Trust EPR"
    assert (actor.subject, actor.roles, actor.agency) == (
        "sam",
        frozenset({"mash_social_worker"}),
        "council",
    )


async def test_a_machine_token_of_an_unknown_client_or_a_token_naming_no_one_is_refused(
    signer: tuple[ECKey, TokenVerifier],
) -> None:
    key, verifier = signer
    with pytest.raises(AuthError, match="unknown client system"):
        await verifier.verify(sign(key, client_id="stranger"))
    with pytest.raises(AuthError):
        await verifier.verify(sign(key, agency="council"))  # no sub, no client


def test_partner_systems_come_from_the_setting_and_a_file_the_setting_winning(
    tmp_path: Path,
) -> None:
    file = tmp_path / "partners.json"
    file.write_text(json.dumps({"a": "From the file", "b": {"name": "B", "max_cost": 9}}))
    settings = Settings(partner_systems_file=file, partner_systems={"a": "From the setting"})
    partners = settings.partners
    assert partners["a"].name == "From the setting"
    assert (partners["b"].name, partners["b"].max_cost) == ("B", 9)
