"""Diff entries made by hand, for layouts the aligner does not produce yet (test helpers).

``StandInTransform`` offers what ``inspector.align.transforms.Transform`` offers the module tree
and the pair view: ``.text``, ``.to_json()`` and ``.apply(*left_arrays)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from inspector.records import VariableRecord


@dataclasses.dataclass(frozen=True)
class StandInTransform:
    op: str
    text: str
    fn: Callable = lambda *arrays: arrays[0]

    def to_json(self) -> dict:
        return {"op": self.op, "text": self.text}

    def apply(self, *arrays):
        return self.fn(*arrays)


def rec(name: str, shape=(4, 4), collection: str | None = None, type_: str = "Param",
        dtype: str = "float32") -> VariableRecord:
    """A record for ``layers/0/kernel``-style names (digits become list indices)."""
    path = tuple(int(k) if k.isdigit() else k for k in name.split("/"))
    size = int(np.prod(shape))
    return VariableRecord(path, type_, tuple(shape), dtype, size, size * 4, collection)
