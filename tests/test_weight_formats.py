"""Every weight format, written by its real writer, read back as records and arrays.

Records must say exactly what the file holds (path, kind, shape, dtype, bytes); arrays must come
back equal to what was saved, memory-mapped where the format allows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
from flax.traverse_util import flatten_dict

from loaders import load_source
from tests.weight_writers import (
    encoder_variables,
    hf_flax_folder,
    hf_safetensors_folder,
    torch_state_dict,
    write_msgpack,
    write_safetensors,
)


@pytest.fixture(scope="module")
def variables() -> dict[str, Any]:
    return encoder_variables()


def flat(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + "/".join(k): np.asarray(v) for k, v in flatten_dict(tree).items()}


def legacy(tmp: Path, variables: dict, orbax: bool) -> tuple[str, dict]:
    """Two steps saved by ``flax.training.checkpoints``, as a msgpack file or an Orbax folder each."""
    save_legacy(tmp / "ckpts", variables, orbax=orbax)
    return str(tmp / "ckpts"), flat(variables["params"], "params/")


def save_legacy(folder: Path, variables: dict, *, orbax: bool, steps=(10, 20)) -> Path:
    from flax import config
    from flax.training import checkpoints

    previous = config.flax_use_orbax_checkpointing
    config.update("flax_use_orbax_checkpointing", orbax)
    try:
        with warnings.catch_warnings():  # flax says its legacy checkpointing is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            for step in steps:
                state = {"params": variables["params"], "step": step,
                         "opt_state": optax.adam(1e-3).init(variables["params"])}
                checkpoints.save_checkpoint(folder.absolute(), state, step=step, keep=5)
    finally:
        config.update("flax_use_orbax_checkpointing", previous)
    return folder


# id: (write(tmp, variables) -> (spec, {full_name: saved array}), {full_name: (kind, shape, dtype, nbytes)}, count)
Case = tuple[Callable[[Path, dict], tuple[str, dict]], dict[str, tuple], int]
CASES: dict[str, Case] = {
    "msgpack-linen-variables": (
        lambda t, v: (str(write_msgpack(t / "variables.msgpack", v)), flat(v)),
        {"params/0/attention/query/kernel": ("Param", (8, 2, 4), "float32", 256),
         "batch_stats/1/BatchNorm_0/var": ("BatchStat", (16,), "float32", 64),
         "params/embed/embedding": ("Param", (50, 8), "float32", 1600)}, 29),
    "hf-flax-folder": (
        lambda t, v: (str(hf_flax_folder(t / "bert", v["params"])), flat(v["params"])),
        {"0/attention/out/kernel": (None, (2, 4, 8), "float32", 256),
         "embed/embedding": (None, (50, 8), "float32", 1600)},
        25),
    "hf-flax-sharded": (
        lambda t, v: (str(hf_flax_folder(t / "bert", v, shards=3)), flat(v)),
        {"params/1/Dense_1/kernel": ("Param", (16, 8), "float32", 512),
         "batch_stats/0/BatchNorm_0/mean": ("BatchStat", (16,), "float32", 64)}, 29),
    "msgpack-trainstate": (
        lambda t, v: (str(write_msgpack(t / "state.msgpack", {
            "step": 7, "params": v["params"], "opt_state": optax.adam(1e-3).init(v["params"])})),
            flat(v["params"], "params/")),
        {"params/embed/embedding": ("Param", (50, 8), "float32", 1600), "step": ("OptState", (), "int32", 4),
         "opt_state/0/count": ("OptState", (), "int32", 4),
         "opt_state/0/mu/0/ln/scale": ("OptState", (8,), "float32", 32)}, 77),
    "msgpack-dtypes": (
        lambda t, v: (str(write_msgpack(t / "dtypes.msgpack", {"params": {
            "bf16": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3), "f64": np.linspace(0, 1, 5),
            "i8": np.arange(-3, 3, dtype=np.int8), "scalar": np.float16(1.5), "flag": True, "ratio": 0.25}})),
            {"params/bf16": np.arange(6, dtype=ml_dtypes.bfloat16).reshape(2, 3),
             "params/f64": np.linspace(0, 1, 5), "params/i8": np.arange(-3, 3, dtype=np.int8),
             "params/scalar": np.float16(1.5)}),
        {"params/bf16": ("Param", (2, 3), "bfloat16", 12), "params/f64": ("Param", (5,), "float64", 40),
         "params/scalar": ("Param", (), "float16", 2), "params/flag": ("Param", (), "bool", 1),
         "params/ratio": ("Param", (), "float32", 4)}, 6),
    "legacy-msgpack-folder": (
        lambda t, v: legacy(t, v, orbax=False),
        {"params/embed/embedding": ("Param", (50, 8), "float32", 1600), "step": ("OptState", (), "int32", 4)}, 77),
    "legacy-orbax-folder": (
        lambda t, v: legacy(t, v, orbax=True),
        {"params/embed/embedding": ("Param", (50, 8), "float32", 1600), "step": ("OptState", (), "int32", 4)}, 77),
    "safetensors-pytorch": (
        lambda t, v: (str(write_safetensors(t / "model.safetensors", torch_state_dict())),
                      {k.replace(".", "/"): a for k, a in torch_state_dict().items()}),
        {"encoder/layer/0/attention/query/weight": (None, (8, 8), "float32", 256),
         "encoder/layer/1/bn/running_mean": ("BatchStat", (16,), "float32", 64),
         "encoder/layer/1/bn/running_var": ("BatchStat", (16,), "float32", 64),
         "encoder/layer/1/bn/num_batches_tracked": ("BatchCount", (), "int64", 8)}, 19),
    "safetensors-flax-bfloat16": (
        lambda t, v: (_flax_safetensors(t / "bf16.safetensors"),
                      {"kernel": np.ones((4, 2), ml_dtypes.bfloat16), "scale": np.full(3, 2, np.float32)}),
        {"kernel": (None, (4, 2), "bfloat16", 16), "scale": (None, (3,), "float32", 12)}, 2),
    "hf-safetensors-sharded": (
        lambda t, v: (str(hf_safetensors_folder(t / "pt", torch_state_dict(), shards=2)),
                      {k.replace(".", "/"): a for k, a in torch_state_dict().items()}),
        {"embeddings/word_embeddings/weight": (None, (50, 8), "float32", 1600)}, 19),
    "npz-savez": (
        lambda t, v: (_savez(t / "w.npz", np.savez, flat(v)), flat(v)),
        {"params/0/ln/scale": ("Param", (8,), "float32", 32),
         "batch_stats/0/BatchNorm_0/mean": ("BatchStat", (16,), "float32", 64)},
        29),
    "npz-compressed-bfloat16": (
        lambda t, v: (_savez(t / "c.npz", np.savez_compressed, {"w": np.ones((3, 2), ml_dtypes.bfloat16),
                                                                 "fortran": np.asfortranarray(np.eye(3))}),
                      {"fortran": np.eye(3)}),
        {"w": (None, (3, 2), "V2 (raw 2-byte)", 12), "fortran": (None, (3, 3), "float64", 72)}, 2),
}


def _savez(path: Path, save: Callable, arrays: dict[str, np.ndarray]) -> str:
    save(path, **arrays)
    return str(path)


def _flax_safetensors(path: Path) -> str:
    from safetensors.flax import save_file

    save_file({"kernel": jnp.ones((4, 2), jnp.bfloat16), "scale": jnp.full(3, 2, jnp.float32)}, str(path))
    return str(path)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_records_and_arrays_round_trip(tmp_path, variables, case):
    write, expected, count = CASES[case]
    spec, saved = write(tmp_path, variables)
    src = load_source(spec)
    by_name = {r.full_name: r for r in src.records}
    assert len(src.records) == count
    for name, (kind, shape, dtype, nbytes) in expected.items():
        record = by_name[name]
        assert (record.type, record.shape, record.dtype, record.nbytes, record.size) == \
            (kind, shape, dtype, nbytes, math.prod(shape)), name
    for name, array in saved.items():
        got = np.asarray(src.read(by_name[name]))
        assert got.shape == array.shape and got.tobytes() == np.ascontiguousarray(array).tobytes(), name


@pytest.mark.parametrize("name,mapped", [("variables.msgpack", True), ("w.npz", True), ("c.npz", False),
                                         ("model.safetensors", True)], ids=["msgpack", "npz", "npz-compressed",
                                                                            "safetensors"])
def test_views_are_memory_maps_where_the_bytes_are_contiguous(tmp_path, variables, name, mapped):
    arrays = flat(variables)
    if name.endswith(".msgpack"):
        write_msgpack(tmp_path / name, variables)
    elif name == "w.npz":
        np.savez(tmp_path / name, **arrays)
    elif name == "c.npz":
        np.savez_compressed(tmp_path / name, **arrays)
    else:
        arrays = {k.replace(".", "/"): v for k, v in torch_state_dict().items()}
        write_safetensors(tmp_path / name, torch_state_dict())
    src = load_source(str(tmp_path / name))
    record = max(src.records, key=lambda r: r.nbytes)
    view = src.obj.view(record)
    assert (type(view) is np.memmap) is mapped
    read = src.obj.read(record)
    assert isinstance(read.base if mapped else read, np.memmap if mapped else np.ndarray)
    assert src.obj.nbytes(record) == record.nbytes == arrays[record.full_name].nbytes
    if mapped:
        np.testing.assert_array_equal(view[1], arrays[record.full_name][1])


def test_chunked_msgpack_arrays_are_read_whole_and_not_viewed(tmp_path, monkeypatch):
    """flax splits arrays over ``MAX_CHUNK_SIZE`` (2^30) bytes; a small limit gives the same layout."""
    import flax.serialization

    monkeypatch.setattr(flax.serialization, "MAX_CHUNK_SIZE", 256)
    big = np.arange(1000, dtype=np.float32).reshape(10, 100)
    path = write_msgpack(tmp_path / "big.msgpack", {"params": {"embedding": big, "bias": np.ones(3, np.float32)}})
    assert b"__msgpack_chunked_array__" in path.read_bytes()
    src = load_source(str(path))
    record = next(r for r in src.records if r.name == "embedding")
    assert (record.shape, record.dtype, record.nbytes) == ((10, 100), "float32", 4000)
    assert src.obj.view(record) is None
    np.testing.assert_array_equal(src.read(record), big)
    assert src.obj.stored[record.key].how == "chunks"


def test_text_and_none_in_a_msgpack_are_left_out_with_a_note(tmp_path, cli):
    path = write_msgpack(tmp_path / "m.msgpack", {"params": {"w": np.ones(2, np.float32)},
                                                 "meta": {"name": "bert", "nothing": None}})
    code, out, err = cli("show", str(path))
    assert code == 0 and out.count("(2,)") == 1
    assert "note: " in err and "'meta/name' holds text ('bert'), not an array: not listed" in err


def test_show_json_says_what_file_was_read(tmp_path, variables, cli):
    import json

    folder = hf_flax_folder(tmp_path / "bert", variables["params"])
    write_safetensors(folder / "model.safetensors", torch_state_dict())
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    code, out, err = cli("show", str(folder), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["file"]["format"] == "msgpack" and "checkpoint" not in data
    assert data["file"]["files"] == [str(folder / "flax_model.msgpack")]
    assert data["file"]["metadata"]["config"]["model_type"] == "bert"
    assert data["file"]["info"] == [
        "also in this folder: model.safetensors (not read; name the file to read it instead)",
        "also in this folder: pytorch_model.bin (a PyTorch pickle, not read)"]
    assert "also in this folder: model.safetensors" in err
    code, out, _ = cli("show", str(folder / "model.safetensors"), "--format", "json")
    assert code == 0 and json.loads(out)["file"]["metadata"] == {"format": "pt"}


def test_values_statistics_skip_raw_bytes_with_a_note(tmp_path, cli):
    np.savez(tmp_path / "w.npz", bf=np.ones(3, ml_dtypes.bfloat16), x=np.array([1.0, 2.0, 3.0], np.float32))
    code, out, err = cli("show", str(tmp_path / "w.npz"), "--values")
    assert code == 0 and "V2 (raw 2-byte)" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.split("path  min")[1].splitlines()[2:]}
    assert rows == {"x": ["1", "3", "2", "0.816497", "0", "0"]}
    assert "no statistics of V2 (raw 2-byte) values" in err
