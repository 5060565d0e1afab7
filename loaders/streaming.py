"""Values at bandwidth: every array of a source read once, in pieces, on a small thread pool.

One engine serves ``show --values`` (statistics), ``diff --values`` (value distances), the app's
value comparison and the converter (whole arrays in order):

- **Pieces.** Each array is read as slices of its flattened (C-order) values. Where the bytes lie
  contiguous in a file (safetensors, stored npz members, msgpack payloads, flax's chunked msgpack
  arrays) a piece is any slice, read with one positioned read, so an array of any size is read
  within the budget. An Orbax/TensorStore array is read in slabs of whole stored chunks (rows of
  the chunk grid): a TensorStore slice decompresses every chunk it touches, so a chunk is never
  sliced twice. Compressed npz members and inline scalars are read whole.
- **Threads.** ``WORKERS`` (2) threads read and reduce pieces (decompression, I/O and numpy all
  release the GIL); results are merged in order on the calling thread, so statistics are those of
  one pass (``inspector.stats.RunningStats``, ``inspector.value_diff.RunningDiff``).
- **Memory.** The pieces in flight (submitted, running, or held by the caller) never exceed
  ``budget`` bytes, except one piece larger than the budget (one Orbax chunk), read alone.
- **Progress.** ``progress(Progress)`` after every piece: arrays and bytes done, rate, ETA.
- **Ctrl-C.** ``KeyboardInterrupt`` reaches the caller at once; queued pieces are cancelled and
  the running ones finish (one piece each) while the caller exits.

The reusable entry points: ``stream_values(source, records, budget=, progress=)`` yields
``(record, array)`` in order (typed keys as key arrays, as ``LoadedSource.read`` gives them),
``source_with_stats`` and ``stream_diffs``.

>>> parse_budget("256MiB") == 256 << 20, parse_budget("1.5 GiB") == 3 << 29, parse_budget("4096")
(True, True, 4096)
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from inspector.align import Guess
from inspector.diffing import DiffEntry, Tolerance, comparable
from inspector.errors import InspectorError
from inspector.records import VariableRecord, format_bytes
from inspector.stats import RunningStats
from inspector.value_diff import RunningDiff, ValueDiff
from loaders.source import LoadedSource

WORKERS = 2  # two readers keep both cores of a small machine busy; more only add contention
DEFAULT_BUDGET = 256 << 20
MAX_PIECE = 32 << 20  # bytes per piece where pieces are free: large enough for full-speed reads
_MAX_PENDING = 64
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 10 ** 6, "gb": 10 ** 9}


def parse_budget(text: str) -> int:
    """Bytes from ``256MiB``, ``512 KiB``, ``1.5GiB`` or a plain byte count; at least 1 KiB."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise InspectorError(f"memory budget {text!r} is not a size: write it like 256MiB, 512KiB or 2GiB")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1024:
        raise InspectorError(f"memory budget {text!r} is below 1 KiB: give at least 1KiB (default 256MiB)")
    return value


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a stream is: arrays and bytes done of the total, seconds since it started."""

    arrays_done: int
    arrays_total: int
    bytes_done: int
    bytes_total: int
    seconds: float

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before anything is done)."""
        return (self.bytes_total - self.bytes_done) / self.rate if self.rate > 0 else None

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0

    def text(self) -> str:
        """``5/16 arrays, 320.0 MiB of 1.0 GiB, 410.2 MiB/s, ETA 2 s``."""
        eta = f", ETA {self.eta:.0f} s" if self.eta is not None and self.bytes_done < self.bytes_total else ""
        return (f"{self.arrays_done}/{self.arrays_total} arrays, {format_bytes(self.bytes_done)} of "
                f"{format_bytes(self.bytes_total)}, {format_bytes(int(self.rate))}/s{eta}")


ProgressFn = Callable[[Progress], None]


# --- readers: where each array's pieces come from ------------------------------------------------

def reader_of(source: LoadedSource) -> Any:
    """The piece reader of a source: Orbax checkpoint, weight file, or values in memory."""
    from loaders.checkpoint import Checkpoint
    from loaders.formats.weight_file import WeightFile

    if isinstance(source.obj, Checkpoint):
        from loaders.stream_readers import OrbaxReader

        return OrbaxReader(source.obj)
    if isinstance(source.obj, WeightFile):
        from loaders.stream_readers import WeightReader

        return WeightReader(source.obj)
    from loaders.stream_readers import MemoryReader

    return MemoryReader(source)


