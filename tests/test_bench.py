"""The benchmark's machinery, on fake numbers and one tiny real case; no timing is asserted."""

from __future__ import annotations

import doctest
import math

import pytest

from bench import cases, machine, models, protocol, report, sizes, suite
from bench.protocol import Case, Result

RESULTS_HEADER = ("| measure | size | ours (median) | reference (median) | ratio | our peak RSS | "
                  "reference peak RSS | goal | verdict |")


def fake(workload: str, size: int, impl: str, seconds: float | None, *, variables: int | None = None,
         timed_out: bool = False, cap: float | None = None, peak: float = 300.0) -> Result:
    case = Case(workload, size, impl, cap=cap)
    times = () if seconds is None else (seconds * 0.9, seconds, seconds * 1.2)
    return Result(case, times=times, variables=variables or size, rss_before_mb=200.0, rss_peak_mb=peak,
                  timed_out=timed_out)


def as_results(*results: Result) -> dict[tuple[str, int, str], Result]:
    return {r.case.key: r for r in results}


@pytest.mark.parametrize("module", [models, sizes, suite, report], ids=["models", "sizes", "suite", "report"])
def test_docstring_examples(module):
    failed, _ = doctest.testmod(module)
    assert failed == 0


@pytest.mark.parametrize(("points", "expected"), [
    ([(100, 0.01), (1000, 0.1)], [1.0]),
    ([(100, 0.01), (1000, 1.0)], [2.0]),
    ([(1000, 0.1), (100, 0.01), (10000, 1.0)], [1.0, 1.0]),
], ids=["linear", "quadratic", "unsorted"])
def test_series_slopes(points, expected):
    assert [round(s, 6) for s in suite.series_slopes(points)] == expected


def test_quadratic_growth_fails_and_linear_passes():
    results = as_results(
        fake("diff-rename", 100, "ours", 0.01), fake("diff-rename", 1000, "ours", 0.8),  # slope 1.9
        fake("normalize-nnx", 100, "ours", 0.01), fake("normalize-nnx", 1000, "ours", 0.12),
        fake("normalize-nnx", 100, "flax", 0.01), fake("normalize-nnx", 1000, "flax", 0.9))
    growth = suite.growth_slopes(results)
    failed = suite.failures(suite.build_rows(results), growth, results)
    assert len(failed) == 1 and "diff, Linen vs its NNX twin" in failed[0] and "slope 1.90" in failed[0]


def test_tiny_times_are_not_judged():
    results = as_results(fake("diff-rename", 100, "ours", 0.0001), fake("diff-rename", 1000, "ours", 0.01))
    (growth,) = suite.growth_slopes(results)
    assert growth.slope == pytest.approx(2.0) and not growth.judged and growth.failure() is None


@pytest.mark.parametrize(("ours", "linen", "fails"), [(1.0, 0.9, False), (4.0, 1.0, True)],
                         ids=["within-goal", "beyond-3x"])
def test_abstract_ratio_gate(ours, linen, fails):
    results = as_results(fake("abstract", 1000, "ours", ours, variables=6000),
                         fake("abstract", 1000, "linen", linen, variables=6000))
    rows = [r for r in suite.build_rows(results) if r.measure.key == "abstract-linen"]
    assert [bool(r.gate_failure()) for r in rows] == [fails]


def test_timed_out_reference_gives_a_bound():
    results = as_results(fake("abstract", 1000, "ours", 5.0, variables=6000),
                         fake("abstract", 1000, "nnx", None, variables=6000, timed_out=True, cap=60.0))
    (row,) = [r for r in suite.build_rows(results) if r.measure.key == "abstract-nnx"]
    assert row.ratio_is_bound and math.isclose(row.ratio, 5.0 / 60.0)
    text = report.table_markdown([row])
    assert "> 60 s" in text and "< 0.083×" in text


def test_goal_misses_are_named():
    results = as_results(fake("abstract", 1000, "ours", 2.0, variables=6000, peak=2000.0),
                         fake("abstract", 1000, "linen", 1.0, variables=6000))
    (row,) = [r for r in suite.build_rows(results) if r.measure.key == "abstract-linen"]
    assert row.misses() == ["ratio 2.00× > 1.5×", "peak 2000 MB > 1500 MB"]
    assert row.verdict().startswith("misses: ratio 2.00×")


