"""`python -m bench [--quick] [--out DIR] [name ...]`: run the harnesses (all by default).

Each writes `<out>/<name>.json` (default bench/results). `--quick` runs every harness at tiny
sizes in seconds: the test suite runs it so that no harness can rot unseen; its figures mean
nothing, so it never writes to bench/results unless told to.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path

HARNESSES = ("hub", "sources", "identity", "policy", "audit", "gateway")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=", ".join(HARNESSES))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--out", type=Path, help="where to write the figures")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in HARNESSES]
    if unknown:
        print(f"unknown harness {unknown[0]!r}; known: {', '.join(HARNESSES)}", file=sys.stderr)
        return 2
    quick_out = Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else None
    out: Path = args.out or quick_out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or HARNESSES:
        figures = importlib.import_module(f"bench.{name}").run(quick=args.quick)
        path = out / f"{name}.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"{path}: {json.dumps(figures)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
