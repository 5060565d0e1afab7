"""Objects already in memory as sources: what a notebook holds instead of a spec string.

A live object is an ``nnx.Module``, an ``nnx.State``, a Linen variables dict, a Flax
``TrainState`` or ``(module, args, kwargs)`` (a Linen or NNX module with example inputs). A dict is
a Linen variables dict when it has a ``params`` collection or every top-level key is a collection
flax registers (``batch_stats``, ``cache``, ...); any other dict is a params tree and is taken as
``{"params": d}``. Nothing the user passed is changed: records are read from the objects, and the
port check runs on a clone.

>>> import jax.numpy as jnp
>>> src = load_object({"Dense_0": {"kernel": jnp.ones((2, 3))}})
>>> src.form, [r.full_name for r in src.records]
('linen', ['params/Dense_0/kernel'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
from flax import nnx
from flax.training import train_state

from inspector.errors import SourceError
from loaders.source import LoadedSource, from_factory

ACCEPTED = ("a spec string, an nnx.Module, an nnx.State, a Linen variables dict, a Flax TrainState, "
            "or (module, args, kwargs)")


def load_object(obj: Any, *, abstract: bool = False, values: bool = False) -> LoadedSource:
    """A ``LoadedSource`` for an object in memory; ``SourceError`` naming what was passed otherwise."""
    import dataclasses

    name = describe_object(obj)
    if isinstance(obj, Mapping) and not isinstance(obj, nnx.State):
        obj = as_variables(obj)
    elif not (isinstance(obj, (nnx.Module, nnx.State, train_state.TrainState)) or _is_example(obj)):
        raise SourceError(f"cannot inspect {name}: pass {ACCEPTED}")
    if values and abstract:
        raise SourceError(f"{name}: an abstract build has shapes but no values; drop abstract=True "
                          "to compute value statistics")
    # A live object already exists: ``abstract`` builds nothing new for it, except the Linen
    # ``init`` of a (module, args, kwargs) example, which the factory path runs abstractly.
    src = from_factory(name, lambda: obj, abstract=abstract and _is_example(obj))
    if not values:
        return src
    from inspector.stats import records_with_stats

    return dataclasses.replace(src, records=records_with_stats(src.records, src.read))


def as_variables(tree: Mapping) -> dict:
    """A Linen variables dict as it is; a bare params tree as ``{"params": tree}``.

    >>> sorted(as_variables({"params": {}, "counter": {"n": 0}})), sorted(as_variables({"Dense_0": {}}))
    (['counter', 'params'], ['params'])
    """
    if not tree:
        raise SourceError("cannot inspect an empty dict: pass a Linen variables dict or a params tree")
    keys = [str(k) for k in tree]
    if "params" in keys or all(_registered(k) for k in keys):
        return dict(tree)
    return {"params": dict(tree)}


def describe_object(obj: Any) -> str:
    """How a live object is named in records' source and in messages: ``<nnx.Module MLP>``."""
    if isinstance(obj, str):
        return repr(obj)
    if isinstance(obj, nnx.Module):
        return f"<nnx.Module {type(obj).__name__}>"
    if isinstance(obj, nnx.State):
        return "<nnx.State>"
    if isinstance(obj, train_state.TrainState):
        return "<TrainState>"
    if isinstance(obj, Mapping):
        return "<Linen variables dict>"
    if _is_example(obj):
        kind = "Linen" if isinstance(obj[0], nn.Module) else "NNX"
        return f"<{kind} {type(obj[0]).__name__} with example inputs>"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def _is_example(obj: Any) -> bool:
    return (isinstance(obj, tuple) and len(obj) in (2, 3) and isinstance(obj[0], (nn.Module, nnx.Module))
            and isinstance(obj[1], (tuple, list)) and (len(obj) == 2 or isinstance(obj[2], Mapping)))


def _registered(name: str) -> bool:
    try:
        nnx.variable_type_from_name(name)
    except ValueError:
        return False
    return True


__all__ = ["ACCEPTED", "as_variables", "describe_object", "load_object"]
