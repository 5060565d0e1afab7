"""Where one array's bytes are in a weight file, and how to get them without reading the rest.

Every format module turns its file's structure into ``StoredArray`` objects; reading is the same
for all of them, so it lives here once:

- ``mapped``: the raw bytes lie contiguous at ``offset`` (safetensors data, a stored npz member,
  a msgpack ext payload) and are memory-mapped, never copied;
- ``chunks``: the bytes lie in several contiguous pieces (flax's msgpack arrays over 2^30 bytes),
  read into one array;
- ``zip``: a compressed npz member, decompressed as a stream into one array;
- ``inline``: a scalar the file keeps in its structure (a msgpack int), held as a Python value.

Nothing here trusts a length read from a file: every range is checked against the file's size,
so a lying header fails with a ``WeightFileError`` instead of an allocation or a bus error.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "raw.bin")
>>> np.arange(6, dtype=np.float32).tofile(path)
>>> a = StoredArray(Path(path), (2, 3), np.dtype(np.float32), "float32", 24, "mapped", offset=0)
>>> read_stored(a)[1].tolist(), type(view_stored(a)).__name__
([3.0, 4.0, 5.0], 'memmap')
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inspector.errors import WeightFileError

How = Literal["mapped", "chunks", "zip", "inline"]
_COPY_BLOCK = 1 << 24  # bytes per readinto of a chunked or compressed array


@dataclasses.dataclass(frozen=True)
class StoredArray:
    """One array as a file stores it: shape, dtype, exact bytes, and where the bytes are.

    ``dtype`` is ``None`` when numpy has no type for the stored values (packed 4-bit floats):
    such an array is listed but cannot be read. ``dtype_name`` is what the record shows.
    """

    file: Path
    shape: tuple[int, ...]
    dtype: np.dtype | None
    dtype_name: str
    nbytes: int
    how: How
    offset: int = 0
    chunks: tuple[tuple[int, int], ...] = ()  # (offset, nbytes) pieces in order, for ``chunks``
    member: str | None = None  # the zip member, for ``zip``
    skip: int = 0  # bytes of the member before the array (the .npy header), for ``zip``
    fortran: bool = False  # column-major data (an npz written from a Fortran-ordered array)
    value: Any = None  # the Python scalar, for ``inline``
    key_impl: str | None = None  # ``uint32`` key data that the record shows as typed PRNG keys

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def readable(self) -> bool:
        """Whether values can be read as numbers (raw ``V2`` bytes and packed types cannot)."""
        return self.dtype is not None and self.dtype.type is not np.void


def read_stored(array: StoredArray) -> np.ndarray:
    """The whole array: a zero-copy memory map where the bytes are contiguous, else read once.

    Typed PRNG keys (``key_impl``) come back as jax key arrays, as a checkpoint's do.
    """
    if array.key_impl is not None:
        import jax

        return jax.random.wrap_key_data(np.array(read_stored(dataclasses.replace(array, key_impl=None))),
                                        impl=array.key_impl)
    if array.dtype is None:
        raise WeightFileError(f"weight file {str(array.file)!r}: values of type {array.dtype_name} cannot be "
                              "read (numpy has no type for them)")
    if array.how == "inline":
        return np.asarray(array.value, dtype=array.dtype)
    if array.how == "mapped":
        return np.asarray(view_stored(array))
    if array.how == "chunks":
        return _read_chunks(array)
    return _read_zip_member(array)


def view_stored(array: StoredArray) -> np.memmap | np.ndarray | None:
    """A memory-mapped view, sliceable without reading the rest; ``None`` where the bytes are not
    contiguous in the file (chunked or compressed arrays)."""
    if array.how != "mapped" or array.dtype is None:
        return None
    if array.size == 0:
        return np.empty(array.shape, array.dtype)
    check_range(array.file, array.offset, array.nbytes, "the array's data")
    try:
        return np.memmap(array.file, dtype=array.dtype, mode="r", offset=array.offset, shape=array.shape,
                         order="F" if array.fortran else "C")
    except (OSError, ValueError) as err:
        raise WeightFileError(f"weight file {str(array.file)!r}: cannot map {array.nbytes} bytes at byte "
                              f"{array.offset}: {err}") from None


def check_range(file: Path, offset: int, length: int, what: str) -> None:
    """Raise ``WeightFileError`` unless ``[offset, offset + length)`` lies inside ``file`` now."""
    try:
        size = os.stat(file).st_size
    except OSError as err:
        raise WeightFileError(f"weight file {str(file)!r} cannot be read: {err.strerror}") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise WeightFileError(f"weight file {str(file)!r}: {what} at byte {offset} ({length} bytes) runs past "
                              f"the end of the file ({size} bytes): it is truncated or was changed since it was "
                              "listed")


def _read_chunks(array: StoredArray) -> np.ndarray:
    out = np.empty(array.size, array.dtype)  # size checked against the chunks' bytes, which lie in the file
    buffer = memoryview(out.view(np.uint8))
    at = 0
    try:
        with open(array.file, "rb") as f:
            for offset, length in array.chunks:
                check_range(array.file, offset, length, "an array chunk")
                f.seek(offset)
                _fill(f, buffer[at:at + length], array.file, offset)
                at += length
    except OSError as err:
        raise WeightFileError(f"weight file {str(array.file)!r} cannot be read: {err.strerror}") from None
    return out.reshape(array.shape)


def _read_zip_member(array: StoredArray) -> np.ndarray:
    import zipfile
    import zlib

    out = np.empty(array.size, array.dtype)  # size checked against the member's sizes when listed
    buffer = memoryview(out.view(np.uint8))
    where = f"weight file {str(array.file)!r}: member {array.member!r}"
    try:
        with zipfile.ZipFile(array.file) as archive, archive.open(array.member) as stream:
            if len(stream.read(array.skip)) != array.skip:
                raise WeightFileError(f"{where}: it ends inside its .npy header")
            _fill(stream, buffer, array.file, None, where=where)
            if stream.read(1):
                raise WeightFileError(f"{where}: it holds more bytes than its shape says")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, NotImplementedError, RuntimeError) as err:
        raise WeightFileError(f"{where} cannot be decompressed: {err}") from None
    if array.fortran:
        return out.reshape(array.shape[::-1]).T
    return out.reshape(array.shape)


def _fill(stream: Any, target: memoryview, file: Path, offset: int | None, *, where: str = "") -> None:
    """Fill ``target`` from ``stream`` in blocks; a short read is a truncated file."""
    done = 0
    while done < len(target):
        got = stream.readinto(target[done:done + _COPY_BLOCK])
        if not got:
            at = f" at byte {offset + done}" if offset is not None else ""
            raise WeightFileError((where or f"weight file {str(file)!r}") + f": the data ends early{at} "
                                  f"({done} of {len(target)} bytes): the file is truncated")
        done += got
