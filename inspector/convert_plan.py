"""Convert plan: which Linen array fills which NNX variable, how, and what stops the conversion.

A converter that misses a weight leaves it at its random initial value without a word (MaxText
issue #4566; "Some weights were not initialized"). This plan makes every variable accounted for:

- ``moves``: a target variable filled from one Linen array (or several, concatenated), with its
  layout transform and its cast when the dtypes differ;
- ``rng``: the target's RNG state, which Linen never had: the target keeps its own;
- ``allowed``: a target variable left at its initial value, or a Linen array dropped, because the
  user said so (``--allow-missing`` / ``--allow-unused`` regexes on paths without the collection);
- ``not_converted``: what is not a weight (a TrainState's ``opt_state`` and ``step``, sown
  intermediates, PyTorch's batch counter): listed, never counted as unused;
- ``refused``: everything else, each with the closest candidate on the other side. A plan with
  any refusal converts nothing.

Pure: records and diff entries in, records out; no arrays, no files.

>>> from inspector.records import VariableRecord as V
>>> from inspector.diffing import DiffEntry, Status
>>> a = V(("Dense_0", "kernel"), "Param", (4, 2), "float32", 8, 32, "params")
>>> b = V(("linear", "kernel"), "Param", (4, 2), "bfloat16", 8, 16)
>>> p = plan_conversion([DiffEntry(Status.DTYPE, a, b, ("dtype",))])
>>> p.ok, [(m.right.name, m.source_dtype, m.dtype) for m in p.moves]
(True, [('linear/kernel', 'float32', 'bfloat16')])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from typing import Any

from inspector.align import Guess
from inspector.diffing import DiffEntry, Status
from inspector.errors import InspectorError
from inspector.port_check import Refusal
from inspector.records import VariableRecord

# Not weights: optimizer state and step (a Linen TrainState), activations, PyTorch's batch counter.
NOT_WEIGHTS = frozenset({"OptState", "Intermediate", "Perturbation", "BatchCount"})
_MOVABLE = (Status.MATCH, Status.RENAMED, Status.SHARDING, Status.VALUE, Status.DTYPE, Status.TRANSFORMED)


class ConvertError(InspectorError):
    """A conversion that cannot be set up: a bad regex or dtype, an output that would hit the source."""


@dataclasses.dataclass(frozen=True)
class ConvertRefusal(Refusal):
    """A port check refusal plus the closest candidate on the other side (what the user likely meant)."""

    nearest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return super().to_json() | {"nearest": self.nearest}


@dataclasses.dataclass(frozen=True)
class Move:
    """One target variable filled from ``parts`` (one Linen array, or several for a concat)."""

    parts: tuple[VariableRecord, ...]
    right: VariableRecord
    transform: Any = None  # inspector.align.transforms.Transform
    dtype: str = ""  # the dtype written

    @property
    def left(self) -> VariableRecord:
        return self.parts[0]

    @property
    def source_dtype(self) -> str:
        return self.left.dtype

    @property
    def cast(self) -> bool:
        return self.dtype != self.source_dtype

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"left": self.left.full_name, "right": self.right.name, "shape": list(self.right.shape),
                               "dtype": self.dtype}
        if len(self.parts) > 1:
            out["left_parts"] = [r.full_name for r in self.parts]
        if self.transform is not None:
            out["transform"] = self.transform.to_json()
        return out


@dataclasses.dataclass(frozen=True)
class Allowed:
    side: str  # "missing" (target left at init) or "unused" (source array dropped)
    record: VariableRecord

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "path": self.record.full_name,
                "reason": "kept at its initial value (--allow-missing)" if self.side == "missing"
                else "dropped (--allow-unused)"}


@dataclasses.dataclass(frozen=True)
class ConvertPlan:
    moves: tuple[Move, ...]
    rng: tuple[VariableRecord, ...] = ()
    allowed: tuple[Allowed, ...] = ()
    not_converted: tuple[VariableRecord, ...] = ()
    refused: tuple[ConvertRefusal, ...] = ()
    # What the alignment observed about pairs it made (an ambiguity left for the port check): worth
    # reading before trusting the checkpoint, so every line is shown.
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def transformed(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.transform is not None)

    @property
    def casts(self) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.cast)

    @property
    def nbytes(self) -> int:
        return sum(m.right.size * _itemsize(m.dtype) for m in self.moves)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mapped": [m.to_json() for m in self.moves],
            "transformed": [{"left": [r.full_name for r in m.parts], "right": m.right.name,
                             "transform": m.transform.to_json()} for m in self.transformed],
            "casts": [{"right": m.right.name, "from": m.source_dtype, "to": m.dtype} for m in self.casts],
            "allowed": [a.to_json() for a in self.allowed],
            "not_converted": [{"path": r.full_name, "type": r.type} for r in self.not_converted],
            "rng": [r.name for r in self.rng],
            "refused": [r.to_json() for r in self.refused],
            "notes": list(self.notes),
        }


def split_source(records: Sequence[VariableRecord]) -> tuple[list[VariableRecord], list[VariableRecord]]:
    """The source's weights (to align) and what is never converted (optimizer state, step, activations)."""
    weights, other = [], []
    for r in records:
        (other if r.type in NOT_WEIGHTS or (r.collection or "") in ("intermediates", "perturbations")
         else weights).append(r)
    return weights, other


def compile_regex(text: str | None, flag: str) -> re.Pattern[str] | None:
    """A user's ``--allow-*`` regex; ConvertError with the position when it does not compile."""
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as err:
        raise ConvertError(f"{flag} {text!r} is not a regular expression: {err}") from None


