"""The manager's page (issue 13, item 7), without a browser: the hub app in process, signed
in through the demo's one-click sign-in. Managers see the queue and the figures as charts;
anyone else gets a 403 page; a bad date gets a message naming the field and the format;
each view is audited like the GraphQL reads it stands for, and shows no child, concern or
referrer."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from .inprocess import App

OPEN = """mutation Open($input: CreateContactInput!) { createContact(input: $input) { id } }"""
PRIVATE = ("Ava", "Thompson", "disclosed domestic abuse", "Head teacher")


async def sign_in(client: httpx.AsyncClient, role: str) -> None:
    """The demo's one-click sign-in (the development issuer), as the sign-in page posts it."""
    client.cookies.clear()
    page = await client.get("/auth/login?next=/mash/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = await client.post(
        "/auth/dev", data={"role": role, "csrf": csrf.group(1), "next": "/mash/"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/mash/"


async def open_contact(app: App, rag: str) -> str:
    answer = await app.client.post(
        "/graphql",
        json={
            "query": OPEN,
            "variables": {
                "input": {
                    "childIds": [app.ava],
                    "rag": rag,
                    "concern": "disclosed domestic abuse at home",
                    "referrer": {"type": "SCHOOL", "name": "Head teacher"},
                }
            },
        },
        headers={"Authorization": f"Bearer {app.token('mash_manager')}"},
    )
    contact: str = answer.json()["data"]["createContact"]["id"]
    return contact


async def test_a_manager_sees_the_queue_and_the_figures_as_charts_and_nothing_private(
    app: App,
) -> None:
    red, green = await open_contact(app, "RED"), await open_contact(app, "GREEN")
    await sign_in(app.client, "mash_manager")

    page = await app.client.get("/mash/")

    assert page.status_code == 200, page.text[:500]
    for chart in ("queue-chart", "timeliness-chart", "referrals-chart", "outcomes-chart"):
        assert f'<svg id="{chart}"' in page.text
    assert '<svg id="agencies-chart"' in page.text and 'id="median-decision"' in page.text
    rows = re.findall(r'<tr class="contact[^"]*">(.*?)</tr>', page.text, re.S)
    assert any(red in r and "RED" in r for r in rows) and any(green in r for r in rows)
    for value in PRIVATE:
        assert value not in page.text, value
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    event, subjects = await app.last_event("mash kpis")
    assert event.purpose == "MASH_SCREENING" and event.outcome == "ok"
    assert sorted(event.root_fields) == ["contactKpis", "contacts"]
    assert subjects[app.ava] == "child"
    decided = {d["class"]: d["decision"] for d in event.policy_decisions}
    assert decided["view_kpis"] == "RELEASED" and decided["see_contact"] == "RELEASED"


async def test_the_period_is_read_en_gb_and_a_bad_date_gets_a_clear_message(app: App) -> None:
    await sign_in(app.client, "mash_manager")

    chosen = await app.client.get("/mash/", params={"from": "01/02/2026", "to": "28/02/2026"})
    bad = await app.client.get("/mash/", params={"from": "02/30/2026"})

    assert chosen.status_code == 200
    assert "Contacts received 01/02/2026 to 28/02/2026" in chosen.text
    assert bad.status_code == 400
    assert "The &#39;from&#39; date is not a date: write it as dd/mm/yyyy" in bad.text
    event, _ = await app.last_event("mash kpis")
    assert (event.outcome, event.error_code) == ("invalid", "BAD_USER_INPUT")


async def test_other_roles_get_a_403_page_and_the_refusal_is_audited(app: App) -> None:
    await sign_in(app.client, "mash_social_worker")

    page = await app.client.get("/mash/")

    assert page.status_code == 403 and "This page is for MASH managers." in page.text
    assert "<svg" not in page.text
    event, subjects = await app.last_event("mash kpis")
    assert (event.outcome, event.error_code, subjects) == ("denied", "FORBIDDEN", {})


async def test_without_a_session_the_page_sends_the_browser_to_sign_in(app: App) -> None:
    app.client.cookies.clear()

    page = await app.client.get("/mash/")

    assert page.status_code == 303
    assert urlsplit(page.headers["location"]).path == "/auth/login"
    assert "next=/mash/" in page.headers["location"]
