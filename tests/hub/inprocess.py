"""A hub app in the test's own process (no server, no sources): the pages' fast tests.
Its store holds two resolved people, Ava Thompson and her twin Ada."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from hub.app import create_app
from hub.audit.models import AuditEvent, AuditSubject
from hub.auth import devissuer
from hub.identity import matching
from hub.identity.models import Subject
from hub.settings import Settings
from hub.store.engine import Store, migrate_async

AVA = {
    "nhs_number": "9434765919",
    "given_name": "Ava",
    "family_name": "Thompson",
    "date_of_birth": date(2016, 3, 14),
}
# Her twin: same family name and birthday, another given name and NHS number.
ADA = {**AVA, "nhs_number": "9434765870", "given_name": "Ada"}


@dataclass
class App:
    client: httpx.AsyncClient
    data_dir: Path
    store: Store
    ava: str
    ada: str

    def token(self, role: str) -> str:
        return devissuer.mint(self.data_dir, role)

    async def csrf(self) -> str:
        """The lookup form's CSRF token, from the page as an IG officer opens it."""
        self.client.cookies.set("mash_ig_token", self.token("ig_officer"), path="/ig")
        index = await self.client.get("/ig/")
        found = re.search(r'name="csrf" value="([^"]+)"', index.text)
        assert found is not None, index.text[:300]
        return found.group(1)

    async def find(self, role: str, **form: str) -> httpx.Response:
        """Post the lookup form as `role` (a pasted token)."""
        csrf = await self.csrf()
        self.client.cookies.set("mash_ig_token", self.token(role), path="/ig")
        return await self.client.post("/ig/find", data={"csrf": csrf, **form})

    async def last_event(self, name: str) -> tuple[AuditEvent, dict[str, str]]:
        async with self.store.sessions() as session:
            event = (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.operation_name == name)
                    .order_by(AuditEvent.seq.desc())
                    .limit(1)
                )
            ).scalar_one()
            subjects = await session.execute(
                select(AuditSubject.subject_id, AuditSubject.relationship).where(
                    AuditSubject.event_seq == event.seq
                )
            )
            return event, {s: r for s, r in subjects}


def _subject(person: dict[str, Any]) -> Subject:
    d = matching.Demographics(**person)
    return Subject(
        id=str(uuid.uuid4()),
        identity_key=matching.identity_key(d),
        demographic_key=matching.demographic_key(d),
        created_at=datetime.now(UTC),
        **person,
    )


@contextlib.asynccontextmanager
async def in_process_hub(data_dir: Path) -> AsyncIterator[App]:
    """The hub app, started in this process on an embedded store holding Ava and Ada."""
    devissuer.ensure_keys(data_dir)
    url = f"sqlite:///{data_dir / 'hub.sqlite3'}"
    # Ava and Ada are stored before the hub starts: a second engine writing while the hub's
    # own start-up and sequencer write could wait out SQLite's busy timeout on a loaded machine.
    await migrate_async(url)
    store = Store(url)
    ava, ada = _subject(AVA), _subject(ADA)
    async with store.writing() as session, session.begin():
        session.add_all([ava, ada])
    hub = create_app(Settings(data_dir=data_dir, database_url=url, sources={}, dev_issuer=True))
    async with hub.router.lifespan_context(hub):
        transport = httpx.ASGITransport(app=hub)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield App(client, data_dir, store, ava.id, ada.id)
        await store.aclose()
