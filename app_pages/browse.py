"""Browse: every variable of one source, typed, searchable and sortable, with totals, charts and a
treescope view."""

from __future__ import annotations

import numpy as np
import streamlit as st

from inspector.records import format_bytes, totals_by_kind
from inspector.report import format_shape, show_json
from ui import charts, derived, sources, tables, treeview

choice: sources.Choice = st.session_state["choice"]
st.title("Browse")
side = st.radio("Source", ["left", "right"], horizontal=True, key="browse_side",
                format_func=lambda s: f"{s}: {getattr(choice, s)}")
src = sources.load(choice, side)
if src is None:
    st.stop()

st.caption(f"`{src.spec}` — {src.form}{', abstract (shapes only)' if src.abstract else ''}, "
           f"{len(src.records):,} variables")
if src.on_disk:
    with st.expander(f"Read: {src.obj.describe()}"):
        for note in src.notes:
            st.caption(f"Note: {note}")
        st.json(src.obj.to_json(), expanded=1)
totals = totals_by_kind(src.records)
columns = st.columns(min(len(totals), 6) or 1)
for col, (kind, t) in zip(columns, list(totals.items())[:6]):
    col.metric(kind if kind != "unknown" else "kind unknown", f"{t.size:,}",
               help=f"{t.count} variables, {format_bytes(t.nbytes)}")

query = st.text_input("Search paths", key="browse_query", placeholder="e.g. kernel or block/linear")
kinds = st.multiselect("Kinds", list(totals), key="browse_kinds", placeholder="all kinds")
records = [r for r in src.records if (not query or query.lower() in r.full_name.lower())
           and (not kinds or r.kind in kinds)]
frame = tables.records_frame(records)
st.dataframe(frame, hide_index=True, width="stretch", height=min(38 + 35 * len(records), 460),
             column_config=tables.number_columns())
st.caption(f"{len(records):,} of {len(src.records):,} variables shown · "
           f"{sum(r.size for r in records):,} parameters · {format_bytes(sum(r.nbytes for r in records))}")
st.download_button("Download variables (JSON)", data=derived.to_json(show_json(src.spec, src.records)),
                   file_name="variables.json", mime="application/json")

left_col, right_col = st.columns([3, 2])
with left_col:
    st.subheader("Parameters by module and kind")
    st.plotly_chart(derived.treemap(src), key="browse_treemap")
with right_col:
    st.subheader("Totals per kind")
    st.dataframe(tables.totals_frame(src.records), hide_index=True, width="stretch",
                 column_config=tables.number_columns())

st.subheader("One variable")
if not records:
    st.info("No variable matches the search.")
    st.stop()
names = [r.full_name for r in records]
largest = max(range(len(records)), key=lambda i: records[i].size)
picked = st.selectbox("Variable", names, index=largest, key="browse_variable")
record = records[names.index(picked)] if picked in names else records[0]
st.write(f"**{record.full_name}** · {record.kind} · {format_shape(record.shape)} · {record.dtype} · "
         f"{record.size:,} parameters · {format_bytes(record.nbytes)}"
         + (f" · sharding {record.sharding.describe()}" if record.sharding else ""))
array = derived.array_of(src, record, choice)
if array is not None and array.size:
    hist_col, map_col = st.columns(2)
    with hist_col:
        st.plotly_chart(charts.histogram(array, "Values"), key="browse_histogram")
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        if finite.size:
            st.caption(f"min {finite.min():.4g} · max {finite.max():.4g} · mean {finite.mean():.4g} · "
                       f"std {finite.std():.4g} · NaN {int(np.isnan(array).sum()) if array.dtype.kind == 'f' else 0}")
    if array.ndim == 2:
        with map_col:
            st.plotly_chart(charts.heatmap(array, "Heatmap"), key="browse_heatmap")

st.subheader("Tree view")
whole = len(src.records) <= treeview.WHOLE_MODEL_LIMIT
target_path = () if whole else record.path[:-1]
target = treeview.subtree(derived.tree_object(src), ((record.collection,) if record.collection and not whole
                                                     and derived.is_linen_dict(src) else ()) + target_path)
if not whole:
    st.caption(f"The model has {len(src.records):,} variables; showing the module holding the selected one "
               f"(`{'/'.join(map(str, target_path)) or '(top level)'}`).")
treeview.show(target, sources.source_key(src) + (target_path,))
