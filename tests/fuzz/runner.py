"""Run mutated sources through the CLI in one worker under a watchdog, and judge each outcome."""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.corpus import READERS, Pristine, write_corpus
from tests.fuzz.mutations import Mutation, apply_mutation, make_mutation

ROOT = Path(__file__).resolve().parents[2]
CASE_SECONDS = 60.0


class Worker:
    """One ``python -m tests.fuzz.worker`` process; restarted after a hang or a crash."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        env = os.environ | {"JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=ROOT, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        if self._read(120.0) is None:
            raise RuntimeError(f"the fuzz worker did not start; see {self.log}")

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def run(self, argv: list[str], timeout: float = CASE_SECONDS) -> dict:
        """The worker's answer, or ``{"failure": "hang" | "crash"}`` (and a fresh worker)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"argv": argv}) + "\n").encode())
            self.proc.stdin.flush()
            answer = self._read(timeout)
        except (BrokenPipeError, json.JSONDecodeError):
            answer = None
        if answer is not None:
            return answer
        failure = "crash" if self.proc.poll() is not None else f"hang (no answer in {timeout:.0f} s)"
        self.stop()
        self.restarts += 1
        return {"failure": failure, "returncode": self.proc.returncode if self.proc else None}

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def judge(command: str, answer: dict, damaged: Path, spec: Path) -> str | None:
    """``None`` when the outcome is one of the two allowed ones, else what went wrong."""
    if "failure" in answer:
        return answer["failure"]
    if answer["exc"]:
        return "exception escaped main():\n" + answer["exc"]
    err = answer["err"]
    if "Traceback" in err:
        return "traceback on stderr:\n" + err[-2000:]
    code = answer["code"]
    if code == 0 or (code == 1 and command == "diff"):
        try:
            body = json.loads(answer["out"])
        except json.JSONDecodeError as exc:
            return f"exit {code} but stdout is not JSON ({exc})"
        key = "variables" if command == "show" else "entries"
        return None if isinstance(body, dict) and key in body else f"exit {code} but JSON lacks {key!r}"
    if code != 2:
        return f"exit {code}:\n{err[-2000:]}"
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    if not lines or not lines[-1].startswith("error:") or len(errors) != 1:
        return f"exit 2 without exactly one last 'error:' line:\n{err[-2000:]}"
    last = lines[-1]
    if str(spec) not in last and damaged.name not in last:
        return f"the error names neither the source nor {damaged.name}: {last}"
    return None


@dataclass
class Report:
    counts: dict[str, Counter] = field(default_factory=dict)
    failures: list[tuple[Mutation, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, reader: str, outcome: str) -> None:
        self.counts.setdefault(reader, Counter())[outcome] += 1

    def text(self) -> str:
        lines = [f"{'reader':<24}{'cases':>7}{'read':>7}{'refused':>9}{'failed':>8}   refusals naming the damaged file"]
        for reader, c in self.counts.items():
            cases = c["read"] + c["refused"] + c["failed"]
            lines.append(f"{reader:<24}{cases:>7}{c['read']:>7}{c['refused']:>9}{c['failed']:>8}   {c['names_file']}")
        lines.append(f"{len(self.failures)} failure(s) in {self.seconds:.0f} s")
        for mutation, command, why in self.failures:
            lines.append(f"\nFAIL {mutation.case} [{command}] {mutation.text()}\n  {why.strip()[-1500:]}\n"
                         f"  replay: python -m tests.fuzz --replay {mutation.case}")
        return "\n".join(lines)


def run_cases(work: Path, cases: list[tuple[str, int, int]], *, budget: float | None = None,
              readers: tuple[str, ...] = READERS, verbose: bool = False) -> Report:
    """Write the corpus under ``work`` and run ``(reader, seed, index)`` cases; stop at ``budget`` s."""
    started = time.perf_counter()
    needed = tuple(r for r in readers if any(c[0] == r for c in cases))
    pristine: dict[str, Pristine] = write_corpus(work / "pristine", needed)
    sizes = {r: {name: (work / "pristine" / r / name).stat().st_size for name in p.files}
             for r, p in pristine.items()}
    report = Report()
    worker = Worker(work / "worker.log")
    try:
        for reader, seed, index in cases:
            if budget is not None and time.perf_counter() - started > budget:
                break
            p = pristine[reader]
            mutation = make_mutation(p, seed, index, sizes[reader])
            src, dst = work / "pristine" / reader, work / "damaged" / reader
            damaged = apply_mutation(mutation, src, dst)
            before = (snapshot(src), snapshot(dst))
            spec, good = dst / p.spec, src / p.spec
            outcome, named = "read", False
            for command, argv in (("show", ["show", str(spec), "--values", "--format", "json"]),
                                  ("diff", ["diff", str(spec), str(good), "--values", "--format", "json"])):
                answer = worker.run(argv)
                why = judge(command, answer, damaged, spec)
                if why is None and (snapshot(src), snapshot(dst)) != before:
                    why = "the input was written to"
                if why is not None:
                    report.failures.append((mutation, command, why))
                    outcome = "failed"
                    break
                if answer.get("code") == 2:
                    outcome = "refused"
                    named = damaged.name in answer["err"].strip().splitlines()[-1]
            if outcome == "refused" and named:
                report.add(reader, "names_file")
            report.add(reader, outcome)
            if verbose:
                print(f"{mutation.case:<32} {outcome:<8} {mutation.text()}", flush=True)
    finally:
        worker.stop()
        report.seconds = time.perf_counter() - started
    return report


def plan(seed: int, per_reader: int, readers: tuple[str, ...] = READERS) -> list[tuple[str, int, int]]:
    """Cases interleaved across readers, so a time budget cuts every reader equally."""
    return [(reader, seed, index) for index in range(per_reader) for reader in readers]
