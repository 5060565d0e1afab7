"""Browse: every variable of one source, typed, searchable and sortable, with totals per kind."""

from __future__ import annotations

import streamlit as st

from inspector.records import format_bytes, totals_by_kind
from ui import sources, tables

choice: sources.Choice = st.session_state["choice"]
st.title("Browse")
side = st.radio("Source", ["left", "right"], horizontal=True, key="browse_side",
                format_func=lambda s: f"{s}: {getattr(choice, s)}")
src = sources.load(getattr(choice, side), abstract=choice.abstract)
if src is not None:
    st.caption(f"{src.spec} — {src.form}{', abstract (shapes only)' if src.abstract else ''}, "
               f"{len(src.records):,} variables")
    totals = totals_by_kind(src.records)
    for col, (kind, t) in zip(st.columns(min(len(totals), 6) or 1), list(totals.items())[:6]):
        col.metric(kind, f"{t.size:,}", help=f"{t.count} variables, {format_bytes(t.nbytes)}")
    query = st.text_input("Search paths", key="browse_query", placeholder="e.g. kernel or block/linear")
    records = [r for r in src.records if query.lower() in r.full_name.lower()] if query else src.records
    st.dataframe(tables.records_frame(records), hide_index=True, width="stretch",
                 column_config={"parameters": st.column_config.NumberColumn(format="localized"),
                                "bytes": st.column_config.NumberColumn(format="bytes")})
    st.subheader("Totals per kind")
    st.dataframe(tables.totals_frame(src.records), hide_index=True)
