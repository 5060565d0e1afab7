"""Port check: the left (Linen) weights moved into the right (NNX) model; do the outputs agree?"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from inspector.errors import InspectorError, PortError
from inspector.port_report import verdict
from loaders.porting import write_state
from ui import compare, sources
from ui.text import plain

choice: sources.Choice = st.session_state["choice"]
st.title("Port check")
st.caption("Converts the left source's Linen variables into the right source's NNX model through the alignment, "
           "runs both on the example inputs in inference mode, and compares every output.")
left = sources.load(choice, "left")
right = sources.load(choice, "right")
if left is None or right is None:
    st.stop()

cols = st.columns(2)
atol = cols[0].number_input("atol", value=1e-5, format="%g", key="port_atol")
rtol = cols[1].number_input("rtol", value=1e-5, format="%g", key="port_rtol")
rules_text = st.session_state.get("diff_rules", "")
if rules_text.strip():
    st.caption("Using the alignment rules from the Diff page.")
if st.button("Run port check", type="primary", key="port_run"):
    st.session_state["port_ran"] = (left.spec, right.spec)
if st.session_state.get("port_ran") != (left.spec, right.spec):
    st.stop()
try:
    with st.spinner("Converting and running both models…"):
        report, state = compare.port(left, right, rules_text, atol, rtol)
except InspectorError as err:
    st.error(plain(str(err)))
    st.stop()
(st.success if report.ok else st.error)(verdict(report))
for line in report.settled:  # an ambiguous layout the run decided
    st.info(plain(line))
if report.refused:
    st.dataframe([r.to_json() for r in report.refused], hide_index=True, width="stretch")
else:
    st.dataframe([{**o.to_json(), "path": o.path or "(output)"} for o in report.outputs], hide_index=True,
                 width="stretch")

if state is not None:
    st.subheader("Save the converted NNX state")
    st.caption("Written with Orbax on the server, under the root folder; restore it with "
               "`ocp.StandardCheckpointer().restore(path, abstract_state)`.")
    target = st.text_input("Folder (relative to the root)", key="port_out", placeholder="converted/my_model")
    overwrite = st.checkbox("Replace the folder if it exists", key="port_force")
    if st.button("Write checkpoint", key="port_write") and target.strip():
        try:
            root = Path(choice.root).resolve()
            folder = (root / target.strip()).resolve()
            if root not in folder.parents:  # `..`, absolute paths, symlinks out, or the root itself
                raise PortError(f"folder {target.strip()!r} is not inside the root folder {str(root)!r}; "
                                "give a new folder under it")
            written = write_state(str(folder), state, force=overwrite, make_parents=True)
            st.success(f"Converted state written to `{written}`.")
        except InspectorError as err:
            st.error(plain(str(err)))
