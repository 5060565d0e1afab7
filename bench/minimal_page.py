"""The reference page of the app benchmark: a Streamlit script that only imports jax and flax.

Its first render is what any Streamlit page over flax costs; the app's first render divided by
this one is the app's own cost.
"""

from __future__ import annotations

import flax
import jax
import streamlit as st
from flax import nnx

st.title("Minimal page")
st.write(f"jax {jax.__version__}, flax {flax.__version__}, nnx {nnx.__name__}")
