"""Saved trees to records, without Orbax: tables of metadata trees and the records they become."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from loaders.checkpoint_layout import checkpoint_records, is_nnx_tree, rng_kind, sharding_of_metadata

F32, U32 = np.float32, np.uint32


def leaf(*shape, dtype=F32):
    return jax.ShapeDtypeStruct(shape, dtype)


def boxed(*shape, dtype=F32):
    return {"value": leaf(*shape, dtype=dtype)}


def rows(tree, key_impls=None):
    return [(r.collection, r.path, r.type, r.shape, r.dtype) for r, _ in checkpoint_records(tree, key_impls)]


CASES = {
    "linen-variables": (
        {"params": {"Dense_0": {"kernel": leaf(2, 3)}}, "batch_stats": {"bn": {"mean": leaf(3)}},
         "counter": {"count": leaf(dtype=np.int32)}},
        [("batch_stats", ("bn", "mean"), "BatchStat", (3,), "float32"),
         ("counter", ("count",), "counter", (), "int32"),
         ("params", ("Dense_0", "kernel"), "Param", (2, 3), "float32")]),
    "linen-digit-names-stay-str": (
        {"params": {"0": {"kernel": boxed(2)}}},
        [("params", ("0", "kernel"), "Param", (2,), "float32")]),
    "nnx-state": (
        {"layers": {"0": {"kernel": boxed(2, 3)}}, "drop": {"rngs": {"key": boxed(2, dtype=U32),
                                                                      "count": boxed(dtype=U32)}}},
        [(None, ("drop", "rngs", "count"), "RngCount", (), "uint32"),
         (None, ("drop", "rngs", "key"), "RngKey", (), "key<fry>"),
         (None, ("layers", 0, "kernel"), None, (2, 3), "float32")]),
    "linen-train-state": (
        {"params": {"params": {"Dense_0": {"kernel": leaf(2, 3)}}}, "step": leaf(dtype=np.int64),
         "opt_state": [{"count": leaf(dtype=np.int32), "mu": {"params": {"Dense_0": {"kernel": leaf(2, 3)}}}},
                       None]},
        [(None, ("opt_state", 0, "count"), "OptState", (), "int32"),
         (None, ("opt_state", 0, "mu", "params", "Dense_0", "kernel"), "OptState", (2, 3), "float32"),
         (None, ("step",), "OptState", (), "int32"),
         ("params", ("Dense_0", "kernel"), "Param", (2, 3), "float32")]),
    "train-state-bare-params": (
        {"params": {"kernel": leaf(2)}, "opt_state": [None], "step": leaf(dtype=np.int32)},
        [(None, ("step",), "OptState", (), "int32"), ("params", ("kernel",), "Param", (2,), "float32")]),
    "nnx-train-state-with-other-variables": (
        {"params": {"kernel": boxed(2)}, "opt_state": [{"mu": {"kernel": boxed(2)}}], "step": leaf(dtype=np.int32),
         "other_variables": {"rngs": {"default": {"count": boxed(dtype=U32)}}}},
        [(None, ("kernel",), "Param", (2,), "float32"),
         (None, ("opt_state", 0, "mu", "kernel"), "OptState", (2,), "float32"),
         (None, ("rngs", "default", "count"), "RngCount", (), "uint32"),
         (None, ("step",), "OptState", (), "int32")]),
    "nnx-training": (
        {"model": {"linear": {"kernel": boxed(2, 3)}, "bn": {"mean": boxed(3)}},
         "optimizer": {"opt_state": {"0": {"mu": {"linear": {"kernel": boxed(2, 3)}}}}, "step": boxed(dtype=U32)}},
        [(None, ("bn", "mean"), None, (3,), "float32"),
         (None, ("linear", "kernel"), "Param", (2, 3), "float32"),
         (None, ("opt_state", 0, "mu", "linear", "kernel"), "OptState", (2, 3), "float32"),
         (None, ("step",), "OptState", (), "uint32")]),
    "old-optimizer-holding-model": (
        {"optimizer": {"model": {"w": boxed(2)}, "opt_state": {"0": {"trace": {"w": boxed(2)}}}}},
        [(None, ("opt_state", 0, "trace", "w"), "OptState", (2,), "float32"),
         (None, ("w",), "Param", (2,), "float32")]),
    "top-level-list": (
        [leaf(2), None, {"w": leaf(3)}],
        [(None, (0,), None, (2,), "float32"), (None, (2, "w"), None, (3,), "float32")]),
    "generic-tree": (
        {"encoder": {"w": leaf(4)}, "rngs": {"key": leaf(4, dtype=U32)}},
        [(None, ("encoder", "w"), None, (4,), "float32"), (None, ("rngs", "key"), "RngKey", (4,), "uint32")]),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_tree_becomes_records(case):
    tree, expected = CASES[case]
    assert rows(tree) == expected


@pytest.mark.parametrize("impl,stored,shape,dtype", [
    ("threefry2x32", (2,), (), "key<fry>"),
    ("unsafe_rbg", (4,), (), "key<urbg>"),
    ("rbg", (5, 4), (5,), "key<rbg>"),
], ids=["threefry", "unsafe-rbg", "stacked-rbg"])
def test_recorded_key_implementations(impl, stored, shape, dtype):
    tree = {"blocks": {"rngs": {"key": boxed(*stored, dtype=U32)}}}
    record, stored_leaf = checkpoint_records(tree, {"blocks.rngs.key.value": impl})[0]
    assert (record.shape, record.dtype, record.type, stored_leaf.key_impl) == (shape, dtype, "RngKey", impl)
    assert stored_leaf.disk_path == ("blocks", "rngs", "key", "value") and stored_leaf.shape == stored


def test_value_levels_are_stripped_only_from_single_key_dicts():
    tree = {"a": {"value": leaf(2), "other": leaf(3)}}
    assert [r.path for r, _ in checkpoint_records(tree)] == [("a", "other"), ("a", "value")]
    assert is_nnx_tree({"a": boxed(1)}) and not is_nnx_tree(tree)


@pytest.mark.parametrize("path,dtype,kind", [
    (("rngs", "default", "key"), "key<fry>", "RngKey"),
    (("to_nnx__rngs", "default", "count"), "uint32", "RngCount"),
    (("dropout", "rngs", "key"), "float32", None),
    (("optimizer", "count"), "int32", None),
], ids=["stream-key", "bridge-count", "float-key", "not-rngs"])
def test_rng_kind(path, dtype, kind):
    assert rng_kind(path, dtype) == kind


@dataclasses.dataclass
class FakeNamedSharding:
    shape: np.ndarray
    axis_names: list
    partition_spec: tuple


@dataclasses.dataclass
class FakeMeta:
    sharding: object


def test_named_sharding_metadata_becomes_a_sharding():
    meta = FakeMeta(FakeNamedSharding(np.array([2, 4]), ["data", "model"], (None, ("data", "model"))))
    sharding = sharding_of_metadata(meta, (16, 64), 4)
    assert sharding.spec == (None, ("data", "model")) and sharding.mesh == (("data", 2), ("model", 4))
    assert sharding.shard_shape == (16, 8) and sharding.device_bytes == 16 * 8 * 4 and sharding.replicas == 1
    assert sharding_of_metadata(FakeMeta(None), (3,), 4) is None
