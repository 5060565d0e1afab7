"""The quick mode of the weight-file fuzzer, part of ``make test``: every reader, a fixed seed,
a time budget; ``make fuzz`` runs the long mode."""

from __future__ import annotations

from tests.fuzz.corpus import READERS
from tests.fuzz.runner import plan, run_cases

QUICK_CASES = 14  # per reader: every mutation kind twice
QUICK_BUDGET = 100.0  # seconds; on a slow machine fewer cases run, never a longer test


def test_damaged_weight_files_read_or_fail_with_one_error_line(tmp_path):
    report = run_cases(tmp_path, plan(20, QUICK_CASES), budget=QUICK_BUDGET)
    assert not report.failures, report.text()
    assert set(report.counts) == set(READERS), report.text()
    assert sum(c["refused"] for c in report.counts.values()) > 20, report.text()
