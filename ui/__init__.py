"""The Streamlit layer: widgets in, plain values out; records in, drawings out.

Only this package, ``app.py`` and ``app_pages/`` import streamlit. Session-state keys and cache
decorators live here and nowhere below.
"""
