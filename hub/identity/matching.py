"""Identity: which source records are the same person. Tiered, explained, sibling-safe.

Tiers (`match`), first that decides wins:
(a) NHS number: both records carry one. Equal, valid (modulus 11, `nhs-number` package) and
    the date of birth agreeing (exactly or day/month swapped, or unknown on one side):
    `auto`. Equal but the date of birth disagreeing: `review`. Different: no match, whatever
    else agrees.
(b) Deterministic demographic rules: the date of birth agrees exactly (or with day and month
    swapped when both names agree exactly), sex agrees where both record it, the family
    names agree (one part of a hyphenated name is enough; small spelling differences
    allowed) and the given names are close: `auto` -- except where the family names are
    identical and the given names are different names (Ada and Ava Thompson: twins), which
    is left to (c), where it can be reviewed but never auto-linked.
(c) Fellegi–Sunter scoring (`hub.identity.linkage`, weights in `hub/identity/weights.json`): the
    match weight decides `auto` / `review` / no match; a pair whose given names are different
    names (not a nickname or a slip) is never `auto`.

Every `Link` carries its explanation: the rule, the fields that agreed, and each field's
comparison level and weight (`weights`), with its band. `match` returns review-band links
only when asked (`include_review=True`): until the record service keeps them apart, a caller
that does not ask gets only links it may act on.

Sibling guard (`sibling_safe`): a demographic link is dropped (or, when asked, downgraded to
review) when the source offers several such candidates and the given name does not single
one out, when a household member born the same day is at least as close to the candidate as
the child is, or when a household member with another given name scores higher against the
candidate than the child does.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from rapidfuzz.distance import JaroWinkler

from adapters.base import SourcePerson, swapped_date

from . import addresses, linkage
from .linkage import AUTO, REVIEW

FAMILY_MIN = 0.9
GIVEN_MIN = 0.75


@dataclass(frozen=True)
class Demographics:
    """What the hub knows of a subject, to find them again in each source.

    `address_key` and `uprn` are the subject's current home (see `hub.identity.addresses`), used to
    find the household in sources that do not know the subject themselves."""

    nhs_number: str | None
    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    postcodes: tuple[str, ...] = ()
    sex: str | None = None
    address_key: str | None = None
    uprn: str | None = None


@dataclass(frozen=True)
class Link:
    """Why a source record was linked: the rule, the fields that agreed, a score (1.0 for an
    NHS number, the rule's name similarity, or the Fellegi–Sunter probability), the band
    (`auto` or `review`) and each field's comparison level and weight (log2 Bayes factor)."""

    rule: str
    agreed: tuple[str, ...]
    score: float
    band: str = AUTO
    weights: tuple[tuple[str, str, float], ...] = ()

    @property
    def match_weight(self) -> float:
        """The total Fellegi–Sunter match weight of the explanation."""
        return round(sum(w for _, _, w in self.weights), 3)


def normalise(name: str | None) -> str:
    """Lower case, accents and punctuation removed, single spaces."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


def normalise_postcode(postcode: str | None) -> str:
    return addresses.normalise_postcode(postcode)


def address_key(record: SourcePerson) -> str | None:
    """The record's home as postcode plus normalised first line, house number and flat
    included (`hub.identity.addresses`): equal keys are the same home unless UPRNs differ. None when
    either part is missing."""
    return addresses.address_key(record.postcode, record.address)


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


def score(subject: Demographics, record: SourcePerson) -> linkage.Score:
    """The Fellegi–Sunter score of a subject against a source record (sibling-strict)."""
    return _score(
        (subject.given_name, subject.family_name, subject.date_of_birth, subject.sex,
         subject.postcodes, subject.nhs_number),
        (record.given_name, record.family_name, record.date_of_birth, record.sex,
         (record.postcode,), record.nhs_number),
    )  # fmt: skip


# Every read scores the child against each source's candidates again, and the same pairs
# recur read after read: cached on the demographics themselves (the shipped model is fixed
# for the life of the process; a Score is immutable).
Fields = tuple[str | None, str | None, date | None, str | None, tuple[str | None, ...], str | None]


@functools.lru_cache(maxsize=32_768)
def _score(subject: Fields, record: Fields) -> linkage.Score:
    return linkage.default_model().score(
        linkage.record("subject", *subject), linkage.record("record", *record)
    )


def _agreed(s: linkage.Score) -> tuple[str, ...]:
    return tuple(f for f, _, w in s.weights if w > 0)


def match(subject: Demographics, record: SourcePerson, include_review: bool = False) -> Link | None:
    """The link between a subject and a source record, or None if they are not the same (or,
    unless `include_review`, only possibly the same: the review band). See module docstring
    for the tiers."""
    link = _match(subject, record)
    if link is None or (link.band == REVIEW and not include_review):
        return None
    return link


def _match(subject: Demographics, record: SourcePerson) -> Link | None:
    s = score(subject, record)
    if subject.nhs_number and record.nhs_number:
        if subject.nhs_number != record.nhs_number:
            return None
        if linkage.valid_nhs(subject.nhs_number):
            dob = s.level("date_of_birth")
            band = AUTO if dob in ("exact", "swap", linkage.MISSING) else REVIEW
            return Link("nhs_number", _agreed(s), 1.0, band, s.weights)
    link = _rules(subject, record, s)
    if link is not None:
        return link
    if s.band is None:
        return None
    return Link("probabilistic", _agreed(s), round(s.probability, 4), s.band, s.weights)


def _rules(subject: Demographics, record: SourcePerson, s: linkage.Score) -> Link | None:
    """Tier (b): the deterministic demographic rules."""
    if subject.date_of_birth is None or record.date_of_birth is None:
        return None
    if _known(subject.sex) and _known(record.sex) and subject.sex != record.sex:
        return None
    family = _family_score(subject.family_name, record.family_name)
    given = _given_score(subject.given_name, record.given_name)
    if family < FAMILY_MIN or given < GIVEN_MIN:
        return None
    if s.level("family_name") == "exact" and s.level("given_name") not in linkage.GIVEN_SAME:
        # the sibling guard: same surname, another given name (not a nickname or a slip)
        return None
    if record.date_of_birth == subject.date_of_birth:
        return Link(
            "name_and_date_of_birth",
            ("given_name", "family_name", "date_of_birth"),
            round((family + given) / 2, 3),
            AUTO,
            s.weights,
        )
    if record.date_of_birth == swapped_date(subject.date_of_birth) and family == given == 1.0:
        return Link(
            "name_and_swapped_date_of_birth", ("given_name", "family_name"), 0.9, AUTO, s.weights
        )
    return None


def _known(sex: str | None) -> bool:
    return sex in ("female", "male")


def sibling_safe(
    subject: Demographics,
    linked: list[tuple[SourcePerson, Link]],
    household: list[SourcePerson],
    include_review: bool = False,
) -> list[tuple[SourcePerson, Link]]:
    """The links kept once those a sibling or twin could explain are dropped (see module
    docstring); with `include_review`, those are kept in the review band instead."""
    by_rule = [(c, link) for c, link in linked if link.rule != "nhs_number"]
    keep = [(c, link) for c, link in linked if link.rule == "nhs_number"]
    doubtful: list[tuple[SourcePerson, Link]] = []
    if len(by_rule) > 1:
        exact = [
            (c, k) for c, k in by_rule if normalise(c.given_name) == normalise(subject.given_name)
        ]
        doubtful += [x for x in by_rule if x not in exact] if len(exact) == 1 else by_rule
        by_rule = exact if len(exact) == 1 else []
    others = [h for h in household if _another_person(subject, h)]
    for c, link in by_rule:
        own = _given_score(subject.given_name, c.given_name)
        own_weight = score(subject, c).weight
        if any(
            h.date_of_birth
            in (c.date_of_birth, swapped_date(c.date_of_birth) if c.date_of_birth else None)
            and _given_score(h.given_name, c.given_name) >= own
            for h in household
        ) or any(
            h.local_id != c.local_id and score(demographics_of(h), c).weight > own_weight
            for h in others
        ):
            doubtful.append((c, link))
            continue
        keep.append((c, link))
    if include_review:
        keep += [(c, replace(link, band=REVIEW)) for c, link in doubtful]
    return keep


def _another_person(subject: Demographics, h: SourcePerson) -> bool:
    """A household member who is not the subject by name (another given name)."""
    a, b = linkage.normalise(subject.given_name), linkage.normalise(h.given_name)
    if not a or not b:
        return False
    return linkage.compare_given(a.split()[0], b.split()[0]) not in linkage.GIVEN_SAME


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
        record.uprn or None,
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
        # the anchor's home's UPRN, where another record of that same address carries it
        uprn = base.uprn or next(
            (
                m.uprn
                for m in self.members
                if m.uprn and base.address_key and address_key(m) == base.address_key
            ),
            None,
        )
        return Demographics(
            nhs,
            base.given_name,
            base.family_name,
            base.date_of_birth,
            postcodes,
            base.sex,
            base.address_key,
            uprn,
        )


# The tiers that may join an adult's records: an NHS number or the deterministic rules,
# never a probabilistic score alone (an analyst may still confirm such a link).
DETERMINISTIC = frozenset(
    {"nhs_number", "name_and_date_of_birth", "name_and_swapped_date_of_birth"}
)
ADULT_AGE = 18


def is_adult(born: date | None, today: date) -> bool:
    """Born at least ADULT_AGE years before `today`; an unknown date of birth counts as an
    adult (the stricter rule)."""
    if born is None:
        return True
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day)) >= (
        ADULT_AGE
    )


def _joins(d: Demographics, record: SourcePerson, adults_on: date | None) -> bool:
    link = match(d, record)
    if link is None:
        return False
    if adults_on is not None and (
        is_adult(record.date_of_birth, adults_on) or is_adult(d.date_of_birth, adults_on)
    ):
        return link.rule in DETERMINISTIC
    return True


def cluster(records: Sequence[SourcePerson], adults_on: date | None = None) -> list[Cluster]:
    """Group records into people, anchoring on records with an NHS number first. With
    `adults_on` (today), an adult's records join only on the NHS number or the deterministic
    rules (`DETERMINISTIC`): adults are never merged on a fuzzy score alone."""
    ordered = sorted(records, key=lambda r: (r.nhs_number is None, r.source.value, r.local_id))
    clusters: list[Cluster] = []
    for record in ordered:
        for c in clusters:
            if _joins(c.demographics, record, adults_on) and all(
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
