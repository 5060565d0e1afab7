"""Find the sources under a root folder, for pickers that list what can be opened.

Weight files (``.msgpack``, ``.safetensors``, ``.npz``, ``checkpoint_<N>``), model folders, folders
of legacy checkpoints and Orbax checkpoints are found by name and a few small files, never by
reading weights. The walk stays inside the root: symlinked folders are not followed, a symlinked
file counts only when it resolves inside the root, hidden folders and environments (``.venv``,
``__pycache__``, ``node_modules``) are skipped, and the depth, the number of entries looked at and
the number of results are capped, so a huge root costs a bounded time.

>>> import tempfile, pathlib, numpy as np
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> np.savez(root / "w.npz", a=np.zeros(2))
>>> [(f.spec, f.what) for f in find_sources(root)[0]]
[('w.npz', 'npz file')]
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from loaders.formats import format_of_name
from loaders.formats.legacy import legacy_steps
from loaders.formats.model_folder import PREFERRED

SKIPPED = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env"})
_ORBAX = ("_METADATA", "_CHECKPOINT_METADATA")


@dataclasses.dataclass(frozen=True)
class Found:
    """A source under the root: its spec (relative to the root) and what it is, in words."""

    spec: str
    what: str


def find_sources(root: str | Path, *, max_depth: int = 4, limit: int = 200,
                 max_entries: int = 20_000) -> tuple[list[Found], bool]:
    """Sources under ``root``, sorted by path, and whether the walk stopped at a cap."""
    base = Path(root).resolve()
    itself = folder_source(base)
    if itself is not None:  # the root is a source itself: nothing to look for inside it
        return [Found(".", itself)], False
    found: list[Found] = []
    seen = 0
    queue: list[tuple[Path, int]] = [(base, 0)]
    while queue:
        folder, depth = queue.pop(0)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > max_entries or len(found) >= limit:
                return sorted(found, key=lambda f: f.spec), True
            if entry.name.startswith(".") or entry.name in SKIPPED:
                continue
            path = Path(entry.path)
            spec = str(path.relative_to(base))
            if entry.is_dir(follow_symlinks=False):
                what = folder_source(path)
                if what is not None:
                    found.append(Found(spec, what))
                elif depth + 1 < max_depth:
                    queue.append((path, depth + 1))
            elif entry.is_file() and _inside(path, base):
                kind = format_of_name(entry.name)
                if kind is not None:
                    found.append(Found(spec, "legacy flax checkpoint" if kind == "legacy" else
                                       "index of shards" if kind == "index" else f"{kind} file"))
    return sorted(found, key=lambda f: f.spec), False


def folder_source(folder: Path) -> str | None:
    """What a folder is as a source, in words, or ``None`` when it is only a folder."""
    if any((folder / name).is_file() for name in _ORBAX):
        return "Orbax checkpoint"
    steps = legacy_steps(folder) if _has_child(folder, "checkpoint_") else []
    if steps:
        return f"legacy flax checkpoints ({len(steps)} step{'s' if len(steps) != 1 else ''})"
    weights = [name for name in PREFERRED if (folder / name).is_file()]
    if weights:
        return f"model folder ({weights[0]})"
    digits = [p for p in _children(folder) if p.name.isdigit() and p.is_dir()]
    if digits and any((d / name).is_file() for d in digits[:3] for name in _ORBAX):
        return f"Orbax checkpoint manager ({len(digits)} step{'s' if len(digits) != 1 else ''})"
    return None


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _has_child(folder: Path, prefix: str) -> bool:
    return any(p.name.startswith(prefix) for p in _children(folder))


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except OSError:
        return False