def _ranges(bounds: Sequence[int] | None, count: int, piece: int) -> list[tuple[int, int]]:
    if bounds is None:
        return [(s, min(s + piece, count)) for s in range(0, count, piece)] or [(0, 0)]
    return list(zip(bounds[:-1], bounds[1:])) or [(0, 0)]


def _piece_elements(budget: int, itemsize: int) -> int:
    return max(1, min(MAX_PIECE, budget // (2 * WORKERS)) // max(itemsize, 1))


# --- the engine ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Task:
    item: int
    start: int
    nbytes: int
    run: Callable[[], Any]


def _run_ordered(tasks: Iterable[_Task], budget: int) -> Iterator[tuple[_Task, Any]]:
    """Run tasks on the pool, ahead of the caller within ``budget`` bytes; yield results in order."""
    pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="inspector-values")
    pending: collections.deque = collections.deque()
    inflight = 0
    todo = iter(tasks)
    upcoming = next(todo, None)
    try:
        while True:
            while upcoming is not None and len(pending) < _MAX_PENDING and (
                    not pending or inflight + upcoming.nbytes <= budget):
                pending.append((upcoming, pool.submit(upcoming.run)))
                inflight += upcoming.nbytes
                upcoming = next(todo, None)
            if not pending:
                return
            task, future = pending.popleft()
            result = _wait(future)
            yield task, result
            inflight -= task.nbytes
            del result
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def _wait(future: concurrent.futures.Future) -> Any:
    """The future's result, waking often so that Ctrl-C is never held up by a long read."""
    while True:
        try:
            return future.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            continue


class _Tracker:
    """Counts pieces and arrays done and reports ``Progress`` (from the calling thread only)."""

    def __init__(self, pieces: Sequence[int], total_bytes: int, progress: ProgressFn | None):
        self.left = list(pieces)
        self.arrays = 0
        self.bytes = 0
        self.total = total_bytes
        self.progress = progress
        self.started = time.perf_counter()

    def done(self, item: int, nbytes: int) -> bool:
        """One piece of ``item`` done; True when it was the item's last."""
        self.left[item] -= 1
        self.bytes += nbytes
        last = self.left[item] == 0
        self.arrays += last
        if self.progress is not None:
            self.progress(Progress(self.arrays, len(self.left), self.bytes, self.total,
                                   time.perf_counter() - self.started))
        return last


def stream_values(source: LoadedSource, records: Sequence[VariableRecord], *, budget: int = DEFAULT_BUDGET,
                  progress: ProgressFn | None = None) -> Iterator[tuple[VariableRecord, Any]]:
    """Each record's whole array, in order, read ahead on the pool within ``budget``.

    Arrays are what ``source.read(record)`` gives (numpy arrays; typed keys as key arrays). For a
    converter: ``for record, array in stream_values(src, src.records): ...``; the memory held is
    the budget plus the array the caller holds.
    """
    reader = reader_of(source)
    tasks = [_Task(i, 0, reader.nbytes(r), (lambda r=r: reader.whole(r))) for i, r in enumerate(records)]
    tracker = _Tracker([1] * len(records), sum(t.nbytes for t in tasks), progress)
    for task, array in _run_ordered(tasks, budget):
        tracker.done(task.item, task.nbytes)
        yield records[task.item], array


def unreadable_note(record: VariableRecord) -> str:
    return (f"{record.full_name!r}: no statistics of {record.dtype} values (the file does not say what numbers "
            "they are)")


def source_with_stats(source: LoadedSource, *, budget: int = DEFAULT_BUDGET,
                      progress: ProgressFn | None = None) -> LoadedSource:
    """The source with ``stats`` on every record whose values are numbers, read piece by piece.

    Records whose values cannot be read as numbers (raw ``V2`` bytes) keep no statistics and get
    a note each.
    """
    reader = reader_of(source)
    records = list(source.records)
    wanted = [i for i, r in enumerate(records) if reader.readable(r)]
    tasks: list[_Task] = []
    pieces = []
    for item, i in enumerate(wanted):
        record = records[i]
        size = reader.itemsize(record)
        ranges = _ranges(reader.bounds(record, budget), reader.count(record), _piece_elements(budget, size))
        pieces.append(len(ranges))
        tasks += [_Task(item, s, (t - s) * size,
                        (lambda r=record, s=s, t=t: RunningStats.of(reader.read(r, s, t)))) for s, t in ranges]
    tracker = _Tracker(pieces, sum(t.nbytes for t in tasks), progress)
    running = [RunningStats() for _ in wanted]
    for task, part in _run_ordered(tasks, budget):
        running[task.item].merge(part)
        tracker.done(task.item, task.nbytes)
    for item, i in enumerate(wanted):
        records[i] = dataclasses.replace(records[i], stats=running[item].result())
    skipped = [unreadable_note(r) for r in records if not reader.readable(r) and source.on_disk]
    return dataclasses.replace(source, records=tuple(records), notes=source.notes + tuple(skipped))


def stream_diffs(left: LoadedSource, right: LoadedSource, entries: Sequence[DiffEntry], *,
                 tolerance: Tolerance = Tolerance(), budget: int = DEFAULT_BUDGET,
                 progress: ProgressFn | None = None) -> dict[int, ValueDiff | None]:
    """The value distance of every comparable pair (by position in ``entries``), both sides read in
    the same pieces; ``inspector.diffing.with_value_diffs`` puts them into the entries.

    A pair whose values are not numbers on one side, or whose stored element counts differ, gets
    None (not compared), as ``compare_values`` gives.
    """
    lr, rr = reader_of(left), reader_of(right)
    out: dict[int, ValueDiff | None] = {}
    pairs = []
    for i, entry in enumerate(entries):
        if entry.transform is not None and entry.left is not None and entry.right is not None \
                and not isinstance(entry.evidence, Guess):
            out[i] = _transformed_diff(left, right, entry, tolerance)
            continue
        if not comparable(entry):
            continue
        a, b = entry.left, entry.right
        if not (lr.readable(a) and rr.readable(b)) or lr.count(a) != rr.count(b):
            out[i] = None
            continue
        pairs.append((i, a, b))
    tasks: list[_Task] = []
    pieces = []
    for item, (_, a, b) in enumerate(pairs):
        size = lr.itemsize(a) + rr.itemsize(b)
        ranges = _ranges(_common(lr.bounds(a, budget), rr.bounds(b, budget), lr.count(a)), lr.count(a),
                         _piece_elements(budget, size))
        pieces.append(len(ranges))
        tasks += [_Task(item, s, (t - s) * size, (lambda a=a, b=b, s=s, t=t: RunningDiff.of(
            lr.read(a, s, t), rr.read(b, s, t), offset=s, rtol=tolerance.rtol, atol=tolerance.atol)))
            for s, t in ranges]
    tracker = _Tracker(pieces, sum(t.nbytes for t in tasks), progress)
    running = [RunningDiff(rtol=tolerance.rtol, atol=tolerance.atol) for _ in pairs]
    for task, part in _run_ordered(tasks, budget):
        running[task.item].merge(part)
        tracker.done(task.item, task.nbytes)
    for item, (i, a, _) in enumerate(pairs):
        out[i] = running[item].result(lr.shape(a))
    return out


def _transformed_diff(left: LoadedSource, right: LoadedSource, entry: DiffEntry,
                      tolerance: Tolerance) -> ValueDiff | None:
    """A layout change (reshape, transpose, concat, split) reorders elements, so the two sides
    cannot be read in matching slices: the pair is read whole and compared after the transform."""
    import numpy as np

    from inspector.align.transforms import TransformError
    from inspector.diffing import compare_values

    parts = [np.asarray(left.read(p)) for p in (entry.left_parts or (entry.left,))]
    try:
        moved = entry.transform.apply(*parts)
    except TransformError:
        return None
    return compare_values(moved, right.read(entry.right), tolerance)


def _common(left: Sequence[int] | None, right: Sequence[int] | None, count: int) -> Sequence[int] | None:
    """Piece boundaries both sides can be read in: the fixed side's, or the whole array when both are
    fixed differently (two checkpoints chunked differently: rare, and then each read once)."""
    if left is None or right is None:
        return right if left is None else left
    return left if list(left) == list(right) else (0, count)


__all__ = ["DEFAULT_BUDGET", "WORKERS", "Progress", "ProgressFn", "parse_budget", "reader_of", "source_with_stats",
           "stream_diffs", "stream_values", "unreadable_note"]
