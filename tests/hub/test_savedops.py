"""The explorer's saved operations are the README's walk-through: each tab is valid against
the schema and, run in order by the roles the README names, each one succeeds."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from graphql import parse, validate

from hub.auth import devissuer
from hub.demo import generator as g
from hub.pages import savedops

from .oidc_provider import WebHub

# The showcase family (DOMAIN.md §6) as the demo generates it: names, dates of birth (as
# written in ISO and en-GB), NHS numbers (with and without spaces), addresses and postcodes.
_DOBS = (g.AVA_DOB, g.NOAH_DOB, g.JADE_DOB, g.LIAM_DOB)
_NHS = (g.AVA_NHS, g.NOAH_NHS, g.JADE_NHS, g.LIAM_NHS)
FAMILY = (
    "Ava",
    "Thompson",
    "Jade",
    "Noah",
    "Carter",
    "Liam",
    *(d.isoformat() for d in _DOBS),
    *(d.strftime("%d/%m/%Y") for d in _DOBS),
    *_NHS,
    *(f"{n[:3]} {n[3:6]} {n[6:]}" for n in _NHS),
    g.SHOWCASE_ADDRESS,
    g.SHOWCASE_POSTCODE,
    g.SHOWCASE_POSTCODE.replace(" ", ""),
    g.SHOWCASE_PREVIOUS_ADDRESS,
    g.SHOWCASE_PREVIOUS_POSTCODE,
    g.EX_PARTNER_POSTCODE,
)
# who runs each tab (README: Try it)
ROLES = (
    "mash_social_worker",
    "mash_social_worker",
    "mash_social_worker",
    "mash_social_worker",
    "mash_social_worker",
    "mash_social_worker",
    "mash_manager",
    "mash_manager",
    "police_researcher",
    "police_researcher",
)


def test_every_saved_operation_is_valid_against_the_schema() -> None:
    from schema import schema

    tabs = savedops.tabs()
    assert len(tabs) == len(ROLES)
    for tab in tabs:
        assert validate(schema._schema, parse(tab["query"])) == [], tab["query"]
        assert json.loads(tab["variables"])


def test_the_saved_operations_run_in_order_walk_the_readme_through_and_log_nothing_personal(
    web_hub: WebHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        web_hub.sign_in(browser, "sam.social")
    ids: dict[str, str] = {}

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return {savedops.CHILD_ID: ids.get("child"), savedops.CONTACT_ID: ids.get("contact")}.get(
            value, value
        )

    for (title, query, variables), role in zip(savedops.OPERATIONS, ROLES, strict=True):
        token = devissuer.mint(web_hub.data_dir, role)
        answer = httpx.post(
            f"{web_hub.url}/graphql",
            json={"query": query, "variables": fill(variables)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        assert "errors" not in answer, (title, answer)
        data = answer["data"]
        if "searchChildren" in data:
            ids["child"] = data["searchChildren"][0]["id"]
        if "createContact" in data:
            ids["contact"] = data["createContact"]["id"]
    assert data["child"]["sources"]  # the break-glass read
    # the hub's logs of the walk-through name no one in Ava's family
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "signed in through" in logged  # the hub's log records are captured here
    for value in FAMILY:
        assert value not in logged, value
