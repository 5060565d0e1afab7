"""npz files (``numpy.savez`` / ``savez_compressed``): a zip archive of ``.npy`` arrays.

Keys split on ``/`` become paths (``params/Dense_0/kernel``). Listing reads the zip directory and
each member's ``.npy`` header (numpy's own ``read_magic`` / ``read_array_header_*``, which parse
the header as a literal, never as code). A stored member (``savez``) is contiguous in the file, so
``view`` memory-maps it; a compressed one (``savez_compressed``) can only be decompressed whole.

What the header says is shown as it is: numpy writes ``bfloat16`` as raw ``|V2``, which shows as
``V2 (raw 2-byte)`` and is never taken for any float type. Arrays of Python objects would need
pickle to read: such a file is refused (``allow_pickle`` is never used); text arrays are left out
with a note.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> np.savez(path, **{"params/dense/kernel": np.ones((2, 3), np.float32)})
>>> weights = open_npz(Path(path))
>>> [(r.full_name, r.type, r.shape) for r in weights.records], type(weights.view(weights.records[0])).__name__
([('params/dense/kernel', 'Param', (2, 3))], 'memmap')
"""

from __future__ import annotations

import errno
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from inspector.errors import WeightFileError
from loaders.formats.stored import StoredArray
from loaders.formats.weight_file import WeightFile, nest_names, records_of_tree

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version .. sizes), name length, extra length
_DEFLATE_RATIO = 1100  # deflate cannot expand more than 1032:1; a member claiming more lies


def open_npz(file: Path) -> WeightFile:
    """List an npz file from its zip directory and ``.npy`` headers; no array is read."""
    arrays, notes = npz_arrays(file)
    records, stored = records_of_tree(nest_names(arrays, "/", file), file)
    return WeightFile(file, "npz", records, stored, files=(file,), notes=tuple(notes))


def npz_arrays(file: Path) -> tuple[dict[str, StoredArray], list[str]]:
    """Every array by key, and notes on members that are not numeric arrays."""
    where = f"weight file {str(file)!r}"
    try:
        size = os.stat(file).st_size
    except OSError as err:
        raise WeightFileError(f"{where} cannot be read: {err.strerror}") from None
    if size == 0:
        raise WeightFileError(f"{where} is empty (0 bytes): it was not written completely")
    arrays: dict[str, StoredArray] = {}
    notes: list[str] = []
    try:
        with zipfile.ZipFile(file) as archive, open(file, "rb") as raw:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                twice = next(n for n in names if names.count(n) > 1)
                raise WeightFileError(f"{where}: the zip holds two members named {twice!r}; cannot tell which is "
                                      "meant")
            for info in infos:
                if not info.filename:
                    raise WeightFileError(f"{where}: a member of the zip directory has an empty name (at byte "
                                          f"{info.header_offset}): the file is damaged")
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    notes.append(f"member {info.filename!r} is not a .npy array: not listed")
                    continue
                array = _member(archive, raw, info, file, size)
                if isinstance(array, str):
                    notes.append(array)
                else:
                    arrays[info.filename[:-4]] = array
    except (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, EOFError, ValueError, NotImplementedError,
            RuntimeError) as err:
        if isinstance(err, WeightFileError):
            raise
        raise WeightFileError(f"{where} is not a readable zip archive ({err}); an npz file is a zip of .npy "
                              "arrays: it is truncated, damaged or not an npz file") from None
    except OSError as err:
        if err.errno == errno.EINVAL:  # a seek to a negative offset: the zip directory lies
            raise WeightFileError(f"{where} is not a readable zip archive (its directory points before the start "
                                  "of the file): it is damaged or not an npz file") from None
        raise WeightFileError(f"{where} cannot be read: {err.strerror}") from None
    return arrays, notes


