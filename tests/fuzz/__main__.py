"""``python -m tests.fuzz [--long] [--seed N] [--cases N] [--reader R ...] [--replay CASE ...]``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fuzz.corpus import READERS
from tests.fuzz.runner import plan, run_cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--long", action="store_true", help="400 cases per reader (default: 14, the quick mode)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--cases", type=int, help="cases per reader")
    parser.add_argument("--reader", action="append", choices=READERS, help="only these readers")
    parser.add_argument("--replay", action="append", metavar="READER:SEED:INDEX", help="run these cases only")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temporary folder")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.replay:
        cases = [(r, int(s), int(i)) for r, s, i in (c.split(":") for c in args.replay)]
    else:
        readers = tuple(args.reader or READERS)
        cases = plan(args.seed, args.cases or (400 if args.long else 14), readers)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work = Path(args.keep or tmp)
        report = run_cases(work, cases, verbose=args.verbose or bool(args.replay))
    print(report.text())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
