"""Training the identity model shipped in `hub/identity/weights.json` on generated data:
health x police records of `hub.demo.generator` (the ground truth is never read), with
`hub.identity.linkage.fit`. Train again with:

    python -m hub.demo.identity_training train --households 20000 --seed 7 \
        --out hub/identity/weights.json

(thresholds are kept from the existing file unless --auto / --review are given)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..identity.linkage import WEIGHTS_PATH, Model, Record, fit, load_model, record
from . import generator as g


def _generated_sides(
    households: int, seed: int
) -> tuple[list[Record], list[Record], dict[str, str]]:
    """Health and police records of the generated population, and each record's person
    (ground truth, for evaluation only)."""

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


def train(households: int, seed: int, random_pairs: int = 1_000_000) -> Model:
    """`fit` on the health x police records of generated data."""
    left, right, _ = _generated_sides(households, seed)
    model = fit(left, right, random_pairs, seed)
    model.meta["trained_on"] = f"generated households={households} seed={seed}, health x police"
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.demo.identity_training")
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
