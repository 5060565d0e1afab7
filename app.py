"""Flax State Inspector, the web app: ``streamlit run app.py [-- --left SPEC --right SPEC --root DIR --devices N]``."""

from __future__ import annotations

import argparse
import os
import sys

import streamlit as st

from inspector.devices import simulate_devices
from inspector.errors import InspectorError


def apply_devices_option(argv: list[str]) -> str | None:
    """``--devices N`` (simulated CPU devices) must act before jax is imported: the error text, if any."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--devices")
    known, _ = parser.parse_known_args(argv)
    if known.devices is None:
        return None
    try:
        simulate_devices(int(known.devices))
    except ValueError as err:  # InspectorError, or not a number
        return str(err) if isinstance(err, InspectorError) else f"--devices {known.devices!r}: give a number"
    return None


DEVICES_ERROR = apply_devices_option(sys.argv[1:])

from ui import sources  # noqa: E402  (imports jax: after --devices)


def parse_options(argv: list[str]) -> sources.Options:
    """The app's options; unknown arguments (pytest's, under AppTest) are ignored."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--left", default=sources.DEFAULT_LEFT)
    parser.add_argument("--right", default=sources.DEFAULT_RIGHT)
    parser.add_argument("--root", default=os.environ.get("INSPECTOR_ROOT", "."))
    known, _ = parser.parse_known_args(argv)
    return sources.Options(left=known.left, right=known.right, root=known.root)


def main() -> None:
    st.set_page_config(page_title="Flax State Inspector", page_icon="🔎", layout="wide")
    if DEVICES_ERROR:
        st.warning(DEVICES_ERROR)
    sources.init_state(parse_options(sys.argv[1:]))
    page = st.navigation([
        st.Page("app_pages/browse.py", title="Browse", icon=":material/table_view:", default=True),
        st.Page("app_pages/diff.py", title="Diff", icon=":material/compare_arrows:"),
        st.Page("app_pages/filters.py", title="Filters & split", icon=":material/filter_alt:"),
        st.Page("app_pages/port.py", title="Port check", icon=":material/verified:"),
        st.Page("app_pages/sharding.py", title="Sharding", icon=":material/grid_view:"),
    ])
    st.session_state["choice"] = sources.sidebar()
    page.run()


main()
