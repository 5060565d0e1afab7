"""The pairing of two variable trees: alignment passes, naming, creation-order structure, rules.

``align(left, right)`` pairs every variable of one tree with one of the other, or with nothing
(``inspector.align.passes``); ``inspector.align.layouts`` finds the layout transform between two
sides (``inspector.align.transforms``), fused pieces and depth changes; ``inspector.align.rules`` lets
a user force pairs and transforms.
"""

from __future__ import annotations

from inspector.align.passes import Guess, Pair, align

__all__ = ["Guess", "Pair", "align"]