def plan_conversion(entries: Sequence[DiffEntry], *, not_converted: Sequence[VariableRecord] = (),
                    allow_missing: re.Pattern[str] | None = None, allow_unused: re.Pattern[str] | None = None,
                    dtype: str | None = None) -> ConvertPlan:
    """Account for every variable of the aligned ``entries``; see the module docstring.

    ``dtype`` replaces the target's dtype for floating-point variables (``--dtype``).
    """
    moves, rng, allowed, refused = [], [], [], []
    skipped = list(not_converted)
    notes = [f"{e.left.full_name} → {e.right.name}: {line}" for e in entries if e.left is not None
             and e.right is not None and e.info and not isinstance(e.evidence, Guess) for line in e.info]
    unpaired_left = [e.left for e in entries if e.right is None and e.left is not None]
    unpaired_right = [e.right for e in entries if e.left is None and e.right is not None]
    all_left = [e.left for e in entries if e.left is not None]
    all_right = [e.right for e in entries if e.right is not None]
    for e in entries:
        a, b = e.left, e.right
        if b is None:
            if e.status is Status.COUNTER_ONLY or a.type in NOT_WEIGHTS:
                skipped.append(a)
                continue
            if allow_unused is not None and allow_unused.search(a.name):
                allowed.append(Allowed("unused", a))
            else:
                refused.append(ConvertRefusal(
                    Status.LEFT_ONLY.value, a, None, "the NNX model has no variable for it: it would be dropped",
                    _nearest(a, unpaired_right or all_right)))
            continue
        if a is None:
            if b.is_rng:
                rng.append(b)
            elif allow_missing is not None and allow_missing.search(b.name):
                allowed.append(Allowed("missing", b))
            elif e.status is Status.COUNTER_ONLY:
                continue
            else:
                refused.append(ConvertRefusal(
                    Status.RIGHT_ONLY.value, None, b, "no Linen variable gives it a value: it would keep its "
                    "initial value", _nearest(b, unpaired_left or all_left)))
            continue
        if b.is_rng:
            rng.append(b)  # the target's own RNG state, whatever Linen had
            continue
        parts = tuple(e.left_parts) or (a,)
        if isinstance(e.evidence, Guess):
            refused.append(ConvertRefusal("ambiguous", a, b, e.evidence.reason, None))
            continue
        if e.transform is not None:
            problem = _transform_problem(e.transform, parts, b)
            if problem:
                refused.append(ConvertRefusal(e.status.value, a, b, problem, None))
                continue
            moves.append(Move(parts, b, e.transform, _out_dtype(b.dtype, dtype)))
        elif e.status in _MOVABLE and "shape" not in e.differences and "type" not in e.differences:
            moves.append(Move(parts, b, None, _out_dtype(b.dtype, dtype)))
        else:
            refused.append(ConvertRefusal(e.status.value, a, b, _why(e), None))
    return ConvertPlan(tuple(moves), tuple(rng), tuple(allowed), tuple(skipped), tuple(refused), tuple(notes))


def _transform_problem(transform: Any, parts: Sequence[VariableRecord], right: VariableRecord) -> str | None:
    try:
        shape = transform.output_shape([p.shape for p in parts])
    except InspectorError as err:
        return f"{transform.text} does not fit: {err}"
    if tuple(shape) != tuple(right.shape):
        return f"{transform.text} gives shape {tuple(shape)}, the NNX variable has {right.shape}"
    return None


def _why(entry: DiffEntry) -> str:
    a, b = entry.left, entry.right
    parts = {"type": f"kind {a.type} vs {b.type}", "shape": f"shape {a.shape} vs {b.shape} and no layout transform",
             "dtype": f"dtype {a.dtype} vs {b.dtype}", "value": "values differ", "sharding": "sharding differs"}
    return "; ".join(parts[d] for d in entry.differences if d in parts) or entry.status.value


def _nearest(record: VariableRecord, candidates: Sequence[VariableRecord]) -> str | None:
    """The candidate whose name is closest, preferring one of the same shape."""
    if not candidates:
        return None
    same = [c for c in candidates if c.shape == record.shape] or list(candidates)
    names = {c.name: c for c in same}
    close = difflib.get_close_matches(record.name, list(names), n=1, cutoff=0.0)
    return names[close[0]].full_name if close else None


_FLOATING = ("float", "bfloat")


def _out_dtype(target: str, override: str | None) -> str:
    if override and target.startswith(_FLOATING):
        return override
    return target


def _itemsize(dtype: str) -> int:
    import numpy as np

    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        import jax.numpy as jnp

        try:
            return jnp.dtype(dtype).itemsize
        except TypeError:
            return 4


def check_dtype(text: str | None) -> str | None:
    """``--dtype``: a floating-point dtype name numpy or jax knows (``bfloat16``, ``float32``)."""
    if text is None:
        return None
    import jax.numpy as jnp

    try:
        dtype = jnp.dtype(text)
    except TypeError:
        raise ConvertError(f"--dtype {text!r} is not a dtype; use e.g. float32, bfloat16, float16") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ConvertError(f"--dtype {text!r} is not a floating-point dtype; it applies to float weights only")
    return dtype.name


__all__ = ["Allowed", "ConvertError", "ConvertPlan", "ConvertRefusal", "Move", "NOT_WEIGHTS", "check_dtype",
           "compile_regex", "plan_conversion", "split_source"]
