"""A real OpenID provider for the sign-in tests: panva's certified `oidc-provider` (pinned in
web/package-lock.json, installed by `make install`), run by Node on a loopback port with a
test client (authorization code + PKCE) and test users carrying the hub's claims."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
import pytest

from hub.demo import sources as demo_sources
from hub.demo.stack import running_hub
from hub.settings import PROJECT_ROOT, IssuerSetting, Settings

SCRIPT = PROJECT_ROOT / "web" / "oidc-test-provider.mjs"
CLIENT_ID, CLIENT_SECRET = "mash-hub-explorer", "test-client-secret-not-for-production"
# login → password and the claims the hub reads (hub.auth.tokens: roles, agency, team)
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


class WebHub:
    """A hub that trusts the test provider for sign-in (and the dev issuer)."""

    def __init__(self, url: str, issuer: str, data_dir: Path) -> None:
        self.url, self.issuer, self.data_dir = url, issuer, data_dir

    def sign_in(
        self, client: httpx.Client, user: str, password: str | None = None, then: str = "/graphql"
    ) -> httpx.Response:
        """Through the provider's own sign-in form; the last response of the redirects."""
        form = client.get(f"{self.url}/auth/start?issuer=0&next={then}")
        assert urlsplit(str(form.url)).path.startswith("/interaction/"), form.text
        action = re.search(r'action="([^"]+)"', form.text)
        assert action is not None
        secret = USERS[user]["password"] if password is None else password
        return client.post(
            f"{self.issuer}{action.group(1)}", data={"login": user, "password": secret}
        )

    def csrf(self, client: httpx.Client) -> str:
        page = client.get(f"{self.url}/graphql")
        found = re.search(r'name="mash-csrf" content="([^"]+)"', page.text)
        assert page.status_code == 200 and found is not None, page.text[:300]
        return found.group(1)

    def post(
        self, client: httpx.Client, query: str, variables: dict[str, Any], **headers: str
    ) -> httpx.Response:
        return client.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        )


@contextlib.contextmanager
def web_hub_running(
    data_dir: Path, sources_config: dict[str, Any], store: Path
) -> Iterator[WebHub]:
    """The test provider, and a hub on loopback that people sign in to through it (and
    through the dev issuer)."""
    port = demo_sources.free_port()
    with oidc_provider(f"http://127.0.0.1:{port}/auth/callback") as provider:
        login = IssuerSetting(
            issuer=provider.issuer,
            jwks_url=f"{provider.issuer}/jwks",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scopes=("openid", "mash"),
            label="Test council",
            roles=("mash_social_worker", "mash_manager", "ig_officer"),
            agencies=("council",),
        )
        settings = Settings(
            data_dir=data_dir,
            database_url=f"sqlite:///{store}",
            sources=sources_config,
            dev_issuer=True,
            issuers=(login,),
        )
        with running_hub(settings, port=port) as url:
            yield WebHub(url, provider.issuer, data_dir)


@dataclass(frozen=True)
class Provider:
    issuer: str


@contextlib.contextmanager
def oidc_provider(
    redirect_uri: str,
    clients: Sequence[dict[str, Any]] = (),
    resource: str | None = None,
    client_claims: dict[str, dict[str, Any]] | None = None,
) -> Iterator[Provider]:
    """The provider with the explorer's test client and `clients`; with `resource` (the
    hub's audience) it issues JWT access tokens for it, by client credentials too, carrying
    the person's claims or a client's `client_claims`."""
    node = shutil.which("node")
    if node is None or not (PROJECT_ROOT / "web" / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("needs Node and `make install` (npm ci in web/) for oidc-provider")
    config: dict[str, Any] = {
        "port": 0,
        "clients": [
            *clients,
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        ],
        "accounts": USERS,
    }
    if resource is not None:
        config["resource"] = resource
        config["clientClaims"] = client_claims or {}
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
