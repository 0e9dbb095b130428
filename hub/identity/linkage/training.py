"""Estimating the model's m and u probabilities by expectation maximisation on the
candidate pairs of two files (no ground truth): u from random pairs, m per blocking rule,
the date of birth's m from pairs sharing a valid NHS number."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .scoring import (
    FIELDS,
    LEVELS,
    M_FLOOR,
    MISSING,
    Model,
    Record,
    blocking_keys,
    frequent_given,
    levels,
    term_frequencies,
)


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
