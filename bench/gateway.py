"""What a federation gateway adds to the showcase read: Hive Gateway (gateway/) in front of
the hub, against the same hub read directly, in the same run.

The read is bench/hub.py's: a MASH social worker's `child(id:, purpose: MASH_RESEARCH,
contactId:)` for Ava on a contact walked as the README walks it (create, research,
consent), every section selected. Directly, the worker is staff at the hub; through the
gateway the same worker comes through the partner system school-nurse-service and sends the
partner's registered text (the federated read: its document id), so the gateway's
trusted-document check and the hub's router-token check, partner rate counting and cost
check are all in the figure (the partner's limits raised so that none refuses a read). The
hub (`mash-hub serve`), the example school nurse subgraph and the gateway each run in their
own process; direct and gateway reads alternate,
one each per sample, so the machine's noise falls on both.
- `direct_p50_ms` / `gateway_p50_ms` (and p99): the same query, to the hub and through the
  gateway; `gateway_added_p50_ms` / `gateway_added_p99_ms`: gateway minus direct.
- `federated_p50_ms`: through the gateway with the partner's `schoolNurse` field added (a
  second subgraph call after the hub's answer).
- `throughput_rps`: reads per second with 1 and 16 concurrent clients, direct and through
  the gateway.

`python -m bench gateway` writes bench/results/gateway.json; `--quick` runs tiny sizes in
seconds (the test suite runs it; its figures mean nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.auth import devissuer
from hub.demo.gateway import (
    GATEWAY_DIR,
    PARTNER_CLIENT,
    PARTNER_NAME,
    ROUTER_CLIENT,
    hub_settings,
    running_gateway,
)
from hub.demo.stack import demo_sources
from hub.partners.trusted import document_id

from .hub import hub_process, load, percentile, read, walk_contact

CLIENTS = (1, 16)
_MANIFEST = GATEWAY_DIR / "trusted-documents" / f"{PARTNER_CLIENT}.json"
BODIES = {op["name"]: op["body"] for op in json.loads(_MANIFEST.read_text())["operations"]}
# The showcase read as registered for the partner (bench.graphql): both legs send its exact
# text, which the gateway takes as registered; the same read with the partner's field, by
# document id: the gateway asks the nurse subgraph after the hub.
RECORD = BODIES["Record"]
FEDERATED_ID = document_id(BODIES["RecordWithSchoolNurse"])
UNLIMITED = 10**9


@dataclass(frozen=True)
class Sizes:
    households: int
    samples: int
    warmup: int
    seconds: float  # per throughput level and endpoint


FULL = Sizes(
    households=300,  # the demo's population
    samples=int(os.environ.get("BENCH_SAMPLES", "300")),
    warmup=30,
    seconds=float(os.environ.get("BENCH_SECONDS", "8")),
)
QUICK = Sizes(households=12, samples=4, warmup=1, seconds=0.3)


async def federated(client: httpx.AsyncClient, variables: dict[str, str]) -> None:
    payload = {"documentId": f"sha256:{FEDERATED_ID}", "variables": variables}
    response = await client.post("/graphql", json=payload)
    body = response.json()
    if (
        response.status_code != 200
        or body.get("errors")
        or "schoolNurse" not in body["data"]["child"]
    ):
        raise RuntimeError(f"federated read answered {response.status_code}: {body.get('errors')}")


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def measure(
    hub: str, gateway: str, token: str, partner_token: str, sizes: Sizes
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    partner = {"Authorization": f"Bearer {partner_token}"}
    limits = httpx.Limits(max_connections=max(CLIENTS) + 4)
    async with (
        httpx.AsyncClient(base_url=hub, headers=headers, timeout=60, limits=limits) as direct,
        httpx.AsyncClient(base_url=gateway, headers=partner, timeout=60, limits=limits) as via,
    ):
        variables = await walk_contact(direct)
        for _ in range(sizes.warmup):
            await read(direct, variables, RECORD)
            await read(via, variables, RECORD)
            await federated(via, variables)
        direct_ms, gateway_ms, federated_ms = [], [], []
        for _ in range(sizes.samples):
            direct_ms.append(await timed(lambda: read(direct, variables, RECORD)))
            gateway_ms.append(await timed(lambda: read(via, variables, RECORD)))
            federated_ms.append(await timed(lambda: federated(via, variables)))
        throughput: dict[str, dict[str, float]] = {"direct": {}, "gateway": {}}
        failed: dict[str, dict[str, int]] = {"direct": {}, "gateway": {}}
        for clients in CLIENTS:
            for name, client in (("direct", direct), ("gateway", via)):
                done, errors = await load(client, variables, clients, sizes.seconds, RECORD)
                throughput[name][str(clients)], failed[name][str(clients)] = done, errors
    figures = {
        "direct_p50_ms": statistics.median(direct_ms),
        "direct_p99_ms": percentile(direct_ms, 99),
        "gateway_p50_ms": statistics.median(gateway_ms),
        "gateway_p99_ms": percentile(gateway_ms, 99),
        "federated_p50_ms": statistics.median(federated_ms),
        "federated_p99_ms": percentile(federated_ms, 99),
    }
    figures["gateway_added_p50_ms"] = figures["gateway_p50_ms"] - figures["direct_p50_ms"]
    figures["gateway_added_p99_ms"] = figures["gateway_p99_ms"] - figures["direct_p99_ms"]
    return {k: round(v, 2) for k, v in figures.items()} | {
        "throughput_rps": throughput,
        "throughput_failed_reads": failed,
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    load_before = [round(x, 2) for x in os.getloadavg()]
    with (
        tempfile.TemporaryDirectory() as tmp,
        demo_sources(Path(tmp), say=lambda _: None, households=sizes.households) as config,
    ):
        data_dir = Path(tmp)
        token = devissuer.mint(data_dir, "mash_social_worker")
        partner_token = devissuer.mint(data_dir, "mash_social_worker", client=PARTNER_CLIENT)
        partner = {"name": PARTNER_NAME, "max_cost": UNLIMITED}
        partner |= {"requests_per_minute": UNLIMITED, "person_requests_per_minute": UNLIMITED}
        env = {
            "MASH_DATA_DIR": str(data_dir),
            "MASH_SOURCES": json.dumps(config),
            "MASH_DEV_ISSUER": "true",
            **hub_settings(),
            "MASH_PARTNER_SYSTEMS": json.dumps({PARTNER_CLIENT: partner}),
        }
        router = devissuer.mint_machine(data_dir, ROUTER_CLIENT)
        with (
            hub_process(env) as (hub, _),
            running_gateway(hub, token, data_dir, router_token=router) as gateway,
        ):
            base = gateway.url.removesuffix("/graphql")
            figures = asyncio.run(measure(hub, base, token, partner_token, sizes))
    return figures | {
        "samples": sizes.samples,
        "throughput_seconds_per_level": sizes.seconds,
        "store": "sqlite",
        "households": sizes.households,
        "gateway": "Hive Gateway 2.15.1 (gateway/package-lock.json)",
        "gateway_path": "a partner's person through a trusted router: the read by its "
        "registered text, the federated read by document id",
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "quick": quick,
    }
