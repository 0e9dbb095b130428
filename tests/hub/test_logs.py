"""The hub's logs are JSON lines that name their request and audit event, and hold no
query string, variable or returned value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from hub.auth import devissuer
from hub.demo import sources


def test_serve_logs_json_lines_naming_the_request_and_its_audit_event(tmp_path: Path) -> None:
    port = sources.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    env |= {"MASH_DATA_DIR": str(tmp_path), "MASH_DEV_ISSUER": "true"}
    log_file = (tmp_path / "hub.log").open("w")
    hub = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        sources.wait_until_up(f"{base}/readyz", timeout=60, process=hub)
        token = devissuer.mint(tmp_path, "mash_social_worker")
        query = (
            '{ searchChildren(criteria: {familyName: "Thompson"}, purpose: MASH_SCREENING) { id } }'
        )
        answer = httpx.post(
            f"{base}/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {token}", "X-Request-Id": "complaint-0042"},
            timeout=30,
        )
        assert answer.status_code == 200
        assert answer.headers["x-request-id"] == "complaint-0042"
        event_id = answer.headers["x-audit-event-id"]
        # a request id that is not an id (free text, too long) is replaced, not echoed
        other = httpx.get(f"{base}/healthz", headers={"X-Request-Id": "Ava Thompson"}, timeout=10)
        assert other.headers["x-request-id"] != "Ava Thompson"
        httpx.get(f"{base}/graphql?query=%7BThompson%7D", timeout=10)
    finally:
        hub.terminate()
        hub.wait(timeout=20)
        log_file.close()
    lines = [json.loads(line) for line in (tmp_path / "hub.log").read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    [access] = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and "POST /graphql" in line["message"]
    ]
    assert access["request_id"] == "complaint-0042" and access["audit_event_id"] == event_id
    text = json.dumps(lines)
    assert "Thompson" not in text and "Ava" not in text
    assert any("GET /graphql?…" in line["message"] for line in lines)
