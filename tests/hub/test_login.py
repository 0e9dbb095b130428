"""Signing in: OpenID Connect (authorization code + PKCE) against a real provider started
by the test (oidc-provider on loopback), the session cookie it gives, the explorer page and
its files, and the demo's one-click sign-in. No token ever reaches the browser."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hub.auth import devissuer, session

from .oidc_provider import CLIENT_ID, WebHub

FIND = """query Find($c: PersonSearch!) {
  searchChildren(criteria: $c, purpose: MASH_SCREENING) { id givenName }
}"""
AVA = {"givenName": "Ava", "familyName": "Thompson", "dateOfBirth": "2016-03-14"}


def test_a_social_worker_signs_in_with_pkce_and_the_explorer_runs_her_search_by_session(
    web_hub: WebHub,
) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        assert client.get(f"{web_hub.url}/graphql").url.path == "/auth/login"
        landed = web_hub.sign_in(client, "sam.social")
        assert str(landed.url) == f"{web_hub.url}/graphql" and landed.status_code == 200
        csrf = web_hub.csrf(client)
        found = web_hub.post(client, FIND, {"c": AVA}, **{"X-CSRF-Token": csrf})
        assert found.status_code == 200, found.text
        assert found.json()["data"]["searchChildren"][0]["givenName"] == "Ava"
        page = client.get(f"{web_hub.url}/graphql")
        assert "Signed in as sam.social (mash_social_worker, council)" in page.text


def test_the_authorization_request_uses_pkce_state_and_nonce_and_the_cookie_is_httponly_lax(
    web_hub: WebHub,
) -> None:
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        start = client.get(f"{web_hub.url}/auth/start?issuer=0&next=/graphql")
        assert start.status_code == 303
        asked = parse_qs(urlsplit(start.headers["location"]).query)
        assert asked["code_challenge_method"] == ["S256"] and len(asked["code_challenge"][0]) == 43
        assert asked["response_type"] == ["code"] and asked["client_id"] == [CLIENT_ID]
        assert asked["state"][0] and asked["nonce"][0] and asked["scope"] == ["openid mash"]
        pending = start.headers["set-cookie"]
        assert (
            "HttpOnly" in pending and "Path=/auth" in pending and "samesite=lax" in pending.lower()
        )
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        landed = web_hub.sign_in(client, "sam.social")
        callback = next(r for r in landed.history if r.url.path == "/auth/callback")
        cookie = [
            h for h in callback.headers.get_list("set-cookie") if h.startswith("mash_session=")
        ]
        assert cookie and "HttpOnly" in cookie[0] and "samesite=lax" in cookie[0].lower()
        assert "Max-Age=900" in cookie[0] and "Path=/" in cookie[0]
        # no token in any URL the browser was sent to
        for response in [*landed.history, landed]:
            assert "id_token" not in str(response.url) and "access_token" not in str(response.url)


def test_a_callback_with_another_state_or_a_wrong_password_signs_no_one_in(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        refused = web_hub.sign_in(client, "sam.social", password="guess")
        assert refused.status_code == 401 and "mash_session" not in client.cookies
        client.get(f"{web_hub.url}/auth/start?issuer=0")
        forged = client.get(f"{web_hub.url}/auth/callback?code=abc&state=not-the-state")
        assert forged.status_code == 401 and "started elsewhere" in forged.text
        assert "mash_session" not in client.cookies


def test_a_role_the_issuer_may_not_grant_is_refused_at_sign_in(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        refused = web_hub.sign_in(client, "rogue")
        assert refused.url.path == "/auth/callback" and refused.status_code == 401
        assert "may not grant" in refused.text and "mash_session" not in client.cookies


def test_session_posts_need_the_csrf_token_and_a_same_origin(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        web_hub.sign_in(client, "sam.social")
        csrf = web_hub.csrf(client)
        assert web_hub.post(client, FIND, {"c": AVA}).status_code == 401
        wrong = web_hub.post(client, FIND, {"c": AVA}, **{"X-CSRF-Token": "guess"})
        assert wrong.status_code == 401 and "CSRF" in wrong.text
        elsewhere = web_hub.post(
            client, FIND, {"c": AVA}, **{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 401
        ours = web_hub.post(
            client, FIND, {"c": AVA}, **{"X-CSRF-Token": csrf, "Origin": web_hub.url}
        )
        assert ours.status_code == 200


def test_the_session_cookie_is_no_bearer_token_and_a_bearer_token_is_no_session(
    web_hub: WebHub,
) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        web_hub.sign_in(client, "sam.social")
        cookie = client.cookies["mash_session"]
    as_bearer = httpx.post(
        f"{web_hub.url}/graphql",
        json={"query": FIND, "variables": {"c": AVA}},
        headers={"Authorization": f"Bearer {cookie}"},
    )
    assert as_bearer.status_code == 401
    token = devissuer.mint(web_hub.data_dir, "mash_social_worker")
    as_cookie = httpx.get(f"{web_hub.url}/graphql", cookies={session.COOKIE: token})
    assert as_cookie.status_code == 303 and as_cookie.headers["location"].startswith("/auth/login")


def test_the_demo_signs_in_with_one_click_and_signs_out(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        page = client.get(f"{web_hub.url}/auth/login")
        assert 'id="dev-mash_manager"' in page.text and "Sign in with Test council" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        forged = client.post(f"{web_hub.url}/auth/dev", data={"role": "mash_manager", "csrf": "x"})
        assert forged.status_code == 401 and "mash_session" not in client.cookies
        signed = client.post(
            f"{web_hub.url}/auth/dev", data={"role": "mash_manager", "csrf": csrf.group(1)}
        )
        assert signed.url.path == "/graphql" and "demo-mash_manager" in signed.text
        token = web_hub.csrf(client)
        assert client.post(f"{web_hub.url}/auth/logout", data={"csrf": "x"}).status_code == 401
        out = client.post(f"{web_hub.url}/auth/logout", data={"csrf": token})
        assert out.url.path == "/auth/login" and "signed out" in out.text
        assert client.get(f"{web_hub.url}/graphql").url.path == "/auth/login"


def test_the_explorer_files_and_their_licences_come_from_the_hub(web_hub: WebHub) -> None:
    with httpx.Client(base_url=web_hub.url, timeout=30) as client:
        for name, kind in (("react.js", "javascript"), ("graphiql.css", "css")):
            served = client.get(f"/explorer/static/{name}")
            assert served.status_code == 200 and kind in served.headers["content-type"]
        assert client.get("/explorer/static/..%2Fpackage.json").status_code == 404
        assert client.get("/explorer/static/package.json").status_code == 404
        licences = client.get("/explorer/licences")
        for package in ("react", "react-dom", "graphiql", "@graphiql/plugin-explorer"):
            assert f"<td>{package}</td>" in licences.text
        links = re.findall(r'href="(/explorer/licences/\d+)"', licences.text)
        assert links and all(
            "MIT" in client.get(link).text or "License" in client.get(link).text
            for link in links[:5]
        )
        refused = client.get("/graphql?query={__typename}")
        assert refused.status_code == 400 and "POST" in refused.text


def test_the_explorer_page_has_a_strict_content_security_policy(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        page = web_hub.sign_in(client, "sam.social")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert "unsafe" not in policy and "http" not in policy
    assert "<script>" not in page.text  # no inline script: every script has a src
    assert page.headers["cache-control"] == "no-store"


def test_an_ig_officer_signs_in_to_the_ig_page_through_the_provider(web_hub: WebHub) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        login = client.get(f"{web_hub.url}/ig/")
        assert 'href="/auth/login?next=/ig/"' in login.text
        page = web_hub.sign_in(client, "ivy.ig", then="/ig/")
        assert str(page.url) == f"{web_hub.url}/ig/" and page.status_code == 200
        assert "Signed in as ivy.ig (ig_officer)" in page.text
        report = client.get(f"{web_hub.url}/ig/report/police_s62")
        assert report.status_code == 200
        csrf = client.cookies["mash_ig_csrf"]
        client.post(f"{web_hub.url}/ig/logout", data={"csrf": csrf})
        assert "mash_session" not in client.cookies
        assert client.get(f"{web_hub.url}/ig/").url.path == "/ig/login"


def test_each_request_renews_the_session_cookie(
    web_hub: WebHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        web_hub.sign_in(client, "sam.social")
        csrf = web_hub.csrf(client)
        first = client.cookies["mash_session"]
        monkeypatch.setattr(session, "RENEW_AFTER_S", 0)
        time.sleep(1.1)  # a new iat
        answer = web_hub.post(client, FIND, {"c": AVA}, **{"X-CSRF-Token": csrf})
        renewed = [h for h in answer.headers.get_list("set-cookie") if "mash_session=" in h]
        assert renewed and "HttpOnly" in renewed[0] and client.cookies["mash_session"] != first
        # the same session: its CSRF token carries over
        again = web_hub.post(client, FIND, {"c": AVA}, **{"X-CSRF-Token": csrf})
        assert again.status_code == 200
