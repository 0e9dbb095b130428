"""Identity: which source records are the same person. Simple rules for now.

The identity issue replaces this module with tiered, explained, sibling-safe matching; the
record service only calls `match`, `cluster` and `identity_key`, so that swap stays local.

Rules here (enough to link the showcase family, and never a sibling):
1. Both records carry an NHS number: same person if and only if the numbers are equal.
2. Otherwise the date of birth must agree exactly (or with day and month swapped when
   both names agree exactly), sex must agree where both record it, the family names must
   agree (one part of a hyphenated name is enough; small spelling differences allowed) and
   the given names must be close.
3. Sibling guard (`sibling_safe`): a demographic link is dropped when the source offers
   several such candidates and the given name does not single one out, or when a household
   member born the same day is at least as close to the candidate as the child is.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz.distance import JaroWinkler

from adapters.base import SourcePerson, swapped_date

FAMILY_MIN = 0.9
GIVEN_MIN = 0.75


@dataclass(frozen=True)
class Demographics:
    """What the hub knows of a subject, to find them again in each source.

    `address_key` is the subject's current address (see `address_key`), used to find the
    household in sources that do not know the subject themselves."""

    nhs_number: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    postcodes: tuple[str, ...] = ()
    sex: str | None = None
    address_key: str | None = None


@dataclass(frozen=True)
class Link:
    """Why a source record was linked: the rule and the fields that agreed."""

    rule: str
    agreed: tuple[str, ...]
    score: float


def normalise(name: str | None) -> str:
    """Lower case, accents and punctuation removed, single spaces."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


def normalise_postcode(postcode: str | None) -> str:
    return re.sub(r"\s+", "", postcode or "").upper()


def address_key(record: SourcePerson) -> str | None:
    """Postcode plus the first address line (house and street), normalised: two records with
    the same key live at the same address. None when either part is missing."""
    postcode = normalise_postcode(record.postcode)
    first_line = normalise((record.address or "").split(",")[0])
    return f"{postcode}|{first_line}" if postcode and first_line else None


def _family_score(a: str | None, b: str | None) -> float:
    parts_a = normalise((a or "").replace("-", " ")).split()
    parts_b = normalise((b or "").replace("-", " ")).split()
    return max((JaroWinkler.similarity(x, y) for x in parts_a for y in parts_b), default=0.0)


def _given_score(a: str | None, b: str | None) -> float:
    first_a, first_b = normalise(a).split()[:1], normalise(b).split()[:1]
    if not first_a or not first_b:
        return 0.0
    return JaroWinkler.similarity(first_a[0], first_b[0])


def family_agrees(a: str | None, b: str | None) -> bool:
    return _family_score(a, b) >= FAMILY_MIN


def given_agrees(a: str | None, b: str | None) -> bool:
    return _given_score(a, b) >= GIVEN_MIN


def match(subject: Demographics, record: SourcePerson) -> Link | None:
    """The link between a subject and a source record, or None if they are not the same."""
    if subject.nhs_number and record.nhs_number:
        if subject.nhs_number == record.nhs_number:
            return Link("nhs_number", ("nhs_number",), 1.0)
        return None
    if subject.date_of_birth is None or record.date_of_birth is None:
        return None
    if _known(subject.sex) and _known(record.sex) and subject.sex != record.sex:
        return None
    family = _family_score(subject.family_name, record.family_name)
    given = _given_score(subject.given_name, record.given_name)
    if family < FAMILY_MIN or given < GIVEN_MIN:
        return None
    if record.date_of_birth == subject.date_of_birth:
        return Link(
            "name_and_date_of_birth",
            ("given_name", "family_name", "date_of_birth"),
            round((family + given) / 2, 3),
        )
    if record.date_of_birth == swapped_date(subject.date_of_birth) and family == given == 1.0:
        return Link("name_and_swapped_date_of_birth", ("given_name", "family_name"), 0.9)
    return None


