"""treescope views of live objects, rendered to HTML once and shown in an iframe.

Rendering a whole 6,000-variable model takes seconds and megabytes, so beyond a threshold the
view shows only the module that holds the selected variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st
import treescope

from inspector.records import Path

WHOLE_MODEL_LIMIT = 400


def subtree(obj: Any, path: Path) -> Any:
    """The object at ``path`` inside an NNX module, a Linen dict or a pytree; as deep as it goes."""
    node = obj
    for key in path:
        try:
            if isinstance(node, Mapping):
                node = node[key]
            elif isinstance(key, int):
                node = node[key]
            else:
                node = getattr(node, key)
        except (KeyError, IndexError, AttributeError, TypeError):
            break
    return node


@st.cache_data(show_spinner=False, max_entries=32)
def render_html(_obj: Any, key: tuple) -> str:
    """treescope's self-contained HTML for an object (cached by ``key``)."""
    return treescope.render_to_html(_obj, ignore_exceptions=True)


def show(obj: Any, key: tuple, *, height: int = 520) -> None:
    st.iframe(render_html(obj, key), height=height)
