"""Trace a live source's forward pass once, abstractly, for dataflow evidence.

Why ``jax.make_jaxpr`` and not module-call interception (``nn.intercept_methods``, wrapping NNX
``__call__``): interception sees calls of modules, not uses of arrays. It misses a kernel read
outside its module's ``__call__`` (``x @ self.dense.kernel[...].T``), a parameter used by a plain
function, and the contraction axes entirely; and Linen and NNX would need two mechanisms. A jaxpr
sees every use of every variable, in execution order, with the axes of each ``dot_general`` and
``conv_general_dilated``, for both APIs alike. The variables and inputs go in as
``ShapeDtypeStruct``: nothing is computed or allocated, and the model code runs once in Python.

Tracing never fails a command: a model that needs real data (Python control flow on values), a
source without example inputs, or any error gives no dataflow and a one-line note instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from typing import Any

import jax
from flax import nnx

from inspector.align.dataflow import Dataflow, analyze_jaxpr, with_dataflow
from inspector.align.structure import Structure, structure_of
from inspector.example import Inputs, LinenExample, NnxExample
from loaders.abstract import abstract_build
from loaders.build import _dynamic_leaves, _rebuild_inputs
from loaders.source import LoadedSource

_NOT_TRACED = frozenset({"intermediates", "perturbations"})


@dataclasses.dataclass(frozen=True)
class Traced:
    """The forward pass of one source: its dataflow, or why there is none (``note``)."""

    flow: Dataflow | None = None
    note: str | None = None


def trace_source(src: LoadedSource, fallback: Inputs | None = None) -> Traced:
    """Trace ``src``'s inference call on its example inputs (NNX without inputs: ``fallback``)."""
    if src.on_disk:
        return Traced()
    borrowed = False
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if isinstance(src.example, LinenExample) and src.variables is not None:
                return Traced(trace_linen(src.example, src.variables))
            if isinstance(src.model, nnx.Module):
                inputs = src.example.infer if isinstance(src.example, NnxExample) else None
                if inputs is None or not (inputs.args or inputs.kwargs):
                    inputs, borrowed = fallback, True
                if inputs is None:
                    return Traced()  # no example inputs: nothing to trace, nothing to say
                return Traced(trace_nnx(src.model, inputs))
    except Exception as err:  # noqa: BLE001 — the user's model may raise anything; tracing is optional
        if borrowed:
            return Traced()  # the other side's inputs were only a guess: no inputs, today's behaviour
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return Traced(note=f"{src.spec}: forward pass not traced ({type(err).__name__}: {text[:160]}); "
                           "pairing by creation order")
    return Traced()


def traced_structures(left: LoadedSource, right: LoadedSource) -> tuple[Structure, Structure, list[str]]:
    """Both sources' structures reordered by their forward passes, and a note per failed trace.

    An NNX model without inputs of its own is traced on the other side's positional inputs, as
    the port check runs it; if they do not fit, it is simply not traced.
    """
    def inputs_of(src: LoadedSource) -> Inputs | None:
        infer = getattr(src.example, "infer", None)
        return Inputs(tuple(infer.args)) if infer is not None else None

    lt = trace_source(left, fallback=inputs_of(right))
    rt = trace_source(right, fallback=inputs_of(left))
    notes = [t.note for t in (lt, rt) if t.note]
    return traced_structure(left, lt), traced_structure(right, rt), notes


def traced_structure(src: LoadedSource, traced: Traced) -> Structure:
    """The source's structure, reordered by the forward pass when it was traced."""
    return with_dataflow(src.structure, traced.flow)


def linen_structure(variables: Any, traced: Traced) -> Structure:
    return with_dataflow(structure_of(variables), traced.flow)


def trace_linen(example: LinenExample, variables: Any) -> Dataflow:
    """First uses of a Linen model's variables in ``apply`` on its inference inputs."""
    weights = {c: v for c, v in variables.items() if c not in _NOT_TRACED}
    keys, leaves, treedef = _flat_keys(weights, linen=True)
    mutable = [c for c in weights if c != "params"]
    dynamic = _dynamic_leaves(example.infer)

    def forward(leaves, dynamic):
        inputs = _rebuild_inputs(example.infer, dynamic)
        return example.module.apply(jax.tree.unflatten(treedef, leaves), *inputs.args, **inputs.kwargs,
                                    mutable=mutable or False)

    with abstract_build():
        jaxpr = jax.make_jaxpr(forward)(_abstract(leaves), _abstract(dynamic))
    return analyze_jaxpr(jaxpr, keys)


def trace_nnx(model: nnx.Module, inputs: Inputs) -> Dataflow:
    """First uses of an NNX model's variables in one eval-mode call on ``inputs``."""
    graphdef, state = nnx.split(model)
    keys, leaves, treedef = _flat_keys(state, linen=False)
    dynamic = _dynamic_leaves(inputs)

    def forward(leaves, dynamic):
        module = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
        module.eval()
        call = _rebuild_inputs(inputs, dynamic)
        return module(*call.args, **call.kwargs)

    with abstract_build():
        jaxpr = jax.make_jaxpr(forward)(_abstract(leaves), _abstract(dynamic))
    return analyze_jaxpr(jaxpr, keys)


def _flat_keys(tree: Any, *, linen: bool) -> tuple[list, list, Any]:
    """Leaves with the record key each belongs to (``(collection, path)`` for Linen, ``("", path)``)."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    keys, leaves = [], []
    for path, leaf in with_path:
        parts = tuple(_part(p) for p in path)
        parts = tuple(p for p in parts if p is not None)
        keys.append((str(parts[0]), parts[1:]) if linen else ("", parts))
        leaves.append(leaf)
    return keys, leaves, treedef


def _part(entry: Any) -> Any:
    if isinstance(entry, jax.tree_util.DictKey):
        return entry.key
    if isinstance(entry, jax.tree_util.SequenceKey):
        return entry.idx
    return None  # a box's ``.value`` (Variable, nn.Partitioned): not a level of the path


def _abstract(leaves: list) -> list:
    return [jax.ShapeDtypeStruct(x.shape, x.dtype) if hasattr(x, "shape") and hasattr(x, "dtype") else x
            for x in leaves]
