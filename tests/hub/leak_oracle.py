"""The leak matrix's oracle: which values a reader may see, written from DOMAIN.md §3 ONLY.

It was written from the rules as DOMAIN.md states them, never from `policies/*.polar`,
`policies/*.cases.toml` or `hub/policy/engine.py`, and it must stay that way: the policies and this
oracle are two readings of the same text, and the matrix is worth something only because the
two can disagree. Where DOMAIN.md leaves a choice, the reading taken is said beside the rule.

Two halves:

- `Truth`: the synthetic population as the generator made it (hub/demo/generator.py) — who
  truly shares a child's home, whose record each agency item is, which patient is
  location-restricted, which intelligence is investigation-sensitive.
- `Oracle.check`: given the reader, purpose, contact facts and the place of a non-null value
  in a response, the rule it breaks (a short tag such as "2-household"), or None.

A value the oracle cannot place is the tag "unclassified": a field added to the schema later
fails the matrix until someone decides here what it is.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hub.demo import education_seed
from hub.demo import generator as g

AGENCIES = ("police", "health", "adult_social_care", "early_help", "education")
SOURCE_AGENCY = {
    "POLICE": "police",
    "HEALTH": "health",
    "ADULT_SOCIAL_CARE": "adult_social_care",
    "EARLY_HELP": "early_help",
    "EDUCATION": "education",
}
SECTION_AGENCY = {
    "police": "police",
    "health": "health",
    "adultSocialCare": "adult_social_care",
    "earlyHelp": "early_help",
    "education": "education",
}
IG_PURPOSES = frozenset({"IG_AUDIT", "SAR_RESPONSE"})
# Rule 9: the purposes that need special-category and criminal-offence detail. Reading:
# every purpose of safeguarding or early help work; not screening (which by rule 3 is
# "known: yes/no" only) and not the IG purposes (rule 1).
SPECIAL_PURPOSES = frozenset(
    {"MASH_RESEARCH", "THRESHOLD_DECISION", "S47_STRATEGY", "S17_ASSESSMENT", "EARLY_HELP"}
)
# Rule 9: which item kinds are special-category or criminal-offence data.
SPECIAL_KINDS = frozenset(
    {
        "HealthEncounter",
        "HealthPlan",
        "AdultSocialCareInvolvement",
        "PoliceIncident",
        "PoliceIntelligence",
        "PoliceWarningMarker",
    }
)
# Rule 2: the contact queue, for the MASH council team to allocate.
CONTACT_QUEUE = frozenset(
    {"id", "stage", "rag", "dueAt", "overdue", "receivedAt", "assignedTeams", "redactedFields"}
)
# Rule 9, read for schools: a special educational need that is a health condition (social,
# emotional and mental health; autism; hearing, visual, multi-sensory or physical
# impairment; severe or profound and multiple learning difficulties) is health data; a
# learning need (specific or moderate learning difficulty, speech and language) is not.
HEALTH_NEEDS = frozenset({"SEMH", "ASD", "HI", "VI", "MSI", "PD", "SLD", "PMLD"})
MASH_ROLES = frozenset({"mash_social_worker", "mash_manager"})
LOCATION_FIELDS = frozenset({"address", "postcode"})
# Rule 11 names the school beside address and phone: an item field saying which school.
SCHOOL_FIELDS = frozenset({"school", "schoolUrn"})

# Values that say nothing about a person: the hub's own ids, redactions and their reasons,
# source status, "known" booleans (rule 3 allows "known to X: yes/no" to anyone).
IDENTITY: frozenset[tuple[str, str]] = frozenset(
    {
        ("ChildRecord", "id"),
        ("Person", "id"),
        ("Person", "relationship"),
        ("ChildMatch", "id"),
        ("ChildMatch", "sources"),
        ("HouseholdBasis", "kind"),
        ("HouseholdBasis", "confirmed"),
    }
)
IDENTITY_TYPES = frozenset({"Redaction", "FieldRedaction", "RedactedPath", "SourceState"})
ENTRY_IDENTITY = frozenset({"id", "about", "aboutPersonId", "redactedFields"})


# --- ground truth -------------------------------------------------------------------------


def _key(given: str | None, family: str | None, born: date | None) -> tuple[str, str, str]:
    return ((given or "").lower(), (family or "").lower(), born.isoformat() if born else "")


@dataclass(frozen=True)
class Item:
    """An agency item as the generator made it: whom it is about, and its labels."""

    agency: str
    people: frozenset[str]
    handling_code: str | None = None
    investigation_sensitive: bool = False
    involvement_type: str | None = None
    special: bool = False  # special-category whatever its kind (a health-condition SEN need)


class Truth:
    """The generator's own population, read for what the hub should have done."""

    def __init__(self, pop: g.Population) -> None:
        self.pop = pop
        self.person = {p.id: p for p in pop.persons}
        self.household = {h.id: h for h in pop.households}
        self.items: dict[str, Item] = {}
        self.restricted = frozenset(p.person_id for p in pop.health.patients if p.restricted)
        self._names: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self._nhs: dict[str, set[str]] = defaultdict(set)
        self.eh_consent: dict[str, str] = {}
        self.pupils: frozenset[str] = frozenset()  # people the education system holds
        self._homes: dict[str, frozenset[str]] = {}
        self._households: dict[str, frozenset[str]] = {}
        self._where: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._addresses: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._index()

    def _index(self) -> None:
        pop = self.pop
        for p in pop.persons:
            self._names[_key(p.given_name, p.family_name, p.date_of_birth)].add(p.id)
            if p.nhs_number:
                self._nhs[p.nhs_number].add(p.id)
        views: list[Any] = [
            *pop.health.patients,
            *pop.police.persons,
            *pop.adult_social_care.persons,
            *pop.early_help.persons,
        ]
        for r in views:
            self._names[_key(r.given_name, r.family_name, r.date_of_birth)].add(r.person_id)
            if r.postcode and r.address:
                self._where[(r.postcode, r.address)].add(r.person_id)
                self._addresses[r.person_id].add((r.postcode, r.address))
            if r.nhs_number:
                self._nhs[r.nhs_number].add(r.person_id)
        police = {p.id: p.person_id for p in pop.police.persons}
        involved: dict[str, set[str]] = defaultdict(set)
        for v in pop.police.involvements:
            involved[v.incident_id].add(police[v.person_id])
        for inc in pop.police.incidents:
            self.items[inc.id] = Item("police", frozenset(involved[inc.id]))
        for intel in pop.police.intelligence:
            self.items[intel.id] = Item(
                "police",
                frozenset({police[intel.person_id]}),
                handling_code=intel.handling_code,
                investigation_sensitive=intel.investigation_sensitive,
            )
        for m in pop.police.missing_episodes:
            self.items[m.id] = Item("police", frozenset({police[m.person_id]}))
        for w in pop.police.warning_markers:
            self.items[w.id] = Item("police", frozenset({police[w.person_id]}))
        patient = {p.id: p.person_id for p in pop.health.patients}
        for e in pop.health.encounters:
            self.items[e.id] = Item("health", frozenset({patient[e.patient_id]}))
        for c in pop.health.care_plans:
            self.items[c.id] = Item("health", frozenset({patient[c.patient_id]}))
        asc = {p.id: p.person_id for p in pop.adult_social_care.persons}
        for i in pop.adult_social_care.involvements:
            self.items[i.id] = Item(
                "adult_social_care",
                frozenset({asc[i.asc_person_id]}),
                involvement_type=i.involvement_type,
            )
        eh = {p.id: p.person_id for p in pop.early_help.persons}
        for ep in pop.early_help.episodes:
            self.items[ep.id] = Item("early_help", frozenset({eh[ep.eh_person_id]}))
        latest: dict[str, tuple[date, str]] = {}
        for con in pop.early_help.consents:
            self.items[con.id] = Item("early_help", frozenset({eh[con.eh_person_id]}))
            who = eh[con.eh_person_id]
            if who not in latest or latest[who][0] <= con.recorded_on:
                latest[who] = (con.recorded_on, con.status)
        self.eh_consent = {who: status for who, (_, status) in latest.items()}
        self._education()

    def _education(self) -> None:
        """The education system's pupils and records, as its demo seeder derives them from
        the population (the generator itself knows nothing of schools)."""
        rows = education_seed.rows(self.pop)
        pupil = {local: person for _, local, person, *_ in rows["truth.persons"]}
        self.pupils = frozenset(pupil.values())
        for pid, given, family, _, born, _, postcode, _, address, _ in rows["education.pupils"]:
            who = pupil[pid]
            self._names[_key(given, family, date.fromisoformat(born))].add(who)
            if postcode and address:
                self._where[(postcode, address)].add(who)
                self._addresses[who].add((postcode, address))
        for rid, pid, record_type, fields in rows["education.records"]:
            need = json.loads(fields).get("primary_need") if record_type == "SEN" else None
            self.items[rid] = Item(
                "education", frozenset({pupil[pid]}), special=need in HEALTH_NEEDS
            )

    # -- homes ------------------------------------------------------------------------------

    def home(self, person_id: str) -> frozenset[str]:
        """Everyone who truly shares this person's home, the person included.

        SWITCH (ground-truth helper): the generator's `Population.housemates` where it exists
        (hostel rooms and flats are homes); until it lands, the generator's own households."""
        if person_id not in self._homes:
            if hasattr(self.pop, "housemates"):
                home = {p.id for p in self.pop.housemates(person_id)}
            else:
                hid = self.person[person_id].household_id
                home = {p.id for p in self.pop.persons if p.household_id == hid}
            self._homes[person_id] = frozenset(home | {person_id})
        return self._homes[person_id]

    def household_of(self, person_id: str) -> frozenset[str]:
        """Rule 2's household of this person: the true home, the people a source relates to
        them, and the people the sources record at the same address as written (a stale
        address is still an address the sources give: the hub cannot know better) — but
        never the other residents of a large shared address (a hostel, a block without
        flat numbers), who count only once an analyst confirms them (and none does here)."""
        if person_id not in self._households:
            related = {r.related_id for r in self.pop.relations if r.person_id == person_id}
            shared = self.shared_residents()
            recorded = self.recorded_at_home(person_id) - shared
            self._households[person_id] = self.home(person_id) | related | recorded
        return self._households[person_id]

    def recorded_at_home(self, person_id: str) -> frozenset[str]:
        if hasattr(self.pop, "recorded_at_home"):
            return frozenset(p.id for p in self.pop.recorded_at_home(person_id))
        mine = self._addresses.get(person_id, set())
        return frozenset(x for k in mine for x in self._where[k]) - {person_id}

    def shared_residents(self) -> frozenset[str]:
        """Everyone living at a large shared address."""
        if hasattr(self.pop, "shared_addresses"):
            return frozenset(x for a in self.pop.shared_addresses() for x in a.person_ids)
        return frozenset(p.id for h in hostel_households(self.pop) for p in self.pop.members(h.id))

    def location_protected(self, person_id: str) -> bool:
        """Rule 11: a location-restricted patient lives here, so no one's address shows."""
        return bool(self.home(person_id) & self.restricted)

    def people_named(
        self, nhs: str | None, given: str | None, family: str | None, born: date | None
    ) -> frozenset[str]:
        """The generator's people a hub subject (its search keys) may be."""
        if nhs and nhs in self._nhs:
            return frozenset(self._nhs[nhs])
        return frozenset(self._names.get(_key(given, family, born), set()))


