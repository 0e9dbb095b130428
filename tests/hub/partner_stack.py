"""A partner system's world for the tests: the real OpenID provider (tests/hub/oidc_provider.py)
issuing JWT access tokens for the hub — client credentials for the partner's own token, and
authorization code with PKCE for a person signing in through the partner's client — and a
hub on loopback that trusts it and knows the partner system by its client id."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from hub.auth import devissuer
from hub.demo import sources as demo_sources
from hub.demo.stack import running_hub
from hub.settings import PROJECT_ROOT, IssuerSetting, PartnerSystem, Settings

from .oidc_provider import USERS, oidc_provider

RESOURCE = "https://mash-hub.test"  # the hub's audience: a resource indicator is a URI
EPR, EPR_SECRET = "northshire-epr", "epr-secret-not-for-production"
EPR_NAME = "Northshire NHS Trust EPR"
STRANGER, STRANGER_SECRET = "stranger-app", "stranger-secret-not-for-production"
# Never served: the authorization code is read from the provider's redirect to it.
EPR_REDIRECT = "http://127.0.0.1:9/epr/callback"
# What the EPR's own token claims, to show that a machine token's claims count for nothing.
EPR_CLAIMS = {"roles": ["mash_manager"], "agency": "police", "team": "mash-team"}
MANIFEST = PROJECT_ROOT / "gateway" / "trusted-documents" / f"{EPR}.json"

CLIENTS = [
    {
        "client_id": EPR,
        "client_secret": EPR_SECRET,
        "redirect_uris": [EPR_REDIRECT],
        "grant_types": ["authorization_code", "client_credentials"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    },
    {  # a client the provider knows but the hub does not count as a partner system
        "client_id": STRANGER,
        "client_secret": STRANGER_SECRET,
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "response_types": [],
        "token_endpoint_auth_method": "client_secret_basic",
    },
]

EVENTS = """query Audit($first: Int, $after: String) { auditEvents(first: $first, after: $after) {
  pageInfo { endCursor hasNextPage }
  edges { node { id actorSubject actorRoles client clientSystem actorKind operationName
                 outcome errorCode subjects queryHash } } } }"""


def registered() -> dict[str, str]:
    """The EPR's registered operations: name -> body."""
    manifest = json.loads(MANIFEST.read_text())
    return {op["name"]: op["body"] for op in manifest["operations"]}


def doc_id(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class PartnerStack:
    url: str
    issuer: str
    data_dir: Path

    def machine_token(self, client: str = EPR, secret: str = EPR_SECRET) -> str:
        """The partner's own token: OAuth 2.0 client credentials for the hub's resource."""
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "mash", "resource": RESOURCE},
            auth=(client, secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def person_token(self, user: str) -> str:
        """A person's access token issued to the EPR's client (authorization code + PKCE,
        through the provider's own sign-in form)."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        params = {
            "client_id": EPR,
            "response_type": "code",
            "redirect_uri": EPR_REDIRECT,
            "scope": "openid mash",
            "resource": RESOURCE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
        }
        with httpx.Client(follow_redirects=False, timeout=10) as client:
            page = _follow(client, client.get(f"{self.issuer}/auth", params=params))
            action = re.search(r'action="([^"]+)"', page.text)
            assert action is not None, page.text[:300]
            form = {"login": user, "password": USERS[user]["password"]}
            last = _follow(client, client.post(f"{self.issuer}{action.group(1)}", data=form))
            location = urljoin(str(last.url), last.headers["location"])
            assert location.startswith(EPR_REDIRECT), location
            code = parse_qs(urlsplit(location).query)["code"][0]
            token = client.post(
                f"{self.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": EPR_REDIRECT,
                    "code_verifier": verifier,
                    "resource": RESOURCE,
                },
                auth=(EPR, EPR_SECRET),
            )
        assert token.status_code == 200, token.text
        return str(token.json()["access_token"])

    def post(self, token: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def staff(self, role: str, query: str, variables: dict[str, Any]) -> httpx.Response:
        """Staff using the hub directly, through the dev issuer (no partner client)."""
        return self.post(
            devissuer.mint(self.data_dir, role), {"query": query, "variables": variables}
        )

    def events(self) -> list[dict[str, Any]]:
        """Every audit event, oldest first (the listings' own left out)."""
        out: list[dict[str, Any]] = []
        after = None
        while True:
            response = self.staff("ig_officer", EVENTS, {"first": 200, "after": after})
            assert response.status_code == 200, response.text
            page = response.json()["data"]["auditEvents"]
            out += [e["node"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return [e for e in out if e["operationName"] != "Audit"]
            after = page["pageInfo"]["endCursor"]


def _follow(client: httpx.Client, response: httpx.Response) -> httpx.Response:
    """Follow the provider's own redirects; stop at a page or at the EPR's redirect URI."""
    while response.is_redirect:
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(EPR_REDIRECT):
            return response
        response = client.get(location)
    return response


@contextlib.contextmanager
def partner_stack(
    data_dir: Path, sources: dict[str, Any], database_url: str, **settings: Any
) -> Iterator[PartnerStack]:
    """The provider and a hub that trusts it (and the dev issuer, for staff and IG) with the
    EPR as a partner system; `settings` override the hub's (e.g. its partner limits)."""
    with oidc_provider(
        "http://127.0.0.1:9/unused", CLIENTS, resource=RESOURCE, client_claims={EPR: EPR_CLAIMS}
    ) as provider:
        issuer = IssuerSetting(
            issuer=provider.issuer,
            audience=RESOURCE,
            jwks_url=f"{provider.issuer}/jwks",
            roles=("mash_social_worker", "mash_manager", "ig_officer"),
            agencies=("council",),
        )
        hub_settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            sources=sources,
            dev_issuer=True,
            issuers=(issuer,),
            partner_systems={EPR: PartnerSystem(name=EPR_NAME)},
            **settings,
        )
        with running_hub(hub_settings, port=demo_sources.free_port()) as url:
            yield PartnerStack(url, provider.issuer, data_dir)
