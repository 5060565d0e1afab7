"""The port check over loaded sources: validate them, run the user's code, write the result.

``inspector.port_check`` holds the logic; this module knows where the pieces of a ``LoadedSource`` are,
runs the user's models with their errors named by the user's own frames, and writes the converted
NNX state as an Orbax checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flax import nnx

from inspector.align.rules import Rules, forced_pairs
from inspector.diffing import Tolerance
from inspector.errors import PortError
from inspector.example import LinenExample, NnxExample
from inspector.port_check import PortReport, check_port
from loaders.factory import user_code
from loaders.source import LoadedSource


def port_sources(linen: LoadedSource, target: LoadedSource, *, rules: Rules | None = None,
                 tolerance: Tolerance = Tolerance(1e-5, 1e-5)) -> tuple[PortReport, nnx.State | None]:
    """Check that ``target`` (NNX) computes what ``linen`` computes, with Linen's weights."""
    if linen.abstract or target.abstract:
        raise PortError("the port check runs both models: it needs concrete sources, not --abstract")
    if not isinstance(linen.example, LinenExample) or linen.variables is None:
        raise PortError(f"source {linen.spec!r} is not a runnable Linen model ({_what(linen)}): the port check "
                        "needs a Linen module with example inputs — a sample:NAME:linen, or a factory returning "
                        "(linen_module, args, kwargs)")
    if not isinstance(target.model, nnx.Module):
        raise PortError(f"source {target.spec!r} is not an NNX module ({_what(target)}): the port check needs "
                        "an NNX model to run — a sample:NAME:nnx, or a factory returning an nnx.Module "
                        "(or (module, args, kwargs))")
    example = target.example if isinstance(target.example, NnxExample) else None
    forced = (lambda left, right: forced_pairs(rules, left, right)[0]) if rules else None
    with user_code(f"{linen.spec} ↔ {target.spec}", None):
        return check_port(linen.example, linen.variables, target.model, example, forced_pairs=forced,
                          tolerance=tolerance, casts=rules.dtype if rules else None)


_CHECKPOINT_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA")


def _what(source: LoadedSource) -> str:
    if source.form == "checkpoint":
        return "a checkpoint holds weights, not a model to run"
    if source.form == "weights":
        return "a weight file holds weights, not a model to run"
    if source.form == "nnx" and source.model is None:
        return "it is NNX state without its module"
    form = {"nnx": "an NNX", "linen": "a Linen"}.get(source.form, "a")
    return f"it is {form} {type(source.obj).__name__}"


def write_state(directory: str, state: nnx.State, *, force: bool = False, make_parents: bool = False) -> Path:
    """Save ``state`` with Orbax so ``StandardCheckpointer().restore(dir, abstract_state)`` loads it.

    ``force`` replaces an existing Orbax checkpoint (or an empty folder) only: a folder holding
    anything else is never deleted.
    """
    import orbax.checkpoint as ocp

    path = Path(directory).expanduser().resolve()
    if path.exists():
        if not force:
            raise PortError(f"output directory {directory!r} exists; choose a new one or pass --force to replace it")
        if not path.is_dir():
            raise PortError(f"output {directory!r} exists and is not a directory")
        if any(path.iterdir()) and not any((path / m).exists() for m in _CHECKPOINT_MARKERS):
            raise PortError(f"output directory {directory!r} holds files that are not an Orbax checkpoint; "
                            "it is not replaced even with --force: choose a new folder")
        shutil.rmtree(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not path.parent.is_dir():
        raise PortError(f"cannot write {directory!r}: the folder {str(path.parent)!r} does not exist")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, state)
    checkpointer.wait_until_finished()
    checkpointer.close()
    return path
