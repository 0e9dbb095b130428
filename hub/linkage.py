"""Fellegi–Sunter scoring of a pair of person records, and its offline training.

A pair of records is compared field by field; each field's comparison falls into one level
(given name: exact, nickname, typo, similar, different; date of birth: exact, day/month swap,
year off by one, one-digit typo, different; ...). Each level has an m probability (how often
it occurs when the records are the same person) and a u probability (when they are not); its
weight is log2(m/u). The match weight of the pair is the sum of its fields' weights (a log2
Bayes factor; a missing field weighs 0), and the band follows from two thresholds:
`auto` (linked), `review` (an analyst decides), or None (no match).

Training (offline, on generated data: health x police of `hub.demo.generator`; the ground
truth is never read): u from a million random pairs (almost never the same person); m by
expectation maximisation on the candidate pairs of two blocking rules, each rule estimating
only the fields it does not fix (same date of birth -> names, sex, postcode; same postcode
and family initial -> given name, date of birth, sex); the date of birth's m from the pairs
that share a valid NHS number (EM on the postcode block mistakes a same-named parent and
child for one person). m is floored (a level never generated is rare, not impossible).
The result, with the thresholds (tuned on seed 7 by bench/identity.py, reported on seed 8),
term frequencies of common surnames and the given names common enough to be names in their
own right, is shipped as data in `hub/identity_weights.json`. Train again with:

    python -m hub.linkage train --households 20000 --seed 7 --out hub/identity_weights.json

(thresholds are kept from the existing file unless --auto / --review are given).

Guards no weight can override: two different valid NHS numbers are never a match; dates of
birth a generation apart (a same-named parent and child) are never `auto` at query time, nor
is a pair whose given names are different names (not a nickname, not a slip of a rare
spelling), nor a date of birth slip together with a given-name slip (`Model.score`, strict).
The batch linker (`link`, `mash-hub link`) never auto-links dates of birth a generation
apart, applies the given-name guard where a household is in sight (another record with the
family name at the address or postcode, or with the family name and date of birth) and sends
a record's two near-equal auto candidates that are two people to review.

Batch options: `train` estimates m and u on the two files themselves (the same EM, no ground
truth; u's exact levels from the values' frequencies in each file) for files whose fields or
quality differ from the generated data; `one_to_one` says neither file holds a person twice,
so a pair that is each record's clear best candidate (by AMBIGUITY) is linked from the review
threshold up. An optional address column is compared by the share of words in common.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jellyfish
import nhs_number as _nhs
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

WEIGHTS_PATH = Path(__file__).resolve().parent / "identity_weights.json"

AUTO, REVIEW = "auto", "review"
MISSING = "missing"

# The comparison levels of each field, best first (the order EM's starting values follow).
LEVELS: dict[str, tuple[str, ...]] = {
    "given_name": ("exact", "nickname", "typo", "similar", "different"),
    "family_name": ("exact", "part", "typo", "similar", "different"),
    "date_of_birth": ("exact", "swap", "year", "typo", "different"),
    "sex": ("agree", "different"),
    # district: the same outward code (HT4); area: the same postcode area (HT)
    "postcode": ("exact", "district", "area", "different"),
    # the address's words and numbers: all, most (>= 80 %), half, some in common (small
    # spelling slips allowed), or none; only where both records carry an address
    "address": ("exact", "most", "half", "some", "different"),
}
FIELDS = tuple(LEVELS)
# Fields left out of a pair's explanation where either record lacks them.
OPTIONAL_FIELDS = frozenset({"address"})
# Given-name levels that may be auto-linked: anything else is a different name.
GIVEN_SAME = frozenset({"exact", "nickname", "typo"})
NHS_WEIGHT = 20.0  # equal valid NHS numbers (with the date of birth agreeing): decisive
TF_CLAMP = 3.0  # the term-frequency adjustment moves an exact surname by at most this much
SIMILAR_MIN = 0.75  # Jaro-Winkler for the "similar" level (the deterministic rule floor)
M_FLOOR = 0.002  # smallest m probability trained


# --- records ------------------------------------------------------------------------------
def normalise(name: str | None) -> str:
    """Lower case, accents and punctuation removed, single spaces ("-" splits parts)."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


def normalise_postcode(postcode: str | None) -> str:
    return re.sub(r"\s+", "", postcode or "").upper()


def dob_digits(value: object) -> str | None:
    """A date of birth as eight digits YYYYMMDD (from a date, "YYYY-MM-DD" or "YYYYMMDD"),
    or None when it is missing or not eight digits. Impossible dates are kept as digits:
    they still compare by transposition."""
    if value is None:
        return None
    digits = re.sub(r"\D", "", str(value))
    return digits if len(digits) == 8 else None


def valid_nhs(value: str | None) -> str | None:
    """The NHS number as ten digits when its check digit is valid, else None."""
    digits = re.sub(r"\D", "", value or "")
    valid = _nhs.is_valid(digits)  # type: ignore[attr-defined]
    return digits if len(digits) == 10 and valid else None


def _sex(value: str | None) -> str | None:
    v = (value or "").strip().lower()
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(v)


