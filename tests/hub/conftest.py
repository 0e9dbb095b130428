"""End-to-end fixtures: real demo source systems on loopback and a real hub server, with the
hub store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.auth import devissuer
from hub.auth.tokens import Actor
from hub.contacts import workflow
from hub.contacts.workflow import ContactFacts
from hub.demo.stack import demo_sources, ensure_seeded, running_hub
from hub.settings import Settings

from .inprocess import App, in_process_hub
from .oidc_provider import WebHub, web_hub_running


@dataclass
class FakeContacts:
    """Stands in for the contact workflow in end-to-end tests: a contact added here has the
    facts the test gives it; any other contact id goes to the real `load_facts`."""

    facts: dict[str, ContactFacts] = field(default_factory=dict)

    def add(self, subject_id: str, **facts: Any) -> str:
        contact_id = f"test-contact-{len(self.facts) + 1}"
        facts.setdefault("subject_ids", (subject_id,))
        self.facts[contact_id] = ContactFacts(contact_id=contact_id, **facts)
        return contact_id


FAKE_CONTACTS = FakeContacts()


@pytest.fixture(scope="session")
def fake_contacts() -> Iterator[FakeContacts]:
    real = workflow.load_facts

    async def load_facts(
        session: Any,
        actor: Actor,
        purpose: str,
        contact_id: str | None,
        now: datetime,
        subject_id: str | None = None,
    ) -> ContactFacts:
        if contact_id in FAKE_CONTACTS.facts:
            return FAKE_CONTACTS.facts[contact_id]
        return await real(session, actor, purpose, contact_id, now, subject_id)

    patch = pytest.MonkeyPatch()
    patch.setattr(workflow, "load_facts", load_facts)
    yield FAKE_CONTACTS
    patch.undo()


@dataclass
class Hub:
    url: str
    data_dir: Path
    database_url: str
    contacts: FakeContacts = field(default_factory=lambda: FAKE_CONTACTS)

    def contact(self, subject_id: str, **facts: Any) -> str:
        """A contact about `subject_id`, assigned to whoever reads it; by default in research
        with the family's consent given."""
        facts = {"stage": "RESEARCH", "assigned": True, "consent": "GIVEN", **facts}
        return self.contacts.add(subject_id, **facts)

    def token(self, role: str, **claims: Any) -> str:
        return devissuer.mint(self.data_dir, role, **claims)

    def gql(
        self,
        role: str | None,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        h = dict(headers or {})
        if role:
            h["Authorization"] = f"Bearer {self.token(role)}"
        return httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=h,
            timeout=30,
        )


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo")
    ensure_seeded(data_dir)
    devissuer.ensure_keys(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def source_config(demo_data: Path) -> Iterator[dict[str, Any]]:
    with demo_sources(demo_data) as config:
        yield config


def hub_settings(data_dir: Path, database_url: str, sources: dict[str, Any]) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, sources=sources, dev_issuer=True)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_databases").create())


@pytest.fixture(scope="session")
def hub(
    demo_data: Path,
    source_config: dict[str, Any],
    store_url: str,
    fake_contacts: FakeContacts,
) -> Iterator[Hub]:
    with running_hub(hub_settings(demo_data, store_url, source_config)) as url:
        yield Hub(url, demo_data, store_url)


@pytest.fixture(scope="session")
def web_hub(
    demo_data: Path,
    source_config: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    fake_contacts: FakeContacts,
) -> Iterator[WebHub]:
    """A hub people sign in to through a real OpenID provider (tests/hub/oidc_provider.py)."""
    store = tmp_path_factory.mktemp("web-store") / "hub.sqlite3"
    with web_hub_running(demo_data, source_config, store) as hub:
        yield hub


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    """The hub app in this process, on an embedded store holding Ava and Ada (the pages'
    fast tests: no server, no sources)."""
    async with in_process_hub(tmp_path_factory.mktemp("in-process")) as hub:
        yield hub
