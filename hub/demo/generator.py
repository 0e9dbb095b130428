"""Deterministic synthetic population for the demo source systems.

The MASH area's households are generated in fixed-size chunks (`CHUNK` households each).
Every chunk has its own random stream seeded from (seed, chunk index) and its own id ranges,
so a chunk depends only on (households, seed, index): chunks can be built in any order or in
parallel and the output is always the same. `generate_chunk` builds one chunk: the area's
households and people, then each agency's slice of them the way the agency records them
(its own ids, spellings, nicknames, stale addresses, missing NHS numbers), plus out-of-area
people the agency also holds, so that every source holds about 2.5 persons per area
household (PROTOCOL.md "Sizes"). `generate` materialises all chunks (small sizes, tests).

The showcase family of DOMAIN.md §6 is always household HH000000 (see the SHOWCASE_*
constants) and its records always take the first ids of every source.

Chunk 0 also holds two large shared addresses (DOMAIN.md §3 rule 2), built last so that no
other record's id or draw moves: a hostel (`HOSTEL_*`: single rooms and a mother with her
child, one building UPRN) and a block recorded without flat numbers (`BLOCK_*`: every flat
written as the block's name, each flat its own UPRN). Every area postcode is a street of 15
to 40 numbered houses: the longest (`Population.long_street`) has children with neighbours
known to the agencies. The ground truth the tests need is on `Population`: who truly
shares a person's home (`housemates`), their neighbours, the large shared addresses, and
each person's source records and items.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import nhs_number as _nhs

DEFAULT_TODAY = date(2026, 11, 26)
CHUNK = 2000  # households per chunk; part of the output's definition, do not change lightly
_STRIDE = 1_000_000  # id numbers of chunk i start at i * _STRIDE
PERSONS_PER_HOUSEHOLD = 2.5  # every source holds about this many persons per area household

# --- the showcase family (DOMAIN.md §6) ---------------------------------------------------
SHOWCASE_ADDRESS = "14 Larch Close, Hilltown"
SHOWCASE_POSTCODE = "HT4 2QX"
SHOWCASE_UPRN = "100023456789"
SHOWCASE_PREVIOUS_ADDRESS = "7 Mill Lane, Hilltown"
SHOWCASE_PREVIOUS_POSTCODE = "HT1 7LB"
EX_PARTNER_ADDRESS = "31 Quarry Road, Hilltown"
EX_PARTNER_POSTCODE = "HT2 5DN"
AVA_NHS = "9434765919"
NOAH_NHS = "9434765927"
JADE_NHS = "9434765935"
LIAM_NHS = "9434765943"
AVA_DOB = date(2016, 3, 14)
NOAH_DOB = date(2019, 5, 7)
NOAH_DOB_SWAPPED = date(2019, 7, 5)
JADE_DOB = date(1991, 8, 22)
LIAM_DOB = date(1988, 2, 3)
_SHOWCASE_DOBS = {AVA_DOB, NOAH_DOB, NOAH_DOB_SWAPPED, JADE_DOB, LIAM_DOB}
_SHOWCASE_NHS = {AVA_NHS, NOAH_NHS, JADE_NHS, LIAM_NHS}
_SHOWCASE_POSTCODES = {SHOWCASE_POSTCODE, SHOWCASE_PREVIOUS_POSTCODE, EX_PARTNER_POSTCODE}

# --- the large shared addresses (chunk 0; district 41 is outside the area's 1-40) ---------
HOSTEL_ADDRESS = "Harbour House, 2 Quay Street, Hilltown"
HOSTEL_POSTCODE = "HT41 1HH"
HOSTEL_UPRN = "300000000001"  # one reference for the building, as hostels often have
HOSTEL_SINGLE_ROOMS = 10
BLOCK_ADDRESS = "Kestrel Court, Hilltown"  # recorded without flat numbers
BLOCK_POSTCODE = "HT41 2KC"
BLOCK_FLATS = 8

# --- identity noise per source (probabilities per record) ---------------------------------
# nhs: record carries the NHS number; nickname/typo: given (or family) name altered;
# swap: day and month of birth swapped (when both <= 12); changed: a previous or other
# surname; double: double-barrelled surname; stale: a household that moved is still at its
# previous address; no_dob / no_postcode: field missing; baby: a newborn under ten weeks
# is recorded as "Baby <Surname>".
NOISE: dict[str, dict[str, float]] = {
    "health": {
        "nhs": 0.97,
        "nickname": 0.01,
        "typo": 0.01,
        "swap": 0.003,
        "changed": 0.01,
        "double": 0.005,
        "stale": 0.25,
        "no_dob": 0.0,
        "no_postcode": 0.005,
        "baby": 0.6,
    },
    "police": {
        "nhs": 0.10,
        "nickname": 0.12,
        "typo": 0.06,
        "swap": 0.02,
        "changed": 0.04,
        "double": 0.02,
        "stale": 0.35,
        "no_dob": 0.03,
        "no_postcode": 0.08,
        "baby": 0.0,
    },
    "adult_social_care": {
        "nhs": 0.20,
        "nickname": 0.05,
        "typo": 0.03,
        "swap": 0.01,
        "changed": 0.03,
        "double": 0.01,
        "stale": 0.2,
        "no_dob": 0.0,
        "no_postcode": 0.01,
        "baby": 0.0,
    },
    "early_help": {
        "nhs": 0.15,
        "nickname": 0.06,
        "typo": 0.04,
        "swap": 0.015,
        "changed": 0.03,
        "double": 0.04,
        "stale": 0.3,
        "no_dob": 0.0,
        "no_postcode": 0.01,
        "baby": 0.0,
    },
}


# --- population ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Household:
    id: str
    address: str  # "14 Larch Close, Hilltown"
    postcode: str
    uprn: str
    previous_address: str | None = None
    previous_postcode: str | None = None
    in_area: bool = True
    shared: str | None = None  # "hostel" | "block": one of a large shared address's homes


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str  # "female" | "male"
    nhs_number: str | None
    household_id: str
    role: str  # "child" | "parent" | "partner" | "adult"
    in_area: bool = True


@dataclass(frozen=True, slots=True)
class Relation:
    person_id: str
    related_id: str
    relation: str  # parent | child | partner | sibling | half_sibling | twin


# --- health (FHIR) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HealthPatient:
    id: str
    person_id: str
    nhs_number: str | None
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    address: str | None
    postcode: str | None
    gp: str
    restricted: bool = False  # sensitive patient: location must not be shown


@dataclass(frozen=True, slots=True)
class HealthEncounter:
    id: str
    patient_id: str
    start: date
    class_code: str  # EMER (A&E) | AMB (outpatient, clinic) | HH (home visit)
    reason: str
    status: str = "finished"  # finished | cancelled (was not brought)


@dataclass(frozen=True, slots=True)
class HealthCarePlan:
    id: str
    patient_id: str
    category: str  # CPP | LAC | UNBORN
    status: str  # active | completed
    start: date


@dataclass
class HealthSlice:
    patients: list[HealthPatient] = field(default_factory=list)
    encounters: list[HealthEncounter] = field(default_factory=list)
    care_plans: list[HealthCarePlan] = field(default_factory=list)


# --- police (SQL, POLE) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PolicePerson:
    id: str
    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date | None
    sex: str  # "F" | "M" | "U" (the force's own coding)
    nhs_number: str | None
    postcode: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class PoliceIncident:
    id: str
    occurred_on: date
    category: str  # DOMESTIC_ABUSE, ASSAULT, ...
    dash_risk: str | None  # STANDARD | MEDIUM | HIGH for domestic abuse
    summary: str
    postcode: str | None


@dataclass(frozen=True, slots=True)
class PoliceInvolvement:
    person_id: str  # PolicePerson.id
    incident_id: str
    role: str  # VICTIM | SUSPECT | PRESENT | WITNESS


@dataclass(frozen=True, slots=True)
class PoliceIntelligence:
    id: str
    person_id: str  # PolicePerson.id
    recorded_on: date
    source_grade: str  # A | B | C
    intelligence_grade: int  # 1..5
    handling_code: str  # P | C
    investigation_sensitive: bool
    summary: str
    text: str


@dataclass(frozen=True, slots=True)
class PoliceMissingEpisode:
    id: str
    person_id: str  # PolicePerson.id
    reported_on: date
    returned_on: date | None
    risk: str  # LOW | MEDIUM | HIGH


@dataclass(frozen=True, slots=True)
class PoliceWarningMarker:
    id: str
    person_id: str  # PolicePerson.id
    marker: str
    recorded_on: date


@dataclass
class PoliceSlice:
    persons: list[PolicePerson] = field(default_factory=list)
    incidents: list[PoliceIncident] = field(default_factory=list)
    involvements: list[PoliceInvolvement] = field(default_factory=list)
    intelligence: list[PoliceIntelligence] = field(default_factory=list)
    missing_episodes: list[PoliceMissingEpisode] = field(default_factory=list)
    warning_markers: list[PoliceWarningMarker] = field(default_factory=list)


# --- adult social care (REST) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AscPerson:
    id: str
    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str  # "Female" | "Male"
    nhs_number: str | None
    postcode: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class AscInvolvement:
    id: str
    asc_person_id: str
    involvement_type: str  # MENTAL_HEALTH | SUBSTANCE_MISUSE | CARE_ACT_S42 | CARE_NEEDS
    status: str  # OPEN | CLOSED
    start: date
    end: date | None
    summary: str


@dataclass
class AscSlice:
    persons: list[AscPerson] = field(default_factory=list)
    involvements: list[AscInvolvement] = field(default_factory=list)


# --- early help (SQL) ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EarlyHelpPerson:
    id: str
    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str  # "female" | "male"
    nhs_number: str | None
    postcode: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class EarlyHelpEpisode:
    id: str
    eh_person_id: str
    start: date
    end: date | None
    status: str  # OPEN | CLOSED
    lead_practitioner: str
    summary: str


@dataclass(frozen=True, slots=True)
class EarlyHelpConsent:
    id: str
    eh_person_id: str
    status: str  # GIVEN | REFUSED | NOT_SOUGHT | WITHDRAWN
    given_by: str | None
    recorded_on: date
    scope: str | None


@dataclass
class EarlyHelpSlice:
    persons: list[EarlyHelpPerson] = field(default_factory=list)
    episodes: list[EarlyHelpEpisode] = field(default_factory=list)
    consents: list[EarlyHelpConsent] = field(default_factory=list)


@dataclass
class Chunk:
    """One chunk of the population and every agency's records about it."""

    index: int
    households: list[Household] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    health: HealthSlice = field(default_factory=HealthSlice)
    police: PoliceSlice = field(default_factory=PoliceSlice)
    adult_social_care: AscSlice = field(default_factory=AscSlice)
    early_help: EarlyHelpSlice = field(default_factory=EarlyHelpSlice)


