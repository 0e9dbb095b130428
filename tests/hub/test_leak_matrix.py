"""The leak matrix: every leaf the live schema offers about children, households and
contacts, read by every role × purpose × contact state through `child`, `searchChildren`,
`contact(s)` and `_entities`, each non-null value checked against an oracle written from
DOMAIN.md §3 alone (tests/hub/leak_oracle.py), on SQLite and PostgreSQL.

Given a hub on its own store, with real demo sources and a clock the test moves;
when contacts about five target children (Ava, a child on the longest street, a hostel
resident, a twin, a location-restricted patient) are put into each state through the hub's
own mutations, and every reader reads them for every purpose;
then no value leaves the hub that the oracle does not allow, and the matrix is as big as
it should be.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.auth import devissuer
from hub.contacts import workflow as svc
from hub.demo import generator as g
from hub.demo.stack import DEMO_HOUSEHOLDS, DEMO_SEED, running_hub
from hub.identity.models import Subject
from hub.store.engine import Store

from . import leak_oracle as lo
from .conftest import hub_settings
from .leak_queries import ALIAS, INTROSPECTION, Leaf, Schema, fragment, leaves

PURPOSES = (
    "MASH_SCREENING",
    "MASH_RESEARCH",
    "THRESHOLD_DECISION",
    "S47_STRATEGY",
    "S17_ASSESSMENT",
    "EARLY_HELP",
    "SAR_RESPONSE",
    "IG_AUDIT",
    "BREAK_GLASS",
)
READERS = (
    lo.Reader("sw", "mash_social_worker", "council", "mash-team", "sw-assigned"),
    lo.Reader("sw_other_team", "mash_social_worker", "council", "mash-team-east", "sw-east"),
    lo.Reader("manager", "mash_manager", "council", "mash-team", "mgr-1"),
    lo.Reader("police", "police_researcher", "police", "police-mash-desk", "pc-research"),
    # a police force with no research task on any contact (the tasks go to "police")
    lo.Reader("police_no_task", "police_researcher", "transport_police", "btp-desk", "pc-btp"),
    lo.Reader("health", "health_practitioner", "health", "health-safeguarding", "hp-1"),
    lo.Reader("asc", "asc_practitioner", "adult_social_care", "asc-mash", "asc-1"),
    lo.Reader("early_help", "early_help_worker", "early_help", "eh-hub", "eh-1"),
    lo.Reader("ig", "ig_officer", "council", "ig-office", "ig-1"),
    # a machine claiming a person's agency and the contacts' team: rule 17 all the same
    lo.Reader("partner", "partner_system", "police", "mash-team", "partner-pnc"),
)
SW, MANAGER = READERS[0], READERS[2]
CONTACT_STATES = (
    "screening",
    "research_no_consent",
    "research_consent",
    "override",
    "s47_recorded",
    "decision",
    "closed",
)
STATES = ("none", *CONTACT_STATES, "break_glass", "expired_grant")
# The floor under the matrix's size: it fails if the matrix silently shrinks.
MIN_QUERIES = len(READERS) * len(PURPOSES) * len(STATES) * 3
MIN_VALUES = 40_000
MAX_ALIASES = 10  # the hub's MaxAliasesLimiter (schema.LIMITS)
# Answers a reader may get instead of data; anything else (a query the hub would not
# validate, an internal error) means the matrix did not test what it says it tested.
REFUSALS = frozenset({"FORBIDDEN", "NOT_FOUND", "CONSENT_REQUIRED", "STAGE_RESTRICTED"})


# --- fixtures ---------------------------------------------------------------------------


class Clock:
    """The hub's clock: real time, moved on by `offset` (break-glass expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def leak_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of the matrix's own: every contact in it is one the matrix made."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('leaks') / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_databases").create())


