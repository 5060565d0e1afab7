"""``python -m bench [--quick] [--out FILE]``: run the benchmark and write its report.

The full run (``make bench``, about 10 minutes) writes ``bench/RESULTS.md`` and ``bench/growth.html``.
``--quick`` (well under two minutes, run by ``.ci/run``) measures small sizes and writes
``artifacts/bench-quick.md``. Either exits 1 when a ratio or a growth slope is far beyond its goal
(see ``bench.suite``), or a case crashed; never because of an absolute time.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import machine, suite
from bench.cases import COLD, checkpoint_bytes
from bench.protocol import ROOT, Case, Result, merge_results, run_case
from bench.report import Report, format_bytes, format_mb, format_seconds, write_report

DISK_MARGIN = 1024 ** 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI (under two minutes)")
    parser.add_argument("--out", type=Path, help="the Markdown report (default: bench/RESULTS.md, "
                                                  "or artifacts/bench-quick.md with --quick)")
    parser.add_argument("--only", default="", help="comma-separated workloads to run (e.g. abstract,filter)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="where checkpoints are written (default: the system temp dir); always deleted")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = suite.QUICK if args.quick else suite.FULL
    out = args.out or ROOT / ("artifacts/bench-quick.md" if args.quick else "bench/RESULTS.md")
    started, clock = datetime.datetime.now().astimezone(), time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=args.scratch))
    try:
        facts = machine.facts(scratch)
        cases = plan.cases(scratch)
        if args.only:
            wanted = set(args.only.split(","))
            cases = [c for c in cases if c.workload in wanted]
        results, skipped = run_all(cases, plan)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    facts["load average 1/5/15 min at end"] = machine.load_average()
    rows = suite.build_rows(results)
    growth = suite.growth_slopes(results)
    failed = suite.failures(rows, growth, results)
    report = Report(mode=plan.name, started=started.isoformat(timespec="minutes"),
                    duration_s=time.perf_counter() - clock, commit=machine.commit(ROOT), machine=facts,
                    rows=rows, growth=growth, failures=failed, skipped=skipped,
                    command="python -m bench --quick" if args.quick else "make bench")
    md, html = write_report(report, out)
    print(f"wrote {md} and {html} in {report.duration_s:.0f} s", file=sys.stderr)
    for failure in failed:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failed else 0


def run_all(cases: list[Case], plan: suite.Plan) -> tuple[dict[tuple[str, int, str], Result], list[str]]:
    """Run every case in order, one process each; checkpoints are written just before their cases
    and deleted right after, so at most one is on disk at a time."""
    results: dict[tuple[str, int, str], Result] = {}
    skipped: list[str] = []
    for i, case in enumerate(cases, 1):
        directory = Path(case.param("dir")) if case.param("dir") else None
        if directory is not None and not directory.exists():
            reason = checkpoint_room(case.size, directory.parent)
            if reason:
                skipped.append(reason)
                print(f"skip: {reason}", file=sys.stderr)
                continue
            writer = case.param("writer", "checkpoint-write")
            written = run_case(Case(writer, case.size, case.param("format", "orbax"), reps=1, params=case.params),
                               timeout=1800)
            if written.error:
                results[case.key] = Result(case, error=f"writing the checkpoint failed: {written.error}")
                continue
            print(f"wrote a {format_bytes(checkpoint_bytes(case.size))} {case.param('format', 'orbax')} file in "
                  f"{format_seconds(written.median)}", file=sys.stderr)
        if directory is not None and not directory.exists():
            continue  # its checkpoint was skipped
        backstop = (case.cap or case.budget) * (case.reps + 1) + 300
        began = time.perf_counter()
        runs = [run_case(case, timeout=backstop) for _ in range(plan.processes if case.workload in COLD else 1)]
        result = results[case.key] = merge_results(runs)
        print(f"[{i}/{len(cases)}] {case.workload} {case.size} {case.impl}: {progress(result)}; "
              f"{time.perf_counter() - began:.0f} s with set-up", file=sys.stderr)
        last_of_size = not any(c.param("dir") == case.param("dir") for c in cases[i:])
        if directory is not None and last_of_size:
            if directory.is_file():
                directory.unlink()
            else:
                shutil.rmtree(directory, ignore_errors=True)
    return results, skipped


def checkpoint_room(dim: int, scratch: Path) -> str | None:
    """Why a checkpoint of this size cannot be written and restored here, or ``None``."""
    from bench.machine import memory_available_bytes

    need = checkpoint_bytes(dim)
    free = shutil.disk_usage(scratch).free
    if free < need + DISK_MARGIN:
        return (f"the {format_bytes(need)} checkpoint: {format_bytes(free)} free on {scratch}, "
                f"{format_bytes(need + DISK_MARGIN)} needed")
    memory = memory_available_bytes()
    if memory is not None and memory < 3 * need:
        return f"the {format_bytes(need)} checkpoint: {format_bytes(memory)} of memory available, 3× its size needed"
    return None


def progress(result: Result) -> str:
    if result.error:
        return f"error: {result.error}"
    timing = "> cap" if result.timed_out and not result.times else format_seconds(result.median)
    return f"{timing} (×{len(result.times)}), peak {format_mb(result.rss_peak_mb)}"


if __name__ == "__main__":
    sys.exit(main())
