"""The HTTP plumbing every HTTP adapter shares: connection pool bounds from configuration."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.adult_social_care import AdultSocialCareAdapter
from adapters.base import SourceMisconfigured
from adapters.health import HealthAdapter
from adapters.http import HttpSettings

ASC = {"url": "http://127.0.0.1:9/api/v1", "client_id": "c", "client_secret": "s"}
FHIR = {"url": "http://127.0.0.1:9/fhir"}


def _pool_bounds(adapter: HealthAdapter | AdultSocialCareAdapter) -> tuple[int, int]:
    pool = adapter._http.client._transport._pool  # httpcore's pool: what httpx enforces
    return pool._max_connections, pool._max_keepalive_connections


@pytest.mark.parametrize(
    "make",
    [
        lambda c: HealthAdapter.from_config({**FHIR, **c}),
        lambda c: AdultSocialCareAdapter.from_config({**ASC, **c}),
    ],
    ids=["health", "adult_social_care"],
)
async def test_http_adapters_bound_their_connection_pool(make: Any) -> None:
    default, configured = make({}), make({"max_connections": 4, "max_keepalive": 2})
    try:
        assert _pool_bounds(default) == (20, 10), "not httpx's default of 100 per source"
        assert _pool_bounds(configured) == (4, 2)
    finally:
        await default.aclose()
        await configured.aclose()


def test_keepalive_defaults_to_no_more_than_the_connections() -> None:
    settings = HttpSettings.from_config({**FHIR, "max_connections": 3}, "health")
    assert (settings.max_connections, settings.max_keepalive) == (3, 3)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_connections": 0},
        {"max_connections": "many"},
        {"max_keepalive": -1},
        {"max_connections": 2, "max_keepalive": 5},
    ],
)
def test_connection_limits_out_of_range_are_misconfigured(limits: dict[str, Any]) -> None:
    with pytest.raises(SourceMisconfigured):
        HttpSettings.from_config({**FHIR, **limits}, "health")