@dataclass(frozen=True, slots=True)
class Record:
    """One person record, normalised for comparison. Build with `record(...)`."""

    id: str
    given: str  # first given name, normalised
    family: str  # whole family name, normalised
    family_parts: tuple[str, ...]
    dob: str | None  # YYYYMMDD
    sex: str | None
    postcodes: tuple[str, ...]
    nhs: str | None  # valid NHS number only
    address: tuple[str, ...] = ()  # the address's words and numbers, lower case, in order


def record(
    id: str,
    given_name: str | None,
    family_name: str | None,
    date_of_birth: object,
    sex: str | None = None,
    postcodes: Iterable[str | None] = (),
    nhs_number: str | None = None,
    address: str | None = None,
) -> Record:
    parts = tuple(normalise((family_name or "").replace("-", " ")).split())
    first = [g for g in normalise(given_name).split()[:1] if g not in PLACEHOLDER_GIVEN]
    return Record(
        id=id,
        given=first[0] if first else "",
        family=" ".join(parts),
        family_parts=parts,
        dob=dob_digits(date_of_birth),
        sex=_sex(sex),
        postcodes=tuple(dict.fromkeys(p for p in map(normalise_postcode, postcodes) if p)),
        nhs=valid_nhs(nhs_number),
        address=address_tokens(address),
    )


def address_tokens(address: str | None) -> tuple[str, ...]:
    """The words and numbers of an address, lower case, accents removed, each once."""
    if not address:
        return ()
    text = unicodedata.normalize("NFKD", address).encode("ascii", "ignore").decode().lower()
    return tuple(dict.fromkeys(re.findall(r"[a-z]+|[0-9]+", text)))


GENERATION_YEARS = 12


def _strictly_same(lv: Mapping[str, str]) -> bool:
    """The query-time guard: the given names are the same name, and a date of birth that
    is not exact comes with a given name that is not a slip either (two slips at once: a
    reviewer decides)."""
    given, dob = lv["given_name"], lv["date_of_birth"]
    if given not in GIVEN_SAME | {MISSING}:
        return False
    return dob in ("exact", MISSING) or given in ("exact", "nickname")


# Given names that say the name is not known yet ("Baby Smith" before registration).
PLACEHOLDER_GIVEN = frozenset({"baby", "infant", "unborn", "unknown", "newborn"})


def _another_generation(lv: Mapping[str, str], left: Record, right: Record) -> bool:
    """Dates of birth a generation apart: a parent and a child of the same name (Junior)
    are never auto-linked, whatever the names and the address say."""
    if lv["date_of_birth"] != "different" or not (left.dob and right.dob):
        return False
    a, b = left.dob[:4], right.dob[:4]
    return a.isdigit() and b.isdigit() and abs(int(a) - int(b)) >= GENERATION_YEARS


def _crossed(r: Record) -> Record:
    """The record with given and family names exchanged (a keying error)."""
    family_parts = tuple(r.given.split())
    first = r.family_parts[0] if r.family_parts else ""
    return Record(
        r.id,
        first,
        " ".join(family_parts),
        family_parts,
        r.dob,
        r.sex,
        r.postcodes,
        r.nhs,
        r.address,
    )


# --- comparisons --------------------------------------------------------------------------
@functools.cache
def _nicknamer() -> Any:
    from nicknames import NickNamer

    return NickNamer()


@functools.cache
def _nicknames(name: str) -> frozenset[str]:
    return frozenset(_nicknamer().nicknames_of(name))


@functools.cache
def _canonicals(name: str) -> frozenset[str]:
    return frozenset(_nicknamer().canonicals_of(name))


def nickname_of(a: str, b: str) -> bool:
    """One name is a nickname or the full form of the other, or both are forms of one full
    name (Liz, Lizzie -> Elizabeth). Sharing only a nickname (Olivia, Oliver -> Ollie) is not
    enough."""
    return (
        b in _nicknames(a)
        or a in _nicknames(b)
        or b in _canonicals(a)
        or a in _canonicals(b)
        or bool(_canonicals(a) & _canonicals(b))
    )


@functools.cache
def _known_names() -> frozenset[str]:
    nn = _nicknamer()
    return frozenset(nn.nickname_lookup) | frozenset(nn.canonical_lookup)


@functools.lru_cache(maxsize=200_000)
def compare_given(a: str, b: str, known: frozenset[str] = frozenset()) -> str:
    """Given names: exact, nickname, typo (one slip, unless both are names in their own
    right), similar (Jaro-Winkler >= 0.75), different."""
    if a == b:
        return "exact"
    if nickname_of(a, b):
        return "nickname"
    both_names = (a in known or a in _known_names()) and (b in known or b in _known_names())
    if not both_names and max(len(a), len(b)) >= 4 and OSA.distance(a, b) <= 1:
        return "typo"
    return "similar" if JaroWinkler.similarity(a, b) >= SIMILAR_MIN else "different"


@functools.lru_cache(maxsize=200_000)
def _compare_family(a: str, b: str, parts_a: tuple[str, ...], parts_b: tuple[str, ...]) -> str:
    if a == b:
        return "exact"
    if set(parts_a) & set(parts_b):
        return "part"
    if any(OSA.distance(x, y) <= 1 and min(len(x), len(y)) >= 4 for x in parts_a for y in parts_b):
        return "typo"
    best = max((JaroWinkler.similarity(x, y) for x in parts_a for y in parts_b), default=0.0)
    return "similar" if best >= 0.88 else "different"


