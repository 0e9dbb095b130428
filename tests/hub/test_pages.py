"""The manager's page and the IG lookup in a real browser (issue 13, items 7 and 8): in
headless Chromium that can resolve no host but 127.0.0.1, a MASH manager signs in through
the demo's one-click sign-in and sees the front door's charts; an IG officer finds Ava's
hub id by NHS number and by name and en-GB date of birth and opens her subject access
report with its chart. No request left the hub's origin; nothing broke the pages'
Content-Security-Policy. Screenshots go to a temporary folder (`pytest -s` shows where)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from hub.auth import devissuer

from .oidc_provider import WebHub
from .test_explorer import browser, requests_made, wait_for
from .test_igweb import find

__all__ = ["browser"]  # the offline browser fixture, shared with the explorer's test

FIND = """query Find($c: PersonSearch!) {
  searchChildren(criteria: $c, purpose: MASH_SCREENING) { id }
}"""
OPEN = """mutation Open($input: CreateContactInput!) { createContact(input: $input) { id } }"""
AVA = {"givenName": "Ava", "familyName": "Thompson", "dateOfBirth": "2016-03-14"}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pages-screenshots")
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def ava(web_hub: WebHub) -> Iterator[str]:
    """Ava's hub id, found by a social worker's search, and a RED contact about her."""

    def gql(role: str, query: str, variables: dict[str, object]) -> dict[str, object]:
        token = devissuer.mint(web_hub.data_dir, role)
        answer = httpx.post(
            f"{web_hub.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).json()
        assert "errors" not in answer, answer
        data: dict[str, object] = answer["data"]
        return data

    found = gql("mash_social_worker", FIND, {"c": AVA})["searchChildren"]
    assert isinstance(found, list)
    child: str = found[0]["id"]
    concern = {"type": "SCHOOL", "name": "Head teacher"}
    contact = {"childIds": [child], "rag": "RED", "concern": "a concern", "referrer": concern}
    gql("mash_manager", OPEN, {"input": contact})
    yield child


def dev_sign_in(browser: WebDriver, hub: WebHub, page: str, role: str) -> None:
    """Open `page` afresh: sent to sign in, one click as `role`, and back on the page."""
    browser.get(f"{hub.url}/auth/login")
    browser.delete_all_cookies()
    browser.get(f"{hub.url}{page}")
    if urlsplit(browser.current_url).path == "/ig/login":  # it also takes a pasted token
        submit(browser, "sign-in-idp")
    assert urlsplit(browser.current_url).path == "/auth/login"
    submit(browser, f"dev-{role}")
    wait_for(browser, f"return location.href === {json.dumps(hub.url + page)};")


def submit(browser: WebDriver, element_id: str) -> None:
    """Click a form's button and wait for the page it loads (not the one still showing)."""
    wait_for(browser, "return document.readyState === 'complete';")
    page = browser.find_element(By.TAG_NAME, "html")
    # Clicked from the page's own script: a WebDriver click locates the node through the
    # inspector first, and a document swapped in between fails it ("Node with given id does
    # not belong to the document"), which CI once hit.
    click = "const e = document.getElementById(arguments[0]); if (e) e.click(); return !!e;"
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(click, element_id))
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(page))
    wait_for(browser, "return document.readyState === 'complete';")


def off_origin(browser: WebDriver, hub: WebHub) -> list[str]:
    urls = [r["request"]["url"] for r in requests_made(browser)]
    return [u for u in urls if not u.startswith((f"{hub.url}/", "data:", "blob:"))]


def csp_broken(browser: WebDriver) -> list[str]:
    console = [e["message"] for e in browser.get_log("browser")]
    return [m for m in console if "Content Security Policy" in m]


def test_a_manager_signs_in_and_sees_the_front_doors_queue_and_figures_as_charts(
    web_hub: WebHub, browser: WebDriver, shots: Path, ava: str
) -> None:
    requests_made(browser)  # what earlier tests sent is theirs

    dev_sign_in(browser, web_hub, "/mash/", "mash_manager")

    assert "demo-mash_manager" in find(browser, By.ID, "signed-in").text
    for chart in ("queue-chart", "timeliness-chart", "outcomes-chart", "agencies-chart"):
        svg = find(browser, By.ID, chart)
        assert svg.is_displayed() and svg.size["width"] > 100, chart
    assert browser.find_elements(By.CSS_SELECTOR, "#queue-chart rect.bar-red")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#queue tr.contact")]
    assert any("RED" in r for r in rows), rows
    assert "Ava" not in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "1-manager-page-queue.png"))
    browser.execute_script("document.getElementById('figures').scrollIntoView();")
    browser.save_screenshot(str(shots / "2-manager-page-figures.png"))
    find(browser, By.ID, "from").send_keys("01/01/2020")
    submit(browser, "show-period")
    wait_for(browser, "return document.body.innerText.includes('Contacts received 01/01/2020');")
    assert off_origin(browser, web_hub) == []
    assert csp_broken(browser) == []


def test_ig_finds_ava_by_nhs_number_and_by_name_and_opens_her_report_with_its_chart(
    web_hub: WebHub, browser: WebDriver, shots: Path, ava: str
) -> None:
    requests_made(browser)
    dev_sign_in(browser, web_hub, "/ig/", "ig_officer")

    find(browser, By.ID, "nhs_number").send_keys("943 476 5919")
    submit(browser, "find-subject")
    by_number = [
        e.text for e in find(browser, By.ID, "found-ids").find_elements(By.TAG_NAME, "code")
    ]
    browser.save_screenshot(str(shots / "3-ig-lookup-by-nhs-number.png"))
    find(browser, By.ID, "given_name").send_keys("Ava")
    find(browser, By.ID, "family_name").send_keys("Thompson")
    find(browser, By.ID, "date_of_birth").send_keys("14/03/2016")
    submit(browser, "find-subject")
    by_name = [e.text for e in find(browser, By.ID, "found-ids").find_elements(By.TAG_NAME, "code")]
    found_text = find(browser, By.ID, "found").text
    browser.save_screenshot(str(shots / "4-ig-lookup-by-name.png"))

    assert by_number == [ava] and by_name == [ava]
    for value in ("Thompson", "14/03/2016", "9434765919", "943 476 5919"):
        assert value not in found_text  # the ids only, nothing typed shown back
    assert find(browser, By.ID, "nhs_number").get_attribute("value") == ""

    find(browser, By.CSS_SELECTOR, "#found-ids a.subject-report").click()
    assert find(browser, By.CSS_SELECTOR, "#report h2").text.startswith("Subject access")
    chart = find(browser, By.ID, "accesses-chart")
    assert chart.is_displayed() and browser.find_elements(By.CSS_SELECTOR, "#accesses-chart rect")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#entries tr.entry")]
    assert any("SAR_RESPONSE" in r for r in rows), rows  # the lookups are in her report
    assert any("/20" in r for r in rows) and not any("-20" in r[:10] for r in rows)  # en-GB
    browser.execute_script("document.getElementById('report').scrollIntoView();")
    browser.save_screenshot(str(shots / "5-ig-subject-access-report.png"))
    assert off_origin(browser, web_hub) == []
    assert csp_broken(browser) == []
