"""The IG web page in a real browser (headless Chromium, Debian's `chromium` and
`chromium-driver`, driven with Selenium): an IG officer signs in with a token and finds
Ava's subject-access report listing the reads made in this test; other roles are turned
away; forms are CSRF-checked; what the page echoes is escaped; each view is audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from starlette.applications import Starlette
from starlette.routing import Mount

from hub.audit.events import AuditRecord, AuditUnavailable, AuditWriter
from hub.auth import devissuer
from hub.auth.tokens import TokenVerifier
from hub.context import Services
from hub.pages import ig
from hub.policy.engine import PolicyEngine
from hub.reading.records import RecordService
from hub.settings import PROJECT_ROOT
from hub.state import AppState
from hub.store.engine import Store

from .conftest import Hub
from .test_app import RECORD, find_ava, ok
from .test_contacts import CHILD, GLASS, create_for, gql
from .test_ig_reports import WITHHOLD, contact_in_research, event_named

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Loopback only: no background calls to update, sync or safe-browsing services.
QUIET = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in QUIET:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def find(browser: WebDriver, by: str, value: str) -> WebElement:
    """The element, once the page that has it has loaded (a form post navigates)."""
    found: WebElement = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((by, value))
    )
    return found


def every_row(browser: WebDriver) -> list[str]:
    """The report's rows, following its "Next page" links to the end (oldest first)."""
    rows: list[str] = []
    while True:
        table = find(browser, By.ID, "entries")
        rows += [r.text for r in table.find_elements(By.CSS_SELECTOR, "tr.entry")]
        more = browser.find_elements(By.ID, "next")
        if not more:
            return rows
        more[0].click()
        WebDriverWait(browser, 20).until(expected_conditions.staleness_of(table))


def sign_in(browser: WebDriver, hub: Hub, token: str) -> None:
    browser.get(f"{hub.url}/ig/")  # a fresh browser is sent to the login form
    browser.delete_all_cookies()
    browser.get(f"{hub.url}/ig/")
    assert browser.current_url == f"{hub.url}/ig/login"
    find(browser, By.ID, "token").send_keys(token)
    find(browser, By.ID, "sign-in").click()


def test_ig_officer_finds_avas_subject_access_report_listing_this_tests_reads(
    hub: Hub, browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ig, "PAGE_SIZE", 8)  # the report runs to several pages
    child_id = find_ava(hub)
    today = datetime.now(UTC).strftime("%d/%m/%Y")  # dates are shown en-GB
    ok(
        hub.gql(
            "mash_social_worker",
            RECORD,
            {"id": child_id, "purpose": "MASH_RESEARCH", "contactId": hub.contact(child_id)},
        )
    )
    ok(hub.gql("early_help_worker", RECORD, {"id": child_id, "purpose": "EARLY_HELP"}))

    sign_in(browser, hub, hub.token("ig_officer"))
    assert "demo-ig_officer" in find(browser, By.ID, "signed-in").text
    find(browser, By.ID, "subject_access-subject_id").send_keys(child_id)
    find(browser, By.CSS_SELECTOR, "#form-subject_access button").click()

    assert find(browser, By.CSS_SELECTOR, "#report h2").text.startswith("Subject access")
    summary = find(browser, By.ID, "summary").text
    rows = every_row(browser)
    social = [r for r in rows if "demo-mash_social_worker" in r and "MASH_RESEARCH" in r]
    assert any("council" in r and "child" in r and today in r for r in social), rows
    assert any(
        "demo-early_help_worker" in r and "EARLY_HELP" in r and "early_help" in r for r in rows
    ), rows
    # her searches and the two reads; each page view adds one more (IG looked at her)
    assert len(rows) >= int(summary.split()[0]) >= 3
    # The view is audited like the GraphQL report, by id.
    viewed = event_named(hub, "ig subject_access")
    assert viewed["purpose"] == "IG_AUDIT" and viewed["report"]["subject_id"] == child_id
    # The token is in a cookie scripts cannot read, sent to /ig only, same-site only.
    cookie = browser.get_cookie("mash_ig_token")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ig"
    assert "mash_ig_token" not in browser.execute_script("return document.cookie")


def register_rows(browser: WebDriver) -> list[str]:
    table = find(browser, By.ID, "register")
    return [r.text for r in table.find_elements(By.CSS_SELECTOR, "tr.entry")]


def test_ig_officer_reviews_the_break_glass_queue_and_the_timeliness_of_contacts(
    hub: Hub, browser: WebDriver
) -> None:
    ava = find_ava(hub)
    desk = {"team": "police-night-desk", "sub": f"pc-{uuid.uuid4().hex[:8]}"}
    why = "child reported missing at 2am"
    grant = {"child": ava, "code": "MISSING_CHILD", "why": why}
    ok(gql(hub, "police_researcher", GLASS, grant, **desk))
    ok(gql(hub, "police_researcher", CHILD, {"id": ava, "purpose": "BREAK_GLASS"}, **desk))
    contact = create_for(hub, ava)["id"]

    sign_in(browser, hub, hub.token("ig_officer"))
    find(browser, By.ID, "break_glass_review-actor_subject").send_keys(desk["sub"])
    find(browser, By.ID, "break_glass_review-unreviewed_only").click()
    find(browser, By.CSS_SELECTOR, "#form-break_glass_review button").click()

    assert find(browser, By.CSS_SELECTOR, "#report h2").text.startswith("Break-glass review")
    (row,) = register_rows(browser)
    assert desk["sub"] in row and ava in row and why in row and "MISSING_CHILD" in row
    assert find(browser, By.ID, "break_glass_review-unreviewed_only").is_selected()
    viewed = event_named(hub, "ig break_glass_review")
    assert viewed["report"] == {
        "name": "break_glass_review",
        "actor_subject": desk["sub"],
        "unreviewed_only": True,
    }

    find(browser, By.CSS_SELECTOR, "#form-timeliness button").click()
    assert "Median hours to decision" in find(browser, By.ID, "timeliness-summary").text
    assert any(contact in r and "RED" in r for r in register_rows(browser))
    for name, title in (("consent_overrides", "Consent-override"), ("not_shared", "Decisions")):
        browser.get(f"{hub.url}/ig/report/{name}")
        assert find(browser, By.CSS_SELECTOR, "#report h2").text.startswith(title)
        assert find(browser, By.ID, "register").is_displayed()
        assert event_named(hub, f"ig {name}")["report"] == {"name": name}
    find(browser, By.CSS_SELECTOR, "#form-anomalies button").click()
    assert find(browser, By.ID, "anomalies").is_displayed()
    assert "flagged child" in find(browser, By.CSS_SELECTOR, "#form-anomalies h3").text


