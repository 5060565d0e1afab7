"""The sidebar every page shares: which sources to inspect, loaded once and cached.

Each picker lists the bundled samples, then the weight files, model folders and checkpoints found
under the root folder (``--root`` or ``INSPECTOR_ROOT``), then a free-text spec. Sources typed into
the page are confined to the root folder; specs given on the app's command line are trusted as
they are.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import streamlit as st

from inspector.errors import InspectorError
from loaders import LoadedSource, load_source, parse_spec
from loaders.confine import confine_spec
from loaders.discover import Found, find_sources
from sample_models import FORMS, SAMPLES
from ui.text import plain

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
    """What the sidebar says: two specs, the root folder, and whether to build abstractly."""

    left: str
    right: str
    abstract: bool
    root: str


def init_state(options: Options) -> None:
    """Seed the sidebar's widgets from the command line, once per session."""
    if "root" not in st.session_state:
        st.session_state["root"] = str(Path(options.root).resolve())
        st.session_state["trusted"] = {options.left, options.right}
    for side, spec in (("left", options.left), ("right", options.right)):
        if f"{side}_pick" not in st.session_state:
            if spec in SAMPLE_SPECS:
                st.session_state[f"{side}_pick"] = spec
            else:
                st.session_state[f"{side}_pick"] = OTHER
                st.session_state[f"{side}_text"] = spec


def sidebar() -> Choice:
    """Draw the source pickers; return the chosen specs."""
    with st.sidebar:
        st.subheader("Sources")
        left = _picker("left", "Left source (e.g. Linen)")
        right = _picker("right", "Right source (e.g. NNX)")
        abstract = st.toggle("Abstract (shapes only)", key="abstract",
                             help="Build with jax.eval_shape / nnx.eval_shape: no array is allocated.")
        st.caption(f"Files, checkpoints and model folders are read under the root folder "
                   f"`{st.session_state['root']}`.")
    return Choice(left=left, right=right, abstract=abstract, root=st.session_state["root"])


def _picker(side: str, label: str) -> str:
    found = found_sources(st.session_state["root"])
    labels = {f.spec: f"{f.spec} — {f.what}" for f in found}
    pick = st.selectbox(label, SAMPLE_SPECS + list(labels) + [OTHER], key=f"{side}_pick",
                        format_func=lambda spec: labels.get(spec, spec))
    if pick != OTHER:
        return pick
    return st.text_input(f"{side.title()} spec", key=f"{side}_text",
                         placeholder="models/my_model.py:make_model",
                         help="path/to/file.py:FACTORY, a checkpoint or model folder (DIR or DIR@STEP), or a "
                              "weight file (.msgpack, .safetensors, .npz, checkpoint_<N>), relative to the root "
                              "folder").strip()


@st.cache_data(show_spinner=False, ttl=15, max_entries=4)
def found_sources(root: str) -> list[Found]:
    """Weight files, model folders and checkpoints under the root (looked up again every 15 s)."""
    found, truncated = find_sources(root)
    if truncated:
        LOG.info("listing sources under %s stopped at its cap; %d shown", root, len(found))
    return found


def load(choice: Choice, side: str) -> LoadedSource | None:
    """Load the left or right source with a spinner; on bad input show ``st.error`` and return None."""
    spec = getattr(choice, side)
    if not spec:
        st.info(f"Enter the {side} source in the sidebar.")
        return None
    try:
        confined = confine_spec(spec, choice.root, trusted=st.session_state.get("trusted", ()))
        with st.spinner(f"Loading {spec}…"):
            return _load_cached(confined, choice.abstract, _stamp(confined))
    except InspectorError as err:
        st.error(f"{side.title()} source: {plain(str(err))}")
    except Exception:  # a bug, not bad input: keep the traceback in the log
        LOG.exception("loading %s failed", spec)
        st.error(f"Something went wrong while loading {spec!r}; the server log has the details.")
    return None


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_cached(spec: str, abstract: bool, stamp: float | None) -> LoadedSource:
    started = time.perf_counter()
    source = load_source(spec, abstract=abstract)
    LOG.info("loaded %s (abstract=%s) in %.2fs", spec, abstract, time.perf_counter() - started)
    return source


def source_key(src: LoadedSource) -> tuple:
    """A hashable key for caches of things derived from a loaded source."""
    return (src.spec, src.abstract, _stamp(src.spec), id(src))


def _stamp(spec: str) -> float | None:
    """The modification time of a spec's file or directory, so an edited model is loaded again."""
    try:
        parsed = parse_spec(spec)
    except InspectorError:
        return None
    if parsed.kind in ("file", "checkpoint", "weights"):
        try:
            return os.stat(parsed.target).st_mtime
        except OSError:
            return None
    return None
