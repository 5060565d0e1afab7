"""Diff: which left variable became which right variable, and what really differs.

Top to bottom: the options, the verdict, the two module trees side by side (click a module to filter
the table), the table (choose a row to see that pair), one pair side by side, parameters by size,
downloads. Each section is one function; what the user picked lives in ``st.session_state``.
"""

from __future__ import annotations

import dataclasses
import json

import streamlit as st

from inspector.align import Guess
from inspector.align.rules import parse_rules, rules_from_entries
from inspector.diff_report import diff_json, diff_markdown
from inspector.diff_tree import STATUS_RANK, DiffTree, build_diff_tree, entries_below
from inspector.diffing import DiffEntry, Status, describe_pair
from inspector.errors import InspectorError
from inspector.sharding import parse_axis_rules
from loaders import LoadedSource
from ui import charts, compare, diff_tree_view, pair_view, sources, tables
from ui.compare import DiffResult
from ui.text import plain

PAIR_KEY = "diff_pair"  # the pair shown side by side, as ``describe_pair`` writes it
PICKED_KEY = "diff_picked"  # the pair the user chose (table row or pair box): the trees show it
TABLE_KEY = "diff_table"
TABLE_ROWS_KEY = "diff_table_rows"  # the pairs of the table's rows, in the order shown
REVEALED_KEY = "diff_tree_revealed"  # the pair the trees last opened to
HIGHLIGHT_LIMIT = 200  # rows per side; beyond that a highlight shows nothing useful


@dataclasses.dataclass(frozen=True)
class DiffOptions:
    rules_text: str = ""
    with_values: bool = False
    rtol: float = 1e-5
    atol: float = 1e-8
    axis_rules_text: str = ""


def options_ui(left: LoadedSource, right: LoadedSource) -> DiffOptions:
    with st.expander("Alignment rules", expanded=False):
        st.caption('JSON: `{"rename": [["<regex>", "<replacement>"]], "pairs": {"<left path>": "<right path>"}, '
                   '"transforms": [{"left": [...], "right": [...], "steps": [...]}], "dtype": {"<left path>": '
                   '"bfloat16"}}` — left paths without the Linen collection; a pair may name a module. Rules '
                   "override the automatic alignment.")
        rules_text = st.text_area("Rules", key="diff_rules", height=160,
                                  placeholder='{"pairs": {"Block_0": "block"}}')
    with st.expander("Axis rules (sharding)", expanded=False):
        st.caption('flax `logical_axis_rules` as JSON, e.g. `[["embed", "model"], ["vocab", null]]`: Linen logical '
                   "names are mapped to mesh axes before shardings are compared (overrides a sample's own rules).")
        axis_text = st.text_area("Axis rules", key="diff_axis_rules", height=100,
                                 placeholder='[["embed", "model"], ["vocab", null]]')
    rules = None
    if rules_text.strip():
        try:
            rules = parse_rules(rules_text, origin="rules")
        except InspectorError as err:
            st.error(plain(str(err)))
    axis_rules = None
    if axis_text.strip():
        try:
            axis_rules = parse_axis_rules(axis_text, origin="axis rules")
        except InspectorError as err:
            st.error(plain(str(err)))
    with_values = st.toggle("Compare values", key="diff_values", disabled=left.abstract or right.abstract,
                            help="max_abs, max_rel and allclose per pair (needs concrete sources)")
    tol_cols = st.columns(2)
    rtol = tol_cols[0].number_input("rtol", value=1e-5, format="%g", key="diff_rtol", disabled=not with_values)
    atol = tol_cols[1].number_input("atol", value=1e-8, format="%g", key="diff_atol", disabled=not with_values)
    return DiffOptions(rules_text if rules else "", with_values, rtol, atol, axis_text if axis_rules else "")


