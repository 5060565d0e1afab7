"""Orbax checkpoint trees as records: undo what saving did to the model's own layout.

Saving loses or bends three things, and this module puts them back so that a checkpoint lines up
with the live model it came from:

- NNX writes each Variable as ``{'value': leaf}`` (Linen ``nn.Partitioned`` boxes look the same);
  a single-key ``value`` level is dropped.
- NNX list indices come back as strings (``'0'``); in NNX regions digit keys become ints again.
  Linen regions keep digit strings (a Linen name may be ``'0'``), and sequences Orbax recorded as
  lists already give ints.
- Typed PRNG keys are stored as ``uint32`` key data (``(2,)`` per ``threefry`` key, ``(4,)`` per
  ``rbg``/``unsafe_rbg`` key); with the implementation Orbax recorded, the record shows the key
  again (shape ``()``, dtype ``key<fry>``).

The kind of a variable is not on disk. A record gets one only where the layout says it: a Linen
collection (by flax's registry), a TrainState's ``params``, the weights an NNX optimizer holds
moments for, optimizer state and step (``OptState``), and RNG state (``rngs/key``, ``rngs/count``).
Everything else has ``type=None`` ("kind unknown"). Pure: it reads no files.

>>> import numpy as np
>>> import jax
>>> tree = {"linear": {"kernel": {"value": jax.ShapeDtypeStruct((2, 3), np.float32)}},
...         "layers": {"0": {"bias": {"value": jax.ShapeDtypeStruct((3,), np.float32)}}}}
>>> [(r.path, r.type, r.shape) for r, _ in checkpoint_records(tree)]
[(('layers', 0, 'bias'), None, (3,)), (('linear', 'kernel'), None, (2, 3))]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from inspector.kinds import kind_of_collection
from inspector.records import Path, Sharding, VariableRecord
from inspector.sharding import layout_on_mesh

OPT_STATE = "OptState"
_VALUE = "value"


@dataclasses.dataclass(frozen=True)
class StoredLeaf:
    """One array as Orbax stored it: its place in the saved tree and its stored shape and dtype.

    ``disk_path`` keeps the saved keys exactly (``'value'`` levels, list positions as ints), so a
    reader can ask Orbax for this one array; ``key_impl`` names the PRNG implementation when the
    stored ``uint32`` data is a typed key.
    """

    disk_path: tuple[str | int, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    key_impl: str | None = None


Entry = tuple[VariableRecord, StoredLeaf]


@dataclasses.dataclass(frozen=True)
class _Leaf:
    disk_path: tuple[str | int, ...]
    path: tuple[str | int, ...]  # disk path without the ``value`` level
    meta: Any
    wrapped: bool


def checkpoint_records(tree: Any, key_impls: Mapping[str, str] | None = None) -> list[Entry]:
    """Records (sorted by key) and stored leaves of a checkpoint's metadata tree.

    ``tree`` is Orbax's metadata tree (nested dicts and lists whose leaves have ``shape``,
    ``dtype`` and optionally ``sharding``); ``key_impls`` maps Orbax parameter names
    (``'a.rngs.key'``) to the PRNG implementation recorded in ``array_metadatas/``.
    """
    leaves = list(_walk(tree, ()))
    place = _placer(tree, leaves)
    entries = []
    for leaf in leaves:
        collection, path, kind = place(leaf)
        entries.append(_entry(leaf, collection, path, kind, (key_impls or {}).get(_param_name(leaf))))
    entries.sort(key=lambda e: e[0].sort_key())
    return entries


def is_nnx_tree(tree: Mapping) -> bool:
    """Whether every leaf sits in a single-key ``{'value': leaf}`` dict, as NNX writes Variables."""
    leaves = list(_walk(tree, ()))
    return bool(leaves) and all(leaf.wrapped for leaf in leaves)


def rng_kind(path: Sequence[Any], dtype: Any) -> str | None:
    """``RngKey``/``RngCount`` for NNX RNG state (``.../rngs/key``, ``rngs/<stream>/count``).

    >>> rng_kind(("block", "dropout", "rngs", "key"), "uint32"), rng_kind(("rngs", "default", "count"), "uint32")
    ('RngKey', 'RngCount')
    >>> rng_kind(("dense", "count"), "uint32") is None
    True
    """
    if len(path) < 2 or path[-1] not in ("key", "count"):
        return None
    if not any(isinstance(k, str) and k.endswith("rngs") for k in path[-3:-1]):
        return None
    dtype = str(dtype)
    if path[-1] == "key" and (dtype.startswith("key<") or dtype == "uint32"):
        return "RngKey"
    if path[-1] == "count" and np.issubdtype(np.dtype(dtype), np.integer):
        return "RngCount"
    return None


def sharding_of_metadata(meta: Any, shape: tuple[int, ...], itemsize: int) -> Sharding | None:
    """A record's ``Sharding`` from Orbax's ``NamedShardingMetadata`` (``None`` for one device)."""
    sharding = getattr(meta, "sharding", None)
    spec = getattr(sharding, "partition_spec", None)
    if spec is None:
        return None
    mesh = tuple((str(a), int(n)) for a, n in zip(sharding.axis_names, np.asarray(sharding.shape).ravel()))
    spec = tuple(e if e is None or isinstance(e, str) else tuple(e) for e in spec)
    return layout_on_mesh(spec, shape, itemsize, mesh)


def _walk(node: Any, disk: tuple) -> Iterator[_Leaf]:
    if isinstance(node, Mapping):
        if len(node) == 1 and _VALUE in node and _is_leaf(node[_VALUE]):
            yield _Leaf(disk + (_VALUE,), disk, node[_VALUE], wrapped=True)
            return
        for key, child in node.items():
            yield from _walk(child, disk + (key,))
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            yield from _walk(child, disk + (i,))
    elif node is not None:
        yield _Leaf(disk, disk, node, wrapped=False)


def _is_leaf(node: Any) -> bool:
    return node is not None and not isinstance(node, (Mapping, list, tuple))


def _param_name(leaf: _Leaf) -> str:
    name = getattr(leaf.meta, "name", None)
    return name if isinstance(name, str) else ".".join(str(k) for k in leaf.disk_path)


def _int_keys(path: Sequence[Any]) -> Path:
    """NNX list positions back to ints: ``'0'`` → ``0``."""
    return tuple(int(k) if isinstance(k, str) and k.isdigit() else k for k in path)


def _is_linen_variables(tree: Any) -> bool:
    if not isinstance(tree, Mapping) or not tree or not all(isinstance(v, Mapping) for v in tree.values()):
        return False
    return any(kind_of_collection(str(k)) != str(k) for k in tree)


Placement = tuple[str | None, Path, str | None]


def _placer(tree: Any, leaves: list[_Leaf]):
    """Choose how saved paths become record paths, from the shape of the whole tree."""
    if not isinstance(tree, Mapping):  # a list or a single array saved on its own
        return _plain_placer
    if "params" in tree and "opt_state" in tree:
        return _train_state_placer(tree)
    optimizer = next((k for k, v in tree.items() if isinstance(v, Mapping) and "opt_state" in v), None)
    if optimizer is not None:
        return _nnx_training_placer(tree, optimizer, leaves)
    if _is_linen_variables(tree):
        return lambda leaf: (str(leaf.path[0]), leaf.path[1:], kind_of_collection(str(leaf.path[0])))
    return _plain_placer


def _plain_placer(leaf: _Leaf) -> Placement:
    path = _int_keys(leaf.path) if leaf.wrapped else leaf.path
    return None, path, rng_kind(path, _stored_dtype(leaf))


def _train_state_placer(tree: Mapping):
    """A flax ``TrainState``: params as the model shows them, ``opt_state/...`` and ``step`` as OptState.

    Mirrors ``inspector.normalize`` on a live TrainState, so the two line up record for record.
    """
    params = tree["params"]
    linen_vars = _is_linen_variables(params)

    def place(leaf: _Leaf) -> Placement:
        head, rest = leaf.path[0], leaf.path[1:]
        if head == "params":
            if linen_vars:
                return str(rest[0]), rest[1:], kind_of_collection(str(rest[0]))
            if leaf.wrapped:
                return None, _int_keys(rest), "Param"
            return "params", rest, "Param"
        if head in ("opt_state", "step"):
            return None, _int_keys(leaf.path) if leaf.wrapped else leaf.path, OPT_STATE
        if leaf.wrapped:  # extra NNX state fields (the guide's ``other_variables``) hold model state
            path = _int_keys(rest)
            return None, path, rng_kind(path, _stored_dtype(leaf))
        return None, leaf.path, None

    return place


def _nnx_training_placer(tree: Mapping, optimizer: str, leaves: list[_Leaf]):
    """``{'model': nnx.state(model), 'optimizer': nnx.state(opt)}`` as the live objects show them.

    The model's weights are the paths the optimizer holds moments for (``opt_state/0/mu/<path>``),
    so they are Params; RNG state is recognized by name; other model state stays kind unknown.
    Older flax kept the model inside the optimizer (``optimizer/model/...``); both are read.
    """
    model = ("model",) if "model" in tree else (optimizer, "model")
    model_shapes = {_int_keys(leaf.path[len(model):]): tuple(leaf.meta.shape) for leaf in leaves
                    if leaf.path[:len(model)] == model}
    opt_shapes = [(_int_keys(leaf.path[2:]), tuple(leaf.meta.shape)) for leaf in leaves
                  if leaf.path[:2] == (optimizer, "opt_state")]
    trained = mirrored_paths(opt_shapes, model_shapes)

    def place(leaf: _Leaf) -> Placement:
        if leaf.path[:len(model)] == model:
            path = _int_keys(leaf.path[len(model):])
            return None, path, rng_kind(path, _stored_dtype(leaf)) or ("Param" if path in trained else None)
        if leaf.path[0] == optimizer:
            return None, _int_keys(leaf.path[1:]), OPT_STATE
        return _plain_placer(leaf)

    return place


def mirrored_paths(opt_leaves: Sequence[tuple[Path, tuple]], model: Mapping[Path, tuple]) -> set[Path]:
    """Model paths an optimizer state mirrors: the subtrees (``mu``, ``nu``, ``trace``) whose every
    leaf has a model path and shape below it.

    >>> model = {("linear", "kernel"): (2, 3), ("count",): ()}
    >>> opt = [((0, "count"), ()), ((0, "mu", "linear", "kernel"), (2, 3))]
    >>> sorted(mirrored_paths(opt, model))
    [('linear', 'kernel')]
    """
    below: dict[Path, list[tuple[Path, tuple]]] = {}
    for path, shape in opt_leaves:
        for i in range(1, len(path)):
            below.setdefault(path[:i], []).append((path[i:], shape))
    found: set[Path] = set()
    for suffixes in below.values():
        if all(model.get(p) == shape for p, shape in suffixes):
            found.update(p for p, _ in suffixes)
    return found


def _stored_dtype(leaf: _Leaf) -> np.dtype:
    return np.dtype(leaf.meta.dtype)


def _entry(leaf: _Leaf, collection: str | None, path: Path, kind: str | None,
           key_impl: str | None) -> Entry:
    stored_shape = tuple(int(d) for d in leaf.meta.shape)
    stored_dtype = jax.dtypes.canonicalize_dtype(_stored_dtype(leaf))
    shape, dtype = stored_shape, stored_dtype
    if key_impl is None and kind == "RngKey" and stored_shape[-1:] == (2,) and str(stored_dtype) == "uint32":
        key_impl = "threefry2x32"  # jax's default; rbg and unsafe_rbg keys are (4,) and need the record
    if key_impl is not None:
        typed = _typed_key(stored_shape, key_impl)
        if typed is None:
            key_impl = None
        else:
            shape, dtype = typed
    size = math.prod(shape)
    record = VariableRecord(
        path=path, type=kind, collection=collection, shape=shape, dtype=str(dtype), size=size,
        nbytes=size * dtype.itemsize, sharding=sharding_of_metadata(leaf.meta, shape, dtype.itemsize))
    return record, StoredLeaf(leaf.disk_path, stored_shape, stored_dtype, key_impl)


def _typed_key(stored_shape: tuple[int, ...], impl: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of the typed keys whose ``uint32`` key data has ``stored_shape``."""
    try:
        out = jax.eval_shape(lambda data: jax.random.wrap_key_data(data, impl=impl),
                             jax.ShapeDtypeStruct(stored_shape, np.uint32))
    except (TypeError, ValueError):
        return None
    return tuple(out.shape), out.dtype
