"""Alignment and diff: the seed pairs, flax's layers, planted breakage, statuses and values."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from inspector.align.structure import EMPTY, Structure
from inspector.diffing import Status, Tolerance, compare_values, diff_trees, same_key_data, summarize
from inspector.records import VariableRecord as V
from loaders import load_source
from sample_models import SAMPLES

MODELS = "tests/models/"


def diff_sources(left: str, right: str, *, structures: bool = True, **kwargs):
    a, b = load_source(left), load_source(right)
    return diff_trees(a.records, b.records, left_structure=a.structure if structures else EMPTY,
                      right_structure=b.structure if structures else EMPTY,
                      rng_one_sided=not (a.form == b.form == "nnx"), **kwargs)


def pairs(entries):
    return {(e.left.full_name if e.left else None): (e.right.full_name if e.right else None) for e in entries}


def problems(entries):
    return sorted((e.status.value, e.left.full_name if e.left else None, e.right.full_name if e.right else None)
                  for e in entries if e.is_mismatch)


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("structures", [True, False], ids=["live-order", "no-order"])
def test_seed_pairs_align_without_mismatches(name, structures):
    entries = diff_sources(f"sample:{name}:linen", f"sample:{name}:nnx", structures=structures)
    assert problems(entries) == []
    assert all(e.status in (Status.MATCH, Status.RENAMED, Status.RNG_ONLY) for e in entries)


def test_seed_pairs_pair_the_right_variables():
    assert pairs(diff_sources("sample:block:linen", "sample:block:nnx")) == {
        "params/Block_0/Dense_0/kernel": "block/linear/kernel", "params/Block_0/Dense_0/bias": "block/linear/bias",
        "params/Dense_0/kernel": "linear/kernel", "params/Dense_0/bias": "linear/bias",
        None: "block/dropout/rngs/key"} | {None: pairs(diff_sources("sample:block:linen", "sample:block:nnx"))[None]}
    counter = pairs(diff_sources("sample:counter:linen", "sample:counter:nnx"))
    assert counter["batch_stats/batchnorm/mean"] == "batchnorm/mean"
    assert counter["counter/count"] == "count" and counter["params/dense/kernel"] == "linear/kernel"
    scan = pairs(diff_sources("sample:scan_mlp:linen", "sample:scan_mlp:nnx"))
    assert scan["params/ScanBlock_0/Dense_0/kernel"] == "blocks/linear/kernel"
    sow = pairs(diff_sources("sample:sow:linen", "sample:sow:nnx"))
    assert sow["params/Dense_0/kernel"] == "linear1/kernel" and sow["params/Dense_1/kernel"] == "linear2/kernel"
    assert sow["intermediates/hidden/0"] == "hidden/0"
    rnn = pairs(diff_sources("sample:rnn:linen", "sample:rnn:nnx"))
    assert rnn["params/ScanRNNCell_0/Dense_0/kernel"] == "cell/linear/kernel"


def test_rng_only_marks_linen_to_nnx_rng_state():
    entries = diff_sources("sample:block:linen", "sample:block:nnx")
    assert sorted(e.right.name for e in entries if e.status is Status.RNG_ONLY) == [
        "block/dropout/rngs/count", "block/dropout/rngs/key"]


def test_between_two_nnx_trees_rng_state_is_compared():
    a = load_source("sample:block:nnx")
    without_rng = [r for r in a.records if not r.is_rng]
    entries = diff_trees(without_rng, a.records, rng_one_sided=False)
    assert summarize(entries)["right_only"] == 2 and summarize(entries)["mismatches"] == 2


@pytest.mark.parametrize("spec", [f"sample:{n}:{f}" for n in SAMPLES for f in ("linen", "nnx")])
def test_tree_against_itself_is_all_match(spec):
    entries = diff_sources(spec, spec)
    assert {e.status for e in entries} == {Status.MATCH}


FLAX_LAYERS = {
    "cnn": {"params/Conv_0/kernel": "conv1/kernel", "params/Conv_1/kernel": "conv2/kernel",
            "batch_stats/BatchNorm_0/var": "bn/var", "params/Dense_0/kernel": "head/kernel"},
    "transformer": {"params/LayerNorm_0/scale": "ln1/scale", "params/LayerNorm_1/scale": "ln2/scale",
                    "params/Embed_0/embedding": "embed/embedding", "params/Dense_0/kernel": "up/kernel",
                    "params/Dense_1/kernel": "down/kernel",
                    "params/MultiHeadDotProductAttention_0/query/kernel": "attn/query/kernel"},
    "lstm": {"params/LSTMCell_0/if/kernel": "rnn/cell/if_/kernel", "params/LSTMCell_0/hf/bias": "rnn/cell/hf/bias"},
    "lstm_cell": {"params/if/kernel": "if_/kernel", "params/ho/kernel": "ho/kernel"},
    "setup_list": {"params/layers_0/kernel": "layers/0/kernel", "params/layers_2/bias": "layers/2/bias",
                   "params/norm/scale": "norm/scale"},
    "loop": {"params/Dense_0/kernel": "blocks/0/kernel", "params/Dense_2/kernel": "blocks/2/kernel"},
}


@pytest.mark.parametrize("name", list(FLAX_LAYERS))
def test_flax_layers_align_fully(name):
    entries = diff_sources(f"{MODELS}flax_layers.py:{name}_linen", f"{MODELS}flax_layers.py:{name}_nnx")
    assert problems(entries) == []
    found = pairs(entries)
    assert {k: found[k] for k in FLAX_LAYERS[name]} == FLAX_LAYERS[name]


BROKEN = {
    "good": [],
    "missing_bias": [("left_only", "params/Dense_1/bias", None)],
    "wrong_width": [("shape_mismatch", "params/Dense_1/bias", "linear2/bias"),
                    ("shape_mismatch", "params/Dense_1/kernel", "linear2/kernel"),
                    ("shape_mismatch", "params/Dense_2/kernel", "linear3/kernel")],
    "wrong_dtype": [("dtype_mismatch", "params/Dense_2/bias", "linear3/bias"),
                    ("dtype_mismatch", "params/Dense_2/kernel", "linear3/kernel")],
    "transposed": [("shape_mismatch", "params/Dense_0/kernel", "linear1/kernel")],
    "extra_layer": [("right_only", None, "extra/bias"), ("right_only", None, "extra/kernel")],
    "missing_layer": [("left_only", "params/Dense_1/bias", None), ("left_only", "params/Dense_1/kernel", None)],
}


@pytest.mark.parametrize("port", list(BROKEN))
def test_planted_differences_and_nothing_else(port):
    entries = diff_sources(f"{MODELS}broken_ports.py:linen", f"{MODELS}broken_ports.py:{port}")
    assert problems(entries) == sorted(BROKEN[port], key=lambda t: tuple(x or "" for x in t))


DROPOUT_PORTS = {
    "good": [],
    "bf16": [("dtype_mismatch", "params/fc2/bias", "proj/bias"),
             ("dtype_mismatch", "params/fc2/kernel", "proj/kernel")],
    "no_bias": [("left_only", "params/fc2/bias", None)],
}


@pytest.mark.parametrize("port", list(DROPOUT_PORTS))
def test_an_nnx_dropout_between_layers_does_not_push_them_out_of_place(port):
    """The Dropout holds only RNG state: renamed layers after it still pair with their Linen twins."""
    entries = diff_sources("tests/models/dropout_ports.py:linen", f"tests/models/dropout_ports.py:{port}")
    assert problems(entries) == DROPOUT_PORTS[port]
    assert pairs(entries)["params/fc2/kernel"] == "proj/kernel"


def rec(path, kind="Param", shape=(2,), dtype="float32", collection=None):
    return V(tuple(path.split("/")), kind, shape, dtype, int(np.prod(shape)), 4 * int(np.prod(shape)), collection)


def test_status_precedence_lists_every_difference():
    (entry,) = diff_trees([rec("a/w", "Param", (2,), "float32")], [rec("a/w", "BatchStat", (3,), "int32")])
    assert entry.status is Status.TYPE and entry.differences == ("type", "shape", "dtype")
    (entry,) = diff_trees([rec("a/w", shape=(2,), dtype="float32")], [rec("a/w", shape=(3,), dtype="bfloat16")])
    assert entry.status is Status.SHAPE and entry.differences == ("shape", "dtype")


def test_kinds_compare_through_the_registry_and_case_insensitively():
    entries = diff_trees([rec("bn/mean", "BatchStat", collection="batch_stats"), rec("count", "counter")],
                         [rec("bn/mean", "BatchStat"), rec("count", "Counter")])
    assert {e.status for e in entries} == {Status.MATCH}


def test_unknown_kind_matches_any_kind():
    (entry,) = diff_trees([rec("w", None)], [rec("w", "Param")])
    assert entry.status is Status.MATCH


def test_same_place_different_shape_is_one_entry():
    entries = diff_trees([rec("Dense_0/kernel", shape=(4, 2))], [rec("fc/kernel", shape=(4, 3))])
    assert [(e.status, e.left is not None, e.right is not None) for e in entries] == [(Status.SHAPE, True, True)]


def test_different_names_and_places_are_not_paired_on_shape():
    left = [rec("decoder/kernel", shape=(4, 4)), rec("encoder/kernel", shape=(4, 4))]
    right = [rec("encoder/kernel", shape=(4, 4)), rec("classifier/kernel", shape=(4, 4))]
    created = lambda records: Structure(order={r.key: i for i, r in enumerate(records)})  # noqa: E731
    entries = diff_trees(left, right, left_structure=created(left), right_structure=created(right))
    assert sorted(e.status.value for e in entries) == ["left_only", "match", "right_only"]
    # In the same place (after the same paired sibling) a renamed module is paired.
    left = [rec("encoder/kernel", shape=(4, 4)), rec("decoder/kernel", shape=(4, 4))]
    entries = diff_trees(left, right, left_structure=created(left), right_structure=created(right))
    assert sorted(e.status.value for e in entries) == ["match", "renamed"]


def test_summary_lists_every_status():
    summary = summarize(diff_trees([rec("a")], [rec("a")]))
    assert set(summary) == {s.value for s in Status} | {"mismatches"} and summary["match"] == 1


def test_typed_key_equals_its_key_data():
    key = V(("rngs", "key"), "RngKey", (), "key<fry>", 1, 8)
    data = V(("rngs", "key"), None, (2,), "uint32", 2, 8)
    assert same_key_data(key, data)
    (entry,) = diff_trees([data], [key])
    assert entry.status is Status.MATCH
    same = compare_values(jax.random.key_data(jax.random.key(3)), jax.random.key(3))
    assert same.allclose and same.max_abs == 0


def test_compare_values_figures():
    v = compare_values(np.array([1.0, 2.0, 0.0, np.nan]), np.array([1.0, 2.5, 0.0, np.nan]))
    assert v.max_abs == 0.5 and v.max_rel == pytest.approx(0.2) and not v.allclose
    assert (v.nan_left, v.nan_right, v.inf_left, v.inf_right) == (1, 1, 0, 0)
    assert compare_values(np.ones(3), np.ones(3) + 1e-9).allclose
    assert not compare_values(np.ones(3), np.ones(3) + 1e-3, Tolerance(rtol=1e-5, atol=1e-8)).allclose
    assert compare_values(np.ones(3), np.ones(3) + 1e-3, Tolerance(rtol=1e-2, atol=0)).allclose


def test_values_find_a_changed_weight(write_model):
    path = write_model("""
        from sample_models.block_nnx import Model
        from flax import nnx
        def make():
            model = Model(784, 256, 10, rngs=nnx.Rngs(0))
            model.linear.bias[...] = model.linear.bias[...] + 1.0
            return model
    """)
    a, b = load_source("sample:block:nnx"), load_source(f"{path}:make")
    entries = diff_trees(a.records, b.records, rng_one_sided=False, values=(a.read, b.read))
    (entry,) = [e for e in entries if e.status is Status.VALUE]
    assert entry.left.name == "linear/bias" and entry.values.max_abs == pytest.approx(1.0)
    assert entry.values.max_rel == pytest.approx(1.0) and not entry.values.allclose
    assert entry.differences == ("value",) and summarize(entries)["mismatches"] == 1


def test_values_of_identical_sources_are_allclose():
    a, b = load_source("sample:counter:linen"), load_source("sample:counter:linen")
    entries = diff_trees(a.records, b.records, values=(a.read, b.read))
    assert all(e.values is not None and e.values.allclose and e.values.max_abs == 0 for e in entries)


def test_stacked_layer_axis_kept():
    entries = diff_sources("sample:scan_mlp:linen", "sample:scan_mlp:nnx")
    kernel = next(e for e in entries if e.left and e.left.name.endswith("kernel"))
    assert kernel.left.shape == kernel.right.shape == (5, 64, 64)


