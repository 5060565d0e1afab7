"""What records alone do not say about a model: creation order and module classes.

Records are sorted by path, but alignment needs the order in which Linen created submodules
(dict insertion order of ``init``'s result) and the order of attributes on an NNX module
(``vars(module)``; ``nnx.to_flat_state`` is alphabetical). NNX modules also know their classes
(``linear`` is an ``nnx.Linear``), which tells a Linen ``Dense_0`` where to go. Checkpoints know
neither: Orbax sorts keys, so their structure is empty and alignment falls back to names.

>>> import jax.numpy as jnp
>>> s = structure_of({"params": {"zeta": {"w": jnp.ones(1)}, "alpha": {"w": jnp.ones(1)}}})
>>> sorted(s.order, key=s.order.get)
[('params', ('zeta', 'w')), ('params', ('alpha', 'w'))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flax import nnx
from flax.training import train_state

from inspector.normalize import is_linen_variables
from inspector.records import Path

_PRIVATE = "_pytree__"


@dataclasses.dataclass(frozen=True)
class Structure:
    """Creation order of variables (by record key prefix) and class names of NNX modules."""

    order: Mapping[tuple[str, Path], int] = dataclasses.field(default_factory=dict)
    classes: Mapping[Path, str] = dataclasses.field(default_factory=dict)
    # First uses in the forward pass (``inspector.align.dataflow.Dataflow``), when it was traced.
    flow: Any = None
    # What ``order`` is: ``use`` (a Linen model creates its variables when a submodule is first
    # called, the forward pass orders by first use), ``declaration`` (an NNX model's attributes, not
    # traced), or None (no order). Two orders of different kinds say nothing about each other.
    order_kind: str | None = None

    def rank(self, collection: str | None, path: Path) -> int | None:
        """Creation rank of a variable, or of its nearest listed ancestor (tuple intermediates)."""
        for end in range(len(path), 0, -1):
            rank = self.order.get((collection or "", path[:end]))
            if rank is not None:
                return rank
        return None


EMPTY = Structure()


def structure_of(obj: Any, captured: Any = None) -> Structure:
    """The structure of a live object: an NNX graph node, a Linen variables dict, a TrainState."""
    order: list[tuple[str, Path]] = []
    classes: dict[Path, str] = {}
    if isinstance(obj, nnx.Pytree):
        _walk_nnx(obj, (), order, classes, set())
    elif isinstance(obj, train_state.TrainState) and isinstance(obj.params, Mapping):
        _walk_dict(obj.params, order)
    elif isinstance(obj, Mapping) and not isinstance(obj, nnx.State):
        _walk_dict(obj, order)
    if isinstance(captured, nnx.State):
        _walk_state(captured, (), order)
    kind = ("declaration" if isinstance(obj, nnx.Pytree) else "use") if order else None
    return Structure(order={key: i for i, key in enumerate(order)}, classes=classes, order_kind=kind)


def _walk_nnx(node: Any, prefix: Path, order: list, classes: dict, seen: set[int]) -> None:
    if isinstance(node, nnx.Variable):
        order.append(("", prefix))
        return
    if isinstance(node, nnx.Pytree):
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, nnx.Module):
            classes[prefix] = type(node).__name__
        is_list = isinstance(node, nnx.List)
        for name, value in vars(node).items():
            if name.startswith(_PRIVATE):
                continue
            key: str | int = int(name) if is_list and name.isdigit() else name
            _walk_nnx(value, prefix + (key,), order, classes, seen)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _walk_nnx(value, prefix + (i,), order, classes, seen)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _walk_nnx(value, prefix + (key,), order, classes, seen)


def _walk_dict(variables: Mapping, order: list) -> None:
    """Linen keeps creation order in the dicts ``init`` returns; collections come first."""
    def walk(tree: Any, collection: str, prefix: Path) -> None:
        if isinstance(tree, Mapping):
            for key, value in tree.items():
                walk(value, collection, prefix + (key,))
        else:
            order.append((collection, prefix))

    if is_linen_variables(variables):
        for collection, tree in variables.items():
            walk(tree, str(collection), ())
    else:
        walk(variables, "params", ())


def _walk_state(state: nnx.State, prefix: Path, order: list) -> None:
    for path, _ in nnx.to_flat_state(state):
        order.append(("", prefix + tuple(path)))
