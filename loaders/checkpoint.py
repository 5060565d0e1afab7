"""Orbax checkpoint directories as sources: records from metadata, values one array at a time.

``show DIR`` costs the same for a 1 MB and a 100 GB checkpoint: it reads Orbax's metadata (the
tree, shapes, dtypes and shardings) and probes one byte at the end of every stored value to
catch deleted or truncated data files, but it reads no array. A value is read only when asked
for (``LoadedSource.read(record)``, ``show --values``), one array per Orbax partial restore, so
memory stays bounded by the largest array.

Orbax failures become one-line ``CheckpointError`` messages naming the directory; its log lines
and the "Event loop is closed" noise of failed reads are kept off the user's screen. Nothing is
ever written: managers are opened ``read_only=True`` and no temporary file is made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from inspector.errors import CheckpointError, InspectorError
from inspector.process_state import ignoring_warnings, while_active
from inspector.records import Path as VarPath
from inspector.records import VariableRecord, format_path
from loaders.checkpoint_dirs import Location, quiet_logs, resolve
from loaders.checkpoint_layout import StoredLeaf, checkpoint_records, is_nnx_tree
from loaders.source import LoadedSource
from loaders.spec import SourceSpec

Key = tuple[str, VarPath]


@dataclasses.dataclass(frozen=True, eq=False)
class Checkpoint:
    """One opened checkpoint item: where it is, Orbax's metadata tree, and where each record's
    array is stored (so one array can be read without touching the others)."""

    location: Location
    tree: Any
    stored: Mapping[Key, StoredLeaf]

    @property
    def directory(self) -> Path:
        return self.location.item_dir

    def describe(self) -> str:
        """Which tree was read, e.g. ``step 20 (latest of 0, 10, 20), item 'default'``."""
        loc = self.location
        parts = []
        if loc.step is not None:
            which = "latest of" if loc.steps and loc.step == loc.steps[-1] else "of"
            parts.append(f"step {loc.step} ({which} {', '.join(map(str, loc.steps))})")
        if loc.item is not None:
            parts.append(f"item {loc.item!r}")
        return ", ".join(parts + [str(loc.item_dir)])

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {"directory": str(loc.item_dir), "root": str(loc.root) if loc.root else None,
                "step": loc.step, "steps": list(loc.steps), "item": loc.item}

    def read(self, record: VariableRecord) -> Any:
        """The value of one record, read from disk: a numpy array, or a typed key array."""
        try:
            leaf = self.stored[record.key]
        except KeyError:
            raise CheckpointError(f"checkpoint {str(self.directory)!r} has no variable "
                                  f"{record.full_name!r}") from None
        return read_stored(self, leaf, name=record.full_name)


def load_checkpoint(spec: SourceSpec, *, abstract: bool, values: bool = False) -> LoadedSource:
    """Describe the checkpoint ``spec`` names, reading metadata only unless ``values``.

    ``abstract`` changes nothing here: without ``values`` no array is read anyway. With
    ``values`` each record gets its statistics, the arrays read one at a time.
    """
    location = resolve(spec.target, spec.step)
    check_data(location.item_dir)
    tree = read_metadata(location.item_dir)
    entries = checkpoint_records(tree, read_key_impls(location.item_dir))
    stored = {record.key: leaf for record, leaf in entries}
    if len(stored) != len(entries):
        raise CheckpointError(f"checkpoint {str(location.item_dir)!r}: two stored arrays map to one "
                              "variable path; cannot inspect")
    checkpoint = Checkpoint(location, tree, stored)
    records = tuple(record for record, _ in entries)
    unknown = sum(1 for r in records if r.type is None)
    notes = (f"{unknown} of {len(records)} variables have no kind: an Orbax checkpoint of an NNX state stores "
             "no Variable classes (diff it against the model to pair each with its kind)",) \
        if unknown and is_nnx_tree(tree) else ()
    source = LoadedSource(
        spec=spec.text, form="checkpoint", records=records,
        values={r.key: jax.ShapeDtypeStruct(r.shape, _dtype(r.dtype, stored[r.key])) for r in records},
        obj=checkpoint, reader=checkpoint.read, notes=notes)
    if values:
        from loaders.streaming import source_with_stats

        return source_with_stats(source)
    return source


def read_array(source: LoadedSource, record: VariableRecord) -> Any:
    """One variable's value, read now: from disk for a checkpoint, from memory otherwise."""
    return source.read(record)


