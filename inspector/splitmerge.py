"""What a filter selects, and how ``nnx.split`` would group a source, decided by flax itself.

Every source becomes ``(path, Variable)`` pairs as ``nnx.to_flat_state`` gives them, and every
filter is evaluated with flax's own ``filterlib.to_predicate``, so the answers are flax's answers.
An NNX module gives its real Variables. A Linen variables dict is viewed as NNX would hold it
(each leaf wrapped in the Variable class of its collection, the path without the collection), so a
user can try the filters they will need before porting. Anything else (a TrainState, a restored
checkpoint) uses its real Variables where it has them and wraps its other leaves by kind.
Matches are reported as the source's own records, so they render like ``show``.

>>> import jax.numpy as jnp
>>> subject = subject_of({"params": {"dense": {"kernel": jnp.ones((2, 3))}},
...                       "batch_stats": {"bn": {"mean": jnp.zeros(3)}}})
>>> [r.full_name for r in select(subject, nnx.Param)]
['params/dense/kernel']
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx
from flax.core import meta
from flax.nnx import filterlib
from flax.training import train_state

from inspector.filters import ParsedFilter, collection_class_name, nnx_variable_types
from inspector.kinds import variable_type_of_collection
from inspector.normalize import flatten_variables, is_linen_variables, leaf_path
from inspector.records import Path, VariableRecord, sort_records

Leaf = tuple[VariableRecord, Any]
FilterLike = Any  # a ParsedFilter, or any filter flax takes


@dataclasses.dataclass(frozen=True, eq=False)
class FlatVariable:
    """One ``(path, Variable)`` pair as flax sees it, with the records it describes.

    A Variable holding a tuple (intermediates) is one pair but several records.
    """

    path: Path
    variable: nnx.Variable
    records: tuple[VariableRecord, ...]
    captured: bool = False


@dataclasses.dataclass(frozen=True, eq=False)
class Subject:
    """The variables filters are tried on; ``node`` is what ``nnx.split`` takes, if anything."""

    variables: tuple[FlatVariable, ...]
    node: Any = None
    variable_types: Mapping[str, type[nnx.Variable]] = dataclasses.field(default_factory=dict)
    collections: tuple[str, ...] = ()
    # ``nnx.split(node)`` taken once when the subject was made, so the merge check walks no more.
    graphdef: Any = None
    state: nnx.State | None = None


@dataclasses.dataclass(frozen=True)
class Group:
    """One state ``nnx.split`` returns: its filter (canonical text) and the variables in it."""

    filter: str
    records: tuple[VariableRecord, ...]


@dataclasses.dataclass(frozen=True)
class Split:
    """The groups of a split, in filter order; what no filter took; and whether merge rebuilds."""

    groups: tuple[Group, ...]
    remainder: tuple[VariableRecord, ...]
    merge_roundtrip: bool | None
    line: str
    captured: tuple[VariableRecord, ...] = ()
    fixed_line: str | None = None  # the line with ``...`` added, when the filters leave variables

    @property
    def exhaustive(self) -> bool:
        return not self.remainder


def subject_of(obj: Any, *, captured: nnx.State | None = None,
               variable_types: Mapping[str, type] = {},  # noqa: B006 (read-only)
               leaves: Sequence[Leaf] | None = None) -> Subject:
    """The ``(path, Variable)`` pairs of any source object, tied to its records.

    ``leaves`` are the source's ``(record, value)`` pairs (a ``LoadedSource`` has them); by
    default they are computed with ``normalize.flatten_variables``.

    >>> subject = subject_of(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    >>> [(v.path, type(v.variable).__name__) for v in subject.variables]
    [(('bias',), 'Param'), (('kernel',), 'Param')]
    """
    if leaves is None:
        leaves = flatten_variables(obj) + (flatten_variables(captured) if captured is not None else [])
    types = dict(variable_types)
    node, own, graphdef, state = None, [], None, None
    if isinstance(obj, nnx.Pytree):
        graphdef, state = nnx.split(obj)
        node, own = obj, [("", p, v) for p, v in nnx.to_flat_state(state)]
    elif isinstance(obj, nnx.State):
        own = [("", p, v) for p, v in nnx.to_flat_state(obj)]
    elif isinstance(obj, Mapping) and is_linen_variables(obj):
        own = list(_linen_pairs(obj))
    elif isinstance(obj, train_state.TrainState):
        states = [getattr(obj, f.name) for f in dataclasses.fields(obj)
                  if isinstance(getattr(obj, f.name), nnx.State)]
        own = [("", p, v) for state in states for p, v in nnx.to_flat_state(state)]
    pairs = [(c, p, v, False) for c, p, v in own]
    if captured is not None:
        pairs += [("", p, v, True) for p, v in nnx.to_flat_state(captured)]
    pairs += _wrapped_leaves(leaves, {(c, p) for c, p, *_ in pairs}, types)
    for cls in sorted({type(v) for *_, v, _ in pairs}, key=lambda c: c.__name__):
        types.setdefault(cls.__name__, cls)
    collections = tuple(dict.fromkeys(r.collection for r, _ in leaves if r.collection))
    for collection in collections:
        cls = variable_type_of_collection(collection)
        types.setdefault(cls.__name__, cls)
        if cls not in nnx_variable_types().values():  # flax has no class for it: offer the port's name
            types.setdefault(collection_class_name(collection), cls)
    return Subject(variables=_attach(pairs, leaves), node=node, variable_types=types,
                   collections=collections, graphdef=graphdef, state=state)


class SourceLike(Protocol):
    """What ``subject_of_source`` reads of a ``loaders.LoadedSource`` (the core imports no loader)."""

    records: Sequence[VariableRecord]
    values: Mapping[tuple[str, Path], Any]
    obj: Any
    captured: nnx.State | None
    variable_types: Mapping[str, type[nnx.Variable]]


def subject_of_source(source: SourceLike) -> Subject:
    """``subject_of`` a loaded source, reusing its records and values."""
    return subject_of(source.obj, captured=source.captured, variable_types=source.variable_types,
                      leaves=[(r, source.values[r.key]) for r in source.records])


def subject_notes(subject: Subject) -> list[str]:
    """What a user should know about the source before reading a selection from it.

    >>> import jax.numpy as jnp
    >>> subject_notes(subject_of([jnp.ones(2)]))[0][:31]
    '1 variable has no recorded kind'
    """
    untyped = sum(len(v.records) for v in subject.variables
                  if type(v.variable) is nnx.Variable and all(r.type is None for r in v.records))
    if not untyped:
        return []
    return [f"{untyped} variable{'s have' if untyped != 1 else ' has'} no recorded kind (the source keeps no "
            "Variable types, e.g. an Orbax checkpoint of an NNX state): type filters such as nnx.Param "
            "cannot select them, path filters can"]


def _linen_pairs(variables: Mapping) -> Iterator[tuple[str, Path, nnx.Variable]]:
    """Each leaf of each collection, wrapped as NNX would hold it (tuples stay one Variable)."""
    for collection, tree in variables.items():
        cls = variable_type_of_collection(str(collection))
        stack: list[tuple[Path, Any]] = [((), tree)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, Mapping):
                stack.extend((path + leaf_path((jax.tree_util.DictKey(k),)), v) for k, v in node.items())
            else:
                value = node.unbox() if isinstance(node, meta.AxisMetadata) else node
                yield str(collection), path, cls(value)


def _wrapped_leaves(leaves: Sequence[Leaf], covered: set[tuple[str, Path]],
                    types: Mapping[str, type]) -> list[tuple[str, Path, nnx.Variable, bool]]:
    """Leaves no real Variable covers, wrapped in the Variable class their kind names."""
    out = []
    for record, value in leaves:
        collection, path = record.key
        if any((collection, path[:k]) in covered for k in range(len(path) + 1)):
            continue
        out.append((collection, path, _class_of_kind(record.type, types)(value), False))
    return out


def _class_of_kind(kind: str | None, types: Mapping[str, type]) -> type[nnx.Variable]:
    if kind is None:
        return nnx.Variable
    return types.get(kind) or nnx_variable_types().get(kind) or variable_type_of_collection(kind)


def _attach(pairs: list[tuple[str, Path, nnx.Variable, bool]], leaves: Sequence[Leaf]) -> tuple[FlatVariable, ...]:
    """Tie each pair to its records: a record belongs to the pair whose path starts its path."""
    index = {(c, p): i for i, (c, p, _, _) in enumerate(pairs)}
    owned: list[list[VariableRecord]] = [[] for _ in pairs]
    for record, _ in leaves:
        collection, path = record.key
        for k in range(len(path), -1, -1):
            if (collection, path[:k]) in index:
                owned[index[collection, path[:k]]].append(record)
                break
    return tuple(FlatVariable(path=p, variable=v, records=sort_records(owned[i]), captured=cap)
                 for i, (_, p, v, cap) in enumerate(pairs))


def _raw(filter_: FilterLike) -> Any:
    return filter_.filter if isinstance(filter_, ParsedFilter) else filter_


def _text(filter_: FilterLike) -> str:
    return filter_.text if isinstance(filter_, ParsedFilter) else repr(filter_)


def select(subject: Subject, filter_: FilterLike) -> tuple[VariableRecord, ...]:
    """The records of the variables a filter selects, captured ones included; sorted by path."""
    predicate = filterlib.to_predicate(_raw(filter_))
    return sort_records(r for v in subject.variables if predicate(v.path, v.variable) for r in v.records)


def split_groups(subject: Subject, filters: Sequence[FilterLike]) -> Split:
    """Group the variables as ``nnx.split(node, *filters)`` would: the first matching filter wins.

    Variables captured outside the model (``nnx.capture``) are not part of what ``nnx.split``
    sees; they are returned apart. The remainder is computed here, never by asking flax (whose
    error for it embeds every leftover array).

    >>> import jax.numpy as jnp
    >>> s = split_groups(subject_of({"params": {"w": jnp.ones(2)}, "cache": {"c": jnp.ones(1)}}),
    ...                  [nnx.Param])
    >>> [r.name for r in s.remainder], s.exhaustive, s.merge_roundtrip
    (['c'], False, None)
    """
    predicates = [filterlib.to_predicate(_raw(f)) for f in filters]
    groups: list[list[VariableRecord]] = [[] for _ in filters]
    remainder: list[VariableRecord] = []
    captured: list[VariableRecord] = []
    for var in subject.variables:
        if var.captured:
            captured.extend(var.records)
            continue
        target = next((groups[i] for i, p in enumerate(predicates) if p(var.path, var.variable)), remainder)
        target.extend(var.records)
    roundtrip = None
    if subject.node is not None and not remainder:
        roundtrip = _roundtrip(subject.graphdef, subject.state, filters) if subject.state is not None \
            else merge_roundtrip(subject.node, filters, exhaustive=True)
    return Split(groups=tuple(Group(_text(f), sort_records(g)) for f, g in zip(filters, groups)),
                 remainder=sort_records(remainder), merge_roundtrip=roundtrip,
                 line=split_line(filters), captured=sort_records(captured),
                 fixed_line=split_line([*filters, ...]) if remainder else None)


def merge_roundtrip(model: Any, filters: Sequence[FilterLike], *, exhaustive: bool = False) -> bool | None:
    """Whether ``nnx.merge(*nnx.split(model, *filters), copy=True)`` rebuilds an equal model.

    Equal means the same graph definition, the same paths with the same Variable types, and equal
    values (typed keys compared by their key data, abstract leaves by shape and dtype). ``None``
    when there is no graph node to split or the filters leave variables over (flax would raise).

    >>> merge_roundtrip(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), [nnx.Param, ...])
    True
    """
    if not isinstance(model, nnx.Pytree):
        return None
    raw = [_raw(f) for f in filters]
    predicates = [filterlib.to_predicate(f) for f in raw]
    if not exhaustive and raw and any(not any(p(path, v) for p in predicates)
                                      for path, v in nnx.to_flat_state(nnx.state(model))):
        return None
    graphdef, *states = nnx.split(model, *raw)
    return _check_merge(graphdef, states, nnx.merge_state(*states))


def _roundtrip(graphdef: Any, state: nnx.State, filters: Sequence[FilterLike]) -> bool:
    """The merge check from a split already taken: ``nnx.split_state`` groups it as ``nnx.split``
    would (it is what ``nnx.split`` does after walking the graph)."""
    states = nnx.split_state(state, *[_raw(f) for f in filters])
    return _check_merge(graphdef, list(states) if isinstance(states, tuple) else [states], state)


def _check_merge(graphdef: Any, states: Sequence[nnx.State], original: nnx.State) -> bool:
    rebuilt = nnx.merge(graphdef, *states, copy=True)
    # One more walk, of the rebuilt model; the original's graphdef and state come from the split.
    rebuilt_graphdef, rebuilt_state = nnx.split(rebuilt)
    return rebuilt_graphdef == graphdef and _same_state(rebuilt_state, original)


def _same_state(a: nnx.State, b: nnx.State) -> bool:
    flat_a, flat_b = list(nnx.to_flat_state(a)), list(nnx.to_flat_state(b))
    if [p for p, _ in flat_a] != [p for p, _ in flat_b]:
        return False
    return all(type(va) is type(vb) and _same_value(va.get_value(), vb.get_value())
               for (_, va), (_, vb) in zip(flat_a, flat_b))


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    return tree_a == tree_b and all(_same_leaf(x, y) for x, y in zip(leaves_a, leaves_b))


def _same_leaf(x: Any, y: Any) -> bool:
    if x is y:  # nnx.merge(copy=True) copies Variables, not their immutable jax arrays
        return True
    if isinstance(x, jax.ShapeDtypeStruct) or isinstance(y, jax.ShapeDtypeStruct):
        return (np.shape(x), getattr(x, "dtype", None)) == (np.shape(y), getattr(y, "dtype", None))
    if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        if not (hasattr(y, "dtype") and jax.dtypes.issubdtype(y.dtype, jax.dtypes.prng_key)):
            return False
        x, y = jax.random.key_data(x), jax.random.key_data(y)
    x, y = np.asarray(x), np.asarray(y)
    return x.shape == y.shape and x.dtype == y.dtype and bool(
        np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.inexact)))


def split_line(filters: Iterable[FilterLike]) -> str:
    """The Python line to copy, its variables named after the filters.

    >>> split_line([nnx.Param, nnx.BatchStat, ...])
    'graphdef, params, batch_stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)'
    """
    filters = list(filters)
    names: list[str] = []
    for i, f in enumerate(filters, 1):
        name = _state_name(_raw(f), i)
        base, n = name, 2
        while name in names or name in ("graphdef", "model", "nnx"):
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    texts = [_text(f) if isinstance(f, ParsedFilter) else _python(f) for f in filters]
    return f"graphdef, {', '.join(names)} = nnx.split(model, {', '.join(texts)})"


def _state_name(filter_: Any, position: int) -> str:
    if filter_ is Ellipsis or filter_ is True:
        return "rest"
    if isinstance(filter_, type) and issubclass(filter_, nnx.Variable):
        try:
            name = nnx.variable_name_from_type(filter_)
        except ValueError:
            name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", filter_.__name__).lower()
        if name.isidentifier() and not keyword.iskeyword(name):
            return name
    return f"state_{position}"


def _python(filter_: Any) -> str:
    """A raw flax filter written as code (for callers that pass flax objects, not parsed text)."""
    if filter_ is Ellipsis:
        return "..."
    if isinstance(filter_, type):
        exported = nnx_variable_types().get(filter_.__name__)
        return f"nnx.{filter_.__name__}" if exported is filter_ else filter_.__name__
    return repr(filter_)
