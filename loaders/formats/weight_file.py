"""An opened weight file: its records, where each array is stored, and what the file says of itself.

Every format ends here. A format module builds a tree of ``StoredArray`` leaves (nested dicts from
msgpack, or names split into paths for safetensors and npz) and ``weight_file`` turns it into records
the way Orbax checkpoints are turned into records (``loaders.checkpoint_layout``): a Linen variables
dict gives collections and kinds, a TrainState dict gives ``params`` and ``OptState``, anything else
has no recorded kind. On top of that:

- digit keys become ints (``to_bytes`` writes lists as ``{"0": ...}``; ``layer.0.weight``);
- dtype and bytes are the file's own, never canonicalized (a float64 array stays float64);
- PyTorch BatchNorm buffers are recognised by name: ``running_mean``/``running_var`` are
  ``BatchStat``, ``num_batches_tracked`` is ``BatchCount`` (a counter Flax keeps nowhere).

>>> import numpy as np
>>> leaf = StoredArray(Path("w.npz"), (3,), np.dtype("float64"), "float64", 24, "inline", value=[0, 0, 0])
>>> records, _ = records_of_tree({"params": {"layers": {"0": {"bias": leaf}}}, "batch_stats": {}}, Path("w.npz"))
>>> [(r.collection, r.path, r.type, r.dtype) for r in records]
[('params', ('layers', 0, 'bias'), 'Param', 'float64')]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import WeightFileError
from inspector.kinds import BATCH_COUNT
from inspector.records import Path as VarPath
from inspector.records import VariableRecord, format_bytes, format_path
from loaders.formats.stored import StoredArray, read_stored, view_stored

Key = tuple[str, VarPath]
_BUFFER_KINDS = {"running_mean": "BatchStat", "running_var": "BatchStat", "num_batches_tracked": BATCH_COUNT}


@dataclasses.dataclass(frozen=True, eq=False)
class WeightFile:
    """One weight source, opened: records sorted by key, and where each record's array lies.

    ``path`` is what the user named (a file, a model folder, a legacy checkpoint); ``files`` every
    file read for it (shards). ``metadata`` is what the file says of itself (safetensors
    ``__metadata__``, a Hugging Face ``config.json``, an index's ``metadata``); ``notes`` are
    observations worth a line (another weight file beside this one, entries that are not arrays).
    """

    path: Path
    format: str
    records: tuple[VariableRecord, ...]
    stored: Mapping[Key, StoredArray]
    files: tuple[Path, ...] = ()
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    step: int | None = None
    steps: tuple[int, ...] = ()

    def stored_array(self, record: VariableRecord) -> StoredArray:
        try:
            return self.stored[record.key]
        except KeyError:
            raise WeightFileError(f"weight file {str(self.path)!r} has no variable {record.full_name!r}") from None

    def read(self, record: VariableRecord) -> Any:
        """The whole array of one record (a memory map where the format allows, never a copy)."""
        return read_stored(self.stored_array(record))

    def view(self, record: VariableRecord) -> np.ndarray | None:
        """An ``np.memmap`` of one record, sliceable without reading the rest; ``None`` when the
        array is not contiguous in the file (chunked msgpack arrays, compressed npz members)."""
        return view_stored(self.stored_array(record))

    def nbytes(self, record: VariableRecord) -> int:
        """Bytes the array occupies, from the file's metadata."""
        return self.stored_array(record).nbytes

    def readable(self, record: VariableRecord) -> bool:
        """Whether the record's values are numbers numpy can read (not raw ``V2`` bytes)."""
        return self.stored_array(record).readable

    @functools.cached_property
    def tree(self) -> dict[str, Any]:
        """The records as a nested dict of shapes and dtypes, for tree views (no array is read)."""
        import jax

        root: dict[str, Any] = {}
        for record in self.records:
            node = root
            keys = ([record.collection] if record.collection else []) + [str(k) for k in record.path]
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            array = self.stored[record.key]
            node[keys[-1]] = (jax.ShapeDtypeStruct(array.shape, array.dtype) if array.readable
                              else f"{record.dtype}{list(record.shape)}")
        return root

    def describe(self) -> str:
        """What was read, e.g. ``msgpack folder /m (3 shards): 16 arrays, 1.0 GiB``."""
        total = sum(a.nbytes for a in self.stored.values())
        where = str(self.path) if len(self.files) <= 1 else f"{self.path} ({len(self.files)} shards)"
        step = ""
        if self.step is not None:
            which = "latest of" if self.steps and self.step == self.steps[-1] else "of"
            step = f" step {self.step} ({which} {', '.join(map(str, self.steps))}),"
        what = "folder" if self.path.is_dir() else "file"
        return f"{self.format} {what}{step} {where}: {len(self.records)} arrays, {format_bytes(total)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "path": str(self.path),
                               "files": [str(f) for f in self.files], "metadata": dict(self.metadata)}
        if self.step is not None:
            out |= {"step": self.step, "steps": list(self.steps)}
        if self.notes:
            out["info"] = list(self.notes)
        return out


