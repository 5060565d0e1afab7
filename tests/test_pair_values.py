"""One pair's arrays on a common layout: transforms applied to the left side, then the difference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inspector.diffing import DiffEntry, Status
from inspector.pair_values import as_matrix, numeric, pair_values
from tests.handmade import StandInTransform, rec

RNG = np.random.default_rng(0)
KERNEL = RNG.normal(size=(3, 5)).astype(np.float32)
HALVES = RNG.normal(size=(2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("entry,left,right,expected_max", [
    (DiffEntry(Status.RENAMED, rec("a/kernel", (3, 5)), rec("b/kernel", (3, 5))), [KERNEL], KERNEL + 0.5, 0.5),
    (DiffEntry(Status.TRANSFORMED, rec("a/weight", (5, 3)), rec("b/kernel", (3, 5)),
               transform=StandInTransform("transpose", "transpose (1, 0)", lambda w: w.T)),
     [KERNEL.T], KERNEL, 0.0),
    (DiffEntry(Status.TRANSFORMED, rec("mlp/wi_0/kernel", (3, 4)), rec("mlp/wi/kernel", (3, 8)),
               left_parts=(rec("mlp/wi_0/kernel", (3, 4)), rec("mlp/wi_1/kernel", (3, 4))),
               transform=StandInTransform("concat", "concat axis 1", lambda a, b: np.concatenate([a, b], axis=1))),
     [HALVES[0], HALVES[1]], np.concatenate([HALVES[0], HALVES[1] + 1.0], axis=1), 1.0),
    (DiffEntry(Status.TRANSFORMED, rec("mlp/gating", (2, 3, 4)), rec("mlp/up_proj/kernel", (3, 4)),
               transform=StandInTransform("split", "split axis 0, part 1 of 2", lambda g: g[1])),
     [HALVES], HALVES[1], 0.0),
], ids=["same-layout", "transpose", "concat-of-two-parts", "one-part-of-a-split"])
def test_left_is_laid_out_as_the_right_before_subtracting(entry, left, right, expected_max):
    values = pair_values(entry, left, right)
    assert values.left.shape == values.right.shape == values.difference.shape
    assert np.abs(values.difference).max() == pytest.approx(expected_max, abs=1e-6)
    if entry.transform is not None:
        assert values.note == f"left after {entry.transform.text}"


def test_different_shapes_without_a_transform_are_not_compared():
    entry = DiffEntry(Status.SHAPE, rec("a/kernel", (3, 5)), rec("b/kernel", (5, 3)), differences=("shape",))
    values = pair_values(entry, [KERNEL], KERNEL.T)
    assert values.difference is None
    assert "shapes differ ((3, 5) vs (5, 3))" in values.note and values.left is not None


@pytest.mark.parametrize("entry,left,right,has_left,has_right", [
    (DiffEntry(Status.LEFT_ONLY, rec("a/bias", (5,)), None), [np.ones(5)], None, True, False),
    (DiffEntry(Status.RIGHT_ONLY, None, rec("adapter/bias", (5,))), [], np.ones(5), False, True),
    (DiffEntry(Status.RENAMED, rec("a", (3, 5)), rec("b", (3, 5))), [jax.ShapeDtypeStruct((3, 5), jnp.float32)],
     KERNEL, False, True),
], ids=["left-only", "right-only", "shapes-only-left"])
def test_one_sided_pairs_keep_the_side_they_have(entry, left, right, has_left, has_right):
    values = pair_values(entry, left, right)
    assert (values.left is not None, values.right is not None, values.difference) == (has_left, has_right, None)


@pytest.mark.parametrize("value,dtype,shape", [
    (jax.random.key(0), np.uint32, (2,)),
    (jnp.ones((2, 3), jnp.bfloat16), np.float32, (2, 3)),
    (np.arange(4, dtype=np.int8), np.int8, (4,)),
], ids=["typed-key-as-key-data", "bfloat16-as-float32", "integers-kept"])
def test_numeric_views(value, dtype, shape):
    array = numeric(value)
    assert array.dtype == dtype and array.shape == shape


def test_as_matrix_folds_leading_axes():
    stacked = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert as_matrix(stacked)[4].tolist() == stacked[1, 1].tolist()