def compare_dob(a: str, b: str) -> str:
    if a == b:
        return "exact"
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return "swap"
    if a[4:] == b[4:] and a[:4].isdigit() and b[:4].isdigit() and abs(int(a[:4]) - int(b[:4])) == 1:
        return "year"
    if OSA.distance(a, b) <= 1:
        return "typo"
    return "different"


@functools.lru_cache(maxsize=100_000)
def _district(postcode: str) -> str:
    """The outward code of a UK postcode (without spaces: all but the last three)."""
    return postcode[:-3] if len(postcode) >= 5 else ""


@functools.lru_cache(maxsize=100_000)
def _area(postcode: str) -> str:
    """The postcode area: the letters the outward code starts with ("" when none)."""
    return re.match(r"[A-Z]*", postcode).group()  # type: ignore[union-attr]


@functools.lru_cache(maxsize=200_000)
def compare_postcode(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    if set(a) & set(b):
        return "exact"
    if {_district(x) for x in a} & {_district(y) for y in b} - {""}:
        return "district"
    if {_area(x) for x in a} & {_area(y) for y in b} - {""}:
        return "area"
    return "different"


def _fuzzy_word(word: str) -> bool:
    """A word of an address that may carry a slip (numbers and short words must be equal)."""
    return len(word) >= 4 and not word.isdigit()


def _near_word(word: str, words: list[str]) -> bool:
    """One of `words` is `word` but for one slip."""
    return bool(
        process.extractOne(word, words, scorer=OSA.distance, score_cutoff=1)
        or process.extractOne(word, words, scorer=JaroWinkler.similarity, score_cutoff=0.92)
    )


@functools.lru_cache(maxsize=200_000)
def compare_address(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    """Addresses by the share of words they have in common (of the longer one); a word
    with one slip (optimal string alignment 1, or Jaro-Winkler >= 0.92) counts."""
    set_a, set_b = set(a), set(b)
    if set_a == set_b:
        return "exact"
    shared = len(set_a & set_b)
    rest = [y for y in b if y not in set_a and _fuzzy_word(y)]
    for x in a if rest else ():
        if x not in set_b and _fuzzy_word(x) and _near_word(x, rest):
            shared += 1
    share = shared / max(len(a), len(b))
    if share >= 0.8:
        return "most"
    if share >= 0.5:
        return "half"
    return "some" if shared else "different"


def levels(left: Record, right: Record, known: frozenset[str] = frozenset()) -> dict[str, str]:
    """The comparison level of each field ("missing" where either record lacks it)."""
    out: dict[str, str] = {}
    out["given_name"] = (
        compare_given(left.given, right.given, known) if left.given and right.given else MISSING
    )
    out["family_name"] = (
        _compare_family(left.family, right.family, left.family_parts, right.family_parts)
        if left.family and right.family
        else MISSING
    )
    out["date_of_birth"] = compare_dob(left.dob, right.dob) if left.dob and right.dob else MISSING
    out["sex"] = (
        ("agree" if left.sex == right.sex else "different") if left.sex and right.sex else MISSING
    )
    out["postcode"] = (
        compare_postcode(left.postcodes, right.postcodes)
        if left.postcodes and right.postcodes
        else MISSING
    )
    out["address"] = (
        compare_address(left.address, right.address) if left.address and right.address else MISSING
    )
    return out


# --- the model ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """A scored pair: match weight (log2 Bayes factor), probability, band and explanation
    (each field's level and weight, NHS number first when it counted)."""

    weight: float
    probability: float
    band: str | None
    weights: tuple[tuple[str, str, float], ...]

    def level(self, name: str) -> str:
        return next((lv for f, lv, _ in self.weights if f == name), MISSING)


@dataclass
class Model:
    """m/u probabilities per field and level, the prior, thresholds, term frequencies."""

    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    prior: float = 1e-4  # P(match) of a candidate pair
    auto: float = 20.0
    review: float = 8.0
    family_tf: dict[str, float] = field(default_factory=dict)
    tf_min: float = 1e-5
    known_given: frozenset[str] = frozenset()
    meta: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def table(self) -> dict[str, dict[str, float]]:
        """log2(m/u) per field and level, never more for a worse level than a better one."""
        out: dict[str, dict[str, float]] = {}
        for f in FIELDS:
            best = math.inf
            out[f] = {}
            if f not in self.m:  # a field the model was not trained with weighs nothing
                out[f] = dict.fromkeys(LEVELS[f], 0.0)
                continue
            for lv in LEVELS[f]:
                best = min(best, math.log2(self.m[f][lv] / self.u[f][lv]))
                out[f][lv] = best
        return out

    def with_thresholds(self, auto: float | None = None, review: float | None = None) -> Model:
        return Model(
            self.m,
            self.u,
            self.prior,
            self.auto if auto is None else auto,
            self.review if review is None else review,
            self.family_tf,
            self.tf_min,
            self.known_given,
            self.meta,
        )

    def score(
        self,
        left: Record,
        right: Record,
        family_tf: Mapping[str, float] | None = None,
        known: frozenset[str] | None = None,
        strict_given: bool = True,
    ) -> Score:
        """Score a pair. `family_tf` (normalised family name -> share of records) adjusts an
        exact family name for how common it is (default: the shipped table). With
        `strict_given` (the default) a pair whose given names differ is never `auto`; the
        batch linker turns it off and applies the guard where a household is in sight."""
        known = self.known_given if known is None else known
        lv = levels(left, right, known)
        table = self.table
        parts: list[tuple[str, str, float]] = []
        if (
            lv["given_name"] not in GIVEN_SAME
            and lv["family_name"] not in ("exact", "part", "typo")
            and left.given
            and right.given
        ):
            crossed = levels(_crossed(left), right, known)
            if self._names(crossed) > self._names(lv):  # given and family names swapped
                lv = {
                    **lv,
                    "given_name": crossed["given_name"],
                    "family_name": crossed["family_name"],
                }
                parts.append(("names_swapped", "yes", 0.0))
        if left.nhs and right.nhs:
            agree = left.nhs == right.nhs
            parts.append(
                ("nhs_number", "exact" if agree else "different", NHS_WEIGHT * (1 if agree else -1))
            )
        for name in FIELDS:
            level = lv[name]
            if name in OPTIONAL_FIELDS and level == MISSING:
                continue
            w = 0.0 if level == MISSING else table[name][level]
            if name == "family_name" and level == "exact":
                w += self._tf_adjustment(
                    left.family, self.family_tf if family_tf is None else family_tf
                )
            parts.append((name, level, round(w, 3)))
        total = sum(w for _, _, w in parts)
        band = self.band(total, lv, left, right, strict_given)
        return Score(round(total, 3), self.probability(total), band, tuple(parts))

    def _names(self, lv: Mapping[str, str]) -> float:
        t = self.table
        return sum(t[f][lv[f]] for f in ("given_name", "family_name") if lv[f] != MISSING)

    def _tf_adjustment(self, family: str, tf: Mapping[str, float]) -> float:
        u_exact = self.u["family_name"]["exact"]
        share = max(tf.get(family, self.tf_min), self.tf_min)
        return max(-TF_CLAMP, min(TF_CLAMP, math.log2(u_exact / share)))

    def probability(self, weight: float) -> float:
        prior = math.log2(self.prior / (1 - self.prior))
        return 1 / (1 + 2 ** -(prior + weight))

    def band(
        self,
        weight: float,
        lv: Mapping[str, str],
        left: Record,
        right: Record,
        strict_given: bool = True,
    ) -> str | None:
        if left.nhs and right.nhs and left.nhs != right.nhs:
            return None  # two different valid NHS numbers: two people
        if weight < self.review:
            return None
        if (
            weight >= self.auto
            and (not strict_given or _strictly_same(lv))
            and not _another_generation(lv, left, right)
        ):
            return AUTO
        return REVIEW

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "meta": self.meta,
            "prior": self.prior,
            "thresholds": {"auto": self.auto, "review": self.review},
            "m": self.m,
            "u": self.u,
            "weights": {f: {lv: round(w, 3) for lv, w in t.items()} for f, t in self.table.items()},
            "tf_min": self.tf_min,
            "family_tf": dict(sorted(self.family_tf.items(), key=lambda kv: -kv[1])),
            "known_given": sorted(self.known_given),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        return cls(
            m={f: dict(v) for f, v in data["m"].items()},
            u={f: dict(v) for f, v in data["u"].items()},
            prior=float(data["prior"]),
            auto=float(data["thresholds"]["auto"]),
            review=float(data["thresholds"]["review"]),
            family_tf={k: float(v) for k, v in data.get("family_tf", {}).items()},
            tf_min=float(data.get("tf_min", 1e-5)),
            known_given=frozenset(data.get("known_given", ())),
            meta=dict(data.get("meta", {})),
        )


@functools.cache
def default_model() -> Model:
    """The shipped model (hub/identity_weights.json)."""
    return Model.from_json(json.loads(WEIGHTS_PATH.read_text()))


def load_model(path: Path | None = None) -> Model:
    return default_model() if path is None else Model.from_json(json.loads(path.read_text()))


# --- blocking -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=300_000)
def blocking_keys(r: Record) -> frozenset[tuple[str, ...]]:
    """Keys under which two records become a candidate pair: date of birth; swapped date of
    birth with a family initial; postcode with a family or given initial; NHS number;
    phonetic family part with the birth year; phonetic given and family names together; one
    name exact with the other's first two letters."""
    keys: set[tuple[str, ...]] = set()
    initials = {p[0] for p in r.family_parts}
    if r.dob:
        keys.add(("dob", r.dob))
        swapped = r.dob[:4] + r.dob[6:8] + r.dob[4:6]
        if swapped != r.dob:
            # canonical order so that both records of a swapped pair share the key
            key = min(r.dob, swapped)
            keys |= {("dobswap", key, i) for i in initials}
        for p in r.family_parts:
            keys.add(("sdx", _metaphone(p), r.dob[:4]))
    names = initials | ({r.given[0]} if r.given else set())
    for pc in r.postcodes:
        keys |= {("pcf", pc, i) for i in initials}
        # any name initial: the given or the family name initial, however they were keyed
        keys |= {("pcn", pc, i) for i in names}
    if r.given:
        # the names alone (phonetic, either order; or one name exact and the other's first
        # two letters): a missing date and a mistyped postcode
        g = _metaphone(r.given)
        keys |= {("names", *sorted((g, _metaphone(p)))) for p in r.family_parts}
        keys |= {("gf", r.given, p[:2]) for p in r.family_parts}
        keys |= {("fg", p, r.given[:2]) for p in r.family_parts}
    if r.nhs:
        keys.add(("nhs", r.nhs))
    return frozenset(keys)


@functools.lru_cache(maxsize=100_000)
def _metaphone(part: str) -> str:
    return jellyfish.metaphone(part) or part


def candidate_pairs(
    left: Sequence[Record], right: Sequence[Record], max_block: int = 2000
) -> set[tuple[int, int]]:
    """Index pairs (left, right) sharing a blocking key. Blocks with more than `max_block`
    records on the right are skipped (they carry no information)."""
    index: dict[tuple[str, ...], list[int]] = {}
    for j, r in enumerate(right):
        for key in blocking_keys(r):
            index.setdefault(key, []).append(j)
    pairs: set[tuple[int, int]] = set()
    for i, r in enumerate(left):
        for key in blocking_keys(r):
            block = index.get(key)
            if block and len(block) <= max_block:
                pairs.update((i, j) for j in block)
    return pairs


def term_frequencies(records: Iterable[Record]) -> dict[str, float]:
    counts = Counter(r.family for r in records if r.family)
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.items()}


def frequent_given(records: Iterable[Record], at_least: int = 5) -> frozenset[str]:
    """Given names common enough to be names in their own right, not slips."""
    counts = Counter(r.given for r in records if r.given)
    return frozenset(k for k, v in counts.items() if v >= at_least)


# --- training: expectation maximisation ---------------------------------------------------
def em(
    patterns: Mapping[tuple[str, ...], int],
    fields: Sequence[str] = FIELDS,
    iterations: int = 100,
    prior: float = 0.1,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], float]:
    """m, u and the match share from comparison patterns (one level per field of `fields`,
    "missing" ignored) and how often each occurs."""
    m: dict[str, dict[str, float]] = {}
    u: dict[str, dict[str, float]] = {}
    for f in fields:
        lvls = LEVELS[f]
        n = len(lvls)
        m[f] = {lv: (0.9 if k == 0 else 0.1 / (n - 1)) for k, lv in enumerate(lvls)}
        u[f] = {lv: (0.1 / (n - 1) if k < n - 1 else 0.9) for k, lv in enumerate(lvls)}
    items = list(patterns.items())
    lam = prior
    for _ in range(iterations):
        sm = {f: dict.fromkeys(LEVELS[f], 1e-9) for f in fields}
        su = {f: dict.fromkeys(LEVELS[f], 1e-9) for f in fields}
        total_g, total = 0.0, 0
        for pattern, count in items:
            pm, pu = lam, 1 - lam
            for f, lv in zip(fields, pattern, strict=True):
                if lv != MISSING:
                    pm *= m[f][lv]
                    pu *= u[f][lv]
            g = pm / (pm + pu)
            total_g += g * count
            total += count
            for f, lv in zip(fields, pattern, strict=True):
                if lv != MISSING:
                    sm[f][lv] += g * count
                    su[f][lv] += (1 - g) * count
        lam = total_g / max(total, 1)
        for f in fields:
            tm, tu = sum(sm[f].values()), sum(su[f].values())
            m[f] = {lv: v / tm for lv, v in sm[f].items()}
            u[f] = {lv: v / tu for lv, v in su[f].items()}
    return m, u, lam


# Blocking rules for training and the fields each estimates m for (those it does not fix).
TRAINING_BLOCKS: dict[str, tuple[str, ...]] = {
    "dob": ("given_name", "family_name", "sex", "postcode", "address"),
    "pcf": ("given_name", "date_of_birth", "sex"),
}


def _random_u(
    left: Sequence[Record], right: Sequence[Record], known: frozenset[str], n: int, seed: int
) -> dict[str, dict[str, float]]:
    """u: how often each level occurs between records paired at random (almost never the
    same person)."""
    import random

    rng = random.Random(seed)
    counts = {f: Counter[str]() for f in FIELDS}
    for _ in range(n):
        lv = levels(rng.choice(left), rng.choice(right), known)
        for f in FIELDS:
            if lv[f] != MISSING:
                counts[f][lv[f]] += 1
    u = {
        f: {
            lv: (counts[f][lv] + 1) / (sum(counts[f].values()) + len(LEVELS[f])) for lv in LEVELS[f]
        }
        for f in FIELDS
    }
    for f, value in _EXACT_VALUE.items():
        _set_exact(u[f], _chance_equal([value(r) for r in left], [value(r) for r in right]))
    return u


# The value whose equality is a field's "exact" level: its chance between two random records
# follows from the values' frequencies in each file, more precisely than sampling finds it.
_EXACT_VALUE: dict[str, Any] = {
    "given_name": lambda r: r.given,
    "family_name": lambda r: r.family,
    "date_of_birth": lambda r: r.dob,
}


def _chance_equal(left: Sequence[str | None], right: Sequence[str | None]) -> float | None:
    """P(two records drawn at random, one from each side, hold the same value), among those
    that hold one; None when a side holds none."""
    a, b = Counter(v for v in left if v), Counter(v for v in right if v)
    n_a, n_b = sum(a.values()), sum(b.values())
    if not n_a or not n_b:
        return None
    return max(sum(k * b[v] for v, k in a.items()) / (n_a * n_b), 1 / (n_a * n_b))


def _set_exact(u: dict[str, float], exact: float | None) -> None:
    """Put `exact` as the exact level's u, rescaling the other levels to keep the sum 1."""
    if exact is None:
        return
    rest = sum(p for lv, p in u.items() if lv != "exact")
    for lv in u:
        u[lv] = exact if lv == "exact" else u[lv] * (1 - exact) / rest


def _generated_sides(
    households: int, seed: int
) -> tuple[list[Record], list[Record], dict[str, str]]:
    """Health and police records of the generated population, and each record's person
    (ground truth, for evaluation only)."""
    from .demo import generator as g

    health: list[Record] = []
    police: list[Record] = []
    truth: dict[str, str] = {}
    for chunk in g.chunks(households, seed):
        for hp in chunk.health.patients:
            health.append(
                record(
                    hp.id,
                    hp.given_name,
                    hp.family_name,
                    hp.date_of_birth,
                    hp.sex,
                    [hp.postcode],
                    hp.nhs_number,
                )
            )
            truth[hp.id] = hp.person_id
        for pp in chunk.police.persons:
            police.append(
                record(
                    pp.id,
                    pp.given_name,
                    pp.family_name,
                    pp.date_of_birth,
                    pp.sex,
                    [pp.postcode],
                    pp.nhs_number,
                )
            )
            truth[pp.id] = pp.person_id
    return health, police, truth


def _m_from_nhs_pairs(
    left: Sequence[Record], right: Sequence[Record], known: frozenset[str], name: str
) -> dict[str, float] | None:
    """m of one field from the pairs that share a valid NHS number (the same person but for
    a rare keying error). Used for the date of birth: EM on the postcode block takes a
    parent and child of the same name for one person and underrates a different date."""
    by_nhs = {r.nhs: r for r in right if r.nhs}
    counts: Counter[str] = Counter()
    for r in left:
        other = by_nhs.get(r.nhs) if r.nhs else None
        if other is not None:
            level = levels(r, other, known)[name]
            if level != MISSING:
                counts[level] += 1
    if sum(counts.values()) < 200:
        return None
    total = sum(counts.values())
    floored = {lv: max(counts[lv] / total, M_FLOOR) for lv in LEVELS[name]}
    return {lv: p / sum(floored.values()) for lv, p in floored.items()}


def fit(
    left: Sequence[Record],
    right: Sequence[Record],
    random_pairs: int = 1_000_000,
    seed: int = 7,
    base: Model | None = None,
) -> Model:
    """Estimate u on random pairs and m by EM on the candidate pairs of each training block
    of two sets of records (no ground truth). Levels the data cannot estimate (a field
    missing throughout) keep `base`'s m and u; the thresholds are `base`'s."""
    known = frequent_given([*left, *right])
    u = _random_u(left, right, known, random_pairs, seed)
    m: dict[str, dict[str, float]] = {}
    matches = 0.0
    for rule, fields in TRAINING_BLOCKS.items():
        index: dict[tuple[str, ...], list[int]] = {}
        for j, r in enumerate(right):
            for key in blocking_keys(r):
                if key[0] == rule:
                    index.setdefault(key, []).append(j)
        patterns: Counter[tuple[str, ...]] = Counter()
        for r in left:
            for key in blocking_keys(r):
                if key[0] == rule:
                    for j in index.get(key, ()):
                        lv = levels(r, right[j], known)
                        patterns[tuple(lv[f] for f in fields)] += 1
        m_rule, _, lam = em(patterns, fields)
        matches = max(matches, lam * sum(patterns.values()))
        for f in fields:
            # a floor: a level never seen in the data (a typed year) is rare, not impossible
            floored = {lv: max(p, M_FLOOR) for lv, p in m_rule[f].items()}
            m.setdefault(f, {lv: p / sum(floored.values()) for lv, p in floored.items()})
    m["date_of_birth"] = (
        _m_from_nhs_pairs(left, right, known, "date_of_birth") or m["date_of_birth"]
    )
    for f in FIELDS:  # a field absent from either file: nothing to learn from
        if not any(_has(r, f) for r in left) or not any(_has(r, f) for r in right):
            if base is not None and f in base.m:
                m[f], u[f] = base.m[f], base.u[f]
            else:
                m.pop(f, None)
                u.pop(f, None)
    tf = term_frequencies(right)
    return Model(
        m=m,
        u=u,
        prior=matches / max(1, len(left) * len(right)),
        auto=base.auto if base else 20.0,
        review=base.review if base else 8.0,
        family_tf={k: round(v, 6) for k, v in sorted(tf.items(), key=lambda kv: -kv[1])[:300]},
        tf_min=round(1 / max(1, len(right)), 8),
        known_given=known,
        meta={
            "random_pairs": random_pairs,
            "blocks": {k: list(v) for k, v in TRAINING_BLOCKS.items()},
        },
    )


def _has(r: Record, name: str) -> bool:
    return bool(
        {
            "given_name": r.given,
            "family_name": r.family,
            "date_of_birth": r.dob,
            "sex": r.sex,
            "postcode": r.postcodes,
            "address": r.address,
        }[name]
    )


def train(households: int, seed: int, random_pairs: int = 1_000_000) -> Model:
    """`fit` on the health x police records of generated data."""
    left, right, _ = _generated_sides(households, seed)
    model = fit(left, right, random_pairs, seed)
    model.meta["trained_on"] = f"generated households={households} seed={seed}, health x police"
    return model


# --- batch linking ------------------------------------------------------------------------
CSV_COLUMNS = ("id", "given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")


@dataclass(frozen=True)
class Pair:
    left: int
    right: int
    band: str
    score: Score


@dataclass(frozen=True)
class Scored:
    """A candidate pair's score; `guarded`: the pair may be reviewed but never auto-linked
    (another person of a household is in sight, and the given names differ or the dates of
    birth are a generation apart)."""

    left: int
    right: int
    score: Score
    guarded: bool


def score_candidates(
    left: Sequence[Record],
    right: Sequence[Record],
    model: Model | None = None,
    progress: Any = None,
    floor: float | None = None,
    one_to_one: bool = False,
) -> tuple[list[Scored], int, set[tuple[int, int]]]:
    """Every candidate pair scoring at least `floor` (default: the review threshold), the
    number of candidate pairs, and the candidate pairs themselves.

    Guarded (never auto): a pair whose dates of birth are a generation apart (a parent and
    a child of one name), and a pair whose given names are different names where another
    record of the household is in sight. With `one_to_one` (each file holds a person once)
    the generation guard too applies only where a household is in sight: such files are
    curated lists whose dates of birth are keyed with errors, not a parent and a child."""
    model = model or default_model()
    floor = model.review if floor is None else floor
    tf = term_frequencies(right)
    known = model.known_given | frequent_given(right) | frequent_given(left)
    candidates = candidate_pairs(left, right)
    ordered = sorted(candidates)
    left_homes, right_homes = _households(left), _households(right)
    scored: list[Scored] = []
    step = max(1, len(ordered) // 100)
    for n, (i, j) in enumerate(ordered):
        s = model.score(left[i], right[j], tf, known, strict_given=False)
        if s.weight >= floor and s.level("nhs_number") != "different":
            lv = {f: level for f, level, _ in s.weights}
            # a parent and a child of one name are never auto-linked; other given names
            # only where no one else of the household is in sight
            generation = _another_generation(lv, left[i], right[j])
            guarded = (generation and not one_to_one) or (
                (generation or lv["given_name"] not in GIVEN_SAME | {MISSING})
                and (_has_housemate(left[i], left_homes) or _has_housemate(right[j], right_homes))
            )
            scored.append(Scored(i, j, s, guarded))
        if progress is not None and (n % step == 0 or n == len(ordered) - 1):
            progress(n + 1, len(ordered))
    return scored, len(ordered), candidates


def assign(
    scored: Iterable[Scored],
    auto: float,
    review: float,
    left: Sequence[Record] | None = None,
    right: Sequence[Record] | None = None,
    one_to_one: bool = False,
) -> list[Pair]:
    """One-to-one pairs, auto-band pairs first (best weight first), then review-band pairs
    between records not yet paired. Given the records, an auto pair whose record has a
    second auto candidate, another person, scoring nearly as well goes to review.

    `one_to_one`: neither file holds a person twice, so a review-band pair that is each
    record's clear best candidate (the runner-up on either side at least AMBIGUITY behind)
    is linked (`auto`), unless the sibling guard holds it back."""
    scored = list(scored)
    clear = _clear_best(scored) if one_to_one else set()
    banded: list[Pair] = []
    for p in scored:
        if not p.guarded and (
            p.score.weight >= auto or (p.score.weight >= review and (p.left, p.right) in clear)
        ):
            banded.append(Pair(p.left, p.right, AUTO, p.score))
        elif p.score.weight >= review:
            banded.append(Pair(p.left, p.right, REVIEW, p.score))
    _ambiguous_to_review(banded, left, right)
    banded.sort(key=lambda b: (b.band != AUTO, -b.score.weight))
    used_left: set[int] = set()
    used_right: set[int] = set()
    chosen: list[Pair] = []
    for b in banded:
        if b.left in used_left or b.right in used_right:
            continue
        used_left.add(b.left)
        used_right.add(b.right)
        chosen.append(b)
    return chosen


AMBIGUITY = 3.0  # log2: two auto candidates closer than this are not told apart


def _clear_best(scored: Sequence[Scored]) -> set[tuple[int, int]]:
    """The pairs that are both records' best candidate, ahead of each one's runner-up by at
    least AMBIGUITY."""
    best: dict[tuple[str, int], list[float]] = {}
    for p in scored:
        for key in (("l", p.left), ("r", p.right)):
            top = best.setdefault(key, [-math.inf, -math.inf])
            if p.score.weight > top[0]:
                top[:] = [p.score.weight, top[0]]
            elif p.score.weight > top[1]:
                top[1] = p.score.weight
    return {
        (p.left, p.right)
        for p in scored
        if all(
            best[k][0] == p.score.weight and best[k][0] - best[k][1] >= AMBIGUITY
            for k in (("l", p.left), ("r", p.right))
        )
    }


def _ambiguous_to_review(
    banded: list[Pair], left: Sequence[Record] | None, right: Sequence[Record] | None
) -> None:
    """A record with two auto-band candidates that score within AMBIGUITY of each other and
    are two people (different NHS numbers, given names or dates of birth: twins as one
    source records them): both go to review. Candidates that look like one person recorded
    twice are left to the one-to-one assignment."""
    if left is None or right is None:
        return
    found: dict[tuple[str, int], list[tuple[float, Record]]] = {}
    for p in banded:
        if p.band == AUTO:
            found.setdefault(("l", p.left), []).append((p.score.weight, right[p.right]))
            found.setdefault(("r", p.right), []).append((p.score.weight, left[p.left]))
    for k, p in enumerate(banded):
        if p.band != AUTO:
            continue
        for key in (("l", p.left), ("r", p.right)):
            cands = sorted(found[key], key=lambda c: -c[0])
            if (
                len(cands) > 1
                and cands[0][0] - cands[1][0] < AMBIGUITY
                and _two_people(cands[0][1], cands[1][1])
            ):
                banded[k] = Pair(p.left, p.right, REVIEW, p.score)
                break


def _two_people(a: Record, b: Record) -> bool:
    if a.nhs and b.nhs:
        return a.nhs != b.nhs
    if a.dob and b.dob and a.dob != b.dob:
        return True
    return bool(a.given and b.given and compare_given(a.given, b.given) not in GIVEN_SAME)


def link(
    left: Sequence[Record],
    right: Sequence[Record],
    model: Model | None = None,
    progress: Any = None,
    train: bool = False,
    one_to_one: bool = False,
) -> tuple[list[Pair], int]:
    """Pairs in the auto or review band, one-to-one (see `assign`), and the number of
    candidate pairs scored. `progress(done, total)` is called as candidates are scored.

    `train`: the m and u probabilities are estimated on the two files themselves (`fit`,
    unsupervised: no ground truth), for files whose fields or quality differ from the
    generated data the shipped weights were trained on; the thresholds stay the model's.
    `one_to_one`: neither file holds a person twice (see `assign`).

    The sibling guard, in batch: a pair whose given names are different names is auto-linked
    only when neither file holds another record of the same household (family name part and
    postcode); otherwise it is at most reviewed."""
    model = model or default_model()
    if train:
        model = fit(left, right, TRAIN_RANDOM_PAIRS, base=model)
    # every candidate that might be a record's best counts towards the one-to-one margin
    floor = min(0.0, model.review) if one_to_one else None
    scored, n, _ = score_candidates(left, right, model, progress, floor, one_to_one)
    return assign(scored, model.auto, model.review, left, right, one_to_one), n


TRAIN_RANDOM_PAIRS = 50_000  # u of a batch's own files (exact levels from frequencies)


def _home_keys(r: Record) -> set[tuple[str, str]]:
    """(family name part, address or else postcode) and (family name part, date of birth):
    the household, and a twin even where one of them is recorded at another address."""
    homes = [" ".join(sorted(r.address))] if r.address else r.postcodes
    keys = {(p, home) for p in r.family_parts for home in homes}
    if r.dob:
        keys |= {(p, "dob:" + r.dob) for p in r.family_parts}
    return keys


def _households(records: Sequence[Record]) -> Counter[tuple[str, str]]:
    """How many records share each (family name part, postcode): a household in sight."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in records:
        counts.update(_home_keys(r))
    return counts


def _has_housemate(r: Record, homes: Counter[tuple[str, str]]) -> bool:
    return any(homes[k] > 1 for k in _home_keys(r))


def write_pairs(
    path: Path, left: Sequence[Record], right: Sequence[Record], pairs: Sequence[Pair]
) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("left_id", "right_id", "band", "score"))
        for p in pairs:
            w.writerow((left[p.left].id, right[p.right].id, p.band, f"{p.score.weight:.3f}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.linkage")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="estimate m/u by EM on generated data")
    t.add_argument("--households", type=int, default=20000)
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    t.add_argument("--auto", type=float, default=None)
    t.add_argument("--review", type=float, default=None)
    args = parser.parse_args(argv)
    model = train(args.households, args.seed)
    old = load_model(args.out) if args.out.exists() else None
    model = model.with_thresholds(
        args.auto if args.auto is not None else (old.auto if old else None),
        args.review if args.review is not None else (old.review if old else None),
    )
    args.out.write_text(json.dumps(model.to_json(), indent=1) + "\n")
    print(f"wrote {args.out}: prior {model.prior:.4g}")
    for f, t_ in model.table.items():
        print(f"  {f}: " + ", ".join(f"{lv} {w:+.2f}" for lv, w in t_.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
