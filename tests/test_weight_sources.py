"""Weight files as sources of every command: diff, filter, split, steps, and the folder rules."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.test_weight_formats import save_legacy
from tests.weight_writers import (
    encoder_variables,
    hf_flax_folder,
    hf_safetensors_folder,
    torch_state_dict,
    write_msgpack,
    write_safetensors,
)

MODEL = "tests/weight_writers.py:make_encoder"


@pytest.fixture(scope="module")
def variables():
    return encoder_variables()


def test_diff_of_a_model_and_its_saved_weights_finds_no_mismatch(tmp_path, variables, cli):
    path = write_msgpack(tmp_path / "variables.msgpack", variables)
    code, out, _ = cli("diff", MODEL, str(path), "--values", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["summary"]["mismatches"] == 0 and len(data["entries"]) == 29
    assert all(e["allclose"] and e["max_abs"] == 0 for e in data["entries"])
    assert "restore" not in data  # the restore verdict is Orbax's


def test_diff_values_finds_a_changed_weight(tmp_path, variables, cli):
    changed = json.loads(json.dumps(variables, default=lambda a: np.asarray(a).tolist()))
    changed = {c: _arrays(t) for c, t in changed.items()}
    changed["params"]["1"]["Dense_0"]["kernel"][2, 3] += 0.5
    left = write_msgpack(tmp_path / "a.msgpack", variables)
    np.savez(tmp_path / "b.npz", **{"/".join(k): v for k, v in _flat(changed).items()})
    code, out, _ = cli("diff", str(left), str(tmp_path / "b.npz"), "--values", "--format", "json")
    data = json.loads(out)
    bad = [e for e in data["entries"] if e["status"] != "match"]
    assert code == 1 and [(e["status"], e["left"]["path"], e["max_abs"]) for e in bad] == \
        [("value_mismatch", "1/Dense_0/kernel", pytest.approx(0.5, abs=1e-6))]


def _arrays(tree):
    return {k: _arrays(v) if isinstance(v, dict) else np.asarray(v, np.float32) for k, v in tree.items()}


def _flat(tree, prefix=()):
    out = {}
    for k, v in tree.items():
        out |= _flat(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,): v}
    return out


def test_filter_and_split_on_a_weight_file(tmp_path, variables, cli):
    path = write_msgpack(tmp_path / "variables.msgpack", variables)
    code, out, _ = cli("filter", str(path), "nnx.BatchStat", "--format", "json")
    assert code == 0
    assert sorted(v["path"] for v in json.loads(out)["matches"]) == [
        "0/BatchNorm_0/mean", "0/BatchNorm_0/var", "1/BatchNorm_0/mean", "1/BatchNorm_0/var"]
    code, out, _ = cli("split", str(path), "nnx.Param; nnx.BatchStat", "--format", "json")
    data = json.loads(out)
    assert code == 0 and [len(g["variables"]) for g in data["groups"]] == [25, 4] and not data["remainder"]


def test_counter_only_for_pytorch_batchnorm_counters(tmp_path, cli):
    state = torch_state_dict()
    left = write_safetensors(tmp_path / "torch.safetensors", state)
    right = write_safetensors(tmp_path / "flax.safetensors",
                              {k: v for k, v in state.items() if "num_batches" not in k}, "flax")
    code, out, _ = cli("diff", str(left), str(right), "--format", "json")
    data = json.loads(out)
    counters = [e for e in data["entries"] if e["status"] == "counter_only"]
    assert code == 0 and data["summary"]["mismatches"] == 0 and len(counters) == 2
    assert counters[0]["left"]["type"] == "BatchCount" and "step counter" in counters[0]["info"][0]


def test_legacy_folder_steps_latest_and_at_step(tmp_path, variables, cli):
    folder = save_legacy(tmp_path / "ckpts", variables, orbax=False, steps=(5, 50, 500))
    (folder / "checkpoint_tmp").write_bytes(b"interrupted")
    os.utime(folder / "checkpoint_5", ns=(0, 1_700_000_000 * 10**9))
    code, out, _ = cli("steps", str(folder), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["latest"] == 500
    assert data["steps"][0] == {"step": 5, "items": [], "saved": "2023-11-14T22:13:20Z"}
    assert [s["step"] for s in data["steps"]] == [5, 50, 500]
    code, out, _ = cli("show", str(folder), "--format", "json")
    assert code == 0 and json.loads(out)["file"] | {"files": None} == {
        "format": "legacy", "path": str(folder / "checkpoint_500"), "files": None, "metadata": {},
        "step": 500, "steps": [5, 50, 500]}
    code, out, _ = cli("show", f"{folder}@50")
    assert code == 0 and "legacy file step 50 (of 5, 50, 500)" in out
    code, _, err = cli("show", f"{folder}@7")
    assert code == 2 and "has no checkpoint_7; its steps are 5, 50, 500" in err


def test_legacy_orbax_folder_is_read_by_orbax_with_its_restore_verdict(tmp_path, variables, cli):
    folder = save_legacy(tmp_path / "ckpts", variables, orbax=True, steps=(1, 2))
    code, out, _ = cli("show", str(folder))
    assert code == 0 and f"read: step 2 (latest of 1, 2), {folder / 'checkpoint_2'}" in out
    code, out, _ = cli("diff", "sample:block:linen", str(folder), "--format", "json")
    assert code == 1 and json.loads(out)["restore"] == "fails"
    code, out, _ = cli("steps", str(folder), "--format", "json")
    assert code == 0 and [s["items"] for s in json.loads(out)["steps"]] == [[], []]


@pytest.mark.parametrize("layout,fmt,count", [("flax", "msgpack", 25), ("flax-sharded", "msgpack", 29),
                                              ("safetensors", "safetensors", 19),
                                              ("safetensors-sharded", "safetensors", 19)],
                         ids=["flax", "flax-sharded", "safetensors", "safetensors-sharded"])
def test_model_folders(tmp_path, variables, cli, layout, fmt, count):
    folder = tmp_path / "model"
    if layout.startswith("flax"):
        hf_flax_folder(folder, variables if "sharded" in layout else variables["params"],
                       shards=3 if "sharded" in layout else 1)
    else:
        hf_safetensors_folder(folder, torch_state_dict(), shards=2 if "sharded" in layout else 1)
    code, out, _ = cli("show", str(folder), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["file"]["format"] == fmt and len(data["variables"]) == count
    assert len(data["file"]["files"]) == (3 if layout == "flax-sharded" else 2 if "sharded" in layout else 1)
    if "sharded" in layout:
        index = next(folder.glob("*.index.json"))
        code, out, _ = cli("show", str(index), "--format", "json")
        assert code == 0 and len(json.loads(out)["variables"]) == count


def test_folder_that_is_no_source_says_what_it_found(tmp_path, cli):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "README.md").write_text("weights")
    np.savez(folder / "weights.npz", w=np.zeros(2))
    code, out, err = cli("show", str(folder))
    line = err.strip().splitlines()[-1]
    assert code == 2 and out == "" and line.startswith("error:")
    assert "is not an Orbax checkpoint" in line and "checkpoint_<N>" in line and "flax_model.msgpack" in line
    assert "(found: README.md, weights.npz)" in line and f"{str(folder / 'weights.npz')!r}" in line


@pytest.mark.parametrize("spec,message", [
    ("{tmp}/w.npz@3", "is a file, and only a folder of checkpoints has steps; drop @3"),
    ("{tmp}/model.pt", "is a file this tool does not read: expected a .msgpack, .safetensors or .npz file"),
    ("{tmp}/missing.safetensors", "weight file '{tmp}/missing.safetensors' does not exist"),
    ("{tmp}/model@2", "is not a folder of checkpoints: it has no steps (drop @2)"),
], ids=["file-with-step", "unknown-format", "missing-file", "model-folder-with-step"])
def test_weight_spec_errors(tmp_path, cli, spec, message):
    np.savez(tmp_path / "w.npz", w=np.zeros(2))
    (tmp_path / "model.pt").write_bytes(b"\x80\x02")
    hf_safetensors_folder(tmp_path / "model", {"w": np.zeros(2, np.float32)})
    code, out, err = cli("show", spec.format(tmp=tmp_path))
    line = err.strip().splitlines()[-1]
    assert code == 2 and out == "" and line.startswith("error:") and message.format(tmp=tmp_path) in line


def test_abstract_changes_nothing_for_a_weight_file(tmp_path, variables, cli):
    path = write_msgpack(tmp_path / "v.msgpack", variables)
    assert cli("show", str(path), "--abstract")[1].splitlines()[2:] == cli("show", str(path))[1].splitlines()[2:]


def test_port_refuses_a_weight_file_as_the_linen_model(tmp_path, variables, cli):
    path = write_msgpack(tmp_path / "v.msgpack", variables)
    code, _, err = cli("port", str(path), "sample:block:nnx")
    assert code == 2 and "a weight file holds weights, not a model to run" in err.strip().splitlines()[-1]


def test_reading_never_writes(tmp_path, variables, cli):
    import hashlib

    folder = hf_flax_folder(tmp_path / "m", variables, shards=2)
    save_legacy(tmp_path / "legacy", variables, orbax=False)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()}
    for argv in (["show", str(folder), "--values"], ["diff", str(folder), str(tmp_path / "legacy"), "--values"],
                 ["steps", str(tmp_path / "legacy")]):
        assert cli(*argv)[0] in (0, 1)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_weight_file_path_is_a_spec_everywhere(tmp_path):
    from inspector.errors import SourceError
    from loaders.confine import confine_spec
    from loaders.spec import parse_spec

    root = tmp_path / "root"
    root.mkdir()
    np.savez(tmp_path / "outside.npz", w=np.zeros(2))
    np.savez(root / "w.npz", w=np.zeros(2))
    assert parse_spec("w.npz", base=str(root)).kind == "weights"
    assert confine_spec("w.npz", str(root)) == str(root / "w.npz")
    with pytest.raises(SourceError, match="outside the root folder"):
        confine_spec("../outside.npz", str(root))