def hostel_households(pop: g.Population) -> list[g.Household]:
    """Very large shared addresses (hostels) in the demo population.

    SWITCH (hostels): another engineer is adding hostels to the generator. This recognises a
    household marked as a hostel (a `kind` naming one) or an address that names one."""
    found = []
    for h in pop.households:
        kind = str(getattr(h, "shared", None) or getattr(h, "kind", None) or "")
        if "hostel" in kind.lower() or re.search(r"\bhostel\b", h.address, re.IGNORECASE):
            found.append(h)
    return found


# --- the situation of one request ---------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    key: str
    role: str
    agency: str
    team: str
    sub: str


@dataclass(frozen=True)
class ContactFacts:
    """A contact as recorded in the hub's store: the facts the rules read."""

    id: str
    stage: str
    staff: frozenset[str]
    teams: frozenset[str]
    task_agencies: frozenset[str]
    consent_agencies: frozenset[str]  # agencies the latest consent given covers
    override: bool
    s47: bool  # an s47 decision or strategy discussion recorded by a manager
    anonymous_referrer: bool
    children: frozenset[str]

    def worked_by(self, r: Reader) -> bool:
        """Rule 2: assigned worker or team, an agency with a research task, a MASH manager."""
        return (
            r.sub in self.staff
            or r.team in self.teams
            or r.agency in self.task_agencies
            or r.role == "mash_manager"
        )


