"""Sharding: how one source's variables are laid out over a mesh, per variable and per device.

The per-device picture needs the arrays on a real mesh; with fewer devices the page shows the
layout a model's logical names and rules would give on its planned mesh (``--devices 8`` simulates
enough CPU devices for the bundled ``sharded`` sample).
"""

from __future__ import annotations

import math

import jax
import streamlit as st

from inspector.records import format_bytes
from inspector.report import format_shape
from inspector.sharding import annotation_problem, format_mesh, format_spec
from loaders.mesh import device_ids
from ui import layout, sources

choice: sources.Choice = st.session_state["choice"]
st.title("Sharding")
side = st.radio("Source", ["left", "right"], index=1, horizontal=True, key="sharding_side",
                format_func=lambda s: f"{s}: {getattr(choice, s)}")
src = sources.load(choice, side)
if src is None:
    st.stop()

annotated = [r for r in src.records if r.sharding is not None]
if not annotated:
    st.info(f"No variable of `{src.spec}` carries sharding annotations (logical names or a PartitionSpec). "
            "Annotate parameters with `nnx.with_partitioning` (NNX) or `nn.with_logical_partitioning` (Linen), "
            "or pick `sample:sharded:linen` / `sample:sharded:nnx`.")
    st.stop()

problems = [(r, annotation_problem(r)) for r in annotated]
for record, problem in [(r, p) for r, p in problems if p]:
    st.warning(f"`{record.full_name}` {format_shape(record.shape)}: {problem}")

mem = layout.memory(src)
if mem is None:
    st.info(f"{len(annotated)} variables carry logical names, but none is laid out on a mesh: the source has no "
            "mesh, and its example declares no planned mesh to compute the layout for.")
else:
    devices = len(mem.per_device)
    if mem.planned:
        st.info(f"The mesh {format_mesh(mem.mesh)} is only planned: jax sees {jax.device_count()} device(s) here, "
                f"and it needs {devices}. The layout below is computed from the logical names and the sample's rules. "
                f"Start with `--devices {devices}` (CLI or app) to see the arrays placed on simulated CPU devices.")
    first = next((r for r in annotated if r.sharding.mesh == mem.mesh), annotated[0])
    ids = None if mem.planned else device_ids(src.value(first))
    cols = st.columns(4)
    cols[0].metric("Mesh", format_mesh(mem.mesh))
    cols[1].metric("Largest device total", format_bytes(max(mem.totals)))
    cols[2].metric("Whole model", format_bytes(sum(r.nbytes for r in src.records)))
    cols[3].metric("Laid-out variables", f"{mem.laid_out} of {len(src.records)}")
    st.plotly_chart(layout.memory_bars(mem, ids), key="sharding_memory")
    if mem.other_count:
        st.caption(f"{mem.other_count} variable(s) ({format_bytes(mem.other_bytes)}) have no layout on this mesh; "
                   "a jitted step replicates them, so they are counted on every device.")

st.subheader("One variable")
names = [r.full_name for r in annotated]
picked = st.selectbox("Variable", names, key="sharding_variable")
record = annotated[names.index(picked)] if picked in names else annotated[0]
s = record.sharding
rows = {"shape": format_shape(record.shape), "dtype": record.dtype, "bytes": format_bytes(record.nbytes),
        "logical names": repr(tuple(s.names)) if s.names else "—",
        "PartitionSpec": format_spec(s.spec) if s.spec is not None else "—",
        "mesh": (format_mesh(s.mesh) + (" (planned)" if s.planned else "")) if s.mesh else "—",
        "shard shape": format_shape(s.shard_shape) if s.shard_shape is not None else "—",
        "bytes per device": format_bytes(s.device_bytes) if s.device_bytes is not None else "—",
        "devices holding each shard": str(s.replicas) if s.replicas is not None else "—"}
st.dataframe([{"field": k, "value": v} for k, v in rows.items()], hide_index=True, width="stretch")
ids = device_ids(src.value(record)) if s.mesh and not s.planned else None
if ids is not None:
    st.plotly_chart(layout.mesh_heatmap(s, record.shape, ids), key="sharding_heatmap")
elif s.mesh:
    st.caption("Which device holds which shard is shown once the arrays are on a real mesh "
               + (f"(start with `--devices {math.prod(n for _, n in s.mesh)}`)." if s.planned else
                  "(these come from an abstract mesh or a checkpoint's metadata)."))
