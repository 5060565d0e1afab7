"""One variable pair side by side: both distributions over each other and a map of their difference.

The left array goes through the entry's layout change first (``inspector.pair_values``), so a
transposed or concatenated port is compared the way it will be loaded. Values already in memory
(live, concrete sources) are drawn at once; abstract builds and checkpoints read theirs on request.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from inspector.diff_tree import parts_of
from inspector.diffing import DiffEntry
from inspector.errors import InspectorError
from inspector.pair_values import PairValues, as_matrix, pair_values
from inspector.records import VariableRecord
from inspector.report import format_shape
from loaders import LoadedSource
from ui import charts, sources
from ui.text import plain

LOAD_KEY = "diff_pair_loaded"  # the pairs whose values the user asked to read


def describe(entry: DiffEntry) -> str:
    """What the pair is, in one Markdown line."""
    def side(records: tuple[VariableRecord, ...]) -> str:
        if not records:
            return "—"
        return " + ".join(f"`{r.full_name}` {format_shape(r.shape)} {r.dtype}" for r in records)

    right = (entry.right,) if entry.right is not None else ()
    return f"**{entry.status.value}** · {side(parts_of(entry))} → {side(right)}"


def render(entry: DiffEntry, left: LoadedSource, right: LoadedSource, choice: sources.Choice,
           key: str) -> None:
    st.markdown(describe(entry))
    if entry.transform is not None:
        st.caption(f"Layout change: {plain(entry.transform.text)}")
    for line in entry.notes + entry.info:
        st.caption(plain(line))
    if not _values_allowed(entry, left, right, key):
        return
    try:
        with st.spinner("Reading values…"):
            values = pair_values(entry, [_read(left, r, choice) for r in parts_of(entry)],
                                 _read(right, entry.right, choice) if entry.right is not None else None)
    except InspectorError as err:
        st.error(plain(str(err)))
        return
    draw(values, entry)


def draw(values: PairValues, entry: DiffEntry) -> None:
    if values.left is None and values.right is None:
        st.info("Neither side has numeric values to draw.")
        return
    names = ("left" + (" (after the layout change)" if entry.transform is not None else ""), "right")
    hist_col, map_col = st.columns(2)
    with hist_col:
        st.plotly_chart(charts.overlaid_histograms(values.left, values.right, names, "Values, left over right"),
                        key="diff_pair_histograms")
    with map_col:
        if values.difference is not None and values.difference.size:
            st.plotly_chart(charts.heatmap(as_matrix(values.difference), "Difference (right − left)"),
                            key="diff_pair_heatmap")
            finite = values.difference[np.isfinite(values.difference)]
            if finite.size:
                st.caption(f"max |difference| {np.abs(finite).max():.4g} · mean {finite.mean():.4g} · "
                           f"{int((finite != 0).sum()):,} of {values.difference.size:,} values differ")
        elif values.note:
            st.info(values.note)
    if values.note and values.difference is not None:
        st.caption(plain(values.note))


def _values_allowed(entry: DiffEntry, left: LoadedSource, right: LoadedSource, key: str) -> bool:
    """Values already in memory are free; reading a checkpoint or rebuilding a model waits for a click."""
    if all(not src.abstract and src.form != "checkpoint" for src in (left, right)):
        return True
    loaded = st.session_state.setdefault(LOAD_KEY, set())
    if key in loaded:
        return True
    if st.button("Load values", key="diff_pair_load",
                 help="Reads this pair's arrays from the checkpoint, or builds an abstract model concretely once."):
        loaded.add(key)
        return True
    st.caption("Shapes only: values are not loaded.")
    return False


def _read(src: LoadedSource, record: VariableRecord, choice: sources.Choice):
    if src.form == "checkpoint":
        return src.read(record)
    if src.abstract:
        concrete = sources.load(sources.Choice(src.spec, src.spec, False, choice.root), "left")
        return None if concrete is None else concrete.value(record)
    return src.value(record)
