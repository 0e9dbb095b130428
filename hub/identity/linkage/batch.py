"""Linking two files of people in batch (`mash-hub link`): score the candidate pairs,
assign them one-to-one into the auto and review bands, write the pairs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scoring import (
    AUTO,
    GIVEN_SAME,
    MISSING,
    REVIEW,
    Model,
    Record,
    Score,
    _another_generation,
    candidate_pairs,
    compare_given,
    default_model,
    frequent_given,
    term_frequencies,
)
from .training import fit

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
