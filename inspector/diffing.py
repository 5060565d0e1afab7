"""Diff two aligned trees: one entry per variable pair, each with exactly one status.

Statuses, strongest first: ``type_mismatch``, ``shape_mismatch``, ``dtype_mismatch``,
``sharding_mismatch``, ``value_mismatch`` (only when values are compared), then ``transformed``
(paired through a layout change, ``inspector.align.layouts``; the transform is recorded on the entry
even when a mismatch wins), ``renamed`` (paired under another path) or ``match``. Kinds compare by
``VariableRecord.kind_name`` (an ``ArrayParam(nnx.Param)`` is a ``Param``).
Unpaired variables are ``left_only`` / ``right_only``, except RNG
state that only one side has when the trees are not both NNX: Linen keeps no RNG state, so that is
``rng_only``.

The sharding rule (``inspector.sharding.sharding_notes``): logical names are compared when both
sides have names, PartitionSpecs when both have one (``P('a', None) == P('a')``); names shorter or
longer than the array's rank are a finding on either side (the ``nnx.vmap`` without
``transform_metadata`` mistake); annotations on one side only are a finding (a port that dropped
them), unless ``sharding_one_sided=False``, for a checkpoint, which keeps no logical names. Two
unannotated sides (most models on one device) are never a finding. Each finding is a line in
``entry.notes``; unpaired variables keep their rank notes too.

>>> from inspector.records import VariableRecord as V
>>> l = [V(("Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")]
>>> r = [V(("linear", "kernel"), "Param", (2, 4), "float32", 8, 32)]
>>> [(e.status.value, e.differences) for e in diff_trees(l, r)]
[('shape_mismatch', ('shape',))]
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from inspector.align import Guess, align
from inspector.align.layouts import Link, link_layouts
from inspector.align.structure import EMPTY, Structure
from inspector.align.transforms import TransformError
from inspector.kinds import BATCH_COUNT, same_kind
from inspector.records import VariableRecord
from inspector.sharding import Rules as AxisRules
from inspector.sharding import annotation_problem, compare_sharding, sharding_names
from inspector.value_diff import RunningDiff, ValueDiff


class Status(enum.StrEnum):
    MATCH = "match"
    RENAMED = "renamed"
    TRANSFORMED = "transformed"
    TYPE = "type_mismatch"
    SHAPE = "shape_mismatch"
    DTYPE = "dtype_mismatch"
    SHARDING = "sharding_mismatch"
    VALUE = "value_mismatch"
    LEFT_ONLY = "left_only"
    RIGHT_ONLY = "right_only"
    RNG_ONLY = "rng_only"
    # A bookkeeping counter only one side keeps (PyTorch BatchNorm's ``num_batches_tracked``).
    COUNTER_ONLY = "counter_only"


# A difference of each field gives this status; the first difference found in this order wins.
_FIELD_STATUS = (("type", Status.TYPE), ("shape", Status.SHAPE), ("dtype", Status.DTYPE),
                 ("sharding", Status.SHARDING), ("value", Status.VALUE))
NOT_MISMATCHES = frozenset({Status.MATCH, Status.RENAMED, Status.TRANSFORMED, Status.RNG_ONLY,
                            Status.COUNTER_ONLY})


@dataclasses.dataclass(frozen=True)
class DiffEntry:
    status: Status
    left: VariableRecord | None
    right: VariableRecord | None
    differences: tuple[str, ...] = ()
    values: ValueDiff | None = None
    notes: tuple[str, ...] = ()  # why this pair mismatches, one line each
    # How the left array becomes the right one (a layout change: reshape, transpose, concat, split),
    # an ``inspector.align.transforms.Transform``; None when the array moves as it is.
    transform: Any = None
    # A concat: every left variable joined into ``right``, in order (``left`` is the first).
    left_parts: tuple[VariableRecord, ...] = ()
    # Observations that are not mismatches (an ambiguity left for the port check, sharding names
    # that cannot be compared), one line each.
    info: tuple[str, ...] = ()
    # Why the two sides were paired (names, dataflow order, contraction axes), when known.
    evidence: Any = None

    @property
    def is_mismatch(self) -> bool:
        return self.status not in NOT_MISMATCHES

    def sort_key(self) -> tuple:
        first = self.left if self.left is not None else self.right
        return first.sort_key() if first is not None else ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value,
                               "left": self.left.to_json() if self.left else None,
                               "right": self.right.to_json() if self.right else None}
        if self.differences:
            out["differences"] = list(self.differences)
        if self.values is not None:
            out.update(self.values.to_json())
        if self.notes:
            out["notes"] = list(self.notes)
        if self.transform is not None:
            out["transform"] = self.transform.to_json()
        if self.left_parts:
            out["left_parts"] = [r.full_name for r in self.left_parts]
        if self.info:
            out["info"] = list(self.info)
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_json()
        return out


ValueGetter = Callable[[VariableRecord], Any]


@dataclasses.dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-5
    atol: float = 1e-8


def diff_trees(left: Sequence[VariableRecord], right: Sequence[VariableRecord], *,
               left_structure: Structure = EMPTY, right_structure: Structure = EMPTY,
               forced: Sequence[tuple[VariableRecord, VariableRecord]] = (),
               rng_one_sided: bool = True, sharding_one_sided: bool = True,
               values: tuple[ValueGetter, ValueGetter] | None = None,
               tolerance: Tolerance = Tolerance(), axis_rules: AxisRules | None = None,
               casts: Mapping[str, str] | None = None, strict_orders: bool = False) -> list[DiffEntry]:
    """Align two record lists and give every pair its status.

    ``rng_one_sided``: RNG state present on one side only is ``rng_only`` (Linen keeps none); pass
    False to compare two NNX trees, where missing RNG state is a real difference.
    ``sharding_one_sided``: annotations present on one side only are a finding; pass False when a
    side cannot carry them (a checkpoint): then written PartitionSpecs are compared only on equal
    multi-device meshes (``inspector.sharding.compare_sharding``).
    ``casts``: a rules file's ``dtype`` (left path → the dtype the port casts it to).
    ``axis_rules``: flax logical-axis rules mapping Linen logical names to mesh axes before names
    are compared; without them, two trees that share no sharding name compare none (``info``).
    ``values``: two functions reading a record's array; when given, paired variables of equal
    shape are compared numerically.
    ``strict_orders``: also count as guesses the pairs that a Linen order of use and an untraced
    NNX declaration order decided (``inspector.align.passes.Guess``); the converter asks for it.
    """
    ruled = {(id(f.left), id(f.right)): f for f in forced if isinstance(f, Link)}
    plain = [(f.left, f.right) if isinstance(f, Link) else tuple(f) for f in forced]
    guesses: dict[tuple[int, int], Guess] = {}
    pairs = align(left, right, left_structure=left_structure, right_structure=right_structure,
                  forced=plain, taken=[p for f in ruled.values() for p in f.left_parts], guesses=guesses)
    if not strict_orders:
        guesses = {k: g for k, g in guesses.items() if not g.kinds_only}
    lnames, rnames = sharding_names(left), sharding_names(right)
    sharding = dict(one_sided=sharding_one_sided, axis_rules=axis_rules,
                    names_comparable=not (lnames and rnames and lnames.isdisjoint(rnames)))
    links = [ruled.get((id(link.left), id(link.right)), link) for link in link_layouts(pairs)]
    if guesses:
        links = [_with_guess(link, guesses.get((id(link.left), id(link.right)))) for link in links]
    if casts:
        links = [_with_cast(link, casts) for link in links]
    entries = [_entry(link, rng_one_sided, values, tolerance, sharding) for link in links]
    if left_structure.flow is not None or right_structure.flow is not None:
        entries = [_with_dataflow(e, left_structure.flow, right_structure.flow) for e in entries]
    entries.sort(key=DiffEntry.sort_key)
    return entries


def _with_guess(link: Link, guess: Guess | None) -> Link:
    """A pair that position alone decided: said in ``info``; its values are not compared (a value
    difference between two wrongly paired arrays would read as a broken port)."""
    if guess is None:
        return link
    return dataclasses.replace(link, evidence=guess, info=link.info + (guess.reason,))


def _with_dataflow(entry: DiffEntry, left: Any, right: Any) -> DiffEntry:
    """The forward pass's evidence on a pair (``inspector.align.dataflow``).

    A rule's evidence (a cast, a rule's pairing) stands. A layout the alignment left ambiguous
    (a square kernel, ``weight`` or not) is settled only when the contraction axes prove a
    transpose; otherwise it keeps its ambiguity for the port check to settle.
    """
    from inspector.align.dataflow import with_evidence
    from inspector.align.layouts import Ambiguity
    from inspector.align.rules import RuleEvidence

    if isinstance(entry.evidence, (RuleEvidence, Guess)):
        return entry
    if isinstance(entry.evidence, Ambiguity):
        proven = with_evidence(dataclasses.replace(entry, evidence=None), left, right)
        if proven.transform is None:
            return entry
        kept = tuple(line for line in entry.info if not line.startswith("ambiguous"))
        return dataclasses.replace(proven, info=kept + tuple(line for line in proven.info if line not in entry.info))
    return with_evidence(entry, left, right)


def _with_cast(link: Link, casts: Mapping[str, str]) -> Link:
    """A rules file's ``dtype``: the dtype the port casts a left variable to (not a mismatch then)."""
    from inspector.align.rules import RuleEvidence

    if link.left is None or link.right is None or getattr(link.evidence, "dtype", None):
        return link
    cast = casts.get(link.left.full_name) or casts.get(link.left.name)
    if cast is None:
        return link
    rule = link.evidence.rule if isinstance(link.evidence, RuleEvidence) else "dtype"
    return dataclasses.replace(link, evidence=RuleEvidence(rule, cast))


