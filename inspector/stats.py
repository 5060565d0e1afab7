"""Value statistics of one array: min, max, mean, std, and how many NaN and Inf it holds.

Statistics are over the finite values, with NaN and Inf counted apart, so that one NaN does not
hide what the other values look like (a diverged run usually has a few). An array with no finite
value has NaN statistics. Work is done in slices of ``CHUNK`` elements with float64
accumulators, so the extra memory stays small next to the array itself: a checkpoint's largest
array bounds the memory of ``show --values``.

>>> import numpy as np
>>> array_stats(np.array([1.0, 2.0, 3.0, np.nan, np.inf]))
Stats(min=1.0, max=3.0, mean=2.0, std=0.816496580927726, nan=1, inf=1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from inspector.records import Stats, VariableRecord

CHUNK = 1 << 20


def array_stats(array: Any) -> Stats:
    """Statistics of any array-like: numpy or jax arrays, typed PRNG keys (their key data), scalars.

    >>> import jax
    >>> array_stats(jax.random.key(0)).nan, array_stats(3).max
    (0, 3.0)
    """
    flat = _as_numpy(array).reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.astype(np.uint8)
    floating = jax.numpy.issubdtype(flat.dtype, np.inexact)  # numpy says no for bfloat16 / float8
    count, total, lo, hi, nan, inf = 0, 0.0, np.inf, -np.inf, 0, 0
    for part in _chunks(flat):
        if floating:
            finite = np.isfinite(part)
            if not finite.all():
                nan += int(np.isnan(part).sum())
                inf += int(np.isinf(part).sum())
                part = part[finite]
        if part.size:
            count += part.size
            total += float(part.sum(dtype=np.float64).real)
            lo, hi = min(lo, float(part.min().real)), max(hi, float(part.max().real))
    if not count:
        return Stats(min=float("nan"), max=float("nan"), mean=float("nan"), std=float("nan"), nan=nan, inf=inf)
    mean = total / count
    squares = 0.0
    for part in _chunks(flat):
        if nan or inf:
            part = part[np.isfinite(part)]
        deviation = part.astype(np.float64) - mean if not np.iscomplexobj(part) else np.abs(part - mean)
        squares += float(np.dot(deviation, deviation))
    return Stats(min=lo, max=hi, mean=mean, std=float(np.sqrt(squares / count)), nan=nan, inf=inf)


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