@dataclass
class Population(Chunk):
    """All chunks together (`generate`); for small sizes and tests."""

    seed: int = 0
    today: date = DEFAULT_TODAY

    def household(self, household_id: str) -> Household:
        return next(h for h in self.households if h.id == household_id)

    def members(self, household_id: str) -> list[Person]:
        return [p for p in self.persons if p.household_id == household_id]

    # -- ground truth for the tests (DOMAIN.md §3 rule 2) --------------------------------
    def person(self, person_id: str) -> Person:
        return next(p for p in self.persons if p.id == person_id)

    def housemates(self, person_id: str) -> list[Person]:
        """The people who truly share this person's home (same household: a hostel room
        or a flat is a home), the person excluded."""
        home = self.person(person_id).household_id
        return [p for p in self.members(home) if p.id != person_id]

    def neighbours(self, person_id: str) -> list[Person]:
        """Everyone at the person's postcode who does not share their home: the street's
        other houses, a hostel's other rooms, a block's other flats. Never household."""
        home = self.household(self.person(person_id).household_id)
        elsewhere = {
            h.id for h in self.households if h.postcode == home.postcode and h.id != home.id
        }
        return [p for p in self.persons if p.household_id in elsewhere]

    def recorded_at_home(self, person_id: str) -> list[Person]:
        """Everyone a source records at an address (postcode and address as written) where
        some source records this person, the person excluded. Sources keep stale addresses
        after a move, so this holds more than `housemates`: a family that moved out, the
        new family at a child's stale address. Rule 2 reads addresses as recorded; the
        demo writes every address one way, so equal strings are the same address."""
        where, addresses = self._recorded_addresses
        others = set().union(*(where[k] for k in addresses.get(person_id, ()))) - {person_id}
        return [p for p in self.persons if p.id in others]

    @functools.cached_property
    def _recorded_addresses(
        self,
    ) -> tuple[dict[tuple[str, str], set[str]], dict[str, set[tuple[str, str]]]]:
        """(people by recorded address, recorded addresses by person)."""
        where: dict[tuple[str, str], set[str]] = {}
        addresses: dict[str, set[tuple[str, str]]] = {}
        for record in self._person_records():
            if record.postcode and record.address:
                key = (record.postcode, record.address)
                where.setdefault(key, set()).add(record.person_id)
                addresses.setdefault(record.person_id, set()).add(key)
        return where, addresses

    def _person_records(self) -> list[Any]:
        return [
            *self.health.patients,
            *self.police.persons,
            *self.adult_social_care.persons,
            *self.early_help.persons,
        ]

    def shared_addresses(self) -> list[SharedAddress]:
        """The large shared addresses: many unrelated people recorded at one address."""
        found: dict[tuple[str, str], list[Household]] = {}
        for h in self.households:
            if h.shared:
                found.setdefault((h.postcode, h.address), []).append(h)
        return [
            SharedAddress(
                homes[0].shared or "",
                postcode,
                address,
                tuple(h.id for h in homes),
                tuple(p.id for h in homes for p in self.members(h.id)),
            )
            for (postcode, address), homes in found.items()
        ]

    def long_street(self) -> str:
        """The area postcode with the most homes (a street of numbered houses)."""
        counts: dict[str, int] = {}
        for h in self.households:
            if h.in_area and h.id.startswith("HH"):
                counts[h.postcode] = counts.get(h.postcode, 0) + 1
        return max(sorted(counts), key=lambda postcode: counts[postcode])

    def long_street_child(self) -> Person:
        """A school-age child on the long street, known to health by name and NHS number,
        living with someone, whose neighbours hold the most adult social care records."""
        postcode = self.long_street()
        street = {h.id for h in self.households if h.postcode == postcode}
        people = [p for p in self.persons if p.household_id in street]
        asc = {a.person_id for a in self.adult_social_care.persons}
        known = {
            p.person_id: p.given_name
            for p in self.health.patients
            if p.nhs_number and not p.restricted
        }
        size: dict[str, int] = {}
        asc_at: dict[str, int] = {}
        for p in people:
            size[p.household_id] = size.get(p.household_id, 0) + 1
            asc_at[p.household_id] = asc_at.get(p.household_id, 0) + (p.id in asc)
        children = [
            p
            for p in people
            if p.role == "child"
            and known.get(p.id) == p.given_name
            and 5 <= _age(p.date_of_birth, self.today) <= 15
            and size[p.household_id] > 1
        ]
        total = sum(asc_at.values())
        return max(children, key=lambda c: (total - asc_at[c.household_id], c.id))

    def hostel_child(self) -> Person:
        return self._shared_child("hostel")

    def block_child(self) -> Person:
        return self._shared_child("block")

    def _shared_child(self, kind: str) -> Person:
        [where] = [a for a in self.shared_addresses() if a.kind == kind]
        return next(self.person(i) for i in where.person_ids if self.person(i).role == "child")

    def records_of(self, person_ids: Iterable[str]) -> set[tuple[str, str]]:
        """(source, record id) of every source record of these people; source as the
        GraphQL SourceName (HEALTH, POLICE, ADULT_SOCIAL_CARE, EARLY_HELP)."""
        ids = set(person_ids)
        records: list[tuple[str, Any]] = [
            *(("HEALTH", r) for r in self.health.patients),
            *(("POLICE", r) for r in self.police.persons),
            *(("ADULT_SOCIAL_CARE", r) for r in self.adult_social_care.persons),
            *(("EARLY_HELP", r) for r in self.early_help.persons),
        ]
        return {(source, r.id) for source, r in records if r.person_id in ids}

    def items_of(self, person_ids: Iterable[str]) -> set[tuple[str, str]]:
        """(source, item id) of every item about these people (a police incident is about
        everyone involved in it)."""
        mine = {record for _, record in self.records_of(person_ids)}
        police, health = self.police, self.health
        asc, eh = self.adult_social_care, self.early_help
        about: list[tuple[str, str, str]] = [  # (source, item id, record id)
            *(("POLICE", i.incident_id, i.person_id) for i in police.involvements),
            *(("POLICE", i.id, i.person_id) for i in police.intelligence),
            *(("POLICE", m.id, m.person_id) for m in police.missing_episodes),
            *(("POLICE", w.id, w.person_id) for w in police.warning_markers),
            *(("HEALTH", e.id, e.patient_id) for e in health.encounters),
            *(("HEALTH", c.id, c.patient_id) for c in health.care_plans),
            *(("ADULT_SOCIAL_CARE", i.id, i.asc_person_id) for i in asc.involvements),
            *(("EARLY_HELP", e.id, e.eh_person_id) for e in eh.episodes),
            *(("EARLY_HELP", c.id, c.eh_person_id) for c in eh.consents),
        ]
        return {(source, item) for source, item, record in about if record in mine}