def render_verdict(result: DiffResult) -> None:
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
    guessed = sum(1 for e in result.entries if isinstance(e.evidence, Guess))
    if guessed:
        st.warning(f"{guessed} variable(s) paired by position only: a side keeps no order to pair same-shape "
                   "modules by, so these pairs are a guess (their values are not compared, and convert refuses "
                   "them). Prove them with `port LINEN NNX --weights SOURCE`, or pin them with rules.")
    shown = [s for s in Status if summary[s.value]]
    for col, status in zip(st.columns(max(len(shown), 1)), shown):
        col.metric(status.value, summary[status.value])


def module_tree(result: DiffResult, left: LoadedSource, right: LoadedSource, options: DiffOptions) -> DiffTree:
    """The two module trees of this diff (built once per diff)."""
    return _module_tree(result, sources.source_key(left), sources.source_key(right), options, left, right)


@st.cache_resource(show_spinner=False, max_entries=8)
def _module_tree(_result: DiffResult, lkey: tuple, rkey: tuple, options: DiffOptions, _left: LoadedSource,
                 _right: LoadedSource) -> DiffTree:
    return build_diff_tree(_result.entries, left=_structure(_left), right=_structure(_right))


def _structure(src: LoadedSource):
    """The source's structure, with the Linen model's own class on the root row."""
    if src.form == "linen" and src.model is not None and () not in src.structure.classes:
        return dataclasses.replace(src.structure, classes={**src.structure.classes, (): type(src.model).__name__})
    return src.structure


def tree_section(tree: DiffTree, left: LoadedSource, right: LoadedSource, ready_at: float,
                 pair: DiffEntry | None, filtered: list[DiffEntry]) -> None:
    st.subheader("Modules side by side")
    highlight, reveal = None, False
    if pair is not None:
        highlight = diff_tree_view.highlight_for(tree, [pair])
        label = describe_pair(pair)
        reveal = st.session_state.get(REVEALED_KEY) != label
        st.session_state[REVEALED_KEY] = label
    elif diff_tree_view.selected_module(tree) is not None and len(filtered) <= HIGHLIGHT_LIMIT:
        highlight = diff_tree_view.highlight_for(tree, filtered)
    diff_tree_view.show(tree, titles=(f"{left.form} · {left.spec}", f"{right.form} · {right.spec}"),
                        open_depth=tree.open_depth(), ready_at=ready_at, highlight=highlight, reveal=reveal)


def module_filter(tree: DiffTree, result: DiffResult) -> tuple[str | None, list[DiffEntry]]:
    """The entries below the module clicked in the trees, and that module in words (None: no filter)."""
    selected = diff_tree_view.selected_module(tree)
    if selected is None:
        return None, list(result.entries)
    side, index = selected
    row = tree.rows(side)[index]
    where = f"{side} module `{row.name.replace('`', '')}`" if row.name else f"{side} model (every {side} variable)"
    return where, entries_below(result.entries, side, row.name)


def table_section(entries: list[DiffEntry], where: str | None, result: DiffResult, with_values: bool) -> None:
    if where is not None:
        cols = st.columns([5, 1], vertical_alignment="center")
        cols[0].info(f"Table filtered to the {where}: {len(entries):,} of {len(result.entries):,} variables.")
        cols[1].button("Show all", key="diff_module_clear", on_click=diff_tree_view.clear_module)
    shown_statuses = [s.value for s in Status if result.summary[s.value]]
    picked = st.multiselect("Show statuses", shown_statuses, key="diff_statuses", placeholder="all statuses")
    rows = sorted((e for e in entries if not picked or e.status.value in picked),
                  key=lambda e: not e.is_mismatch)  # what is wrong first, then in tree order
    st.session_state[TABLE_ROWS_KEY] = [describe_pair(e) for e in rows]
    frame = tables.diff_frame(rows)
    if not with_values:
        frame = frame.drop(columns=["max_abs"])
    st.dataframe(tables.style_status(frame) if len(frame) <= 3000 else frame, hide_index=True, width="stretch",
                 height=min(38 + 35 * len(frame), 480), column_config=tables.number_columns(),
                 key=TABLE_KEY, on_select=_on_table_select, selection_mode="single-row")
    st.caption("Choose a row to see its modules in the trees and its values below.")


