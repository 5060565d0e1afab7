"""Things the pages derive from a loaded source, computed once and cached per source."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from inspector.errors import InspectorError
from inspector.records import VariableRecord
from loaders import LoadedSource
from ui import charts, sources
from ui.text import plain


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2)


def treemap(src: LoadedSource) -> go.Figure:
    return _treemap(src, sources.source_key(src))


@st.cache_data(show_spinner=False, max_entries=16)
def _treemap(_src: LoadedSource, key: tuple) -> go.Figure:
    return charts.treemap(_src.records)


def is_linen_dict(src: LoadedSource) -> bool:
    return src.form == "linen" and isinstance(tree_object(src), Mapping)


def tree_object(src: LoadedSource) -> Any:
    """What treescope shows: the NNX module (or state), the Linen variables, the checkpoint tree."""
    if src.form == "nnx" and src.model is not None and src.obj is src.model:
        return src.model
    if src.form == "linen" and src.variables is not None and src.obj is src.variables:
        return src.variables
    if src.on_disk:
        return getattr(src.obj, "tree", src.obj)  # the stored tree's shapes, not the loader's bookkeeping
    return src.obj


def array_of(src: LoadedSource, record: VariableRecord, choice: sources.Choice) -> np.ndarray | None:
    """The values of one variable as numpy; for abstract and checkpoint sources only on request."""
    if not src.abstract and not src.on_disk:
        return _numeric(src.value(record))
    token = ("values", src.spec, src.abstract, record.key)
    if not st.session_state.get(token):
        what = f"reads just this array from the {'checkpoint' if src.form == 'checkpoint' else 'file'}" \
            if src.on_disk else "builds the model concretely once"
        if st.button("Load values", key=f"load_{hash(token)}", help=f"This {what}."):
            st.session_state[token] = True
        else:
            st.caption("Shapes only: values are not loaded.")
            return None
    try:
        with st.spinner(f"Reading {record.full_name}…"):
            if src.on_disk:
                return _numeric(src.read(record))
            concrete = sources.load(sources.Choice(src.spec, src.spec, False, choice.root), "left")
            return None if concrete is None else _numeric(concrete.value(record))
    except InspectorError as err:
        st.error(plain(str(err)))
        return None


def _numeric(value: Any) -> np.ndarray | None:
    if value is None or isinstance(value, jax.ShapeDtypeStruct):
        return None
    if jax.dtypes.issubdtype(getattr(value, "dtype", np.float32), jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    array = np.asarray(value)
    if array.dtype.type is np.void:  # raw bytes (an npz-saved bfloat16 is |V2): no numbers to draw
        st.caption(f"The file stores these values as raw {array.dtype.itemsize}-byte items without saying "
                   "what numbers they are: nothing to plot.")
        return None
    return array.astype(np.float32) if array.dtype.kind not in "fiub" or array.dtype.itemsize < 4 else array
