"""How far apart two arrays are, computed piece by piece: the numbers behind ``diff --values``.

``ValueDiff`` reports ``max_abs`` and ``max_rel`` (relative to the larger magnitude), ``allclose``
exactly as ``np.allclose(left, right, rtol, atol, equal_nan=True)`` decides it, and what explains
that verdict: ``tol_ratio`` = max |a − b| / (atol + rtol·|b|) with ``b`` the right side (allclose
holds when it is at most 1; a NaN against a number, or infinities that differ, make it ``inf``),
``n_out_of_tolerance`` (how many elements fail ``np.isclose``) and ``first_diff_index`` (the index
of the first element, in C order, whose values differ at all: NaN against NaN does not).

``RunningDiff.of(left_piece, right_piece, offset=...)`` measures one pair of pieces (the same
slice of both flattened arrays, starting at element ``offset``); ``merge`` combines pieces in any
order, so two arrays read in slices on several threads give the numbers of one pass over both.

>>> import numpy as np
>>> a, b = np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.0, 2.5, np.nan, 4.0])
>>> d = RunningDiff.of(a[:2], b[:2]).merge(RunningDiff.of(a[2:], b[2:], offset=2)).result((4,))
>>> d.max_abs, d.allclose, d.n_out_of_tolerance, d.first_diff_index, round(d.tol_ratio)
(0.5, False, 1, (1,), 19992)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

BLOCK = 1 << 16  # elements per block of float64 work: small enough to stay in the cache


@dataclasses.dataclass(frozen=True)
class ValueDiff:
    """How far apart two arrays are; ``max_rel`` is relative to the larger magnitude."""

    max_abs: float
    max_rel: float
    allclose: bool
    nan_left: int
    nan_right: int
    inf_left: int
    inf_right: int
    tol_ratio: float = 0.0
    n_out_of_tolerance: int = 0
    first_diff_index: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["tol_ratio"] = self.tol_ratio if math.isfinite(self.tol_ratio) else None  # JSON has no Infinity
        out["first_diff_index"] = list(self.first_diff_index) if self.first_diff_index is not None else None
        return out


@dataclasses.dataclass
class RunningDiff:
    """The distance of the pieces seen so far; ``rtol``/``atol`` as in ``np.isclose``."""

    rtol: float = 1e-5
    atol: float = 1e-8
    max_abs: float = 0.0
    max_rel: float = 0.0
    tol_ratio: float = 0.0
    n_out: int = 0
    first_diff: int | None = None  # flat index
    nan_left: int = 0
    nan_right: int = 0
    inf_left: int = 0
    inf_right: int = 0

    @classmethod
    def of(cls, left: np.ndarray, right: np.ndarray, *, offset: int = 0, rtol: float = 1e-5,
           atol: float = 1e-8) -> RunningDiff:
        """The distance of two pieces of equal size (flattened), the left starting at element ``offset``."""
        a, b = np.asarray(left).reshape(-1), np.asarray(right).reshape(-1)
        if a.size != b.size:
            raise ValueError(f"pieces of {a.size} and {b.size} elements cannot be compared")
        out = cls(rtol=rtol, atol=atol)
        for start in range(0, a.size, BLOCK):
            out._add(a[start:start + BLOCK], b[start:start + BLOCK], offset + start)
        return out

    def _add(self, a: np.ndarray, b: np.ndarray, offset: int) -> None:
        if a.dtype == b.dtype and np.array_equal(a, b):  # the common case, one cheap pass
            nan, inf = _nonfinite(a)
            self.nan_left, self.nan_right = self.nan_left + nan, self.nan_right + nan
            self.inf_left, self.inf_right = self.inf_left + inf, self.inf_right + inf
            return
        x, y = _float64(a), _float64(b)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            diff = np.abs(x - y)
            top = diff.max()
            if np.isfinite(top) and x.dtype.kind != "c":
                self._add_finite(x, y, diff, float(top), offset)
            else:
                self._add_general(x, y, diff, offset)

    def _add_finite(self, x: np.ndarray, y: np.ndarray, diff: np.ndarray, top: float, offset: int) -> None:
        """Both blocks finite (their difference is): every number in a few passes, no masks."""
        tolerance = np.abs(y)
        scale = np.maximum(np.abs(x), tolerance)
        tolerance *= self.rtol
        tolerance += self.atol
        out = int(np.count_nonzero(diff > tolerance))  # exactly np.isclose's test, negated
        ratio = np.divide(diff, tolerance) if self.atol > 0 else \
            np.divide(diff, tolerance, out=np.where(diff > 0, np.inf, 0.0), where=tolerance > 0)
        np.divide(diff, scale, out=scale, where=scale > 0)
        scale[diff == 0] = 0.0
        self.max_abs = max(self.max_abs, top)
        self.max_rel = max(self.max_rel, float(scale.max()))
        self.tol_ratio = max(self.tol_ratio, float(ratio.max()))
        self.n_out += out
        if top > 0 and (self.first_diff is None or offset < self.first_diff):
            first = offset + int(np.argmax(diff > 0))
            self.first_diff = first if self.first_diff is None else min(self.first_diff, first)

    def _add_general(self, x: np.ndarray, y: np.ndarray, diff: np.ndarray, offset: int) -> None:
        """NaN, Inf or complex values: masks for what is finite."""
        nan_x, inf_x = _nonfinite(x)
        nan_y, inf_y = _nonfinite(y)
        self.nan_left, self.nan_right = self.nan_left + nan_x, self.nan_right + nan_y
        self.inf_left, self.inf_right = self.inf_left + inf_x, self.inf_right + inf_y
        close = np.isclose(x, y, rtol=self.rtol, atol=self.atol, equal_nan=True)
        differs = x != y
        if nan_x or nan_y:
            differs &= ~(np.isnan(x) & np.isnan(y))
        finite = np.isfinite(diff)
        every = bool(finite.all())
        d = diff if every else diff[finite]
        if d.size:
            scale = np.maximum(np.abs(x), np.abs(y))
            scale = scale if every else scale[finite]
            rel = np.divide(d, scale, out=np.zeros_like(d), where=scale > 0)
            tolerance = self.atol + self.rtol * np.abs(y if every else y[finite])
            ratio = np.divide(d, tolerance, out=np.where(d > 0, np.inf, 0.0), where=tolerance > 0)
            self.max_abs = max(self.max_abs, float(d.max()))
            self.max_rel = max(self.max_rel, float(rel.max()))
            self.tol_ratio = max(self.tol_ratio, float(ratio.max()))
        out = int(close.size - np.count_nonzero(close))
        if out and not every and not close[~finite].all():
            self.tol_ratio = math.inf  # NaN against a number, or infinities that differ
        self.n_out += out
        if differs.any():
            first = offset + int(np.argmax(differs))
            self.first_diff = first if self.first_diff is None else min(self.first_diff, first)

    def merge(self, other: RunningDiff) -> RunningDiff:
        """Add another piece's distance (in place); returns ``self``."""
        self.max_abs, self.max_rel = max(self.max_abs, other.max_abs), max(self.max_rel, other.max_rel)
        self.tol_ratio = max(self.tol_ratio, other.tol_ratio)
        self.n_out += other.n_out
        if other.first_diff is not None:
            self.first_diff = other.first_diff if self.first_diff is None else min(self.first_diff, other.first_diff)
        self.nan_left += other.nan_left
        self.nan_right += other.nan_right
        self.inf_left += other.inf_left
        self.inf_right += other.inf_right
        return self

    def result(self, shape: tuple[int, ...]) -> ValueDiff:
        """The distance of the whole arrays, ``first_diff_index`` laid out in ``shape``."""
        first = None
        if self.first_diff is not None:
            first = tuple(int(i) for i in np.unravel_index(self.first_diff, shape)) if shape else ()
        return ValueDiff(max_abs=self.max_abs, max_rel=self.max_rel, allclose=self.n_out == 0,
                         nan_left=self.nan_left, nan_right=self.nan_right, inf_left=self.inf_left,
                         inf_right=self.inf_right, tol_ratio=self.tol_ratio, n_out_of_tolerance=self.n_out,
                         first_diff_index=first)


def _float64(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float64 or a.dtype.kind == "c":
        return a
    return a.astype(np.float64)


def _nonfinite(a: np.ndarray) -> tuple[int, int]:
    """(NaN count, Inf count) of a numeric block; integers have neither."""
    if a.dtype.kind in "biu":
        return 0, 0
    finite = np.isfinite(a)
    if finite.all():
        return 0, 0
    nan = int(np.isnan(a).sum())
    return nan, int(a.size - np.count_nonzero(finite)) - nan


__all__ = ["RunningDiff", "ValueDiff"]