def _member(archive: zipfile.ZipFile, raw: BinaryIO, info: zipfile.ZipInfo, file: Path,
            size: int) -> StoredArray | str:
    """One member's array from its ``.npy`` header, or a note when it holds no numbers."""
    where = f"weight file {str(file)!r}: member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise WeightFileError(f"{where} is encrypted; npz files are never encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        start = _data_start(raw, info, where, size)
        if info.compress_size != info.file_size or start + info.file_size > size:
            raise WeightFileError(f"{where}: its {info.file_size} bytes at byte {start} run past the end of the "
                                  f"file ({size} bytes) or disagree with the directory: it is truncated or damaged")
        raw.seek(start)
        header = _npy_header(raw, where)
        offset, how = start + header[3], "mapped"
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.header_offset + info.compress_size > size:
            raise WeightFileError(f"{where}: its {info.compress_size} compressed bytes at byte {info.header_offset} "
                                  f"run past the end of the file ({size} bytes): it is truncated or damaged")
        if info.file_size > info.compress_size * _DEFLATE_RATIO + (1 << 16):
            raise WeightFileError(f"{where} claims {info.file_size} bytes from {info.compress_size} compressed, "
                                  "more than deflate can produce: the directory lies")
        with archive.open(info) as stream:
            header = _npy_header(_Counting(stream), where)
        offset, how = 0, "zip"
    else:
        raise WeightFileError(f"{where} is compressed with zip method {info.compress_type}; numpy writes only "
                              "stored or deflated members")
    shape, fortran, dtype, header_bytes = header
    if dtype.hasobject:
        raise WeightFileError(f"{where} holds Python objects (dtype object); reading them needs pickle, which is "
                              "never used: save numeric arrays instead")
    if dtype.names is not None or dtype.subdtype is not None:
        raise WeightFileError(f"{where} holds a structured dtype {dtype}, not numbers; save one array per field")
    nbytes = math.prod(shape) * dtype.itemsize
    if header_bytes + nbytes != info.file_size:
        raise WeightFileError(f"{where}: shape {shape} of {dtype} needs {nbytes} bytes after its {header_bytes}-byte "
                              f"header, the member holds {info.file_size - header_bytes}: it is damaged")
    if dtype.kind in "USMm":
        return f"member {info.filename!r} holds {dtype.name} values, not numbers: not listed"
    return StoredArray(file, tuple(shape), dtype, _dtype_name(dtype), nbytes, how, offset=offset,
                       member=info.filename if how == "zip" else None, skip=header_bytes, fortran=fortran)


def _data_start(raw: BinaryIO, info: zipfile.ZipInfo, where: str, size: int) -> int:
    """Where a stored member's bytes begin: after its local header, whose lengths may differ from
    the central directory's (zipfile checks this only when it opens a member; a memory map never does)."""
    if info.header_offset + _LOCAL_HEADER.size > size:
        raise WeightFileError(f"{where}: its local header at byte {info.header_offset} lies past the end of the "
                              f"file ({size} bytes): it is truncated")
    raw.seek(info.header_offset)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise WeightFileError(f"{where}: no local header at byte {info.header_offset}: the zip directory lies")
    name = raw.read(name_length)
    expected = info.filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
    if name != expected:
        raise WeightFileError(f"{where}: the local header at byte {info.header_offset} names {name[:60]!r}: the "
                              "zip directory and the data disagree")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _npy_header(stream: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header bytes)`` of a ``.npy`` stream positioned at its start."""
    import ml_dtypes  # noqa: F401 - dtypes saved by name resolve like numpy's own

    begin = stream.tell()
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise WeightFileError(f"{where} is a .npy file of version {version[0]}.{version[1]}, which is not read "
                                  "(versions 1.0 and 2.0 are)")
    except WeightFileError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises many types on garbage
        raise WeightFileError(f"{where} has no valid .npy header ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:120] if str(err) else ''}): it is damaged") from None
    return tuple(int(d) for d in shape), bool(fortran), dtype, stream.tell() - begin


def _dtype_name(dtype: np.dtype) -> str:
    """numpy's name, honest about what the header cannot say."""
    if dtype.type is np.void:
        return f"V{dtype.itemsize} (raw {dtype.itemsize}-byte)"
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False):
        return f"{dtype.name} (big-endian)"
    return dtype.name


class _Counting:
    """A read-only stream that knows its position (a zip member stream's ``tell`` may not)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.pos = stream, 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos
