"""Training-step port check: ports exact in inference but wrong in training are caught, variable by variable."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from inspector.align.transforms import Transform
from inspector.diffing import DiffEntry, Status, Tolerance
from inspector.errors import PortError
from inspector.example import Inputs, LinenExample
from inspector.port_check import weight_records
from inspector.records import VariableRecord
from inspector.training import check_training, compare_mapped, linen_value, parse_train_args
from loaders import load_source
from loaders.porting import port_sources, train_sources

M = "tests/models/train_ports.py"
ALL_GRADS = {"fc1/kernel", "fc1/bias", "head/kernel", "head/bias", "fc2/kernel", "fc2/bias", "bn/scale",
             "bn/bias", "aux/kernel", "aux/bias", "temperature"}


def _train(cli, linen, port, *extra):
    code, out, err = cli("port", f"{M}:{linen}", f"{M}:{port}", "--train", "--format", "json", *extra)
    assert out, err
    return code, json.loads(out)


def _differing(items):
    return {d["path"] for d in items if not d["allclose"]}


@pytest.mark.parametrize("port,loss_differs,gradients,state", [
    ("momentum", False, set(), {"bn/mean", "bn/var"}),
    ("frozen", False, {"fc1/kernel", "fc1/bias"}, set()),
    ("linen_flag", True, ALL_GRADS - {"head/kernel", "head/bias", "temperature"}, {"bn/mean", "bn/var"}),
], ids=["batchnorm-momentum", "stop-gradient", "batchnorm-left-in-inference"])
def test_ports_exact_in_inference_but_wrong_in_training_are_caught(cli, port, loss_differs, gradients, state):
    code, data = _train(cli, "linen", port)
    assert code == 1 and data["match"] is True  # the forward check alone passes
    train = data["train"]
    assert train["match"] is False and train["loss"]["allclose"] is (not loss_differs)
    assert _differing(train["gradients"]) == gradients
    assert _differing(train["state"]) == state
    assert _differing(train["weights"]) == gradients  # one SGD step: w - lr * g
    assert {d["path"] for d in train["gradients"]} == ALL_GRADS
    differing = [d for d in train["gradients"] + train["state"] if not d["allclose"]]
    assert all(d["max_abs"] > 1e-3 for d in differing)
    assert any("__call__ takes train" in n for n in train["notes"]) is (port == "linen_flag")
    firsts = [d["max_abs"] for d in train["gradients"]][:len(gradients)]
    assert firsts == sorted(firsts, reverse=True)  # what differs first, largest first


def test_correct_port_with_dropout_and_batchnorm_trains_the_same(cli):
    code, data = _train(cli, "linen", "good")
    train = data["train"]
    assert code == 0 and data["match"] and train["match"]
    assert train["loss"]["linen"] == pytest.approx(train["loss"]["nnx"], abs=1e-6) and train["loss"]["linen"] > 0
    assert {d["path"] for d in train["state"]} == {"bn/mean", "bn/var"}
    assert {(d["path"], d["linen"]) for d in train["gradients"]} >= {("fc1/kernel", "params/fc1/kernel"),
                                                                      ("temperature", "params/temperature")}
    assert set(train) >= {"loss", "gradients", "state", "notes"}
    assert set(train["gradients"][0]) == {"path", "linen", "max_abs", "max_rel", "allclose"}
    assert "train=True (call argument)" in train["notes"][0]


@pytest.mark.parametrize("name", ["block", "counter", "scan_mlp", "trainstate"])
def test_seed_ports_train_the_same(name):
    linen, target = load_source(f"sample:{name}:linen"), load_source(f"sample:{name}:nnx")
    report, state = port_sources(linen, target)
    trained = train_sources(linen, target, report, state)
    assert trained.ok and trained.gradients and trained.loss.linen > 0, trained.to_json()
    assert all(d.max_abs < 1e-5 for d in trained.gradients + trained.weights + trained.state)
    if name == "counter":
        assert {d.path for d in trained.state} == {"batchnorm/mean", "batchnorm/var", "count"}


def test_attribute_flag_several_steps_and_sum_square(cli):  # beyond EAGER_STEPS: the compiled step
    code, mean = _train(cli, "classifier", "classifier_port")
    assert code == 0 and "deterministic=False (attribute)" in mean["train"]["notes"][0]
    code, total = _train(cli, "classifier", "classifier_port", "--loss", "sum_square", "--steps", "5",
                         "--lr", "0.1")
    train = total["train"]
    assert code == 0 and train["steps"] == 5 and train["lr"] == 0.1 and train["loss_kind"] == "sum_square"
    assert train["loss"]["linen"] == pytest.approx(16 * mean["train"]["loss"]["linen"], rel=1e-5)  # (8, 2) output


def test_stop_gradient_after_several_steps_spreads_to_every_weight(cli):
    code, data = _train(cli, "linen", "frozen", "--steps", "3", "--lr", "0.1")
    assert code == 1 and _differing(data["train"]["gradients"]) == {"fc1/kernel", "fc1/bias"}
    # fc2's bias feeds a BatchNorm in training mode, which subtracts the batch mean: its gradient is 0
    assert _differing(data["train"]["weights"]) == ALL_GRADS - {"fc2/bias"}


def test_missing_train_flag_exits_2_with_the_fix_and_train_arg_fixes_it(cli):
    code, out, err = cli("port", f"{M}:stem", f"{M}:stem_port", "--train")
    last = err.strip().splitlines()[-1]
    assert code == 2 and out == "" and last.startswith("error:")
    assert "BatchNorm BatchNorm_0" in last and "--train-arg NAME=JSON" in last
    code, data = _train(cli, "stem", "stem_port", "--train-arg", "is_training=true")
    assert code == 0 and data["train"]["match"] and _differing(data["train"]["state"]) == set()
    assert {d["path"] for d in data["train"]["state"]} == {"BatchNorm_0/mean", "BatchNorm_0/var"}


@pytest.mark.parametrize("arg,message", [
    ("is_trainin=true", "did you mean 'is_training'?"),
    ("is_training", "is not NAME=JSON"),
    ("is_training=yes", "is not JSON"),
], ids=["misspelled", "no-value", "not-json"])
def test_bad_train_arg_exits_2(cli, arg, message):
    code, out, err = cli("port", f"{M}:stem", f"{M}:stem_port", "--train", "--train-arg", arg)
    assert code == 2 and out == "" and message in err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv,message", [
    (["--steps", "3"], "--steps only apply to the training check: add --train"),
    (["--train", "--steps", "0"], "must be at least 1"),
    (["--train", "--loss", "l1"], "invalid choice: 'l1'"),
], ids=["steps-without-train", "zero-steps", "unknown-loss"])
def test_bad_training_options_exit_2(cli, argv, message):
    code, out, err = cli("port", f"{M}:classifier", f"{M}:classifier_port", *argv)
    assert code == 2 and out == "" and message in err.strip().splitlines()[-1]


def test_hand_written_dropout_is_named_in_a_note(cli):
    code, data = _train(cli, "noisy", "noisy_port")
    assert code == 1 and data["match"] and not data["train"]["loss"]["allclose"]
    assert any("randomness drawn by hand" in n for n in data["train"]["notes"])


def test_training_runs_when_the_forward_check_fails_and_not_when_refused(cli):
    code, out, _ = cli("port", "tests/models/port_cases.py:linen", "tests/models/port_cases.py:wrong_activation",
                       "--train", "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["match"] is False and data["train"]["match"] is False
    assert not data["train"]["loss"]["allclose"]
    code, out, _ = cli("port", "tests/models/broken_ports.py:linen", "tests/models/broken_ports.py:wrong_width",
                       "--train", "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["refused"] and data["train"] is None


def test_table_names_what_differs(cli):
    code, out, _ = cli("port", f"{M}:linen", f"{M}:momentum", "--train")
    assert code == 1 and "TRAINS DIFFERENTLY: 2 state variable(s) differ" in out
    assert "batch_stats/bn/var" in out and "gradients: 11 of 11 agree" in out


# -- gradients through layout transforms ----------------------------------------------------------

def _record(path, shape, collection=None, kind="Param"):
    return VariableRecord(tuple(path.split("/")), kind, shape, "float32", int(np.prod(shape)), 4 * int(np.prod(shape)),
                          collection)


def test_linen_value_applies_transpose_and_concat():
    q, k = _record("q/kernel", (3, 2), "params"), _record("k/kernel", (3, 2), "params")
    fused = _record("qk", (3, 4))
    values = {q.key: np.arange(6.0).reshape(3, 2), k.key: -np.arange(6.0).reshape(3, 2)}
    concat = DiffEntry(Status.TRANSFORMED, q, fused, transform=Transform.concat(1), left_parts=(q, k))
    np.testing.assert_array_equal(linen_value(concat, values), np.concatenate([values[q.key], values[k.key]], 1))
    pt = DiffEntry(Status.TRANSFORMED, q, _record("w", (2, 3)), transform=Transform.transpose((1, 0)))
    assert linen_value(pt, values).shape == (2, 3)
    diffs = compare_mapped([concat], values, {fused.key: np.zeros((3, 4))}, Tolerance(1e-5, 1e-5),
                           missing_left="", missing_right="")
    assert [(d.path, d.linen, d.allclose, d.max_abs) for d in diffs] == [
        ("qk", "params/q/kernel + params/k/kernel", False, 5.0)]


class Attention(nn.Module):
    @nn.compact
    def __call__(self, x):
        q, k = nn.Dense(4, name="q")(x), nn.Dense(4, name="k")(x)
        return nn.Dense(2, use_bias=False, name="out")(jnp.tanh(q * k))


class FusedAttention(nnx.Module):
    """q and k fused into one kernel; the output kernel stored (out, in), as PyTorch does."""

    def __init__(self, rngs: nnx.Rngs):
        self.qk = nnx.Param(jax.random.normal(rngs.params(), (6, 8)))
        self.qk_bias = nnx.Param(jnp.zeros((8,)))
        self.out = nnx.Param(jax.random.normal(rngs.params(), (2, 4)))

    def __call__(self, x):
        q, k = jnp.split(x @ self.qk[...] + self.qk_bias[...], 2, axis=-1)
        return jnp.tanh(q * k) @ self.out[...].T


def _fused_port(transposed_out: bool):
    x = jax.random.normal(jax.random.key(1), (5, 6))
    variables = Attention().init(jax.random.key(0), x)
    model = FusedAttention(nnx.Rngs(0))
    left = {r.full_name: r for r, _ in weight_records(variables)}
    right = {r.name: r for r, _ in weight_records(nnx.state(model))}
    parts = lambda name: (left[f"params/q/{name}"], left[f"params/k/{name}"])  # noqa: E731
    entries = [
        DiffEntry(Status.TRANSFORMED, left["params/q/kernel"], right["qk"], transform=Transform.concat(1),
                  left_parts=parts("kernel")),
        DiffEntry(Status.TRANSFORMED, left["params/q/bias"], right["qk_bias"], transform=Transform.concat(0),
                  left_parts=parts("bias")),
        DiffEntry(Status.TRANSFORMED, left["params/out/kernel"], right["out"],
                  transform=Transform.transpose((1, 0)) if transposed_out else Transform.reshape((2, 4))),
    ]
    values = {r.key: v for r, v in weight_records(variables)}
    # the converted weights, by hand: every entry's Linen arrays through its transform
    for e in entries:
        getattr(model, e.right.name)[...] = linen_value(e, values)
    example = LinenExample(Attention(), Inputs((x,)), Inputs((x,)))
    return check_training(example, variables, model, None, entries, steps=2), model


def test_gradients_map_through_concat_and_transpose():
    trained, _ = _fused_port(transposed_out=True)
    assert trained.ok, trained.to_json()
    assert {(d.path, d.linen) for d in trained.gradients} == {
        ("qk", "params/q/kernel + params/k/kernel"), ("qk_bias", "params/q/bias + params/k/bias"),
        ("out", "params/out/kernel")}
    assert all(d.max_abs > 0 or d.allclose for d in trained.gradients)


def test_a_wrong_transform_is_a_difference():
    trained, _ = _fused_port(transposed_out=False)  # reshape keeps the element order: not the transpose
    assert not trained.ok and "out" in {d.path for d in trained.gradients if not d.allclose}


def test_parse_train_args_and_unknown_loss():
    assert parse_train_args(["mode=\"train\"", "p=0.5"]) == {"mode": "train", "p": 0.5}
    linen = load_source(f"{M}:classifier")
    target = load_source(f"{M}:classifier_port")
    report, state = port_sources(linen, target)
    with pytest.raises(PortError, match="unknown loss 'l1'"):
        train_sources(linen, target, report, state, loss="l1")
