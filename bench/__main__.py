"""`python -m bench [name ...]`: run the harnesses (all by default)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

HARNESSES = ("hub", "sources", "identity", "policy", "audit")
RESULTS = Path(__file__).resolve().parent / "results"


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    for name in names or HARNESSES:
        if name not in HARNESSES:
            print(f"unknown harness {name!r}; known: {', '.join(HARNESSES)}", file=sys.stderr)
            return 2
        figures = importlib.import_module(f"bench.{name}").run()
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"{path}: {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
