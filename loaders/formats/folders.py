"""What a source directory is: an Orbax checkpoint, a folder of legacy flax checkpoints, or a model folder.

Orbax keeps priority: a directory with Orbax's own files (``_METADATA``, ``_CHECKPOINT_METADATA``,
``manifest.ocdbt``) is Orbax's, whatever else it holds. Then ``checkpoint_<N>`` saves (whose Orbax
folders would otherwise look like a folder of separate checkpoints), then other Orbax layouts (step
and item directories, unfinished saves), then Hugging Face weight files. An empty directory goes to
the Orbax loader, which says so. A directory holding none of these gets one message saying what was
found and what was expected, and names any weight file it holds.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "checkpoint_3").write_bytes(b"\\x80")
>>> folder_kind(folder)
'legacy'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from loaders.formats.legacy import is_legacy_folder
from loaders.formats.model_folder import PREFERRED, is_model_folder

FolderKind = Literal["orbax", "legacy", "model", "unknown"]
_ORBAX_FILES = ("_METADATA", "_CHECKPOINT_METADATA", "manifest.ocdbt")
_ORBAX_TMP = re.compile(r"\.orbax-checkpoint-tmp-\d*")
WEIGHT_SUFFIXES = (".msgpack", ".safetensors", ".npz")


def folder_kind(folder: Path) -> FolderKind:
    """Which loader reads ``folder`` (an existing directory)."""
    if any((folder / name).exists() for name in _ORBAX_FILES):
        return "orbax"
    if is_legacy_folder(folder):
        return "legacy"
    children = list(folder.iterdir())
    if not children or any(_orbax_child(child) for child in children):
        return "orbax"
    if is_model_folder(folder):
        return "model"
    return "unknown"


def _orbax_child(child: Path) -> bool:
    if _ORBAX_TMP.search(child.name):
        return True
    if not child.is_dir():
        return False
    return child.name.isdigit() or any((child / name).exists() for name in _ORBAX_FILES)


def not_a_source(folder: Path) -> str:
    """Why ``folder`` is none of the folders a source may be: what it holds, what was expected."""
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    weights = [n for n in names if n.endswith(WEIGHT_SUFFIXES)]
    hint = (f"; it holds weight files: name one as the source, e.g. {str(folder / weights[0])!r}" if weights else "")
    return (f"{str(folder)!r} is not an Orbax checkpoint: no _METADATA file, no item directories and no step "
            f"directories; nor a folder of flax checkpoints (checkpoint_<N>) or a model folder "
            f"({', '.join(PREFERRED)}) (found: {shown}){hint}")