def read_metadata(item_dir: Path) -> Any:
    """Orbax's metadata tree of an item directory; reads no array bytes.

    ``StandardCheckpointHandler.metadata`` is called directly: ``Checkpointer.metadata`` swallows
    errors and returns ``None``.
    """
    import orbax.checkpoint as ocp
    from etils import epath

    with quiet_orbax(), orbax_errors(item_dir, "reading the metadata"):
        metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(item_dir))
    tree = getattr(metadata, "tree", None)
    if tree is None:
        raise CheckpointError(f"checkpoint {str(item_dir)!r} has no tree metadata; is it a PyTree checkpoint?")
    return tree


def read_key_impls(item_dir: Path) -> dict[str, str]:
    """PRNG implementations by Orbax parameter name, from ``array_metadatas/`` (only there)."""
    impls: dict[str, str] = {}
    folder = item_dir / "array_metadatas"
    for file in sorted(folder.iterdir()) if folder.is_dir() else ():
        try:
            entries = json.loads(file.read_text()).get("array_metadatas", [])
        except (OSError, ValueError, AttributeError):
            continue
        for entry in entries:
            meta = entry.get("array_metadata", {}) if isinstance(entry, dict) else {}
            impl = (meta.get("ext_metadata") or {}).get("random_key_impl")
            if isinstance(impl, str) and isinstance(meta.get("param_name"), str):
                impls[meta["param_name"]] = impl
    return impls


def check_data(item_dir: Path) -> None:
    """Catch deleted and truncated data files without reading arrays: one byte per stored value.

    OCDBT keeps values in data files at an offset and length; reading the last byte of each value
    fails (``OUT_OF_RANGE``) on a truncated file and comes back empty for a deleted one. Done
    before Orbax opens anything: Orbax opens arrays concurrently, and when one fails the others'
    callbacks print "Event loop is closed" tracebacks from threads no context can silence.
    """
    ocdbt = [p.name for p in item_dir.iterdir() if p.name.startswith("ocdbt.process_") or p.name == "d"]
    if not (item_dir / "manifest.ocdbt").is_file():
        if ocdbt:
            raise CheckpointError(f"checkpoint {str(item_dir)!r} is missing manifest.ocdbt (the index of its "
                                  "data files): it is damaged or was copied incompletely")
        return
    import tensorstore as ts

    with orbax_errors(item_dir, "listing the stored arrays"):
        store = ts.KvStore.open({"driver": "ocdbt", "base": {"driver": "file", "path": f"{item_dir}/"}}).result()
        keys = store.list().result()
    reads = [(key, store.read(key, byte_range=slice(-1, None))) for key in sorted(keys)]
    for key, future in reads:
        what = f"the data of {key.decode(errors='replace').rsplit('/', 1)[0]!r}"
        try:
            result = future.result()
        except ValueError as err:
            raise CheckpointError(f"checkpoint {str(item_dir)!r}: {what} is truncated or corrupt "
                                  f"({_summary(err)})") from err
        if result.state != "value" or len(result.value) != 1:
            raise CheckpointError(f"checkpoint {str(item_dir)!r}: {what} is missing (a data file under "
                                  "d/ or ocdbt.process_*/d/ was deleted?)")


