"""The inspector as Python functions, for notebooks: live objects or spec strings in, results out.

Each function takes what a notebook holds — an ``nnx.Module``, an ``nnx.State``, a Linen variables
dict, a Flax ``TrainState``, ``(module, args, kwargs)`` — or any source spec the CLI takes
(``"sample:block:nnx"``, ``"model.py:make_model"``, a checkpoint folder, a weight file), and
returns a frozen result (``inspector.results``) that displays itself in Jupyter/Colab and
converts with ``to_pandas()``, ``to_json()``, ``to_markdown()``. Nothing is printed and nothing
passed in is changed. Defaults equal the CLI's.

Like the CLI and the app this is a top layer: it may import ``loaders``; the core never imports it.

>>> import inspector
>>> inspector.diff("sample:block:linen", "sample:block:nnx").ok
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from inspector.errors import InspectorError
from inspector.results import ConvertResult, DiffResult, FilterResult, PortResult, ShowResult, SplitResult

Rules = Any  # a rules dict, its JSON text, or the path of a rules file


def show(obj: Any, *, abstract: bool = False, values: bool = False) -> ShowResult:
    """Every variable of one source: path, kind, shape, dtype, size, bytes, sharding (and value
    statistics with ``values=True``)."""
    src = _load(obj, abstract=abstract, values=values)
    stored = src.obj if src.on_disk else None
    extra = {("checkpoint" if src.form == "checkpoint" else "file"): stored.to_json()} if stored else {}
    return ShowResult(src.spec, src.form, tuple(src.records), abstract=src.abstract, extra=extra,
                      read=stored.describe() if stored else None)


def diff(left: Any, right: Any, *, values: bool = False, rules: Rules = None, axis_rules: Any = None,
         rtol: float = 1e-5, atol: float = 1e-8, abstract: bool = False, trace: bool = True) -> DiffResult:
    """Pair the variables of two sources (a Linen model and its NNX port) and say what differs.

    ``trace``: order same-shape layers by the forward pass when a source has example inputs.
    """
    from inspector.align.rules import forced_pairs
    from inspector.diffing import Tolerance, diff_trees, with_value_diffs
    from loaders.source import restore_between
    from loaders.streaming import stream_diffs

    parsed_axis_rules = _axis_rules(axis_rules)
    if values and abstract:
        raise InspectorError("values=True compares arrays, and abstract=True builds none: drop one of them")
    parsed = _rules(rules)
    a, b = _load(left, abstract=abstract), _load(right, abstract=abstract)
    forced, notes = forced_pairs(parsed, a.records, b.records) if parsed else ([], [])
    tolerance = Tolerance(rtol=_tol(rtol), atol=_tol(atol))
    if trace:
        from loaders.trace import traced_structures

        left_structure, right_structure, trace_notes = traced_structures(a, b)
    else:
        left_structure, right_structure, trace_notes = a.structure, b.structure, []
    entries = diff_trees(
        a.records, b.records, left_structure=left_structure, right_structure=right_structure, forced=forced,
        rng_one_sided=not (a.form == b.form == "nnx"), sharding_one_sided=not (a.on_disk or b.on_disk),
        tolerance=tolerance, axis_rules=parsed_axis_rules, casts=parsed.dtype if parsed else None)
    if values:  # the CLI's streaming engine: arrays read ahead within the default memory budget
        entries = with_value_diffs(entries, stream_diffs(a, b, entries, tolerance=tolerance))
    return DiffResult(a.spec, b.spec, tuple(entries), restore_between(a, b, entries), tuple(notes),
                      tuple(trace_notes))


def filter(obj: Any, text: str) -> FilterResult:  # noqa: A001 - the CLI's command name; left out of __all__
    """The variables one NNX filter (typed as text, parsed, never run) selects."""
    from inspector.filters import parse_filter
    from inspector.splitmerge import select, subject_of_source

    src = _load(obj)
    subject = subject_of_source(src)
    parsed = parse_filter(_text(text, "filter"), subject.variable_types, collections=subject.collections)
    return FilterResult(src.spec, parsed, tuple(select(subject, parsed)))


def split(obj: Any, filters: str | Sequence[str]) -> SplitResult:
    """How ``nnx.split(model, *filters)`` groups a model (``"nnx.Param; ..."`` or a list of texts)."""
    from inspector.filters import parse_filters
    from inspector.splitmerge import split_groups, subject_of_source

    if isinstance(filters, str):
        text = filters
    else:
        texts = [_text(t, "filter") for t in filters]
        if any(";" in t for t in texts):
            raise InspectorError("a list of filters holds one filter per item; pass 'F1; F2' as one string instead")
        text = "; ".join(texts)
    src = _load(obj)
    subject = subject_of_source(src)
    parsed = parse_filters(_text(text, "filter"), subject.variable_types, collections=subject.collections)
    return SplitResult(src.spec, tuple(parsed), split_groups(subject, parsed), splittable=subject.node is not None)


def port(linen: Any, nnx: Any, *, rules: Rules = None, axis_rules: Any = None, rtol: float = 1e-5,
         atol: float = 1e-5, train: bool = False, weights: Any = None, loss: str = "mean_square",
         steps: int = 1, lr: float = 1e-2, train_args: Mapping[str, Any] | None = None,
         trace: bool = True) -> PortResult:
    """Convert the Linen model's weights into (a copy of) the NNX model and compare their outputs.

    ``linen`` needs example inputs: ``(linen_module, args, kwargs)`` or a spec such as
    ``"sample:block:linen"``; ``nnx`` is an ``nnx.Module``, ``(module, args, kwargs)`` or a spec.
    The NNX model passed in is not changed: the weights go into a clone. ``train=True`` adds the
    training-step check (``loss``, ``steps`` SGD steps at ``lr``, ``train_args`` for the train flag).
    """
    from inspector.diffing import Tolerance
    from loaders.porting import port_sources, train_sources

    _axis_rules(axis_rules)  # checked like diff's; the port check moves values, whatever their sharding
    tolerance = Tolerance(rtol=_tol(rtol), atol=_tol(atol))
    a, b = _load(linen), _load(nnx)
    if weights is not None:  # trained Linen weights from a checkpoint, a weight file or a variables dict
        from loaders.porting import with_weights

        a = with_weights(a, _load(weights))
    report, state = port_sources(a, b, rules=_rules(rules), tolerance=tolerance, trace=trace)
    trained = train_sources(a, b, report, state, tolerance=tolerance, loss=loss, steps=steps, lr=_tol(lr),
                            train_args=dict(train_args or {})) if train else None
    return PortResult(_spec(linen), _spec(nnx), report, trained=trained, train_asked=train)


def convert(source: Any, target: str, *, out: str | None = None, rules: Rules = None,
            allow_missing: str | None = None, allow_unused: str | None = None, dtype: str | None = None,
            force: bool = False, emit_python: str | None = None) -> ConvertResult:
    """Plan (and with ``out``, write) the Linen weights of ``source`` as an NNX checkpoint of ``target``.

    ``source``: a spec (checkpoint, weight file, Linen model) or a live Linen variables dict / TrainState;
    ``target``: the NNX model as a spec (``"model.py:make_model"``, ``"sample:block:nnx"``), built
    abstractly. Nothing is written unless every target variable is filled and every weight used
    (``allow_missing`` / ``allow_unused`` regexes aside): check ``result.ok`` and ``result.plan``.
    """
    from inspector.convert_plan import check_dtype
    from loaders.convert import check_not_source, model_factory, plan_sources, write_converted
    from loaders.convert import emit_python as emit
    from loaders.porting import check_output

    if not isinstance(target, (str, os.PathLike)):
        raise InspectorError("convert builds the target abstractly from its factory: pass it as a spec such as "
                             f"'model.py:make_model' or 'sample:block:nnx', not {type(target).__name__}")
    src, tgt = _load(source), _load(os.fspath(target), abstract=True)
    if out is not None:
        check_not_source(out, src)
        check_output(out, force=force)
    plan, _, _ = plan_sources(src, tgt, rules=_rules(rules), allow_missing=allow_missing,
                              allow_unused=allow_unused, dtype=check_dtype(dtype))
    written = None
    if plan.ok:
        make_model = model_factory(os.fspath(target))
        if out is not None:
            written = str(write_converted(plan, src, tgt, out, make_model=make_model, force=force))
        if emit_python is not None:
            with open(emit_python, "w", encoding="utf-8") as f:
                f.write(emit(plan, src, make_model, target=tgt.spec))
    return ConvertResult(src.spec, tgt.spec, plan, written, emit_python if plan.ok else None)


# -- inputs --------------------------------------------------------------------------------------

def _load(obj: Any, *, abstract: bool = False, values: bool = False):
    if isinstance(obj, (str, os.PathLike)):
        from loaders import load_source

        return load_source(os.fspath(obj), abstract=abstract, values=values)
    from loaders.live import load_object

    return load_object(obj, abstract=abstract, values=values)


def _spec(obj: Any) -> str:
    from loaders.live import describe_object

    return os.fspath(obj) if isinstance(obj, (str, os.PathLike)) else describe_object(obj)


def _rules(rules: Rules):
    from inspector.align.rules import parse_rules

    return _json_input(rules, parse_rules, Mapping, "{", "rules", "a dict, a JSON string or a file path",
                       "a JSON string or a dict")


def _axis_rules(axis_rules: Any):
    """flax ``logical_axis_rules``: a list of pairs, their JSON text, or the path of a JSON file."""
    from inspector.sharding import parse_axis_rules

    return _json_input(axis_rules, parse_axis_rules, (list, tuple), "[", "axis rules",
                       "a list of [logical, mesh] pairs, a JSON string or a file path",
                       "a JSON string or a list of [logical, mesh] pairs", name="axis_rules")


def _tol(value: Any) -> float:
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InspectorError(f"a tolerance must be a finite number ≥ 0, not {value!r}")
    return float(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InspectorError(f"a {what} is text such as 'nnx.Param', not {type(value).__name__}")
    return value


__all__ = ["convert", "diff", "port", "show", "split"]


def _json_input(value: Any, parse: Any, inline: Any, opener: str, what: str, accepted: str, instead: str, *,
                name: str | None = None):
    """A JSON input given as a Python value, its JSON text, or the path of a file holding it."""
    if value is None:
        return None
    if isinstance(value, inline):
        return parse(json.dumps(value), origin=name or what)
    if isinstance(value, str) and value.lstrip().startswith(opener):
        return parse(value, origin=name or what)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        try:
            with open(path, encoding="utf-8") as f:
                return parse(f.read(), origin=path)
        except OSError as err:
            raise InspectorError(f"{what} file {path!r} cannot be read: {err.strerror}; pass a path, "
                                 f"{instead}") from None
    raise InspectorError(f"{name or what} must be {accepted}, not {type(value).__name__}")
