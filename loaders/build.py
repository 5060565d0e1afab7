"""Build a model example into live objects, concretely or abstractly (shapes only).

Linen: ``module.init`` with ``jax.random.key(0)`` for ``params`` and whatever other RNG streams
init asks for; collections named in ``capture`` come from one ``apply``. NNX: the builder is
called (inside ``nnx.eval_shape`` when abstract), and Variable types named in ``capture`` come from
one ``nnx.capture`` forward pass. An example with a ``mesh`` plan is built on that mesh, or with its
annotations only when there are too few devices (``loaders.mesh``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax.errors
import jax
from flax import nnx

from inspector.align.structure import Structure, structure_of
from inspector.errors import SourceError
from inspector.example import Inputs, LinenExample, NnxExample
from loaders.abstract import abstract_build
from loaders.mesh import mesh_context, on_real_mesh, place_linen

_NEEDS_RNG = re.compile(r'needs PRNG for "([^"]+)"')
_MAX_STREAMS = 16


@dataclasses.dataclass(frozen=True, eq=False)
class Built:
    """What a build produced: the object to inspect and the parts later steps need."""

    obj: Any
    model: Any = None
    variables: Mapping[str, Any] | None = None
    captured: nnx.State | None = None
    # Creation order seen inside an abstract build: ``jax.eval_shape`` returns its dicts sorted.
    structure: Structure | None = None


def build_linen(example: LinenExample, *, abstract: bool) -> Built:
    """Initialize a Linen example; with ``abstract``, under ``jax.eval_shape`` (nothing allocated)."""
    def run(init: Inputs, infer: Inputs):
        variables, rngs = init_linen(example.module, init)
        if example.capture:
            _, mutated = example.module.apply(
                variables, *infer.args, **infer.kwargs, rngs=rngs,
                mutable=list(example.capture) + list(example.mutable))
            variables = {**variables, **{c: mutated[c] for c in example.capture if c in mutated}}
        obj = example.wrap(variables) if example.wrap else variables
        seen["structure"] = structure_of(obj)  # in creation order, before eval_shape sorts the keys
        return obj, variables

    seen: dict[str, Structure] = {}
    with mesh_context(example.mesh) as mesh:
        if abstract:
            obj, variables = eval_shape_with_inputs(run, example.init, example.infer)
        else:
            obj, variables = run(example.init, example.infer)
    if mesh is not None and example.wrap is None:  # a wrapped object is built from the variables as they were
        obj = variables = place_linen(variables, mesh, example.mesh)
    return Built(obj=obj, model=example.module, variables=variables,
                 structure=seen.get("structure") if abstract else None)


def init_linen(module, inputs: Inputs) -> tuple[dict, dict]:
    """``module.init`` supplying every RNG stream it asks for; ``params`` gets ``key(0)``."""
    streams = ["params"]
    while True:
        rngs = {name: jax.random.key(i) for i, name in enumerate(streams)}
        try:
            variables = module.init(rngs, *inputs.args, **inputs.kwargs)
        except flax.errors.InvalidRngError as err:
            match = _NEEDS_RNG.search(str(err))
            if not match or match[1] in streams or len(streams) >= _MAX_STREAMS:
                raise
            streams.append(match[1])
            continue
        return dict(variables), rngs


def build_nnx(example: NnxExample, *, abstract: bool) -> Built:
    """Build an NNX example; with ``abstract``, under ``nnx.eval_shape`` (nothing allocated)."""
    def run(*dynamic):
        infer = _rebuild_inputs(example.infer, dynamic)
        module = example.build()
        if not isinstance(module, nnx.Module):
            raise SourceError(f"the NNX builder returned {type(module).__name__}, not an nnx.Module")
        captured = None
        if example.capture:
            _, *states = nnx.capture(module, *example.capture)(*infer.args, **infer.kwargs)
            captured = nnx.merge_state(*states) if len(states) > 1 else states[0]
        obj = example.wrap(module) if example.wrap else module
        seen["structure"] = structure_of(obj, captured)  # nnx.eval_shape hands back sorted attributes
        return module, captured, obj

    seen: dict[str, Structure] = {}
    dynamic = _dynamic_leaves(example.infer)
    with mesh_context(example.mesh) as mesh:
        if abstract:
            with abstract_build():
                module, captured, obj = nnx.eval_shape(run, *dynamic)
        else:
            module, captured, obj = run(*dynamic)
    if mesh is not None and abstract:
        on_real_mesh(module, mesh)
    return Built(obj=obj, model=module, captured=captured, structure=seen.get("structure") if abstract else None)


def abstractify(tree: Any) -> Any:
    """Arrays and tracers become ``jax.ShapeDtypeStruct``; everything else stays as it is."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if _is_array(x) else x,
                        tree)


def eval_shape_with_inputs(fn: Callable[..., Any], *inputs: Inputs) -> Any:
    """``jax.eval_shape(fn, *inputs)`` where only the array leaves of the inputs are traced.

    Python values among the inputs (``training=True``) stay static, as the module expects.
    """
    def inner(*dynamic):
        rebuilt, start = [], 0
        for item in inputs:
            n = len(_dynamic_leaves(item))
            rebuilt.append(_rebuild_inputs(item, dynamic[start:start + n]))
            start += n
        return fn(*rebuilt)

    return jax.eval_shape(inner, *[leaf for item in inputs for leaf in _dynamic_leaves(item)])


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, type)


def _dynamic_leaves(inputs: Inputs) -> list[Any]:
    return [leaf for leaf in jax.tree.leaves((inputs.args, dict(inputs.kwargs))) if _is_array(leaf)]


def _rebuild_inputs(inputs: Inputs, dynamic) -> Inputs:
    leaves, treedef = jax.tree.flatten((inputs.args, dict(inputs.kwargs)))
    it = iter(dynamic)
    leaves = [next(it) if _is_array(leaf) else leaf for leaf in leaves]
    args, kwargs = jax.tree.unflatten(treedef, leaves)
    return Inputs(tuple(args), kwargs)
