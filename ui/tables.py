"""Records as pandas frames for ``st.dataframe``: one row per variable."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from inspector.records import VariableRecord, totals_by_kind
from inspector.report import KIND_UNKNOWN_LABEL, format_shape


def records_frame(records: Sequence[VariableRecord]) -> pd.DataFrame:
    return pd.DataFrame({
        "collection": [r.collection or "" for r in records],
        "path": [r.name for r in records],
        "kind": [r.type or KIND_UNKNOWN_LABEL for r in records],
        "shape": [format_shape(r.shape) for r in records],
        "dtype": [r.dtype for r in records],
        "parameters": [r.size for r in records],
        "bytes": [r.nbytes for r in records],
        "sharding": [r.sharding.describe() if r.sharding else "" for r in records],
    })


def totals_frame(records: Sequence[VariableRecord]) -> pd.DataFrame:
    totals = totals_by_kind(records)
    return pd.DataFrame({
        "kind": [k if k != "unknown" else KIND_UNKNOWN_LABEL for k in totals],
        "variables": [t.count for t in totals.values()],
        "parameters": [t.size for t in totals.values()],
        "bytes": [t.nbytes for t in totals.values()],
    })
