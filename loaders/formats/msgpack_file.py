"""flax msgpack files (``flax.serialization.to_bytes``, ``flax_model.msgpack``, legacy checkpoints).

flax writes a state dict with ``msgpack.packb``: dicts as maps (lists became ``{"0": ...}``),
arrays as ext type 1 holding ``packb((shape, dtype_name, raw bytes))``, numpy scalars as ext 3 (the
same payload), Python complex numbers as ext 2 (``packb((real, imag))``), other Python scalars as
themselves, and arrays strictly over 2^30 bytes as ``{"__msgpack_chunked_array__": True, "shape":
{"0": ...}, "chunks": {"0": <ext 1>, ...}}`` (``flax.serialization._chunk``). The walker reads those
headers and seeks past the raw bytes, so listing costs the same for 1 MB and 100 GB; an array's
raw bytes are contiguous in the file, so reading one is a memory map.

Python scalars have no dtype in the file; they get the one jax gives them (``int32``, ``float32``,
``complex64``, ``bool``), as a live ``TrainState``'s ``step`` does. Text, byte strings, ``None``
and unknown ext types are not variables: they are left out, each with a note.

>>> import numpy as np, tempfile, os
>>> from flax.serialization import to_bytes
>>> path = os.path.join(tempfile.mkdtemp(), "m.msgpack")
>>> _ = open(path, "wb").write(to_bytes({"params": {"dense": {"kernel": np.ones((2, 3), np.float32)}}}))
>>> weights = open_msgpack(Path(path))
>>> [(r.full_name, r.shape, r.dtype) for r in weights.records]
[('params/dense/kernel', (2, 3), 'float32')]
>>> weights.read(weights.records[0]).sum()
np.float32(6.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import WeightFileError
from inspector.records import format_path
from loaders.formats.msgpack_walker import Blob, Reader, next_token, walk_file
from loaders.formats.stored import StoredArray
from loaders.formats.weight_file import WeightFile, records_of_tree

_NDARRAY, _COMPLEX, _NPSCALAR = 1, 2, 3
_CHUNKED = "__msgpack_chunked_array__"
_GDA_PLACEHOLDER = "//GDAPlaceholder:"  # flax.training.checkpoints.MP_ARRAY_PH
MAX_DIMS = 64  # numpy's limit


def open_msgpack(file: Path, *, format: str = "msgpack") -> WeightFile:
    """List a flax msgpack file: records and where each array's bytes are; no array is read."""
    tree, notes = msgpack_tree(file)
    records, stored = records_of_tree(tree, file)
    return WeightFile(file, format, records, stored, files=(file,), notes=tuple(notes))


def msgpack_tree(file: Path) -> tuple[dict[str, Any], list[str]]:
    """The file's state dict with ``StoredArray`` leaves, and notes on what was left out."""
    raw = walk_file(file, lambda code, reader, path: _ext(code, reader, path, file),
                    {_NDARRAY: "an array", _COMPLEX: "a complex number", _NPSCALAR: "a numpy scalar"})
    if isinstance(raw, list):
        raw = {str(i): v for i, v in enumerate(raw)}
    if not isinstance(raw, dict):
        raise WeightFileError(f"weight file {str(file)!r} holds a single {_what(raw)}, not a dict of named arrays "
                              "as flax.serialization.to_bytes writes for a model")
    notes: list[str] = []
    tree = _leaves(raw, (), file, notes)
    return tree, notes


def _leaves(node: Mapping[Any, Any], at: tuple, file: Path, notes: list[str]) -> dict[str, Any]:
    """Turn the walked value into a tree of ``StoredArray``: chunked arrays joined, scalars typed."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = str(key)
        path = at + (name,)
        if isinstance(value, list):
            value = {str(i): v for i, v in enumerate(value)}
        if isinstance(value, dict) and _CHUNKED in value:
            out[name] = _chunked(value, path, file)
        elif isinstance(value, dict):
            out[name] = _leaves(value, path, file, notes)
        elif isinstance(value, StoredArray):
            out[name] = value
        elif isinstance(value, (bool, int, float, complex)):
            out[name] = _scalar(value, file)
        elif value is not None:
            notes.append(_left_out(path, value))
    return out


def _ext(code: int, r: Reader, path: tuple, file: Path) -> Any:
    if code in (_NDARRAY, _NPSCALAR):
        return _ndarray(r, path, file)
    if code == _COMPLEX:
        token = next_token(r, path)
        if token.kind != "array" or token.arg != 2:
            raise r.error(token.at, "a complex number (ext type 2) is not a pair (real, imag)", path)
        parts = [next_token(r, path) for _ in range(2)]
        if any(p.kind not in ("float", "int") for p in parts) or r.left:
            raise r.error(token.at, "a complex number (ext type 2) is not a pair of numbers", path)
        return complex(parts[0].arg, parts[1].arg)
    return Blob(f"ext {code}", r.pos, r.left)


def _ndarray(r: Reader, path: tuple, file: Path) -> StoredArray:
    """An array payload: ``(shape, dtype_name, raw bytes)``; the bytes are not read."""
    start = r.pos
    token = next_token(r, path)
    if token.kind != "array" or token.arg != 3:
        raise r.error(start, "an array (ext type 1) does not hold (shape, dtype, data)", path)
    head = next_token(r, path)
    if head.kind != "array" or head.arg > MAX_DIMS:
        raise r.error(head.at, f"an array's shape is not a list of at most {MAX_DIMS} sizes", path)
    shape = []
    for _ in range(head.arg):
        dim = next_token(r, path)
        if dim.kind != "int" or dim.arg < 0:
            raise r.error(dim.at, f"an array's shape holds {dim.arg!r}, not a size", path)
        shape.append(dim.arg)
    name_token = next_token(r, path)
    if name_token.kind not in ("str", "bin") or name_token.arg > 64:
        raise r.error(name_token.at, "an array's dtype is not a short name", path)
    dtype_name = r.take(name_token.arg, "a dtype name").decode("ascii", errors="replace")
    dtype = _dtype(dtype_name, r, name_token.at, path)
    data = next_token(r, path)
    if data.kind not in ("bin", "str"):
        raise r.error(data.at, "an array's data is not a byte string", path)
    offset = r.skip(data.arg, "an array's data")
    expected = math.prod(shape) * dtype.itemsize
    if data.arg != expected:
        raise r.error(data.at, f"an array of shape {tuple(shape)} and dtype {dtype_name} needs {expected} bytes, "
                               f"its data holds {data.arg}", path)
    if r.left:
        raise r.error(r.pos, f"{r.left} stray bytes after an array's data", path)
    return StoredArray(file, tuple(shape), dtype, dtype.name, expected, "mapped", offset=offset)


def _dtype(name: str, r: Reader, at: int, path: tuple) -> np.dtype:
    """numpy's dtype for a name flax wrote (``float32``, ``bfloat16`` ...); numbers only."""
    import ml_dtypes  # noqa: F401 - registers bfloat16 and the float8 types with numpy

    try:
        dtype = np.dtype(name) if name.replace("_", "").isalnum() else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or not (dtype.kind in "biufc" or dtype.type.__module__ == "ml_dtypes"):
        raise r.error(at, f"an array has dtype {name!r}, which holds no numbers", path)
    return dtype