def _on_table_select() -> None:
    rows = st.session_state[TABLE_KEY].selection.rows
    labels = st.session_state.get(TABLE_ROWS_KEY, [])
    if rows and rows[0] < len(labels):
        st.session_state[PAIR_KEY] = st.session_state[PICKED_KEY] = labels[rows[0]]


def _on_pair_change() -> None:
    st.session_state[PICKED_KEY] = st.session_state[PAIR_KEY]


def picked_pair(result: DiffResult) -> DiffEntry | None:
    """The pair the user chose in the table or the pair box, if it is in this diff."""
    label = st.session_state.get(PICKED_KEY)
    if label is None:
        return None
    for entry in result.entries:
        if describe_pair(entry) == label:
            return entry
    st.session_state.pop(PICKED_KEY, None)  # from another diff
    return None


def pair_section(result: DiffResult, left: LoadedSource, right: LoadedSource, choice: sources.Choice) -> None:
    st.subheader("One variable, side by side")
    ordered = sorted(result.entries, key=lambda e: STATUS_RANK.index(e.status))  # the worst first
    labels = [describe_pair(e) for e in ordered]
    if not labels:
        return
    if st.session_state.get(PAIR_KEY) not in labels:  # the worst mismatch, else the largest pair
        first = ordered[0] if ordered[0].is_mismatch else max(
            ordered, key=lambda e: (e.left is not None and e.right is not None, (e.left or e.right).size))
        st.session_state[PAIR_KEY] = describe_pair(first)
    label = st.selectbox("Pair", labels, key=PAIR_KEY, on_change=_on_pair_change,
                         help="Or choose a row in the table above.")
    entry = ordered[labels.index(label)]
    pair_view.render(entry, left, right, choice, key=f"{left.spec}|{right.spec}|{label}")


def sankey_section(result: DiffResult) -> None:
    with st.expander("Parameters by size", expanded=False):
        st.caption("Which module became which, each band as wide as its parameters.")
        st.plotly_chart(charts.alignment_sankey(result.entries, "left", "right"), key="diff_sankey")


def downloads_section(result: DiffResult, left: LoadedSource, right: LoadedSource) -> None:
    downloads = st.columns(3)
    restore_json = result.restore.to_json() if result.restore else {}
    downloads[0].download_button("JSON report",
                                 json.dumps(diff_json(left.spec, right.spec, result.entries, **restore_json), indent=2),
                                 file_name="diff.json", mime="application/json")
    downloads[1].download_button("Markdown report",
                                 diff_markdown(left.spec, right.spec, result.entries, result.notes, result.restore),
                                 file_name="diff.md", mime="text/markdown")
    found = [(e.left, e.right) for e in result.entries if e.left is not None and e.right is not None]
    downloads[2].download_button("Rules file", json.dumps(rules_from_entries(found, result.entries), indent=2),
                                 file_name="rules.json", mime="application/json",
                                 help="The alignment found, as rules: edit a line and paste it above.")


def main() -> None:
    choice: sources.Choice = st.session_state["choice"]
    st.title("Diff")
    left = sources.load(choice, "left")
    right = sources.load(choice, "right")
    if left is None or right is None:
        st.stop()
    options = options_ui(left, right)
    try:
        with st.spinner("Aligning…"):
            result = compare.diff(left, right, options.rules_text, options.with_values, options.rtol, options.atol,
                                  options.axis_rules_text)
    except InspectorError as err:
        st.error(plain(str(err)))
        st.stop()
    ready_at = diff_tree_view.now_ms()
    render_verdict(result)
    tree = module_tree(result, left, right, options)
    where, filtered = module_filter(tree, result)
    tree_section(tree, left, right, ready_at, picked_pair(result), filtered)
    table_section(filtered, where, result, options.with_values)
    pair_section(result, left, right, choice)
    sankey_section(result)
    downloads_section(result, left, right)


main()