@dataclass(frozen=True)
class SharedAddress:
    """One large shared address: its kind ("hostel", "block"), postcode and address as
    recorded, the homes in it (hostel rooms, flats) and the people living there."""

    kind: str
    postcode: str
    address: str
    household_ids: tuple[str, ...]
    person_ids: tuple[str, ...]


# --- helpers ------------------------------------------------------------------------------
def nhs_check_digit(nine_digits: str) -> int | None:
    """Modulus-11 check digit of a 9-digit stem; None when the stem has no valid number."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine_digits))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_nhs_number(value: str) -> bool:
    value = value.replace(" ", "")
    return len(value) == 10 and value.isdigit() and bool(_nhs.is_valid(value))  # type: ignore[attr-defined]


def canonical_postcode(value: str) -> str:
    raw = "".join(value.split()).upper()
    return f"{raw[:-3]} {raw[-3:]}" if len(raw) > 3 else raw


def _age(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def chunk_count(households: int) -> int:
    return max(1, -(-households // CHUNK))


# --- vocabularies -------------------------------------------------------------------------
_CHILD_FEMALE = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Ada",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Willow",
    "Freya",
    "Florence",
    "Emily",
    "Ella",
    "Poppy",
    "Evie",
    "Elsie",
    "Charlotte",
    "Evelyn",
    "Sienna",
    "Sofia",
    "Daisy",
    "Phoebe",
    "Sophie",
    "Alice",
    "Harper",
    "Matilda",
    "Ruby",
    "Emilia",
    "Maya",
    "Millie",
    "Isabelle",
    "Eva",
    "Luna",
    "Esme",
    "Hallie",
    "Chloe",
    "Jessica",
    "Ellie",
    "Scarlett",
    "Layla",
    "Zara",
    "Hannah",
    "Lucy",
    "Erin",
    "Amber",
    "Holly",
    "Elizabeth",
    "Katherine",
    "Rebecca",
    "Abigail",
    "Victoria",
    "Megan",
    "Nadia",
    "Aisha",
    "Fatima",
    "Maryam",
    "Leah",
    "Jasmine",
    "Niamh",
    "Caitlin",
    "Bethany",
]
_CHILD_MALE = [
    "Noah",
    "Oliver",
    "George",
    "Arthur",
    "Muhammad",
    "Leo",
    "Harry",
    "Oscar",
    "Archie",
    "Henry",
    "Theodore",
    "Freddie",
    "Jack",
    "Charlie",
    "Theo",
    "Alfie",
    "Jacob",
    "Thomas",
    "Finley",
    "Arlo",
    "William",
    "Lucas",
    "Roman",
    "Tommy",
    "Isaac",
    "Teddy",
    "Alexander",
    "Luca",
    "Edward",
    "James",
    "Joshua",
    "Albie",
    "Elijah",
    "Max",
    "Mohammed",
    "Reuben",
    "Mason",
    "Sebastian",
    "Rory",
    "Jude",
    "Louie",
    "Benjamin",
    "Ethan",
    "Adam",
    "Hugo",
    "Joseph",
    "Reggie",
    "Ronnie",
    "Daniel",
    "Samuel",
    "Michael",
    "Matthew",
    "Christopher",
    "Robert",
    "Liam",
    "Dylan",
    "Owen",
    "Harrison",
    "Zachary",
    "Olly",
    "Ibrahim",
    "Yusuf",
    "Kai",
    "Tyler",
    "Callum",
]
_STREET_SUFFIXES = [
    "Road",
    "Street",
    "Lane",
    "Close",
    "Avenue",
    "Drive",
    "Way",
    "Crescent",
    "Grove",
    "Gardens",
    "Court",
    "Place",
    "Terrace",
    "Rise",
    "View",
    "Walk",
    "Mews",
    "Row",
    "Hill",
    "Park",
]
_STREET_WORDS = [
    "Oak",
    "Ash",
    "Elm",
    "Birch",
    "Willow",
    "Beech",
    "Rowan",
    "Hazel",
    "Cedar",
    "Holly",
    "Mill",
    "Church",
    "Station",
    "Park",
    "Bridge",
    "Chapel",
    "Victoria",
    "Albert",
    "Queen",
    "King",
    "Orchard",
    "Meadow",
    "Brook",
    "Spring",
    "Granary",
    "Quarry",
    "Castle",
    "Windmill",
    "Forge",
    "Abbey",
    "Priory",
    "Market",
    "School",
    "Green",
]
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_AREA_PREFIX = "HT"
_OUT_OF_AREA_PREFIXES = ("NB", "KW", "SD", "LR", "TQ", "WM", "BX", "DY")
_AE_REASONS = (
    "Head injury",
    "Fall from height",
    "Burn to hand",
    "Suspected fracture of wrist",
    "Ingestion of medication",
    "Asthma exacerbation",
    "Laceration to forehead",
    "Bruising to upper arm",
    "Abdominal pain",
    "Febrile illness",
    "Chest pain",
    "Alcohol intoxication",
    "Self-harm: superficial cuts",
)
_OUTPATIENT_REASONS = (
    "Paediatric outpatient review",
    "Community paediatrics",
    "Speech and language therapy",
    "Orthopaedic follow-up",
    "Diabetes clinic",
)
_WAS_NOT_BROUGHT = (
    "Was not brought: dental",
    "Was not brought: audiology",
    "Was not brought: paediatric review",
    "Was not brought: immunisations",
)
_HEALTH_VISITS = (
    "Health visitor: new birth visit",
    "Health visitor: 6-8 week review",
    "Health visitor: 1 year review",
    "Health visitor: 2-2.5 year review",
    "Health visitor: targeted support visit",
)
_SCHOOL_NURSE = (
    "School nurse: health needs assessment",
    "School nurse: emotional wellbeing drop-in",
    "School nurse: enuresis support",
)
_CAMHS = (
    "CAMHS: initial assessment",
    "CAMHS: follow-up appointment",
    "CAMHS: crisis assessment",
)
_MATERNITY = ("Maternity: booking appointment", "Maternity: antenatal review")
_GP_NAMES = (
    "Hilltown Medical Practice",
    "Riverside Surgery",
    "Park Road Health Centre",
    "Oakfield Family Practice",
    "Station Road Surgery",
    "Castle View Medical Centre",
    "Meadowbank Surgery",
    "The Old Forge Practice",
    "Abbey Green Health Centre",
    "Northgate Medical Group",
)
_PRACTITIONERS = (
    "Sam Patel (Family Support Worker)",
    "Rosie Hughes (Family Support Worker)",
    "Tom Walsh (School Early Help Lead)",
    "Priya Shah (Family Support Worker)",
    "Dan Morgan (Youth Worker)",
    "Helen Carr (Health Visitor)",
    "Grace Okafor (Family Support Worker)",
    "Mark Ellis (Parenting Practitioner)",
)
_EH_SUMMARIES = (
    "Support with school attendance and routines",
    "Parenting support following family breakdown",
    "Support with housing and financial difficulties",
    "Emotional wellbeing support for child",
    "Team around the family: behaviour at home and school",
    "Team around the family: young carer support",
    "Early help assessment: parental conflict",
)
_ASC_TYPES = (  # (type, weight for 18-64, weight for 65+)
    ("CARE_NEEDS", 0.30, 0.65),
    ("MENTAL_HEALTH", 0.38, 0.10),
    ("SUBSTANCE_MISUSE", 0.17, 0.03),
    ("CARE_ACT_S42", 0.15, 0.22),
)
_ASC = {
    "MENTAL_HEALTH": (
        "Community mental health team: depression and anxiety",
        "Mental health assessment following crisis",
        "Ongoing support from community mental health team",
        "Approved mental health professional assessment",
    ),
    "SUBSTANCE_MISUSE": (
        "Alcohol treatment programme",
        "Opiate substitution therapy",
        "Referral to drug and alcohol service",
    ),
    "CARE_ACT_S42": (
        "Section 42 enquiry: financial abuse concern",
        "Section 42 enquiry: neglect concern",
        "Section 42 enquiry: self-neglect",
        "Section 42 enquiry: domestic abuse",
    ),
    "CARE_NEEDS": (
        "Care and support plan: personal care",
        "Carer's assessment",
        "Reablement following hospital discharge",
        "Care and support plan: learning disability",
    ),
}
_OTHER_INCIDENTS = (  # (category, summary, weight)
    ("ANTI_SOCIAL_BEHAVIOUR", "Neighbour dispute and anti-social behaviour", 0.24),
    ("ASSAULT", "Assault reported in public place", 0.16),
    ("THEFT", "Theft from a motor vehicle", 0.14),
    ("CRIMINAL_DAMAGE", "Criminal damage to property", 0.12),
    ("PUBLIC_ORDER", "Public order offence in the town centre", 0.08),
    ("DRUGS", "Possession of a controlled drug", 0.08),
    ("ROAD_TRAFFIC", "Road traffic collision", 0.10),
    ("SEXUAL_OFFENCE", "Sexual offence reported", 0.03),
    ("CONCERN_FOR_WELFARE", "Concern for welfare call", 0.05),
)
_MARKERS = (
    "VIOLENT",
    "WEAPONS",
    "DRUGS",
    "MENTAL_HEALTH",
    "SELF_HARM",
    "DOMESTIC_ABUSE_PERPETRATOR",
    "ESCAPE_RISK",
)
_INTEL = (  # (summary, text)
    (
        "Information about domestic abuse by the subject",
        "Information received about abusive and controlling behaviour towards a partner.",
    ),
    (
        "Subject associating with known drug suppliers",
        "Subject seen regularly with individuals linked to local drug supply.",
    ),
    (
        "Concern about child exploitation",
        "Young person seen getting into vehicles with older males late at night.",
    ),
    (
        "Subject believed to carry a knife",
        "Information that the subject has been seen carrying a bladed article.",
    ),
)


# --- pools built once per process (Faker only here; per-record Faker is far too slow) ------
@dataclass(frozen=True)
class _Pools:
    adult_female: tuple[str, ...]
    adult_male: tuple[str, ...]
    surnames: tuple[str, ...]  # expanded by frequency: uniform choice is weighted
    area_towns: tuple[str, ...]
    other_towns: tuple[str, ...]
    streets: tuple[str, ...]
    nicknames: dict[str, tuple[str, ...]]
    similar: dict[tuple[str, str], tuple[str, ...]]  # (sex, first two letters) -> names


@functools.cache
def _pools(seed: int) -> _Pools:
    from faker import Faker
    from faker.providers.person.en_GB import Provider as PersonProvider
    from nicknames import NickNamer

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    weights: dict[str, float] = dict(PersonProvider.last_names)
    surnames = tuple(n for n, w in weights.items() for _ in range(max(1, round(w * 50))))
    towns = ["Hilltown"]
    while len(towns) < 9:
        if (town := fake.city()) not in towns:
            towns.append(town)
    others: list[str] = []
    while len(others) < 40:
        if (town := fake.city()) not in towns and town not in others:
            others.append(town)
    streets = sorted(
        {f"{w} {s}" for w in _STREET_WORDS for s in _STREET_SUFFIXES}
        | {f"{fake.last_name()} {rng_s}" for rng_s in _STREET_SUFFIXES for _ in range(40)}
    )
    adult_f = tuple(dict.fromkeys(PersonProvider.first_names_female))
    adult_m = tuple(dict.fromkeys(PersonProvider.first_names_male))
    nn = NickNamer()
    nick: dict[str, tuple[str, ...]] = {}
    for name in {*adult_f, *adult_m, *_CHILD_FEMALE, *_CHILD_MALE}:
        options = sorted(
            n.capitalize() for n in nn.nicknames_of(name) if n.isalpha() and len(n) > 2
        )
        if options:
            nick[name] = tuple(options)
    similar: dict[tuple[str, str], list[str]] = {}
    for sex, names in (("female", _CHILD_FEMALE), ("male", _CHILD_MALE)):
        for name in names:
            similar.setdefault((sex, name[:2]), []).append(name)
    return _Pools(
        adult_f,
        adult_m,
        surnames,
        tuple(towns),
        tuple(others),
        tuple(streets),
        nick,
        {k: tuple(v) for k, v in similar.items()},
    )


def _postcode(prefix: str, n: int) -> str:
    """The n-th postcode of an area prefix: district 1-40, sector 0-9, two unit letters."""
    n, u2 = divmod(n, 20)
    n, u1 = divmod(n, 20)
    district, sector = divmod(n, 10)
    letters = _POSTCODE_LETTERS
    return f"{prefix}{district + 1} {sector}{letters[u1]}{letters[u2]}"


@dataclass(frozen=True)
class _Area:
    """The area's postcodes and which households live in each (15-40 a postcode)."""

    starts: list[int]  # first household index of each postcode
    postcodes: list[str]
    streets: list[str]  # "Street, Town" of each postcode


