"""Kinds of variables: NNX Variable types, and Linen collections mapped through flax's registry.

Linen keeps variables in collections (``params``, ``batch_stats``, ``counter``); NNX types each
variable (``Param``, ``BatchStat``, ``Counter``). flax's own registry
(``nnx.variable_type_from_name``) maps the built-in names; a collection it does not know keeps its
own name, and is never registered globally.

>>> kind_of_collection("batch_stats"), kind_of_collection("counter")
('BatchStat', 'counter')
>>> same_kind("counter", "Counter"), same_kind("params", "Param"), same_kind("Param", "BatchStat")
(True, True, False)
"""

from __future__ import annotations

import functools

from flax import nnx

# PyTorch BatchNorm's ``num_batches_tracked``: a step counter Flax keeps nowhere, so it pairs with nothing.
BATCH_COUNT = "BatchCount"
# Optimizer state appears as flax's OptState family in NNX and as a TrainState field in Linen.
_FAMILIES = {"optarray": "optstate", "optvariable": "optstate"}


def kind_of_collection(collection: str) -> str:
    """The kind a Linen collection holds, by flax's registry; an unknown collection keeps its name."""
    cls = _registered_type(collection)
    return cls.__name__ if cls is not None else collection


@functools.cache
def variable_type_of_collection(collection: str) -> type[nnx.Variable]:
    """The NNX Variable class a Linen collection's variables become.

    Registered names give flax's class; an unregistered name gets a private subclass of
    ``nnx.Variable`` named after it, cached here and never added to flax's registry.
    """
    cls = _registered_type(collection)
    if cls is not None:
        return cls
    return type(collection, (nnx.Variable,), {"__module__": __name__})


@functools.cache
def canonical_kind(kind: str) -> str:
    """A comparable form of a kind name: registry-mapped, lower-case, optimizer family merged."""
    mapped = kind_of_collection(kind).lower()
    return _FAMILIES.get(mapped, mapped)


def same_kind(a: str | None, b: str | None) -> bool:
    """Whether two kind names mean the same kind; an unknown kind (``None``) matches any."""
    if a is None or b is None:
        return True
    return canonical_kind(a) == canonical_kind(b)


@functools.cache
def registered_base(cls: type) -> str | None:
    """The nearest flax-registered ancestor of a Variable class, when the class itself is not
    registered (``nnx.LoRAParam`` → ``Param``); None for a registered class or one without such an
    ancestor (a direct ``nnx.Variable`` subclass is its own kind).

    >>> registered_base(nnx.LoRAParam), registered_base(nnx.Param), registered_base(nnx.OptArray)
    ('Param', None, None)
    """
    if _is_registered(cls):
        return None
    for ancestor in cls.__mro__[1:]:
        if ancestor is nnx.Variable or not isinstance(ancestor, type) or not issubclass(ancestor, nnx.Variable):
            break
        if _is_registered(ancestor):
            return ancestor.__name__
    return None


def _is_registered(cls: type) -> bool:
    try:
        nnx.variable_name_from_type(cls)
    except (ValueError, KeyError, TypeError):
        return False
    return True


def _registered_type(name: str) -> type[nnx.Variable] | None:
    try:
        return nnx.variable_type_from_name(name)
    except ValueError:
        return None