@dataclass
class LeakHub:
    url: str
    data_dir: Path
    store_url: str
    clock: Clock
    kind: str
    tokens: dict[str, str] = field(default_factory=dict)
    local: threading.local = field(default_factory=threading.local)
    queries: int = 0
    mutations: set[str] = field(default_factory=set)

    def token(self, r: lo.Reader) -> str:
        if r.key not in self.tokens:
            self.tokens[r.key] = devissuer.mint(
                self.data_dir, r.role, agency=r.agency, sub=r.sub, team=r.team
            )
        return self.tokens[r.key]

    def post(
        self,
        r: lo.Reader,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=60)
        h = {"Authorization": f"Bearer {self.token(r)}", **(headers or {})}
        resp = client.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=h
        )
        self.queries += 1
        body: dict[str, Any] = resp.json()
        return body

    def ok(self, r: lo.Reader, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = self.post(r, query, variables)
        assert not body.get("errors"), (query[:80], body.get("errors"))
        return body["data"]


@pytest.fixture(scope="module")
def leak_hub(
    request: pytest.FixtureRequest,
    demo_data: Path,
    source_config: dict[str, Any],
    leak_store: str,
) -> Iterator[LeakHub]:
    clock = Clock()
    kind = "sqlite" if leak_store.startswith("sqlite") else "postgres"
    with running_hub(hub_settings(demo_data, leak_store, source_config), clock=clock) as url:
        yield LeakHub(url, demo_data, leak_store, clock, kind)


@pytest.fixture(scope="module")
def truth() -> lo.Truth:
    return lo.Truth(g.generate(DEMO_HOUSEHOLDS, DEMO_SEED))


# --- the target children ------------------------------------------------------------------


def _child_with_nhs(truth: lo.Truth, people: list[g.Person]) -> g.Person | None:
    patients = {p.person_id: p for p in truth.pop.health.patients if p.nhs_number}
    kids = [p for p in people if p.role == "child" and p.in_area and p.id in patients]
    return min(kids, key=lambda p: p.id) if kids else None


def targets(truth: lo.Truth) -> tuple[dict[str, g.Person], list[str]]:
    """The matrix's children (generator people) by name, and what is missing from the demo
    population (a failure, never a skip). The generator's own picks where it has them."""
    pop, missing = truth.pop, []
    chosen: dict[str, g.Person] = {"ava": truth.person["PER000000"]}
    by_postcode: dict[str, list[g.Household]] = defaultdict(list)
    for h in pop.households:
        if h.in_area:
            by_postcode[h.postcode].append(h)
    longest = max(by_postcode.values(), key=len)
    street = [p for h in longest for p in pop.members(h.id)]
    if hasattr(pop, "long_street_child"):
        chosen["long_street"] = pop.long_street_child()
    elif (kid := _child_with_nhs(truth, street)) is not None:
        chosen["long_street"] = kid
    if len(longest) < 15 or "long_street" not in chosen:
        missing.append("the demo population has no long street (15+ addresses, one postcode)")
    residents = [p for h in lo.hostel_households(pop) for p in pop.members(h.id)]
    if hasattr(pop, "hostel_child"):
        chosen["hostel"] = pop.hostel_child()
    elif (kid := next((p for p in residents if p.role == "child"), None)) is not None:
        chosen["hostel"] = kid
    else:
        missing.append(
            "the demo population has no hostel (a very large shared address) with a child "
            "resident: the matrix cannot check rule 2's large-shared-address reading"
        )
    twins = {r.person_id for r in pop.relations if r.relation == "twin"}
    if (kid := _child_with_nhs(truth, [truth.person[t] for t in twins])) is not None:
        chosen["twin"] = kid
    else:
        missing.append("the demo population has no twins")
    restricted = [truth.person[p] for p in truth.restricted]
    # At school, where possible: rule 11 then covers the school the education system holds.
    at_school = [p for p in restricted if p.id in truth.pupils]
    if (kid := _child_with_nhs(truth, at_school) or _child_with_nhs(truth, restricted)) is not None:
        chosen["restricted"] = kid
    else:
        missing.append("the demo population has no location-restricted child patient")
    if not at_school:
        missing.append("the demo population has no location-restricted child at school")
    return chosen, missing


def criteria_for(truth: lo.Truth, person: g.Person) -> dict[str, Any]:
    """How a worker would find this child: the NHS number health holds, else the name,
    date of birth and postcode."""
    patients = truth.pop.health.patients
    nhs = next((p.nhs_number for p in patients if p.person_id == person.id and p.nhs_number), None)
    if nhs:
        return {"nhsNumber": nhs}
    return {
        "givenName": person.given_name,
        "familyName": person.family_name,
        "dateOfBirth": person.date_of_birth.isoformat(),
        "postcode": truth.household[person.household_id].postcode,
    }


# --- the contact states, made through the hub's own mutations ------------------------------

CREATE = """mutation Create($input: CreateContactInput!) { createContact(input: $input) { id } }"""
ASSIGN = """mutation Assign($id: ID!) { assignContact(id: $id, purpose: MASH_SCREENING,
  staff: ["sw-assigned"], teams: ["mash-team"]) { id } }"""
ADVANCE = """mutation Advance($id: ID!, $stage: String!, $purpose: Purpose!) {
  advanceContact(id: $id, stage: $stage, purpose: $purpose) { id } }"""
CONSENT = """mutation Consent($id: ID!) { recordConsent(id: $id, state: "GIVEN",
  purpose: MASH_RESEARCH, givenBy: "mother") { id } }"""
OVERRIDE = """mutation Override($id: ID!) { overrideConsent(id: $id,
  reasonCode: "RISK_OF_SIGNIFICANT_HARM", justification: "DASH high, children present",
  purpose: MASH_RESEARCH) { id } }"""
DECIDE = """mutation Decide($id: ID!, $decision: String!, $told: Boolean) {
  recordDecision(id: $id, decision: $decision, reasons: "threshold met",
  purpose: THRESHOLD_DECISION, parentsTold: $told) { id } }"""
STRATEGY = """mutation Strategy($id: ID!) { recordStrategyDiscussion(id: $id,
  purpose: S47_STRATEGY, input: {parentsTold: false, reason: "risk of significant harm"})
  { id } }"""
GLASS = """mutation Glass($child: ID!) { breakGlass(childId: $child,
  reasonCode: "IMMEDIATE_RISK_OF_HARM", justification: "child missing overnight") { id } }"""
SEARCH_IDS = """query Find($criteria: PersonSearch!, $contact: ID) {
  searchChildren(criteria: $criteria, purpose: MASH_SCREENING, contactId: $contact) { id } }"""


def new_contact(hub: LeakHub, children: list[str] | None, details: bool = False) -> str:
    made = {
        "concern": "Child disclosed violence at home; neighbour heard screaming",
        "rag": "RED",
        "referrer": {
            "type": "PUBLIC",
            "anonymous": True,
            "name": "Pat Neighbour",
            "contactDetails": "07700 900123",
        },
        "childIds": children or [],
    }
    if details:
        made["child"] = {"givenName": "Unknown", "familyName": "Child"}
    cid: str = hub.ok(SW, CREATE, {"input": made})["createContact"]["id"]
    hub.ok(MANAGER, ASSIGN, {"id": cid})
    return cid


def record_s47(hub: LeakHub, cid: str) -> None:
    """SWITCH (s47 recorded): the one place that makes the s47 fact. Until
    `recordStrategyDiscussion` lands, an S47 threshold decision at the DECISION stage; once
    it is in the schema, a strategy discussion recorded in RESEARCH."""
    if "recordStrategyDiscussion" in hub.mutations:
        hub.ok(MANAGER, STRATEGY, {"id": cid})
        return
    advance(hub, cid, "DECISION", "MASH_RESEARCH")
    hub.ok(MANAGER, DECIDE, {"id": cid, "decision": "S47", "told": False})


def advance(hub: LeakHub, cid: str, stage: str, purpose: str) -> None:
    who = MANAGER if stage == "CLOSED" else SW
    hub.ok(who, ADVANCE, {"id": cid, "stage": stage, "purpose": purpose})


def make_state(hub: LeakHub, state: str, children: list[str]) -> str:
    cid = new_contact(hub, children)
    if state == "screening":
        return cid
    advance(hub, cid, "RESEARCH", "MASH_SCREENING")
    if state == "research_consent":
        hub.ok(SW, CONSENT, {"id": cid})
    elif state == "override":
        hub.ok(MANAGER, OVERRIDE, {"id": cid})
    elif state == "s47_recorded":
        record_s47(hub, cid)
    elif state == "decision":
        hub.ok(SW, CONSENT, {"id": cid})
        advance(hub, cid, "DECISION", "MASH_RESEARCH")
    elif state == "closed":
        advance(hub, cid, "DECISION", "MASH_RESEARCH")
        hub.ok(MANAGER, DECIDE, {"id": cid, "decision": "S17", "told": None})
        advance(hub, cid, "CLOSED", "THRESHOLD_DECISION")
    return cid


async def _contact_facts(store_url: str) -> dict[str, lo.ContactFacts]:
    """Every contact in the store, as recorded (the facts, not the policy's view)."""
    store = Store(store_url)
    try:
        rows = await svc.find(store, svc.ContactFilter(), datetime.now(UTC), 10_000)
        facts = {}
        for row in rows:
            consent = svc.latest_consent(row)
            given = consent is not None and consent.state == "GIVEN"
            facts[row.id] = lo.ContactFacts(
                id=row.id,
                stage=row.stage,
                staff=frozenset(row.assigned_staff),
                teams=frozenset(row.assigned_teams),
                task_agencies=frozenset(t.agency for t in row.tasks),
                consent_agencies=frozenset(
                    (consent.scope or lo.AGENCIES) if given and consent else ()
                ),
                override=bool(row.overrides),
                s47=row.decision == "S47" or getattr(row, "strategy_held_at", None) is not None,
                anonymous_referrer=bool(row.referrer_anonymous),
                children=frozenset(row.child_ids),
            )
        return facts
    finally:
        await store.aclose()


async def _subjects(store_url: str) -> dict[str, tuple[Any, ...]]:
    store = Store(store_url)
    try:
        async with store.sessions() as session:
            rows = await session.execute(
                select(
                    Subject.id,
                    Subject.nhs_number,
                    Subject.given_name,
                    Subject.family_name,
                    Subject.date_of_birth,
                )
            )
            return {r[0]: tuple(r[1:]) for r in rows}
    finally:
        await store.aclose()


# --- the matrix -----------------------------------------------------------------------------


@dataclass
class Read:
    """One response and the situation it was read in."""

    reader: lo.Reader
    purpose: str
    state: str
    contact: str | None
    root: str  # "child", "_entities", "searchChildren", "contact", "contacts"
    body: dict[str, Any]
    grants: frozenset[str] = frozenset()


@dataclass
class Matrix:
    hub: LeakHub
    schema: Schema
    children: dict[str, str]  # target name -> hub id
    people: dict[str, str]  # Person entity reps: hub id -> generator person
    reads: list[Read] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        s = self.schema
        self.fragments = {
            "ChildRecord": fragment(s, "CR", "ChildRecord"),
            "Contact": fragment(s, "CT", "Contact"),
            "ChildMatch": fragment(s, "CM", "ChildMatch"),
            "Person": fragment(s, "PE", "Person"),
        }
        # Several children in one query, as many as the hub's alias limit lets through
        per_child = 1 + self.fragments["ChildRecord"].count(ALIAS)
        ids = list(self.children.values())
        step = max(1, MAX_ALIASES // per_child)
        self.child_qs = []
        for part in (ids[i : i + step] for i in range(0, len(ids), step)):
            calls = " ".join(
                f"t{i}: child(id: {json.dumps(cid)}, purpose: $p, contactId: $c) {{ ...CR }}"
                for i, cid in enumerate(part)
            )
            self.child_qs.append(
                f"query Children($p: Purpose!, $c: ID) {{ {calls} }} "
                + self.fragments["ChildRecord"]
            )
        self.search_q = (
            "query Search($p: Purpose!, $c: ID) { searchChildren(criteria: "
            f"{{nhsNumber: {json.dumps(g.AVA_NHS)}}}, purpose: $p, contactId: $c) {{ ...CM }} }} "
            + self.fragments["ChildMatch"]
        )
        self.contact_q = (
            "query One($p: Purpose!, $id: ID!) { contact(id: $id, purpose: $p) { ...CT } } "
            + self.fragments["Contact"]
        )
        self.contacts_q = (
            "query All($p: Purpose!) { contacts(purpose: $p, first: 200) { ...CT } } "
            + self.fragments["Contact"]
        )
        self.entities_q = (
            "query Entities($r: [_Any!]!) { _entities(representations: $r) { __typename "
            "...CR ...PE } } " + self.fragments["ChildRecord"] + " " + self.fragments["Person"]
        )

    def reps(self, purpose: str, state: str) -> list[dict[str, str]]:
        """The `_entities` representations for one (purpose, state): two target children
        and one Person, rotating with the purpose and state, so that each reader reads every
        target and every Person through `_entities` in every state (9 purposes x 2 slots
        over 5 targets) while `child` reads every target for every purpose. Each entity is
        a whole record assembled from every source: reading all eight every time would
        double the matrix's run time for no path `child` does not already take."""
        k = PURPOSES.index(purpose) * 2 + STATES.index(state)
        kids, people = list(self.children.values()), list(self.people)
        chosen = {kids[k % len(kids)], kids[(k + 1) % len(kids)]}
        return [{"__typename": "ChildRecord", "id": c} for c in kids if c in chosen] + [
            {"__typename": "Person", "id": people[k % len(people)]}
        ]

    def covered_by_entities(self) -> bool:
        """Every target and Person goes through `_entities` for every state."""
        wanted = set(self.children.values()) | set(self.people)
        return all(
            {r["id"] for p in PURPOSES for r in self.reps(p, state)} == wanted for state in STATES
        )

    def keep(self, read: Read) -> None:
        with self.lock:
            self.reads.append(read)

    def run_one(
        self, r: lo.Reader, purpose: str, state: str, cid: str | None, grants: frozenset[str]
    ) -> None:
        variables = {"p": purpose, "c": cid}

        def keep(root: str, body: dict[str, Any]) -> None:
            self.keep(Read(r, purpose, state, cid, root, body, grants))

        for q in self.child_qs:
            keep("child", self.hub.post(r, q, variables))
        keep("searchChildren", self.hub.post(r, self.search_q, variables))
        if cid is not None:
            keep("contact", self.hub.post(r, self.contact_q, {"p": purpose, "id": cid}))
        headers = {"X-Purpose-Of-Use": purpose}
        if cid is not None:
            headers["X-Contact-Id"] = cid
        reps = self.reps(purpose, state)
        keep("_entities", self.hub.post(r, self.entities_q, {"r": reps}, headers))

    def run_state(
        self,
        state: str,
        cid: str | None,
        grants: dict[str, frozenset[str]],
        pool: ThreadPoolExecutor,
    ) -> None:
        jobs = [
            pool.submit(self.run_one, r, p, state, cid, grants.get(r.key, frozenset()))
            for r in READERS
            for p in PURPOSES
        ]
        for j in jobs:
            j.result()

    def run_lists(self, pool: ThreadPoolExecutor) -> None:
        def one(r: lo.Reader, p: str) -> None:
            body = self.hub.post(r, self.contacts_q, {"p": p})
            self.keep(Read(r, p, "list", None, "contacts", body))

        for j in [pool.submit(one, r, p) for r in READERS for p in PURPOSES]:
            j.result()


def place_of(
    truth: lo.Truth,
    leaf: Leaf,
    read: Read,
    facts: dict[str, lo.ContactFacts],
    child_people: dict[str, str],
    entity_people: dict[str, str],
    subject_people: Callable[[str], frozenset[str]],
) -> lo.Place:
    p = lo.Place(leaf.path)
    fields = [f for _, f in leaf.path]
    top = leaf.objects[0] if leaf.objects else {}
    if read.root in ("contact", "contacts"):
        p.contact = facts.get(str(top.get("id")))
        return p
    if read.root == "searchChildren":
        p.search_match = str(top.get("id"))
        return p
    typename = top.get("__typename") or ("ChildRecord" if read.root == "child" else None)
    if read.root == "_entities" and typename == "Person":
        # A Person entity: the person's own record. As the household member of a target
        # child whose home they truly share, or of the first target otherwise.
        pid = str(top.get("id"))
        person = entity_people.get(pid) or child_people.get(pid)
        homes = [c for c, gp in child_people.items() if person in truth.household_of(gp)]
        p.child = homes[0] if homes else next(iter(child_people))
        p.child_person = child_people[p.child]
        if pid in child_people:
            return p  # the child itself: identity values
        p.member = frozenset({person}) if person else frozenset()
        return p
    p.child = str(top.get("id")) if top.get("id") else None
    p.child_person = child_people.get(p.child or "")
    if len(fields) > 1 and fields[1] in lo.SECTION_AGENCY:
        p.section = lo.SECTION_AGENCY[fields[1]]
    for (typ, _), obj in zip(leaf.path[1:], leaf.objects[1:], strict=False):
        if "aboutPersonId" in obj or typ in lo.SPECIAL_KINDS:
            p.item = str(obj.get("id"))
    if {"household", "sharedAddressResidents"} & set(fields):
        member = leaf.objects[1] if len(leaf.objects) > 1 else {}
        sid = str((member.get("person") or {}).get("id"))
        p.member = subject_people(sid)
        p.member_agencies = lo.agencies_of(
            [str(b.get("source")) for b in member.get("basis") or [] if b.get("source")]
        )
    return p


def test_no_value_leaves_the_hub_outside_the_domain_rules(
    leak_hub: LeakHub, truth: lo.Truth, tmp_path_factory: pytest.TempPathFactory
) -> None:
    started = time.perf_counter()
    hub = leak_hub
    failures: list[str] = []

    # Given the live schema, introspected
    intro = hub.ok(MANAGER, INTROSPECTION)
    schema = Schema.of(intro)
    hub.mutations = set(schema.fields["Mutation"])

    # and the target children, found the way a MASH worker finds them (search, for a contact)
    chosen, missing = targets(truth)
    failures += missing
    setup = new_contact(hub, None, details=True)
    children: dict[str, str] = {}
    for name, person in chosen.items():
        children[name] = _find(hub, truth, person, setup)
    child_people = {children[n]: p.id for n, p in chosen.items()}
    # Person entities: one who truly shares a target's home (the twin's twin, Ava's brother)
    # and one who does not (a child next door on the long street)
    entity_people: dict[str, str] = {}
    twin = chosen.get("twin")
    if twin is not None:
        other = next(
            r.related_id
            for r in truth.pop.relations
            if r.person_id == twin.id and r.relation == "twin"
        )
        entity_people[_find(hub, truth, truth.person[other], setup)] = other
    entity_people[_find(hub, truth, truth.person["PER000001"], setup)] = "PER000001"
    street = chosen["long_street"]
    neighbour = _child_with_nhs(
        truth,
        [
            p
            for h in truth.pop.households
            if h.postcode == truth.household[street.household_id].postcode
            for p in truth.pop.members(h.id)
            if p.id not in truth.household_of(street.id)
        ],
    )
    assert neighbour is not None
    entity_people[_find(hub, truth, neighbour, setup)] = neighbour.id

    # When contacts about all the targets are put into every state
    ids = list(children.values())
    made = {state: make_state(hub, state, ids) for state in CONTACT_STATES}
    setup_done = time.perf_counter()

    matrix = Matrix(hub, schema, children, entity_people)
    assert matrix.covered_by_entities()
    with ThreadPoolExecutor(max_workers=2) as pool:
        # and every reader reads for every purpose: no contact named, then each contact,
        matrix.run_state("none", None, {}, pool)
        matrix.run_lists(pool)
        for state, cid in made.items():
            matrix.run_state(state, cid, {}, pool)
        # then under break-glass grants each reader asked for (those refused hold none),
        grants: dict[str, frozenset[str]] = {}
        for r in READERS:
            held = set()
            for cid_ in ids:
                body = hub.post(r, GLASS, {"child": cid_})
                if not body.get("errors") and (body.get("data") or {}).get("breakGlass"):
                    held.add(cid_)
            grants[r.key] = frozenset(held)
        print(f"[{hub.kind}] break-glass grants held: {[k for k, v in grants.items() if v]}")
        matrix.run_state("break_glass", None, grants, pool)
        # and once every grant has expired
        hub.clock.offset = timedelta(minutes=svc.ContactSettings().break_glass_minutes + 1)
        matrix.run_state("expired_grant", None, {}, pool)
        hub.clock.offset = timedelta()
    read_done = time.perf_counter()

    # Then every non-null value is one the oracle allows
    facts = asyncio.run(_contact_facts(hub.store_url))
    subjects = asyncio.run(_subjects(hub.store_url))

    def subject_people(sid: str) -> frozenset[str]:
        keys = subjects.get(sid)
        return truth.people_named(*keys) if keys else frozenset()

    oracle = lo.Oracle(truth, child_people)
    names = {v: k for k, v in children.items()}
    violations: list[tuple[str, ...]] = []
    checked = 0
    roots = {"child": "ChildRecord", "searchChildren": "ChildMatch", "contact": "Contact"}
    for read in matrix.reads:
        data = read.body.get("data") or {}
        grants_now = read.grants if read.state == "break_glass" else frozenset()
        contact = facts.get(read.contact or "")
        situation = lo.Situation(read.reader, read.purpose, contact, grants_now)
        rtype = roots.get(read.root, "Contact" if read.root == "contacts" else "_Entity")
        for value in data.values():
            for leaf in leaves(schema, value, rtype, (("Query", read.root),)):
                place = place_of(
                    truth, leaf, read, facts, child_people, entity_people, subject_people
                )
                checked += 1
                rule = oracle.check(situation, place)
                if rule:
                    violations.append(
                        (
                            hub.kind,
                            read.reader.key,
                            read.purpose,
                            read.state,
                            names.get(place.child or "", place.child or "-"),
                            ".".join(f for _, f in leaf.path),
                            repr(str(leaf.value)[:40]),
                            place.about(),
                            rule,
                        )
                    )
    done = time.perf_counter()
    size = (
        f"[{hub.kind}] leak matrix: {hub.queries} queries, {checked} values checked, "
        f"{len(violations)} violations; setup {setup_done - started:.1f}s, reads "
        f"{read_done - setup_done:.1f}s, oracle {done - read_done:.1f}s, total "
        f"{done - started:.1f}s; skipped selections: {sorted(schema.skipped)}"
    )
    print(size)
    by_rule: dict[str, int] = defaultdict(int)
    for v in violations:
        by_rule[v[-1]] += 1
    print(f"[{hub.kind}] violations by rule: {dict(sorted(by_rule.items()))}")
    for rule in sorted(by_rule):
        for v in [v for v in violations if v[-1] == rule][:3]:
            print(f"[{hub.kind}]   e.g. {' | '.join(v)}")
    errors: dict[tuple[str, Any], int] = defaultdict(int)
    for read in matrix.reads:
        for e in read.body.get("errors") or []:
            errors[(read.root, (e.get("extensions") or {}).get("code"))] += 1
    print(f"[{hub.kind}] errors by root and code: {dict(errors)}")
    for (root, code), n in errors.items():
        if code not in REFUSALS:
            sample = next(
                e
                for read in matrix.reads
                if read.root == root
                for e in read.body.get("errors") or []
                if (e.get("extensions") or {}).get("code") == code
            )
            failures.append(f"{n} {root} reads failed with {code}: {sample.get('message')}")

    dump = tmp_path_factory.mktemp("leaks") / f"violations-{hub.kind}.jsonl"
    dump.write_text("".join(json.dumps(v) + "\n" for v in violations))
    print(f"[{hub.kind}] every violation: {dump}")
    if hub.queries < MIN_QUERIES or checked < MIN_VALUES:
        failures.insert(
            0,
            f"the matrix shrank below its floor ({MIN_QUERIES} queries, "
            f"{MIN_VALUES} values): {size}",
        )
    assert not failures and not violations, "\n".join([*failures, lo.summarise(violations)])


def _find(hub: LeakHub, truth: lo.Truth, person: g.Person, contact: str) -> str:
    criteria = criteria_for(truth, person)
    found = hub.ok(SW, SEARCH_IDS, {"criteria": criteria, "contact": contact})
    ids = [m["id"] for m in found["searchChildren"]]
    assert len(ids) == 1, (person, found)
    return str(ids[0])
