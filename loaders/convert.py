"""Convert: Linen weights from any source into a restorable Orbax checkpoint of an NNX model, streamed.

``inspector.convert_plan`` decides what goes where; this module builds the target abstractly,
reads one source array at a time, applies its layout transform and cast, and writes it, in
batches of at most the largest array plus 32 MiB: memory stays about twice the largest array above
the process baseline (Orbax's read of a single-chunk array holds the compressed chunk and the
array), never the model.

How the checkpoint is written, and why this way: ``StandardCheckpointer.save`` takes the whole
tree, so the whole model would sit in memory. Orbax 0.12.8's ``ocp.v1.partial.save`` adds
subtrees to a pending checkpoint one call at a time (each call writes its arrays to disk and
returns), and ``partial.finalize`` merges them into one OCDBT checkpoint. Its layout nests the
tree under ``<tmp>/state/``, a complete StandardCheckpointer-layout item (``_METADATA``,
``manifest.ocdbt``, ``d/``, typed PRNG keys in ``array_metadatas/``): that folder is moved to
``DIR``, so the README recipe ``StandardCheckpointer().restore(DIR, abstract_state)`` reads it.
Everything is written to a sibling folder first and moved into place only when complete: a failed
or interrupted conversion leaves no ``DIR``.

Three settings keep the write from holding more than the array it is given (measured on 4 arrays
of 8192² float32, peak above the baseline: 4.8× the largest array with Orbax's defaults, 2.1× with
all three): arrays are stored in chunks of at most ``CHUNK_BYTES`` (a single 256 MiB chunk is
compressed in one buffer, and the memory stays with the process); Orbax's defensive copy of host
arrays before writing is off (``memory_options.deepcopy_host_arrays``: each array here is a private
one nobody else holds); and freed heap goes back to the system after each batch (``malloc_trim``,
glibc only: TensorStore's worker threads leave it in their arenas otherwise). A batch is written
before the next array is read, so a read never overlaps a write.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from inspector.align.rules import Rules, forced_pairs
from inspector.align.structure import structure_of
from inspector.convert_plan import ConvertError, ConvertPlan, compile_regex, plan_conversion, split_source
from inspector.diffing import DiffEntry, diff_trees
from inspector.example import NnxExample
from inspector.records import Path as VarPath
from inspector.records import format_bytes
from loaders.porting import check_output
from loaders.source import LoadedSource, as_example
from loaders.spec import parse_spec

Progress = Callable[[int, int, int], None]  # arrays done, arrays total, bytes done


def plan_sources(source: LoadedSource, target: LoadedSource, *, rules: Rules | None = None,
                 allow_missing: str | None = None, allow_unused: str | None = None,
                 dtype: str | None = None) -> tuple[ConvertPlan, list[DiffEntry], list[str]]:
    """Align ``source`` (Linen side) with ``target`` (an NNX model) and plan the conversion."""
    if target.form != "nnx" or not isinstance(target.model, nnx.Module):
        raise ConvertError(f"target {target.spec!r} is not an NNX model: convert needs the NNX module the "
                           "weights go into — a sample:NAME:nnx or a factory returning an nnx.Module")
    if source.form == "nnx":
        raise ConvertError(f"source {source.spec!r} is an NNX model: convert takes Linen weights (a Linen "
                           "factory or sample, an Orbax checkpoint of Linen variables or a TrainState, a weight file)")
    from loaders.trace import traced_structures

    weights, skipped = split_source(source.records)
    right = list(target.model_records())
    forced, notes = forced_pairs(rules, weights, right) if rules else ([], [])
    # Paired as ``diff`` pairs them: by the forward pass where there is one (see ``diffing``).
    left_structure, right_structure, trace_notes = traced_structures(source, target)
    entries = diff_trees(weights, right, left_structure=left_structure,
                         right_structure=right_structure if right_structure.order else structure_of(target.model),
                         forced=forced, rng_one_sided=True, sharding_one_sided=False, strict_orders=True)
    notes = [*notes, *trace_notes]
    plan = plan_conversion(entries, not_converted=skipped,
                           allow_missing=compile_regex(allow_missing, "--allow-missing"),
                           allow_unused=compile_regex(allow_unused, "--allow-unused"), dtype=dtype)
    return plan, entries, notes


def model_factory(spec_text: str) -> Callable[[], nnx.Module]:
    """The zero-argument function that builds the target NNX model (for its RNG state)."""
    from loaders import factory
    from loaders.factory import user_code
    from sample_models import SAMPLES

    spec = parse_spec(spec_text)
    if spec.kind == "sample":
        build, file = SAMPLES[spec.target].module(spec.attr).example().build, None
    elif spec.kind in ("file", "module"):
        load = factory.load_file_factory if spec.kind == "file" else factory.load_module_factory
        fn, code = load(spec.target, spec.attr, spec=spec.text)
        file = code.__file__

        def build() -> nnx.Module:
            out = fn()
            example = as_example(out)
            return example.build() if isinstance(example, NnxExample) else out
    else:
        raise ConvertError(f"target {spec_text!r} is not a model factory: convert needs a sample:NAME:nnx or a "
                           "factory returning an nnx.Module")

    def make() -> nnx.Module:
        with user_code(spec_text, file):
            model = build()
        if not isinstance(model, nnx.Module):
            raise ConvertError(f"target {spec_text!r} built a {type(model).__name__}, not an nnx.Module")
        return model

    return make


def initial_values(make_model: Callable[[], nnx.Module], paths: set[VarPath]) -> dict[VarPath, Any]:
    """RNG state and the ``paths`` asked for, as the target's own init gives them.

    ``jax.jit`` of the whole build returning only these: XLA drops every other initialiser, so
    the weights are never allocated.
    """
    def keep(path, var) -> bool:
        return isinstance(var, nnx.RngState) or tuple(path) in paths

    state = jax.jit(lambda: nnx.state(make_model(), keep))()
    return {tuple(p): v.get_value() for p, v in nnx.to_flat_state(state)}


def source_paths(source: LoadedSource) -> list[Path]:
    """Files and folders a source reads: an output must never be one of them, or inside one."""
    if source.spec.startswith("<"):  # a live object (the Python API) reads no file
        return []
    spec = parse_spec(source.spec)
    if spec.kind in ("checkpoint", "weights", "file"):
        return [Path(spec.target).expanduser().resolve()]
    return []


def check_not_source(out: str, source: LoadedSource) -> None:
    target = Path(out).expanduser().resolve()
    for src in source_paths(source):
        if target == src or src in target.parents or target in src.parents:
            raise ConvertError(f"--out {out!r} would write into or replace the source {str(src)!r}; "
                               "choose a folder outside it")


def write_converted(plan: ConvertPlan, source: LoadedSource, target: LoadedSource, out: str, *,
                    make_model: Callable[[], nnx.Module], force: bool = False,
                    progress: Progress | None = None) -> Path:
    """Write the planned NNX state to ``out``, one array in memory at a time."""
    from orbax.checkpoint.experimental.v1 import partial

    if not plan.ok:
        raise ConvertError("the conversion is refused; nothing is written")
    check_not_source(out, source)
    final = check_output(out, force=force)  # refuses before any work; deletes nothing yet
    missing = {a.record.path for a in plan.allowed if a.side == "missing"}
    extra = initial_values(make_model, missing)
    by_right = {m.right.path: m for m in plan.moves}
    records = [r for r in target.model_records() if r.path in by_right or r.path in extra]
    # Not a hidden name: Orbax 0.12.8's partial.finalize mishandles a folder whose name starts with a dot.
    tmp = final.parent / f"{final.name}__converting_{uuid.uuid4().hex[:8]}"
    # Arrays go to Orbax in batches of at most the largest array's bytes plus 32 MiB: each
    # ``partial.save`` call costs a commit and ``finalize`` merges one folder per call, so batching
    # small arrays keeps the time near a whole-tree save while memory stays a few times the largest array.
    budget = max((_nbytes(r) for r in records), default=0) + BATCH_BYTES
    # Plain ``partial.save`` per batch, not ``save_async`` overlapping the next read: measured at
    # 1 GiB (16 × 64 MiB), peak 615–733 MB synchronous against 686–738 MB overlapped, with no clear
    # gain in time on a loaded 2-core machine; simpler wins.
    done = nbytes = 0
    batch: dict[str, Any] = {}
    batch_bytes = batch_count = 0
    context = _write_context()

    def flush() -> None:
        nonlocal done, nbytes, batch, batch_bytes, batch_count
        with context:
            partial.save(str(tmp), batch)
        done, nbytes = done + batch_count, nbytes + batch_bytes
        batch, batch_bytes, batch_count = {}, 0, 0
        _release_heap()
        if progress is not None:
            progress(done, len(records), nbytes)

    try:
        with _quiet():
            for record in records:
                move = by_right.get(record.path)
                if batch and batch_bytes + _planned_bytes(record, move) > budget:
                    flush()  # before reading: the next array never sits beside a batch being written
                value = extra[record.path] if move is None else _moved(move, source)
                _merge(batch, _nested(record.path, value))
                batch_bytes += int(getattr(value, "nbytes", 0))
                batch_count += 1
                del value
            if batch:
                flush()
            with context:
                partial.finalize(str(tmp))
        if final.exists():  # --force, checked above: an Orbax checkpoint or an empty folder
            shutil.rmtree(final)
        os.replace(tmp / "state", final)
    finally:
        for leftover in final.parent.glob(f"{glob.escape(tmp.name)}*"):  # incl. Orbax's .partial_save*
            shutil.rmtree(leftover, ignore_errors=True)
    return final


def emit_python(plan: ConvertPlan, source: LoadedSource, make_model: Callable[[], nnx.Module], *,
                target: str = "the NNX model") -> str:
    """The standalone converter module for this plan (``inspector.convert_emit``)."""
    from inspector.convert_emit import emit_module

    initial = initial_values(make_model, {a.record.path for a in plan.allowed if a.side == "missing"})
    return emit_module(plan, lambda record: disk_path(source, record), initial, source=source.spec, target=target)


def disk_path(source: LoadedSource, record) -> tuple:
    """Where a record's array sits in the tree as saved (an Orbax checkpoint's exact keys)."""
    stored = getattr(source.obj, "stored", None)
    if isinstance(stored, dict) and record.key in stored and hasattr(stored[record.key], "disk_path"):
        return tuple(stored[record.key].disk_path)
    return ((record.collection,) if record.collection else ()) + tuple(record.path)


def _moved(move, source: LoadedSource) -> np.ndarray:
    arrays = [np.asarray(source.read(p)) for p in move.parts]
    value = move.transform.apply(*arrays) if move.transform is not None else arrays[0]
    del arrays
    value = np.ascontiguousarray(value)
    if value.dtype != jax.numpy.dtype(move.dtype):
        value = value.astype(jax.numpy.dtype(move.dtype))
    return value


BATCH_BYTES = 32 * 2**20
CHUNK_BYTES = 16 * 2**20  # stored chunk size of the written arrays (see the module docstring)


def _nbytes(record) -> int:
    return int(record.nbytes or 0)


def _planned_bytes(record, move) -> int:
    """The bytes ``record``'s array will take once read and cast, before reading it."""
    if move is None:
        return _nbytes(record)
    return int(np.prod(record.shape, dtype=np.int64)) * jax.numpy.dtype(move.dtype).itemsize


