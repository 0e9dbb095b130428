"""docker-compose.yml, written from the sources' declarations.

The compose file wires one service per HTTP demo source and one database per SQL source on
the PostgreSQL server; which sources there are is the adapters' declarations
(`SourceDeclaration.demo`), so the file is generated, like the SDL, rather than edited by
hand when a source is added. `python -m hub.demo.compose` rewrites it; `--check` exits 1 when
the checked-in file differs (a test runs the check).
"""

from __future__ import annotations

import argparse
import json
import sys

from adapters import declarations
from adapters.base import SourceDeclaration

from ..settings import PROJECT_ROOT

COMPOSE_PATH = PROJECT_ROOT / "docker-compose.yml"
PG = "postgresql://postgres:mash@postgres:5432"
FIRST_PORT = 8081
# The monitoring profile: no source in it.
MONITORING = (
    "  # Monitoring, on request: `docker compose --profile monitoring up`. Prometheus scrapes the",
    "  # hub and evaluates docker/prometheus/alerts.yml; Grafana shows "
    "docker/grafana/mash-hub.json.",
    "  prometheus:",
    "    image: prom/prometheus:v2.42.0",
    '    profiles: ["monitoring"]',
    "    volumes:",
    "      - ./docker/prometheus:/etc/prometheus:ro",
    "    ports:",
    '      - "127.0.0.1:9090:9090"',
    "    depends_on:",
    "      - hub",
    "",
    "  grafana:",
    "    image: grafana/grafana:10.4.2",
    '    profiles: ["monitoring"]',
    "    volumes:",
    "      - ./docker/grafana/provisioning:/etc/grafana/provisioning:ro",
    "      - ./docker/grafana/mash-hub.json:/var/lib/grafana/dashboards/mash-hub.json:ro",
    "    ports:",
    '      - "127.0.0.1:3000:3000"',
    "    depends_on:",
    "      - prometheus",
    "",
)


def _http() -> list[SourceDeclaration]:
    return [d for d in declarations() if d.demo.server is not None]


def _sql() -> list[SourceDeclaration]:
    return [d for d in declarations() if d.demo.server is None]


def service(d: SourceDeclaration) -> str:
    """The compose service of an HTTP demo source."""
    return f"{d.demo.store.replace('_', '-')}-source"


def sources_config() -> dict[str, dict[str, object]]:
    """The hub's `MASH_SOURCES` in the compose deployment."""
    config: dict[str, dict[str, object]] = {}
    for d in _sql():
        config[d.source.value] = {"url": f"{PG}/{d.demo.store}"}
    for port, d in enumerate(_http(), FIRST_PORT):
        entry: dict[str, object] = {"url": f"http://{service(d)}:{port}/{d.demo.base_path}"}
        if d.demo.options_file:  # written by the seed to the shared volume
            entry["options"] = {"credentials_file": f"/data/sources/{d.demo.options_file}"}
        config[d.source.value] = entry
    return config


def compose() -> str:
    """The compose file's text."""
    sql, http = _sql(), _http()
    lines = [
        "# Multi-container deployment: the hub against PostgreSQL, with the demo source systems.",
        "# Generated from the sources' declarations by `python -m hub.demo.compose`: do not edit.",
        "# SQL sources are databases on the same PostgreSQL server here; HTTP sources run their",
        "# demo servers.",
        "x-hub-image: &hub-image",
        "  build: .",
        "  image: mash-hub:latest",
        "  volumes:",
        "    - demo-data:/data",
        "  environment: &demo-env",
        "    MASH_DATA_DIR: /data",
        "",
        "services:",
        "  postgres:",
        "    image: postgres:15",
        "    environment:",
        "      POSTGRES_PASSWORD: mash",
        "      POSTGRES_MULTIPLE_DATABASES: "
        + ",".join(["mash_hub", *(d.demo.store for d in sql)]),
        "    volumes:",
        "      - ./docker/initdb:/docker-entrypoint-initdb.d:ro",
        "      - pg-data:/var/lib/postgresql/data",
        "    healthcheck:",
        '      test: ["CMD", "pg_isready", "-U", "postgres"]',
        "      interval: 2s",
        "      retries: 30",
        "",
        "  seed:",
        "    <<: *hub-image",
        "    command:",
        "      - mash-hub",
        "      - seed",
        *(f"      - --store-url={d.demo.store}={PG}/{d.demo.store}" for d in sql),
        "    depends_on:",
        "      postgres:",
        "        condition: service_healthy",
        "",
    ]
    for port, d in enumerate(http, FIRST_PORT):
        command = ["python", "-m", "hub.demo.sources", d.demo.store, "--host", "0.0.0.0"]
        command += ["--port", str(port), "--data-dir", "/data"]
        lines += [
            f"  {service(d)}:",
            "    <<: *hub-image",
            f"    command: {json.dumps(command)}",
            "    depends_on:",
            "      seed:",
            "        condition: service_completed_successfully",
            "",
        ]
    config = json.dumps(sources_config(), indent=None)
    lines += [
        "  hub:",
        "    <<: *hub-image",
        '    command: ["mash-hub", "serve", "--host", "0.0.0.0", "--port", "8000"]',
        "    ports:",
        '      - "127.0.0.1:8000:8000"',
        "    environment:",
        "      <<: *demo-env",
        f"      MASH_DATABASE_URL: {PG}/mash_hub",
        '      MASH_DEV_ISSUER: "true"',
        f"      MASH_SOURCES: '{config}'",
        "    depends_on:",
        "      postgres:",
        "        condition: service_healthy",
        *(
            line
            for d in http
            for line in (f"      {service(d)}:", "        condition: service_started")
        ),
        "",
        *MONITORING,
        "volumes:",
        "  demo-data:",
        "  pg-data:",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.demo.compose", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    if args.check:
        current = COMPOSE_PATH.read_text() if COMPOSE_PATH.exists() else ""
        if current != compose():
            print("docker-compose.yml is out of date: run python -m hub.demo.compose")
            return 1
        return 0
    COMPOSE_PATH.write_text(compose())
    print(f"wrote {COMPOSE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
