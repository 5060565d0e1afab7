"""Legacy flax checkpoints: ``flax.training.checkpoints.save_checkpoint(dir, target, step=N)``.

Each save writes ``dir/checkpoint_<N>``: one msgpack file (``to_bytes`` of the target) when Orbax
checkpointing is off, an Orbax folder when it is on (the default since flax 0.7). A folder of them
is read at its latest step, or at ``DIR@N``; the Orbax folders are read by the Orbax loader.
``checkpoint_tmp`` (an interrupted save), ``*_gda`` folders (arrays of a multi-process save) and
Orbax's temporary folders are never taken for a step, as in flax's own ``latest_checkpoint``.

>>> STEP_NAME.match("checkpoint_120")[1], STEP_NAME.match("checkpoint_tmp")
('120', None)
"""

from __future__ import annotations

import re
from pathlib import Path

from inspector.errors import WeightFileError
from loaders.checkpoint_dirs import StepInfo
from loaders.formats.msgpack_file import open_msgpack
from loaders.formats.weight_file import WeightFile

STEP_NAME = re.compile(r"^checkpoint_(\d+)$")
UNFINISHED = "checkpoint_tmp"


def legacy_steps(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint_<N>`` file or folder, oldest first."""
    try:
        children = list(folder.iterdir())
    except OSError as err:
        raise WeightFileError(f"folder {str(folder)!r} cannot be listed: {err.strerror}") from None
    found = [(int(m[1]), p) for p in children if (m := STEP_NAME.match(p.name))]
    return sorted(found, key=lambda item: item[0])


def is_legacy_folder(folder: Path) -> bool:
    """A folder holding ``checkpoint_<N>`` saves (or only an interrupted ``checkpoint_tmp``)."""
    return bool(legacy_steps(folder)) or (folder / UNFINISHED).exists()


def pick_step(folder: Path, step: int | None) -> tuple[int, Path, tuple[int, ...]]:
    """The save to read (``step``, else the latest), and every step there is."""
    found = legacy_steps(folder)
    steps = tuple(s for s, _ in found)
    if not found:
        raise WeightFileError(f"{str(folder)!r} holds only an unfinished save ({UNFINISHED}): the save was "
                              "interrupted; save again")
    if step is None:
        return found[-1][0], found[-1][1], steps
    path = dict(found).get(step)
    if path is None:
        raise WeightFileError(f"{str(folder)!r} has no checkpoint_{step}; its steps are "
                              f"{', '.join(map(str, steps))} (write DIR@STEP with one of them)")
    return step, path, steps


def list_steps(folder: Path) -> list[StepInfo]:
    """Every step as ``steps`` shows it: no items, and the save's file time."""
    pick_step(folder, None)  # refuses a folder with no finished save
    return [StepInfo(step, (), _mtime_ns(path)) for step, path in legacy_steps(folder)]


def open_legacy_file(file: Path, *, step: int | None = None, steps: tuple[int, ...] = ()) -> WeightFile:
    """A ``checkpoint_<N>`` msgpack file, with the step it holds."""
    import dataclasses

    if step is None and (m := STEP_NAME.match(file.name)):
        step = int(m[1])
    opened = open_msgpack(file, format="legacy")
    return dataclasses.replace(opened, step=step, steps=steps or ((step,) if step is not None else ()))


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
