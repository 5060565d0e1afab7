"""The two arrays of one diff entry on a common layout, and how far apart they are.

A pair can only be compared value by value once the left array is laid out the way the right one
is: a layout change (``entry.transform``: a reshape, transpose, concat of several left arrays, or
one section of a split) is applied to the left side first. Without a transform, arrays of different
shapes are not compared: guessing a transpose would hide exactly the mistake the diff reports.

>>> import numpy as np
>>> from inspector.diffing import DiffEntry, Status
>>> from inspector.records import VariableRecord as V
>>> r = V(("w",), "Param", (2,), "float32", 2, 8)
>>> pv = pair_values(DiffEntry(Status.MATCH, r, r), [np.array([1.0, 2.0])], np.array([1.0, 2.5]))
>>> pv.difference.tolist(), pv.note
([0.0, 0.5], '')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from inspector.diffing import DiffEntry
from inspector.report import format_shape


@dataclasses.dataclass(frozen=True)
class PairValues:
    left: np.ndarray | None  # the left values, after the entry's layout change
    right: np.ndarray | None
    difference: np.ndarray | None  # right − left, when both sides have the same shape
    note: str  # how the left side was laid out, or why there is no difference


def pair_values(entry: DiffEntry, left: Sequence[Any], right: Any) -> PairValues:
    """Lay the left arrays (one per part of a concat) out as the right one and subtract.

    ``left`` holds one array per left variable (``entry.left_parts`` when set); ``right`` is the
    right array or None. Arrays that are not numeric (typed keys become their key data) count as
    missing.
    """
    parts = [numeric(a) for a in left]
    after: np.ndarray | None = None
    note = ""
    if parts and all(p is not None for p in parts):
        if entry.transform is not None:
            after = np.asarray(entry.transform.apply(*parts))
            note = f"left after {entry.transform.text}"
        elif len(parts) == 1:
            after = parts[0]
    right_values = numeric(right)
    difference = None
    if after is not None and right_values is not None:
        if after.shape == right_values.shape:
            with np.errstate(invalid="ignore", over="ignore"):
                difference = right_values.astype(np.float64) - after.astype(np.float64)
        else:
            note = (f"shapes differ ({format_shape(after.shape)} vs {format_shape(right_values.shape)}) and no "
                    "layout change pairs them, so there is no difference to draw")
    elif after is None and parts:
        note = "the left side has no numeric values"
    elif right_values is None and entry.right is not None:
        note = "the right side has no numeric values"
    return PairValues(after, right_values, difference, note)


def numeric(value: Any) -> np.ndarray | None:
    """An array as numpy numbers; typed PRNG keys as their key data; None for shapes-only values."""
    if value is None:
        return None
    import jax

    if isinstance(value, jax.ShapeDtypeStruct):
        return None
    if jax.dtypes.issubdtype(getattr(value, "dtype", np.float32), jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return array
    try:
        return array.astype(np.float32)  # bfloat16 and other extension dtypes
    except (TypeError, ValueError):
        return None


def as_matrix(array: np.ndarray) -> np.ndarray:
    """A 2-D view for a heatmap: a row for a vector, leading axes folded for higher ranks.

    >>> as_matrix(np.zeros((2, 3, 4))).shape, as_matrix(np.zeros(5)).shape, as_matrix(np.zeros(())).shape
    ((6, 4), (1, 5), (1, 1))
    """
    array = np.asarray(array)
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(1, -1)
    return array.reshape(-1, array.shape[-1])


__all__ = ["PairValues", "as_matrix", "numeric", "pair_values"]