def summarize(entries: Sequence[DiffEntry]) -> dict[str, int]:
    """Count per status (every status listed, zeros included) and ``mismatches``."""
    summary = {status.value: 0 for status in Status}
    for entry in entries:
        summary[entry.status.value] += 1
    summary["mismatches"] = sum(1 for e in entries if e.is_mismatch)
    return summary


def _entry(link: Link, rng_one_sided: bool, values: tuple[ValueGetter, ValueGetter] | None, tolerance: Tolerance,
           sharding: dict | None = None) -> DiffEntry:
    a, b, transform = link.left, link.right, link.transform
    if a is None or b is None:
        only = a if a is not None else b
        if rng_one_sided and only.is_rng:
            return DiffEntry(Status.RNG_ONLY, a, b)
        if only.type == BATCH_COUNT:
            return DiffEntry(Status.COUNTER_ONLY, a, b, info=(
                f"{only.full_name}: PyTorch BatchNorm's step counter; the other side keeps none, nothing to port",))
        problem = annotation_problem(only)
        return DiffEntry(Status.LEFT_ONLY if b is None else Status.RIGHT_ONLY, a, b,
                         notes=(f"{'left' if b is None else 'right'}: {problem}",) if problem else ())
    differences = []
    if not same_kind(a.kind_name, b.kind_name):
        differences.append("type")
    keys_equal = same_key_data(a, b)
    parts = link.left_parts or (a,)
    shape = a.shape
    if transform is not None:
        try:
            shape = transform.output_shape([p.shape for p in parts])
        except TransformError:
            shape = None
    if shape != b.shape and not keys_equal:
        differences.append("shape")
    cast = getattr(link.evidence, "dtype", None)
    if a.dtype != b.dtype and not keys_equal and cast != b.dtype:
        differences.append("dtype")
    notes, info = compare_sharding(a, b, **(sharding or {})) if transform is None else ((), ())
    if notes:
        differences.append("sharding")
    if transform is not None and (a.sharding or b.sharding):
        info += ("sharding not compared: the layout changes",)
    info = link.info + info
    if cast and a.dtype != b.dtype:
        info += (f"cast {a.dtype} → {cast} by rule",)
    value_diff = None
    if values is not None and (shape == b.shape or keys_equal) and not isinstance(link.evidence, Guess):
        left_value = (transform.apply(*(values[0](p) for p in parts)) if transform is not None
                      else values[0](a))
        value_diff = compare_values(left_value, values[1](b), tolerance)
        if value_diff is not None and not value_diff.allclose:
            differences.append("value")
    extra = dict(transform=transform, left_parts=link.left_parts, info=info, evidence=link.evidence)
    for field, status in _FIELD_STATUS:
        if field in differences:
            return DiffEntry(status, a, b, tuple(differences), value_diff, notes, **extra)
    if transform is not None:
        status = Status.TRANSFORMED
    else:
        status = Status.MATCH if same_path(a.path, b.path) else Status.RENAMED
    return DiffEntry(status, a, b, (), value_diff, **extra)