def read_stored(checkpoint: Checkpoint, leaf: StoredLeaf, *, name: str | None = None) -> Any:
    """Read one stored array by Orbax partial restore: a template holding only this leaf."""
    import orbax.checkpoint as ocp
    from etils import epath

    template, restore_args = _template(checkpoint.tree, leaf.disk_path)
    handler = ocp.PyTreeCheckpointHandler()
    try:
        with quiet_orbax(), orbax_errors(checkpoint.directory, f"reading {name or format_path(leaf.disk_path)!r}"):
            restored = handler.restore(epath.Path(checkpoint.directory), args=ocp.args.PyTreeRestore(
                item=template, restore_args=restore_args, partial_restore=True))
    finally:
        handler.close()
    value = restored
    for key in leaf.disk_path:
        value = value[key]
    value = np.asarray(value)
    if leaf.key_impl is not None:
        return jax.random.wrap_key_data(value, impl=leaf.key_impl)
    return value.astype(leaf.dtype) if value.dtype != leaf.dtype else value


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Keep Orbax's noise off the user's screen for one call: absl warnings, its UserWarnings, and
    the "Exception ignored in coroutine" reports a failed read leaves for the garbage collector."""
    with _dropping_orbax_reports(), quiet_logs(), ignoring_warnings(UserWarning, module=r"orbax\."):
        try:
            yield
        except BaseException:
            gc.collect()  # a failed read leaves coroutines behind: collect them while they are muted
            raise


_HOOKS: list[Callable[[Any], None]] = []


def _dropping_orbax_reports() -> contextlib.AbstractContextManager[None]:
    """``sys.unraisablehook`` without Orbax's reports while any thread reads a checkpoint."""
    def install() -> None:
        hook = sys.unraisablehook
        _HOOKS.append(hook)

        def drop_orbax(report: Any) -> None:
            if "orbax" not in repr(report.object) and "orbax" not in str(report.exc_value):
                hook(report)

        sys.unraisablehook = drop_orbax

    def uninstall() -> None:
        sys.unraisablehook = _HOOKS.pop()

    return while_active("orbax-unraisable", install, uninstall)


@contextlib.contextmanager
def orbax_errors(item_dir: Path, doing: str) -> Iterator[None]:
    """Orbax and TensorStore failures inside one call as a one-line ``CheckpointError``."""
    try:
        yield
    except InspectorError:
        raise
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {str(item_dir)!r}: {doing} failed: its _METADATA is garbled "
                              f"(not valid JSON: {err.msg} at line {err.lineno})") from err
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {str(item_dir)!r}: {doing} failed: {_summary(err)}") from err
    except (UnicodeDecodeError, AttributeError, KeyError, TypeError) as err:
        # Valid JSON (or bytes) in a shape Orbax never writes: the metadata file was damaged.
        raise CheckpointError(f"checkpoint {str(item_dir)!r}: {doing} failed: its _METADATA is not in "
                              f"Orbax's format ({type(err).__name__}: {err}); restore the file from a good "
                              "copy of the checkpoint") from err
    except Exception as err:  # noqa: BLE001 - Orbax raises bare Exception for unreadable data
        raise CheckpointError(f"checkpoint {str(item_dir)!r}: {doing} failed: {_describe(err)}") from err


def _describe(err: BaseException) -> str:
    text = str(err)
    if "NOT_FOUND" in text:
        return "a data file is missing (" + _summary(err) + ")"
    if any(s in text for s in ("OUT_OF_RANGE", "DATA_LOSS", "FAILED_PRECONDITION", "reading array index")):
        return "a data file is truncated or corrupt (" + _summary(err) + ")"
    return f"{type(err).__name__}: {_summary(err)}"


def _summary(err: BaseException, limit: int = 200) -> str:
    """The first line of an Orbax/TensorStore message, without the multi-kB spec dumps."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    for cut in (" [tensorstore_spec=", " See full TensorStore details", " [source locations="):
        text = text.split(cut)[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _template(tree: Any, disk_path: tuple) -> tuple[Any, Any]:
    """A restore target and its ``restore_args`` holding only the leaf at ``disk_path``.

    Dicts keep only the key on the way; lists keep their length (Orbax insists) with
    ``PLACEHOLDER`` entries, which Orbax skips (their ``restore_args`` must still be RestoreArgs).
    """
    import orbax.checkpoint as ocp

    as_numpy = ocp.RestoreArgs(restore_type=np.ndarray)
    if not disk_path:
        return tree, as_numpy
    key, rest = disk_path[0], disk_path[1:]
    item, args = _template(tree[key], rest)
    if isinstance(tree, Mapping):
        return {key: item}, {key: args}
    items = [ocp.PLACEHOLDER] * len(tree)
    all_args = [as_numpy] * len(tree)
    items[key], all_args[key] = item, args
    return items, all_args


def _dtype(name: str, leaf: StoredLeaf) -> Any:
    """The record's dtype as an object: numpy's, or the typed-key dtype of a PRNG implementation."""
    if leaf.key_impl is not None:
        return jax.eval_shape(lambda: jax.random.key(0, impl=leaf.key_impl)).dtype
    return np.dtype(name)
