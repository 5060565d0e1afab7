"""safetensors files (``model.safetensors``, PyTorch ``state_dict`` names such as ``encoder.layer.0.weight``).

The layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the raw little-endian data, offsets counted from the end of the header. Names split on ``.``
become paths (``encoder/layer/0/weight``), digit parts int keys.

The ``safetensors`` package is the judge of what a valid file is: once the header passed the
checks below (which name the exact entry and offset that is wrong), ``safe_open`` must accept the
file too. The package does not expose where a tensor's bytes are, which a memory-mapped,
zero-copy ``view`` needs, so the header's offsets are read here with ``json``.

>>> import numpy as np, tempfile, os
>>> from safetensors.numpy import save_file
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> save_file({"bn.running_mean": np.zeros(4, np.float32), "fc.weight": np.ones((3, 4), np.float16)}, path,
...           metadata={"format": "pt"})
>>> weights = open_safetensors(Path(path))
>>> [(r.name, r.type, r.shape, r.dtype) for r in weights.records], dict(weights.metadata)
([('bn/running_mean', 'BatchStat', (4,), 'float32'), ('fc/weight', None, (3, 4), 'float16')], {'format': 'pt'})
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import WeightFileError
from loaders.formats.stored import StoredArray
from loaders.formats.weight_file import WeightFile, nest_names, records_of_tree

MAX_HEADER = 100_000_000  # safetensors' own limit
METADATA = "__metadata__"
# safetensors dtype: (numpy dtype name or None when numpy has no type for it, bits per element)
DTYPES: dict[str, tuple[str | None, int]] = {
    "BOOL": ("bool", 8), "U8": ("uint8", 8), "I8": ("int8", 8), "U16": ("uint16", 16), "I16": ("int16", 16),
    "U32": ("uint32", 32), "I32": ("int32", 32), "U64": ("uint64", 64), "I64": ("int64", 64),
    "F16": ("float16", 16), "BF16": ("bfloat16", 16), "F32": ("float32", 32), "F64": ("float64", 64),
    "C64": ("complex64", 64), "F8_E4M3": ("float8_e4m3fn", 8), "F8_E5M2": ("float8_e5m2", 8),
    "F8_E8M0": ("float8_e8m0fnu", 8), "F4": (None, 4), "F6_E2M3": (None, 6), "F6_E3M2": (None, 6),
}


def open_safetensors(file: Path) -> WeightFile:
    """List a safetensors file from its header; no tensor is read."""
    arrays, metadata = safetensors_arrays(file)
    records, stored = records_of_tree(nest_names(arrays, ".", file), file)
    return WeightFile(file, "safetensors", records, stored, files=(file,), metadata=metadata)


def safetensors_arrays(file: Path) -> tuple[dict[str, StoredArray], dict[str, str]]:
    """Every tensor by name, and the ``__metadata__`` strings, checked against the file's size."""
    where = f"weight file {str(file)!r}"
    header, size = _read_header(file)
    metadata = header.pop(METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightFileError(f"{where}: its __metadata__ is not a map of strings")
    start = 8 + size[0]
    data_size = size[1] - start
    arrays: dict[str, StoredArray] = {}
    spans = []
    for name, entry in header.items():
        array = _entry(file, name, entry, start, data_size)
        arrays[name] = array
        spans.append((array.offset - start, array.offset - start + array.nbytes, name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise WeightFileError(f"{where}: tensor {name!r} starts at data byte {begin}, but the tensors before it "
                                  f"end at {end} ({'a gap' if begin > end else 'they overlap'}): the header lies")
        end = stop
    if end != data_size:
        raise WeightFileError(f"{where}: the header describes {end} bytes of data, the file holds {data_size} after "
                              "the header: it is truncated or has bytes appended")
    _confirm(file, set(arrays))
    return arrays, dict(metadata)


def _read_header(file: Path) -> tuple[dict[str, Any], tuple[int, int]]:
    where = f"weight file {str(file)!r}"
    try:
        with open(file, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise WeightFileError(f"{where} is {size} bytes long, too short for a safetensors header "
                                      "(8 bytes of length, then JSON): it is empty or truncated")
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER:
                raise WeightFileError(f"{where}: the header length at byte 0 says {length} bytes, more than the "
                                      f"{MAX_HEADER} safetensors allows: not a safetensors file, or damaged")
            if 8 + length > size:
                raise WeightFileError(f"{where}: the header length at byte 0 says {length} bytes, past the end of "
                                      f"the file ({size} bytes): it is truncated or not a safetensors file")
            raw = f.read(length)
    except OSError as err:
        raise WeightFileError(f"{where} cannot be read: {err.strerror}") from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique)
    except UnicodeDecodeError as err:
        raise WeightFileError(f"{where}: the header is not UTF-8 text (byte {8 + err.start}): the file is "
                              "damaged or not a safetensors file") from None
    except json.JSONDecodeError as err:
        raise WeightFileError(f"{where}: the header is not JSON ({err.msg.removesuffix(' at')} at byte "
                              f"{8 + err.pos}): the file is damaged or not a safetensors file") from None
    except WeightFileError as err:
        raise WeightFileError(f"{where}: {err}: the file is damaged") from None
    if not isinstance(header, dict):
        raise WeightFileError(f"{where}: the header is JSON but not a map of tensors")
    return header, (length, size)


def _entry(file: Path, name: str, entry: Any, start: int, data_size: int) -> StoredArray:
    import ml_dtypes  # noqa: F401 - registers bfloat16 and the float8 types with numpy

    where = f"weight file {str(file)!r}: tensor {name!r}"
    if not isinstance(entry, Mapping) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise WeightFileError(f"{where} has no dtype, shape and data_offsets in the header")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise WeightFileError(f"{where} has dtype {dtype!r}, which safetensors does not define "
                              f"(known: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or any(not _count(d) for d in shape):
        raise WeightFileError(f"{where} has shape {shape!r}, not a list of sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_count, offsets)) \
            or not offsets[0] <= offsets[1] <= data_size:
        raise WeightFileError(f"{where} has data_offsets {offsets!r}, outside the {data_size} bytes of data after "
                              f"the header (which ends at byte {start}): the header lies or the file is truncated")
    numpy_name, bits = DTYPES[dtype]
    needed = math.prod(shape) * bits
    length = offsets[1] - offsets[0]
    if needed % 8 or needed // 8 != length:
        raise WeightFileError(f"{where}: shape {tuple(shape)} of {dtype} needs {needed / 8:g} bytes, its "
                              f"data_offsets span {length}")
    np_dtype = np.dtype(numpy_name).newbyteorder("<") if numpy_name else None
    shown = np.dtype(numpy_name).name if numpy_name else f"{dtype} (packed {bits}-bit, no numpy type)"
    return StoredArray(file, tuple(shape), np_dtype, shown, length, "mapped", offset=start + offsets[0])


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise WeightFileError(f"the header names {twice!r} twice")
    return out


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _confirm(file: Path, names: set[str]) -> None:
    """The safetensors package must read the header the same way."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="numpy") as handle:
            theirs = set(handle.keys())
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightFileError(f"weight file {str(file)!r}: the safetensors package rejects it: {err}") from None
    if theirs != names:
        raise WeightFileError(f"weight file {str(file)!r}: the safetensors package reads other tensor names "
                              f"({len(theirs)} against {len(names)}): the header is ambiguous")
