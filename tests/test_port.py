"""Port check: Linen weights moved into the NNX model give the same outputs, or the tool says why not."""

from __future__ import annotations

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from loaders import load_source
from loaders.porting import port_sources
from sample_models import SAMPLES

CASES = "tests/models/port_cases.py"


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_seed_port_matches(name):
    report, state = port_sources(load_source(f"sample:{name}:linen"), load_source(f"sample:{name}:nnx"))
    assert report.ok and not report.refused and state is not None
    assert report.outputs and all(o.max_abs <= 1e-5 for o in report.outputs)


@pytest.mark.parametrize("port", ["swapped", "transposed"])
def test_structurally_clean_but_wrong_ports_are_caught(cli, port):
    # Without the forward pass, names and creation order are all there is (with it, both are
    # paired right and proven: tests/test_dataflow.py).
    code, out, _ = cli("diff", f"{CASES}:linen", f"{CASES}:{port}", "--format", "json", "--no-trace")
    assert code == 0 and json.loads(out)["summary"]["mismatches"] == 0
    code, out, _ = cli("port", f"{CASES}:linen", f"{CASES}:{port}", "--format", "json", "--no-trace")
    data = json.loads(out)
    assert code == 1 and data["match"] is False and data["converted"] == 6
    assert [o["allclose"] for o in data["outputs"]] == [False] and data["outputs"][0]["max_abs"] > 0.01


def test_good_port_with_dropout_in_training_inputs_is_run_in_inference_mode(cli):
    code, out, _ = cli("port", f"{CASES}:linen", f"{CASES}:good", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["match"] and data["outputs"][0]["path"] == ""


def test_refusal_lists_every_problem(cli):
    code, out, _ = cli("port", "tests/models/broken_ports.py:linen", "tests/models/broken_ports.py:wrong_width",
                       "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["outputs"] == []
    assert sorted((r["status"], r["left"]) for r in data["refused"]) == [
        ("shape_mismatch", "params/Dense_1/bias"), ("shape_mismatch", "params/Dense_1/kernel"),
        ("shape_mismatch", "params/Dense_2/kernel")]
    assert "shape (256, 128) vs (256, 100)" in {r["reason"] for r in data["refused"]}


def test_written_checkpoint_restores_and_gives_the_same_outputs(cli, tmp_path):
    out_dir = tmp_path / "converted"
    code, out, _ = cli("port", "sample:counter:linen", "sample:counter:nnx", "--out", str(out_dir),
                       "--format", "json")
    assert code == 0 and json.loads(out)["out"] == str(out_dir)
    from sample_models.counter_nnx import Block

    graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: Block(4, 4, rngs=nnx.Rngs(0))))
    restored = nnx.merge(graphdef, ocp.StandardCheckpointer().restore(out_dir, abstract_state))
    linen = load_source("sample:counter:linen")
    ex = linen.example
    expected, _ = ex.module.apply(linen.variables, *ex.infer.args, **ex.infer.kwargs,
                                  mutable=["batch_stats", "counter"])
    assert int(restored.count[...]) == int(linen.variables["counter"]["count"])
    restored.eval()
    np.testing.assert_allclose(restored(*ex.infer.args), expected, atol=1e-5, rtol=1e-5)

    code, _, err = cli("port", "sample:counter:linen", "sample:counter:nnx", "--out", str(out_dir))
    assert code == 2 and "exists" in err.strip().splitlines()[-1]
    code, _, _ = cli("port", "sample:counter:linen", "sample:counter:nnx", "--out", str(out_dir), "--force")
    assert code == 0


def test_port_leaves_the_loaded_model_untouched():
    target = load_source("sample:block:nnx")
    before = np.asarray(target.model.linear.kernel[...])
    port_sources(load_source("sample:block:linen"), target)
    np.testing.assert_array_equal(before, target.model.linear.kernel[...])


@pytest.mark.parametrize("argv,message", [
    (["port", f"{CASES}:linen", f"{CASES}:state_only"], "is not an NNX module"),
    (["port", "sample:block:nnx", "sample:block:nnx"], "is not a runnable Linen model"),
    (["port", "sample:block:linen", "sample:block:nnx", "--rules", "nope.json"], "cannot be read"),
], ids=["nnx-state", "nnx-as-linen", "missing-rules"])
def test_bad_input_exits_2(cli, argv, message):
    code, out, err = cli(*argv)
    assert code == 2 and out == "" and message in err.strip().splitlines()[-1]


def test_keys_are_typed():
    assert jax.dtypes.issubdtype(load_source("sample:block:nnx").model.block.dropout.rngs.key[...].dtype,
                                 jax.dtypes.prng_key)


def test_force_never_deletes_a_folder_that_is_not_a_checkpoint(cli, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("important")
    code, _, err = cli("port", "sample:block:linen", "sample:block:nnx", "--out", str(precious), "--force")
    assert code == 2 and "not an Orbax checkpoint" in err.strip().splitlines()[-1]
    assert (precious / "notes.txt").read_text() == "important"
