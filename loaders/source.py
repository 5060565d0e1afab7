"""A loaded source: the live objects of one model and its typed records.

``LoadedSource`` keeps the values (arrays, or ``ShapeDtypeStruct`` when abstract) beside the
records, so statistics and value diffs reach them through the source, never through a record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Literal

import flax.linen as nn
from flax import nnx
from flax.training import train_state

from inspector.align.structure import EMPTY, Structure, structure_of
from inspector.errors import SourceError
from inspector.example import Inputs, LinenExample, NnxExample
from inspector.normalize import flatten_variables
from inspector.records import Path, VariableRecord
from inspector.restore import RestoreCheck, check_restore
from loaders.abstract import abstract_build
from loaders.build import Built, abstractify, build_linen, build_nnx
from loaders.factory import user_code
from loaders.mesh import planned_records

Form = Literal["linen", "nnx", "checkpoint", "weights", "pytree"]
RETURN_HELP = ("return an nnx.Module, an nnx.State, a Linen variables dict, a TrainState, "
               "or (module, args, kwargs)")


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedSource:
    """One model source, loaded: records plus the live objects they describe."""

    spec: str
    form: Form
    records: tuple[VariableRecord, ...]
    values: Mapping[tuple[str, Path], Any]
    obj: Any
    abstract: bool = False
    example: LinenExample | NnxExample | None = None
    model: Any = None
    variables: Mapping[str, Any] | None = None
    captured: nnx.State | None = None
    variable_types: Mapping[str, type[nnx.Variable]] = dataclasses.field(default_factory=dict)
    structure: Structure = EMPTY
    # Reads one record's value on demand: checkpoints keep only metadata in ``values``.
    reader: Callable[[VariableRecord], Any] | None = None
    # Observations about the source worth a line (another weight file beside the one read).
    notes: tuple[str, ...] = ()

    @property
    def on_disk(self) -> bool:
        """A stored file (Orbax checkpoint or weight file): values read on demand, no logical names."""
        return self.form in ("checkpoint", "weights")

    def value(self, record: VariableRecord) -> Any:
        """The leaf value a record describes (an array, or a ShapeDtypeStruct when abstract)."""
        return self.values[record.key]

    def model_records(self) -> tuple[VariableRecord, ...]:
        """The records a checkpoint of this source would hold: without captured intermediates."""
        if self.captured is None:
            return self.records
        captured = {r.key for r, _ in flatten_variables(self.captured)}
        return tuple(r for r in self.records if r.key not in captured)

    def read(self, record: VariableRecord) -> Any:
        """The array of one variable, read now if it is not in memory (checkpoints)."""
        if self.reader is not None:
            return self.reader(record)
        return self.value(record)


def from_example(spec: str, example: LinenExample | NnxExample, *, abstract: bool,
                 code: ModuleType | None = None, file: str | None = None) -> LoadedSource:
    """Build an example (running the user's model code) and describe it."""
    with user_code(spec, file):
        if isinstance(example, LinenExample):
            built = build_linen(example, abstract=abstract)
        else:
            built = build_nnx(example, abstract=abstract)
    return _assemble(spec, built, abstract=abstract, example=example, code=code)


def from_factory(spec: str, factory: Callable[[], Any], *, abstract: bool,
                 code: ModuleType | None = None, file: str | None = None) -> LoadedSource:
    """Call a user's factory (inside ``nnx.eval_shape`` when abstract) and describe its result."""
    structure = None
    if abstract:
        out, structure = _call_abstract(factory, spec=spec, file=file)
    else:
        with user_code(spec, file):
            out = factory()
    if isinstance(out, tuple) and not _is_example_tuple(out):
        raise SourceError(f"source {spec!r}: the factory returned a tuple of "
                          f"({', '.join(type(x).__name__ for x in out)}); {RETURN_HELP}")
    example = as_example(out)
    if example is None:
        _check_object(out, spec)
        return _assemble(spec, Built(obj=out, model=out if isinstance(out, nnx.Module) else None,
                                     structure=structure), abstract=abstract, example=None, code=code)
    if abstract and isinstance(example, NnxExample) and isinstance(out, tuple):
        module = out[0]  # already built inside the abstract trace
        return _assemble(spec, Built(obj=module, model=module, structure=structure), abstract=True,
                         example=example, code=code)
    return from_example(spec, example, abstract=abstract, code=code, file=file)


def as_example(out: Any) -> LinenExample | NnxExample | None:
    """``(module, args, kwargs)`` as an example; example objects as they are; else ``None``.

    Inference inputs of a Linen module get ``training``/``train`` False and ``deterministic``
    True where its ``__call__`` takes them.
    """
    if isinstance(out, (LinenExample, NnxExample)):
        return out
    if not _is_example_tuple(out):
        return None
    module, args, kwargs = (tuple(out) + ({},))[:3]
    inputs = Inputs(tuple(args), dict(kwargs))
    if isinstance(module, nn.Module):
        return LinenExample(module, init=inputs, infer=Inputs(inputs.args, _inference_kwargs(module, inputs.kwargs)))
    return NnxExample(build=lambda: module, infer=inputs)


def _is_example_tuple(out: Any) -> bool:
    return (isinstance(out, tuple) and len(out) in (2, 3) and isinstance(out[0], (nn.Module, nnx.Module))
            and isinstance(out[1], (tuple, list)) and (len(out) == 2 or isinstance(out[2], Mapping)))


def _inference_kwargs(module: nn.Module, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    import inspect

    try:
        params = inspect.signature(module.__call__).parameters
    except (TypeError, ValueError):
        return dict(kwargs)
    out = dict(kwargs)
    for name, value in (("training", False), ("train", False), ("deterministic", True)):
        if name in params:
            out[name] = value
    return out


def _call_abstract(factory: Callable[[], Any], *, spec: str, file: str | None) -> tuple[Any, Structure | None]:
    """Call the factory under ``nnx.eval_shape``, so that whatever it builds allocates nothing.

    Also returns the structure (creation order) of what it built, seen inside the trace:
    ``nnx.eval_shape`` returns modules whose attributes come back in sorted order.
    """
    box: dict[str, Any] = {}

    def seen(out: Any) -> Any:
        box["structure"] = structure_of(out)
        return out

    def traced():
        out = factory()
        if isinstance(out, LinenExample):
            box["out"] = dataclasses.replace(out, init=abstractify(out.init), infer=abstractify(out.infer))
            return None
        if isinstance(out, NnxExample):
            box["out"] = out
            return None
        if _is_example_tuple(out):
            module, rest = out[0], abstractify(tuple(out[1:]))
            if isinstance(module, nn.Module):
                box["out"] = (module, *rest)
                return None
            box["rest"] = rest
            return seen(module)
        if isinstance(out, (nnx.Pytree, nnx.State, train_state.TrainState, Mapping)):
            return seen(out)
        box["out"] = out  # a wrong type: reported after the trace
        return None

    with user_code(spec, file), abstract_build():
        result = nnx.eval_shape(traced)
    structure = box.get("structure")
    if "rest" in box:
        return (result, *box["rest"]), structure
    return box.get("out", result), structure


def _check_object(out: Any, spec: str) -> None:
    if not isinstance(out, (nnx.Pytree, nnx.State, train_state.TrainState, Mapping)):
        raise SourceError(f"source {spec!r}: the factory returned {type(out).__name__}; {RETURN_HELP}")
    if isinstance(out, Mapping) and not out:
        raise SourceError(f"source {spec!r}: the factory returned an empty dict; {RETURN_HELP}")


def _form_of(obj: Any, example: Any) -> Form:
    if isinstance(example, LinenExample):
        return "linen"
    if isinstance(example, NnxExample) or isinstance(obj, (nnx.Pytree, nnx.State)):
        return "nnx"
    if isinstance(obj, train_state.TrainState):
        return "nnx" if isinstance(obj.params, nnx.State) else "linen"
    if isinstance(obj, Mapping):
        return "linen"
    return "pytree"


def _assemble(spec: str, built: Built, *, abstract: bool, example: Any,
              code: ModuleType | None) -> LoadedSource:
    try:
        leaves = flatten_variables(built.obj)
        if built.captured is not None:
            leaves += flatten_variables(built.captured)
            leaves.sort(key=lambda leaf: leaf[0].sort_key())
    except SourceError as err:
        raise SourceError(f"source {spec!r}: {err}") from None
    values = {record.key: value for record, value in leaves}
    if len(values) != len(leaves):
        raise SourceError(f"source {spec!r}: two variables share one path; cannot inspect")
    records = planned_records([r for r, _ in leaves], getattr(example, "mesh", None))
    return LoadedSource(
        spec=spec, form=_form_of(built.obj, example), records=records,
        values=values, obj=built.obj, abstract=abstract, example=example, model=built.model,
        variables=built.variables, captured=built.captured,
        variable_types=_variable_types(built, code), structure=_structure(built))


def _structure(built: Built) -> Structure:
    """Creation order: as the build saw it (abstract Linen builds come back sorted), else from the object."""
    if built.structure is not None:
        return built.structure
    return structure_of(built.obj, built.captured)


def _variable_types(built: Built, code: ModuleType | None) -> dict[str, type[nnx.Variable]]:
    """Variable classes a filter may name: those in the state, and those the model code defines."""
    found: dict[str, type[nnx.Variable]] = {}
    if code is not None:
        for name, value in vars(code).items():
            if isinstance(value, type) and issubclass(value, nnx.Variable):
                found[name] = value
    for state in (built.obj, built.captured):
        if isinstance(state, (nnx.Pytree, nnx.State)):
            flat = nnx.to_flat_state(nnx.state(state) if isinstance(state, nnx.Pytree) else state)
            for _, var in flat:
                found.setdefault(type(var).__name__, type(var))
    return found


def restore_between(left: LoadedSource, right: LoadedSource, entries) -> RestoreCheck | None:
    """Between a checkpoint and a live source: would Orbax restore the one into the other?"""
    if (left.form == "checkpoint") == (right.form == "checkpoint"):
        return None
    disk, live = (left, right) if left.form == "checkpoint" else (right, left)
    return check_restore(disk.records, live.model_records(), entries, checkpoint_is_left=disk is left)
