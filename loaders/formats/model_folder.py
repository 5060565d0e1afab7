"""Hugging Face model folders: ``config.json`` beside ``flax_model.msgpack`` or ``model.safetensors``.

``save_pretrained`` writes one weight file, or shards with an index: ``flax_model-0000i-of-0000n.msgpack``
(each a nested dict holding its subset) with ``flax_model.msgpack.index.json``, or
``model-0000i-of-0000n.safetensors`` with ``model.safetensors.index.json``; an index is
``{"metadata": {"total_size": N}, "weight_map": {name: shard file}}`` (msgpack names are
``/``-joined paths, safetensors names ``.``-joined). When a folder holds several weight files, the
first of ``PREFERRED`` is read and the others are named in the notes; naming a file (or an index)
reads that one instead. The index is checked against the shards: a shard it names must exist in
the folder, and every weight it maps must be in its shard.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from inspector.errors import WeightFileError
from inspector.records import format_bytes
from loaders.formats.msgpack_file import msgpack_tree
from loaders.formats.safetensors_file import open_safetensors, safetensors_arrays
from loaders.formats.stored import StoredArray
from loaders.formats.weight_file import WeightFile, nest_names, records_of_tree

FLAX, FLAX_INDEX = "flax_model.msgpack", "flax_model.msgpack.index.json"
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PREFERRED = (FLAX, FLAX_INDEX, SAFETENSORS, SAFETENSORS_INDEX)
CONFIG = "config.json"
NOT_READ = {"pytorch_model.bin": "a PyTorch pickle", "pytorch_model.bin.index.json": "a PyTorch pickle index",
            "tf_model.h5": "a TensorFlow file"}
MAX_JSON = 64 << 20


def is_model_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PREFERRED)


def open_model_folder(folder: Path) -> WeightFile:
    """The folder's preferred weight file (or sharded set), with its config as metadata."""
    present = [name for name in PREFERRED if (folder / name).is_file()]
    if not present:
        raise WeightFileError(f"{str(folder)!r} holds none of {', '.join(PREFERRED)}")
    chosen = present[0]
    opened = open_index(folder / chosen) if chosen.endswith(".index.json") else _open_single(folder / chosen)
    notes = [f"also in this folder: {name} (not read; name the file to read it instead)" for name in present[1:]]
    notes += [f"also in this folder: {name} ({what}, not read)" for name, what in NOT_READ.items()
              if (folder / name).is_file()]
    metadata = dict(opened.metadata)
    config, config_note = _config(folder)
    if config is not None:
        metadata["config"] = config
    notes += [config_note] if config_note else []
    return dataclasses.replace(opened, path=folder, metadata=metadata, notes=opened.notes + tuple(notes))


def _open_single(file: Path) -> WeightFile:
    if file.name.endswith(".safetensors"):
        return open_safetensors(file)
    from loaders.formats.msgpack_file import open_msgpack

    return open_msgpack(file)


def open_index(index: Path) -> WeightFile:
    """A sharded set from its index: every shard listed, checked against the index."""
    data = _json(index, "index")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in weight_map.items()):
        raise WeightFileError(f"index {str(index)!r} has no weight_map of names to shard files")
    folder = index.parent
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if Path(shard).name != shard or shard in (".", ".."):
            raise WeightFileError(f"index {str(index)!r} names the shard {shard!r}, which is not a file in its folder")
        if not (folder / shard).is_file():
            raise WeightFileError(f"index {str(index)!r} names the shard {shard!r}, which is missing from "
                                  f"{str(folder)!r}: download or copy it")
    msgpack = index.name.endswith(".msgpack.index.json")
    arrays: dict[str, StoredArray] = {}
    owner: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    notes: list[str] = []
    for shard in shards:
        if msgpack:
            tree, shard_notes = msgpack_tree(folder / shard)
            found = _flatten(tree)
            notes += shard_notes
        else:
            found, shard_metadata = safetensors_arrays(folder / shard)
            for key, value in shard_metadata.items():
                metadata.setdefault(key, value)
        for name, array in found.items():
            if name in owner:
                raise WeightFileError(f"index {str(index)!r}: {name!r} is in two shards ({owner[name]} and {shard}); "
                                      "cannot tell which is meant")
            owner[name], arrays[name] = shard, array
    for name, shard in weight_map.items():
        if owner.get(name) != shard:
            where = f"it is in {owner[name]}" if name in owner else "no shard holds it"
            raise WeightFileError(f"index {str(index)!r} maps {name!r} to {shard}, but {where}: the index and the "
                                  "shards disagree")
    unlisted = sorted(set(arrays) - set(weight_map))
    if unlisted:
        notes.append(f"{len(unlisted)} arrays in the shards are not in the index (e.g. {unlisted[0]!r})")
    total = sum(a.nbytes for a in arrays.values())
    declared = (data.get("metadata") or {}).get("total_size") if isinstance(data.get("metadata"), dict) else None
    if isinstance(declared, int) and declared != total:
        notes.append(f"the index says total_size {declared} bytes; the shards hold {total} ({format_bytes(total)})")
    metadata["index"] = {k: v for k, v in (data.get("metadata") or {}).items()} \
        if isinstance(data.get("metadata"), dict) else {}
    records, stored = records_of_tree(nest_names(arrays, "/" if msgpack else ".", index), index)
    return WeightFile(index, "msgpack" if msgpack else "safetensors", records, stored,
                      files=tuple(folder / s for s in shards), metadata=metadata, notes=tuple(notes))


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, StoredArray]:
    """A shard's nested dict as ``/``-joined names, as the index writes them."""
    out: dict[str, StoredArray] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out


def _config(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The model's ``config.json``, or a note saying why it was not read (weights do not need it)."""
    file = folder / CONFIG
    if not file.is_file():
        return None, None
    try:
        config = _json(file, "config")
    except WeightFileError as err:
        return None, f"{CONFIG} not read: {err}"
    return (config, None) if isinstance(config, dict) else (None, f"{CONFIG} is not a JSON object: not read")


def _json(file: Path, what: str) -> Any:
    try:
        size = file.stat().st_size
        if size > MAX_JSON:
            raise WeightFileError(f"{what} {str(file)!r} is {format_bytes(size)}, too large for a {what} file")
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise WeightFileError(f"{what} {str(file)!r} cannot be read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise WeightFileError(f"{what} {str(file)!r} is not UTF-8 text: it is damaged") from None
    except json.JSONDecodeError as err:
        raise WeightFileError(f"{what} {str(file)!r} is not JSON ({err.msg} at line {err.lineno}): it is "
                              "damaged") from None