def test_ig_officer_finds_a_decision_not_to_share_by_the_child_its_contact_is_about(
    hub: Hub, browser: WebDriver
) -> None:
    ava = find_ava(hub)
    officer = {"sub": f"pc-{uuid.uuid4().hex[:8]}", "team": "police-desk"}
    contact = contact_in_research(hub, ava)
    item = f"incident-{uuid.uuid4().hex[:8]}"
    ok(gql(hub, "police_researcher", WITHHOLD, {"item": item, "contact": contact}, **officer))

    sign_in(browser, hub, hub.token("ig_officer"))
    find(browser, By.ID, "not_shared-subject_id").send_keys(ava)
    find(browser, By.ID, "not_shared-actor_subject").send_keys(officer["sub"])
    find(browser, By.CSS_SELECTOR, "#form-not_shared button").click()

    assert find(browser, By.CSS_SELECTOR, "#report h2").text.startswith("Decisions")
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#register th")]
    assert "Contact" in headings and "Children (hub ids)" in headings
    (row,) = register_rows(browser)
    assert item in row and contact in row and ava in row and "PREJUDICE_INVESTIGATION" in row
    assert "live operation" not in row  # the reason stays with the decision
    assert event_named(hub, "ig not_shared")["report"] == {
        "name": "not_shared",
        "subject_id": ava,
        "actor_subject": officer["sub"],
    }


def test_other_roles_and_bad_tokens_are_turned_away_at_the_login(
    hub: Hub, browser: WebDriver
) -> None:
    sign_in(browser, hub, hub.token("mash_manager"))
    assert "information governance roles only" in find(browser, By.ID, "error").text
    assert browser.get_cookie("mash_ig_token") is None

    sign_in(browser, hub, "not.a.token")
    assert "not accepted" in find(browser, By.ID, "error").text
    browser.get(f"{hub.url}/ig/report/subject_access?subject_id={find_ava(hub)}")
    assert browser.current_url == f"{hub.url}/ig/login"


def test_what_the_page_echoes_is_escaped_and_bad_filters_get_a_clear_message(
    hub: Hub, browser: WebDriver
) -> None:
    sign_in(browser, hub, hub.token("ig_officer"))
    find(browser, By.ID, "signed-in")  # the login's redirect has landed before we navigate
    browser.get(f"{hub.url}/ig/report/accessor_activity?actor_subject=%3Cb%3Ebold%3C%2Fb%3E")
    assert browser.find_elements(By.CSS_SELECTOR, "main b") == []
    field = find(browser, By.ID, "accessor_activity-actor_subject")
    assert field.get_attribute("value") == "<b>bold</b>"

    browser.get(f"{hub.url}/ig/report/subject_access?subject_id=Ava%20Thompson")
    error = find(browser, By.ID, "error").text
    assert "not a hub id" in error and "Thompson" not in error


def test_login_and_logout_forms_refuse_requests_without_the_csrf_token(hub: Hub) -> None:
    with httpx.Client(base_url=hub.url) as client:
        form = client.get("/ig/login")
        csrf = form.cookies["mash_ig_csrf"]
        token = hub.token("ig_officer")
        forged = client.post("/ig/login", data={"token": token, "csrf": "guess"})
        other_site = client.post(
            "/ig/login",
            data={"token": token, "csrf": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403 and other_site.status_code == 403
        assert "mash_ig_token" not in client.cookies
        signed_in = client.post("/ig/login", data={"token": token, "csrf": csrf})
        assert signed_in.status_code == 303 and "mash_ig_token" in client.cookies
        assert "SameSite=strict" in signed_in.headers["set-cookie"]
        assert "HttpOnly" in signed_in.headers["set-cookie"]
        assert client.post("/ig/logout", data={"csrf": "guess"}).status_code == 403
        page = client.get("/ig/")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        out = client.post("/ig/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert client.get("/ig/").headers.get("location") == "/ig/login"


class UnavailableAuditStore:
    async def write(self, record: AuditRecord) -> str:
        raise AuditUnavailable("audit event not committed")


async def test_no_report_is_shown_when_its_view_cannot_be_audited(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite3'}")  # never reached: the audit fails
    services = Services(cast(RecordService, None), PolicyEngine(PROJECT_ROOT / "policies"), store)
    state = AppState()
    state.verifier = TokenVerifier([devissuer.issuer_config(tmp_path)])
    state.services = services
    state.writer = cast(AuditWriter, UnavailableAuditStore())
    app = Starlette(routes=[Mount(ig.PATH, routes=ig.routes(state))])
    token = devissuer.mint(tmp_path, "ig_officer")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        cookies={"mash_ig_token": token},
    ) as client:
        page = await client.get("/ig/report/police_s62")
    await store.aclose()
    assert page.status_code == 503
    assert "audit store is unavailable" in page.text and 'id="entries"' not in page.text
