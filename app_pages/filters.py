"""Filters & split: type an NNX filter, see what it selects, how nnx.split groups the model, and
whether nnx.merge puts it back together. Filter text is parsed, never executed."""

from __future__ import annotations

import streamlit as st

from inspector.errors import InspectorError
from inspector.filters import parse_filter
from inspector.records import format_bytes
from inspector.split_report import leftover_lines, merge_verdict
from inspector.splitmerge import select, subject_notes
from ui import compare, sources, tables
from ui.text import plain

EXAMPLES = ["nnx.Param", "nnx.BatchStat", "(nnx.Param, nnx.BatchStat)",
            "nnx.All(nnx.Param, nnx.PathContains('kernel'))", "nnx.Not(nnx.Param)", "nnx.RngState",
            "nnx.PathContains('linear')", "...", "'dropout'"]

choice: sources.Choice = st.session_state["choice"]
st.title("Filters & split")
side = st.radio("Source", ["left", "right"], index=1, horizontal=True, key="filters_side",
                format_func=lambda s: f"{s}: {getattr(choice, s)}")
src = sources.load(choice, side)
if src is None:
    st.stop()
subject = compare.subject(src)
for note in subject_notes(subject):
    st.info(plain(note))


def _use_example() -> None:
    if st.session_state.get("filter_example"):
        st.session_state["filter_text"] = st.session_state["filter_example"]
        st.session_state["filter_example"] = None  # a chip fills the box once; the box is what counts


st.pills("Examples", EXAMPLES, key="filter_example", on_change=_use_example)
text = st.text_input("Filter", key="filter_text", placeholder="e.g. nnx.Param & ~nnx.PathContains('bias')",
                     help="Variable types (Param, nnx.BatchStat, your own types), 'tags', ..., OfType, WithTag, "
                          "PathContains, PathIn, Any, All, Not, Everything, Nothing, tuples, and | & ~.")
only = st.toggle("Only matching variables", key="filter_only")
matched = set()
if text.strip():
    try:
        parsed = parse_filter(text, subject.variable_types, collections=subject.collections)
    except InspectorError as err:
        st.error(plain(str(err)))
    else:
        records = select(subject, parsed)
        matched = {r.key for r in records}
        st.code(f"nnx.state(model, {parsed.text})", language="python")
        for note in parsed.notes:
            st.warning(plain(note))
        cols = st.columns(3)
        cols[0].metric("variables", f"{len(records):,} of {len(src.records):,}")
        cols[1].metric("parameters", f"{sum(r.size for r in records):,}")
        cols[2].metric("bytes", format_bytes(sum(r.nbytes for r in records)))
shown = [r for r in src.records if r.key in matched] if only and matched else list(src.records)
frame = tables.records_frame(shown)
frame.insert(0, "match", [r.key in matched for r in shown])
styled = frame.style.apply(lambda row: ["background-color: #fff59d" if row["match"] else ""] * len(row), axis=1) \
    if len(frame) <= 3000 else frame
st.dataframe(styled, hide_index=True, width="stretch", height=min(38 + 35 * len(frame), 420),
             column_config=tables.number_columns())

st.subheader("Split")
split_text = st.text_input("Filters, in order, separated by ';'", key="split_text", value="nnx.Param; ...")
if split_text.strip():
    try:
        with st.spinner("Splitting and merging…"):
            filters, split = compare.split(src, split_text)
    except InspectorError as err:
        st.error(plain(str(err)))
        st.stop()
    st.code(split.line, language="python")
    for group in split.groups:
        with st.expander(f"`{group.filter}` — {len(group.records):,} variables, "
                         f"{sum(r.size for r in group.records):,} parameters", expanded=len(split.groups) <= 3):
            st.dataframe(tables.records_frame(group.records), hide_index=True, width="stretch",
                         column_config=tables.number_columns())
    if split.remainder:
        st.warning("\n\n".join(leftover_lines(split)))
        if split.fixed_line:
            st.code(split.fixed_line, language="python")
    if split.captured:
        st.info(f"{len(split.captured)} variable(s) were captured outside the model (nnx.capture): "
                "nnx.split does not see them.")
    verdict = merge_verdict(split, splittable=subject.node is not None)
    (st.success if split.merge_roundtrip else st.info)(verdict)