def same_path(a: tuple, b: tuple) -> bool:
    """Paths equal as written: an Orbax checkpoint's list index ``'0'`` is a live tree's ``0``.

    >>> same_path(("layers", "0", "kernel"), ("layers", 0, "kernel"))
    True
    """
    return a == b or (len(a) == len(b) and all(str(x) == str(y) for x, y in zip(a, b)))


_KEY_WORDS = {"key<fry>": 2, "key<rbg>": 4, "key<unsafe_rbg>": 4}


def same_key_data(a: VariableRecord, b: VariableRecord) -> bool:
    """A typed PRNG key and its ``uint32`` key data (how Orbax stores keys) are the same variable."""
    for key, data in ((a, b), (b, a)):
        words = _KEY_WORDS.get(key.dtype)
        if words and data.dtype == "uint32" and data.shape == key.shape + (words,):
            return True
    return False


def compare_values(a: Any, b: Any, tolerance: Tolerance = Tolerance()) -> ValueDiff | None:
    """Numeric distance of two arrays (typed keys through their key data); None if not comparable."""
    x, y = _numeric(a), _numeric(b)
    if x is None or y is None or x.shape != y.shape:
        return None
    return RunningDiff.of(x, y, rtol=tolerance.rtol, atol=tolerance.atol).result(x.shape)


