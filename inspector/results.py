"""What each command computed, as one frozen object the CLI prints and a notebook displays.

A result holds the records or entries a command computed and renders them four ways: text (what
the CLI prints), JSON, Markdown, and HTML for notebooks (``_repr_html_``: a compact table with
totals; a diff adds a collapsible module tree; inline styles only, no external assets).
``to_pandas`` gives one row per variable or entry. Results never compute: they render what
``inspector`` computed, so the CLI and a notebook cannot drift.

>>> from inspector.records import VariableRecord
>>> r = VariableRecord(("dense", "kernel"), "Param", (2, 3), "float32", 6, 24)
>>> result = ShowResult("<nnx.Module MLP>", "nnx", (r,))
>>> result.to_json()["totals"]
{'Param': {'count': 1, 'size': 6, 'nbytes': 24}}
>>> "dense/kernel" in result._repr_html_()
True
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from typing import Any

from inspector.convert_plan import ConvertPlan
from inspector.convert_report import convert_json, convert_table
from inspector.convert_report import verdict as convert_verdict
from inspector.diff_report import diff_json, diff_markdown, diff_table, summary_line
from inspector.diffing import DiffEntry, Status, summarize
from inspector.filters import ParsedFilter
from inspector.port_check import PortReport
from inspector.port_report import port_json, port_table, verdict
from inspector.records import VariableRecord, format_bytes, format_path, sort_records, totals_by_kind
from inspector.report import format_shape, kind_label, records_table, show_json
from inspector.restore import RestoreCheck
from inspector.split_report import filter_json, filter_table, split_json, split_table
from inspector.splitmerge import Split
from inspector.training import TrainReport

_HTML_ROWS = 400  # rows drawn in a notebook before "N more" (to_pandas has them all)
_STATUS_COLOURS = {"match": "#1a7f37", "renamed": "#0969da", "transformed": "#8250df",
                   "rng_only": "#57606a", "counter_only": "#57606a", "left_only": "#bf8700",
                   "right_only": "#bf8700"}
_MISMATCH_COLOUR = "#cf222e"
_STYLE = ("<style>.fsi{font:12px/1.4 system-ui,sans-serif}.fsi table{border-collapse:collapse}"
          ".fsi td,.fsi th{padding:1px 8px;text-align:left;border-bottom:1px solid #d0d7de}"
          ".fsi th{background:#f6f8fa}.fsi .n{text-align:right;font-variant-numeric:tabular-nums}"
          ".fsi code{font-size:11px}.fsi details{margin-left:14px}.fsi summary{cursor:pointer}"
          ".fsi .s{font-weight:600}</style>")


@dataclasses.dataclass(frozen=True)
class ShowResult:
    """The variables of one source."""

    source: str
    form: str
    records: tuple[VariableRecord, ...]
    abstract: bool = False
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # "checkpoint"/"file" metadata
    read: str | None = None  # what was read, for a checkpoint or weight file

    def to_text(self) -> str:
        from inspector.stats import stats_table

        text = f"{self.source}  ({self.form}{', abstract' if self.abstract else ''})\n"
        text += (f"read: {self.read}\n\n" if self.read else "\n") + records_table(self.records)
        if any(r.stats is not None for r in self.records):
            text += "\n\n" + stats_table(self.records)
        return text

    def to_json(self) -> dict[str, Any]:
        return show_json(self.source, self.records, **self.extra)

    def to_markdown(self) -> str:
        return _records_markdown(f"**{_md(self.source)}** ({self.form})", self.records)

    def to_pandas(self):
        return _records_frame(self.records)

    def _repr_html_(self) -> str:
        head = f"<b>{_h(self.source)}</b> ({_h(self.form)}{', abstract' if self.abstract else ''})"
        return _frame(head + _totals_html(self.records) + _records_html(self.records))

    __str__ = to_text


@dataclasses.dataclass(frozen=True)
class DiffResult:
    """Every variable pair of two sources with its status; ``ok`` is what exit 0 means."""

    left: str
    right: str
    entries: tuple[DiffEntry, ...]
    restore: RestoreCheck | None = None
    rule_notes: tuple[str, ...] = ()  # what the rules file paired, or failed to
    notes: tuple[str, ...] = ()  # what the run noticed (a forward pass that could not be traced)

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.entries)

    @property
    def mismatches(self) -> tuple[DiffEntry, ...]:
        return tuple(e for e in self.entries if e.is_mismatch)

    @property
    def ok(self) -> bool:
        return not self.summary["mismatches"] and not (self.restore and self.restore.verdict == "fails")

    def to_text(self) -> str:
        return diff_table(self.left, self.right, list(self.entries), self.restore)

    def to_json(self) -> dict[str, Any]:
        extra = ({"rule_notes": list(self.rule_notes)} if self.rule_notes else {}) | (
            self.restore.to_json() if self.restore else {}) | ({"notes": list(self.notes)} if self.notes else {})
        return diff_json(self.left, self.right, list(self.entries), **extra)

    def to_markdown(self) -> str:
        return diff_markdown(self.left, self.right, list(self.entries), [*self.rule_notes, *self.notes], self.restore)

    def to_pandas(self):
        import pandas as pd

        rows = [{"status": e.status.value,
                 "left": e.left.full_name if e.left else None, "right": e.right.full_name if e.right else None,
                 "left_shape": e.left.shape if e.left else None, "right_shape": e.right.shape if e.right else None,
                 "left_dtype": e.left.dtype if e.left else None, "right_dtype": e.right.dtype if e.right else None,
                 "transform": e.transform.text if e.transform is not None else None,
                 "max_abs": e.values.max_abs if e.values else None,
                 "notes": "; ".join((*e.notes, *e.info)) or None} for e in self.entries]
        return pd.DataFrame(rows, columns=["status", "left", "right", "left_shape", "right_shape", "left_dtype",
                                           "right_dtype", "transform", "max_abs", "notes"])

    def _repr_html_(self) -> str:
        verdict_colour = "#1a7f37" if self.ok else _MISMATCH_COLOUR
        head = (f"<b>{_h(self.left)}</b> → <b>{_h(self.right)}</b><br>"
                f"<span class='s' style='color:{verdict_colour}'>{_h(summary_line(self.entries))}</span>")
        if self.restore is not None:
            head += f"<br>restore: {_h(self.restore.verdict)}"
        counts = "".join(f"<td>{_badge(s.value)}</td><td class='n'>{n}</td>"
                         for s in Status if (n := self.summary[s.value]))
        return _frame(f"{head}<table><tr>{counts}</tr></table>{_diff_tree_html(self.entries)}")

    __str__ = to_text


@dataclasses.dataclass(frozen=True)
class FilterResult:
    """What one filter selects from one source."""

    source: str
    filter: ParsedFilter
    records: tuple[VariableRecord, ...]

    def to_text(self) -> str:
        return filter_table(self.source, self.filter, self.records)

    def to_json(self) -> dict[str, Any]:
        return filter_json(self.source, self.filter, self.records)

    def to_markdown(self) -> str:
        return _records_markdown(f"`{self.filter.text}` on **{_md(self.source)}**", self.records)

    def to_pandas(self):
        return _records_frame(self.records)

    def _repr_html_(self) -> str:
        head = f"<code>{_h(self.filter.text)}</code> on <b>{_h(self.source)}</b>: {len(self.records)} variable(s)"
        notes = "".join(f"<br><i>{_h(n)}</i>" for n in self.filter.notes)
        return _frame(head + notes + _totals_html(self.records) + _records_html(self.records))

    __str__ = to_text


@dataclasses.dataclass(frozen=True)
class SplitResult:
    """How filters split one source into groups, the remainder, and whether merge rebuilds it."""

    source: str
    filters: tuple[ParsedFilter, ...]
    split: Split
    splittable: bool = True

    @property
    def ok(self) -> bool:
        return self.split.exhaustive and self.split.merge_roundtrip is not False

    def to_text(self) -> str:
        return split_table(self.source, self.split, splittable=self.splittable)

    def to_json(self) -> dict[str, Any]:
        return split_json(self.source, self.filters, self.split)

    def to_markdown(self) -> str:
        parts = [_records_markdown(f"`{g.filter}`", g.records) for g in self.split.groups]
        if self.split.remainder:
            parts.append(_records_markdown("matched by no filter", self.split.remainder))
        return "\n".join(parts) + f"\n```python\n{self.split.line}\n```\n"

    def to_pandas(self):
        import pandas as pd

        frames = [_records_frame(g.records).assign(group=g.filter) for g in self.split.groups]
        if self.split.remainder:
            frames.append(_records_frame(self.split.remainder).assign(group=None))
        return pd.concat(frames, ignore_index=True) if frames else _records_frame(())

    def _repr_html_(self) -> str:
        body = "".join(f"<details open><summary><code>{_h(g.filter)}</code>: {len(g.records)}</summary>"
                       f"{_records_html(g.records)}</details>" for g in self.split.groups)
        if self.split.remainder:
            body += (f"<details open><summary style='color:{_MISMATCH_COLOUR}'>matched by no filter: "
                     f"{len(self.split.remainder)}</summary>{_records_html(self.split.remainder)}</details>")
        return _frame(f"<b>{_h(self.source)}</b>{body}<pre>{_h(self.split.line)}</pre>")

    __str__ = to_text


@dataclasses.dataclass(frozen=True)
class PortResult:
    """A port check: conversion, then both models run on the example inputs; ``ok`` is exit 0."""

    linen: str
    nnx: str
    report: PortReport
    out: str | None = None
    trained: TrainReport | None = None  # the training-step check, when asked for
    train_asked: bool = False  # asked for but refused (nothing converted to train)

    @property
    def ok(self) -> bool:
        return (self.report.ok and (self.trained is None or self.trained.ok)
                and not (self.train_asked and self.trained is None))

    def to_text(self) -> str:
        return port_table(self.linen, self.nnx, self.report, self.out, self.trained)

    def to_json(self) -> dict[str, Any]:
        data = port_json(self.linen, self.nnx, self.report, self.out, self.trained)
        if self.train_asked and self.trained is None:
            data["train"] = None  # refused: there is no converted model to train
        return data

    def to_markdown(self) -> str:
        return f"**{_md(self.linen)}** → **{_md(self.nnx)}**\n\n```\n{self.to_text()}\n```\n"

    def to_pandas(self):
        import pandas as pd

        if self.report.refused:
            return pd.DataFrame([r.to_json() for r in self.report.refused])
        return pd.DataFrame([o.to_json() for o in self.report.outputs])

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else _MISMATCH_COLOUR
        head = (f"<b>{_h(self.linen)}</b> → <b>{_h(self.nnx)}</b><br>"
                f"<span class='s' style='color:{colour}'>{_h(verdict(self.report))}</span>")
        if self.report.refused:
            rows = [(r.status, r.left.full_name if r.left else "—", r.right.full_name if r.right else "—", r.reason)
                    for r in self.report.refused]
            return _frame(head + _table(("status", "linen", "nnx", "why"), rows))
        rows = [(o.path or "(output)", format_shape(o.shape), f"{o.max_abs:.3g}", f"{o.max_rel:.3g}",
                 "yes" if o.allclose else "NO") for o in self.report.outputs]
        return _frame(head + _table(("output", "shape", "max_abs", "max_rel", "allclose"), rows))

    __str__ = to_text


@dataclasses.dataclass(frozen=True)
class ConvertResult:
    """A conversion plan (and where it was written); ``ok`` is exit 0: nothing dropped or left at init."""

    source: str
    target: str
    plan: ConvertPlan
    out: str | None = None
    emitted: str | None = None

    @property
    def ok(self) -> bool:
        return self.plan.ok

    def to_text(self) -> str:
        return convert_table(self.source, self.target, self.plan, self.out, self.emitted)

    def to_json(self) -> dict[str, Any]:
        return convert_json(self.source, self.target, self.plan, self.out, self.emitted)

    def to_markdown(self) -> str:
        return f"**{_md(self.source)}** → **{_md(self.target)}**\n\n```\n{self.to_text()}\n```\n"

    def to_pandas(self):
        import pandas as pd

        if self.plan.refused:
            return pd.DataFrame([r.to_json() for r in self.plan.refused])
        return pd.DataFrame([{"linen": " + ".join(p.full_name for p in m.parts), "nnx": m.right.name,
                              "shape": m.right.shape, "dtype": m.dtype, "cast": m.cast,
                              "transform": m.transform.text if m.transform is not None else None}
                             for m in self.plan.moves])

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else _MISMATCH_COLOUR
        head = (f"<b>{_h(self.source)}</b> → <b>{_h(self.target)}</b><br>"
                f"<span class='s' style='color:{colour}'>{_h(convert_verdict(self.plan))}</span>")
        if self.plan.refused:
            rows = [(r.status, r.left.full_name if r.left else "—", r.right.full_name if r.right else "—", r.reason,
                     r.nearest or "") for r in self.plan.refused]
            return _frame(head + _table(("status", "linen", "nnx", "why", "nearest"), rows))
        rows = [(" + ".join(p.full_name for p in m.parts), m.right.name, format_shape(m.right.shape),
                 f"{m.source_dtype} → {m.dtype}" if m.cast else m.dtype,
                 m.transform.text if m.transform is not None else "") for m in self.plan.moves]
        written = f"<br>written to <code>{_h(self.out)}</code>" if self.out else ""
        return _frame(head + written + _table(("linen", "nnx", "shape", "dtype", "transform"), rows))

    __str__ = to_text


# -- rendering helpers ---------------------------------------------------------------------------

def _h(text: Any) -> str:
    return html.escape(str(text))


def _md(text: str) -> str:
    return text.replace("*", r"\*").replace("_", r"\_")


def _frame(body: str) -> str:
    return f"{_STYLE}<div class='fsi'>{body}</div>"


def _badge(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, _MISMATCH_COLOUR)
    return f"<span class='s' style='color:{colour}'>{_h(status)}</span>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: set[int] = frozenset(),
           raw: set[int] = frozenset()) -> str:
    """An HTML table; ``raw`` columns hold HTML already escaped."""
    shown = rows[:_HTML_ROWS]
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td{' class=n' if i in numeric else ''}>{cell if i in raw else _h(cell)}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in shown)
    more = f"<i>… {len(rows) - len(shown):,} more rows (to_pandas() has them all)</i>" if len(rows) > len(shown) else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _record_cells(r: VariableRecord) -> tuple[str, ...]:
    return (r.full_name, kind_label(r), format_shape(r.shape), r.dtype, f"{r.size:,}", format_bytes(r.nbytes))


def _records_html(records: Sequence[VariableRecord]) -> str:
    return _table(("path", "kind", "shape", "dtype", "parameters", "bytes"),
                  [_record_cells(r) for r in sort_records(records)], numeric={4, 5})


def _totals_html(records: Sequence[VariableRecord]) -> str:
    totals = totals_by_kind(records)
    rows = [(k, str(t.count), f"{t.size:,}", format_bytes(t.nbytes)) for k, t in totals.items()]
    rows.append(("total", str(len(records)), f"{sum(t.size for t in totals.values()):,}",
                 format_bytes(sum(t.nbytes for t in totals.values()))))
    return _table(("kind", "variables", "parameters", "bytes"), rows, numeric={1, 2, 3})


def _records_markdown(title: str, records: Sequence[VariableRecord]) -> str:
    lines = [title, "", "| path | kind | shape | dtype | parameters | bytes |", "|---|---|---|---|---:|---:|"]
    lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(_record_cells(r))) + " |"
              for r in sort_records(records)]
    return "\n".join(lines) + "\n"


def _records_frame(records: Sequence[VariableRecord]):
    import pandas as pd

    rows = [{"collection": r.collection, "path": format_path(r.path), "kind": kind_label(r), "shape": r.shape,
             "dtype": r.dtype, "size": r.size, "nbytes": r.nbytes,
             "sharding": r.sharding.describe() if r.sharding else None} for r in sort_records(records)]
    return pd.DataFrame(rows, columns=["collection", "path", "kind", "shape", "dtype", "size", "nbytes", "sharding"])


def _diff_tree_html(entries: Sequence[DiffEntry]) -> str:
    """Entries nested by module (the NNX path, or the Linen one when unpaired) in ``<details>``.

    A module opens when something under it mismatches; its summary shows its worst status.
    """
    root: dict = {}
    for entry in entries:
        record = entry.right if entry.right is not None else entry.left
        node = root
        for key in record.path[:-1]:
            node = node.setdefault(str(key), {})
        node.setdefault("", []).append(entry)
    return _tree_node(root, 0)


def _tree_node(node: dict, depth: int) -> str:
    out = []
    for name, child in node.items():
        if name == "":
            continue
        entries = _entries_under(child)
        worst = next((e for e in entries if e.is_mismatch), None)
        status = worst.status.value if worst else _best(entries)
        opened = " open" if worst is not None or depth == 0 and len(node) <= 3 else ""
        out.append(f"<details{opened}><summary><code>{_h(name)}</code> {_badge(status)} "
                   f"({len(entries)})</summary>{_tree_node(child, depth + 1)}</details>")
    leaves = node.get("", [])
    if leaves:
        rows = [(_badge(e.status.value), _h(e.left.full_name if e.left else "—"),
                 _h(e.right.full_name if e.right else "—"), _h(_pair_detail(e))) for e in leaves]
        out.insert(0, _table(("status", "linen", "nnx", "detail"), rows, raw={0, 1, 2, 3}))
    return "".join(out)


def _entries_under(node: dict) -> list[DiffEntry]:
    found = list(node.get("", []))
    for name, child in node.items():
        if name:
            found += _entries_under(child)
    return found


def _best(entries: Sequence[DiffEntry]) -> str:
    statuses = {e.status for e in entries}
    for status in (Status.TRANSFORMED, Status.RENAMED, Status.MATCH):
        if status in statuses:
            return status.value
    return next(iter(statuses)).value if statuses else "match"


def _pair_detail(entry: DiffEntry) -> str:
    a, b = entry.left, entry.right
    parts = []
    if a is not None and b is not None and (a.shape != b.shape or a.dtype != b.dtype):
        parts.append(f"{format_shape(a.shape)} {a.dtype} → {format_shape(b.shape)} {b.dtype}")
    elif a is not None or b is not None:
        r = a if a is not None else b
        parts.append(f"{format_shape(r.shape)} {r.dtype}")
    if entry.transform is not None:
        parts.append(entry.transform.text)
    if entry.values is not None:
        parts.append(f"max_abs {entry.values.max_abs:.3g}")
    parts += [*entry.notes, *entry.info]
    return "; ".join(parts)


__all__ = ["ConvertResult", "DiffResult", "FilterResult", "PortResult", "ShowResult", "SplitResult"]
