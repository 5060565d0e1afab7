"""The Convert section of the Port check page: plan, write under the root with progress, download the converter.

``convert_inputs`` reads the widgets, ``render_plan`` draws a plan; the plan and the emitted
converter are computed below (``loaders.convert``) and cached per pair of sources.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from inspector.align.rules import parse_rules
from inspector.convert_plan import ConvertPlan
from inspector.convert_report import verdict
from inspector.errors import InspectorError, PortError
from loaders import LoadedSource
from loaders.convert import emit_python, model_factory, plan_sources, write_converted
from ui import sources
from ui.text import plain


@st.cache_resource(show_spinner=False, max_entries=8)
def _plan(_left: LoadedSource, _right: LoadedSource, lkey: tuple, rkey: tuple, rules_text: str) -> ConvertPlan:
    rules = parse_rules(rules_text, origin="rules") if rules_text.strip() else None
    return plan_sources(_left, _right, rules=rules)[0]


@st.cache_data(show_spinner=False, max_entries=8)
def _converter(_plan: ConvertPlan, _left: LoadedSource, lkey: tuple, rkey: tuple, right_spec: str,
               rules_text: str) -> str:
    return emit_python(_plan, _left, model_factory(right_spec), target=right_spec)


def render_plan(plan: ConvertPlan) -> None:
    (st.success if plan.ok else st.error)(plain(verdict(plan)))
    cols = st.columns(4)
    for col, (label, n) in zip(cols, (("mapped", len(plan.moves)), ("transformed", len(plan.transformed)),
                                      ("cast", len(plan.casts)), ("refused", len(plan.refused)))):
        col.metric(label, n)
    if plan.refused:
        st.dataframe([r.to_json() for r in plan.refused], hide_index=True, width="stretch")
    else:
        st.dataframe([{"linen": " + ".join(p.full_name for p in m.parts), "nnx": m.right.name,
                       "shape": str(m.right.shape), "dtype": f"{m.source_dtype} → {m.dtype}" if m.cast else m.dtype,
                       "transform": m.transform.text if m.transform is not None else ""} for m in plan.moves],
                     hide_index=True, width="stretch")


def out_folder(root: str, text: str) -> str:
    """The output folder under the root; PortError for ``..``, absolute paths, symlinks out, the root itself."""
    base = Path(root).resolve()
    folder = (base / text.strip()).resolve()
    if base not in folder.parents:
        raise PortError(f"folder {text.strip()!r} is not inside the root folder {str(base)!r}; give a new folder "
                        "under it")
    return str(folder)


def convert_section(choice: sources.Choice, left: LoadedSource, right: LoadedSource) -> None:
    """Plan the left weights into the right model; write the checkpoint; offer the converter."""
    rules_text = st.session_state.get("diff_rules", "")
    lkey, rkey = sources.source_key(left), sources.source_key(right)
    try:
        plan = _plan(left, right, lkey, rkey, rules_text)
    except InspectorError as err:
        st.error(plain(str(err)))
        return
    render_plan(plan)
    if not plan.ok:
        return
    target = st.text_input("Folder (relative to the root)", key="convert_out", placeholder="converted/my_model_nnx")
    overwrite = st.checkbox("Replace the folder if it is a checkpoint", key="convert_force")
    if st.button("Convert", key="convert_run", type="primary") and target.strip():
        bar = st.progress(0.0, text="Converting…")
        try:
            folder = out_folder(choice.root, target)
            Path(folder).parent.mkdir(parents=True, exist_ok=True)
            written = write_converted(plan, left, right, folder, make_model=model_factory(right.spec),
                                      force=overwrite,
                                      progress=lambda done, total, _: bar.progress(done / total,
                                                                                   text=f"{done}/{total} arrays"))
            st.success(plain(f"NNX checkpoint written to {written}; restore it with "
                             "StandardCheckpointer().restore(path, abstract_state)."))
        except InspectorError as err:
            st.error(plain(str(err)))
    try:
        code = _converter(plan, left, lkey, rkey, right.spec, rules_text)
    except InspectorError as err:
        st.error(plain(str(err)))
        return
    st.download_button("Download the converter (.py)", code, file_name="convert_to_nnx.py", mime="text/x-python",
                       key="convert_download")