def comparable(entry: DiffEntry) -> bool:
    """Whether ``diff --values`` compares this pair slice by slice: both sides, no layout change, the
    same shape (or a key and its data). A transformed pair is compared whole, after its transform."""
    a, b = entry.left, entry.right
    return (a is not None and b is not None and entry.transform is None and not isinstance(entry.evidence, Guess)
            and (a.shape == b.shape or same_key_data(a, b)))


def with_value_diffs(entries: Sequence[DiffEntry], diffs: Mapping[int, ValueDiff | None]) -> list[DiffEntry]:
    """Entries with the value distances measured apart (``diffs`` by position in ``entries``):
    a pair that is not allclose gains the ``value`` difference and, if nothing stronger, the
    ``value_mismatch`` status, exactly as ``diff_trees(..., values=...)`` would have decided."""
    out = []
    for i, entry in enumerate(entries):
        value = diffs.get(i)
        if value is None:
            out.append(entry)
            continue
        differences = entry.differences
        if not value.allclose and "value" not in differences:
            differences = differences + ("value",)
        status = next((s for f, s in _FIELD_STATUS if f in differences), entry.status)
        out.append(dataclasses.replace(entry, status=status, differences=differences, values=value))
    return out


def _numeric(value: Any) -> np.ndarray | None:
    import jax

    if value is None or isinstance(value, jax.ShapeDtypeStruct):
        return None
    if jax.dtypes.issubdtype(getattr(value, "dtype", np.float32), jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind not in "fc":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            return None
    return array.astype(np.float64) if array.dtype.itemsize < 8 else array


def describe_pair(entry: DiffEntry) -> str:
    """``Block_0/Dense_0/kernel → block/linear/kernel``, one side blank when unpaired."""
    left = entry.left.full_name if entry.left else ""
    right = entry.right.full_name if entry.right else ""
    return f"{left} → {right}" if left and right else left or right


__all__ = ["DiffEntry", "Status", "Tolerance", "ValueDiff", "comparable", "compare_values", "describe_pair",
           "diff_trees", "same_key_data", "same_path", "summarize", "with_value_diffs"]
