"""Where a checkpoint's tree is on disk: resolve any Orbax directory a user may point at.

Orbax writes three nestings, and a user may name any level of them:

- an item directory, holding ``_METADATA`` (a ``StandardCheckpointer`` directory is one);
- a step directory, ``<step>/<item>/``: its ``default`` item, or its only item;
- a ``CheckpointManager`` root, ``<root>/<step>/<item>/``: the latest step, or ``DIR@STEP``.

Only names and small files are looked at here; nothing is ever written. Steps are listed by
Orbax's own ``CheckpointManager`` opened with ``read_only=True`` (a plain manager creates a
missing directory). An unfinished save (``*.orbax-checkpoint-tmp-*``) is never taken for a step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inspector.errors import CheckpointError
from inspector.process_state import while_active

METADATA = "_METADATA"
CHECKPOINT_METADATA = "_CHECKPOINT_METADATA"
DEFAULT_ITEM = "default"
_TMP = re.compile(r"\.orbax-checkpoint-tmp-\d*")


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """One finished step of a CheckpointManager: its number, items, and when it was saved."""

    step: int
    items: tuple[str, ...]
    saved_ns: int | None = None

    @property
    def saved(self) -> str | None:
        """The commit time as ISO 8601 UTC, to the second."""
        if self.saved_ns is None:
            return None
        moment = datetime.datetime.fromtimestamp(self.saved_ns / 1e9, tz=datetime.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "items": list(self.items), "saved": self.saved}


@dataclasses.dataclass(frozen=True)
class Location:
    """A resolved checkpoint: the item directory to read, and how it was reached."""

    item_dir: Path
    root: Path | None = None
    step: int | None = None
    item: str | None = None
    steps: tuple[int, ...] = ()


def resolve(directory: str | Path, step: int | None = None) -> Location:
    """The item directory behind ``directory`` (and ``step``), or ``CheckpointError`` saying why not."""
    path = Path(directory)
    _check_usable(path)
    if step is not None:
        steps = list_steps(path)
        found = next((s for s in steps if s.step == step), None)
        if found is None:
            raise CheckpointError(f"checkpoint {str(path)!r} has no step {step}; its steps are "
                                  f"{_step_list(steps)} (write DIR@STEP with one of them)")
        item_dir, item = _item_of_step(path / _step_dir_name(path, step))
        return Location(item_dir, root=path, step=step, item=item, steps=tuple(s.step for s in steps))
    if (path / METADATA).is_file():
        return Location(path)
    if not (path / CHECKPOINT_METADATA).is_file() and (standalone := _standalone(path)):
        raise CheckpointError(_folder_of_checkpoints(path, standalone))
    if _item_dirs(path) or (path / CHECKPOINT_METADATA).is_file():
        item_dir, item = _item_of_step(path)
        return Location(item_dir, item=item)
    if _step_dirs(path) or _unfinished(path):
        steps = list_steps(path)
        latest = steps[-1]
        item_dir, item = _item_of_step(path / _step_dir_name(path, latest.step))
        return Location(item_dir, root=path, step=latest.step, item=item, steps=tuple(s.step for s in steps))
    raise CheckpointError(_not_a_checkpoint(path))


def list_steps(root: str | Path) -> list[StepInfo]:
    """The finished steps of a CheckpointManager root, oldest first, each with its items."""
    root = Path(root)
    _check_usable(root)
    with quiet_logs():
        import orbax.checkpoint as ocp

        manager = ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(read_only=True))
        try:
            numbers = sorted(int(s) for s in manager.all_steps())
        finally:
            manager.close()
    if not numbers:
        unfinished = _unfinished(root)
        if unfinished:
            raise CheckpointError(f"checkpoint {str(root)!r} has no finished step, only unfinished saves "
                                  f"({', '.join(unfinished)}): the save was interrupted; save again")
        if not (root / CHECKPOINT_METADATA).is_file() and (standalone := _standalone(root)):
            raise CheckpointError(_folder_of_checkpoints(root, standalone))
        if (root / METADATA).is_file() or _item_dirs(root):
            raise CheckpointError(f"{str(root)!r} is a single checkpoint, not a CheckpointManager root; "
                                  "it has no steps (use the directory itself as the source)")
        raise CheckpointError(f"{str(root)!r} is not a CheckpointManager root: it has no step directories"
                              + _found(root))
    return [StepInfo(n, tuple(sorted(d.name for d in _item_dirs(step_dir) or _subdirs(step_dir))),
                     _saved_ns(step_dir))
            for n in numbers for step_dir in [root / _step_dir_name(root, n)]]


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence Orbax's absl warnings (``read_only=True, setting create=False`` ...) for a call."""
    logger = logging.getLogger("absl")

    def install() -> None:
        _ABSL_LEVELS.append(logger.level)
        logger.setLevel(logging.ERROR)

    # the first thread in lowers the level, the last one out restores it (threads overlap in the app)
    with while_active("absl-quiet", install, lambda: logger.setLevel(_ABSL_LEVELS.pop())):
        yield


