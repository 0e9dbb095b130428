"""The request context: contact facts loaded once per operation and handed to the policies;
one engine decision per record class and label set, however many records share it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.base import Labels
from hub.audit.events import AuditNotes
from hub.auth.tokens import Actor
from hub.contacts import workflow
from hub.contacts.workflow import ContactFacts
from hub.context import Context, Services
from hub.policy.engine import PolicyEngine
from hub.settings import PROJECT_ROOT

ACTOR = Actor("sw-1", "https://idp", frozenset({"police_researcher"}), "police", "mash", None)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(PROJECT_ROOT / "policies")


def context(engine: PolicyEngine) -> Context:
    services = Services(records=None, policy=engine, store=None, clock=lambda: NOW)  # type: ignore[arg-type]
    return Context(actor=ACTOR, services=services, notes=AuditNotes(ACTOR))


def load_counting(monkeypatch: pytest.MonkeyPatch, facts: ContactFacts) -> list[Any]:
    calls: list[Any] = []

    async def facts_for(
        store: Any, actor: Actor, purpose: str, contact_id: str | None, now: datetime
    ) -> ContactFacts:
        calls.append((actor.subject, purpose, contact_id, now))
        await asyncio.sleep(0)
        return facts

    monkeypatch.setattr(workflow, "facts_for", facts_for)
    return calls


def test_contact_facts_are_loaded_once_per_operation_with_the_hubs_clock(
    engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = ContactFacts(contact_id="C-1", stage="SCREENING", assigned=True, subject_ids=("s",))
    calls = load_counting(monkeypatch, facts)
    ctx = context(engine)

    async def two_resolvers() -> list[Any]:
        return list(await asyncio.gather(*(ctx.access("MASH_RESEARCH", "C-1") for _ in range(2))))

    first, second = asyncio.run(two_resolvers())
    assert first is second
    assert calls == [("sw-1", "MASH_RESEARCH", "C-1", NOW)]
    assert first.request.stage == "SCREENING" and first.request.team == "mash"
    assert ctx.notes.build().contact_stage == "SCREENING"
    assert first.relationship("s").allowed and not first.relationship("other").allowed
    health = first.decide("child.health", "health.section", Labels("health"))
    assert health.reason == "STAGE_RESTRICTED"


def test_the_policies_see_the_contacts_real_stage_not_the_purpose(
    engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = ContactFacts(contact_id="C-2", stage="RESEARCH", assigned=True, consent="GIVEN")
    load_counting(monkeypatch, facts)
    access = asyncio.run(context(engine).access("MASH_RESEARCH", "C-2"))
    assert access.decide("child.health", "health.section", Labels("health")).allowed
    refused = ContactFacts(contact_id="C-3", stage="RESEARCH", assigned=True, consent="REFUSED")
    load_counting(monkeypatch, refused)
    access = asyncio.run(context(engine).access("MASH_RESEARCH", "C-3"))
    decision = access.decide("child.health", "health.section", Labels("health"))
    assert decision.reason == "CONSENT_REQUIRED"
    assert access.notes.build().fields_redacted == {"child.health": "CONSENT_REQUIRED"}


def test_one_engine_decision_per_label_set_however_many_records_share_it(
    engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = ContactFacts(contact_id="C-4", stage="RESEARCH", assigned=True, consent="GIVEN")
    load_counting(monkeypatch, facts)
    engine.clear_caches()
    asked: list[Any] = []
    real = engine._oso.query_rule

    def counting(name: str, *args: Any) -> Any:
        asked.append(name)
        return real(name, *args)

    monkeypatch.setattr(engine._oso, "query_rule", counting)
    labels = [Labels("police", handling_code="C"), Labels("police"), Labels("health")]
    for _ in range(2):  # two requests, two contacts with the same facts
        access = asyncio.run(context(engine).access("MASH_RESEARCH", "C-4"))
        for i in range(50):
            access.decide(f"child.items[{i}]", "police.intelligence", labels[i % 3])
    # withhold + hide_field per distinct label set, once, for both requests
    assert asked.count("withhold") == 3 and asked.count("hide_field") == 3


def test_the_policies_see_a_recorded_strategy_discussion_not_the_purpose_that_claims_one(
    engine: PolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = ContactFacts(contact_id="C-4", stage="RESEARCH", assigned=True, consent="REFUSED")
    load_counting(monkeypatch, claimed)
    access = asyncio.run(context(engine).access("S47_STRATEGY", "C-4"))
    assert not access.request.strategy_discussion
    decision = access.decide("child.health", "health.section", Labels("health"))
    assert decision.reason == "CONSENT_REQUIRED"
    recorded = ContactFacts(
        contact_id="C-5",
        stage="RESEARCH",
        assigned=True,
        consent="REFUSED",
        strategy_discussion=True,
    )
    load_counting(monkeypatch, recorded)
    access = asyncio.run(context(engine).access("S47_STRATEGY", "C-5"))
    assert access.request.strategy_discussion
    assert access.decide("child.health", "health.section", Labels("health")).allowed
