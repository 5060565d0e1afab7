"""Records and diff entries as pandas frames for ``st.dataframe``: one row per variable."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from inspector.diffing import DiffEntry
from inspector.records import VariableRecord, totals_by_kind
from inspector.report import KIND_UNKNOWN_LABEL, format_shape

STATUS_BACKGROUND = {
    "match": "#e8f5e9", "renamed": "#e3f2fd", "rng_only": "#f5f5f5", "type_mismatch": "#ffcdd2",
    "shape_mismatch": "#ffccbc", "dtype_mismatch": "#ffe0b2", "sharding_mismatch": "#fff9c4",
    "value_mismatch": "#f8bbd0",
    "left_only": "#e1bee7", "right_only": "#d1c4e9", "transformed": "#e0f7fa", "counter_only": "#f5f5f5",
}


def number_columns() -> dict:
    """Column formats every records table shares: thousands separators for counts and bytes."""
    return {"parameters": st.column_config.NumberColumn(format="localized"),
            "bytes": st.column_config.NumberColumn(format="localized"),
            "variables": st.column_config.NumberColumn(format="localized"),
            "status": st.column_config.TextColumn(width="medium"),
            "match": st.column_config.CheckboxColumn(width="small")}


def records_frame(records: Sequence[VariableRecord]) -> pd.DataFrame:
    """One row per variable; the collection and sharding columns only where some row has one."""
    frame = pd.DataFrame({
        "collection": [r.collection or "" for r in records],
        "path": [r.name for r in records],
        "kind": [r.type_label if r.type else KIND_UNKNOWN_LABEL for r in records],
        "shape": [format_shape(r.shape) for r in records],
        "dtype": [r.dtype for r in records],
        "parameters": [r.size for r in records],
        "bytes": [r.nbytes for r in records],
        "sharding": [r.sharding.describe() if r.sharding else "" for r in records],
    })
    empty = [c for c in ("collection", "sharding") if not frame[c].astype(bool).any()]
    return frame.drop(columns=empty)


def totals_frame(records: Sequence[VariableRecord]) -> pd.DataFrame:
    totals = totals_by_kind(records)
    return pd.DataFrame({
        "kind": [k if k != "unknown" else KIND_UNKNOWN_LABEL for k in totals],
        "variables": [t.count for t in totals.values()],
        "parameters": [t.size for t in totals.values()],
        "bytes": [t.nbytes for t in totals.values()],
    })


def diff_frame(entries: Sequence[DiffEntry]) -> pd.DataFrame:
    """Side by side: the left variable, the right variable, and what differs."""
    def side(record: VariableRecord | None, attr: str) -> str:
        if record is None:
            return ""
        if attr == "shape":
            return format_shape(record.shape)
        if attr == "kind":
            return record.type_label if record.type else KIND_UNKNOWN_LABEL
        return getattr(record, attr)

    frame = pd.DataFrame({
        "status": [e.status.value for e in entries],
        "left": [e.left.full_name if e.left else "" for e in entries],
        "right": [e.right.full_name if e.right else "" for e in entries],
        "left kind": [side(e.left, "kind") for e in entries],
        "right kind": [side(e.right, "kind") for e in entries],
        "left shape": [side(e.left, "shape") for e in entries],
        "right shape": [side(e.right, "shape") for e in entries],
        "left dtype": [side(e.left, "dtype") for e in entries],
        "right dtype": [side(e.right, "dtype") for e in entries],
        "parameters": [(e.left or e.right).size for e in entries],
        "transform": [_transform_text(e) for e in entries],
        "notes": ["; ".join(e.notes) for e in entries],
        "info": ["; ".join(e.info) for e in entries],
        "max_abs": [e.values.max_abs if e.values else None for e in entries],
    })
    empty = [c for c in ("transform", "notes", "info") if not frame[c].astype(bool).any()]
    return frame.drop(columns=empty)  # columns only where some row has one


def _transform_text(entry: DiffEntry) -> str:
    if entry.transform is None:
        return ""
    parts = f" of {' + '.join(p.full_name for p in entry.left_parts)}" if entry.left_parts else ""
    return entry.transform.text + parts


def style_status(frame: pd.DataFrame):
    """Colour each row by its status (a Styler ``st.dataframe`` draws)."""
    return frame.style.apply(lambda row: [f"background-color: {STATUS_BACKGROUND.get(row['status'], '')}"]
                             * len(row), axis=1)
