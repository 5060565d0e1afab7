"""The pairing of two variable trees: alignment passes, naming, creation-order structure, rules.

``align(left, right)`` pairs every variable of one tree with one of the other, or with nothing
(``inspector.align.passes``); ``inspector.align.rules`` lets a user force pairs.
"""

from __future__ import annotations

from inspector.align.passes import Pair, align

__all__ = ["Pair", "align"]