@functools.cache
def _area(households: int, seed: int) -> _Area:
    rng = random.Random(f"mash-area:{seed}")
    pools = _pools(seed)
    starts = [0]
    while starts[-1] < households:
        starts.append(starts[-1] + (1 if len(starts) == 1 else rng.randint(15, 40)))
    starts.pop()
    capacity = 40 * 10 * 400
    picks = rng.sample(range(capacity), min(capacity, len(starts) + 8))
    codes = [c for c in (_postcode(_AREA_PREFIX, n) for n in picks) if c not in _SHOWCASE_POSTCODES]
    codes = [SHOWCASE_POSTCODE, *codes[: len(starts) - 1]]
    streets = ["Larch Close, Hilltown"] + [
        f"{rng.choice(pools.streets)}, {rng.choice(pools.area_towns)}"
        for _ in range(len(starts) - 1)
    ]
    return _Area(starts, codes, streets)


# --- one chunk ----------------------------------------------------------------------------
class _Ids:
    """Ids of one chunk: `prefix` + number, numbers of chunk i in [i * _STRIDE, ...)."""

    def __init__(self, index: int, first: int = 1) -> None:
        self._base = index * _STRIDE
        self._first = first
        self._counters: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        n = self._counters.get(prefix, self._first)
        self._counters[prefix] = n + 1
        return f"{prefix}{self._base + n:06d}"


