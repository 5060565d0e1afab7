"""Value statistics against numpy, including NaN/Inf, integers, keys and chunked work."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inspector import stats
from inspector.records import VariableRecord
from inspector.stats import array_stats, records_with_stats, stats_table

RNG = np.random.default_rng(0)


def expected(array) -> tuple:
    data = np.asarray(array, np.float64) if isinstance(array, jax.Array) else np.asarray(array)
    finite = data[np.isfinite(data)].astype(np.float64) if data.dtype.kind in "fc" else data.astype(np.float64).ravel()
    nan = int(np.isnan(data).sum()) if data.dtype.kind in "fc" else 0
    inf = int(np.isinf(data).sum()) if data.dtype.kind in "fc" else 0
    return finite.min(), finite.max(), finite.mean(), finite.std(), nan, inf


@pytest.mark.parametrize("array", [
    RNG.standard_normal((32, 16)).astype(np.float32),
    np.array([1.0, np.nan, -np.inf, 3.0, np.inf], np.float32),
    np.arange(-5, 7, dtype=np.int32),
    np.array([True, False, True]),
    jnp.asarray(RNG.standard_normal(10), jnp.bfloat16),
    jnp.array([1.0, jnp.nan, jnp.inf, -2.0], jnp.bfloat16),
    np.float32(2.5),
], ids=["float32", "nan-inf", "int32", "bool", "bfloat16", "bfloat16-nan-inf", "scalar"])
def test_matches_numpy(array):
    got = array_stats(array)
    want = expected(array)
    assert (got.min, got.max, got.nan, got.inf) == (want[0], want[1], want[4], want[5])
    assert got.mean == pytest.approx(want[2]) and got.std == pytest.approx(want[3])


def test_keys_use_their_key_data():
    keys = jax.random.split(jax.random.key(1), 4)
    assert array_stats(keys) == array_stats(jax.random.key_data(keys))


def test_no_finite_values_gives_nan_statistics():
    got = array_stats(np.array([np.nan, np.inf]))
    assert math.isnan(got.mean) and (got.nan, got.inf) == (1, 1)
    assert math.isnan(array_stats(np.zeros((0,))).min)


def test_chunked_equals_whole(monkeypatch):
    data = RNG.standard_normal(1000) * 100 + 7
    data[::97] = np.nan
    whole = array_stats(data)
    monkeypatch.setattr(stats, "CHUNK", 64)
    chunked = array_stats(data)
    assert (chunked.min, chunked.max, chunked.nan) == (whole.min, whole.max, whole.nan)
    assert chunked.mean == pytest.approx(whole.mean) and chunked.std == pytest.approx(whole.std)


def test_records_with_stats_reads_each_record_once():
    records = [VariableRecord(path=(n,), type="Param", shape=(3,), dtype="float32", size=3, nbytes=12)
               for n in ("a", "b")]
    reads = []
    out = records_with_stats(records, lambda r: reads.append(r.name) or np.full(3, len(reads), np.float32))
    assert reads == ["a", "b"] and [r.stats.mean for r in out] == [1.0, 2.0]
    assert "a" in stats_table(out) and "mean" in stats_table(out).splitlines()[0]
