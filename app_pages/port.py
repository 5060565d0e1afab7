"""Port check: the left (Linen) weights moved into the right (NNX) model; do the outputs agree?"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from inspector.errors import InspectorError, PortError
from inspector.port_report import train_verdict, verdict
from inspector.training import LOSSES
from loaders.porting import write_state
from ui import compare, sources
from ui.convert_view import convert_section
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
with_train = st.toggle("Also check a training step", key="port_train",
                       help="Runs training steps on both sides from the converted weights (dropout off on both) "
                            "and compares the loss, every gradient, the state after the step (BatchNorm "
                            "statistics, counters) and the weights after the SGD steps.")
if with_train:
    tcols = st.columns(3)
    loss = tcols[0].selectbox("Loss (no labels needed)", LOSSES, key="port_loss",
                              help="mean_square: Σ over the float outputs of mean(leaf²); sum_square: of sum(leaf²)")
    steps = int(tcols[1].number_input("SGD steps", min_value=1, max_value=100, value=1, key="port_steps"))
    lr = tcols[2].number_input("Learning rate", value=1e-2, format="%g", key="port_lr")
    train_args = st.text_area("Linen train flags, one NAME=JSON per line (only when the flag is not named "
                              "train, training or deterministic)", key="port_train_args", height=68,
                              placeholder="is_training=true")
rules_text = st.session_state.get("diff_rules", "")
if rules_text.strip():
    st.caption("Using the alignment rules from the Diff page.")
if st.button("Run port check", type="primary", key="port_run"):
    st.session_state["port_ran"] = (left.spec, right.spec)


def port_results() -> None:
    """The port check's verdict and tables, the training step when asked, and saving the converted state."""
    try:
        with st.spinner("Converting and running both models…"):
            report, state = compare.port(left, right, rules_text, atol, rtol)
    except InspectorError as err:
        st.error(plain(str(err)))
        return
    (st.success if report.ok else st.error)(verdict(report))
    for line in report.settled:  # an ambiguous layout the run decided
        st.info(plain(line))
    if report.refused:
        st.dataframe([r.to_json() for r in report.refused], hide_index=True, width="stretch")
    else:
        st.dataframe([{**o.to_json(), "path": o.path or "(output)"} for o in report.outputs], hide_index=True,
                     width="stretch")
    for note in report.notes:
        st.caption(plain(note))
    if report.suspects:
        st.caption("Suspects: the pairs with the weakest evidence (names, forward-pass order); a swap or a "
                   "transpose hides here first.")
        rows = [{"linen": s["left"], "nnx": s["right"], "names": (s["evidence"] or {}).get("names"),
                 "first use": (s["evidence"] or {}).get("dataflow")} for s in report.to_json()["suspects"]]
        st.dataframe(rows, hide_index=True, width="stretch")

    if with_train:
        st.subheader("Training step")
        try:
            with st.spinner("Training both models…"):
                trained = compare.train(left, right, rules_text, atol, rtol, loss, steps, lr, train_args)
        except InspectorError as err:
            st.error(plain(str(err)))
            trained = None
        else:
            if trained is None:
                st.warning("Not run: the conversion was refused, so there is no converted model to train.")
        if trained is not None:
            (st.success if trained.ok else st.error)(train_verdict(trained))
            loss_row = trained.loss.to_json()
            st.caption(f"Loss ({trained.loss_kind}): Linen {loss_row['linen']:.6g}, NNX {loss_row['nnx']:.6g}, "
                       f"max_abs {loss_row['max_abs']:.3g}" + ("" if trained.loss.allclose else " — differs"))
            data = trained.to_json()
            for title, key in (("Gradients", "gradients"), ("State after the step", "state"),
                               (f"Weights after {trained.steps} SGD step(s)", "weights")):
                if data[key]:
                    st.markdown(f"**{title}**")
                    st.dataframe(data[key], hide_index=True, width="stretch")
            for note in trained.notes:
                st.caption(note)

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


if st.session_state.get("port_ran") == (left.spec, right.spec):
    port_results()
st.subheader("Convert")
st.caption("Write the left source's weights (a Linen model, checkpoint or weight file) as an Orbax checkpoint of "
           "the right NNX model, one array at a time; nothing is written unless every variable is accounted for.")
convert_section(choice, left, right)