class _Builder:
    def __init__(self, households: int, seed: int, index: int, today: date) -> None:
        self.households, self.seed, self.index, self.today = households, seed, index, today
        self.rng = random.Random(f"mash-demo:{seed}:{index}")
        self.pools = _pools(seed)
        self.area = _area(households, seed)
        self.ids = _Ids(index)
        self.person_ids = _Ids(index, first=0)
        self.chunk = Chunk(index)
        self.today_ord = today.toordinal()
        self._nhs_k = index * 100_000
        self._nhs_offset = (seed * 1_000_003) % 99_000_000
        self.homes: dict[str, Household] = {}
        self.moved_on: dict[str, date] = {}

    # -- basic draws ---------------------------------------------------------------------
    def nhs(self) -> str:
        while True:
            self._nhs_k += 1
            stem = str(900_000_000 + (self._nhs_k * 7_654_321 + self._nhs_offset) % 99_000_000)
            check = nhs_check_digit(stem)
            if check is not None and (number := f"{stem}{check}") not in _SHOWCASE_NHS:
                return number

    def dob(self, min_age: float, max_age: float) -> date:
        rng = self.rng
        d = date.fromordinal(
            self.today_ord - rng.randrange(int(min_age * 365.25), int(max_age * 365.25) + 1)
        )
        while d in _SHOWCASE_DOBS:
            d += timedelta(days=1)
        return d

    def given(self, sex: str, dob: date) -> str:
        young = dob.year >= 1994
        if sex == "female":
            return self.rng.choice(_CHILD_FEMALE if young else self.pools.adult_female)
        return self.rng.choice(_CHILD_MALE if young else self.pools.adult_male)

    def surname(self) -> str:
        return self.rng.choice(self.pools.surnames)

    # -- households ----------------------------------------------------------------------
    def area_household(self, h: int) -> Household:
        area, rng = self.area, self.rng
        j = bisect.bisect_right(area.starts, h) - 1
        address = f"{2 * (h - area.starts[j]) + 1} {area.streets[j]}"
        prev: tuple[str | None, str | None] = (None, None)
        if rng.random() < 0.18 and len(area.starts) > 2:
            k = rng.randrange(1, len(area.starts))
            prev = (f"{rng.randint(1, 90)} {area.streets[k]}", area.postcodes[k])
        uprn = str(100_000_000_000 + (h * 7_919_311 + 12_345) % 899_999_999_999)
        return Household(f"HH{h:06d}", address, area.postcodes[j], uprn, prev[0], prev[1])

    def outside_household(self) -> Household:
        rng, pools = self.rng, self.pools
        prefix = rng.choice(_OUT_OF_AREA_PREFIXES)
        street = f"{rng.choice(pools.streets)}, {rng.choice(pools.other_towns)}"
        hid = self.ids("HX")
        address = f"{rng.randint(1, 160)} {street}"
        postcode = _postcode(prefix, rng.randrange(16_000))
        prev: tuple[str | None, str | None] = (None, None)
        if rng.random() < 0.18:
            number, street = rng.randint(1, 160), rng.choice(pools.streets)
            town = rng.choice(pools.other_towns)
            prev = (f"{number} {street}, {town}", _postcode(prefix, rng.randrange(16_000)))
        uprn = f"2{self.index * _STRIDE + int(hid[2:]) % _STRIDE:011d}"
        return Household(hid, address, postcode, uprn, prev[0], prev[1], in_area=False)

    def person(
        self, hh: Household, given: str, family: str, dob: date, sex: str, role: str
    ) -> Person:
        rng = self.rng
        age_days = self.today_ord - dob.toordinal()
        nhs = None if (age_days < 42 and rng.random() < 0.3) or rng.random() < 0.01 else self.nhs()
        p = Person(self.person_ids("PER"), given, family, dob, sex, nhs, hh.id, role, hh.in_area)
        self.chunk.persons.append(p)
        return p

    def relate(self, a: Person, b: Person, relation: str, back: str) -> None:
        self.chunk.relations.append(Relation(a.id, b.id, relation))
        self.chunk.relations.append(Relation(b.id, a.id, back))

    _KINDS = (
        ("single", 0.20),
        ("couple", 0.24),
        ("pensioners", 0.09),
        ("lone_parent", 0.12),
        ("two_parents", 0.24),
        ("blended", 0.06),
        ("sharers", 0.05),
    )
    _ADULT_KINDS = (("single", 0.4), ("couple", 0.35), ("pensioners", 0.25))
    _FAMILY_KINDS = (("lone_parent", 0.35), ("two_parents", 0.5), ("blended", 0.15))

    def household(self, hh: Household, kinds: tuple[tuple[str, float], ...]) -> list[Person]:
        rng = self.rng
        self.chunk.households.append(hh)
        self.homes[hh.id] = hh
        if hh.previous_postcode:
            self.moved_on[hh.id] = self.today - timedelta(days=rng.randrange(30, 3 * 365))
        r, kind = rng.random(), kinds[-1][0]
        for name, weight in kinds:
            if r < weight:
                kind = name
                break
            r -= weight
        members: list[Person] = []
        if kind in ("single", "pensioners", "sharers", "couple"):
            n = {"single": 1, "pensioners": rng.choice((1, 2, 2)), "couple": 2}.get(
                kind, rng.randint(2, 4)
            )
            ages = (66, 95) if kind == "pensioners" else (19, 35) if kind == "sharers" else (19, 85)
            family = self.surname()
            for i in range(n):
                sex = (
                    ("female", "male")[i % 2]
                    if kind != "sharers" and rng.random() < 0.96
                    else rng.choice(("female", "male"))
                )
                dob = (
                    self.dob(*ages)
                    if i == 0 or kind == "sharers"
                    else self.dob(
                        max(ages[0], _age(members[0].date_of_birth, self.today) - 6),
                        min(ages[1], _age(members[0].date_of_birth, self.today) + 6),
                    )
                )
                surname = (
                    family
                    if kind != "sharers" and (i == 0 or rng.random() < 0.7)
                    else self.surname()
                )
                role = "partner" if kind in ("couple", "pensioners") and i else "adult"
                members.append(self.person(hh, self.given(sex, dob), surname, dob, sex, role))
            if kind in ("couple", "pensioners") and n == 2:
                self.relate(members[0], members[1], "partner", "partner")
            return members
        # families with children
        mother_age = rng.randint(21, 52)
        mother_dob = self.dob(mother_age, mother_age + 0.99)
        lone_father = kind == "lone_parent" and rng.random() < 0.1
        family = self.surname()
        parent = self.person(
            hh,
            self.given("male" if lone_father else "female", mother_dob),
            family,
            mother_dob,
            "male" if lone_father else "female",
            "parent",
        )
        members.append(parent)
        other: Person | None = None
        child_family = family
        if kind == "two_parents":
            fdob = self.dob(max(19, mother_age - 3), mother_age + 7)
            ffam = family if rng.random() < 0.8 else self.surname()
            other = self.person(hh, self.given("male", fdob), ffam, fdob, "male", "parent")
            child_family = ffam if rng.random() < 0.6 else family
            if ffam != family and rng.random() < 0.15:
                child_family = f"{family}-{ffam}"
            self.relate(parent, other, "partner", "partner")
        elif kind == "blended":
            pdob = self.dob(max(19, mother_age - 5), mother_age + 8)
            other = self.person(
                hh, self.given("male", pdob), self.surname(), pdob, "male", "partner"
            )
            child_family = self.surname()  # the children's father lives elsewhere
            self.relate(parent, other, "partner", "partner")
        members += self.children(hh, parent, other, kind, child_family, mother_age)
        return members

    def children(
        self,
        hh: Household,
        mother: Person,
        other: Person | None,
        kind: str,
        family: str,
        mother_age: int,
    ) -> list[Person]:
        rng = self.rng
        n = rng.choice((1, 1, 2, 2, 2, 3, 3, 4))
        oldest = min(17, mother_age - 18)
        first_ord = self.today_ord - rng.randrange(
            max(0, min(oldest, 2 * (n - 1))) * 365, oldest * 365 + 365
        )
        kids: list[Person] = []
        born = first_ord
        twins_at = rng.randrange(n - 1) if n >= 2 and rng.random() < 0.04 else -1
        own_of: dict[str, bool] = {}
        second_family = other.family_name if kind == "blended" and other is not None else family
        for c in range(n):
            if c and c != twins_at + 1:
                born += rng.randrange(420, 1600)
            if born > self.today_ord:
                break
            dob = date.fromordinal(born)
            while dob in _SHOWCASE_DOBS:
                dob += timedelta(days=1)
                born += 1
            # in a blended family the younger children are the new partner's
            own = (
                kind == "blended" and c >= max(1, n - 1) and other is not None and c != twins_at + 1
            )
            surname = second_family if own else family
            if c == twins_at + 1 and kids:
                twin = kids[-1]
                sex = twin.sex if rng.random() < 0.5 else rng.choice(("female", "male"))
                similar = self.pools.similar.get((sex, twin.given_name[:2]), ())
                options = [s for s in similar if s != twin.given_name]
                given = (
                    rng.choice(options) if options and rng.random() < 0.6 else self.given(sex, dob)
                )
                child = self.person(hh, given, twin.family_name, twin.date_of_birth, sex, "child")
                own = own_of[twin.id]
                self.relate(twin, child, "twin", "twin")
            else:
                sex = rng.choice(("female", "male"))
                child = self.person(hh, self.given(sex, dob), surname, dob, sex, "child")
            self.relate(mother, child, "parent", "child")
            if other is not None and (kind == "two_parents" or own):
                self.relate(other, child, "parent", "child")
            for sib in kids:
                if sib.id == child.id or (c == twins_at + 1 and sib is kids[-1]):
                    continue
                half = own != own_of[sib.id]
                self.relate(
                    sib,
                    child,
                    "half_sibling" if half else "sibling",
                    "half_sibling" if half else "sibling",
                )
            own_of[child.id] = own
            kids.append(child)
        return kids

    # -- how a source writes a person down -----------------------------------------------
    def view(
        self, source: str, p: Person, allow_baby: bool = False
    ) -> tuple[str, str, date | None, str | None, str | None, str | None]:
        """(given, family, dob, nhs, postcode, address) as `source` recorded `p`."""
        rng, noise = self.rng, NOISE[source]
        given, family, dob = p.given_name, p.family_name, p.date_of_birth
        nhs = p.nhs_number if p.nhs_number and rng.random() < noise["nhs"] else None
        if allow_baby and self.today_ord - dob.toordinal() < 70 and rng.random() < noise["baby"]:
            given = "Baby"
        else:
            r = rng.random()
            if r < noise["nickname"]:
                given = rng.choice(self.pools.nicknames.get(given, (given,)))
            elif r < noise["nickname"] + noise["typo"]:
                if rng.random() < 0.5:
                    given = _typo(rng, given)
                else:
                    family = _typo(rng, family)
            r = rng.random()
            if r < noise["changed"]:
                family = self.surname()
            elif r < noise["changed"] + noise["double"] and "-" not in family:
                family = (
                    f"{family}-{self.surname()}"
                    if rng.random() < 0.5
                    else f"{self.surname()}-{family}"
                )
        out_dob: date | None = dob
        if rng.random() < noise["swap"] and dob.day <= 12 and dob.day != dob.month:
            out_dob = date(dob.year, dob.day, dob.month)
        if rng.random() < noise["no_dob"]:
            out_dob = None
        home = self.homes[p.household_id]
        address: str | None = home.address
        postcode: str | None = home.postcode
        if home.previous_postcode and rng.random() < noise["stale"]:
            address, postcode = home.previous_address, home.previous_postcode
        if rng.random() < noise["no_postcode"]:
            address = postcode = None
        return given, family, out_dob, nhs, postcode, address

    # -- the agencies --------------------------------------------------------------------
    def health_patient(self, p: Person) -> None:
        rng, h, today = self.rng, self.chunk.health, self.today
        given, family, dob, nhs, postcode, address = self.view("health", p, allow_baby=True)
        patient = HealthPatient(
            self.ids("pat-"),
            p.id,
            nhs,
            given,
            family,
            dob or p.date_of_birth,
            p.sex,
            address,
            postcode,
            rng.choice(_GP_NAMES),
            restricted=rng.random() < 0.01,
        )
        h.patients.append(patient)
        age = _age(p.date_of_birth, today)

        def encounter(days: int, cls: str, reason: str, status: str = "finished") -> None:
            when = today - timedelta(days=rng.randrange(1, days))
            if when < p.date_of_birth:
                when = p.date_of_birth + timedelta(days=rng.randrange(0, 30))
            h.encounters.append(
                HealthEncounter(self.ids("enc-"), patient.id, when, cls, reason, status)
            )

        r = rng.random()
        if r < (0.16 if age < 18 else 0.12):
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                encounter(3 * 365, "EMER", rng.choice(_AE_REASONS))
        if age < 5 and rng.random() < 0.6:
            for _ in range(rng.choice((1, 1, 2))):
                encounter(min(5 * 365, age * 365 + 60), "HH", rng.choice(_HEALTH_VISITS))
        elif 5 <= age < 17 and rng.random() < 0.04:
            encounter(2 * 365, "AMB", rng.choice(_SCHOOL_NURSE))
        if age < 18:
            if rng.random() < 0.04:
                encounter(2 * 365, "AMB", rng.choice(_OUTPATIENT_REASONS))
            if rng.random() < 0.03:
                encounter(2 * 365, "AMB", rng.choice(_WAS_NOT_BROUGHT), "cancelled")
            if age >= 10 and rng.random() < 0.03:
                encounter(2 * 365, "AMB", rng.choice(_CAMHS))
            r = rng.random()
            if r < 0.005:
                status = "active" if rng.random() < 0.7 else "completed"
                h.care_plans.append(
                    HealthCarePlan(
                        self.ids("cp-"),
                        patient.id,
                        "CPP",
                        status,
                        today - timedelta(days=rng.randrange(10, 900)),
                    )
                )
            elif r < 0.012:
                h.care_plans.append(
                    HealthCarePlan(
                        self.ids("cp-"),
                        patient.id,
                        "LAC",
                        "active",
                        today - timedelta(days=rng.randrange(10, 1500)),
                    )
                )
        elif p.sex == "female" and 18 <= age <= 44 and rng.random() < 0.04:
            encounter(270, "AMB", rng.choice(_MATERNITY))
            if rng.random() < 0.04:
                h.care_plans.append(
                    HealthCarePlan(
                        self.ids("cp-"),
                        patient.id,
                        "UNBORN",
                        "active",
                        today - timedelta(days=rng.randrange(10, 120)),
                    )
                )

    def police_content(self, members: list[Person], forced: bool) -> None:
        """Police records about one household (always when `forced`: out-of-area)."""
        rng, s, today = self.rng, self.chunk.police, self.today
        made: dict[str, PolicePerson] = {}

        def pp(p: Person) -> PolicePerson:
            if p.id not in made:
                given, family, dob, nhs, postcode, address = self.view("police", p)
                sex = "U" if rng.random() < 0.01 else ("F" if p.sex == "female" else "M")
                made[p.id] = PolicePerson(
                    self.ids("PP"), p.id, given, family, dob, sex, nhs, postcode, address
                )
                s.persons.append(made[p.id])
            return made[p.id]

        adults = [p for p in members if p.role != "child"]
        children = [p for p in members if p.role == "child"]
        teens = [c for c in children if 11 <= _age(c.date_of_birth, today) <= 17]
        women = [p for p in adults if p.sex == "female"]
        men = [p for p in adults if p.sex == "male"]
        postcode = self.homes[members[0].household_id].postcode if members else None

        def when(days: int = 4 * 365) -> date:
            return today - timedelta(days=rng.randrange(5, days))

        r = rng.random()
        if women and men and r < 0.35:
            victim, suspect = rng.choice(women), rng.choice(men)
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
                risk = rng.choices(("STANDARD", "MEDIUM", "HIGH"), (0.6, 0.28, 0.12))[0]
                inc = PoliceIncident(
                    self.ids("INC"),
                    when(),
                    "DOMESTIC_ABUSE",
                    risk,
                    "Domestic abuse reported at the home address",
                    postcode,
                )
                s.incidents.append(inc)
                s.involvements.append(PoliceInvolvement(pp(victim).id, inc.id, "VICTIM"))
                s.involvements.append(PoliceInvolvement(pp(suspect).id, inc.id, "SUSPECT"))
                for c in children:
                    if rng.random() < 0.6:
                        s.involvements.append(PoliceInvolvement(pp(c).id, inc.id, "PRESENT"))
            if rng.random() < 0.4:
                self.intel(pp(suspect).id, _INTEL[0])
            if rng.random() < 0.25:
                self.marker(pp(suspect).id, "DOMESTIC_ABUSE_PERPETRATOR")
        elif teens and r < 0.55:
            child = rng.choice(teens)
            start = when(3 * 365)
            for _ in range(rng.choice((1, 1, 2, 3, 5))):
                back = start + timedelta(days=rng.choice((0, 0, 1, 1, 2, 4)))
                returned = None if back > today or rng.random() < 0.02 else back
                risk = rng.choices(("LOW", "MEDIUM", "HIGH"), (0.5, 0.38, 0.12))[0]
                s.missing_episodes.append(
                    PoliceMissingEpisode(self.ids("MIS"), pp(child).id, start, returned, risk)
                )
                start += timedelta(days=rng.randrange(7, 120))
                if start > today:
                    break
            if rng.random() < 0.2:
                self.intel(pp(child).id, _INTEL[2])
        elif adults or forced:
            people = adults or members
            if not people:
                return
            cats = _OTHER_INCIDENTS
            category, summary, _ = rng.choices(cats, [c[2] for c in cats])[0]
            inc = PoliceIncident(self.ids("INC"), when(), category, None, summary, postcode)
            s.incidents.append(inc)
            s.involvements.append(
                PoliceInvolvement(
                    pp(rng.choice(people)).id,
                    inc.id,
                    rng.choice(("VICTIM", "SUSPECT", "SUSPECT", "WITNESS")),
                )
            )
            if rng.random() < 0.3 and len(self.chunk.persons) > 1:
                other = rng.choice(self.chunk.persons)
                if other.household_id in self.homes and other.id not in made:
                    s.involvements.append(
                        PoliceInvolvement(self.outsider(other, made).id, inc.id, "WITNESS")
                    )
            if category == "DRUGS" and rng.random() < 0.5:
                self.intel(made[next(iter(made))].id, _INTEL[1])
            if rng.random() < 0.06:
                self.intel(made[next(iter(made))].id, _INTEL[3])
            if rng.random() < 0.1:
                self.marker(made[next(iter(made))].id, rng.choice(_MARKERS))

    def outsider(self, p: Person, made: dict[str, PolicePerson]) -> PolicePerson:
        if p.id not in made:
            given, family, dob, nhs, postcode, address = self.view("police", p)
            made[p.id] = PolicePerson(
                self.ids("PP"),
                p.id,
                given,
                family,
                dob,
                "F" if p.sex == "female" else "M",
                nhs,
                postcode,
                address,
            )
            self.chunk.police.persons.append(made[p.id])
        return made[p.id]

    def intel(self, person_id: str, what: tuple[str, str]) -> None:
        rng = self.rng
        self.chunk.police.intelligence.append(
            PoliceIntelligence(
                self.ids("INT"),
                person_id,
                self.today - timedelta(days=rng.randrange(5, 700)),
                rng.choices("ABC", (0.2, 0.55, 0.25))[0],
                rng.choices((1, 2, 3, 4, 5), (0.15, 0.35, 0.3, 0.15, 0.05))[0],
                "P" if rng.random() < 0.7 else "C",
                rng.random() < 0.08,
                what[0],
                what[1],
            )
        )

    def marker(self, person_id: str, marker: str) -> None:
        when = self.today - timedelta(days=self.rng.randrange(30, 8 * 365))
        self.chunk.police.warning_markers.append(
            PoliceWarningMarker(self.ids("WM"), person_id, marker, when)
        )

    def asc_person(self, p: Person, kinds: tuple[str, ...] = ()) -> None:
        """`p`'s adult social care record, with random involvements or `kinds`."""
        rng, s, today = self.rng, self.chunk.adult_social_care, self.today
        given, family, dob, nhs, postcode, address = self.view("adult_social_care", p)
        ap = AscPerson(
            self.ids("ASC"),
            p.id,
            given,
            family,
            dob or p.date_of_birth,
            "Female" if p.sex == "female" else "Male",
            nhs,
            postcode,
            address,
        )
        s.persons.append(ap)
        old = _age(p.date_of_birth, today) >= 65
        weights = [t[2] if old else t[1] for t in _ASC_TYPES]
        for kind in kinds or [
            rng.choices(_ASC_TYPES, weights)[0][0] for _ in range(rng.choice((1, 1, 1, 2)))
        ]:
            start = today - timedelta(days=rng.randrange(10, 6 * 365))
            closed = rng.random() < 0.55
            end = min(today, start + timedelta(days=rng.randrange(30, 700))) if closed else None
            s.involvements.append(
                AscInvolvement(
                    self.ids("INV"),
                    ap.id,
                    kind,
                    "CLOSED" if closed else "OPEN",
                    start,
                    end,
                    rng.choice(_ASC[kind]),
                )
            )

    def early_help_family(self, members: list[Person]) -> None:
        rng, s, today = self.rng, self.chunk.early_help, self.today
        children = [p for p in members if p.role == "child"]
        parents = [p for p in members if p.role != "child"]
        by = f"{parents[0].given_name} {parents[0].family_name}" if parents else None
        start = today - timedelta(days=rng.randrange(30, 3 * 365))
        closed = rng.random() < 0.55
        end = min(today, start + timedelta(days=rng.randrange(60, 400))) if closed else None
        practitioner, summary = rng.choice(_PRACTITIONERS), rng.choice(_EH_SUMMARIES)
        status = rng.choices(
            ("GIVEN", "REFUSED", "NOT_SOUGHT", "WITHDRAWN"), (0.72, 0.09, 0.13, 0.06)
        )[0]
        for p in members:
            given, family, dob, nhs, postcode, address = self.view("early_help", p)
            ep = EarlyHelpPerson(
                self.ids("EH"),
                p.id,
                given,
                family,
                dob or p.date_of_birth,
                p.sex,
                nhs,
                postcode,
                address,
            )
            s.persons.append(ep)
            if p not in children:
                continue
            s.episodes.append(
                EarlyHelpEpisode(
                    self.ids("EP"),
                    ep.id,
                    start,
                    end,
                    "CLOSED" if closed else "OPEN",
                    practitioner,
                    summary,
                )
            )
            s.consents.append(
                EarlyHelpConsent(
                    self.ids("CON"),
                    ep.id,
                    status,
                    by if status in ("GIVEN", "WITHDRAWN") else None,
                    start,
                    "share with MASH partners" if status == "GIVEN" else None,
                )
            )

    # -- the chunk -----------------------------------------------------------------------
    def build(self) -> Chunk:
        rng, today = self.rng, self.today
        first = self.index * CHUNK
        last = min(self.households, first + CHUNK)
        if self.index == 0:
            _showcase(self)
        area: list[list[Person]] = []
        for h in range(max(first, 1), last):
            area.append(self.household(self.area_household(h), self._KINDS))
        everyone = [p for members in area for p in members]
        for p in everyone:
            self.health_patient(p)
        for members in area:
            if rng.random() < 0.16:
                self.police_content(members, forced=False)
        for p in everyone:
            adult = p.role != "child" and _age(p.date_of_birth, today) >= 18
            if adult and rng.random() < (0.2 if _age(p.date_of_birth, today) >= 65 else 0.06):
                self.asc_person(p)
        for members in area:
            if any(p.role == "child" for p in members) and rng.random() < 0.1:
                self.early_help_family(members)
        # out-of-area people each source also holds (PROTOCOL.md "Sizes")
        target = round(PERSONS_PER_HOUSEHOLD * (last - first))
        c = self.chunk
        while len(c.health.patients) < target:
            for p in self.household(self.outside_household(), self._KINDS):
                self.health_patient(p)
        while len(c.police.persons) < target:
            self.police_content(self.household(self.outside_household(), self._KINDS), forced=True)
        while len(c.adult_social_care.persons) < target:
            members = self.household(self.outside_household(), self._ADULT_KINDS)
            for p in members[: rng.choice((1, 1, 2))]:
                self.asc_person(p)
        while len(c.early_help.persons) < target:
            self.early_help_family(self.household(self.outside_household(), self._FAMILY_KINDS))
        if self.index == 0:
            _shared_addresses(self)
        return c


