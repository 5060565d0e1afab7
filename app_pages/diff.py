"""Diff: which left variable became which right variable, and what really differs."""

from __future__ import annotations

import json

import streamlit as st

from inspector.align.rules import parse_rules, rules_from_entries
from inspector.diff_report import diff_json, diff_markdown
from inspector.diffing import Status
from inspector.errors import InspectorError
from ui import charts, compare, sources, tables
from ui.text import plain

choice: sources.Choice = st.session_state["choice"]
st.title("Diff")
left = sources.load(choice, "left")
right = sources.load(choice, "right")
if left is None or right is None:
    st.stop()

with st.expander("Alignment rules", expanded=False):
    st.caption('JSON: `{"rename": [["<regex>", "<replacement>"]], "pairs": {"<left path>": "<right path>"}}` — '
               "left paths without the Linen collection; a pair may name a module. Rules override the "
               "automatic alignment.")
    rules_text = st.text_area("Rules", key="diff_rules", height=160, placeholder='{"pairs": {"Block_0": "block"}}')
rules = None
if rules_text.strip():
    try:
        rules = parse_rules(rules_text, origin="rules")
    except InspectorError as err:
        st.error(plain(str(err)))

with_values = st.toggle("Compare values", key="diff_values", disabled=left.abstract or right.abstract,
                        help="max_abs, max_rel and allclose per pair (needs concrete sources)")
tol_cols = st.columns(2)
rtol = tol_cols[0].number_input("rtol", value=1e-5, format="%g", key="diff_rtol", disabled=not with_values)
atol = tol_cols[1].number_input("atol", value=1e-8, format="%g", key="diff_atol", disabled=not with_values)
try:
    with st.spinner("Aligning…"):
        result = compare.diff(left, right, rules_text if rules else "", with_values, rtol, atol)
except InspectorError as err:
    st.error(plain(str(err)))
    st.stop()

for note in result.notes:
    st.warning(plain(note))
summary = result.summary
if result.restore is not None:  # a checkpoint against a live model: would Orbax restore it?
    show = {"ok": st.success, "casts": st.warning, "fails": st.error}[result.restore.verdict]
    show("\n".join([f"**{result.restore.headline()}**"] + [f"- `{r}`" for r in result.restore.shown_reasons()]))
if summary["mismatches"]:
    st.error(f"{summary['mismatches']} mismatch(es) among {len(result.entries)} variables.")
else:
    st.success(f"No mismatches among {len(result.entries)} variables.")
shown_statuses = [s for s in Status if summary[s.value]]
for col, status in zip(st.columns(max(len(shown_statuses), 1)), shown_statuses):
    col.metric(status.value, summary[status.value])

picked = st.multiselect("Show statuses", [s.value for s in shown_statuses], key="diff_statuses",
                        placeholder="all statuses")
entries = sorted((e for e in result.entries if not picked or e.status.value in picked),
                 key=lambda e: not e.is_mismatch)  # what is wrong first, then in tree order
frame = tables.diff_frame(entries)
if not with_values:
    frame = frame.drop(columns=["max_abs"])
st.dataframe(tables.style_status(frame) if len(frame) <= 3000 else frame, hide_index=True, width="stretch",
             height=min(38 + 35 * len(frame), 480),
             column_config=tables.number_columns())

st.subheader("Alignment")
st.plotly_chart(charts.alignment_sankey(result.entries, "left", "right"), key="diff_sankey")

downloads = st.columns(3)
restore_json = result.restore.to_json() if result.restore else {}
downloads[0].download_button("JSON report",
                             json.dumps(diff_json(left.spec, right.spec, result.entries, **restore_json), indent=2),
                             file_name="diff.json", mime="application/json")
downloads[1].download_button("Markdown report",
                             diff_markdown(left.spec, right.spec, result.entries, result.notes, result.restore),
                             file_name="diff.md", mime="text/markdown")
found = [(e.left, e.right) for e in result.entries if e.left is not None and e.right is not None]
downloads[2].download_button("Rules file", json.dumps(rules_from_entries(found), indent=2),
                             file_name="rules.json", mime="application/json",
                             help="The alignment found, as rules: edit a line and paste it above.")
