"""Value statistics of one array: min, max, mean, std, and how many NaN and Inf it holds.

Statistics are over the finite values, with NaN and Inf counted apart, so that one NaN does not
hide what the other values look like (a diverged run usually has a few). An array with no finite
value has NaN statistics. Work is done in slices of ``CHUNK`` elements with float64
accumulators, so the extra memory stays small next to the array itself.

``RunningStats`` is the same computation split over pieces: each piece (any slice of the
flattened array, in any order) gives its own ``RunningStats.of(piece)``, and ``merge`` combines
them exactly as one pass over the whole would (Chan et al.'s pairwise update of mean and squared
deviations), so an array read in slices, on several threads, within a memory budget, gets the
numbers numpy gives for the whole array.

>>> import numpy as np
>>> array_stats(np.array([1.0, 2.0, 3.0, np.nan, np.inf]))
Stats(min=1.0, max=3.0, mean=2.0, std=0.816496580927726, nan=1, inf=1)
>>> RunningStats.of(np.array([1.0, np.nan])).merge(RunningStats.of(np.array([2.0, 3.0, np.inf]))).result()
Stats(min=1.0, max=3.0, mean=2.0, std=0.816496580927726, nan=1, inf=1)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from inspector.records import Stats, VariableRecord

CHUNK = 1 << 16  # elements per block: its float64 copy (512 KiB) stays in the cache


@dataclasses.dataclass
class RunningStats:
    """Statistics of the pieces seen so far: mergeable, so pieces may come in any order."""

    count: int = 0  # finite values
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from ``mean``
    lo: float = math.inf
    hi: float = -math.inf
    nan: int = 0
    inf: int = 0

    @classmethod
    def of(cls, array: Any) -> RunningStats:
        """The statistics of one array or piece (any shape; typed keys through their key data)."""
        flat = _as_numpy(array).reshape(-1)
        if flat.dtype == np.bool_:
            flat = flat.astype(np.uint8)
        floating = jax.numpy.issubdtype(flat.dtype, np.inexact)  # numpy says no for bfloat16 / float8
        out = cls()
        for part in _chunks(flat):
            if not part.size:
                continue
            lo, hi = part.min(), part.max()  # NaN and ±Inf show here: most blocks skip the check below
            if floating and not (np.isfinite(lo) and np.isfinite(hi)):
                finite = np.isfinite(part)
                nan = int(np.isnan(part).sum())
                out.nan += nan
                out.inf += part.size - int(finite.sum()) - nan
                part = part[finite]
                if not part.size:
                    continue
                lo, hi = part.min(), part.max()
            out.merge(_block(part, lo, hi))
        return out

    def merge(self, other: RunningStats) -> RunningStats:
        """Add ``other``'s values to these (in place); returns ``self``."""
        self.nan += other.nan
        self.inf += other.inf
        if other.count:
            total = self.count + other.count
            delta = other.mean - self.mean
            self.mean += delta * other.count / total
            self.m2 += other.m2 + delta * delta * self.count * other.count / total
            self.count = total
            self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        return self

    def result(self) -> Stats:
        if not self.count:
            nan = float("nan")
            return Stats(min=nan, max=nan, mean=nan, std=nan, nan=self.nan, inf=self.inf)
        return Stats(min=self.lo, max=self.hi, mean=self.mean, std=math.sqrt(max(self.m2, 0.0) / self.count),
                     nan=self.nan, inf=self.inf)


def _block(part: np.ndarray, lo: Any, hi: Any) -> RunningStats:
    """One block of finite values, two passes (mean, then deviations) in float64."""
    if np.iscomplexobj(part):
        values = part.astype(np.complex128)
        mean = float(values.sum().real) / values.size
        deviation = np.abs(values - mean)
    else:
        deviation = part.astype(np.float64)
        mean = float(deviation.sum()) / deviation.size
        deviation -= mean
    # einsum, not np.dot: BLAS threads spin on a busy machine; one pass, no squares written
    return RunningStats(count=int(part.size), mean=mean, m2=float(np.einsum("i,i->", deviation, deviation)),
                        lo=float(lo.real), hi=float(hi.real))


def array_stats(array: Any) -> Stats:
    """Statistics of any array-like: numpy or jax arrays, typed PRNG keys (their key data), scalars.

    >>> import jax
    >>> array_stats(jax.random.key(0)).nan, array_stats(3).max
    (0, 3.0)
    """
    return RunningStats.of(array).result()


def records_with_stats(records: Iterable[VariableRecord],
                       read: Callable[[VariableRecord], Any]) -> tuple[VariableRecord, ...]:
    """Each record with the statistics of its value; ``read`` is called once per record, in turn,
    so at most one value needs to be in memory at a time.
    """
    out = []
    for record in records:
        value = read(record)
        out.append(dataclasses.replace(record, stats=array_stats(value)))
        del value
    return tuple(out)


def _as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, jax.Array) and jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key):
        array = jax.random.key_data(array)
    return np.asarray(array)


def _chunks(flat: np.ndarray) -> Iterable[np.ndarray]:
    for start in range(0, flat.size, CHUNK):
        yield flat[start:start + CHUNK]


def stats_table(records: Iterable[VariableRecord]) -> str:
    """The statistics of each record that has them, one row per variable."""
    from inspector.report import format_table

    rows = [[r.full_name, *(_number(getattr(r.stats, f)) for f in ("min", "max", "mean", "std")),
             str(r.stats.nan), str(r.stats.inf)] for r in records if r.stats is not None]
    return format_table(["path", "min", "max", "mean", "std", "nan", "inf"], rows, right={1, 2, 3, 4, 5, 6})


def _number(value: float) -> str:
    return f"{value:.6g}"
