"""Nothing personal left behind: in headless Chromium that can resolve no host but
127.0.0.1, a social worker signs in through the OpenID provider, opens the explorer, runs
the saved search for Ava, opens a contact and reads her record in screening (typed
redactions) and research (the detail), each from its saved tab. The page made no request
off its origin, broke no rule of its Content-Security-Policy, and left no name, date of
birth, NHS number or token in the browser's storage or the address bar. Screenshots go to
a temporary folder (printed; `pytest -s` shows where)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from hub.pages.savedops import OPERATIONS

from .oidc_provider import USERS, WebHub
from .test_igweb import CHROMEDRIVER, CHROMIUM, QUIET, find

# What must never stay in the browser: Ava's name, date of birth and NHS number; any token.
PERSONAL = ("Ava", "Thompson", "2016-03-14", "14/03/2016", "9434765919", "943 476 5919")
TOKENS = ("eyJ", "Bearer", "mash_session")
OPEN_CONTACT = OPERATIONS[1][2]
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*QUIET, OFFLINE, "--window-size=1400,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("explorer-screenshots")
    print(f"screenshots in {folder}")
    return folder


def requests_made(browser: WebDriver) -> list[dict[str, Any]]:
    """The requests the browser sent since the last call (Chrome's performance log)."""
    sent = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append(message["params"])
    return sent


def wait_for(browser: WebDriver, script: str, timeout: float = 30) -> Any:
    return WebDriverWait(browser, timeout).until(lambda b: b.execute_script(script))


def response_text(browser: WebDriver) -> str:
    text: str = browser.execute_script(
        "const r = document.querySelector('.graphiql-response .CodeMirror');"
        "return r ? r.CodeMirror.getValue() : '';"
    )
    return text


def run_tab(browser: WebDriver, number: int, variables: dict[str, Any] | None = None) -> Any:
    """Open saved tab `number` (0 = the first), optionally replace its variables, run it and
    return the JSON result."""
    browser.find_elements(By.CSS_SELECTOR, ".graphiql-tab-button")[number].click()
    time.sleep(0.5)  # GraphiQL reads the tab's operation name from its editor, debounced
    if variables is not None:
        browser.execute_script(
            "document.querySelector('.graphiql-editor-tool .CodeMirror')"
            ".CodeMirror.setValue(arguments[0]);",
            json.dumps(variables),
        )
    browser.execute_script(
        "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.setValue('');"
    )
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    wait_for(
        browser,
        "const r = document.querySelector('.graphiql-response .CodeMirror');"
        "return r && r.CodeMirror.getValue().startsWith('{');",
    )
    return json.loads(response_text(browser))


def test_signed_in_through_the_provider_the_explorer_finds_ava_and_leaves_nothing_behind(
    web_hub: WebHub, browser: WebDriver, shots: Path
) -> None:
    # Given a browser that has signed in through the OpenID provider
    browser.get(f"{web_hub.url}/graphql")
    assert urlsplit(browser.current_url).path == "/auth/login"
    find(browser, By.ID, "provider-0").click()
    find(browser, By.ID, "login").send_keys("sam.social")
    find(browser, By.ID, "password").send_keys(USERS["sam.social"]["password"])
    browser.save_screenshot(str(shots / "1-provider-sign-in.png"))
    find(browser, By.ID, "submit").click()
    wait_for(browser, f"return location.href === {json.dumps(web_hub.url + '/graphql')};")

    # When the explorer opens, its docs load, and the saved search runs
    find(browser, By.CSS_SELECTOR, ".graphiql-execute-button")
    assert "sam.social" in find(browser, By.ID, "signed-in").text
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Show Documentation Explorer']").click()
    wait_for(
        browser,
        "return document.querySelector('.graphiql-doc-explorer-content')"
        " && document.body.innerText.includes('Root Types');",
    )
    assert "Error fetching schema" not in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.CSS_SELECTOR, "[aria-label='Show GraphiQL Explorer']").click()
    wait_for(browser, "return document.body.innerText.includes('searchChildren');")
    found = run_tab(browser, 0)
    ava = found["data"]["searchChildren"][0]
    assert ava["givenName"] == "Ava" and ava["dateOfBirth"] == "2016-03-14"
    browser.save_screenshot(str(shots / "2-explorer-find-a-child.png"))
    # and the walk-through's next tabs: a contact about her, her screening and research reads
    contact = run_tab(
        browser, 1, {**OPEN_CONTACT, "input": {**OPEN_CONTACT["input"], "childIds": [ava["id"]]}}
    )
    ids = {"id": ava["id"], "contactId": contact["data"]["createContact"]["id"]}
    screening = run_tab(browser, 2, ids)["data"]["child"]
    assert screening["health"] == {
        "__typename": "Redaction",
        "reason": "STAGE_RESTRICTED",
        "knownToAgency": True,
    }, screening
    browser.save_screenshot(str(shots / "3-explorer-screening-read.png"))
    assert "errors" not in run_tab(browser, 3, {"contactId": ids["contactId"]})
    assert "errors" not in run_tab(browser, 4, {"contactId": ids["contactId"]})
    research = json.dumps(run_tab(browser, 5, ids))
    # in research, with consent, the detail appears (what stays withheld is a typed Redaction)
    assert '"PoliceIncident"' in research and '"HealthEncounter"' in research
    browser.save_screenshot(str(shots / "4-explorer-research-read.png"))
    sent = requests_made(browser)
    opened = max(
        n
        for n, r in enumerate(sent)
        if r["request"]["url"] == f"{web_hub.url}/graphql" and r.get("type") == "Document"
    )
    explorer = sent[opened:]

    # Then every request went to loopback, the explorer's to its own origin only
    for request in sent:
        url = urlsplit(request["request"]["url"])
        assert url.scheme in ("data", "blob") or url.hostname == "127.0.0.1", url
    for request in explorer:
        url = request["request"]["url"]
        assert url.startswith(("data:", "blob:", f"{web_hub.url}/")), url
        # and the query was never in a URL
        for value in PERSONAL:
            assert value not in url and value not in request.get("documentURL", "")
    assert {urlsplit(r["request"]["url"]).path for r in explorer} >= {
        "/graphql",
        "/explorer/static/graphiql.js",
        "/explorer/static/plugin-explorer.js",
    }
    assert browser.current_url == f"{web_hub.url}/graphql"
    # nothing broke the Content-Security-Policy
    console = [e["message"] for e in browser.get_log("browser")]
    assert not [m for m in console if "Content Security Policy" in m], console
    # and the browser's storage holds nothing personal, no token
    stored = browser.execute_script(
        "return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage),"
        " document.cookie]);"
    )
    for value in (*PERSONAL, *TOKENS):
        assert value not in stored, stored
    assert browser.execute_script("return localStorage.length + sessionStorage.length;") == 0
