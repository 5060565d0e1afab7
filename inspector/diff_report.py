"""Render diff entries: a text table for people, JSON for programs, Markdown for pull requests.

Renderers take the entries ``inspector.diffing`` computed and never compute anything themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspector.align import Guess
from inspector.diffing import DiffEntry, Status, summarize
from inspector.records import VariableRecord
from inspector.report import format_shape, format_table, kind_label
from inspector.restore import RestoreCheck

STATUS_ORDER = [s for s in Status]


def diff_json(left: str, right: str, entries: Sequence[DiffEntry], **extra: Any) -> dict[str, Any]:
    return {"left": left, "right": right, "summary": summarize(entries), **extra,
            "entries": [e.to_json() for e in entries]}


def summary_line(entries: Sequence[DiffEntry]) -> str:
    summary = summarize(entries)
    counts = ", ".join(f"{summary[s.value]} {s.value}" for s in Status if summary[s.value])
    verdict = "no mismatched variables" if not summary["mismatches"] else _plural(summary["mismatches"], "mismatch")
    guessed = sum(1 for e in entries if isinstance(e.evidence, Guess))
    if guessed:
        verdict += f"; {guessed} paired by position only (ambiguous, see info)"
    return f"{len(entries)} entries: {counts or 'nothing to compare'} — {verdict}"


def _side(record: VariableRecord | None) -> str:
    return record.full_name if record is not None else "—"


def _detail(entry: DiffEntry) -> str:
    a, b = entry.left, entry.right
    parts = []
    if a is not None and b is not None:
        if "type" in entry.differences:
            parts.append(f"kind {kind_label(a)} ≠ {kind_label(b)}")
        if "shape" in entry.differences:
            parts.append(f"shape {format_shape(a.shape)} ≠ {format_shape(b.shape)}")
        if "dtype" in entry.differences:
            parts.append(f"dtype {a.dtype} ≠ {b.dtype}")
    if entry.values is not None:
        v = entry.values
        parts.append(f"max_abs {v.max_abs:.3g}, max_rel {v.max_rel:.3g}"
                     + ("" if v.allclose else f" (not allclose: {v.n_out_of_tolerance:,} out of tolerance, "
                                              f"tol_ratio {v.tol_ratio:.3g})"))
        if v.first_diff_index and not v.allclose:  # a scalar has no index worth a word
            parts.append(f"first difference at [{', '.join(map(str, v.first_diff_index))}]")
        nans = v.nan_left + v.nan_right + v.inf_left + v.inf_right
        if nans:
            parts.append(f"NaN {v.nan_left}/{v.nan_right}, Inf {v.inf_left}/{v.inf_right}")
    if entry.transform is not None:
        joined = f" of {' + '.join(p.full_name for p in entry.left_parts)}" if entry.left_parts else ""
        parts.insert(0, f"{entry.transform.text}{joined}: {format_shape(a.shape)} → {format_shape(b.shape)}")
    if not parts:
        only = a if a is not None else b
        parts.append(f"{kind_label(only)} {format_shape(only.shape)} {only.dtype}")
    return "; ".join(parts + list(entry.notes) + [f"info: {line}" for line in entry.info])


def diff_table(left: str, right: str, entries: Sequence[DiffEntry], restore: RestoreCheck | None = None) -> str:
    """Mismatches first, then everything else, each row: status, left path, right path, detail."""
    ordered = sorted(entries, key=lambda e: (not e.is_mismatch, STATUS_ORDER.index(e.status)))
    rows = [[e.status.value, _side(e.left), _side(e.right), _detail(e)] for e in ordered]
    head = f"left:  {left}\nright: {right}\n{summary_line(entries)}\n"
    if restore is not None:
        head += restore.summary() + "\n"
    return head + "\n" + format_table(["status", "left", "right", "detail"], rows)


def diff_markdown(left: str, right: str, entries: Sequence[DiffEntry], notes: Sequence[str] = (),
                  restore: RestoreCheck | None = None) -> str:
    """A compact report for a pull-request comment: the summary, then only what is wrong."""
    summary = summarize(entries)
    lines = [f"### Flax State Inspector: `{left}` ↔ `{right}`", ""]
    if restore is not None:
        lines += [f"**{restore.headline()}**", ""] + [f"- {r}" for r in restore.shown_reasons()]
        lines += [""] if restore.reasons else []
    if summary["mismatches"]:
        lines.append(f"**{summary['mismatches']} mismatch{'es' if summary['mismatches'] != 1 else ''}** "
                     f"among {len(entries)} variables.")
    else:
        lines.append(f"**No mismatches** among {len(entries)} variables.")
    lines += ["", "| status | count |", "|---|---:|"]
    lines += [f"| {s.value} | {summary[s.value]} |" for s in Status if summary[s.value]]
    wrong = [e for e in entries if e.is_mismatch]
    if wrong:
        lines += ["", "| status | left | right | detail |", "|---|---|---|---|"]
        lines += [f"| {e.status.value} | {_code(e.left)} | {_code(e.right)} | {_detail(e)} |" for e in wrong]
    shown = [e for e in entries if not e.is_mismatch and (e.transform is not None or e.info)]
    if shown:
        lines += ["", "Layout transforms and observations (not mismatches):", "",
                  "| status | left | right | detail |", "|---|---|---|---|"]
        lines += [f"| {e.status.value} | {_code(e.left)} | {_code(e.right)} | {_detail(e)} |" for e in shown]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _code(record: VariableRecord | None) -> str:
    return f"`{record.full_name}`" if record is not None else "—"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"
