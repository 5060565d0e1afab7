"""Port check: move Linen weights into the NNX model through the alignment, run both, compare.

Matching names and shapes does not prove a port: a transposed square kernel or two same-shape
layers applied in the other order pass every structural check. Running both models on the same
inputs with the same weights does. Steps:

1. align the Linen variables with the NNX model's state (automatically, or with rules);
2. build the NNX state from the Linen values, refusing, with every reason, if a variable of the
   NNX model would get no value or a value of another shape or dtype;
3. run Linen ``apply`` (every collection but ``params`` mutable; output = first element) and the
   NNX model in eval mode on the same inputs, and compare every output leaf.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.errors
import jax
from flax import nnx

from inspector.align.dataflow import Evidence, evidence_of
from inspector.align.layouts import Ambiguity
from inspector.align.structure import Structure, structure_of
from inspector.diffing import DiffEntry, Status, Tolerance, compare_values, diff_trees
from inspector.errors import PortError
from inspector.example import Inputs, LinenExample, NnxExample
from inspector.normalize import flatten_variables
from inspector.records import VariableRecord, format_path

# Ambiguous layouts the port check settles by running every combination (2 choices each: 16 runs at most).
_MAX_AMBIGUOUS = 4
# Activations and optimizer state are not weights: a port neither needs nor moves them.
_NOT_WEIGHTS = frozenset({"Intermediate", "Perturbation", "OptState", "intermediates", "perturbations"})


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A variable that keeps the conversion from being complete, and why."""

    status: str
    left: VariableRecord | None
    right: VariableRecord | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "left": self.left.full_name if self.left else None,
                "right": self.right.full_name if self.right else None, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class OutputDiff:
    path: str
    max_abs: float
    max_rel: float
    allclose: bool
    shape: tuple[int, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"path": self.path, "max_abs": self.max_abs, "max_rel": self.max_rel, "allclose": self.allclose,
               "shape": list(self.shape)}
        if self.note:
            out["note"] = self.note
        return out


