"""Pristine sources, one per reader, written by the real writers from models people write."""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flax.traverse_util import flatten_dict

from tests.weight_writers import (
    encoder_variables,
    hf_flax_folder,
    hf_safetensors_folder,
    torch_state_dict,
    write_msgpack,
    write_safetensors,
)

READERS = ("orbax", "msgpack", "legacy", "safetensors", "npz", "npz_compressed", "hf_msgpack_sharded",
           "hf_safetensors_sharded")


@dataclass(frozen=True)
class Pristine:
    """One source: the spec to pass the CLI (relative to the reader's folder) and its files with
    the byte offsets where their structure changes (headers, array data, zip members)."""

    reader: str
    spec: str
    files: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _array_bounds(data: bytes, arrays: list[np.ndarray]) -> set[int]:
    """Where each array's raw bytes start and end in ``data`` (arrays of 16+ bytes, first hit)."""
    out: set[int] = set()
    for array in arrays:
        raw = np.ascontiguousarray(array).tobytes()
        if len(raw) >= 16 and (at := data.find(raw)) >= 0:
            out |= {at, at + len(raw)}
    return out


def _json_bounds(data: bytes) -> set[int]:
    return {i for i, b in enumerate(data) if b in b"{}[]:,"}


def _zip_bounds(path: Path) -> set[int]:
    out: set[int] = set()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            start = info.header_offset
            out |= {start, start + 30, start + 30 + len(info.filename),
                    start + 30 + len(info.filename) + len(info.extra) + info.compress_size}
    size = path.stat().st_size
    return out | {size - 22}  # the end-of-central-directory record


def _safetensors_bounds(data: bytes) -> set[int]:
    header = int.from_bytes(data[:8], "little")
    out = {8, 8 + header - 1, 8 + header}
    for entry in json.loads(data[8:8 + header]).values():
        if isinstance(entry, dict) and "data_offsets" in entry:
            out |= {8 + header + entry["data_offsets"][0], 8 + header + entry["data_offsets"][1]}
    return out | {i + 8 for i in _json_bounds(data[8:8 + header])}


def _bounds(path: Path, arrays: list[np.ndarray]) -> tuple[int, ...]:
    data = path.read_bytes()
    out = {0, 1, len(data) // 2, max(len(data) - 1, 0)} | _array_bounds(data, arrays)
    if path.suffix == ".npz":
        out |= _zip_bounds(path)
    elif path.suffix == ".safetensors":
        out |= _safetensors_bounds(data)
    elif path.suffix == ".json" or path.name.startswith("_"):
        out |= _json_bounds(data) if data[:1] in (b"{", b"[") else set()
    return tuple(sorted(b for b in out if 0 <= b <= len(data)))


def _save_orbax(folder: Path, tree) -> None:
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(folder.absolute(), tree)
        checkpointer.wait_until_finished()


def _save_legacy(folder: Path, params) -> None:
    import optax
    from flax import config
    from flax.training import checkpoints

    previous = config.flax_use_orbax_checkpointing
    config.update("flax_use_orbax_checkpointing", False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for step in (10, 20):
                state = {"params": params, "step": step, "opt_state": optax.adam(1e-3).init(params)}
                checkpoints.save_checkpoint(folder.absolute(), state, step=step, keep=5)
    finally:
        config.update("flax_use_orbax_checkpointing", previous)


def write_corpus(root: Path, readers: tuple[str, ...] = READERS) -> dict[str, Pristine]:
    """Write each reader's pristine source under ``root/<reader>/`` and describe it."""
    variables = encoder_variables(0)
    linen_arrays = [np.asarray(a) for a in flatten_dict(variables).values()]
    torch = torch_state_dict(0)
    torch_arrays = list(torch.values())
    out: dict[str, Pristine] = {}
    for reader in readers:
        folder = root / reader
        folder.mkdir(parents=True, exist_ok=True)
        arrays = linen_arrays
        if reader == "orbax":
            spec = "ckpt"
            _save_orbax(folder / spec, variables)
        elif reader == "msgpack":
            spec = str(write_msgpack(folder / "variables.msgpack", variables).name)
        elif reader == "legacy":
            spec = "ckpts"
            _save_legacy(folder / spec, variables["params"])
        elif reader == "safetensors":
            spec, arrays = "model.safetensors", torch_arrays
            write_safetensors(folder / spec, torch)
        elif reader in ("npz", "npz_compressed"):
            spec, arrays = "weights.npz", torch_arrays
            save = np.savez_compressed if reader == "npz_compressed" else np.savez
            save(folder / spec, **{k.replace(".", "/"): v for k, v in torch.items()})
        elif reader == "hf_msgpack_sharded":
            spec = "bert"
            hf_flax_folder(folder / spec, variables["params"], shards=2)
        elif reader == "hf_safetensors_sharded":
            spec, arrays = "bert", torch_arrays
            hf_safetensors_folder(folder / spec, torch, shards=2)
        else:
            raise ValueError(f"unknown reader {reader!r}")
        target = folder / spec
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        out[reader] = Pristine(reader, spec, {str(p.relative_to(folder)): _bounds(p, arrays) for p in files})
    return out
