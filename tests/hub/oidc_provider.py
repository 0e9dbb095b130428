"""A real OpenID provider for the sign-in tests: panva's certified `oidc-provider` (pinned in
web/package-lock.json, installed by `make install`), run by Node on a loopback port with a
test client (authorization code + PKCE) and test users carrying the hub's claims."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pytest

from hub.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "web" / "oidc-test-provider.mjs"
CLIENT_ID, CLIENT_SECRET = "mash-hub-explorer", "test-client-secret-not-for-production"
# login → password and the claims the hub reads (hub.auth: roles, agency, team)
USERS: dict[str, dict[str, Any]] = {
    "sam.social": {
        "password": "correct horse",
        "claims": {"roles": ["mash_social_worker"], "agency": "council", "team": "mash-team"},
    },
    "ivy.ig": {
        "password": "battery staple",
        "claims": {"roles": ["ig_officer"], "agency": "council", "team": "ig-team"},
    },
    # a role this council's provider may not grant (the hub's issuer setting says so)
    "rogue": {"password": "x", "claims": {"roles": ["police_researcher"], "agency": "police"}},
}


@dataclass(frozen=True)
class Provider:
    issuer: str


@contextlib.contextmanager
def oidc_provider(redirect_uri: str) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None or not (PROJECT_ROOT / "web" / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("needs Node and `make install` (npm ci in web/) for oidc-provider")
    config = {
        "port": 0,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
        "accounts": USERS,
    }
    with tempfile.TemporaryFile("w+") as errors, _started(node, config, errors) as issuer:
        yield Provider(issuer)


@contextlib.contextmanager
def _started(node: str, config: dict[str, Any], errors: IO[str]) -> Iterator[str]:
    process = subprocess.Popen(
        [node, str(SCRIPT), json.dumps(config)],
        cwd=SCRIPT.parent,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening "):
            errors.seek(0)
            raise RuntimeError(f"oidc-provider did not start: {line} {errors.read()}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
