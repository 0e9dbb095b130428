"""The demo education system's content, derived from the generated population.

The generator knows nothing of schools: this module reads each chunk it makes and gives
every school-age child living in the area (4 to 16 on the generator's day) a school, this
year's attendance and, by a draw seeded by the person's own id (so the output is the same
however the chunks are produced), suspensions and exclusions, SEN support or an EHCP, and
child-missing-education episodes. Like most school systems it holds no NHS numbers. A child
whose health record is restricted (a refuge, a protected placement) is location-restricted
here too: the school knows not to disclose where the child is.

The showcase child Ava Thompson (DOMAIN.md §6) attends Larchfield Primary School, is
persistently absent and has an EHCP; her brother Noah attends the same school.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import date
from typing import Any

from . import generator as g
from .storage import name_parts, postcode_key

Row = tuple[Any, ...]

SCHEMA = (
    "CREATE TABLE pupils (id TEXT PRIMARY KEY, given_name TEXT, family_name TEXT, "
    "family_key TEXT, date_of_birth TEXT, sex TEXT, postcode TEXT, postcode_key TEXT, "
    "address TEXT, location_restricted INTEGER NOT NULL)",
    "CREATE TABLE pupil_names (pupil_id TEXT NOT NULL, part TEXT NOT NULL)",
    "CREATE TABLE records (id TEXT PRIMARY KEY, pupil_id TEXT NOT NULL, "
    "record_type TEXT NOT NULL, fields TEXT NOT NULL)",
)
INDEXES = (
    "CREATE INDEX ix_pupils_date_of_birth ON pupils (date_of_birth)",
    "CREATE INDEX ix_pupils_family_key ON pupils (family_key)",
    "CREATE INDEX ix_pupils_postcode_key ON pupils (postcode_key)",
    "CREATE INDEX ix_pupil_names_part ON pupil_names (part, pupil_id)",
    "CREATE INDEX ix_records_pupil ON records (pupil_id)",
)

SHOWCASE_SCHOOL = ("Larchfield Primary School", "117345")
PRIMARY = (
    SHOWCASE_SCHOOL,
    ("Hilltown Church of England Primary School", "117402"),
    ("Millbrook Community Primary School", "117518"),
    ("St Anne's Catholic Primary School", "117623"),
    ("Quarry Hill Infant and Junior School", "117781"),
)
SECONDARY = (
    ("Hilltown Academy", "138420"),
    ("Kestrel Park School", "138577"),
    ("Northshire High School", "138614"),
)
ACADEMIC_YEAR = "2026/27"
YEAR_START = date(2026, 9, 1)
REASONS = (
    "PERSISTENT_DISRUPTIVE_BEHAVIOUR",
    "PHYSICAL_ASSAULT_PUPIL",
    "VERBAL_ABUSE_ADULT",
    "DAMAGE",
    "DRUG_ALCOHOL",
)
NEEDS = ("SEMH", "SLCN", "ASD", "MLD", "SPLD", "PD", "HI")


def _pupil_id(person_id: str) -> str:
    return "UPN" + hashlib.sha256(f"education:{person_id}".encode()).hexdigest()[:10].upper()


def _age(dob: date) -> int:
    today = g.DEFAULT_TODAY
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _json(values: dict[str, Any]) -> str:
    return json.dumps(
        {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()},
        separators=(",", ":"),
    )


def _records(pid: str, person: g.Person, rng: random.Random) -> Iterator[Row]:
    """A pupil's records: (id, pupil_id, record_type, fields as JSON)."""
    showcase = person.nhs_number == g.AVA_NHS
    age = _age(person.date_of_birth)
    schools = PRIMARY if age < 11 else SECONDARY
    school = SHOWCASE_SCHOOL if person.household_id == "HH000000" else rng.choice(schools)
    start = date(person.date_of_birth.year + (5 if age < 11 else 11), 9, 1)
    if showcase:
        start = date(2020, 9, 1)
    yield (
        f"{pid}-E1",
        pid,
        "ENROLMENT",
        _json({"school": school[0], "school_urn": school[1], "start": start, "end": None}),
    )
    percent = 82 if showcase else max(40, min(100, round(rng.gauss(94, 5))))
    yield (
        f"{pid}-A1",
        pid,
        "ATTENDANCE",
        _json(
            {
                "academic_year": ACADEMIC_YEAR,
                "attendance_percent": percent,
                "persistent_absence": percent < 90,
            }
        ),
    )
    if age >= 8 and not showcase:
        for n in range(1, 4):
            if rng.random() >= (0.06 if n == 1 else 0.3):
                break
            yield (
                f"{pid}-X{n}",
                pid,
                "EXCLUSION",
                _json(
                    {
                        "exclusion_type": "SUSPENSION",
                        "start": date(2026, 9, 8 + 7 * n),
                        "days": rng.randint(1, 5),
                        "reason": rng.choice(REASONS),
                    }
                ),
            )
        if age >= 11 and rng.random() < 0.005:
            yield (
                f"{pid}-X9",
                pid,
                "EXCLUSION",
                _json(
                    {
                        "exclusion_type": "PERMANENT",
                        "start": date(2026, 10, 20),
                        "days": None,
                        "reason": rng.choice(REASONS),
                    }
                ),
            )
    draw = rng.random()
    if showcase or draw < 0.16:
        ehcp = showcase or draw < 0.04
        yield (
            f"{pid}-S1",
            pid,
            "SEN",
            _json(
                {
                    "level": "EHCP" if ehcp else "SEN_SUPPORT",
                    "ehcp": ehcp,
                    "primary_need": "SEMH" if showcase else rng.choice(NEEDS),
                    "start": date(2023, 2, 6) if showcase else date(2025, 1 + rng.randrange(12), 1),
                }
            ),
        )
    if not showcase and rng.random() < 0.01:
        resolved = date(2026, 10, 30) if rng.random() < 0.6 else None
        yield (
            f"{pid}-M1",
            pid,
            "MISSING_EDUCATION",
            _json({"reported_on": date(2026, 10, 2), "resolved_on": resolved}),
        )


def rows(chunk: g.Chunk) -> dict[str, list[Row]]:
    """The education store's rows for one chunk, and its ground truth."""
    homes = {h.id: h for h in chunk.households}
    restricted = {p.person_id for p in chunk.health.patients if p.restricted}
    pupils: list[Row] = []
    names: list[Row] = []
    records: list[Row] = []
    truth: list[Row] = []
    for person in chunk.persons:
        home = homes.get(person.household_id)
        if person.role != "child" or home is None or not person.in_area or not home.in_area:
            continue
        if not 4 <= _age(person.date_of_birth) <= 16:
            continue
        pid = _pupil_id(person.id)
        rng = random.Random(pid)
        pupils.append(
            (
                pid,
                person.given_name,
                person.family_name,
                " ".join(name_parts(person.family_name)),
                person.date_of_birth.isoformat(),
                person.sex,
                home.postcode,
                postcode_key(home.postcode),
                home.address,
                int(person.id in restricted),
            )
        )
        names += [(pid, part) for part in name_parts(person.family_name)]
        records += list(_records(pid, person, rng))
        truth.append(("education", pid, person.id, person.household_id, 1))
    return {
        "education.pupils": pupils,
        "education.pupil_names": names,
        "education.records": records,
        "truth.persons": truth,
    }


def options(households: int, seed: int) -> dict[str, str]:
    """The demo API key (deterministic per seeding), for the adapter and the server."""
    digest = hashlib.sha256(f"mash-demo-education:{households}:{seed}".encode()).hexdigest()
    return {"api_key": digest[:40]}
