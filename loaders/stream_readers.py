"""Piece readers for ``loaders.streaming``: one per kind of source, the same small protocol.

Per record: ``readable`` (values are numbers), ``count``/``itemsize``/``shape``/``nbytes`` of the
*stored* values (a typed key as its ``uint32`` key data), ``bounds(record, budget)`` (``None``: any
piece boundaries; else the element offsets pieces must follow), ``read(record, start, stop)`` (those
flattened elements as numbers) and ``whole(record)`` (the value as ``LoadedSource.read`` gives it).
Readers are safe to call from several threads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from typing import Any

import numpy as np

from inspector.records import VariableRecord, format_path
from loaders.formats.stored import StoredArray, _fill, check_range, read_stored
from loaders.source import LoadedSource


def _numeric_dtype(dtype: Any) -> bool:
    import jax

    return np.dtype(dtype).kind in "biufc" or jax.numpy.issubdtype(dtype, np.floating)


class MemoryReader:
    """Values already in memory (a live model): pieces are views, nothing is read."""

    def __init__(self, source: LoadedSource):
        self.source = source

    def _flat(self, record: VariableRecord) -> np.ndarray:
        from inspector.stats import _as_numpy

        return _as_numpy(self.source.read(record)).reshape(-1)

    def _spec(self, record: VariableRecord) -> Any:
        import jax

        value = self.source.value(record)
        if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            return jax.eval_shape(jax.random.key_data, value)
        return value

    def readable(self, record: VariableRecord) -> bool:
        import jax

        value = self.source.value(record)
        if isinstance(value, jax.ShapeDtypeStruct) or not hasattr(value, "dtype") and not np.isscalar(value):
            return False
        spec = self._spec(record)
        return _numeric_dtype(getattr(spec, "dtype", np.asarray(spec).dtype))

    def shape(self, record: VariableRecord) -> tuple[int, ...]:
        return tuple(np.shape(self._spec(record)))

    def count(self, record: VariableRecord) -> int:
        return math.prod(self.shape(record))

    def itemsize(self, record: VariableRecord) -> int:
        spec = self._spec(record)
        return np.dtype(getattr(spec, "dtype", np.asarray(spec).dtype)).itemsize

    def nbytes(self, record: VariableRecord) -> int:
        return self.count(record) * self.itemsize(record)

    def bounds(self, record: VariableRecord, budget: int) -> None:
        return None

    def read(self, record: VariableRecord, start: int, stop: int) -> np.ndarray:
        return self._flat(record)[start:stop]

    def whole(self, record: VariableRecord) -> Any:
        return self.source.read(record)


class WeightReader:
    """A weight file: contiguous bytes are read piece by piece with positioned reads (``pread``),
    never memory-mapped, so what is resident is exactly the pieces in flight."""

    def __init__(self, weights: Any):
        self.weights = weights

    def _stored(self, record: VariableRecord) -> StoredArray:
        return dataclasses.replace(self.weights.stored_array(record), key_impl=None)

    def readable(self, record: VariableRecord) -> bool:
        return self.weights.readable(record)

    def shape(self, record: VariableRecord) -> tuple[int, ...]:
        return self._stored(record).shape

    def count(self, record: VariableRecord) -> int:
        return self._stored(record).size

    def itemsize(self, record: VariableRecord) -> int:
        return self._stored(record).dtype.itemsize

    def nbytes(self, record: VariableRecord) -> int:
        return self._stored(record).nbytes

    def bounds(self, record: VariableRecord, budget: int) -> tuple[int, ...] | None:
        array = self._stored(record)
        if array.how in ("mapped", "chunks") and not array.fortran:
            return None
        return (0, array.size)

    def read(self, record: VariableRecord, start: int, stop: int) -> np.ndarray:
        array = self._stored(record)
        if self.bounds(record, 0) is not None:
            return np.asarray(read_stored(array)).reshape(-1)[start:stop]
        segments = [(array.offset, array.nbytes)] if array.how == "mapped" else list(array.chunks)
        size = array.dtype.itemsize
        out = np.empty(stop - start, array.dtype)
        buffer = memoryview(out.view(np.uint8))
        want, at, done = start * size, 0, 0
        with open(array.file, "rb") as f:
            for offset, length in segments:
                if done == len(buffer):
                    break
                if at + length > want:
                    skip = max(0, want - at)
                    take = min(length - skip, len(buffer) - done)
                    check_range(array.file, offset + skip, take, "the array's data")
                    f.seek(offset + skip)
                    _fill(f, buffer[done:done + take], array.file, offset + skip)
                    done += take
                    want += take
                at += length
        return out

    def whole(self, record: VariableRecord) -> Any:
        return self.weights.read(record)


class OrbaxReader:
    """An Orbax checkpoint, read with TensorStore directly from the spec Orbax's metadata gives
    (the array's name, the item directory, OCDBT and zarr version): pieces are slabs of whole
    stored chunks along the first axis. Where the spec cannot be opened, the array is read whole
    by an Orbax partial restore."""

    def __init__(self, checkpoint: Any):
        self.checkpoint = checkpoint
        self.lock = threading.Lock()
        self.opened: dict[Any, Any] = {}
        self._context = None
        try:
            self.options = json.loads((checkpoint.directory / "_METADATA").read_text())
        except (OSError, ValueError):
            self.options = {}

    def _leaf(self, record: VariableRecord) -> Any:
        return self.checkpoint.stored[record.key]

    def readable(self, record: VariableRecord) -> bool:
        return True

    def shape(self, record: VariableRecord) -> tuple[int, ...]:
        return tuple(self._leaf(record).shape)

    def count(self, record: VariableRecord) -> int:
        return math.prod(self.shape(record))

    def itemsize(self, record: VariableRecord) -> int:
        return np.dtype(self._leaf(record).dtype).itemsize

    def nbytes(self, record: VariableRecord) -> int:
        return self.count(record) * self.itemsize(record)

    def _store(self, record: VariableRecord) -> Any:
        """The opened TensorStore of one array, or None when only Orbax can read it."""
        with self.lock:
            if record.key in self.opened:
                return self.opened[record.key]
        store = None
        try:
            store = self._open(record)
        except Exception:  # noqa: BLE001 - any other layout: Orbax reads it whole
            store = None
        with self.lock:
            self.opened[record.key] = store
        return store

    def _open(self, record: VariableRecord) -> Any:
        import tensorstore as ts

        leaf = self._leaf(record)
        node = self.checkpoint.tree
        for key in leaf.disk_path:
            node = node[key]
        name = getattr(node, "name", None) or ".".join(str(k) for k in leaf.disk_path)
        directory = str(self.checkpoint.directory).rstrip("/") + "/"
        if self.options.get("use_ocdbt", True):
            kvstore = {"driver": "ocdbt", "base": {"driver": "file", "path": directory}, "path": name}
        else:
            kvstore = {"driver": "file", "path": directory + name + "/"}
        driver = "zarr3" if self.options.get("use_zarr3", False) else "zarr"
        with self.lock:
            if self._context is None:
                self._context = ts.Context({"cache_pool": {"total_bytes_limit": 0}})
        store = ts.open({"driver": driver, "kvstore": kvstore}, open=True, read=True,
                        context=self._context).result()
        if tuple(store.shape) != tuple(leaf.shape):
            return None
        return store

    def bounds(self, record: VariableRecord, budget: int) -> tuple[int, ...] | None:
        shape = self.shape(record)
        count = math.prod(shape)
        store = self._store(record)
        if store is None or not shape or count == 0:
            return (0, count)
        chunk = store.chunk_layout.read_chunk.shape
        rows = int(chunk[0]) if chunk is not None and chunk[0] else shape[0]
        row_elements = count // shape[0]
        slab_bytes = max(rows * row_elements * self.itemsize(record), 1)
        rows *= max(1, min(budget // 4, 64 << 20) // slab_bytes)  # several thin chunks per read
        return tuple(min(r, shape[0]) * row_elements for r in range(0, shape[0], rows)) + (count,)

    def read(self, record: VariableRecord, start: int, stop: int) -> np.ndarray:
        from loaders.checkpoint import orbax_errors

        shape = self.shape(record)
        if stop <= start:
            return np.empty(0, self._leaf(record).dtype)
        store = self._store(record)
        if store is None:
            from inspector.stats import _as_numpy

            return _as_numpy(self.checkpoint.read(record)).reshape(-1)[start:stop]
        name = record.full_name or format_path(record.path)
        with orbax_errors(self.checkpoint.directory, f"reading {name!r}"):
            if not shape:
                return np.asarray(store.read().result()).reshape(-1)
            row_elements = math.prod(shape[1:])
            array = store[start // row_elements:stop // row_elements].read().result()
        return np.asarray(array).reshape(-1)

    def whole(self, record: VariableRecord) -> Any:
        store = self._store(record)
        leaf = self._leaf(record)
        if store is None:
            return self.checkpoint.read(record)
        from loaders.checkpoint import orbax_errors

        with orbax_errors(self.checkpoint.directory, f"reading {record.full_name!r}"):
            value = np.asarray(store.read().result())
        if leaf.key_impl is not None:
            import jax

            return jax.random.wrap_key_data(value, impl=leaf.key_impl)
        return value.astype(leaf.dtype) if value.dtype != leaf.dtype else value
