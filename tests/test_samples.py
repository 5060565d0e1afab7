"""Every guide example, in both forms: the variables the guide shows, and a real forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from loaders import load_source
from sample_models import FORMS, SAMPLES

P, B = "Param", "BatchStat"
EXPECTED = {
    ("block", "linen"): {
        ("params", "Block_0/Dense_0/kernel"): (P, (784, 256)), ("params", "Block_0/Dense_0/bias"): (P, (256,)),
        ("params", "Dense_0/kernel"): (P, (256, 10)), ("params", "Dense_0/bias"): (P, (10,))},
    ("block", "nnx"): {
        (None, "block/linear/kernel"): (P, (784, 256)), (None, "block/linear/bias"): (P, (256,)),
        (None, "linear/kernel"): (P, (256, 10)), (None, "linear/bias"): (P, (10,)),
        (None, "block/dropout/rngs/key"): ("RngKey", ()), (None, "block/dropout/rngs/count"): ("RngCount", ())},
    ("counter", "linen"): {
        ("params", "dense/kernel"): (P, (4, 4)), ("params", "dense/bias"): (P, (4,)),
        ("params", "batchnorm/scale"): (P, (4,)), ("params", "batchnorm/bias"): (P, (4,)),
        ("batch_stats", "batchnorm/mean"): (B, (4,)), ("batch_stats", "batchnorm/var"): (B, (4,)),
        ("counter", "count"): ("counter", ())},
    ("counter", "nnx"): {
        (None, "linear/kernel"): (P, (4, 4)), (None, "linear/bias"): (P, (4,)),
        (None, "batchnorm/scale"): (P, (4,)), (None, "batchnorm/bias"): (P, (4,)),
        (None, "batchnorm/mean"): (B, (4,)), (None, "batchnorm/var"): (B, (4,)),
        (None, "count"): ("Counter", ())},
    ("autoencoder", "linen"): {
        ("params", "encoder/kernel"): (P, (784, 256)), ("params", "encoder/bias"): (P, (256,)),
        ("params", "decoder/kernel"): (P, (256, 784)), ("params", "decoder/bias"): (P, (784,))},
    ("autoencoder", "nnx"): {
        (None, "encoder/kernel"): (P, (784, 256)), (None, "encoder/bias"): (P, (256,)),
        (None, "decoder/kernel"): (P, (256, 784)), (None, "decoder/bias"): (P, (784,))},
    ("rnn", "linen"): {
        ("params", "ScanRNNCell_0/Dense_0/kernel"): (P, (96, 64)),
        ("params", "ScanRNNCell_0/Dense_0/bias"): (P, (64,))},
    ("rnn", "nnx"): {(None, "cell/linear/kernel"): (P, (96, 64)), (None, "cell/linear/bias"): (P, (64,))},
    ("scan_mlp", "linen"): {
        ("params", "ScanBlock_0/Dense_0/kernel"): (P, (5, 64, 64)),
        ("params", "ScanBlock_0/Dense_0/bias"): (P, (5, 64))},
    ("scan_mlp", "nnx"): {
        (None, "blocks/linear/kernel"): (P, (5, 64, 64)), (None, "blocks/linear/bias"): (P, (5, 64)),
        (None, "blocks/dropout/rngs/key"): ("RngKey", (5,)), (None, "blocks/dropout/rngs/count"): ("RngCount", (5,))},
    ("trainstate", "linen"): {
        ("params", "kernel"): (P, (784, 10)), ("params", "bias"): (P, (10,)),
        (None, "opt_state/0/count"): ("OptState", ()), (None, "opt_state/0/mu/kernel"): ("OptState", (784, 10)),
        (None, "opt_state/0/mu/bias"): ("OptState", (10,)), (None, "opt_state/0/nu/kernel"): ("OptState", (784, 10)),
        (None, "opt_state/0/nu/bias"): ("OptState", (10,)), (None, "step"): ("OptState", ())},
    ("trainstate", "nnx"): {
        (None, "kernel"): (P, (784, 10)), (None, "bias"): (P, (10,)),
        (None, "opt_state/0/count"): ("OptState", ()), (None, "opt_state/0/mu/kernel"): ("OptState", (784, 10)),
        (None, "opt_state/0/mu/bias"): ("OptState", (10,)), (None, "opt_state/0/nu/kernel"): ("OptState", (784, 10)),
        (None, "opt_state/0/nu/bias"): ("OptState", (10,)), (None, "step"): ("OptState", ())},
    ("sow", "linen"): {
        ("params", "Dense_0/kernel"): (P, (8, 16)), ("params", "Dense_0/bias"): (P, (16,)),
        ("params", "Dense_1/kernel"): (P, (16, 4)), ("params", "Dense_1/bias"): (P, (4,)),
        ("intermediates", "hidden/0"): ("Intermediate", (1, 16))},
    ("sow", "nnx"): {
        (None, "linear1/kernel"): (P, (8, 16)), (None, "linear1/bias"): (P, (16,)),
        (None, "linear2/kernel"): (P, (16, 4)), (None, "linear2/bias"): (P, (4,)),
        (None, "hidden/0"): ("Intermediate", (1, 16))},
}
SHARDED = {**{f"attn/{p}/kernel": (64, 4, 16) for p in ("query", "key", "value")},
           **{f"attn/{p}/bias": (4, 16) for p in ("query", "key", "value")},
           "attn/out/kernel": (4, 16, 64), "attn/out/bias": (64,), "ln1/scale": (64,), "ln1/bias": (64,),
           "ln2/scale": (64,), "ln2/bias": (64,), "mlp_in/kernel": (64, 256), "mlp_in/bias": (256,),
           "mlp_out/kernel": (256, 64), "mlp_out/bias": (64,)}
EXPECTED["sharded", "linen"] = {("params", path): (P, shape) for path, shape in SHARDED.items()}
EXPECTED["sharded", "nnx"] = {(None, path): (P, shape) for path, shape in SHARDED.items()}
CASES = [(name, form) for name in SAMPLES for form in FORMS]


def test_every_sample_has_expectations():
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name,form", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_sample_records(name, form):
    src = load_source(f"sample:{name}:{form}")
    got = {(r.collection, r.name): (r.type, r.shape) for r in src.records}
    assert got == EXPECTED[name, form]
    for r in src.records:
        assert r.size == int(np.prod(r.shape)) and r.nbytes > 0


@pytest.mark.parametrize("name,form", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_abstract_gives_the_same_records(name, form):
    concrete = load_source(f"sample:{name}:{form}")
    abstract = load_source(f"sample:{name}:{form}", abstract=True)
    view = lambda src: [(r.collection, r.path, r.type, r.shape, r.dtype) for r in src.records]  # noqa: E731
    assert view(abstract) == view(concrete)
    assert all(isinstance(v, jax.ShapeDtypeStruct) for v in abstract.values.values())


def test_guide_asserts_block():
    linen = load_source("sample:block:linen").variables["params"]
    assert linen["Dense_0"]["bias"].shape == (10,)
    assert linen["Block_0"]["Dense_0"]["kernel"].shape == (784, 256)
    model = load_source("sample:block:nnx").model
    assert model.linear.bias[...].shape == (10,)
    assert model.block.linear.kernel[...].shape == (784, 256)


def test_guide_counter_values():
    linen = load_source("sample:counter:linen").variables
    assert int(linen["counter"]["count"]) == 1  # init ran once with training=True
    model = load_source("sample:counter:nnx").model
    graphdef, params, batch_stats, count = nnx.split(
        model, nnx.Param, nnx.BatchStat, type(model.count))
    assert set(params.keys()) == {"batchnorm", "linear"} and set(count.keys()) == {"count"}
    model = nnx.merge(graphdef, params, batch_stats, count)
    model(jnp.ones((2, 4)))
    assert int(model.count[...]) == 1


@pytest.mark.parametrize("name", list(SAMPLES))
def test_forward_pass_both_forms(name):
    linen = load_source(f"sample:{name}:linen")
    ex = linen.example
    out = ex.module.apply(linen.variables, *ex.infer.args, **ex.infer.kwargs,
                          mutable=list(ex.mutable) or False)
    y_linen = out[0] if ex.mutable else out
    nnx_src = load_source(f"sample:{name}:nnx")
    nnx_src.model.eval()
    run = nnx_src.model
    if nnx_src.example.capture:  # sow outside nnx.capture is deprecated
        run = lambda *a, **k: nnx.capture(nnx_src.model, *nnx_src.example.capture)(*a, **k)[0]  # noqa: E731
    y_nnx = run(*nnx_src.example.infer.args, **nnx_src.example.infer.kwargs)
    assert jnp.shape(y_linen) == jnp.shape(y_nnx)
    assert bool(jnp.all(jnp.isfinite(y_nnx)))


def test_train_step_block():
    from sample_models import block_linen, block_nnx

    src = load_source("sample:block:linen")
    x, labels = jnp.ones((1, 784)), jnp.zeros((1,), jnp.int32)
    step = block_linen.make_train_step(src.model)
    params = step(jax.random.key(1), src.variables["params"], x, labels)
    assert not np.allclose(params["Dense_0"]["kernel"], src.variables["params"]["Dense_0"]["kernel"])
    model = load_source("sample:block:nnx").model
    before = np.asarray(model.linear.kernel[...])
    model.train()
    block_nnx.train_step(model, x, labels)
    assert not np.allclose(before, model.linear.kernel[...])


def test_train_step_scan_mlp_splits_dropout():
    from sample_models import scan_mlp_linen, scan_mlp_nnx

    src = load_source("sample:scan_mlp:linen")
    x, labels = jnp.ones((1, 64)), jnp.zeros((1,), jnp.int32)
    params = scan_mlp_linen.make_train_step(src.model)(jax.random.key(1), src.variables["params"], x, labels)
    assert params["ScanBlock_0"]["Dense_0"]["kernel"].shape == (5, 64, 64)
    model = load_source("sample:scan_mlp:nnx").model
    model.train()
    scan_mlp_nnx.train_step(model, x, labels)
    assert model.blocks.dropout.rngs.count[...].tolist() == [1] * 5


def test_train_step_trainstate():
    from sample_models import trainstate_linen, trainstate_nnx

    x, labels = jnp.ones((1, 784)), jnp.zeros((1,), jnp.int32)
    state = trainstate_linen.train_step(jax.random.key(0), load_source("sample:trainstate:linen").obj, x, labels)
    assert int(state.step) == 1
    state = trainstate_nnx.train_step(load_source("sample:trainstate:nnx").obj, x, labels)
    assert int(state.step) == 1
