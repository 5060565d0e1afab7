"""Weight files as sources: flax msgpack, legacy flax checkpoints, safetensors, npz, model folders.

One module per format turns a file into a ``WeightFile``: the same records as any other source,
and for each record where its bytes are. Listing reads headers only (a msgpack header walker that
seeks past payloads, the safetensors JSON header, the zip directory and ``.npy`` headers), so
``show`` costs the same for 1 MB and 100 GB; no array is allocated to list it.

**The reading protocol.** Every opened weight file offers, per record:

- ``read(record) -> np.ndarray``: the whole array, memory-mapped and zero-copy where the format
  allows (safetensors, stored npz members, msgpack ext payloads); read once into memory where it
  does not (compressed npz members, flax's chunked msgpack arrays over 2^30 bytes). Typed PRNG
  keys come back as jax key arrays;
- ``view(record) -> np.ndarray | None``: an ``np.memmap``-backed view that can be sliced without
  reading the rest, or ``None`` where the bytes are not contiguous in the file (compressed npz
  members, chunked msgpack arrays) — then ``read`` is the only way;
- ``nbytes(record) -> int``: the bytes the array occupies, from metadata (``record.nbytes`` too);
- ``readable(record) -> bool``: whether the values are numbers numpy can read (raw ``V2`` bytes of
  an npz-saved bfloat16, packed 4-bit floats are listed but not read as numbers).

Reads are stateless (each opens what it needs), so they may run on several threads at once. Every
length and offset taken from a file is checked against the file's size before it is used, and every
failure is one ``WeightFileError`` naming the file, the byte offset or entry, and what is wrong.

>>> format_of_name("flax_model.msgpack"), format_of_name("checkpoint_12"), format_of_name("model.bin")
('msgpack', 'legacy', None)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.errors import WeightFileError

if TYPE_CHECKING:
    from loaders.formats.weight_file import WeightFile

_LEGACY = re.compile(r"^checkpoint_\d+$")
SUFFIXES = {".msgpack": "msgpack", ".safetensors": "safetensors", ".npz": "npz",
            ".msgpack.index.json": "index", ".safetensors.index.json": "index"}
KNOWN = "a .msgpack, .safetensors or .npz file, a legacy flax checkpoint_<N>, or a *.index.json of shards"


def format_of_name(name: str) -> str | None:
    """The format a file name says (``msgpack``, ``safetensors``, ``npz``, ``index``, ``legacy``), or None."""
    base = Path(name).name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if base.endswith(suffix):
            return SUFFIXES[suffix]
    return "legacy" if _LEGACY.match(base) else None


def open_weight_file(file: Path) -> WeightFile:
    """Open a weight file by its name's format; raises ``WeightFileError`` for anything unreadable."""
    kind = format_of_name(file.name)
    try:
        exists, is_dir = file.exists(), file.is_dir()
    except OSError as err:  # a name the system refuses (too long, a loop of links)
        raise WeightFileError(f"weight file {str(file)!r} cannot be opened: {err.strerror}") from None
    if not exists:
        raise WeightFileError(f"weight file {str(file)!r} does not exist; check the path")
    if is_dir:
        raise WeightFileError(f"{str(file)!r} is a folder; name it without a file format to read it as one")
    if kind == "msgpack":
        from loaders.formats.msgpack_file import open_msgpack

        return open_msgpack(file)
    if kind == "safetensors":
        from loaders.formats.safetensors_file import open_safetensors

        return open_safetensors(file)
    if kind == "npz":
        from loaders.formats.npz_file import open_npz

        return open_npz(file)
    if kind == "index":
        from loaders.formats.model_folder import open_index

        return open_index(file)
    if kind == "legacy":
        from loaders.formats.legacy import open_legacy_file

        return open_legacy_file(file)
    raise WeightFileError(f"file {str(file)!r} is not a weight file this tool reads: expected {KNOWN}")
