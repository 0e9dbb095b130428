"""No Docker engine runs here, so check docker-compose.yml parses and wires the services."""

from __future__ import annotations

import json

import yaml

from hub.settings import PROJECT_ROOT


def test_compose_file_wires_hub_to_postgres_and_the_demo_sources() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"hub", "postgres", "health-source", "asc-source", "seed"} <= set(services)
    hub = services["hub"]
    env = hub["environment"]
    assert env["MASH_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["MASH_DATABASE_URL"]
    sources = json.loads(env["MASH_SOURCES"])
    assert set(sources) == {"POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP"}
    assert "//health-source:8081/" in sources["HEALTH"]["url"]
    assert "//asc-source:8082/" in sources["ADULT_SOCIAL_CARE"]["url"]
    # the source wants OAuth client credentials: the seed writes them to the shared volume
    assert sources["ADULT_SOCIAL_CARE"]["options"]["credentials_file"].startswith("/data/")
    assert "demo-data:/data" in services["asc-source"]["volumes"]
    assert "@postgres:5432/" in sources["POLICE"]["url"]
    assert {"postgres", "health-source", "asc-source"} <= set(hub["depends_on"])
    assert services["hub"]["command"][:2] == ["mash-hub", "serve"]