def _write_context():
    """Orbax options for the per-batch writes (see the module docstring)."""
    import orbax.checkpoint.experimental.v1 as ocp_v1

    context = ocp_v1.Context()
    context.array.saving.storage_options.chunk_byte_size = CHUNK_BYTES
    context.memory_options.deepcopy_host_arrays = False
    return context


def _release_heap() -> None:
    """Hand freed heap back to the system (glibc's ``malloc_trim``; elsewhere nothing to do)."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


def _merge(tree: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key in tree and isinstance(tree[key], dict) and isinstance(value, dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def _nested(path: VarPath, value: Any) -> dict[str, Any]:
    """``{'a': {'0': {'kernel': {'value': x}}}}``: how StandardCheckpointer stores an nnx.State leaf."""
    tree: dict[str, Any] = {"value": value}
    for key in reversed(path):
        tree = {str(key): tree}
    return tree


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def terminal_progress(stream=None) -> Progress:
    """``converting 3/16 arrays, 192.0 MiB, 85.2 MiB/s`` rewritten in place on ``stream``."""
    stream = stream or sys.stderr
    start = time.monotonic()

    def show(done: int, total: int, nbytes: int) -> None:
        rate = nbytes / max(time.monotonic() - start, 1e-9)
        end = "\n" if done == total else ""
        stream.write(f"\rconverting {done}/{total} arrays, {format_bytes(nbytes)}, {format_bytes(int(rate))}/s{end}")
        stream.flush()

    return show


__all__ = ["check_not_source", "disk_path", "emit_python", "initial_values", "model_factory", "plan_sources",
           "terminal_progress", "write_converted"]