_ABSL_LEVELS: list[int] = []


def _check_usable(path: Path) -> None:
    if _TMP.search(path.name) or any(_TMP.search(p.name) for p in path.parents):
        raise CheckpointError(f"checkpoint {str(path)!r} is an unfinished save (Orbax's temporary "
                              "'*.orbax-checkpoint-tmp-*' directory): the save was interrupted; save again "
                              "or use a finished checkpoint")
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a file; an Orbax checkpoint is a directory")
    if not any(path.iterdir()):
        raise CheckpointError(f"checkpoint {str(path)!r} is an empty directory, not an Orbax checkpoint; a source "
                              "is a checkpoint folder, a weight file (.msgpack, .safetensors, .npz), a model folder "
                              "or FILE.py:FACTORY")


def _item_of_step(step_dir: Path) -> tuple[Path, str]:
    items = sorted(d.name for d in _item_dirs(step_dir))
    if DEFAULT_ITEM in items:
        return step_dir / DEFAULT_ITEM, DEFAULT_ITEM
    if len(items) == 1:
        return step_dir / items[0], items[0]
    if items:
        choices = ", ".join(str(step_dir / i) for i in items)
        raise CheckpointError(f"checkpoint {str(step_dir)!r} holds {len(items)} items ({', '.join(items)}) "
                              f"and none is called 'default': name one of {choices}")
    if any((step_dir / name).exists() for name in ("manifest.ocdbt", "_sharding", "array_metadatas")):
        raise CheckpointError(f"checkpoint {str(step_dir)!r} is missing its {METADATA} file (Orbax's "
                              "description of the saved tree): it is damaged or was copied incompletely")
    raise CheckpointError(f"checkpoint {str(step_dir)!r} has no readable item: no {METADATA} file"
                          + _found(step_dir) + " (a deleted or unfinished save?)")


def _standalone(path: Path) -> list[Path]:
    """Subfolders that are whole checkpoints of their own (an item of a step has no such file)."""
    return [d for d in _item_dirs(path) if (d / CHECKPOINT_METADATA).is_file()]


def _folder_of_checkpoints(path: Path, found: list[Path]) -> str:
    names = ", ".join(d.name for d in found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
    if len(found) == 1:
        return (f"{str(path)!r} is a folder holding the checkpoint {found[0].name!r}, not a checkpoint itself; "
                f"use {str(found[0])!r} as the source")
    return (f"{str(path)!r} is a folder of {len(found)} checkpoints ({names}), not a checkpoint itself; "
            "use one of them as the source")


def _item_dirs(path: Path) -> list[Path]:
    return [d for d in _subdirs(path) if (d / METADATA).is_file()]


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not _TMP.search(d.name))


def _step_dirs(path: Path) -> list[Path]:
    return [d for d in _subdirs(path) if d.name.isdigit()]


def _step_dir_name(root: Path, step: int) -> str:
    """The directory of ``step`` (``5``, or zero-padded ``0005``)."""
    return next((d.name for d in _step_dirs(root) if int(d.name) == step), str(step))


def _unfinished(path: Path) -> list[str]:
    return sorted(d.name for d in path.iterdir() if _TMP.search(d.name))


def _saved_ns(step_dir: Path) -> int | None:
    try:
        value = json.loads((step_dir / CHECKPOINT_METADATA).read_text()).get("commit_timestamp_nsecs")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _step_list(steps: list[StepInfo]) -> str:
    return ", ".join(str(s.step) for s in steps)


def _found(path: Path) -> str:
    names = sorted(p.name for p in path.iterdir())
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" (found: {shown})" if names else ""


def _not_a_checkpoint(path: Path) -> str:
    return (f"{str(path)!r} is not an Orbax checkpoint: no {METADATA} file, no item directories and no "
            f"step directories{_found(path)}")
