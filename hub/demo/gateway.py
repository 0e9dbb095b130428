"""Run the federation gateway of gateway/ in front of a hub: the example school nurse
subgraph and Hive Gateway, as Node processes on loopback, the supergraph composed from the
running hub's own `_service` SDL. Used by the gateway tests and `python -m bench gateway`;
`make gateway` starts the same parts with gateway/run.sh."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..settings import PROJECT_ROOT
from .sources import free_port

GATEWAY_DIR = PROJECT_ROOT / "gateway"
HIVE_GATEWAY = GATEWAY_DIR / "node_modules" / ".bin" / "hive-gateway"


class GatewayMissing(RuntimeError):
    """Node or the gateway's packages are not installed: run `make install`."""


class CompositionFailed(RuntimeError):
    """The compose script reported composition errors or hints (its message lists them)."""


@dataclass(frozen=True)
class Gateway:
    url: str  # the gateway's GraphQL endpoint
    nurse_url: str  # the example partner subgraph's
    supergraph: Path


def require_installed() -> str:
    """The `node` executable, once the gateway's packages are known to be installed."""
    node = shutil.which("node")
    if node is None:
        raise GatewayMissing("node is not on PATH (Node 20 is needed for gateway/)")
    if not HIVE_GATEWAY.exists():
        raise GatewayMissing(f"{HIVE_GATEWAY} is missing: run `make install` (npm ci in gateway/)")
    return node


def compose(*args: str, token: str | None = None) -> str:
    """Run gateway/compose.mjs with `args`; returns what it printed (the supergraph unless
    `--out` is given). A token, when given, is the one the hub's `_service` query carries."""
    env = {**os.environ, **({"MASH_HUB_TOKEN": token} if token else {})}
    done = subprocess.run(
        [require_installed(), str(GATEWAY_DIR / "compose.mjs"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if done.returncode != 0:
        raise CompositionFailed(done.stderr.strip() or f"compose.mjs exited {done.returncode}")
    return done.stdout


@contextlib.contextmanager
def running_gateway(hub_url: str, token: str, work_dir: Path) -> Iterator[Gateway]:
    """Start the school nurse subgraph and Hive Gateway in front of the hub at `hub_url`
    (its base URL); `token` is any hub token, for the `_service` query. Logs go to
    `work_dir`; both processes are stopped on exit."""
    node = require_installed()
    nurse_port, gateway_port = free_port(), free_port()
    nurse_url = f"http://127.0.0.1:{nurse_port}/graphql"
    supergraph = work_dir / "supergraph.graphql"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        nurse = _start([node, "nurse/server.mjs", "--port", str(nurse_port)], work_dir / "nurse")
        processes.append(nurse)
        _wait_until_up(nurse_url, nurse, post=True)
        compose(
            "--hub-service",
            f"--hub-url={hub_url}/graphql",
            f"--nurse-url={nurse_url}",
            f"--out={supergraph}",
            token=token,
        )
        command = [node, str(HIVE_GATEWAY), "supergraph", str(supergraph)]
        command += ["-c", "gateway.config.mjs", "--host", "127.0.0.1", "--port", str(gateway_port)]
        gateway = _start(command, work_dir / "gateway")
        processes.append(gateway)
        base = f"http://127.0.0.1:{gateway_port}"
        _wait_until_up(f"{base}/readiness", gateway)
        yield Gateway(f"{base}/graphql", nurse_url, supergraph)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(command: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.with_suffix(".log").open("wb") as out:
        return subprocess.Popen(command, cwd=GATEWAY_DIR, stdout=out, stderr=subprocess.STDOUT)


def _wait_until_up(
    url: str, process: subprocess.Popen[bytes], post: bool = False, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            response = (
                httpx.post(url, json={"query": "{ __typename }"}, timeout=2)
                if post
                else httpx.get(url, timeout=2)
            )
            if response.status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")
