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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.errors
import jax
from flax import nnx

from inspector.align.dataflow import evidence_of
from inspector.align.structure import Structure, structure_of
from inspector.diffing import DiffEntry, Status, Tolerance, compare_values, diff_trees
from inspector.errors import PortError
from inspector.example import Inputs, LinenExample, NnxExample
from inspector.normalize import flatten_variables
from inspector.records import VariableRecord, format_path

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
                **({"suspects": [_suspect_json(e) for e in self.suspects]} if self.suspects else {}),
                **({"notes": list(self.notes)} if self.notes else {})}


def _suspect_json(entry: DiffEntry) -> dict[str, Any]:
    return {"left": entry.left.full_name, "right": entry.right.full_name,
            "evidence": entry.evidence.to_json() if entry.evidence is not None else None}


MAX_SUSPECTS = 5


def suspects(entries: Sequence[DiffEntry]) -> tuple[DiffEntry, ...]:
    """Up to five moved pairs with the weakest evidence: where a wrong pairing most likely hides.

    Only pairs that had a same-shape alternative can be swapped, so those come first.
    """
    moved = [e for e in entries if e.left is not None and e.right is not None and not e.right.is_rng]
    shapes: dict[tuple, int] = {}
    for e in moved:
        shapes[(e.right.type, e.right.shape)] = shapes.get((e.right.type, e.right.shape), 0) + 1
    def weakness(item: tuple[int, DiffEntry]) -> tuple:
        i, e = item
        strength = e.evidence.strength if e.evidence is not None else 0
        return (shapes[(e.right.type, e.right.shape)] == 1, strength, i)
    weakest = [e for _, e in sorted(enumerate(moved), key=weakness)[:MAX_SUSPECTS]]
    return tuple(e if e.evidence is not None
                 else dataclasses.replace(e, evidence=evidence_of(e.left, e.right, None, None)) for e in weakest)


def weight_records(obj: Any) -> list[tuple[VariableRecord, Any]]:
    """Records and values of the variables a port moves (no intermediates, no optimizer state)."""
    return [(r, v) for r, v in flatten_variables(obj) if r.type not in _NOT_WEIGHTS]


def plan(entries: Sequence[DiffEntry]) -> tuple[list[tuple[VariableRecord, VariableRecord]], list[Refusal]]:
    """Which Linen variable fills which NNX variable, and what makes that impossible."""
    moves, refused = [], []
    for e in entries:
        if e.status in (Status.MATCH, Status.RENAMED, Status.SHARDING):
            moves.append((e.left, e.right))  # a layout difference does not change the values
        elif e.status is Status.TRANSFORMED and e.transform is not None and not e.left_parts:
            moves.append((e.left, e.right))  # check_port applies the transform when reading
        elif e.status is Status.RNG_ONLY:
            continue  # NNX keeps its own RNG state
        elif e.status is Status.LEFT_ONLY:
            refused.append(Refusal(e.status.value, e.left, None, "the NNX model has no variable for it"))
        elif e.status is Status.RIGHT_ONLY:
            refused.append(Refusal(e.status.value, None, e.right, "no Linen variable gives it a value"))
        else:
            refused.append(Refusal(e.status.value, e.left, e.right, _why(e)))
    return moves, refused


def _why(entry: DiffEntry) -> str:
    a, b = entry.left, entry.right
    parts = {"type": f"kind {a.type} vs {b.type}", "shape": f"shape {a.shape} vs {b.shape}",
             "dtype": f"dtype {a.dtype} vs {b.dtype}", "value": "values differ"}
    return "; ".join(parts[d] for d in entry.differences)


def convert(model: nnx.Module, moves: Sequence[tuple[VariableRecord, VariableRecord]],
            read: Callable[[VariableRecord], Any]) -> nnx.State:
    """The NNX model's state with every moved variable's value taken from Linen."""
    by_path = {right.path: left for left, right in moves}
    flat = []
    for path, var in nnx.to_flat_state(nnx.state(model)):
        left = by_path.get(tuple(path))
        flat.append((path, var if left is None else var.copy(jax.numpy.asarray(read(left)))))
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
               left_structure: Structure | None = None, right_structure: Structure | None = None,
               ) -> tuple[PortReport, nnx.State | None]:
    """Align, convert, run both and compare. Returns the report and the converted state (None if refused).

    ``left_structure``/``right_structure``: creation order (default) or the forward pass's order.
    """
    left = weight_records(variables)
    right = weight_records(nnx.state(model))
    lrec, rrec = [r for r, _ in left], [r for r, _ in right]
    values = {r.key: v for r, v in left}
    entries = diff_trees(lrec, rrec, left_structure=left_structure or structure_of(variables),
                         right_structure=right_structure or structure_of(model),
                         forced=forced_pairs(lrec, rrec) if forced_pairs else ())
    transforms = {e.left.key: e.transform for e in entries
                  if e.status is Status.TRANSFORMED and e.transform is not None and not e.left_parts}
    moves, refused = plan(entries)
    if refused:
        return PortReport(len(moves), tuple(refused), (), tolerance, tuple(entries)), None
    model = nnx.clone(model)  # the caller's model (perhaps cached by the app) stays as it was
    def read(record: VariableRecord) -> Any:
        transform = transforms.get(record.key)
        return values[record.key] if transform is None else transform.apply(values[record.key])

    state = convert(model, moves, read)
    nnx.update(model, state)
    expected = run_linen(linen, variables, rngs)
    got = run_nnx(nnx_example, model, Inputs(linen.infer.args))
    outputs = compare_outputs(expected, got, tolerance)
    weak = suspects(entries) if not all(o.allclose for o in outputs) else ()
    return PortReport(len(moves), (), tuple(outputs), tolerance, tuple(entries), weak), state
