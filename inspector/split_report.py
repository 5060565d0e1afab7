"""Render what a filter selects and how a split groups a model, as text tables and JSON.

Rendering only: the records, groups and round-trip verdict come from ``inspector.splitmerge``.
A non-exhaustive split is described in a few lines (how many are left, which, and the fix)
instead of flax's own error, which embeds every leftover array.

>>> from inspector.records import VariableRecord
>>> r = VariableRecord(path=("count",), type="Counter", shape=(), dtype="int32", size=1, nbytes=4)
>>> print(leftover_lines(Split(groups=(), remainder=(r,), merge_roundtrip=None,
...                            line="graphdef, params = nnx.split(model, nnx.Param)"))[0])
not exhaustive: 1 variable matches no filter: count
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspector.filters import ParsedFilter
from inspector.records import VariableRecord, format_bytes
from inspector.report import format_table, record_row, records_table, totals_json
from inspector.splitmerge import Split

_SHOWN = 8  # leftover paths named before "and N more"


def filter_table(spec: str, parsed: ParsedFilter, records: Sequence[VariableRecord]) -> str:
    """The ``filter`` command's text: the canonical filter, its matches and totals."""
    head = f"filter  {parsed.text}\nsource  {spec}\n\n"
    if not records:
        return head + f"no variable matches {parsed.text}"
    return head + records_table(records)


def filter_json(spec: str, parsed: ParsedFilter, records: Sequence[VariableRecord]) -> dict[str, Any]:
    """The ``filter`` command's JSON: the canonical filter and one object per matching variable."""
    return {"source": spec, "filter": parsed.text, "matches": [r.to_json() for r in records],
            "totals": totals_json(records), "notes": list(parsed.notes)}


def split_json(spec: str, filters: Sequence[ParsedFilter], split: Split) -> dict[str, Any]:
    """The ``split`` command's JSON: groups in filter order, the remainder and the two verdicts."""
    return {
        "source": spec,
        "filters": [f.text for f in filters],
        "groups": [{"filter": g.filter, "variables": [r.to_json() for r in g.records]} for g in split.groups],
        "remainder": [r.to_json() for r in split.remainder],
        "exhaustive": split.exhaustive,
        "merge_roundtrip": split.merge_roundtrip,
        "python": split.line,
        "python_fixed": split.fixed_line,
        "captured": [r.to_json() for r in split.captured],
        "notes": [n for f in filters for n in f.notes],
    }


def split_table(spec: str, split: Split, *, splittable: bool) -> str:
    """The ``split`` command's text: one block per group, then leftovers, merge and the line to copy.

    ``splittable`` says whether the source is an NNX graph node (else merge cannot be checked).
    """
    blocks = [f"source  {spec}"]
    for i, group in enumerate(split.groups, 1):
        blocks.append(f"state {i}: {group.filter}  ({_summary(group.records)})\n" + _rows(group.records))
    if split.exhaustive:
        blocks.append("exhaustive: every variable is in one state")
    else:
        first, *rest = leftover_lines(split)
        blocks.append("\n".join([first, _rows(split.remainder), *rest]))
    if split.captured:
        names = ", ".join(r.name for r in split.captured[:_SHOWN])
        blocks.append(f"captured outside the model (nnx.capture), not split: {names}"
                      + (f" and {len(split.captured) - _SHOWN} more" if len(split.captured) > _SHOWN else ""))
    blocks.append("merge: " + merge_verdict(split, splittable=splittable))
    if split.fixed_line is None:
        blocks.append("python:\n  " + split.line)
    else:
        blocks.append("python (with ... added, since the filters as given raise):\n  " + split.fixed_line)
    return "\n\n".join(blocks)


def leftover_lines(split: Split) -> list[str]:
    """What no filter took, and what flax would do about it, in a few lines."""
    left = split.remainder
    count = f"{_plural(len(left), 'variable')} match{'es' if len(left) == 1 else ''}"
    names = ", ".join(r.name for r in left[:_SHOWN]) + (f" and {len(left) - _SHOWN} more" if len(left) > _SHOWN else "")
    return [f"not exhaustive: {count} no filter: {names}",
            "nnx.split would raise ValueError('Non-exhaustive filters ...'): add ... as the last filter "
            "to collect them"]


def merge_verdict(split: Split, *, splittable: bool) -> str:
    if split.merge_roundtrip is True:
        return "nnx.merge(graphdef, *states) rebuilds a model whose state equals the original"
    if split.merge_roundtrip is False:
        return "nnx.merge(graphdef, *states) rebuilds a model whose state DIFFERS from the original"
    if not splittable:
        return "not checked: only an NNX module can be split and merged; this source is only viewed as NNX variables"
    return "not checked: nnx.split raises on filters that are not exhaustive"


def _summary(records: Sequence[VariableRecord]) -> str:
    size, nbytes = sum(r.size for r in records), sum(r.nbytes for r in records)
    return f"{_plural(len(records), 'variable')}, {_plural(size, 'parameter')}, {format_bytes(nbytes)}"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _rows(records: Sequence[VariableRecord]) -> str:
    if not records:
        return "  (empty)"
    with_collection = any(r.collection for r in records)
    headers = (["collection"] if with_collection else []) + ["path", "kind", "shape", "dtype", "parameters", "bytes"]
    offset = 1 if with_collection else 0
    rows = [record_row(r, with_collection=with_collection)[:-1] for r in records]
    table = format_table(headers, rows, right={offset + 4, offset + 5})
    return "\n".join("  " + line for line in table.splitlines())
