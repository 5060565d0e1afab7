"""Plotly figures from records and arrays: built here, drawn by the pages.

Figures stay small on big models: the treemap aggregates by module and kind, histograms are
binned in numpy, heatmaps are down-sampled, and the Sankey shows the largest module pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from inspector.diff_tree import STATUS_RANK
from inspector.diffing import DiffEntry, Status
from inspector.records import VariableRecord

STATUS_COLORS = {
    Status.MATCH: "#2e7d32", Status.RENAMED: "#1565c0", Status.RNG_ONLY: "#9e9e9e",
    Status.TYPE: "#c62828", Status.SHAPE: "#d84315", Status.DTYPE: "#ef6c00", Status.SHARDING: "#f9a825",
    Status.VALUE: "#ad1457", Status.LEFT_ONLY: "#6a1b9a", Status.RIGHT_ONLY: "#4527a0",
    Status.TRANSFORMED: "#00838f", Status.COUNTER_ONLY: "#9e9e9e",
}
_STATUS_RANK = {s: i for i, s in enumerate(STATUS_RANK)}
MAX_DEPTH = 4
MAX_LINKS = 60
HEATMAP_SIDE = 256


def treemap(records: Sequence[VariableRecord], title: str = "") -> go.Figure:
    """Parameters by module (up to four levels) and kind."""
    sizes: dict[tuple, int] = {}
    for r in records:
        module = tuple(str(k) for k in ((r.collection,) if r.collection else ()) + r.path[:-1])[:MAX_DEPTH]
        key = module + (f"[{r.kind}]",)
        sizes[key] = sizes.get(key, 0) + max(r.size, 1)
    ids, parents, labels, values = ["(model)"], [""], ["(model)"], [0]
    position = {"(model)": 0}
    for key, size in sizes.items():
        for depth in range(1, len(key) + 1):
            node = "(model)/" + "/".join(key[:depth])
            if node not in position:
                position[node] = len(ids)
                ids.append(node)
                parents.append("(model)/" + "/".join(key[:depth - 1]) if depth > 1 else "(model)")
                labels.append(key[depth - 1])
                values.append(0)
        values[position["(model)/" + "/".join(key)]] = size
    fig = go.Figure(go.Treemap(ids=ids, parents=parents, labels=labels, values=values, branchvalues="remainder",
                               hovertemplate="%{id}<br>%{value:,} parameters<extra></extra>", maxdepth=3))
    fig.update_layout(margin=dict(t=30, l=0, r=0, b=0), height=420, title=title or None)
    return fig


def histogram(values: np.ndarray, title: str) -> go.Figure:
    """Distribution of finite values, binned in numpy so the figure stays small."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    flat = flat[np.isfinite(flat)]
    counts, edges = np.histogram(flat, bins=60) if flat.size else (np.zeros(1), np.array([0.0, 1.0]))
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                           marker_color="#1565c0", hovertemplate="%{x:.4g}: %{y}<extra></extra>"))
    fig.update_layout(title=title, height=300, margin=dict(t=40, l=0, r=0, b=0), bargap=0)
    return fig


def overlaid_histograms(left: np.ndarray | None, right: np.ndarray | None, names: tuple[str, str],
                        title: str) -> go.Figure:
    """Two distributions on shared bins, drawn over each other (either side may be missing)."""
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in (left, right) if a is not None]
    finite = [a[np.isfinite(a)] for a in arrays]
    pooled = np.concatenate(finite) if finite else np.zeros(0)
    edges = np.histogram_bin_edges(pooled, bins=60) if pooled.size else np.array([0.0, 1.0])
    fig = go.Figure()
    for values, name, color in ((left, names[0], "#1565c0"), (right, names[1], "#ef6c00")):
        if values is None:
            continue
        flat = np.asarray(values, dtype=np.float64).ravel()
        counts, _ = np.histogram(flat[np.isfinite(flat)], bins=edges)
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name=name, marker_color=color,
                    opacity=0.55, hovertemplate="%{x:.4g}: %{y}<extra>" + name + "</extra>")
    fig.update_layout(title=title, height=320, margin=dict(t=40, l=0, r=0, b=0), bargap=0, barmode="overlay",
                      legend=dict(orientation="h", y=-0.15))
    return fig


def heatmap(values: np.ndarray, title: str) -> go.Figure:
    """A 2-D array, down-sampled by striding to at most 256 × 256 cells."""
    array = np.asarray(values, dtype=np.float64)
    step = [max(1, int(np.ceil(n / HEATMAP_SIDE))) for n in array.shape]
    shown = array[::step[0], ::step[1]]
    note = f" (every {step[0]}×{step[1]})" if step != [1, 1] else ""
    fig = go.Figure(go.Heatmap(z=shown, colorscale="RdBu", zmid=0))
    fig.update_layout(title=title + note, height=420, margin=dict(t=40, l=0, r=0, b=0),
                      yaxis=dict(autorange="reversed"))
    return fig


def alignment_sankey(entries: Sequence[DiffEntry], left_name: str, right_name: str) -> go.Figure:
    """Linen modules on the left, NNX modules on the right; a band per aligned pair, sized by
    parameters and coloured by the worst status inside it."""
    links: dict[tuple[str, str], tuple[int, Status]] = {}
    for e in entries:
        left = _module(e.left) if e.left else "(none)"
        right = _module(e.right) if e.right else "(none)"
        size = max((e.left or e.right).size, 1)
        old = links.get((left, right))
        status = e.status if old is None or _STATUS_RANK[e.status] < _STATUS_RANK[old[1]] else old[1]
        links[(left, right)] = ((old[0] if old else 0) + size, status)
    ranked = sorted(links.items(), key=lambda kv: -kv[1][0])
    shown, rest = ranked[:MAX_LINKS], ranked[MAX_LINKS:]
    if rest:
        worst = min((s for _, (_, s) in rest), key=_STATUS_RANK.get)
        shown.append((("(other modules)", "(other modules) "), (sum(n for _, (n, _) in rest), worst)))
    lnodes = sorted({a for (a, _), _ in shown})
    rnodes = sorted({b for (_, b), _ in shown})
    labels = [f"{left_name}: {n}" if n.startswith("(") else n for n in lnodes] + rnodes
    index = {("L", n): i for i, n in enumerate(lnodes)} | {("R", n): len(lnodes) + i for i, n in enumerate(rnodes)}
    fig = go.Figure(go.Sankey(
        arrangement="snap", textfont=dict(color="#1a1a1a", size=12, shadow="none"),
        node=dict(label=labels, pad=8, thickness=12, color="#90a4ae",
                  x=[0.01] * len(lnodes) + [0.99] * len(rnodes)),
        link=dict(source=[index["L", a] for (a, _), _ in shown], target=[index["R", b] for (_, b), _ in shown],
                  value=[n for _, (n, _) in shown], color=[_fade(STATUS_COLORS[s]) for _, (_, s) in shown],
                  customdata=[s.value for _, (_, s) in shown],
                  hovertemplate="%{source.label} → %{target.label}<br>%{value:,} parameters, %{customdata}"
                                "<extra></extra>")))
    fig.update_layout(height=max(320, 22 * max(len(lnodes), len(rnodes))), margin=dict(t=30, l=0, r=0, b=0),
                      title=f"{left_name}  →  {right_name}")
    return fig


def _module(record: VariableRecord) -> str:
    return "/".join(str(k) for k in record.path[:-1]) or "(top level)"


def _fade(color: str) -> str:
    r, g, b = int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    return f"rgba({r},{g},{b},0.55)"