@dataclass(frozen=True)
class Situation:
    reader: Reader
    purpose: str
    contact: ContactFacts | None
    grants: frozenset[str]  # children the reader holds an unexpired break-glass grant for


@dataclass
class Place:
    """Where a value sits: the (type, field) path from the root and what it is about."""

    path: tuple[tuple[str, str], ...]
    child: str | None = None  # the target child's hub id (a ChildRecord's subject)
    child_person: str | None = None  # that child in the generator
    section: str | None = None  # agency of the section the value is in
    item: str | None = None  # agency item id
    member: frozenset[str] | None = None  # generator people a household member may be
    member_agencies: frozenset[str] = frozenset()
    contact: ContactFacts | None = None
    search_match: str | None = None  # hub id of a search match

    def about(self) -> str:
        """Whom the value is about, for a violation's line: a household member as the
        generator's people it may be, an agency item by its id."""
        if self.member is not None:
            return "member:" + (",".join(sorted(self.member)) or "unidentified")
        if self.item is not None:
            return f"item:{self.item}"
        if self.contact is not None:
            return f"contact:{self.contact.id[:8]}"
        return ""


@dataclass
class Oracle:
    truth: Truth
    child_people: Mapping[str, str]  # hub id of a target child -> generator person
    tags: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    # -- the gates ------------------------------------------------------------------------

    def access(self, s: Situation, child: str) -> tuple[str | None, str | None]:
        """How this reader reaches this child's person-level data: ("glass" | "contact",
        None) or (None, the rule that says no)."""
        r = s.reader
        if r.role == "partner_system":
            return None, "17"  # flags only, whatever agency or team the token claims
        if s.purpose in IG_PURPOSES or r.role == "ig_officer":
            return None, "1"
        if s.purpose == "BREAK_GLASS":
            # Rule 15: an active grant for this child; an expired grant is nothing, and the
            # purpose named without a grant is a claim the facts do not back.
            return ("glass", None) if child in s.grants else (None, "15")
        c = s.contact
        if c is None or c.stage == "CLOSED" or child not in c.children:
            return None, "2"
        if not c.worked_by(r):
            return None, "2"
        return "contact", None

    def detail(self, s: Situation, agency: str | None, child_person: str) -> str | None:
        """Rule 3 (and 7): may another agency's detail go to this reader at this stage?
        `agency` None: information of some agency other than the reader's."""
        if agency == s.reader.agency:
            return None  # the reader's own agency's information
        c = s.contact
        assert c is not None
        if c.stage == "SCREENING":
            return "3-screening"
        if s.purpose == "THRESHOLD_DECISION" and c.stage != "DECISION":
            return "3-threshold"
        if c.s47:
            return None
        if agency == "early_help":
            # Rule 7: the family's consent (given on the contact, or as early help records
            # it for this child) or s47; a manager's override is not named by rule 7.
            if "early_help" in c.consent_agencies:
                return None
            if self.truth.eh_consent.get(child_person) == "GIVEN":
                return None
            return "7"
        if agency is None:
            consented = c.consent_agencies >= set(AGENCIES)
        else:
            consented = agency in c.consent_agencies
        if consented or c.override:
            return None
        return "3-s47-purpose" if s.purpose == "S47_STRATEGY" else "3-consent"

    # -- one value ------------------------------------------------------------------------

    def check(self, s: Situation, p: Place) -> str | None:
        typ, name = p.path[-1]
        if typ in IDENTITY_TYPES or (typ, name) in IDENTITY or name == "__typename":
            return None
        if name == "known" and typ.endswith("Section"):
            return None
        top = p.path[0][1]
        if top in ("contact", "contacts"):
            return self._contact(s, p)
        if top == "searchChildren":
            return self._search(s, p)
        if top in ("child", "_entities"):
            return self._record(s, p)
        return "unclassified"

    def _record(self, s: Situation, p: Place) -> str | None:
        kinds = [t for t, _ in p.path]
        fields = [f for _, f in p.path]
        typ, name = p.path[-1]
        if p.child is None:
            return "unclassified"
        # Rule 17's flags (whether each agency knows the child, child protection / looked
        # after, whether a contact is open): for partner systems, and for any reader who may
        # read the child.
        if "flags" in fields[1:]:
            if s.purpose in IG_PURPOSES or s.reader.role == "ig_officer":
                return "1"
            if s.reader.role == "partner_system":
                return None
            return self.access(s, p.child)[1]
        if (
            s.reader.role == "partner_system"
            and name == "agencies"
            and fields[1:] == ["person", "agencies"]
            and s.purpose not in IG_PURPOSES
        ):
            return None  # rule 17: whether each agency knows the child
        how, why = self.access(s, p.child)
        if why:
            return why
        assert p.child_person is not None
        if len(fields) >= 2 and fields[1] in ("links", "previouslyAccessedBy", "withheld"):
            return None  # identity work and rule 16, for those who read the child
        if {"household", "sharedAddressResidents"} & set(fields) or p.member is not None:
            if "decision" in fields:
                return None  # an analyst's decision on a resident: identity work
            return self._member(s, p, how)
        if typ == "Person" or (len(kinds) >= 2 and kinds[-2] == "Person" and typ != "Person"):
            if name == "agencies":
                return None  # "known to X" about the child: rule 3's yes/no
            if name in LOCATION_FIELDS and self.truth.location_protected(p.child_person):
                return "11"
            if typ == "Person" and name in (
                "givenName",
                "familyName",
                "dateOfBirth",
                "nhsNumber",
                "postcode",
                "address",
            ):
                return None  # identifying the child is the first step of screening
            return "unclassified"
        if p.item is not None:
            return self._item(s, p, how)
        if p.section is not None:
            return "unclassified"
        return "unclassified"

    def _member(self, s: Situation, p: Place, how: str | None) -> str | None:
        name = p.path[-1][1]
        assert p.child_person is not None
        household = self.truth.household_of(p.child_person)
        # Rule 2: a large shared address's residents need an analyst's confirmation before
        # they count as household; to give it, the analyst is shown who they are (never
        # their agencies' records), gated like the household (rule 3).
        fields = [f for _, f in p.path]
        shown_as_resident = "sharedAddressResidents" in fields
        residents = self.truth.shared_residents() if shown_as_resident else frozenset()
        if not p.member or not p.member <= (household | residents):
            return "2-household"  # a neighbour, or a resident shown as household
        if how == "contact":
            own = p.member_agencies and p.member_agencies <= {s.reader.agency}
            rule = None if own else self.detail(s, None, p.child_person)
            if rule:
                return rule
        if name in LOCATION_FIELDS and self.truth.location_protected(p.child_person):
            return "11"
        return None

    def _item(self, s: Situation, p: Place, how: str | None) -> str | None:
        typ, name = p.path[-1]
        if name in ENTRY_IDENTITY:
            return None
        item = self.truth.items.get(p.item or "")
        assert p.child_person is not None
        if item is None or item.agency != p.section:
            return "unclassified"  # an item the population never held, or in another section
        if not item.people & self.truth.household_of(p.child_person):
            return "2-household"
        r = s.reader
        if how == "contact":
            rule = self.detail(s, item.agency, p.child_person)
            if rule:
                return rule
            # Rule 9: special-category and criminal-offence detail for the purposes needing it
            other = item.agency != r.agency
            special = typ in SPECIAL_KINDS or item.special
            if other and special and s.purpose not in SPECIAL_PURPOSES:
                return "9"
        # Rule 11: a protected home's school is never shown, to any role.
        if name in SCHOOL_FIELDS and self.truth.location_protected(p.child_person):
            return "11"
        # Rule 4: minimum necessary by role.
        if r.role == "police_researcher" and typ == "HealthEncounter" and name == "reason":
            return "4"
        if r.role == "health_practitioner" and (
            (typ == "PoliceIntelligence" and name in ("summary", "text"))
            or (typ == "PoliceIncident" and name == "summary")
        ):
            return "4"
        # Rule 10: substance-misuse treatment stays with its originator.
        if item.involvement_type == "SUBSTANCE_MISUSE" and r.agency != item.agency:
            return "10"
        # Rule 13: investigation-sensitive intelligence not to non-police; handling code C
        # is shared as a summary only.
        if typ == "PoliceIntelligence" and r.agency != "police":
            if item.investigation_sensitive:
                return "13"
            if item.handling_code == "C" and name == "text":
                return "13"
        return None

    def _search(self, s: Situation, p: Place) -> str | None:
        r = s.reader
        if r.role == "partner_system":
            return "17"
        if s.purpose in IG_PURPOSES or r.role == "ig_officer":
            return "1"
        if s.purpose == "BREAK_GLASS":
            return None if p.search_match in s.grants else "15"
        # Finding who the child is is the identity step of §1 ("who is this child? open
        # case?"), before any contact exists: a person who reads child records for a child
        # purpose is shown the matches' identities (never their records: those need rule 2).
        return None

    def _contact(self, s: Situation, p: Place) -> str | None:
        r, c = s.reader, p.contact
        if c is None:
            return "unclassified"
        if r.role == "partner_system":
            return "17"
        top = p.path[1][1] if len(p.path) > 1 else ""
        if top in CONTACT_QUEUE:
            if (r.role in MASH_ROLES and r.agency == "council") or c.worked_by(r):
                return None
            return "2-contact-queue"
        if s.purpose in IG_PURPOSES or r.role == "ig_officer":
            return "1"
        if not c.worked_by(r):
            return "2-contact"
        _, name = p.path[-1]
        if (
            top == "referrer"
            and name in ("name", "contactDetails")
            and c.anonymous_referrer
            and r.agency != "council"
        ):
            return "12"
        return None


def summarise(violations: Sequence[tuple[str, ...]], limit: int = 30) -> str:
    """The count by rule, then the first `limit` violations, taken a rule at a time so
    that every rule broken shows."""
    by_rule: dict[str, int] = defaultdict(int)
    for v in violations:
        by_rule[v[-1]] += 1
    lines = [
        f"{len(violations)} values outside the oracle; by rule: {dict(sorted(by_rule.items()))}",
        "store | reader | purpose | state | subject | path | value | about | rule",
    ]
    queues = [[v for v in violations if v[-1] == rule] for rule in sorted(by_rule)]
    shown: list[tuple[str, ...]] = []
    while len(shown) < limit and any(queues):
        for q in queues:
            if q and len(shown) < limit:
                shown.append(q.pop(0))
    lines += [" | ".join(v) for v in shown]
    return "\n".join(lines)


def agencies_of(sources: Iterable[str]) -> frozenset[str]:
    return frozenset(SOURCE_AGENCY.get(x, x) for x in sources)
