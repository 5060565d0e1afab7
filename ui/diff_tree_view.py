"""The visual diff on the page: the two module trees of ``inspector.diff_tree``, drawn in the browser.

A ``st.components.v2`` component from inline HTML/CSS/JS read from ``ui/assets/`` once at import:
no frontend build, nothing fetched at run time. The browser keeps which modules are open (per tree,
across reruns) and only draws the rows in view, so a 2,000-module model costs what a small one does.

What a click means stays in Python: the component reports ``{side, path}`` of a clicked module, a
callback stores it in ``st.session_state[MODULE_KEY]``, and the page filters its table from there.
AppTest cannot click a custom component, but it can set that key.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from inspector.diff_tree import STATUS_RANK, DiffTree, Side
from inspector.diffing import DiffEntry
from ui import charts

ASSETS = Path(__file__).parent / "assets"
MODULE_KEY = "diff_module"  # {"side": "left" | "right", "path": "layers_3/attention"}, or absent
WIDGET_KEY = "diff_tree"

_COMPONENT = st.components.v2.component(
    "flax_inspector.diff_tree",
    css=(ASSETS / "diff_tree.css").read_text(encoding="utf-8"),
    js=(ASSETS / "diff_tree.js").read_text(encoding="utf-8"))


def selected_module(tree: DiffTree) -> tuple[Side, int] | None:
    """The module the user clicked, if it is still in this tree (sources may have changed since)."""
    chosen = st.session_state.get(MODULE_KEY)
    if not chosen:
        return None
    side, path = chosen.get("side"), chosen.get("path", "")
    if side not in ("left", "right"):
        return None
    index = tree.find(side, path)
    return None if index is None else (side, index)


def clear_module() -> None:
    st.session_state.pop(MODULE_KEY, None)


def show(tree: DiffTree, *, titles: tuple[str, str], open_depth: int, ready_at: float,
         highlight: dict[Side, list[int]] | None = None, reveal: bool = False) -> None:
    """Draw the trees; ``ready_at`` (epoch ms) is when the diff was ready, for the paint timing."""
    selected = selected_module(tree)
    _COMPONENT(key=WIDGET_KEY, data=payload(tree, titles=titles, open_depth=open_depth, ready_at=ready_at,
                                            selected=selected, highlight=highlight, reveal=reveal),
               on_select_change=_on_select)


def payload(tree: DiffTree, *, titles: tuple[str, str], open_depth: int, ready_at: float,
            selected: tuple[Side, int] | None = None, highlight: dict[Side, list[int]] | None = None,
            reveal: bool = False) -> dict[str, Any]:
    """Everything the browser needs, JSON-ready."""
    return {"tree": tree.to_json(), "titles": {"left": titles[0], "right": titles[1]},
            "colors": [charts.STATUS_COLORS.get(status, "#9e9e9e") for status in STATUS_RANK],
            "open_depth": open_depth, "ready_at": ready_at, "sent_at": now_ms(),
            "selected": {"side": selected[0], "index": selected[1]} if selected else None,
            "highlight": highlight or {"left": [], "right": []}, "reveal": reveal}


def highlight_for(tree: DiffTree, entries: list[DiffEntry]) -> dict[Side, list[int]]:
    """The rows that directly hold the variables of some entries, on both sides."""
    left, right = set(), set()
    for entry in entries:
        for record in entry.left_parts or ((entry.left,) if entry.left else ()):
            left.add(tree.holder("left", record))
        if entry.right is not None:
            right.add(tree.holder("right", entry.right))
    return {"left": sorted(left), "right": sorted(right)}


def now_ms() -> float:
    return time.time() * 1000


def _on_select() -> None:
    event = getattr(st.session_state.get(WIDGET_KEY), "select", None)
    if not isinstance(event, dict) or event.get("side") not in ("left", "right"):
        return
    if event.get("index", -1) < 0:
        clear_module()
    else:
        st.session_state[MODULE_KEY] = {"side": event["side"], "path": str(event.get("path", ""))}