def _known(sex: str | None) -> bool:
    return sex in ("female", "male")


def sibling_safe(
    subject: Demographics,
    linked: list[tuple[SourcePerson, Link]],
    household: list[SourcePerson],
) -> list[tuple[SourcePerson, Link]]:
    """The links kept once those a sibling or twin could explain are dropped (see module
    docstring)."""
    by_rule = [(c, link) for c, link in linked if link.rule != "nhs_number"]
    keep = [(c, link) for c, link in linked if link.rule == "nhs_number"]
    if len(by_rule) > 1:
        exact = [
            (c, k) for c, k in by_rule if normalise(c.given_name) == normalise(subject.given_name)
        ]
        by_rule = exact if len(exact) == 1 else []
    for c, link in by_rule:
        own = _given_score(subject.given_name, c.given_name)
        if any(
            h.date_of_birth
            in (c.date_of_birth, swapped_date(c.date_of_birth) if c.date_of_birth else None)
            and _given_score(h.given_name, c.given_name) >= own
            for h in household
        ):
            continue
        keep.append((c, link))
    return keep


def demographics_of(record: SourcePerson) -> Demographics:
    postcodes = (normalise_postcode(record.postcode),) if record.postcode else ()
    return Demographics(
        record.nhs_number,
        record.given_name,
        record.family_name,
        record.date_of_birth,
        postcodes,
        record.sex,
        address_key(record),
    )


@dataclass
class Cluster:
    """Source records judged to be one person; `anchor` is the best-identified record."""

    anchor: SourcePerson
    members: list[SourcePerson] = field(default_factory=list)
    _demographics: Demographics | None = field(default=None, repr=False, compare=False)

    def add(self, record: SourcePerson) -> None:
        self.members.append(record)
        self._demographics = None

    @property
    def demographics(self) -> Demographics:
        """The anchor's demographics, with an NHS number and postcodes from any member."""
        if self._demographics is None:
            self._demographics = self._combine()
        return self._demographics

    def _combine(self) -> Demographics:
        base = demographics_of(self.anchor)
        nhs = base.nhs_number or next((m.nhs_number for m in self.members if m.nhs_number), None)
        postcodes = tuple(
            dict.fromkeys(normalise_postcode(m.postcode) for m in self.members if m.postcode)
        )
        return Demographics(
            nhs,
            base.given_name,
            base.family_name,
            base.date_of_birth,
            postcodes,
            base.sex,
            base.address_key,
        )


def cluster(records: Sequence[SourcePerson]) -> list[Cluster]:
    """Group records into people, anchoring on records with an NHS number first."""
    ordered = sorted(records, key=lambda r: (r.nhs_number is None, r.source.value, r.local_id))
    clusters: list[Cluster] = []
    for record in ordered:
        for c in clusters:
            if match(c.demographics, record) and all(
                match(demographics_of(m), record) or not _conflicts(m, record) for m in c.members
            ):
                c.add(record)
                break
        else:
            clusters.append(Cluster(anchor=record, members=[record]))
    return clusters


def _conflicts(a: SourcePerson, b: SourcePerson) -> bool:
    """Two records that cannot be one person (different NHS numbers)."""
    return bool(a.nhs_number and b.nhs_number and a.nhs_number != b.nhs_number)


def identity_key(d: Demographics) -> str:
    """A stable key for a subject: NHS number, else `demographic_key`. Hashed, so the key
    column holds no readable personal data."""
    if not d.nhs_number:
        return demographic_key(d)
    return hashlib.sha256(f"nhs:{d.nhs_number}".encode()).hexdigest()


def demographic_key(d: Demographics) -> str:
    """Normalised name and date of birth, hashed: finds a subject first seen without its NHS
    number (e.g. while health was down) once the number is known, and the reverse."""
    raw = f"demo:{normalise(d.given_name)}|{normalise(d.family_name)}|{d.date_of_birth}"
    return hashlib.sha256(raw.encode()).hexdigest()
