"""Bad weight files: exit 2 with one ``error:`` line naming the file, where, and what is wrong;
never a traceback, never a hang; the file is never written (its hash is checked).

The last test mutates small valid files of every format (bit flips, truncation, zeroed ranges,
inserted bytes, garbage) and requires that each either loads and reads, or fails as a
``SourceError``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import pytest
from flax.serialization import to_bytes

from inspector.errors import SourceError
from loaders import load_source
from tests.weight_writers import hf_safetensors_folder, write_safetensors

ARRAYS = {"dense": {"kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "bias": np.ones(4, np.float32)}}


def good_msgpack(path: Path) -> Path:
    path.write_bytes(to_bytes({"params": ARRAYS}))
    return path


def good_safetensors(path: Path) -> Path:
    return write_safetensors(path, {"dense.kernel": ARRAYS["dense"]["kernel"], "dense.bias": ARRAYS["dense"]["bias"]})


def good_npz(path: Path, compressed: bool = False) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, **{"dense/kernel": ARRAYS["dense"]["kernel"],
                                                               "dense/bias": ARRAYS["dense"]["bias"]})
    return path


def edit(path: Path, change: Callable[[bytes], bytes]) -> Path:
    path.write_bytes(change(path.read_bytes() if path.exists() else b""))
    return path


def ext_array(shape, dtype: str, data: bytes) -> msgpack.ExtType:
    return msgpack.ExtType(1, msgpack.packb((shape, dtype, data), use_bin_type=True))


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


# name: (prepare(tmp_path) -> path, message fragment)
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "msgpack-empty": (lambda t: edit(t / "m.msgpack", lambda b: b), "is empty (0 bytes)"),
    "msgpack-ends-inside-an-array": (lambda t: edit(good_msgpack(t / "m.msgpack"), lambda b: b[:len(b) - 20]),
                                     "the file ends inside an array ("),
    "msgpack-ends-inside-a-map": (lambda t: edit(good_msgpack(t / "m.msgpack"), lambda b: b[:3]),
                                  "ends inside"),
    "msgpack-garbled": (lambda t: edit(t / "m.msgpack", lambda b: b"\xc1" + bytes(range(200))),
                        "at byte 0: byte 0xc1 is not a msgpack type"),
    "msgpack-trailing-bytes": (lambda t: edit(good_msgpack(t / "m.msgpack"), lambda b: b + b"junk"),
                               "4 more bytes follow the end of the msgpack data"),
    "msgpack-lying-map-count": (lambda t: edit(t / "m.msgpack", lambda b: b"\xdf\xff\xff\xff\xff\xa1a\x01"),
                                "ends inside a map of 4294967295 entries"),
    "msgpack-lying-array-length": (
        lambda t: edit(t / "m.msgpack", lambda b: msgpack.packb({"w": ext_array((1000, 1000), "float32", b"\0" * 16)},
                                                                 use_bin_type=True)),
        "(in 'w'): an array of shape (1000, 1000) and dtype float32 needs 4000000 bytes, its data holds 16"),
    "msgpack-object-dtype": (
        lambda t: edit(t / "m.msgpack", lambda b: msgpack.packb({"w": ext_array((1,), "object", b"\0" * 8)},
                                                                 use_bin_type=True)),
        "an array has dtype 'object', which holds no numbers"),
    "msgpack-deep-nesting": (lambda t: edit(t / "m.msgpack", lambda b: b"\x91" * 5000 + b"\x00"),
                             "containers nest deeper than 64 levels"),
    "msgpack-duplicate-key": (lambda t: edit(t / "m.msgpack", lambda b: b"\x82\xa1a\x01\xa1a\x02"),
                              "the key 'a' appears twice in one map"),
    "msgpack-not-a-dict": (lambda t: edit(t / "m.msgpack", lambda b: msgpack.packb(3)),
                           "holds a single int, not a dict of named arrays"),
    "legacy-truncated": (lambda t: edit(good_msgpack(t / "checkpoint_3"), lambda b: b[:len(b) // 2]),
                         "the file ends inside an array"),
    "safetensors-empty": (lambda t: edit(t / "m.safetensors", lambda b: b""), "0 bytes long, too short"),
    "safetensors-header-past-end": (
        lambda t: edit(good_safetensors(t / "m.safetensors"), lambda b: struct.pack("<Q", 10**6) + b[8:]),
        "the header length at byte 0 says 1000000 bytes, past the end of the file"),
    "safetensors-header-not-json": (
        lambda t: edit(good_safetensors(t / "m.safetensors"), lambda b: b[:8] + b"<" + b[9:]),
        "the header is not JSON (Expecting value at byte 8)"),
    "safetensors-offset-outside": (
        lambda t: edit(t / "m.safetensors", lambda b: safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16_000]}}, b"\0" * 16)),
        "tensor 'w' has data_offsets [0, 16000], outside the 16 bytes of data after the header"),
    "safetensors-gap": (
        lambda t: edit(t / "m.safetensors", lambda b: safetensors_bytes(
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
             "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12)),
        "tensor 'b' starts at data byte 8, but the tensors before it end at 4 (a gap)"),
    "safetensors-truncated-data": (lambda t: edit(good_safetensors(t / "m.safetensors"), lambda b: b[:-8]),
                                   "outside the 56 bytes of data after the header"),
    "safetensors-size-lies": (
        lambda t: edit(t / "m.safetensors", lambda b: safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16)),
        "tensor 'w': shape (3,) of F32 needs 12 bytes, its data_offsets span 16"),
    "safetensors-unknown-dtype": (
        lambda t: edit(t / "m.safetensors", lambda b: safetensors_bytes(
            {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16)),
        "tensor 'w' has dtype 'F128', which safetensors does not define"),
    "npz-not-a-zip": (lambda t: edit(t / "w.npz", lambda b: b"not a zip at all" * 10),
                      "is not a readable zip archive"),
    "npz-truncated": (lambda t: edit(good_npz(t / "w.npz"), lambda b: b[:len(b) // 2]),
                      "is not a readable zip archive"),
    "npz-object-array": (lambda t: zipped(t / "w.npz", {"o.npy": npy_bytes(np.array([{"a": 1}], dtype=object))}),
                         "member 'o.npy' holds Python objects (dtype object)"),
    "npz-bad-npy-header": (lambda t: zipped(t / "w.npz", {"w.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': nonsense"}),
                           "member 'w.npy' has no valid .npy header"),
    "npz-member-size-lies": (lambda t: zipped(t / "w.npz", {"w.npy": npy_bytes(np.zeros(4, np.float32))[:-4]}),
                             "shape (4,) of float32 needs 16 bytes after its 128-byte header, the member holds 12"),
    "index-missing-shard": (
        lambda t: _index_without(t, lambda folder: (folder / "model-00002-of-00002.safetensors").unlink()),
        "names the shard 'model-00002-of-00002.safetensors', which is missing from"),
    "index-shard-outside-folder": (
        lambda t: _index_without(t, lambda folder: _rewrite_index(folder, "../elsewhere.safetensors")),
        "names the shard '../elsewhere.safetensors', which is not a file in its folder"),
    "index-disagrees-with-shards": (
        lambda t: _index_without(t, lambda folder: _rewrite_index(folder, "model-00001-of-00002.safetensors")),
        "maps 'b.w' to model-00001-of-00002.safetensors, but no shard holds it: the index and the shards disagree"),
    "index-not-json": (
        lambda t: _index_without(t, lambda folder: (folder / "model.safetensors.index.json").write_text("{'a'")),
        "is not JSON (Expecting property name enclosed in double quotes at line 1)"),
}


def _index_without(tmp: Path, damage: Callable[[Path], object]) -> Path:
    folder = hf_safetensors_folder(tmp / "model", {"a.w": np.zeros(2, np.float32), "b.w": np.ones(2, np.float32)},
                                   shards=2)
    damage(folder)
    return folder


def _rewrite_index(folder: Path, shard: str) -> None:
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"] = {name: shard for name in data["weight_map"]}
    index.write_text(json.dumps(data))


def snapshot(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_weight_file_exits_2_with_one_line(tmp_path, cli, case):
    prepare, message = CASES[case]
    path = prepare(tmp_path)
    before = snapshot(path)
    code, out, err = cli("show", str(path), "--values")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert "Traceback" not in err
    assert snapshot(path) == before


def test_a_bad_config_is_a_note_not_an_error(tmp_path, cli):
    folder = hf_safetensors_folder(tmp_path / "model", {"w": np.zeros(2, np.float32)})
    (folder / "config.json").write_text("{not json")
    code, out, err = cli("show", str(folder))
    assert code == 0 and "config.json not read: config" in err and "is not JSON" in err


def mutations(data: bytes, rng: np.random.Generator, count: int):
    """Damaged copies of ``data``: bit flips, truncation, zeroed ranges, inserted bytes, garbage."""
    n = len(data)
    for i in range(count):
        kind = i % 5
        buf = bytearray(data)
        if kind == 0:
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.integers(0, n))
                buf[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            buf = buf[:int(rng.integers(0, n))]
        elif kind == 2:
            at = int(rng.integers(0, n))
            buf[at:at + int(rng.integers(1, 16))] = bytes(min(16, n - at))[:len(buf[at:at + 16])]
        elif kind == 3:
            at = int(rng.integers(0, n))
            buf[at:at] = rng.bytes(int(rng.integers(1, 9)))
        else:
            at = int(rng.integers(0, n))
            buf[at:] = rng.bytes(n - at)
        yield bytes(buf)


@pytest.mark.parametrize("writer,name", [(good_msgpack, "m.msgpack"), (good_safetensors, "m.safetensors"),
                                         (good_npz, "w.npz"), (lambda p: good_npz(p, compressed=True), "c.npz")],
                         ids=["msgpack", "safetensors", "npz", "npz-compressed"])
def test_damaged_files_load_or_fail_cleanly(tmp_path, writer, name):
    good = writer(tmp_path / name).read_bytes()
    rng = np.random.default_rng(13)
    started = time.perf_counter()
    outcomes = {"loaded": 0, "refused": 0}
    for i, damaged in enumerate(mutations(good, rng, 150)):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(damaged)
        try:
            src = load_source(str(path))
            for record in src.records:
                np.asarray(src.read(record)).sum()
                view = src.obj.view(record)
                if view is not None:
                    np.asarray(view).sum()
            outcomes["loaded"] += 1
        except SourceError as err:
            assert str(path) in str(err)
            outcomes["refused"] += 1
        path.unlink()
    assert outcomes["refused"] > 30 and time.perf_counter() - started < 60, outcomes