def _typo(rng: random.Random, name: str) -> str:
    """A one-letter edit (drop, swap, double or replace one inner letter)."""
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 2)
    choice = rng.randrange(4)
    if choice == 0:
        return name[:i] + name[i + 1 :]
    if choice == 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if choice == 2:
        return name[:i] + name[i] + name[i:]
    vowels = "aeiou"
    repl = (
        rng.choice([v for v in vowels if v != name[i]])
        if name[i] in vowels
        else rng.choice("bcdklmnrst")
    )
    return name[:i] + repl + name[i + 1 :]


def _showcase(b: _Builder) -> None:
    """Household HH000000 (DOMAIN.md §6) and every agency's records about it, first ids."""
    c = b.chunk
    home = Household(
        "HH000000",
        SHOWCASE_ADDRESS,
        SHOWCASE_POSTCODE,
        SHOWCASE_UPRN,
        SHOWCASE_PREVIOUS_ADDRESS,
        SHOWCASE_PREVIOUS_POSTCODE,
    )
    ex_home = Household("HS000001", EX_PARTNER_ADDRESS, EX_PARTNER_POSTCODE, "100023456790")
    c.households += [home, ex_home]
    b.homes.update({home.id: home, ex_home.id: ex_home})
    ava = Person("PER000000", "Ava", "Thompson", AVA_DOB, "female", AVA_NHS, home.id, "child")
    noah = Person("PER000001", "Noah", "Thompson", NOAH_DOB, "male", NOAH_NHS, home.id, "child")
    jade = Person("PER000002", "Jade", "Thompson", JADE_DOB, "female", JADE_NHS, home.id, "parent")
    liam = Person("PER000003", "Liam", "Carter", LIAM_DOB, "male", LIAM_NHS, home.id, "partner")
    chloe = Person(
        "PER000004", "Chloe", "Baker", date(1990, 11, 9), "female", b.nhs(), ex_home.id, "adult"
    )
    b.person_ids = _Ids(0, first=5)
    c.persons += [ava, noah, jade, liam, chloe]
    b.relate(ava, noah, "sibling", "sibling")
    b.relate(jade, ava, "parent", "child")
    b.relate(jade, noah, "parent", "child")
    b.relate(jade, liam, "partner", "partner")
    ids = b.ids

    # health: the four with their NHS numbers, in this order (Ava is pat-000001)
    h = c.health
    gp = _GP_NAMES[0]
    for p in (ava, noah, jade, liam):
        h.patients.append(
            HealthPatient(
                ids("pat-"),
                p.id,
                p.nhs_number,
                p.given_name,
                p.family_name,
                p.date_of_birth,
                p.sex,
                home.address,
                home.postcode,
                gp,
            )
        )
    pat = h.patients[0].id
    h.encounters += [
        HealthEncounter(ids("enc-"), pat, date(2026, 6, 2), "EMER", "Head injury"),
        HealthEncounter(ids("enc-"), pat, date(2026, 10, 18), "EMER", "Bruising to upper arm"),
    ]
    h.care_plans.append(HealthCarePlan(ids("cp-"), pat, "CPP", "active", date(2026, 11, 2)))

    # police: "Eva Thomson" (PP000001), Noah, Jade, Liam, Liam's ex-partner
    s = c.police
    eva_p = PolicePerson(
        ids("PP"), ava.id, "Eva", "Thomson", AVA_DOB, "F", None, SHOWCASE_POSTCODE, SHOWCASE_ADDRESS
    )
    noah_p = PolicePerson(
        ids("PP"),
        noah.id,
        "Noah",
        "Thomson",
        NOAH_DOB,
        "M",
        None,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    jade_p = PolicePerson(
        ids("PP"),
        jade.id,
        "Jade",
        "Thompson",
        JADE_DOB,
        "F",
        None,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    liam_p = PolicePerson(
        ids("PP"),
        liam.id,
        "Liam",
        "Carter",
        LIAM_DOB,
        "M",
        LIAM_NHS,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    ex_p = PolicePerson(
        ids("PP"),
        chloe.id,
        "Chloe",
        "Baker",
        chloe.date_of_birth,
        "F",
        None,
        EX_PARTNER_POSTCODE,
        EX_PARTNER_ADDRESS,
    )
    s.persons += [eva_p, noah_p, jade_p, liam_p, ex_p]
    inc_old = PoliceIncident(
        ids("INC"),
        date(2024, 5, 11),
        "DOMESTIC_ABUSE",
        "MEDIUM",
        "Verbal altercation and assault on partner at her home address",
        EX_PARTNER_POSTCODE,
    )
    inc_new = PoliceIncident(
        ids("INC"),
        date(2026, 10, 17),
        "DOMESTIC_ABUSE",
        "HIGH",
        "Domestic abuse at the family address; children present",
        SHOWCASE_POSTCODE,
    )
    s.incidents += [inc_old, inc_new]
    s.involvements += [
        PoliceInvolvement(ex_p.id, inc_old.id, "VICTIM"),
        PoliceInvolvement(liam_p.id, inc_old.id, "SUSPECT"),
        PoliceInvolvement(jade_p.id, inc_new.id, "VICTIM"),
        PoliceInvolvement(liam_p.id, inc_new.id, "SUSPECT"),
        PoliceInvolvement(eva_p.id, inc_new.id, "PRESENT"),
        PoliceInvolvement(noah_p.id, inc_new.id, "PRESENT"),
    ]
    s.intelligence += [
        PoliceIntelligence(
            ids("INT"),
            liam_p.id,
            date(2026, 9, 30),
            "B",
            2,
            "C",
            False,
            "Controlling behaviour towards current partner",
            "Information received that the subject monitors his partner's phone and restricts "
            "her contact with family. Not to be disclosed outside the MASH without police "
            "agreement.",
        ),
        PoliceIntelligence(
            ids("INT"),
            liam_p.id,
            date(2026, 11, 20),
            "A",
            1,
            "P",
            True,
            "Subject linked to an ongoing investigation",
            "Subject is of interest to an ongoing investigation. Do not disclose.",
        ),
        PoliceIntelligence(
            ids("INT"),
            eva_p.id,
            date(2026, 10, 20),
            "B",
            3,
            "C",
            False,
            "Child present during reported incidents at the address",
            "Neighbour reports shouting and a child crying at the address on several evenings; "
            "the child was seen at the window during the incident of 17 October.",
        ),
    ]
    s.warning_markers.append(
        PoliceWarningMarker(ids("WM"), liam_p.id, "DOMESTIC_ABUSE_PERPETRATOR", date(2024, 5, 12))
    )

    # adult social care: Jade (ASC000001), mental health
    a = c.adult_social_care
    jade_a = AscPerson(
        ids("ASC"),
        jade.id,
        "Jade",
        "Thompson",
        JADE_DOB,
        "Female",
        JADE_NHS,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    a.persons.append(jade_a)
    a.involvements.append(
        AscInvolvement(
            ids("INV"),
            jade_a.id,
            "MENTAL_HEALTH",
            "OPEN",
            date(2025, 9, 1),
            None,
            "Community mental health team: depression and anxiety; weekly support",
        )
    )

    # early help: "Ava Thompson-Reid" (EH000001) at the previous address, Noah with day and
    # month of birth swapped; consent given by Jade
    e = c.early_help
    ava_e = EarlyHelpPerson(
        ids("EH"),
        ava.id,
        "Ava",
        "Thompson-Reid",
        AVA_DOB,
        "female",
        None,
        SHOWCASE_PREVIOUS_POSTCODE,
        SHOWCASE_PREVIOUS_ADDRESS,
    )
    noah_e = EarlyHelpPerson(
        ids("EH"),
        noah.id,
        "Noah",
        "Thompson",
        NOAH_DOB_SWAPPED,
        "male",
        None,
        SHOWCASE_PREVIOUS_POSTCODE,
        SHOWCASE_PREVIOUS_ADDRESS,
    )
    e.persons += [ava_e, noah_e]
    for child in (ava_e, noah_e):
        e.episodes.append(
            EarlyHelpEpisode(
                ids("EP"),
                child.id,
                date(2025, 2, 3),
                None,
                "OPEN",
                "Sam Patel (Family Support Worker)",
                "Support with school attendance and routines; concerns about arguments at home",
            )
        )
        e.consents.append(
            EarlyHelpConsent(
                ids("CON"),
                child.id,
                "GIVEN",
                "Jade Thompson",
                date(2025, 2, 3),
                "share with MASH partners",
            )
        )


def _shared_addresses(b: _Builder) -> None:
    """The hostel and the block (module docstring), with records in every source: their
    residents' records are what a child there must not be shown unless confirmed."""
    rng = b.rng
    hostel_home = functools.partial(
        Household, address=HOSTEL_ADDRESS, postcode=HOSTEL_POSTCODE, uprn=HOSTEL_UPRN
    )
    # a mother and her child in a family room
    room = hostel_home(id=b.ids("HR"), shared="hostel")
    b.chunk.households.append(room)
    b.homes[room.id] = room
    mother_dob = b.dob(24, 32)
    family = b.surname()
    mother = b.person(room, b.given("female", mother_dob), family, mother_dob, "female", "parent")
    child_dob = b.dob(6, 10)
    child = b.person(room, b.given("male", child_dob), family, child_dob, "male", "child")
    b.relate(mother, child, "parent", "child")
    family_room = [mother, child]
    # unrelated adults in single rooms
    singles: list[Person] = []
    for _ in range(HOSTEL_SINGLE_ROOMS):
        room = hostel_home(id=b.ids("HR"), shared="hostel")
        b.chunk.households.append(room)
        b.homes[room.id] = room
        sex = rng.choice(("female", "male"))
        dob = b.dob(19, 60)
        singles.append(b.person(room, b.given(sex, dob), b.surname(), dob, sex, "adult"))
    # the block: each flat its own UPRN, every one written as the block's name
    flats: list[list[Person]] = []
    for n in range(BLOCK_FLATS):
        home = Household(
            b.ids("HF"),
            BLOCK_ADDRESS,
            BLOCK_POSTCODE,
            f"3000000001{n:02d}",
            shared="block",
        )
        flats.append(b.household(home, b._FAMILY_KINDS if n == 0 else b._KINDS))
    for p in (*family_room, *singles, *(p for flat in flats for p in flat)):
        b.health_patient(p)
    b.early_help_family(family_room)
    b.early_help_family(flats[0])
    for p, kinds in zip(
        singles[:4],
        (("MENTAL_HEALTH",), ("CARE_ACT_S42",), ("SUBSTANCE_MISUSE",), ("MENTAL_HEALTH",)),
        strict=True,
    ):
        b.asc_person(p, kinds)
    for p in singles[4:7]:
        b.police_content([p], forced=True)
    for flat in flats[1:4]:
        b.police_content(flat, forced=True)
    for flat in flats[1:]:
        adults = [p for p in flat if p.role != "child"]
        if adults:
            b.asc_person(adults[0], ("MENTAL_HEALTH",) if len(flat) > 1 else ("CARE_ACT_S42",))
            break


# --- public API ---------------------------------------------------------------------------
def generate_chunk(households: int, seed: int, index: int, today: date = DEFAULT_TODAY) -> Chunk:
    """Chunk `index` of the population of `households` households (depends on nothing else)."""
    if households < 1:
        raise ValueError("households must be at least 1")
    if not 0 <= index < chunk_count(households):
        raise ValueError(f"chunk index {index} out of range")
    return _Builder(households, seed, index, today).build()


def chunks(households: int, seed: int, today: date = DEFAULT_TODAY) -> Iterator[Chunk]:
    """Every chunk in order (streaming: one chunk in memory at a time)."""
    for index in range(chunk_count(households)):
        yield generate_chunk(households, seed, index, today)


def generate(households: int = 300, seed: int = 7, today: date = DEFAULT_TODAY) -> Population:
    """The whole population in memory (for small sizes; `seed` streams chunks instead)."""
    pop = Population(index=0, seed=seed, today=today)
    for c in chunks(households, seed, today):
        pop.households += c.households
        pop.persons += c.persons
        pop.relations += c.relations
        for name in ("health", "police", "adult_social_care", "early_help"):
            mine, theirs = getattr(pop, name), getattr(c, name)
            for part in vars(mine):
                getattr(mine, part).extend(getattr(theirs, part))
    return pop
