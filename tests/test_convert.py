"""convert: real Orbax checkpoints and msgpack files in, a checkpoint the README recipe restores out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx, serialization

from inspector.port_check import run_linen, run_nnx
from sample_models import SAMPLES
from sample_models.checkpoints import linen_train_state, linen_variables, write_standard


def restore(out_dir: Path, make_model) -> nnx.Module:
    """The README recipe, verbatim."""
    graphdef, abstract = nnx.split(nnx.eval_shape(make_model))
    return nnx.merge(graphdef, ocp.StandardCheckpointer().restore(out_dir, abstract))


def assert_same_outputs(name: str, variables, model: nnx.Module) -> None:
    linen_example = SAMPLES[name].module("linen").example()
    nnx_example = SAMPLES[name].module("nnx").example()
    expected = run_linen(linen_example, variables)
    got = run_nnx(nnx_example, model, linen_example.infer)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        assert float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) <= 1e-5


def stored_arrays(directory: Path) -> dict[str, np.ndarray]:
    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(directory.absolute())
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): np.asarray(jax.random.key_data(v) if jax.dtypes.issubdtype(
        v.dtype, jax.dtypes.prng_key) else v) for p, v in flat}


@pytest.mark.parametrize("name", ["counter", "block", "scan_mlp"], ids=["batchnorm+counter", "block", "scan"])
def test_linen_checkpoint_restores_into_nnx_with_the_same_outputs(cli, tmp_path, name):
    variables = linen_variables(name)
    source = write_standard(tmp_path / "linen", variables)
    out_dir = tmp_path / "nnx"
    code, out, err = cli("convert", str(source), f"sample:{name}:nnx", "--out", str(out_dir), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["out"] == str(out_dir) and not report["refused"]
    assert not any(p.name.startswith(("nnx__converting", "nnx.partial")) for p in tmp_path.iterdir())
    model = restore(out_dir, SAMPLES[name].module("nnx").example().build)
    assert_same_outputs(name, variables, model)


def test_trainstate_checkpoint_converts_params_and_lists_the_optimizer_state(cli, tmp_path):
    state = linen_train_state(steps=2)
    source = write_standard(tmp_path / "train", {"params": state.params, "opt_state": state.opt_state,
                                                 "step": state.step})
    out_dir = tmp_path / "nnx"
    code, out, err = cli("convert", str(source), "sample:block:nnx", "--out", str(out_dir), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    not_converted = {n["path"] for n in report["not_converted"]}
    assert "step" in not_converted and any(p.startswith("opt_state/0/mu/") for p in not_converted)
    assert {m["left"] for m in report["mapped"]} == {"params/Block_0/Dense_0/kernel", "params/Block_0/Dense_0/bias",
                                                      "params/Dense_0/kernel", "params/Dense_0/bias"}
    assert report["rng"] == ["block/dropout/rngs/count", "block/dropout/rngs/key"]
    model = restore(out_dir, SAMPLES["block"].module("nnx").example().build)
    assert_same_outputs("block", state.params, model)
    trained = np.asarray(state.params["params"]["Dense_0"]["kernel"])
    np.testing.assert_array_equal(np.asarray(model.linear.kernel[...]), trained)


def test_msgpack_file_converts_with_a_cast(cli, tmp_path):
    variables = linen_variables("counter")
    source = tmp_path / "counter.msgpack"
    source.write_bytes(serialization.to_bytes(variables))
    out_dir = tmp_path / "nnx"
    code, out, err = cli("convert", str(source), "sample:counter:nnx", "--out", str(out_dir), "--dtype", "bfloat16",
                         "--format", "json")
    assert code == 0, err
    casts = {c["right"]: (c["from"], c["to"]) for c in json.loads(out)["casts"]}
    assert casts["linear/kernel"] == ("float32", "bfloat16") and "count" not in casts
    arrays = stored_arrays(out_dir)
    assert arrays["['linear']['kernel']['value']"].dtype.name == "bfloat16"
    assert arrays["['count']['value']"].dtype == np.int32


def test_a_target_the_weights_cannot_fill_is_refused_and_nothing_is_written(cli, tmp_path):
    source = write_standard(tmp_path / "linen", linen_variables("block"))
    out_dir = tmp_path / "nnx"
    code, out, _ = cli("convert", str(source), "sample:counter:nnx", "--out", str(out_dir), "--format", "json")
    assert code == 1 and not out_dir.exists()
    report = json.loads(out)
    assert not report["ok"] and report["out"] is None
    refused = {(r["status"], r["left"], r["right"]) for r in report["refused"]}
    assert ("right_only", None, "count") in refused
    assert all(r["nearest"] for r in report["refused"] if r["left"] is None or r["right"] is None)
    assert sorted(os.listdir(tmp_path)) == ["linen"]
    code, out, _ = cli("convert", str(source), "sample:counter:nnx", "--out", str(out_dir))
    assert code == 1 and out.splitlines()[2].startswith("REFUSED") and "nearest" in out


def test_allow_missing_keeps_the_targets_initial_value(cli, tmp_path, write_model):
    model_file = write_model("""
        import flax.linen as nn
        import jax.numpy as jnp
        from flax import nnx

        class Small(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(3, name="proj")(x)

        class Adapted(nnx.Module):
            def __init__(self, rngs):
                self.proj = nnx.Linear(2, 3, rngs=rngs)
                self.lora = nnx.Param(jnp.full((3,), 7.0))

        def linen():
            return Small(), (jnp.ones((1, 2)),)

        def target():
            return Adapted(nnx.Rngs(0))
    """)
    out_dir = tmp_path / "out"
    code, out, _ = cli("convert", f"{model_file}:linen", f"{model_file}:target", "--out", str(out_dir))
    assert code == 1 and "lora" in out and not out_dir.exists()
    code, out, err = cli("convert", f"{model_file}:linen", f"{model_file}:target", "--out", str(out_dir),
                         "--allow-missing", "^lora$")
    assert code == 0, err
    assert "allowed (missing): lora" in out
    np.testing.assert_array_equal(stored_arrays(out_dir)["['lora']['value']"], np.full((3,), 7.0, np.float32))


@pytest.mark.parametrize("make_out, message", [
    (lambda tmp, src: src, "would write into or replace the source"),
    (lambda tmp, src: src / "inside", "would write into or replace the source"),
    (lambda tmp, src: tmp, "would write into or replace the source"),
    (lambda tmp, src: tmp / "notes", "exists; choose a new one or pass --force"),
], ids=["the source", "inside the source", "a parent of the source", "an existing folder"])
def test_outputs_that_would_touch_the_source_or_exist_are_refused(cli, tmp_path, make_out, message):
    source = write_standard(tmp_path / "linen", linen_variables("block"))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    code, _, err = cli("convert", str(source), "sample:block:nnx", "--out", str(make_out(tmp_path, source)),
                       "--force" if "force" not in message else "--format=table")
    assert code == 2 and message in err.strip().splitlines()[-1]
    assert (tmp_path / "notes" / "todo.txt").exists() and (source / "_METADATA").exists()


def test_force_replaces_a_checkpoint_but_never_another_folder(cli, tmp_path):
    source = write_standard(tmp_path / "linen", linen_variables("block"))
    out_dir = tmp_path / "nnx"
    assert cli("convert", str(source), "sample:block:nnx", "--out", str(out_dir))[0] == 0
    assert cli("convert", str(source), "sample:block:nnx", "--out", str(out_dir))[0] == 2
    assert cli("convert", str(source), "sample:block:nnx", "--out", str(out_dir), "--force")[0] == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    code, _, err = cli("convert", str(source), "sample:block:nnx", "--out", str(tmp_path / "notes"), "--force")
    assert code == 2 and "not an Orbax checkpoint" in err and (tmp_path / "notes" / "todo.txt").exists()


def test_emitted_converter_runs_where_this_project_is_not_importable(cli, tmp_path):
    state = linen_train_state(steps=1)
    source = write_standard(tmp_path / "train", {"params": state.params, "opt_state": state.opt_state,
                                                 "step": state.step})
    out_dir, script = tmp_path / "nnx", tmp_path / "work" / "block_converter.py"
    script.parent.mkdir()
    code, _, err = cli("convert", str(source), "sample:block:nnx", "--out", str(out_dir), "--emit-python", str(script))
    assert code == 0, err
    text = script.read_text()
    assert 'out["block"]["linear"]["kernel"] = t["params"]["params"]["Block_0"]["Dense_0"]["kernel"]' in text
    assert "inspector" not in text.replace("Flax State Inspector", "") and "loaders" not in text
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    run = subprocess.run([sys.executable, "-I", str(script), str(source), str(tmp_path / "emitted")],
                         cwd=script.parent, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    probe = subprocess.run([sys.executable, "-I", "-c", "import inspector.convert_plan"], cwd=script.parent,
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0  # the emitted converter really ran without this project
    ours, theirs = stored_arrays(out_dir), stored_arrays(tmp_path / "emitted")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        assert ours[key].dtype == theirs[key].dtype, key
    assert_same_outputs("block", state.params, restore(tmp_path / "emitted", SAMPLES["block"].module("nnx")
                                                       .example().build))