@dataclasses.dataclass(frozen=True)
class _Meta:
    """A leaf as ``checkpoint_records`` expects Orbax's metadata: shape, dtype and a name."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str


def records_of_tree(tree: Mapping[str, Any], origin: Path) -> tuple[tuple[VariableRecord, ...], dict[Key, StoredArray]]:
    """Records (sorted) and stored arrays (in the tree's order) of a tree of ``StoredArray`` leaves.

    Raises ``WeightFileError`` when two entries land on one path (``"0"`` and ``0``).
    """
    from loaders.checkpoint_layout import checkpoint_records

    by_disk: dict[tuple, StoredArray] = {}
    meta = _meta_tree(tree, (), by_disk, origin)
    records: list[VariableRecord] = []
    stored: dict[Key, StoredArray] = {}
    at = {disk: i for i, disk in enumerate(by_disk)}  # the file's own order
    file_rank: dict[Key, int] = {}
    for record, leaf in checkpoint_records(meta):
        file_rank[record.key] = at[leaf.disk_path]
        array = by_disk[leaf.disk_path]
        if leaf.key_impl is None:
            record = dataclasses.replace(record, dtype=array.dtype_name, nbytes=array.nbytes, size=array.size,
                                         shape=array.shape)
        else:  # ``uint32`` key data shown as the typed keys it holds, as for a checkpoint
            array = dataclasses.replace(array, key_impl=leaf.key_impl)
        if record.type is None and record.path and record.path[-1] in _BUFFER_KINDS:
            record = dataclasses.replace(record, type=_BUFFER_KINDS[record.path[-1]])
        if record.key in stored:
            raise WeightFileError(f"weight file {str(origin)!r}: two arrays map to the variable "
                                  f"{record.full_name!r}; cannot inspect")
        stored[record.key] = array
        records.append(record)
    stored = {key: stored[key] for key in sorted(stored, key=file_rank.__getitem__)}
    return tuple(sorted(records, key=VariableRecord.sort_key)), stored


def _meta_tree(node: Mapping[str, Any], at: tuple, by_disk: dict[tuple, StoredArray], origin: Path) -> dict:
    out: dict[Any, Any] = {}
    for raw, child in node.items():
        key = int(raw) if isinstance(raw, str) and raw.isdigit() and (raw == "0" or raw[0] != "0") else raw
        if key in out:
            raise WeightFileError(f"weight file {str(origin)!r}: {format_path(at + (raw,))!r} appears twice "
                                  f"(as {key!r} and {str(key)!r}); cannot inspect")
        if isinstance(child, Mapping):
            out[key] = _meta_tree(child, at + (key,), by_disk, origin)
        else:
            by_disk[at + (key,)] = child
            out[key] = _Meta(child.shape, _placement_dtype(child), format_path(at + (key,)))
    return out


def _placement_dtype(array: StoredArray) -> np.dtype:
    """The dtype placement looks at (RNG state is ``uint32``/integer); raw bytes count as ``uint8``."""
    return array.dtype if array.readable else np.dtype(np.uint8)


def nest_names(names: Mapping[str, StoredArray], sep: str, origin: Path) -> dict[str, Any]:
    """Flat names (``encoder.layer.0.weight``) as a nested dict, split on ``sep``.

    >>> nest_names({"a.b": 1, "a.c": 2}, ".", Path("m.safetensors"))
    {'a': {'b': 1, 'c': 2}}
    """
    root: dict[str, Any] = {}
    for name, leaf in names.items():
        keys = name.split(sep)
        node = root
        for i, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise WeightFileError(f"weight file {str(origin)!r}: {sep.join(keys[:i + 1])!r} is an array and "
                                      f"also holds {name!r}; a name cannot be both")
            node = child
        if keys[-1] in node:
            raise WeightFileError(f"weight file {str(origin)!r}: {name!r} is an array and also a prefix of other "
                                  "names; a name cannot be both")
        node[keys[-1]] = leaf
    return root
