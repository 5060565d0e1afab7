"""Weight files and folders as sources: which loader reads a path, and the ``LoadedSource`` it gives.

A file is read by its format (``loaders.formats``). A directory is an Orbax checkpoint (read by
``loaders.checkpoint``, which keeps priority), a folder of legacy ``checkpoint_<N>`` saves (the
latest, or ``DIR@N``; an Orbax save among them is read by the Orbax loader), or a Hugging Face
model folder. A weight source has form ``weights``: records from headers, values read one array at
a time on request, no restore verdict (that is Orbax's), and ``notes`` for what is worth knowing
(another weight file beside the one read, entries that are not arrays).

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
>>> np.savez(path, **{"dense/kernel": np.ones((2, 3), np.float32)})
>>> src = load_weights(path, values=True)
>>> src.form, [(r.name, r.stats.mean) for r in src.records]
('weights', [('dense/kernel', 1.0)])
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from inspector.align.naming import natural_key
from inspector.align.structure import EMPTY, Structure
from inspector.errors import WeightFileError
from inspector.records import VariableRecord
from loaders.checkpoint_dirs import StepInfo
from loaders.formats import open_weight_file
from loaders.formats.weight_file import WeightFile
from loaders.source import LoadedSource


def load_weights(path: str, *, values: bool = False, spec: str | None = None) -> LoadedSource:
    """A weight file (``.msgpack``, ``.safetensors``, ``.npz``, ``checkpoint_<N>``, ``*.index.json``)."""
    return weights_source(spec or path, open_weight_file(Path(path)), values=values)


def load_folder(path: str, *, step: int | None, values: bool, spec: str) -> LoadedSource:
    """A directory: Orbax checkpoint, folder of legacy checkpoints, or model folder."""
    from loaders.formats.folders import folder_kind, not_a_source

    folder = Path(path)
    kind = folder_kind(folder)
    if kind == "orbax":
        return _orbax(spec, folder, step, values)
    if kind == "legacy":
        from loaders.formats.legacy import open_legacy_file, pick_step

        chosen, save, steps = pick_step(folder, step)
        if save.is_dir():
            return _orbax(spec, save, None, values, legacy=(folder, chosen, steps))
        return weights_source(spec, open_legacy_file(save, step=chosen, steps=steps), values=values)
    if step is not None:
        raise WeightFileError(f"{str(folder)!r} is not a folder of checkpoints: it has no steps (drop @{step})")
    if kind == "model":
        from loaders.formats.model_folder import open_model_folder

        return weights_source(spec, open_model_folder(folder), values=values)
    raise WeightFileError(not_a_source(folder))


def folder_steps(path: str) -> tuple[str, list[StepInfo]]:
    """The steps of a checkpoint folder: ``("orbax", ...)`` or ``("legacy", ...)``."""
    from loaders.checkpoint_dirs import list_steps
    from loaders.formats.folders import folder_kind
    from loaders.formats.legacy import list_steps as legacy_steps

    folder = Path(path)
    if folder.is_dir() and folder_kind(folder) == "legacy":
        return "legacy", legacy_steps(folder)
    return "orbax", list_steps(folder)


def weights_source(spec: str, weights: WeightFile, *, values: bool) -> LoadedSource:
    """The ``LoadedSource`` of an opened weight file; with ``values``, statistics read one array at a time."""
    records = weights.records
    notes = list(weights.notes) + ([] if records else ["it holds no arrays"])
    source = LoadedSource(spec=spec, form="weights", records=records,
                          values={r.key: _shape_of(r, weights) for r in records}, obj=weights,
                          reader=weights.read, notes=tuple(notes), structure=file_order(weights))
    if values:
        from loaders.streaming import source_with_stats

        return source_with_stats(source)
    return source


# Formats whose writers keep the order of the dict they were given (flax ``to_bytes``, ``np.savez``);
# safetensors' writer reorders tensors (by dtype and size), so its order says nothing.
KEEPS_ORDER = ("msgpack", "legacy", "npz")


def file_order(weights: WeightFile) -> Structure:
    """The file's order as creation order, where it is evidence of one.

    A Linen variables dict is in creation order, and flax's ``to_bytes`` and ``np.savez`` write a
    dict in its order; but a tree that went through ``jax.tree.map`` (an optimizer update) comes out
    with sorted keys. So the file's order counts only where it is not simply the names sorted — then
    it can only be the order the model made its variables in. Otherwise the alignment falls back to
    names (and says when position alone decided a pair).
    """
    if weights.format not in KEEPS_ORDER:
        return EMPTY
    by_key = {r.key: r for r in weights.records}
    ordered = [by_key[key] for key in weights.stored if key in by_key]
    collections: dict[str, list[VariableRecord]] = {}
    for record in ordered:
        collections.setdefault(record.collection or "", []).append(record)
    if all(_is_sorted(rs) for rs in collections.values()):
        return EMPTY
    return Structure(order={(r.collection or "", r.path): i for i, r in enumerate(ordered)}, order_kind="use")


def _is_sorted(records: list[VariableRecord]) -> bool:
    """Sorted as ``jax.tree`` sorts dict keys (as strings: ``layers_10`` first), or naturally."""
    keys = [r.key for r in records]
    return any(keys == [r.key for r in sorted(records, key=by)]
               for by in (lambda r: tuple(str(k) for k in r.path), natural_key))


def _shape_of(record: VariableRecord, weights: WeightFile) -> jax.ShapeDtypeStruct:
    array = weights.stored[record.key]
    if array.key_impl is not None:
        return jax.eval_shape(lambda: jax.random.wrap_key_data(np.zeros(array.shape, np.uint32),
                                                               impl=array.key_impl))
    return jax.ShapeDtypeStruct(record.shape, array.dtype if array.dtype is not None else np.uint8)


def _orbax(spec: str, folder: Path, step: int | None, values: bool,
           legacy: tuple[Path, int, tuple[int, ...]] | None = None) -> LoadedSource:
    """The Orbax loader; for a legacy ``checkpoint_<N>`` folder, with the step it was picked as."""
    from loaders.checkpoint import load_checkpoint
    from loaders.spec import SourceSpec

    source = load_checkpoint(SourceSpec(spec, "checkpoint", str(folder), step=step), abstract=False, values=values)
    if legacy is None:
        return source
    root, chosen, steps = legacy
    checkpoint = source.obj
    location = dataclasses.replace(checkpoint.location, root=root, step=chosen, steps=steps)
    return dataclasses.replace(source, obj=dataclasses.replace(checkpoint, location=location))
