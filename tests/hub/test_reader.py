"""What one `child` read costs the hub store, counted end to end (SQLite and PostgreSQL): one
session and at most two statements before the first source is asked, and at most one
commit after it besides the audit event's (none once the household is known); the audit
writer's and sequencer's own tasks are not counted.

The hub runs in this process (tests/hub/conftest.py), so listeners on SQLAlchemy's `Engine`
class see its store's connections; the record service's fan-out is marked in the same
list, so the order of store statements and source calls is what the hub did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from hub.reading.records import RecordService
from hub.store.engine import FileReads

from .conftest import Hub
from .test_app import find_ava, ok

READ = """query Read($id: ID!, $contactId: ID) {
  child(id: $id, purpose: MASH_RESEARCH, contactId: $contactId) {
    id person { givenName } household { person { id } }
    police { __typename } health { __typename } earlyHelp { __typename }
    flags { childProtection } previouslyAccessedBy { agency }
  } }"""
CREATE = """mutation Create($input: CreateContactInput!) { createContact(input: $input) { id } }"""
ADVANCE = """mutation Advance($id: ID!) {
  advanceContact(id: $id, stage: "RESEARCH", purpose: MASH_SCREENING) { id } }"""
CONSENT = """mutation Consent($id: ID!) {
  recordConsent(id: $id, state: "GIVEN", purpose: MASH_RESEARCH, givenBy: "mother") { id } }"""
FAN_OUT = "fan-out"
# The audit log's own background work, not the read's.
AUDIT_TASKS = ("audit-writer", "audit-sequencer")


@dataclass
class StoreLog:
    """The hub store's connections, statements and commits, with the fan-outs, in order."""

    database: str
    events: list[str] = field(default_factory=list)
    # per connection: whether its transaction wrote anything but the audit log
    _writes: dict[int, bool] = field(default_factory=dict)

    def ours(self, conn: Connection) -> bool:
        """The hub store's, from the request (not the audit writer's or sequencer's tasks)."""
        if conn.engine.url.database != self.database:
            return False
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no loop: not the request's
            return False
        return task is not None and task.get_name() not in AUDIT_TASKS

    def connected(self, conn: Connection, *_: Any) -> None:
        if self.ours(conn):
            self.events.append("checkout")

    def statement(self, conn: Connection, _c: Any, sql: str, *_: Any) -> None:
        if not self.ours(conn):
            return
        self.events.append("statement")
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and "audit_" not in sql.split("(")[0]:
            self._writes[id(conn)] = True

    def committed(self, conn: Connection) -> None:
        if self.ours(conn) and self._writes.pop(id(conn), False):
            self.events.append("data-commit")

    def count(self, kind: str, before: str | None = None) -> int:
        events = self.events
        if before is not None and before in events:
            events = events[: events.index(before)]
        return events.count(kind)


@pytest.fixture
def store_log(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreLog]:
    from sqlalchemy.engine import make_url

    log = StoreLog(make_url(hub.database_url).database or "")
    fan_out = RecordService._fan_out

    async def marked(self: RecordService, *args: Any, **kwargs: Any) -> Any:
        log.events.append(FAN_OUT)
        return await fan_out(self, *args, **kwargs)

    monkeypatch.setattr(RecordService, "_fan_out", marked)
    file_read = FileReads.json_row

    async def read_file(self: FileReads, *args: Any, **kwargs: Any) -> Any:
        # SQLite: the read path's bundles read the store's file with plain sqlite3 (no
        # session, no pooled connection): each is one round-trip, counted as a statement.
        if self.path == log.database:
            log.events.append("statement")
        return await file_read(self, *args, **kwargs)

    monkeypatch.setattr(FileReads, "json_row", read_file)
    listeners = [
        ("engine_connect", log.connected),
        ("before_cursor_execute", log.statement),
        ("commit", log.committed),
    ]
    for name, fn in listeners:
        event.listen(Engine, name, fn)
    try:
        yield log
    finally:
        for name, fn in listeners:
            event.remove(Engine, name, fn)


def contact_in_research(hub: Hub, child_id: str) -> str:
    """A real contact (in the hub store, not a test double), in research with consent."""
    referrer = {"type": "SCHOOL", "name": "Head teacher"}
    new = {"childIds": [child_id], "concern": "a concern", "rag": "RED", "referrer": referrer}
    contact = ok(hub.gql("mash_social_worker", CREATE, {"input": new}))["createContact"]["id"]
    ok(hub.gql("mash_social_worker", ADVANCE, {"id": contact}))
    ok(hub.gql("mash_social_worker", CONSENT, {"id": contact}))
    return str(contact)


def test_a_child_read_loads_the_store_in_one_session_of_two_statements_before_the_fan_out(
    hub: Hub, store_log: StoreLog
) -> None:
    # Given Ava and a real contact about her, in research with the family's consent
    ava = find_ava(hub)
    contact = contact_in_research(hub, ava)
    variables = {"id": ava, "contactId": contact}
    for read in ("first", "again"):
        # When she is read (the first read may record her household as subjects)
        store_log.events.clear()
        record = ok(hub.gql("mash_social_worker", READ, variables))["child"]
        assert record["police"]["__typename"] == "PoliceSection", record
        assert record["household"], "the showcase child has a household"
        # Then the store was asked on one connection, at most twice, before any source
        assert FAN_OUT in store_log.events, store_log.events
        assert store_log.count("checkout", before=FAN_OUT) <= 1, (read, store_log.events)
        assert 1 <= store_log.count("statement", before=FAN_OUT) <= 2, (read, store_log.events)
        # and the read committed at most once besides its audit event (never, once known)
        assert store_log.count("data-commit") <= (1 if read == "first" else 0), (
            read,
            store_log.events,
        )
