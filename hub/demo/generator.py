"""Deterministic synthetic population for the demo source systems.

`generate(households, seed)` builds households and people, then each agency's slice of them
(health, police, adult social care, early help) the way each agency would record them: with
its own ids, spellings, stale addresses and missing NHS numbers. The same seed always gives
the same output; nothing depends on the wall clock (`today` is a parameter).

The showcase family of DOMAIN.md §6 is always household 0 (see the SHOWCASE_* constants).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import nhs_number as _nhs
from faker import Faker

DEFAULT_TODAY = date(2026, 11, 26)

# --- the showcase family (DOMAIN.md §6) ---------------------------------------------------
SHOWCASE_ADDRESS = "14 Larch Close, Hilltown"
SHOWCASE_POSTCODE = "HT4 2QX"
SHOWCASE_UPRN = "100023456789"
SHOWCASE_PREVIOUS_ADDRESS = "7 Mill Lane, Hilltown"
SHOWCASE_PREVIOUS_POSTCODE = "HT1 7LB"
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


# --- population ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Household:
    id: str
    address: str  # "14 Larch Close, Hilltown"
    postcode: str
    uprn: str
    previous_address: str | None = None
    previous_postcode: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str  # "female" | "male"
    nhs_number: str | None
    household_id: str
    role: str  # "child" | "parent" | "partner"


# --- health (FHIR) ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HealthPatient:
    id: str
    person_id: str | None
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    address: str
    postcode: str
    gp: str
    restricted: bool = False  # sensitive patient: location must not be shown


@dataclass(frozen=True, slots=True)
class HealthEncounter:
    id: str
    patient_id: str
    start: date
    class_code: str  # "EMER" (A&E) or "AMB" (outpatient)
    reason: str
    status: str = "finished"


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
    person_id: str | None  # population person, None for police-only people
    given_name: str
    family_name: str
    date_of_birth: date | None
    sex: str  # "F" | "M" (the force's own coding)
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


@dataclass
class PoliceSlice:
    persons: list[PolicePerson] = field(default_factory=list)
    incidents: list[PoliceIncident] = field(default_factory=list)
    involvements: list[PoliceInvolvement] = field(default_factory=list)
    intelligence: list[PoliceIntelligence] = field(default_factory=list)


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
    postcode: str
    address: str


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
    postcode: str
    address: str


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
class Population:
    seed: int
    today: date
    households: list[Household]
    persons: list[Person]
    health: HealthSlice
    police: PoliceSlice
    adult_social_care: AscSlice
    early_help: EarlyHelpSlice

    def household(self, household_id: str) -> Household:
        return next(h for h in self.households if h.id == household_id)

    def members(self, household_id: str) -> list[Person]:
        return [p for p in self.persons if p.household_id == household_id]


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
)
_OUTPATIENT_REASONS = (
    "Paediatric outpatient review",
    "Community paediatrics",
    "Was not brought: dental",
    "Speech and language therapy",
    "Was not brought: audiology",
)
_GPS = (
    "Hilltown Medical Practice",
    "Riverside Surgery",
    "Park Road Health Centre",
    "Oakfield Family Practice",
    "Station Road Surgery",
)
_PRACTITIONERS = (
    "Sam Patel (Family Support Worker)",
    "Rosie Hughes (Family Support Worker)",
    "Tom Walsh (School Early Help Lead)",
    "Priya Shah (Family Support Worker)",
    "Dan Morgan (Youth Worker)",
    "Helen Carr (Health Visitor)",
)
_EH_SUMMARIES = (
    "Support with school attendance and routines",
    "Parenting support following family breakdown",
    "Support with housing and financial difficulties",
    "Emotional wellbeing support for child",
    "Team around the family: behaviour at home and school",
)
_ASC = {
    "MENTAL_HEALTH": (
        "Community mental health team: depression and anxiety",
        "Mental health assessment following crisis",
        "Ongoing support from community mental health team",
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
    ),
    "CARE_NEEDS": (
        "Care and support plan: personal care",
        "Carer's assessment",
        "Reablement following hospital discharge",
    ),
}
_OTHER_INCIDENTS = (
    ("ASSAULT", "Assault reported in public place"),
    ("THEFT", "Theft from a motor vehicle"),
    ("ANTI_SOCIAL_BEHAVIOUR", "Neighbour dispute and anti-social behaviour"),
    ("CRIMINAL_DAMAGE", "Criminal damage to property"),
    ("MISSING_PERSON", "Missing person episode, returned within 24 hours"),
)


def _variant(rng: random.Random, name: str) -> str:
    """A plausible misspelling (police / early-help data entry)."""
    if len(name) < 4:
        return name
    choice = rng.randrange(3)
    if choice == 0:  # drop one inner letter
        i = rng.randrange(1, len(name) - 1)
        return name[:i] + name[i + 1 :]
    if choice == 1:  # swap two adjacent inner letters
        i = rng.randrange(1, len(name) - 2)
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    vowels = "aeiou"
    idx = [i for i, c in enumerate(name) if c in vowels and i > 0]
    if not idx:
        return name
    i = rng.choice(idx)
    return name[:i] + rng.choice([v for v in vowels if v != name[i]]) + name[i + 1 :]


class _Ids:
    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n:06d}"


# --- generation ---------------------------------------------------------------------------
def generate(households: int = 300, seed: int = 7, today: date = DEFAULT_TODAY) -> Population:
    """Build a deterministic population of `households` households (showcase included)."""
    if households < 1:
        raise ValueError("households must be at least 1")
    rng = random.Random(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    used_nhs = {AVA_NHS, NOAH_NHS, JADE_NHS, LIAM_NHS}

    def new_nhs() -> str:
        while True:
            stem = f"{rng.randrange(900_000_000, 999_000_000):09d}"
            check = nhs_check_digit(stem)
            if check is not None and (number := f"{stem}{check}") not in used_nhs:
                used_nhs.add(number)
                return number

    def new_dob(min_age: int, max_age: int) -> date:
        while True:
            latest = date(today.year - min_age, today.month, min(today.day, 28))
            dob = latest - timedelta(days=rng.randrange(0, (max_age - min_age + 1) * 365))
            if dob not in _SHOWCASE_DOBS and dob <= today:
                return dob

    # streets: several households share a postcode, as in life
    used_postcodes = {SHOWCASE_POSTCODE, SHOWCASE_PREVIOUS_POSTCODE}
    streets: list[tuple[str, str, str]] = []
    for _ in range(max(4, households // 3)):
        while (pc := canonical_postcode(fake.postcode())) in used_postcodes:
            pass
        used_postcodes.add(pc)
        streets.append((fake.street_name(), fake.city(), pc))

    def new_address() -> tuple[str, str]:
        street, town, pc = rng.choice(streets)
        return f"{rng.randint(1, 140)} {street}, {town}", pc

    hh_list: list[Household] = [
        Household(
            id="HH000000",
            address=SHOWCASE_ADDRESS,
            postcode=SHOWCASE_POSTCODE,
            uprn=SHOWCASE_UPRN,
            previous_address=SHOWCASE_PREVIOUS_ADDRESS,
            previous_postcode=SHOWCASE_PREVIOUS_POSTCODE,
        )
    ]
    persons: list[Person] = [
        Person("PER000000", "Ava", "Thompson", AVA_DOB, "female", AVA_NHS, "HH000000", "child"),
        Person("PER000001", "Noah", "Thompson", NOAH_DOB, "male", NOAH_NHS, "HH000000", "child"),
        Person("PER000002", "Jade", "Thompson", JADE_DOB, "female", JADE_NHS, "HH000000", "parent"),
        Person("PER000003", "Liam", "Carter", LIAM_DOB, "male", LIAM_NHS, "HH000000", "partner"),
    ]
    pid = iter(range(4, 10**9))

    def add_person(given: str, family: str, dob: date, sex: str, hh: str, role: str) -> Person:
        # babies are sometimes not yet registered
        nhs = (
            None
            if (_age(dob, today) < 1 and rng.random() < 0.3) or rng.random() < 0.01
            else new_nhs()
        )
        p = Person(f"PER{next(pid):06d}", given, family, dob, sex, nhs, hh, role)
        persons.append(p)
        return p

    def given_for(sex: str) -> str:
        return fake.first_name_female() if sex == "female" else fake.first_name_male()

    for h in range(1, households):
        hid = f"HH{h:06d}"
        address, pc = new_address()
        moved = rng.random() < 0.2
        prev = new_address() if moved else (None, None)
        hh_list.append(
            Household(hid, address, pc, f"{rng.randrange(10**11, 10**12)}", prev[0], prev[1])
        )
        kind = rng.random()
        family = fake.last_name()
        if kind < 0.15:  # single adult
            sex = rng.choice(("female", "male"))
            add_person(given_for(sex), family, new_dob(19, 80), sex, hid, "parent")
            continue
        if kind < 0.30:  # couple without children
            add_person(fake.first_name_female(), family, new_dob(19, 75), "female", hid, "parent")
            add_person(
                fake.first_name_male(),
                rng.choice((family, fake.last_name())),
                new_dob(19, 75),
                "male",
                hid,
                "partner",
            )
            continue
        mother_dob = new_dob(20, 50)
        mother = add_person(fake.first_name_female(), family, mother_dob, "female", hid, "parent")
        if kind < 0.90:  # two parents
            mother_age = _age(mother_dob, today)
            father_dob = new_dob(max(19, mother_age - 3), mother_age + 6)
            add_person(fake.first_name_male(), family, father_dob, "male", hid, "parent")
        else:  # mother and a partner who is not the children's parent
            add_person(
                fake.first_name_male(), fake.last_name(), new_dob(20, 55), "male", hid, "partner"
            )
        mother_age = _age(mother_dob, today)
        n_children = rng.choice((1, 1, 2, 2, 2, 3, 3, 4))
        oldest = min(17, mother_age - 18)
        twins_at = rng.randrange(n_children) if n_children >= 2 and rng.random() < 0.06 else -1
        last_dob: date | None = None
        for c in range(n_children):
            if c == twins_at + 1 and last_dob is not None:
                dob = last_dob  # twins: same surname, address and date of birth
            elif last_dob is None:
                dob = new_dob(min(oldest, 2 * (n_children - 1)), oldest)
            else:
                dob = last_dob + timedelta(days=rng.randrange(450, 1500))
                if dob > today or dob in _SHOWCASE_DOBS:
                    break
            sex = rng.choice(("female", "male"))
            add_person(given_for(sex), mother.family_name, dob, sex, hid, "child")
            last_dob = dob

    pop = Population(
        seed=seed,
        today=today,
        households=hh_list,
        persons=persons,
        health=HealthSlice(),
        police=PoliceSlice(),
        adult_social_care=AscSlice(),
        early_help=EarlyHelpSlice(),
    )
    _health(pop, rng)
    _police(pop, rng, fake)
    _adult_social_care(pop, rng)
    _early_help(pop, rng)
    return pop


def _health(pop: Population, rng: random.Random) -> None:
    ids = _Ids()
    h = pop.health
    today = pop.today
    by_person: dict[str, HealthPatient] = {}
    hh = {x.id: x for x in pop.households}
    for p in pop.persons:
        if p.nhs_number is None:
            continue
        home = hh[p.household_id]
        address, postcode = home.address, home.postcode
        if home.previous_postcode and p.household_id != "HH000000" and rng.random() < 0.3:
            # a stale address
            address, postcode = home.previous_address or address, home.previous_postcode
        restricted = p.household_id != "HH000000" and rng.random() < 0.01
        patient = HealthPatient(
            id=ids("pat-"),
            person_id=p.id,
            nhs_number=p.nhs_number,
            given_name=p.given_name,
            family_name=p.family_name,
            date_of_birth=p.date_of_birth,
            sex=p.sex,
            address=address,
            postcode=postcode,
            gp=rng.choice(_GPS),
            restricted=restricted,
        )
        h.patients.append(patient)
        by_person[p.id] = patient

    ava = by_person["PER000000"]
    h.encounters += [
        HealthEncounter(ids("enc-"), ava.id, date(2026, 6, 2), "EMER", "Head injury"),
        HealthEncounter(ids("enc-"), ava.id, date(2026, 10, 18), "EMER", "Bruising to upper arm"),
    ]
    h.care_plans.append(HealthCarePlan(ids("cp-"), ava.id, "CPP", "active", date(2026, 11, 2)))

    for p in pop.persons:
        if p.household_id == "HH000000" or p.id not in by_person:
            continue
        patient = by_person[p.id]
        if p.role == "child":
            if rng.random() < 0.10:
                for _ in range(rng.choice((1, 1, 2, 3))):
                    when = today - timedelta(days=rng.randrange(1, 3 * 365))
                    h.encounters.append(
                        HealthEncounter(
                            ids("enc-"), patient.id, when, "EMER", rng.choice(_AE_REASONS)
                        )
                    )
            if rng.random() < 0.05:
                when = today - timedelta(days=rng.randrange(1, 2 * 365))
                h.encounters.append(
                    HealthEncounter(
                        ids("enc-"), patient.id, when, "AMB", rng.choice(_OUTPATIENT_REASONS)
                    )
                )
            r = rng.random()
            if r < 0.025:
                h.care_plans.append(
                    HealthCarePlan(
                        ids("cp-"),
                        patient.id,
                        "CPP",
                        rng.choice(("active", "completed")),
                        today - timedelta(days=rng.randrange(10, 900)),
                    )
                )
            elif r < 0.04:
                h.care_plans.append(
                    HealthCarePlan(
                        ids("cp-"),
                        patient.id,
                        "LAC",
                        "active",
                        today - timedelta(days=rng.randrange(10, 1500)),
                    )
                )
        elif p.sex == "female" and 18 <= _age(p.date_of_birth, today) <= 40 and rng.random() < 0.01:
            h.care_plans.append(
                HealthCarePlan(
                    ids("cp-"),
                    patient.id,
                    "UNBORN",
                    "active",
                    today - timedelta(days=rng.randrange(10, 120)),
                )
            )


def _police(pop: Population, rng: random.Random, fake: Faker) -> None:
    ids = _Ids()
    s = pop.police
    hh = {x.id: x for x in pop.households}
    today = pop.today
    made: dict[str, PolicePerson] = {}

    def police_person(p: Person) -> PolicePerson:
        if p.id in made:
            return made[p.id]
        given, family, dob = p.given_name, p.family_name, p.date_of_birth
        r = rng.random()
        if r < 0.08:
            given = _variant(rng, given)
        elif r < 0.15:
            family = _variant(rng, family)
        if rng.random() < 0.03 and dob.day <= 12 and dob.day != dob.month:
            dob = date(dob.year, dob.day, dob.month)
        home = hh[p.household_id]
        pp = PolicePerson(
            id=ids("PP"),
            person_id=p.id,
            given_name=given,
            family_name=family,
            date_of_birth=dob,
            sex="F" if p.sex == "female" else "M",
            nhs_number=p.nhs_number if rng.random() < 0.1 else None,
            postcode=home.postcode,
            address=home.address,
        )
        s.persons.append(pp)
        made[p.id] = pp
        return pp

    # the showcase family
    eva = PolicePerson(
        ids("PP"),
        "PER000000",
        "Eva",
        "Thomson",
        AVA_DOB,
        "F",
        None,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    noah = PolicePerson(
        ids("PP"),
        "PER000001",
        "Noah",
        "Thomson",
        NOAH_DOB,
        "M",
        None,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    jade = PolicePerson(
        ids("PP"),
        "PER000002",
        "Jade",
        "Thompson",
        JADE_DOB,
        "F",
        None,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    liam = PolicePerson(
        ids("PP"),
        "PER000003",
        "Liam",
        "Carter",
        LIAM_DOB,
        "M",
        LIAM_NHS,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    ex = PolicePerson(
        ids("PP"),
        None,
        "Chloe",
        "Baker",
        date(1990, 11, 9),
        "F",
        None,
        "HT2 5DN",
        "31 Quarry Road, Hilltown",
    )
    s.persons += [eva, noah, jade, liam, ex]
    made.update({p.person_id: p for p in (eva, noah, jade, liam) if p.person_id})
    inc_old = PoliceIncident(
        ids("INC"),
        date(2024, 5, 11),
        "DOMESTIC_ABUSE",
        "MEDIUM",
        "Verbal altercation and assault on partner at her home address",
        "HT2 5DN",
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
        PoliceInvolvement(ex.id, inc_old.id, "VICTIM"),
        PoliceInvolvement(liam.id, inc_old.id, "SUSPECT"),
        PoliceInvolvement(jade.id, inc_new.id, "VICTIM"),
        PoliceInvolvement(liam.id, inc_new.id, "SUSPECT"),
        PoliceInvolvement(eva.id, inc_new.id, "PRESENT"),
        PoliceInvolvement(noah.id, inc_new.id, "PRESENT"),
    ]
    s.intelligence += [
        PoliceIntelligence(
            ids("INT"),
            liam.id,
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
            liam.id,
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
            eva.id,
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

    # other households
    for h in pop.households[1:]:
        members = pop.members(h.id)
        adults = [p for p in members if p.role != "child"]
        children = [p for p in members if p.role == "child"]
        women = [p for p in adults if p.sex == "female"]
        men = [p for p in adults if p.sex == "male"]
        if women and men and rng.random() < 0.12:
            victim, suspect = rng.choice(women), rng.choice(men)
            for _ in range(rng.choice((1, 1, 2, 3))):
                inc = PoliceIncident(
                    ids("INC"),
                    today - timedelta(days=rng.randrange(5, 4 * 365)),
                    "DOMESTIC_ABUSE",
                    rng.choice(("STANDARD", "STANDARD", "MEDIUM", "HIGH")),
                    "Domestic abuse reported at the home address",
                    h.postcode,
                )
                s.incidents.append(inc)
                s.involvements.append(PoliceInvolvement(police_person(victim).id, inc.id, "VICTIM"))
                s.involvements.append(
                    PoliceInvolvement(police_person(suspect).id, inc.id, "SUSPECT")
                )
                for c in children:
                    if rng.random() < 0.6:
                        s.involvements.append(
                            PoliceInvolvement(police_person(c).id, inc.id, "PRESENT")
                        )
            if rng.random() < 0.4:
                sg, ig, code = rng.choice("ABC"), rng.randint(1, 5), rng.choice("PPC")
                s.intelligence.append(
                    PoliceIntelligence(
                        ids("INT"),
                        police_person(suspect).id,
                        today - timedelta(days=rng.randrange(5, 700)),
                        sg,
                        ig,
                        code,
                        rng.random() < 0.1,
                        "Information about domestic abuse by the subject",
                        "Information received about abusive behaviour towards a partner.",
                    )
                )
        elif adults and rng.random() < 0.08:
            category, summary = rng.choice(_OTHER_INCIDENTS)
            inc = PoliceIncident(
                ids("INC"),
                today - timedelta(days=rng.randrange(5, 4 * 365)),
                category,
                None,
                summary,
                h.postcode,
            )
            s.incidents.append(inc)
            s.involvements.append(
                PoliceInvolvement(
                    police_person(rng.choice(adults)).id,
                    inc.id,
                    rng.choice(("VICTIM", "SUSPECT", "WITNESS")),
                )
            )
            if rng.random() < 0.3:
                s.involvements.append(
                    PoliceInvolvement(
                        police_person(rng.choice(pop.persons[4:])).id, inc.id, "WITNESS"
                    )
                )


def _adult_social_care(pop: Population, rng: random.Random) -> None:
    ids = _Ids()
    s = pop.adult_social_care
    hh = {x.id: x for x in pop.households}
    today = pop.today
    jade = AscPerson(
        ids("ASC"),
        "PER000002",
        "Jade",
        "Thompson",
        JADE_DOB,
        "Female",
        JADE_NHS,
        SHOWCASE_POSTCODE,
        SHOWCASE_ADDRESS,
    )
    s.persons.append(jade)
    s.involvements.append(
        AscInvolvement(
            ids("INV"),
            jade.id,
            "MENTAL_HEALTH",
            "OPEN",
            date(2025, 9, 1),
            None,
            "Community mental health team: depression and anxiety; weekly support",
        )
    )
    types = (
        "MENTAL_HEALTH",
        "MENTAL_HEALTH",
        "SUBSTANCE_MISUSE",
        "CARE_ACT_S42",
        "CARE_NEEDS",
        "CARE_NEEDS",
    )
    for p in pop.persons:
        if (
            p.household_id == "HH000000"
            or p.role == "child"
            or _age(p.date_of_birth, today) < 18
            or rng.random() >= 0.45
        ):
            continue
        home = hh[p.household_id]
        ap = AscPerson(
            ids("ASC"),
            p.id,
            p.given_name,
            p.family_name,
            p.date_of_birth,
            "Female" if p.sex == "female" else "Male",
            p.nhs_number if rng.random() < 0.8 else None,
            home.postcode,
            home.address,
        )
        s.persons.append(ap)
        for _ in range(rng.choice((1, 1, 1, 2))):
            kind = rng.choice(types)
            start = today - timedelta(days=rng.randrange(10, 6 * 365))
            closed = rng.random() < 0.5
            end = min(today, start + timedelta(days=rng.randrange(30, 700))) if closed else None
            s.involvements.append(
                AscInvolvement(
                    ids("INV"),
                    ap.id,
                    kind,
                    "CLOSED" if closed else "OPEN",
                    start,
                    end,
                    rng.choice(_ASC[kind]),
                )
            )


def _early_help(pop: Population, rng: random.Random) -> None:
    ids = _Ids()
    s = pop.early_help
    today = pop.today
    ava = EarlyHelpPerson(
        ids("EH"),
        "PER000000",
        "Ava",
        "Thompson-Reid",
        AVA_DOB,
        "female",
        None,
        SHOWCASE_PREVIOUS_POSTCODE,
        SHOWCASE_PREVIOUS_ADDRESS,
    )
    noah = EarlyHelpPerson(
        ids("EH"),
        "PER000001",
        "Noah",
        "Thompson",
        NOAH_DOB_SWAPPED,
        "male",
        None,
        SHOWCASE_PREVIOUS_POSTCODE,
        SHOWCASE_PREVIOUS_ADDRESS,
    )
    s.persons += [ava, noah]
    for child in (ava, noah):
        s.episodes.append(
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
        s.consents.append(
            EarlyHelpConsent(
                ids("CON"),
                child.id,
                "GIVEN",
                "Jade Thompson",
                date(2025, 2, 3),
                "share with MASH partners",
            )
        )
    statuses = ("GIVEN", "GIVEN", "GIVEN", "REFUSED", "NOT_SOUGHT", "WITHDRAWN")
    for h in pop.households[1:]:
        children = [p for p in pop.members(h.id) if p.role == "child"]
        if not children or rng.random() >= 0.15:
            continue
        parents = [p for p in pop.members(h.id) if p.role == "parent"]
        by = f"{parents[0].given_name} {parents[0].family_name}" if parents else None
        start = today - timedelta(days=rng.randrange(30, 3 * 365))
        closed = rng.random() < 0.5
        end = min(today, start + timedelta(days=rng.randrange(60, 400))) if closed else None
        practitioner, summary = rng.choice(_PRACTITIONERS), rng.choice(_EH_SUMMARIES)
        status = rng.choice(statuses)
        address, postcode = (
            (h.previous_address, h.previous_postcode)
            if h.previous_postcode and closed
            else (h.address, h.postcode)
        )
        for c in children:
            family = _variant(rng, c.family_name) if rng.random() < 0.05 else c.family_name
            ep = EarlyHelpPerson(
                ids("EH"),
                c.id,
                c.given_name,
                family,
                c.date_of_birth,
                c.sex,
                c.nhs_number if rng.random() < 0.2 else None,
                postcode or "",
                address or "",
            )
            s.persons.append(ep)
            s.episodes.append(
                EarlyHelpEpisode(
                    ids("EP"),
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
                    ids("CON"),
                    ep.id,
                    status,
                    by if status in ("GIVEN", "WITHDRAWN") else None,
                    start,
                    "share with MASH partners" if status == "GIVEN" else None,
                )
            )
