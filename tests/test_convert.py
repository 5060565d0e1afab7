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


TRANSFORM_MODELS = """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class LinenAttn(nn.Module):
        @nn.compact
        def __call__(self, x):
            q = nn.Dense(4, use_bias=False, name="q")(x)
            k = nn.Dense(4, use_bias=False, name="k")(x)
            return nn.Dense(3, name="out")(jnp.concatenate([q, k], -1))

    class TorchLinear(nnx.Module):  # PyTorch layout: weight (out, in)
        def __init__(self, din, dout, rngs):
            self.weight = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (dout, din)))
            self.bias = nnx.Param(jnp.zeros((dout,)))

        def __call__(self, x):
            return x @ self.weight[...].T + self.bias[...]

    class FusedAttn(nnx.Module):
        def __init__(self, rngs):
            self.qk = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (5, 8)))  # an einsum kernel
            self.out = TorchLinear(8, 3, rngs)
            self.dropout = nnx.Dropout(0.1, rngs=rngs)

        def __call__(self, x):
            return self.out(self.dropout(jnp.einsum("bd,de->be", x, self.qk[...])))

    def linen():
        return LinenAttn(), (jax.random.normal(jax.random.key(1), (2, 5)),)

    def target():
        return FusedAttn(nnx.Rngs(0))
"""


def test_layout_transforms_are_applied_by_convert_and_by_the_emitted_converter(tmp_path, write_model):
    import importlib.util

    from inspector.align.transforms import Transform
    from inspector.convert_plan import plan_conversion
    from inspector.diffing import DiffEntry, Status
    from loaders import load_source
    from loaders.convert import emit_python, model_factory, write_converted

    path = write_model(TRANSFORM_MODELS)
    source, target = load_source(f"{path}:linen"), load_source(f"{path}:target", abstract=True)
    left = {r.name: r for r in source.records}
    right = {r.name: r for r in target.records}
    entries = [
        DiffEntry(Status.TRANSFORMED, left["q/kernel"], right["qk"], transform=Transform.concat(1),
                  left_parts=(left["q/kernel"], left["k/kernel"])),
        DiffEntry(Status.TRANSFORMED, left["out/kernel"], right["out/weight"], transform=Transform.transpose((1, 0))),
        DiffEntry(Status.RENAMED, left["out/bias"], right["out/bias"]),
        DiffEntry(Status.RNG_ONLY, None, right["dropout/rngs/key"]),
        DiffEntry(Status.RNG_ONLY, None, right["dropout/rngs/count"]),
    ]
    plan = plan_conversion(entries)
    assert plan.ok and len(plan.transformed) == 2
    make_model = model_factory(f"{path}:target")
    out_dir = write_converted(plan, source, target, str(tmp_path / "nnx"), make_model=make_model)
    model = restore(out_dir, make_model)
    model.eval()
    x = source.example.infer.args[0]
    expected = source.example.module.apply(source.variables, x)
    assert float(np.max(np.abs(np.asarray(model(x)) - np.asarray(expected)))) <= 1e-5

    script = tmp_path / "converter.py"
    script.write_text(emit_python(plan, source, make_model))
    assert 'out["qk"] = np.concatenate([t["params"]["q"]["kernel"], t["params"]["k"]["kernel"]], axis=1)' \
        in script.read_text()
    spec = importlib.util.spec_from_file_location("emitted_converter", script)
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    converted = emitted.convert(jax.device_get(dict(source.variables)))
    stored = stored_arrays(out_dir)
    np.testing.assert_array_equal(converted["qk"], stored["['qk']['value']"])
    np.testing.assert_array_equal(converted["out"]["weight"], stored["['out']['weight']['value']"])
    np.testing.assert_array_equal(jax.random.key_data(converted["dropout"]["rngs"]["key"]),
                                  stored["['dropout']['rngs']['key']['value']"])


def test_port_with_trained_weights_from_a_checkpoint(cli, tmp_path):
    state = linen_train_state(steps=3)
    source = write_standard(tmp_path / "train", {"params": state.params, "opt_state": state.opt_state,
                                                 "step": state.step})
    out_dir = tmp_path / "nnx"
    code, out, err = cli("port", "sample:block:linen", "sample:block:nnx", "--weights", str(source),
                         "--out", str(out_dir), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["match"]
    model = restore(out_dir, SAMPLES["block"].module("nnx").example().build)
    np.testing.assert_array_equal(np.asarray(model.linear.kernel[...]),
                                  np.asarray(state.params["params"]["Dense_0"]["kernel"]))  # trained, not init

    other = write_standard(tmp_path / "counter", linen_variables("counter"))
    code, _, err = cli("port", "sample:block:linen", "sample:block:nnx", "--weights", str(other))
    assert code == 2 and "does not fill the Linen model" in err.strip().splitlines()[-1]


def test_a_conversion_that_fails_midway_leaves_no_output_and_no_leftovers(tmp_path):
    import dataclasses

    from inspector.errors import CheckpointError
    from loaders import load_source
    from loaders.convert import model_factory, plan_sources, write_converted

    source = load_source(str(write_standard(tmp_path / "linen", linen_variables("block"))))
    target = load_source("sample:block:nnx", abstract=True)
    plan, _, _ = plan_sources(source, target)
    reads = []

    def failing(record):
        reads.append(record)
        if len(reads) == 3:
            raise CheckpointError(f"checkpoint: reading {record.full_name!r} failed (a truncated file)")
        return source.read(record)

    broken = dataclasses.replace(source, reader=failing)
    with pytest.raises(CheckpointError, match="truncated"):
        write_converted(plan, broken, target, str(tmp_path / "nnx"), make_model=model_factory("sample:block:nnx"))
    assert sorted(os.listdir(tmp_path)) == ["linen"]


def test_progress_line_counts_arrays_and_bytes(cli, tmp_path, monkeypatch):
    import io

    from loaders.convert import terminal_progress

    stream = io.StringIO()
    show = terminal_progress(stream)
    show(1, 2, 1024)
    show(2, 2, 3 * 2**20)
    assert stream.getvalue().startswith("\rconverting 1/2 arrays, 1.0 KiB, ") and stream.getvalue().endswith("/s\n")
    # not a terminal (as under pytest): nothing but the report, on stdout
    code, _, err = cli("convert", "sample:counter:linen", "sample:counter:nnx", "--out", str(tmp_path / "o"))
    assert code == 0 and "converting" not in err
