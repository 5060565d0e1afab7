"""Render records for people (aligned text tables) and programs (JSON-ready dicts).

Rendering never computes: it takes records and totals and lays them out.

>>> print(format_table(["a", "bb"], [["1", "x"], ["22", "y"]], right={0}))
 a  bb
--  --
 1  x
22  y
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from inspector.records import VariableRecord, format_bytes, sort_records, totals_by_kind

KIND_UNKNOWN_LABEL = "kind unknown"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell; columns in ``right`` are right-aligned."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def kind_label(record: VariableRecord) -> str:
    return record.type_label if record.type is not None else KIND_UNKNOWN_LABEL


def format_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def record_row(record: VariableRecord, *, with_collection: bool) -> list[str]:
    row = [record.collection or ""] if with_collection else []
    return row + [record.name, kind_label(record), format_shape(record.shape), record.dtype,
                  f"{record.size:,}", format_bytes(record.nbytes),
                  record.sharding.describe() if record.sharding else ""]


def records_table(records: Sequence[VariableRecord]) -> str:
    """One row per variable, then totals per kind."""
    records = sort_records(records)
    with_collection = any(r.collection for r in records)
    headers = (["collection"] if with_collection else []) + [
        "path", "kind", "shape", "dtype", "parameters", "bytes", "sharding"]
    offset = 1 if with_collection else 0
    rows = [record_row(r, with_collection=with_collection) for r in records]
    if not any(row[-1] for row in rows):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    body = format_table(headers, rows, right={offset + 4, offset + 5})
    return body + "\n\n" + totals_table(records)


def totals_table(records: Sequence[VariableRecord]) -> str:
    totals = totals_by_kind(records)
    rows = [[k if k != "unknown" else KIND_UNKNOWN_LABEL, str(t.count), f"{t.size:,}",
             format_bytes(t.nbytes)] for k, t in totals.items()]
    all_size = sum(t.size for t in totals.values())
    all_bytes = sum(t.nbytes for t in totals.values())
    rows.append(["total", str(len(records)), f"{all_size:,}", format_bytes(all_bytes)])
    return format_table(["kind", "variables", "parameters", "bytes"], rows, right={1, 2, 3})


def totals_json(records: Sequence[VariableRecord]) -> dict[str, Any]:
    return {kind: {"count": t.count, "size": t.size, "nbytes": t.nbytes}
            for kind, t in totals_by_kind(records).items()}


def show_json(spec: str, records: Sequence[VariableRecord], **extra: Any) -> dict[str, Any]:
    """The ``show`` command's JSON: source, one object per variable, totals per kind."""
    records = sort_records(records)
    return {"source": spec, **extra, "variables": [r.to_json() for r in records],
            "totals": totals_json(records)}
