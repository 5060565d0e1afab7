"""The port check over loaded sources: validate them, run the user's code, write the result.

``inspector.port_check`` holds the logic; this module knows where the pieces of a ``LoadedSource`` are,
runs the user's models with their errors named by the user's own frames, and writes the converted
NNX state as an Orbax checkpoint.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from inspector.align.dataflow import with_dataflow
from inspector.align.rules import Rules, forced_pairs
from inspector.align.structure import structure_of
from inspector.diffing import Tolerance
from inspector.errors import PortError
from inspector.example import Inputs, LinenExample, NnxExample
from inspector.port_check import PortReport, check_port
from inspector.training import TrainReport, check_training
from loaders.factory import user_code
from loaders.source import LoadedSource
from loaders.trace import linen_structure, trace_source


def port_sources(linen: LoadedSource, target: LoadedSource, *, rules: Rules | None = None,
                 tolerance: Tolerance = Tolerance(1e-5, 1e-5), trace: bool = True
                 ) -> tuple[PortReport, nnx.State | None]:
    """Check that ``target`` (NNX) computes what ``linen`` computes, with Linen's weights.

    With ``trace``, both forward passes are traced first and pair same-shape layers by the order
    in which they are used (``loaders.trace``); a trace that fails only adds a note.
    """
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
    structures, notes = {}, ()
    if trace:
        left, right = trace_source(linen), trace_source(target, fallback=Inputs(linen.example.infer.args))
        notes = tuple(t.note for t in (left, right) if t.note)
        structures = {"left_structure": linen_structure(linen.variables, left),
                      "right_structure": with_dataflow(structure_of(target.model), right.flow)}
    with user_code(f"{linen.spec} ↔ {target.spec}", None):
        report, state = check_port(linen.example, linen.variables, target.model, example, forced_pairs=forced,
                                   tolerance=tolerance, casts=rules.dtype if rules else None, **structures)
    return dataclasses.replace(report, notes=notes + report.notes), state


def train_sources(linen: LoadedSource, target: LoadedSource, report: PortReport, state: nnx.State | None, *,
                  tolerance: Tolerance = Tolerance(1e-5, 1e-5), loss: str = "mean_square", steps: int = 1,
                  lr: float = 1e-2, train_args: Mapping[str, Any] | None = None) -> TrainReport | None:
    """The training-step check after ``port_sources``; None when the conversion was refused."""
    if state is None:
        return None
    model = nnx.clone(target.model)
    nnx.update(model, state)
    example = target.example if isinstance(target.example, NnxExample) else None
    with user_code(f"{linen.spec} ↔ {target.spec} (training)", None):
        return check_training(linen.example, linen.variables, model, example, report.entries, tolerance=tolerance,
                              loss=loss, steps=steps, lr=lr, train_args=train_args)


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


def check_output(directory: str, *, force: bool = False) -> Path:
    """The resolved output folder, after the ``--out``/``--force`` rules; deletes nothing.

    An existing folder is refused unless ``force``; even with ``force``, only an Orbax checkpoint
    (or an empty folder) may be replaced: a folder holding anything else never is.
    """
    path = Path(directory).expanduser().resolve()
    if path.exists():
        if not force:
            raise PortError(f"output directory {directory!r} exists; choose a new one or pass --force to replace it")
        if not path.is_dir():
            raise PortError(f"output {directory!r} exists and is not a directory")
        if any(path.iterdir()) and not any((path / m).exists() for m in _CHECKPOINT_MARKERS):
            raise PortError(f"output directory {directory!r} holds files that are not an Orbax checkpoint; "
                            "it is not replaced even with --force: choose a new folder")
    return path


def write_state(directory: str, state: nnx.State, *, force: bool = False, make_parents: bool = False) -> Path:
    """Save ``state`` with Orbax so ``StandardCheckpointer().restore(dir, abstract_state)`` loads it.

    ``force`` replaces an existing Orbax checkpoint (or an empty folder) only: a folder holding
    anything else is never deleted.
    """
    import orbax.checkpoint as ocp

    path = check_output(directory, force=force)
    if path.exists():
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


def with_weights(linen: LoadedSource, weights: LoadedSource) -> LoadedSource:
    """``linen`` with its variables read from ``weights`` (a checkpoint or weight file), through the alignment.

    Every Linen variable must get a value and every stored weight must be used (optimizer state
    and step aside), or PortError lists what is missing: a port check on half-loaded weights
    would prove nothing. Layout transforms and dtype casts are applied as ``convert`` applies them.
    """
    import numpy as np
    from flax import traverse_util

    from inspector.align.structure import structure_of
    from inspector.convert_plan import plan_conversion, split_source
    from inspector.diffing import diff_trees
    from inspector.port_check import weight_records

    if linen.variables is None or not isinstance(linen.example, LinenExample):
        raise PortError(f"source {linen.spec!r} is not a runnable Linen model ({_what(linen)}); --weights fills "
                        "a Linen model's variables: pass the model as LINEN")
    if weights.form not in ("checkpoint", "weights", "linen"):
        raise PortError(f"--weights {weights.spec!r} holds no Linen weights ({_what(weights)})")
    stored, _ = split_source(weights.records)
    live = [r for r, _ in weight_records(linen.variables)]
    entries = diff_trees(stored, live, left_structure=weights.structure, right_structure=structure_of(linen.variables),
                         rng_one_sided=True, sharding_one_sided=False)
    plan = plan_conversion(entries)
    if not plan.ok:
        lines = [f"{r.status}: {r.left.full_name if r.left else '—'} → {r.right.full_name if r.right else '—'} "
                 f"({r.reason}{f'; nearest {r.nearest}' if r.nearest else ''})" for r in plan.refused]
        shown = "; ".join(lines[:12]) + (f"; and {len(lines) - 12} more" if len(lines) > 12 else "")
        raise PortError(f"--weights {weights.spec!r} does not fill the Linen model {linen.spec!r}: {shown}; "
                        "check that both are the same model")
    by_key = {(m.right.collection or "", tuple(map(str, m.right.path))): m for m in plan.moves}
    flat = traverse_util.flatten_dict(dict(linen.variables))
    for key in flat:
        move = by_key.get((str(key[0]), tuple(map(str, key[1:]))))
        if move is None:
            continue  # intermediates, perturbations: not weights
        arrays = [np.asarray(weights.read(p)) for p in move.parts]
        value = move.transform.apply(*arrays) if move.transform is not None else arrays[0]
        flat[key] = jax.numpy.asarray(value, dtype=jax.numpy.dtype(move.dtype))
    variables = traverse_util.unflatten_dict(flat)
    return dataclasses.replace(linen, variables=variables, spec=f"{linen.spec} with {weights.spec}")