@dataclasses.dataclass(frozen=True)
class PortReport:
    converted: int
    refused: tuple[Refusal, ...]
    outputs: tuple[OutputDiff, ...]
    tolerance: Tolerance
    entries: tuple[DiffEntry, ...] = ()
    # Ambiguous layouts the run settled: the only choice that gives equal outputs, one line each.
    settled: tuple[str, ...] = ()
    # When outputs differ: the pairs with the weakest evidence (names, dataflow), weakest first.
    suspects: tuple[DiffEntry, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused and bool(self.outputs) and all(o.allclose for o in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {"match": self.ok, "converted": self.converted, "refused": [r.to_json() for r in self.refused],
                "outputs": [o.to_json() for o in self.outputs],
                "atol": self.tolerance.atol, "rtol": self.tolerance.rtol,
                **({"settled": list(self.settled)} if self.settled else {}),
                **({"suspects": [_suspect_json(e) for e in self.suspects]} if self.suspects else {}),
                **({"notes": list(self.notes)} if self.notes else {})}


def _suspect_json(entry: DiffEntry) -> dict[str, Any]:
    return {"left": entry.left.full_name, "right": entry.right.full_name,
            "evidence": entry.evidence.to_json() if entry.evidence is not None else None}


MAX_SUSPECTS = 5
NO_SUSPECTS = ("no pair could have been swapped or transposed unnoticed (their names agree, or no other array "
               "has their shape): the outputs differ because of the computation — an activation, the order of "
               "operations, a constant — not the pairing")


def cleared(evidence: Any) -> bool:
    """A pair beyond suspicion: the names agree. (The forward pass does not clear one: two branches
    applied to one input, ``up(x) * gate(x)``, may be evaluated in either order.)"""
    return isinstance(evidence, Evidence) and evidence.names == "agree"


def suspects(entries: Sequence[DiffEntry]) -> tuple[DiffEntry, ...]:
    """Up to five moved pairs with the weakest evidence: where a wrong pairing most likely hides.

    Only a pair that had a same-shape alternative can be swapped, and only an array with two equal
    dimensions can be transposed unnoticed: other pairs are no suspects, nor are ``cleared`` ones.
    A pair a rule decided or the alignment called ambiguous counts as having no forward-pass
    evidence. None left: the pairing is not the cause.
    """
    moved = [e for e in entries if e.left is not None and e.right is not None and not e.right.is_rng]
    shapes: dict[tuple, int] = {}
    for e in moved:
        shapes[(e.right.type, e.right.shape)] = shapes.get((e.right.type, e.right.shape), 0) + 1

    def suspect(e: DiffEntry) -> bool:
        shape = e.right.shape
        swappable = shapes[(e.right.type, shape)] > 1
        transposable = len(shape) >= 2 and len(set(shape)) < len(shape)
        return (swappable or transposable) and not cleared(e.evidence)
    moved = [e for e in moved if suspect(e)]

    def weakness(item: tuple[int, DiffEntry]) -> tuple:
        i, e = item
        return (shapes[(e.right.type, e.right.shape)] == 1, getattr(e.evidence, "strength", 0), i)
    weakest = [e for _, e in sorted(enumerate(moved), key=weakness)[:MAX_SUSPECTS]]
    return tuple(e if e.evidence is not None
                 else dataclasses.replace(e, evidence=evidence_of(e.left, e.right, None, None)) for e in weakest)


def weight_records(obj: Any) -> list[tuple[VariableRecord, Any]]:
    """Records and values of the variables a port moves (no intermediates, no optimizer state)."""
    return [(r, v) for r, v in flatten_variables(obj) if r.type not in _NOT_WEIGHTS]


def plan(entries: Sequence[DiffEntry]) -> tuple[list[tuple[VariableRecord, VariableRecord]], list[Refusal]]:
    """Which Linen variable fills which NNX variable, and what makes that impossible."""
    moves, refused = [], []
    left_only = [e.left for e in entries if e.status is Status.LEFT_ONLY]
    right_only = [e.right for e in entries if e.status is Status.RIGHT_ONLY]
    for e in entries:
        if e.status in (Status.MATCH, Status.RENAMED, Status.SHARDING, Status.TRANSFORMED):
            moves.append((e.left, e.right))  # a sharding difference does not change the values
        elif e.status is Status.RNG_ONLY:
            continue  # NNX keeps its own RNG state
        elif e.status is Status.LEFT_ONLY:
            refused.append(Refusal(e.status.value, e.left, None,
                                   "the NNX model has no variable for it" + nearest(e.left, right_only)))
        elif e.status is Status.RIGHT_ONLY:
            refused.append(Refusal(e.status.value, None, e.right,
                                   "no Linen variable gives it a value" + nearest(e.right, left_only)))
        else:
            refused.append(Refusal(e.status.value, e.left, e.right, _why(e)))
    return moves, refused


def nearest(record: VariableRecord, others: Sequence[VariableRecord]) -> str:
    """``; nearest candidate: `mlp/linear` (32, 16), the only (32, 16) Param in `mlp`; pair it with a rule``.

    Candidates hold as many elements; the same shape first, then names that look alike.
    """
    same_size = [r for r in others if r.size == record.size and r.kind == record.kind]
    if not same_size:
        return ""
    same_shape = [r for r in same_size if r.shape == record.shape]
    pool = same_shape or same_size
    best = max(pool, key=lambda r: difflib.SequenceMatcher(None, r.name, record.name).ratio())
    module = "/".join(str(k) for k in best.path[:-1]) or "the root"
    if len(same_shape) == 1:
        why = f"the only {best.shape} {best.kind} left unpaired (in `{module}`)"
    elif same_shape:
        why = f"one of {len(same_shape)} unpaired {best.shape} {best.kind}s; its name is the closest"
    else:
        why = f"as many elements ({best.size}) in another layout"
    return f"; nearest candidate: `{best.full_name}` {best.shape}, {why}; pair it with a rule"


def _why(entry: DiffEntry) -> str:
    a, b = entry.left, entry.right
    parts = {"type": f"kind {a.type} vs {b.type}", "shape": f"shape {a.shape} vs {b.shape}",
             "dtype": f"dtype {a.dtype} vs {b.dtype}", "value": "values differ"}
    return "; ".join(parts[d] for d in entry.differences)


def convert(model: nnx.Module, moves: Sequence[tuple[VariableRecord, VariableRecord]],
            read: Callable[[VariableRecord], Any], layouts: Mapping[Any, DiffEntry] | None = None,
            override: Mapping[int, Any] | None = None) -> nnx.State:
    """The NNX model's state with every moved variable's value taken from Linen.

    ``layouts`` maps a right path to its entry when the entry carries a transform (or its left parts);
    ``override`` replaces the transform of some entries (by ``id``) with another choice (None: as is).
    """
    by_path = {right.path: left for left, right in moves}
    layouts = layouts or {}
    override = override or {}
    flat = []
    for path, var in nnx.to_flat_state(nnx.state(model)):
        left = by_path.get(tuple(path))
        if left is None:
            flat.append((path, var))
            continue
        entry = layouts.get(tuple(path))
        transform = entry.transform if entry is not None else None
        if entry is not None and id(entry) in override:
            transform = override[id(entry)]
        if transform is not None:
            parts = entry.left_parts or (entry.left,)
            value = transform.apply(*(jax.numpy.asarray(read(p)) for p in parts))
        else:
            value = jax.numpy.asarray(read(left))
        cast = getattr(entry.evidence, "dtype", None) if entry is not None else None
        if cast:
            value = value.astype(cast)
        flat.append((path, var.copy(value)))
    return nnx.from_flat_state(flat)


def run_linen(example: LinenExample, variables: Mapping[str, Any], rngs: Mapping[str, Any] | None = None) -> Any:
    """Inference with Linen: ``apply`` with every collection but ``params`` mutable; the output."""
    weights = {c: v for c, v in variables.items() if c not in _NOT_WEIGHTS}
    mutable = [c for c in weights if c != "params"]
    try:
        out = example.module.apply(weights, *example.infer.args, **example.infer.kwargs,
                                   mutable=mutable or False, rngs=dict(rngs or {}))
    except flax.errors.InvalidRngError as err:
        raise PortError(f"the Linen model asks for randomness at inference ({err}); run it in inference "
                        "mode: pass training=False / deterministic=True in its example inputs") from None
    return out[0] if mutable else out


def run_nnx(example: NnxExample | None, model: nnx.Module, fallback: Inputs) -> Any:
    """Inference with NNX: ``model.eval()``, then the NNX example's inputs (or the Linen ones)."""
    model.eval()
    inputs = example.infer if example is not None and (example.infer.args or example.infer.kwargs) else fallback
    if example is not None and example.capture:
        return nnx.capture(model, *example.capture)(*inputs.args, **inputs.kwargs)[0]
    return model(*inputs.args, **inputs.kwargs)


def compare_outputs(a: Any, b: Any, tolerance: Tolerance) -> list[OutputDiff]:
    """Every leaf of two output trees, compared in order; '' names a single array."""
    la = jax.tree_util.tree_flatten_with_path(a)[0]
    lb = jax.tree.leaves(b)
    if len(la) != len(lb):
        return [OutputDiff("", float("inf"), float("inf"), False,
                           note=f"Linen returned {len(la)} arrays, NNX {len(lb)}")]
    out = []
    for (path, x), y in zip(la, lb):
        name = format_path(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
        v = compare_values(x, y, tolerance)
        if v is None:
            out.append(OutputDiff(name, float("inf"), float("inf"), False, tuple(getattr(x, "shape", ())),
                                  note=f"shapes differ: {getattr(x, 'shape', ())} vs {getattr(y, 'shape', ())}"))
        else:
            out.append(OutputDiff(name, v.max_abs, v.max_rel, v.allclose, tuple(x.shape)))
    return out


def check_port(linen: LinenExample, variables: Mapping[str, Any], model: nnx.Module,
               nnx_example: NnxExample | None, *, forced_pairs: Callable[[list, list], list] | None = None,
               tolerance: Tolerance = Tolerance(1e-5, 1e-5), rngs: Mapping[str, Any] | None = None,
               casts: Mapping[str, str] | None = None, left_structure: Structure | None = None,
               right_structure: Structure | None = None) -> tuple[PortReport, nnx.State | None]:
    """Align, convert, run both and compare. Returns the report and the converted state (None if refused).

    ``left_structure``/``right_structure``: creation order (default) or the forward pass's order.
    """
    left = weight_records(variables)
    right = weight_records(nnx.state(model))
    lrec, rrec = [r for r, _ in left], [r for r, _ in right]
    values = {r.key: v for r, v in left}
    entries = diff_trees(lrec, rrec, left_structure=left_structure or structure_of(variables),
                         right_structure=right_structure or structure_of(model),
                         forced=forced_pairs(lrec, rrec) if forced_pairs else (), casts=casts)
    moves, refused = plan(entries)
    if refused:
        return PortReport(len(moves), tuple(refused), (), tolerance, tuple(entries)), None
    layouts = {e.right.path: e for e in entries if e.right is not None and (e.transform is not None or e.left_parts
                                                                          or e.evidence is not None)}
    expected = run_linen(linen, variables, rngs)
    ambiguous = [e for e in entries if isinstance(e.evidence, Ambiguity) and e.right is not None]
    choices: list[dict] = [{}]
    if len(ambiguous) <= _MAX_AMBIGUOUS:
        choices = [dict(zip((id(e) for e in ambiguous), combo))
                   for combo in itertools.product(*(e.evidence.choices for e in ambiguous))]
    results = []
    for override in choices:
        trial = nnx.clone(model)  # the caller's model (perhaps cached by the app) stays as it was
        state = convert(trial, moves, lambda record: values[record.key], layouts, override)
        nnx.update(trial, state)
        got = run_nnx(nnx_example, trial, Inputs(linen.infer.args))
        outputs = compare_outputs(expected, got, tolerance)
        results.append((override, state, outputs))
    good = [r for r in results if all(o.allclose for o in r[2])]
    override, state, outputs = good[0] if good else results[0]
    settled: tuple[str, ...] = ()
    if ambiguous and len(choices) > 1 and len(good) == 1:
        settled = tuple(f"{e.left.full_name} → {e.right.full_name}: "
                        f"{override[id(e)].text if override[id(e)] is not None else 'as it is'} "
                        f"(of {len(e.evidence.choices)} plausible layouts, the only one giving equal outputs)"
                        for e in ambiguous)
    elif len(ambiguous) > _MAX_AMBIGUOUS:
        settled = (f"not settled: {len(ambiguous)} ambiguous layouts (more than {_MAX_AMBIGUOUS} are not tried in "
                   "every combination); each was moved as it is — pair them with rules",)
    elif ambiguous and len(good) > 1:
        settled = (f"not settled: {len(good)} of {len(choices)} layout choices give equal outputs on these inputs",)
    differ = not all(o.allclose for o in outputs)
    weak = suspects(entries) if differ else ()
    notes = (NO_SUSPECTS,) if differ and not weak else ()
    return PortReport(len(moves), (), tuple(outputs), tolerance, tuple(entries), settled, weak, notes), state