def test_report_writer(tmp_path):
    results = as_results(
        fake("normalize-nnx", 100, "ours", 0.004), fake("normalize-nnx", 100, "flax", 0.002),
        fake("normalize-nnx", 1000, "ours", 0.04), fake("normalize-nnx", 1000, "flax", 0.03),
        fake("checkpoint", 64, "ours", 0.01, variables=16), fake("checkpoint", 4096, "ours", 0.012, variables=16),
        fake("checkpoint", 4096, "orbax", 1.3, variables=16, peak=1400.0))
    rows = suite.build_rows(results)
    growth = suite.growth_slopes(results)
    rep = report.Report(mode="quick", started="2026-01-01T00:00+00:00", duration_s=60.0, commit="main@abc",
                        machine={"CPU": "test"}, rows=rows, growth=growth,
                        failures=suite.failures(rows, growth, results), skipped=["the 4 GiB checkpoint: no room"])
    md, html = report.write_report(rep, tmp_path / "RESULTS.md")
    text = md.read_text()
    assert RESULTS_HEADER in text
    assert "| checkpoint `show` (metadata only) vs the same at 64×64 | 1.00 GiB (16×4096²) |" in text
    assert "No ratio or slope beyond its CI bound." in text and "the 4 GiB checkpoint: no room" in text
    assert html.name == "growth.html" and '"type":"log"' in html.read_text().replace(" ", "")


def test_plans_name_known_workloads(tmp_path):
    for plan in (suite.QUICK, suite.FULL):
        planned = plan.cases(tmp_path)
        assert {c.workload for c in planned} <= set(cases.WORKLOADS)
        assert all(c.param("dir") for c in planned if c.workload == "checkpoint")
    assert {m.workload for m in suite.MEASURES} <= set(cases.WORKLOADS)


def test_case_json_round_trip():
    case = Case("checkpoint", 64, "ours", cap=1.5, params=(("dir", "/x"),))
    result = Result(case, times=(0.1, 0.3, 0.2), extra=(("same_records", True),))
    again = Result.from_json(result.to_json())
    assert again == result and again.median == 0.2


def test_cold_cases_merge_into_one_result():
    runs = [Result(Case("app", 1000, "ours"), times=(t,), rss_before_mb=60.0, rss_peak_mb=p)
            for t, p in ((2.0, 400.0), (1.0, 420.0), (3.0, 410.0))]
    merged = protocol.merge_results(runs)
    assert merged.times == (2.0, 1.0, 3.0) and merged.median == 2.0 and merged.rss_peak_mb == 420.0


def test_factories_by_spec_name():
    assert models.factory("blocks_linen_2")()[0].n == 2
    with pytest.raises(AttributeError, match="no factory 'blocks_jax_2'"):
        models.factory("blocks_jax_2")


def test_commit_is_read_without_git(tmp_path):
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text("0123456789abcdef\n")
    assert machine.commit(tmp_path) == "main@0123456789ab"
    assert machine.commit(tmp_path / "nowhere") == "unknown"


def test_one_tiny_case_runs_in_a_child_process():
    result = protocol.run_case(Case("normalize-nnx", 12, "ours", reps=2, budget=5.0), timeout=300)
    assert result.error is None, result.error
    assert len(result.times) == 2 and result.variables == 12
    assert result.rss_peak_mb >= result.rss_before_mb > 0


def test_a_crashing_case_is_reported_not_raised():
    result = protocol.run_case(Case("normalize-nnx", 12, "no-such-impl", reps=1), timeout=300)
    assert result.error == "ValueError: workload 'normalize-nnx' has no implementation 'no-such-impl'"


def test_weight_file_cases_write_their_file_first_and_repeat_enough(tmp_path):
    plan = {c.key: c for c in suite.FULL.cases(tmp_path) if c.workload.startswith("weights-")}
    assert sorted(plan) == [("weights-msgpack", 64, "flax"), ("weights-msgpack", 64, "ours"),
                            ("weights-msgpack", 4096, "flax"), ("weights-msgpack", 4096, "ours"),
                            ("weights-safetensors", 64, "ours"), ("weights-safetensors", 4096, "ours")]
    case = plan["weights-msgpack", 4096, "ours"]
    assert case.reps == 21 and case.param("writer") == "weights-write" and case.param("format") == "msgpack"
    assert case.param("dir") == str(tmp_path / "weights-4096.msgpack")
    results = {k: fake(*k, 0.002 if k[1] == 4096 else 0.001) for k in plan}
    rows = {(r.measure.key, r.size): r for r in suite.build_rows(results)}
    assert rows["msgpack-flat", 4096].ratio == pytest.approx(2.0) and rows["msgpack-flat", 4096].misses()
    assert rows["safetensors-flat", 4096].reference.case.size == 64


def test_convert_case_writes_a_restorable_checkpoint_and_cleans_up(tmp_path, monkeypatch):
    monkeypatch.chdir(protocol.ROOT)  # the target spec is bench/models.py, relative to the checkout
    params = (("dir", str(tmp_path / "convert-64")),)
    cases.WORKLOADS["convert-write"](Case("convert-write", 64, "orbax", params=params)).run()
    for impl in ("ours", "orbax"):
        workload = cases.WORKLOADS["convert"](Case("convert", 64, impl, params=params))
        workload.run()
        assert (tmp_path / "convert-64-nnx" / "_METADATA").exists()
        workload.check()
        assert not (tmp_path / "convert-64-nnx").exists()
