"""The parent-child protocol of the benchmark: a ``Case`` goes to a child as JSON, a ``Result`` comes back.

Peak memory only grows within a process, so every (workload, size, implementation) runs in a
fresh ``python -m bench.run_case`` and reports its own ``ru_maxrss``; our side and the reference
never share a process, and neither pays for the other's imports or garbage. Standard library
only: the parent never imports jax.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Case:
    """One child process: a workload at one size, by one implementation.

    ``cap``: the longest one repetition may run (the slow ``nnx.eval_shape`` reference), reported
    as "> cap s". ``budget``: stop repeating once the timed repetitions add up to this much.
    """

    workload: str
    size: int
    impl: str
    reps: int = 3
    budget: float = 60.0
    cap: float | None = None
    params: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, int, str]:
        return self.workload, self.size, self.impl

    def param(self, name: str, default: str = "") -> str:
        return dict(self.params).get(name, default)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Case:
        return cls(**{**data, "params": tuple(sorted(dict(data.get("params", {})).items()))})


@dataclasses.dataclass(frozen=True)
class Result:
    """What a child reports: the timed repetitions and the process's memory, in MiB.

    ``rss_before_mb`` is the peak after imports and set-up, before the first timed call: the
    difference to ``rss_peak_mb`` is what the measured call itself added.
    """

    case: Case
    times: tuple[float, ...] = ()
    variables: int | None = None
    rss_before_mb: float | None = None
    rss_peak_mb: float | None = None
    timed_out: bool = False
    error: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def median(self) -> float | None:
        if not self.times:
            return None
        ordered = sorted(self.times)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def extra_rss_mb(self) -> float | None:
        if self.rss_peak_mb is None or self.rss_before_mb is None:
            return None
        return self.rss_peak_mb - self.rss_before_mb

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "case": self.case.to_json(), "extra": dict(self.extra)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(**{**data, "case": Case.from_json(data["case"]), "times": tuple(data.get("times", ())),
                      "extra": tuple(sorted(dict(data.get("extra", {})).items()))})



def run_case(case: Case, *, timeout: float | None = None) -> Result:
    """Run one case in a fresh ``python -m bench.run_case`` and read back its result.

    ``timeout`` is a backstop for a hung child (the child enforces ``cap`` itself): past it the
    child is killed and the result says so.
    """
    with tempfile.TemporaryDirectory(prefix="bench-case-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "bench.run_case", "--out", str(out), json.dumps(case.to_json())]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Result(case, error=f"killed after {timeout:.0f} s (backstop timeout)")
        if out.is_file():
            return Result.from_json(json.loads(out.read_text()))
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return Result(case, error=f"child exited {done.returncode} without a result: " + " | ".join(tail))


def merge_results(results: list[Result]) -> Result:
    """One result from several processes of a ``once`` workload: all their times, the top peak."""
    first = results[0]
    failed = next((r for r in results if r.error), None)
    peaks = [r.rss_peak_mb for r in results if r.rss_peak_mb is not None]
    befores = [r.rss_before_mb for r in results if r.rss_before_mb is not None]
    return dataclasses.replace(
        first, times=tuple(t for r in results for t in r.times), error=failed.error if failed else None,
        rss_peak_mb=max(peaks) if peaks else None, rss_before_mb=max(befores) if befores else None,
        timed_out=any(r.timed_out for r in results))
