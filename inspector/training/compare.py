"""Compare one training step of a Linen model and its NNX port through the alignment.

Pure: the values come in as mappings from a variable's record key to its array, the pairing as the
port check's ``DiffEntry`` list. A Linen array reaches the NNX side through the entry's layout
transform (``entry.transform`` over ``entry.left_parts``), the same way its weight was converted:
every transform is linear in the array's elements, so a gradient maps exactly like its weight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from inspector.diffing import DiffEntry, Status, Tolerance, compare_values

# The entries whose Linen value fills the NNX variable (as ``port_check.plan`` moves them).
_MOVED = frozenset({Status.MATCH, Status.RENAMED, Status.SHARDING, Status.TRANSFORMED})

Values = Mapping[tuple[str, tuple], Any]


@dataclasses.dataclass(frozen=True)
class LossDiff:
    linen: float
    nnx: float
    max_abs: float
    allclose: bool

    def to_json(self) -> dict[str, Any]:
        return {"linen": self.linen, "nnx": self.nnx, "max_abs": self.max_abs, "allclose": self.allclose}


@dataclasses.dataclass(frozen=True)
class TrainDiff:
    """One compared variable: its NNX path, the Linen variable(s) it comes from, the distance."""

    path: str
    linen: str
    max_abs: float
    max_rel: float
    allclose: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"path": self.path, "linen": self.linen, "max_abs": self.max_abs, "max_rel": self.max_rel,
               "allclose": self.allclose}
        if self.note:
            out["note"] = self.note
        return out


@dataclasses.dataclass(frozen=True)
class TrainReport:
    """Loss, gradients and state after one step, and the weights after ``steps`` SGD steps."""

    loss: LossDiff
    gradients: tuple[TrainDiff, ...]
    state: tuple[TrainDiff, ...]
    weights: tuple[TrainDiff, ...]
    steps: int
    lr: float
    loss_kind: str
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.loss.allclose and not self.differing()

    def differing(self) -> list[tuple[str, TrainDiff]]:
        """Every variable that differs as ``(section, diff)``, largest distance first."""
        found = [(section, d) for section, diffs in (("gradient", self.gradients), ("state", self.state),
                                                    ("weight", self.weights)) for d in diffs if not d.allclose]
        return sorted(found, key=lambda item: -item[1].max_abs)

    def to_json(self) -> dict[str, Any]:
        return {"match": self.ok, "loss_kind": self.loss_kind, "steps": self.steps, "lr": self.lr,
                "loss": self.loss.to_json(), "gradients": [d.to_json() for d in _ordered(self.gradients)],
                "state": [d.to_json() for d in _ordered(self.state)],
                "weights": [d.to_json() for d in _ordered(self.weights)], "notes": list(self.notes)}


def _ordered(diffs: Sequence[TrainDiff]) -> list[TrainDiff]:
    """What differs first, largest first; then the rest in path order."""
    return sorted(diffs, key=lambda d: (d.allclose, -d.max_abs if not d.allclose else 0.0))


def moved_entries(entries: Sequence[DiffEntry]) -> list[DiffEntry]:
    """The pairs whose Linen value fills an NNX variable (RNG state and refusals left out)."""
    return [e for e in entries if e.left is not None and e.right is not None
            and (e.status in _MOVED or e.transform is not None) and not e.right.is_rng and not e.left.is_rng]


def linen_value(entry: DiffEntry, values: Values) -> Any:
    """The Linen array(s) of an entry as the NNX variable holds them; None if one is missing.

    >>> import numpy as np
    >>> from inspector.align.transforms import Transform
    >>> from inspector.records import VariableRecord
    >>> k = VariableRecord(("fc", "kernel"), "Param", (2, 3), "float32", 6, 24, "params")
    >>> e = DiffEntry(Status.TRANSFORMED, k, k, transform=Transform.transpose((1, 0)))
    >>> linen_value(e, {k.key: np.arange(6).reshape(2, 3)}).shape
    (3, 2)
    """
    parts = entry.left_parts or (entry.left,)
    arrays = [values.get(p.key) for p in parts]
    if any(a is None for a in arrays):
        return None
    return entry.transform.apply(*arrays) if entry.transform is not None else arrays[0]


def linen_name(entry: DiffEntry) -> str:
    parts = entry.left_parts or (entry.left,)
    return " + ".join(p.full_name for p in parts)


def compare_mapped(entries: Sequence[DiffEntry], left: Values, right: Values, tolerance: Tolerance, *,
                   missing_left: str, missing_right: str) -> list[TrainDiff]:
    """Every entry with a value on at least one side, compared; a value on one side only differs."""
    out = []
    for e in entries:
        a = linen_value(e, left)
        b = right.get(e.right.key)
        if a is None and b is None:
            continue
        if a is None or b is None:
            out.append(TrainDiff(e.right.name, linen_name(e), float("inf"), float("inf"), False,
                                 missing_left if a is None else missing_right))
            continue
        v = compare_values(a, b, tolerance)
        if v is None:
            out.append(TrainDiff(e.right.name, linen_name(e), float("inf"), float("inf"), False,
                                 f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"))
        else:
            out.append(TrainDiff(e.right.name, linen_name(e), v.max_abs, v.max_rel, v.allclose))
    return out


def compare_loss(linen: float, nnx: float, tolerance: Tolerance) -> LossDiff:
    v = compare_values(linen, nnx, tolerance)
    return LossDiff(float(linen), float(nnx), v.max_abs if v else float("inf"), bool(v and v.allclose))
