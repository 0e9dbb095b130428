"""Scoring a pair of person records (Fellegi–Sunter): each field's comparison level, its
weight log2(m/u), the pair's match weight and band, and the guards no weight overrides. See
the package docstring (`hub.identity.linkage`) for the method."""

from __future__ import annotations

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

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "weights.json"

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
    """The shipped model (hub/identity/weights.json)."""
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
