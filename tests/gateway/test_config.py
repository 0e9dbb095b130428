"""The gateway's configuration forwards exactly the hub's three headers, to the hub only;
and the gateway tests fail, not skip, when Node's packages are not installed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hub.demo import gateway
from hub.demo.gateway import GATEWAY_DIR, GatewayMissing, require_installed

# Calls the configuration's own hook, as Hive Gateway does, with a client request.
HOOK = """
import { gatewayConfig } from './gateway.config.mjs';
const request = new Request('http://gateway/graphql', { headers: {
  Authorization: 'Bearer t', 'X-Purpose-Of-Use': 'MASH_RESEARCH', 'X-Contact-Id': 'c-1',
  Cookie: 'session=s', 'X-Request-Id': 'r-1', 'X-Forwarded-For': '10.0.0.1', Accept: '*/*',
} });
const hook = gatewayConfig.propagateHeaders.fromClientToSubgraphs;
console.log(JSON.stringify({
  hub: await hook({ request, subgraphName: 'hub' }),
  nurse: await hook({ request, subgraphName: 'nurse' }),
}));
"""


def test_gateway_forwards_exactly_authorization_purpose_and_contact_to_the_hub_only() -> None:
    done = subprocess.run(
        [require_installed(), "--input-type=module", "-e", HOOK],
        cwd=GATEWAY_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "hub": {
            "authorization": "Bearer t",
            "x-purpose-of-use": "MASH_RESEARCH",
            "x-contact-id": "c-1",
        },
        "nurse": {},
    }


def test_missing_gateway_packages_fail_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "HIVE_GATEWAY", tmp_path / "node_modules/.bin/hive-gateway")
    with pytest.raises(GatewayMissing, match="run `make install`"):
        require_installed()
