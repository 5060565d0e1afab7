"""Render a benchmark run: ``RESULTS.md`` (tables, machine, date, commit) and ``growth.html``.

Rendering only: the numbers, verdicts and slopes are computed in ``bench.suite``; this module
turns them into Markdown and a plotly figure, so a fake run renders exactly like a real one.

>>> format_seconds(0.00042), format_seconds(1.234), format_seconds(61.0, bound=True)
('0.42 ms', '1.23 s', '> 61 s')
>>> format_ratio(0.0123, bound=True)
'< 0.012×'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.cases import ARRAYS, checkpoint_bytes
from bench.protocol import Result
from bench.suite import SLOPE_GATE, Growth, Measure, Row

GOALS_FROM_ISSUES = """\
Targets of the checkpoint issue (measured there before the fix: `nnx.eval_shape` 1.1 s at N=50,
31.8 s at N=200, > 600 s at N=1000; Linen `jax.eval_shape(model.init)` 3.9 s at N=1000; a concrete
NNX init 5.3 s). A block is two `nnx.Linear(16, 16)` and an `nnx.LayerNorm`: six variables.

- N=1000 (6,000 variables), abstract NNX `show`: at most 1.5× Linen's `jax.eval_shape` time, peak
  RSS under 1.5 GB, the same records as a concrete build.
- A Llama-7B-like NNX model (32 layers, d=4096) abstractly in about a second, under 50 MB extra.
- `show` of a 1 GiB checkpoint (16 arrays of 4096×4096 float32) about as long as the same 16 arrays
  at 64×64 (ratio ≤ 1.5), peak memory under 700 MB for the whole process; a full Orbax restore of
  the same checkpoint reported beside it.
- diff of two 10,000-variable trees under 1 s; filter and split at most 2× flax's own.
"""


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything one run produced, ready to render."""

    mode: str
    started: str  # ISO date and time
    duration_s: float
    commit: str
    machine: Mapping[str, str]
    rows: Sequence[Row]
    growth: Sequence[Growth]
    failures: Sequence[str]
    skipped: Sequence[str] = ()
    command: str = "make bench"


def format_seconds(seconds: float | None, *, bound: bool = False) -> str:
    if seconds is None:
        return "—"
    if bound:
        return f"> {seconds:.0f} s"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs" if seconds < 1e-4 else f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def format_ratio(ratio: float | None, *, bound: bool = False) -> str:
    if ratio is None:
        return "—"
    text = f"{ratio:.2g}×" if ratio < 0.1 else f"{ratio:.2f}×"
    return f"< {text}" if bound else text


def format_mb(mb: float | None) -> str:
    return "—" if mb is None else f"{mb:,.0f} MB"


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "GiB" else f"{n / size:.0f} {unit}"
    return f"{n} B"


def describe_size(measure: Measure, size: int, result: Result) -> str:
    """The size column: variables, blocks, the Llama model, or checkpoint bytes."""
    variables = result.variables
    if measure.unit == "blocks":
        return f"N={size:,} ({variables:,} vars)" if variables else f"N={size:,}"
    if measure.unit == "model":
        return f"Llama-7B ({variables:,} vars)" if variables else "Llama-7B"
    if measure.unit == "checkpoint":
        return f"{format_bytes(checkpoint_bytes(size))} ({ARRAYS}×{size}²)"
    return f"{variables:,} vars" if variables else f"{size:,}"


def _timing(result: Result | None) -> str:
    if result is None:
        return "—"
    if result.error:
        return "error"
    if result.timed_out and not result.times:
        return format_seconds(result.case.cap, bound=True)
    return format_seconds(result.median)


