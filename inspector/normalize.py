"""Flatten any model state into typed records, one per variable.

Accepted: NNX modules and other graph nodes (``nnx.Pytree``), ``nnx.State``, Linen variables dicts
(``{collection: tree}``), Flax ``TrainState`` objects (Linen or NNX flavoured), and any other pytree.
Leaves may be arrays, typed PRNG keys, ``jax.ShapeDtypeStruct`` (abstract builds), Python scalars,
``nn.Partitioned`` boxes and tuples (Linen and NNX intermediates, one record per element).

The result pairs each record with its leaf value; the records never hold the values.

>>> import jax.numpy as jnp
>>> leaves = flatten_variables({"params": {"Dense_0": {"bias": jnp.zeros(3)}}})
>>> [(r.collection, r.name, r.type, r.shape) for r, _ in leaves]
[('params', 'Dense_0/bias', 'Param', (3,))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import nnx
from flax.core import meta
from flax.training import train_state

from inspector.errors import SourceError
from inspector.kinds import kind_of_collection, registered_base
from inspector.records import Path, VariableRecord
from inspector.sharding import sharding_of

Leaf = tuple[VariableRecord, Any]

OPT_STATE = "OptState"
# Variable metadata that is flax's own bookkeeping, not something a user set.
_INTERNAL_METADATA = frozenset({"hijax", "ref", "eager_sharding", "mesh", "out_sharding",
                                "sharding_names", "sharding", "value"})


def flatten_variables(obj: Any) -> list[Leaf]:
    """Records and leaf values of every variable in ``obj``, sorted by ``(collection, path)``."""
    leaves: list[Leaf] = []
    if isinstance(obj, train_state.TrainState):
        _flatten_train_state(obj, leaves)
    elif isinstance(obj, nnx.Pytree):
        _flatten_nnx_state(nnx.state(obj), leaves)
    elif isinstance(obj, nnx.State):
        _flatten_nnx_state(obj, leaves)
    elif isinstance(obj, Mapping) and is_linen_variables(obj):
        _flatten_linen(obj, leaves)
    elif isinstance(obj, Mapping):
        _flatten_pytree(obj, (), leaves, collection="params", kind="Param")
    else:
        _flatten_pytree(obj, (), leaves, collection=None, kind=None)
    leaves.sort(key=lambda leaf: leaf[0].sort_key())
    return leaves


def is_linen_variables(tree: Mapping) -> bool:
    """A dict of collections: every top-level value a mapping, at least one name flax knows."""
    if not tree or not all(isinstance(v, Mapping) for v in tree.values()):
        return False
    return any(kind_of_collection(str(k)) != str(k) for k in tree)


def describe(path: Path, value: Any, *, kind: str | None, collection: str | None = None,
             names: tuple | None = None, metadata: tuple[tuple[str, str], ...] = (),
             base: str | None = None) -> VariableRecord:
    """The record of one array-like leaf (array, typed key, ShapeDtypeStruct or scalar).

    Anything else (a string, an object) is not a variable: ``SourceError`` names its path.
    """
    if not _is_array_like(value):
        where = "/".join(str(k) for k in ((collection,) if collection else ()) + path)
        raise SourceError(f"variable {where!r} holds a {type(value).__name__} ({_short(value)}), not an array; "
                          "a model's variables must be arrays (or numbers)")
    shape = tuple(int(d) for d in (value.shape if hasattr(value, "shape") else np.shape(value)))
    dtype = _dtype_of(value)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    return VariableRecord(
        path=path, type=kind, collection=collection, shape=shape, dtype=str(dtype), size=size,
        nbytes=size * dtype.itemsize, sharding=sharding_of(value, shape, dtype, names),
        metadata=metadata, base=base)


def leaf_path(keys: tuple) -> Path:
    """A jax key path (``DictKey``, ``SequenceKey``, ``GetAttrKey`` ...) as plain str/int keys."""
    out: list[str | int] = []
    for k in keys:
        if isinstance(k, jax.tree_util.DictKey):
            out.append(k.key if isinstance(k.key, (str, int)) else str(k.key))
        elif isinstance(k, jax.tree_util.SequenceKey):
            out.append(k.idx)
        elif isinstance(k, jax.tree_util.GetAttrKey):
            out.append(k.name)
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            out.append(k.key)
        else:
            out.append(str(k))
    return tuple(out)


def _dtype_of(value: Any) -> np.dtype:
    if hasattr(value, "dtype"):
        return value.dtype
    return jax.dtypes.canonicalize_dtype(np.result_type(value))


def _flatten_nnx_state(state: nnx.State, leaves: list[Leaf]) -> None:
    for path, var in nnx.to_flat_state(state):
        _add_variable(tuple(path), var, leaves)


def _add_variable(path: Path, var: nnx.Variable, leaves: list[Leaf], *, collection: str | None = None,
                  kind: str | None = None) -> None:
    metadata = var.get_metadata()
    names = metadata.get("out_sharding") or metadata.get("sharding_names")
    extra = tuple((k, v if isinstance(v, str) else repr(v))
                  for k, v in sorted(metadata.items()) if k not in _INTERNAL_METADATA)
    _add_value(path, var.get_value(), leaves, kind=kind or type(var).__name__, collection=collection,
               names=tuple(names) if names else None, metadata=extra,
               base=None if kind else registered_base(type(var)))


def _add_value(path: Path, value: Any, leaves: list[Leaf], *, kind: str | None,
               collection: str | None, names: tuple | None = None,
               metadata: tuple[tuple[str, str], ...] = (), base: str | None = None) -> None:
    """One leaf value; tuples and other containers (intermediates) give one record per element."""
    if _is_array_like(value):
        leaves.append((describe(path, value, kind=kind, collection=collection, names=names,
                                metadata=metadata, base=base), value))
        return
    for keys, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
        leaves.append((describe(path + leaf_path(keys), leaf, kind=kind, collection=collection,
                                names=names, metadata=metadata, base=base), leaf))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") or isinstance(
        value, (int, float, bool, complex, np.number, np.bool_))


def _flatten_linen(variables: Mapping, leaves: list[Leaf]) -> None:
    for collection, tree in variables.items():
        _flatten_pytree(tree, (), leaves, collection=str(collection),
                        kind=kind_of_collection(str(collection)))


def _flatten_pytree(tree: Any, prefix: Path, leaves: list[Leaf], *, collection: str | None,
                    kind: str | None) -> None:
    """A pytree that may hold Variables (NNX states inside a TrainState) or Linen boxes."""
    is_box = lambda x: isinstance(x, (nnx.Variable, meta.AxisMetadata))  # noqa: E731
    for keys, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_box)[0]:
        path = prefix + leaf_path(keys)
        if isinstance(leaf, nnx.Variable):
            _add_variable(path, leaf, leaves, collection=collection,
                          kind=kind if kind == OPT_STATE else None)
        elif isinstance(leaf, meta.AxisMetadata):
            names = getattr(leaf, "names", None)
            _add_value(path, leaf.unbox(), leaves, kind=kind, collection=collection,
                       names=tuple(names) if names else None)
        else:
            _add_value(path, leaf, leaves, kind=kind, collection=collection)


def _flatten_train_state(state: train_state.TrainState, leaves: list[Leaf]) -> None:
    """Params as the model's variables; optimizer state and step as their own kind.

    Params are shown as the model would show them (a Linen collection, or NNX paths), so a
    TrainState lines up with the bare model; ``opt_state/...`` and ``step`` keep their field names.
    """
    params = state.params
    if isinstance(params, nnx.State):
        _flatten_nnx_state(params, leaves)
    elif isinstance(params, Mapping) and is_linen_variables(params):
        _flatten_linen(params, leaves)
    else:
        _flatten_pytree(params, (), leaves, collection="params", kind="Param")
    for field in ("step", "opt_state"):
        _flatten_pytree(getattr(state, field), (field,), leaves, collection=None, kind=OPT_STATE)
    # Fields a subclass adds (the NNX guide's ``other_variables``) hold more model variables.
    for name in _extra_fields(state):
        value = getattr(state, name)
        if isinstance(value, nnx.State):
            _flatten_nnx_state(value, leaves)
        else:
            _flatten_pytree(value, (name,), leaves, collection=None, kind=None)


def _extra_fields(state: train_state.TrainState) -> list[str]:
    base = {f.name for f in dataclasses.fields(train_state.TrainState)}
    return [f.name for f in dataclasses.fields(state)
            if f.name not in base and f.metadata.get("pytree_node", True)]