def _chunked(node: dict, path: tuple, file: Path) -> StoredArray:
    """flax's form of an array over 2^30 bytes: flat chunks joined in order, then reshaped."""
    where = f"weight file {str(file)!r}: {format_path(path)!r} (a chunked array)"
    shape_node, chunk_node = node.get("shape"), node.get("chunks")
    if set(node) != {_CHUNKED, "shape", "chunks"} or node[_CHUNKED] is not True:
        raise WeightFileError(f"{where} has keys {sorted(map(str, node))}, not ({_CHUNKED}, shape, chunks)")
    shape = _ordered(shape_node, where, "shape")
    chunks = _ordered(chunk_node, where, "chunks")
    if any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape) or len(shape) > MAX_DIMS:
        raise WeightFileError(f"{where}: its shape {shape!r} is not a list of sizes")
    if not chunks or any(not isinstance(c, StoredArray) or len(c.shape) != 1 for c in chunks):
        raise WeightFileError(f"{where}: its chunks are not flat arrays")
    dtype = chunks[0].dtype
    if any(c.dtype != dtype for c in chunks):
        raise WeightFileError(f"{where}: its chunks have different dtypes")
    total = sum(c.nbytes for c in chunks)
    expected = math.prod(shape) * dtype.itemsize
    if total != expected:
        raise WeightFileError(f"{where}: shape {tuple(shape)} of {dtype.name} needs {expected} bytes, its chunks "
                              f"hold {total}")
    return StoredArray(file, tuple(shape), dtype, dtype.name, expected, "chunks",
                       chunks=tuple((c.offset, c.nbytes) for c in chunks))


def _ordered(node: Any, where: str, what: str) -> list:
    """``{"0": a, "1": b}`` (or a list) as ``[a, b]``; anything else is a damaged file."""
    if isinstance(node, list):
        return node
    if not isinstance(node, dict) or sorted(node, key=str) != sorted(str(i) for i in range(len(node))):
        raise WeightFileError(f"{where}: its {what} is not numbered 0, 1, ...")
    return [node[str(i)] for i in range(len(node))]


def _scalar(value: bool | int | float | complex, file: Path) -> StoredArray:
    if isinstance(value, bool):
        dtype = np.dtype(np.bool_)
    elif isinstance(value, int):
        dtype = next((np.dtype(t) for t in (np.int32, np.int64, np.uint64)
                      if np.iinfo(t).min <= value <= np.iinfo(t).max), None)
        if dtype is None:
            raise WeightFileError(f"weight file {str(file)!r}: the integer {value} fits no numpy type")
    elif isinstance(value, float):  # float32 as jax sees a Python float, unless that would change it
        dtype = np.dtype(np.float32 if _fits_float32(value) else np.float64)
    else:
        dtype = np.dtype(np.complex64 if _fits_float32(value.real) and _fits_float32(value.imag) else np.complex128)
    return StoredArray(file, (), dtype, dtype.name, dtype.itemsize, "inline", value=value)


def _fits_float32(value: float) -> bool:
    return not math.isfinite(value) or abs(value) <= float(np.finfo(np.float32).max)


def _left_out(path: tuple, value: Any) -> str:
    name = format_path(path)
    if isinstance(value, str) and value.startswith(_GDA_PLACEHOLDER):
        return (f"{name!r} was saved apart by a multi-process save (the checkpoint's _gda folder) and is "
                "not listed")
    return f"{name!r} holds {_what(value)}, not an array: not listed"


def _what(value: Any) -> str:
    if isinstance(value, Blob):
        return {"bin": "a byte string", "str": "text"}.get(value.kind, f"an unknown msgpack {value.kind}") + \
            f" ({value.length} bytes)"
    if isinstance(value, str):
        return f"text ({value[:30]!r})"
    if isinstance(value, StoredArray):
        return "array"
    return type(value).__name__