def table_markdown(rows: Sequence[Row]) -> str:
    """The main table, one line per measure and size."""
    lines = ["| measure | size | ours (median) | reference (median) | ratio | our peak RSS | reference peak RSS "
             "| goal | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        m, ref = row.measure, row.reference
        reference = f"{m.reference_label}: {_timing(ref)}" if ref is not None else m.reference_label
        goal = _goal_text(row)
        ref_rss = format_mb(ref.rss_peak_mb) if ref is not None and m.reference_size is None else "—"
        reps = f" ×{len(row.ours.times)}" if row.ours.times else ""
        lines.append(" | ".join([
            f"| {m.label}", describe_size(m, row.size, row.ours), _timing(row.ours) + reps, reference,
            format_ratio(row.ratio, bound=row.ratio_is_bound), format_mb(row.ours.rss_peak_mb), ref_rss,
            goal, row.verdict()]) + " |")
    return "\n".join(lines)


def _goal_text(row: Row) -> str:
    """The goal where it applies; elsewhere only the CI bound, which holds at every size."""
    goal = row.measure.goal
    if goal is None:
        return "—"
    gate = f"CI fails > {goal.gate:g}×" if goal.gate is not None else ""
    if row.goal_applies():
        return goal.text + (f"; {gate}" if gate else "")
    return gate or f"— (goal set at {goal.at:,})"


def growth_markdown(growth: Sequence[Growth]) -> str:
    lines = ["| measure | implementation | from | to | slope | CI |", "|---|---|---|---|---|---|"]
    for g in growth:
        if not g.judged:
            ci = "too fast to judge"
        elif not g.gated:
            ci = "not gated (reference)"
        else:
            ci = "FAIL" if g.failure() else f"ok (≤ {SLOPE_GATE})"
        lines.append(f"| {g.label} | {g.impl_label} | {g.small[0]:,} vars, {format_seconds(g.small[1])} | "
                     f"{g.large[0]:,} vars, {format_seconds(g.large[1])} | {g.slope:.2f} | {ci} |")
    return "\n".join(lines)


def notes(rows: Sequence[Row]) -> list[str]:
    """How to read each measure, and known causes of the goals this run missed; once per measure."""
    out = []
    for measure in dict.fromkeys(row.measure for row in rows):
        if measure.context:
            out.append(f"*{measure.label}*: {measure.context}.")
    missed = dict.fromkeys(row.measure for row in rows if row.misses() and row.measure.when_missed)
    out += [f"**{m.label}** misses its goal: {m.when_missed}." for m in missed]
    return out


def extras(rows: Sequence[Row]) -> list[str]:
    """Facts the children checked besides time: records equal to a concrete build, app problems."""
    out = []
    for row in rows:
        extra = dict(row.ours.extra)
        if "same_records" in extra and row.measure.key == "abstract-linen":
            out.append(f"Abstract build N={row.size:,}: records {'equal' if extra['same_records'] else 'DIFFER from'} "
                       "a concrete build's.")
        if extra.get("problems"):
            out.append(f"{row.measure.label}: the page showed {extra['problems']}")
        if row.measure.key in ("llama-linen", "abstract-linen") and row.ours.extra_rss_mb is not None:
            out.append(f"{row.measure.label}, {describe_size(row.measure, row.size, row.ours)}: "
                       f"+{row.ours.extra_rss_mb:.0f} MB over the process after imports "
                       f"({format_mb(row.ours.rss_before_mb)} → {format_mb(row.ours.rss_peak_mb)}).")
    return out


def render_markdown(report: Report, *, chart: str | None = "growth.html") -> str:
    machine = "\n".join(f"| {k} | {v} |" for k, v in report.machine.items())
    parts = [
        "# Benchmark results",
        f"`{report.command}` ({report.mode} mode) on {report.started}, {report.duration_s / 60:.1f} min; "
        f"commit `{report.commit}` (the working tree may hold uncommitted changes).",
        "Every number is a median of the repetitions shown (×n) in a fresh process per case; *ratio* is ours "
        "over the reference measured in the same run. Peak RSS is the case's whole process (`ru_maxrss`), "
        "Python, jax and flax included. Times vary with the machine's load; ratios and slopes are what to compare.",
        "## Machine\n\n| | |\n|---|---|\n" + machine,
        "## Results\n\n" + table_markdown(report.rows),
    ]
    facts = extras(report.rows) + notes(report.rows)
    if facts:
        parts.append("\n".join(f"- {f}" for f in facts))
    if report.skipped:
        parts.append("Not run:\n\n" + "\n".join(f"- {s}" for s in report.skipped))
    parts.append("## Growth\n\nLog-log slope of time against variables between consecutive sizes: 1 is linear, "
                 f"2 quadratic. CI fails on our slope above {SLOPE_GATE} (when the larger time is at least 20 ms)."
                 + (f" Chart: [{chart}]({chart}).\n\n" if chart else "\n\n") + growth_markdown(report.growth))
    parts.append("## CI\n\n" + ("\n".join(f"- FAIL: {f}" for f in report.failures) if report.failures
                                else "No ratio or slope beyond its CI bound."))
    parts.append("## Goals\n\n" + GOALS_FROM_ISSUES)
    return "\n\n".join(parts) + "\n"


def growth_figure(rows: Sequence[Row]) -> Any:
    """Log-log time against variables (left) and checkpoint open time against bytes (right).

    One colour per workload: ours solid, references dotted (a second one dashed); a reference that ran out of time
    is drawn at its cap with an upward triangle (its real time is above). Grey guides of slope 1
    and 2 show what linear and quadratic look like.
    """
    import plotly.express as px
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.08,
                        subplot_titles=("time against variables", "checkpoint: time against bytes"))
    series: dict[tuple[str, str, int, bool], set[tuple[float, float, bool]]] = {}
    for row in rows:
        m = row.measure
        if m.unit == "model" or m.reference_size is not None:
            continue
        col = 2 if m.unit == "checkpoint" else 1
        for who, result in (("ours", row.ours), (m.reference_label.replace("`", ""), row.reference)):
            if result is None or not result.variables:
                continue
            bound = result.timed_out and not result.times
            seconds = result.case.cap if bound else result.median
            if seconds is None:
                continue
            x = checkpoint_bytes(row.size) if col == 2 else result.variables
            series.setdefault((m.workload, who, col, who == "ours"), set()).add((x, seconds, bound))
    palette = px.colors.qualitative.Dark24
    colours = {w: palette[i % len(palette)] for i, w in enumerate(dict.fromkeys(k[0] for k in series))}
    references: dict[str, list[str]] = {}
    for (workload, who, col, ours), points in series.items():
        if len(points) < 2:
            continue  # one size shows no growth (the app's first render)
        ordered = sorted(points)
        if not ours:
            references.setdefault(workload, []).append(who)
        dash = "solid" if ours else ("dot", "dash")[min(len(references[workload]) - 1, 1)]
        fig.add_scatter(x=[p[0] for p in ordered], y=[p[1] for p in ordered], mode="lines+markers",
                        name=f"{workload}: {who}", row=1, col=col, line={"dash": dash, "color": colours[workload]},
                        marker={"symbol": ["triangle-up" if p[2] else "circle" for p in ordered], "size": 8})
    for slope in (1, 2):
        fig.add_scatter(x=[100, 10_000], y=[1e-3, 1e-3 * 100 ** slope], mode="lines", row=1, col=1,
                        name=f"guide: slope {slope} ({'linear' if slope == 1 else 'quadratic'})",
                        line={"color": "lightgrey", "dash": "longdash", "width": 1})
    fig.update_xaxes(type="log", title_text="variables", row=1, col=1)
    fig.update_xaxes(type="log", title_text="checkpoint bytes", row=1, col=2)
    fig.update_yaxes(type="log", title_text="median seconds", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(title="Flax State Inspector: cost growth (solid: ours, dotted/dashed: the library references, "
                            "▲: ran out of time, real time above)", height=650, legend={"font": {"size": 10}})
    return fig


def write_report(report: Report, out: Path) -> tuple[Path, Path]:
    """Write ``out`` (Markdown) and ``growth.html`` beside it; return both paths.

    The HTML loads plotly.js from its CDN rather than embedding 3.5 MB of it in a committed file.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    html = out.parent / "growth.html"
    growth_figure(report.rows).write_html(html, include_plotlyjs="cdn")
    out.write_text(render_markdown(report, chart=html.name))
    return out, html
