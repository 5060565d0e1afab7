"""The child process of one benchmark case: ``python -m bench.run_case --out FILE CASE_JSON``.

It prepares the workload, times its call, and writes a ``Result`` as JSON to ``FILE`` (a file, not
stdout, because libraries print to stdout). Memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``,
read once after set-up and once right after the last timed call, so checks that run afterwards
never count.

A repetition longer than the case's ``cap`` is interrupted by ``SIGALRM`` and reported as timed
out: ``nnx.eval_shape`` of 1,000 blocks runs for more than ten minutes, and the report only needs
to know it is longer than the cap. The alarm repeats every second after the cap, because Python
only prints (and drops) an exception raised while it runs a weakref callback or ``__del__``. The
interrupted call may leave jax's trace state broken, so nothing runs after it but the report.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.cases import WORKLOADS, Workload
from bench.protocol import Case, Result


class CapReached(BaseException):
    """Raised by the alarm inside a repetition that ran longer than the case's cap.

    A ``BaseException``, like ``KeyboardInterrupt``: library code that catches ``Exception`` around
    the point where the alarm lands must not swallow it.
    """


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any, cap: float | None) -> float:
    """Seconds one call takes; raises ``CapReached`` past ``cap``."""
    def alarm(signum: int, frame: Any) -> None:
        raise CapReached

    previous = signal.signal(signal.SIGALRM, alarm) if cap else None
    if cap:  # then every second: an alarm landing in a weakref callback or __del__ is only printed
        signal.setitimer(signal.ITIMER_REAL, cap, 1.0)
    try:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started
    finally:
        if cap:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def measure(case: Case) -> Result:
    """Prepare the case's workload and time it: up to ``reps`` times, within ``budget`` seconds."""
    workload: Workload = WORKLOADS[case.workload](case)
    gc.collect()
    before = peak_rss_mb()
    if workload.warmup:
        workload.run()
    times: list[float] = []
    timed_out = False
    for _ in range(1 if workload.once else max(1, case.reps)):
        try:
            took = timed(workload.run, case.cap)
        except CapReached:
            timed_out = True
            break
        if case.cap and took > case.cap:  # the alarm landed somewhere that swallowed it
            timed_out = True
            break
        times.append(took)
        if sum(times) >= case.budget:
            break
    peak = peak_rss_mb()
    extra: dict[str, Any] = {}
    if workload.check is not None and not timed_out:
        extra = workload.check()
    return Result(case, times=tuple(times), variables=workload.variables, rss_before_mb=before,
                  rss_peak_mb=peak, timed_out=timed_out, extra=tuple(sorted(extra.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_case", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    parser.add_argument("case", help="the case as JSON (bench.cases.Case.to_json)")
    args = parser.parse_args(argv)
    case = Case.from_json(json.loads(args.case))
    try:
        result = measure(case)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which decides what fails
        traceback.print_exc()
        result = Result(case, error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300],
                        rss_peak_mb=peak_rss_mb())
    Path(args.out).write_text(json.dumps(result.to_json()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
