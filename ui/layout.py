"""Figures of how a model is laid out over a mesh: which device holds which shard, and the bytes
each device holds. Built here from records (and the device ids of a real mesh), drawn by the page."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from inspector.records import Sharding, format_bytes
from inspector.sharding import DeviceMemory, device_memory, shard_blocks
from loaders import LoadedSource
from ui import sources


def memory(src: LoadedSource) -> DeviceMemory | None:
    """Per-device bytes of the whole model (cached per source)."""
    return _memory(src, sources.source_key(src))


@st.cache_data(show_spinner=False, max_entries=16)
def _memory(_src: LoadedSource, key: tuple) -> DeviceMemory | None:
    return device_memory(_src.records)


def device_labels(n: int, ids: Sequence[int] | None) -> list[str]:
    return [f"device {i}" for i in ids] if ids is not None else [f"#{i} (planned)" for i in range(n)]


def mesh_heatmap(sharding: Sharding, shape: Sequence[int], ids: Sequence[int]) -> go.Figure:
    """The mesh as a grid (last mesh axis across); each cell is a device, coloured by the shard it
    holds, so replicas share a colour. Hover shows the slice of the array the device holds."""
    mesh = sharding.mesh or ()
    shard = sharding.shard_shape or tuple(shape)
    blocks = shard_blocks(sharding.spec or (), mesh, len(shape))
    counts = [max(1, -(-d // max(s, 1))) for d, s in zip(shape, shard)]
    numbers = [int(np.ravel_multi_index(b, counts)) if counts else 0 for b in blocks]
    cols = mesh[-1][1] if mesh else 1
    rows = max(1, len(blocks) // cols)
    leading = mesh[:-1]
    row_names = [", ".join(f"{a}={i}" for (a, _), i in zip(leading, idx))
                 for idx in np.ndindex(*(n for _, n in leading))]
    text = [f"device {d}<br>shard {b}" for d, b in zip(ids, blocks)]
    slices = [", ".join(f"{bi * s}:{min(d, (bi + 1) * s)}" for d, s, bi in zip(shape, shard, b)) for b in blocks]
    fig = go.Figure(go.Heatmap(
        z=np.array(numbers).reshape(rows, cols), text=np.array(text).reshape(rows, cols),
        customdata=np.array(slices).reshape(rows, cols), texttemplate="%{text}", showscale=False,
        colorscale="Viridis", x=[f"{mesh[-1][0]}={j}" for j in range(cols)] if mesh else [""],
        y=row_names or [""], hovertemplate="%{text}<br>holds [%{customdata}]<extra></extra>", xgap=3, ygap=3))
    fig.update_layout(height=120 + 70 * rows, margin=dict(t=40, l=0, r=0, b=0), yaxis=dict(autorange="reversed"),
                      title=f"Which device holds which shard ({math.prod(counts)} distinct shards, "
                            f"{sharding.replicas} cop{'y' if sharding.replicas == 1 else 'ies'} each)")
    return fig


def memory_bars(mem: DeviceMemory, ids: Sequence[int] | None) -> go.Figure:
    """Bytes per device: the laid-out variables' shards, plus unannotated variables (replicated)."""
    labels = device_labels(len(mem.per_device), ids)
    fig = go.Figure([go.Bar(x=labels, y=list(mem.per_device), name="sharded variables", marker_color="#1565c0",
                            customdata=[format_bytes(b) for b in mem.per_device],
                            hovertemplate="%{x}: %{customdata}<extra></extra>")])
    if mem.other_bytes:
        fig.add_bar(x=labels, y=[mem.other_bytes] * len(labels), name="unannotated (replicated)",
                    marker_color="#9e9e9e", hovertemplate=f"%{{x}}: {format_bytes(mem.other_bytes)}<extra></extra>")
    fig.update_layout(barmode="stack", height=320, margin=dict(t=40, l=0, r=0, b=0), yaxis_title="bytes",
                      title="Bytes per device" + (" (planned)" if mem.planned else ""))
    return fig
