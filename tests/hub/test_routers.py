"""A trusted router's own token (hub/partners/routers.py): verified like any token, a
machine's, of a client the hub trusts as a router — or the request is refused. The
end-to-end path through Hive Gateway is in tests/gateway/test_gateway.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.requests import Request

from hub.auth import devissuer
from hub.auth.tokens import AuthError, TokenVerifier
from hub.partners.routers import HEADER, Routers

ROUTER = "mash-gateway"


def request(value: str | None) -> Request:
    headers = [] if value is None else [(HEADER.encode(), value.encode())]
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers})


def routers(data_dir: Path) -> Routers:
    return Routers(TokenVerifier([devissuer.issuer_config(data_dir)]), frozenset({ROUTER}))


def test_a_trusted_routers_machine_token_names_the_router(tmp_path: Path) -> None:
    token = devissuer.mint_machine(tmp_path, ROUTER)
    assert asyncio.run(routers(tmp_path).router(request(f"Bearer {token}"))) == ROUTER
    assert asyncio.run(routers(tmp_path).router(request(None))) is None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("machine:not-a-router", "untrusted router"),
        ("person:" + ROUTER, "invalid router token"),  # a person's token is no router's
        ("raw:Bearer not.a.jwt", "invalid router token"),
        ("raw:Basic abc", "invalid router token"),
    ],
)
def test_a_router_header_that_does_not_prove_a_trusted_router_is_refused(
    tmp_path: Path, header: str, message: str
) -> None:
    kind, _, value = header.partition(":")
    if kind == "machine":
        value = "Bearer " + devissuer.mint_machine(tmp_path, value)
    elif kind == "person":
        value = "Bearer " + devissuer.mint(tmp_path, "mash_manager", client=value)
    with pytest.raises(AuthError, match=message):
        asyncio.run(routers(tmp_path).router(request(value)))


def test_token_machine_prints_a_client_credentials_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "token", "--machine", "--client", ROUTER],
        capture_output=True,
        text=True,
        timeout=120,
        env={"MASH_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert asyncio.run(routers(tmp_path).router(request(f"Bearer {token}"))) == ROUTER
