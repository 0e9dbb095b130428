"""Per-client limits (issue 14 item 6), measured by a small load test against a hub that
trusts the real OpenID provider: a burst over a partner system's rate gets 429 with
Retry-After and the next window passes; a person through the partner's client has a rate of
their own; a document over the cost limit is refused naming its cost and the limit. Every
refusal is audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hub.partners.limits import RateLimiter

from .conftest import FakeContacts
from .partner_stack import EPR_NAME, PartnerStack, doc_id, partner_stack, registered

CLIENT_LIMIT, PERSON_LIMIT, WINDOW_S, MAX_COST = 6, 3, 2.0, 45
FIND = {"criteria": {"nhsNumber": "9434765919"}, "purpose": "MASH_SCREENING"}


@pytest.fixture(scope="module")
def stack(
    demo_data: Any,
    source_config: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    fake_contacts: FakeContacts,
) -> Iterator[PartnerStack]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'hub.sqlite3'}"
    with partner_stack(
        demo_data,
        source_config,
        url,
        partner_requests_per_minute=CLIENT_LIMIT,
        partner_person_requests_per_minute=PERSON_LIMIT,
        partner_rate_window_s=WINDOW_S,
        partner_max_cost=MAX_COST,
    ) as running:
        yield running


def find_child() -> dict[str, Any]:
    """A registered operation costing 41 (1 + 10 matches x 4 fields): within MAX_COST."""
    return {"documentId": doc_id(registered()["PartnerFindChild"]), "variables": FIND}


async def burst(stack: PartnerStack, token: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{stack.url}/graphql",
                    json=find_child(),
                    headers={"Authorization": f"Bearer {token}"},
                )
                for _ in range(n)
            )
        )


def test_a_burst_over_the_client_rate_gets_429_with_retry_after_and_the_next_window_passes(
    stack: PartnerStack,
) -> None:
    token = stack.machine_token()
    time.sleep(WINDOW_S)  # a fresh window
    responses = asyncio.run(burst(stack, token, 10))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * CLIENT_LIMIT + [429] * (10 - CLIENT_LIMIT)
    limited = [r for r in responses if r.status_code == 429]
    for response in limited:
        assert response.headers["Retry-After"] in ("1", "2")
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["limit"] == CLIENT_LIMIT
    events = stack.events()[-10:]
    refused = [e for e in events if e["errorCode"] == "RATE_LIMITED"]
    assert len(refused) == 10 - CLIENT_LIMIT
    assert all(e["outcome"] == "denied" and e["clientSystem"] == EPR_NAME for e in refused)
    # the next window
    time.sleep(int(limited[0].headers["Retry-After"]))
    assert stack.post(token, find_child()).status_code == 200


def test_a_person_through_the_partner_client_has_a_rate_of_their_own(
    stack: PartnerStack,
) -> None:
    token = stack.person_token("sam.social")
    time.sleep(WINDOW_S)
    statuses = [stack.post(token, find_child()).status_code for _ in range(PERSON_LIMIT + 2)]
    assert statuses == [200] * PERSON_LIMIT + [429, 429]
    last = stack.events()[-1]
    assert (last["actorSubject"], last["errorCode"]) == ("sam.social", "RATE_LIMITED")


def test_a_document_over_the_cost_limit_is_refused_naming_its_cost_and_the_limit(
    stack: PartnerStack,
) -> None:
    token = stack.machine_token()
    time.sleep(WINDOW_S)
    flags = {"id": "any", "purpose": "MASH_SCREENING"}
    # PartnerChildFlags: child 1 + id 1 + flags 4 + four sections of 6 + sources 1 + 10 x 2
    body = {"documentId": doc_id(registered()["PartnerChildFlags"]), "variables": flags}
    response = stack.post(token, body)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 51, "limit": MAX_COST}
    assert "51" in error["message"] and str(MAX_COST) in error["message"]
    last = stack.events()[-1]
    assert (last["outcome"], last["errorCode"]) == ("denied", "QUERY_TOO_COSTLY")


def test_the_rate_limiter_counts_fixed_windows_and_says_when_the_next_opens() -> None:
    now = [100.0]
    limiter = RateLimiter(60.0, clock=lambda: now[0])
    assert [limiter.hit("k", 2) for _ in range(2)] == [None, None]
    now[0] += 20.5
    assert limiter.hit("k", 2) == 40  # ceil(39.5)
    assert limiter.hit("other", 2) is None  # keys are counted apart
    now[0] += 39.5
    assert limiter.hit("k", 2) is None
