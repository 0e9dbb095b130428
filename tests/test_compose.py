"""No Docker engine runs here, so check docker-compose.yml parses and wires the services."""

from __future__ import annotations

import json

import yaml

from hub.settings import PROJECT_ROOT


def test_compose_file_is_the_one_generated_from_the_declarations() -> None:
    from hub.demo import compose

    assert compose.COMPOSE_PATH.read_text() == compose.compose(), (
        "docker-compose.yml drifted: run python -m hub.demo.compose"
    )
    assert compose.main(["--check"]) == 0


def test_compose_file_wires_every_declared_source() -> None:
    from adapters import declarations

    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    sources = json.loads(compose["services"]["hub"]["environment"]["MASH_SOURCES"])
    assert list(sources) == [
        *(d.source for d in declarations() if d.demo.server is None),
        *(d.source for d in declarations() if d.demo.server is not None),
    ]
    databases = compose["services"]["postgres"]["environment"]["POSTGRES_MULTIPLE_DATABASES"]
    seed = compose["services"]["seed"]["command"]
    for d in declarations():
        if d.demo.server is None:
            assert d.demo.store in databases.split(",")
            assert f"--store-url={d.demo.store}=" in " ".join(seed)
        else:
            served = [
                s for s in compose["services"].values() if d.demo.store in s.get("command", ())
            ]
            assert len(served) == 1 and served[0]["command"][:3] == [
                "python",
                "-m",
                "hub.demo.sources",
            ]


def test_compose_file_wires_hub_to_postgres_and_the_demo_sources() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"hub", "postgres", "health-source", "asc-source", "seed"} <= set(services)
    hub = services["hub"]
    env = hub["environment"]
    assert env["MASH_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["MASH_DATABASE_URL"]
    sources = json.loads(env["MASH_SOURCES"])
    assert set(sources) == {"POLICE", "HEALTH", "ADULT_SOCIAL_CARE", "EARLY_HELP", "EDUCATION"}
    assert "//health-source:8081/" in sources["HEALTH"]["url"]
    assert "//asc-source:8082/" in sources["ADULT_SOCIAL_CARE"]["url"]
    # the source wants OAuth client credentials: the seed writes them to the shared volume
    assert sources["ADULT_SOCIAL_CARE"]["options"]["credentials_file"].startswith("/data/")
    # the education API wants its key: the seed writes it to the shared volume too
    assert "//education-source:" in sources["EDUCATION"]["url"]
    assert sources["EDUCATION"]["options"]["credentials_file"].startswith("/data/")
    assert "demo-data:/data" in services["asc-source"]["volumes"]
    assert "@postgres:5432/" in sources["POLICE"]["url"]
    assert {"postgres", "health-source", "asc-source"} <= set(hub["depends_on"])
    assert services["hub"]["command"][:2] == ["mash-hub", "serve"]
