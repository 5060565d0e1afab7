"""Messages for Streamlit, which renders every alert as Markdown.

Error messages quote paths and code (``__init__.py``, ``params/Dense_0``); as Markdown, ``__x__``
turns bold and ``_`` italic. ``plain`` escapes them so the page shows what the message says.

>>> plain("dunder names are not allowed: '__import__'")
"dunder names are not allowed: '\\\\_\\\\_import\\\\_\\\\_'"
"""

from __future__ import annotations

import re

# Only what changes the text in Streamlit's Markdown: emphasis, code, links, HTML, strike, LaTeX.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~$])")


def plain(text: str) -> str:
    """``text`` with Markdown's special characters escaped."""
    return _MARKDOWN.sub(r"\\\1", str(text))
