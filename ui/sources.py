"""The sidebar every page shares: which sources to inspect, loaded once and cached."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import streamlit as st

from inspector.errors import InspectorError
from loaders import LoadedSource, load_source, parse_spec
from sample_models import FORMS, SAMPLES

LOG = logging.getLogger("inspector.app")
DEFAULT_LEFT = "sample:block:linen"
DEFAULT_RIGHT = "sample:block:nnx"
SAMPLE_SPECS = [f"sample:{name}:{form}" for name in SAMPLES for form in FORMS]
OTHER = "Other: a factory file or checkpoint directory…"


@dataclasses.dataclass(frozen=True)
class Options:
    """The app's own command-line options (``streamlit run app.py -- --left ...``)."""

    left: str = DEFAULT_LEFT
    right: str = DEFAULT_RIGHT
    root: str = "."


@dataclasses.dataclass(frozen=True)
class Choice:
    left: str
    right: str
    abstract: bool


def init_state(options: Options) -> None:
    """Seed the sidebar's widgets from the command line, once per session."""
    for side, spec in (("left", options.left), ("right", options.right)):
        if f"{side}_pick" not in st.session_state:
            if spec in SAMPLE_SPECS:
                st.session_state[f"{side}_pick"] = spec
            else:
                st.session_state[f"{side}_pick"] = OTHER
                st.session_state[f"{side}_text"] = spec
    st.session_state.setdefault("root", options.root)


def sidebar() -> Choice:
    """Draw the source pickers; return the chosen specs."""
    with st.sidebar:
        st.subheader("Sources")
        left = _picker("left", "Left source (e.g. Linen)")
        right = _picker("right", "Right source (e.g. NNX)")
        abstract = st.toggle("Abstract (shapes only, allocate nothing)", key="abstract",
                             help="Build with jax.eval_shape / nnx.eval_shape: no array is allocated.")
    return Choice(left=left, right=right, abstract=abstract)


def _picker(side: str, label: str) -> str:
    pick = st.selectbox(label, SAMPLE_SPECS + [OTHER], key=f"{side}_pick")
    if pick != OTHER:
        return pick
    return st.text_input(f"{side.title()} spec", key=f"{side}_text",
                         placeholder="models/my_model.py:make_model",
                         help="path/to/file.py:FACTORY or an Orbax checkpoint directory").strip()


def load(spec: str, *, abstract: bool) -> LoadedSource | None:
    """Load a source with a spinner; show ``st.error`` and return None if it cannot be loaded."""
    if not spec:
        st.info("Enter a source spec in the sidebar.")
        return None
    try:
        with st.spinner(f"Loading {spec}…"):
            return _load_cached(spec, abstract, _stamp(spec))
    except InspectorError as err:
        st.error(str(err))
    except Exception:  # a bug, not bad input: keep the traceback in the log
        LOG.exception("loading %s failed", spec)
        st.error(f"Something went wrong while loading {spec!r}; the server log has the details.")
    return None


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_cached(spec: str, abstract: bool, stamp: float | None) -> LoadedSource:
    return load_source(spec, abstract=abstract)


def _stamp(spec: str) -> float | None:
    """The modification time of a spec's file, so an edited model file is loaded again."""
    try:
        parsed = parse_spec(spec)
    except InspectorError:
        return None
    if parsed.kind in ("file", "checkpoint"):
        with_path = Path(parsed.target)
        try:
            return os.stat(with_path).st_mtime
        except OSError:
            return None
    return None
