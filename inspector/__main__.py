"""Command line: ``python -m inspector COMMAND ...``.

A top layer like ``app.py``: it parses arguments, calls the loaders and the core, and prints.
Exit codes: 0 success, 1 a finding (a diff that mismatches), 2 bad input, reported as one last
``error:`` line on stderr (``--traceback`` adds the whole traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any, NoReturn


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors end with a line starting ``error:`` like every other error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m inspector",
                     description="Inspect, diff and filter the variables of Flax Linen and NNX models.")
    parser.add_argument("--traceback", action="store_true", help="on error, show the whole traceback")
    parser.add_argument("--devices", type=int, metavar="N",
                        help="simulate N CPU devices (sets XLA_FLAGS before jax starts), e.g. 8 to see a model "
                             "laid out on a 2×4 mesh")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    show = commands.add_parser("show", help="list every variable of a source, with totals per kind",
                               description="List every variable of a source, with totals per kind.")
    _add_source(show, "SOURCE")
    _add_format(show, ("table", "json"))
    show.add_argument("--values", action="store_true",
                      help="also read values for statistics (min, max, mean, std, NaN/Inf counts); "
                           "arrays are read in pieces on two threads, within --memory-budget")
    _add_budget(show)
    show.set_defaults(func=cmd_show)

    diff = commands.add_parser("diff", help="align two sources variable by variable and report what differs",
                               description="Align two sources variable by variable and report what "
                                           "differs. Exit 0: no mismatch; 1: mismatches; 2: bad input.")
    _add_source(diff, "LEFT")
    _add_source(diff, "RIGHT")
    _add_format(diff, ("table", "json", "markdown"))
    diff.add_argument("--values", action="store_true",
                      help="also compare values (max_abs, max_rel, allclose, tol_ratio, n_out_of_tolerance, "
                           "first_diff_index), reading both sides in pieces within --memory-budget")
    _add_budget(diff)
    diff.add_argument("--rtol", type=_tolerance, default=None, help="relative tolerance for --values (default 1e-5)")
    diff.add_argument("--atol", type=_tolerance, default=None, help="absolute tolerance for --values (default 1e-8)")
    diff.add_argument("--rules", metavar="FILE", help="JSON rules file overriding the automatic alignment")
    diff.add_argument("--write-rules", metavar="FILE", help="write the alignment found as a rules file")
    diff.add_argument("--no-trace", action="store_true",
                      help="do not trace the forward pass (pair same-shape layers by creation order only)")
    diff.add_argument("--axis-rules", metavar="FILE",
                      help='JSON logical-axis rules ([["embed", "model"], ["vocab", null]]) mapping Linen logical '
                           "names to mesh axes before shardings are compared")
    diff.set_defaults(func=cmd_diff)

    filt = commands.add_parser("filter", help="the variables an NNX filter expression selects",
                               description="Show the variables an NNX filter expression selects, e.g. "
                                           "\"nnx.All(nnx.Param, nnx.PathContains('bn1'))\" or "
                                           "\"Param & ~PathContains('bias')\".")
    _add_source(filt, "SOURCE")
    filt.add_argument("expr", metavar="EXPR", help="a filter expression (parsed, never executed)")
    _add_format(filt, ("table", "json"))
    filt.set_defaults(func=cmd_filter)

    split = commands.add_parser("split", help="what nnx.split(model, F1, F2, ...) would return",
                                description="Group the variables as nnx.split(model, F1, F2, ...) would, "
                                            "and check that nnx.merge rebuilds the model.")
    _add_source(split, "SOURCE")
    split.add_argument("exprs", metavar="'F1; F2; ...'", help="filters separated by ';', in order")
    _add_format(split, ("table", "json"))
    split.set_defaults(func=cmd_split)

    port = commands.add_parser("port", help="move Linen weights into the NNX model and compare both outputs",
                               description="Convert the Linen variables into the NNX model through the "
                                           "alignment, run both on the example inputs and compare every "
                                           "output. Exit 0: outputs match; 1: they differ or the conversion "
                                           "is refused; 2: bad input.")
    _add_source(port, "LINEN")
    port.add_argument("nnx", metavar="NNX", help="the NNX source (same spec forms as LINEN)")
    _add_format(port, ("table", "json"))
    port.add_argument("--rules", metavar="FILE", help="JSON rules file overriding the automatic alignment")
    port.add_argument("--out", metavar="DIR", help="write the converted NNX state as an Orbax checkpoint")
    port.add_argument("--force", action="store_true", help="replace an existing --out directory")
    port.add_argument("--weights", metavar="SOURCE",
                      help="load the Linen model's variables from this checkpoint or weight file first "
                           "(trained weights; paired through the alignment when paths differ)")
    port.add_argument("--no-trace", action="store_true",
                      help="do not trace the forward passes (pair same-shape layers by creation order only)")
    port.add_argument("--atol", type=_tolerance, default=1e-5, help="absolute tolerance (default 1e-5)")
    port.add_argument("--rtol", type=_tolerance, default=1e-5, help="relative tolerance (default 1e-5)")
    train = port.add_argument_group("training-step check (--train)")
    train.add_argument("--train", action="store_true",
                       help="also run training steps on both sides (dropout off) and compare loss, gradients, "
                            "state and the weights after the steps")
    train.add_argument("--loss", choices=("mean_square", "sum_square"), default=None,
                       help="label-free loss over the float outputs: Σ mean(leaf²) (default) or Σ sum(leaf²)")
    train.add_argument("--steps", type=_positive_int, default=None, help="plain SGD steps before the weights are "
                                                                     "compared (default 1)")
    train.add_argument("--lr", type=_tolerance, default=None, help="SGD learning rate (default 1e-2)")
    train.add_argument("--train-arg", action="append", default=[], metavar="NAME=JSON",
                       help="how to put the Linen model in training mode when its flag is not named train, "
                            "training or deterministic (repeatable), e.g. is_training=true")
    port.set_defaults(func=cmd_port)

    conv = commands.add_parser("convert", help="write Linen weights as a restorable NNX Orbax checkpoint",
                               description="Convert the Linen weights of SOURCE (a Linen model, an Orbax "
                                           "checkpoint incl. TrainState layouts, a weight file) into the NNX "
                                           "model TARGET's layout and write an Orbax checkpoint, one array at a "
                                           "time. Exit 0: written; 1: refused (a target variable would keep its "
                                           "initial value, or a source weight would be dropped); 2: bad input.")
    _add_source(conv, "SOURCE")
    conv.add_argument("target", metavar="TARGET", help="the NNX model (sample:NAME:nnx or a factory); built abstractly")
    conv.add_argument("--out", metavar="DIR", help="the Orbax checkpoint folder to write (omit to only plan)")
    conv.add_argument("--rules", metavar="FILE", help="JSON rules file overriding the automatic alignment")
    conv.add_argument("--allow-missing", metavar="REGEX",
                      help="target variables (paths without the Linen collection) that may keep their initial value")
    conv.add_argument("--allow-unused", metavar="REGEX",
                      help="source weights (paths without the Linen collection) that may be dropped")
    conv.add_argument("--dtype", metavar="DTYPE", help="write float weights in this dtype (default: the target's)")
    conv.add_argument("--force", action="store_true", help="replace an existing --out checkpoint")
    conv.add_argument("--emit-python", metavar="FILE",
                      help="also write a standalone converter module (numpy/jax/flax/orbax only)")
    _add_format(conv, ("table", "json"))
    conv.set_defaults(func=cmd_convert)

    steps = commands.add_parser("steps", help="list the steps of a CheckpointManager directory (with their items) "
                                              "or of a folder of legacy flax checkpoint_<N> saves")
    steps.add_argument("directory", metavar="DIR")
    _add_format(steps, ("table", "json"))
    steps.set_defaults(func=cmd_steps)
    return parser


def _tolerance(text: str) -> float:
    """A tolerance: a finite number, zero or more."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a tolerance: give a finite number ≥ 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
def _budget(text: str) -> int:
    from inspector.errors import InspectorError
    from loaders.streaming import parse_budget

    try:
        return parse_budget(text)
    except InspectorError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_budget(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-budget", type=_budget, default="256MiB", metavar="SIZE",
                        help="bound on the array bytes read ahead for --values, e.g. 64MiB or 2GiB (default 256MiB); "
                             "an Orbax array stored as one chunk larger than this is read alone")


class _ProgressLine:
    """Progress of a value pass on one stderr line, only when stderr is a terminal and the output is
    not JSON; redrawn at most every 0.2 s and erased when done."""

    def __init__(self, what: str, enabled: bool):
        self.what = what
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = 0.0

    def __call__(self, progress: Any) -> None:
        import time

        now = time.monotonic()
        if not self.enabled or (now - self.shown < 0.2 and progress.arrays_done < progress.arrays_total):
            return
        self.shown = now
        sys.stderr.write(f"\r\x1b[K{self.what}: {progress.text()}")
        sys.stderr.flush()

    def __enter__(self) -> _ProgressLine:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled and self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _add_source(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(name.lower(), metavar=name,
                        help="sample:NAME:linen|nnx, path/to/file.py:FACTORY, package.module:FACTORY, "
                             "a checkpoint or model folder (DIR or DIR@STEP), or a weight file "
                             "(.msgpack, .safetensors, .npz, checkpoint_<N>)")
    if not any(a.dest == "abstract" for a in parser._actions):
        parser.add_argument("--abstract", action="store_true",
                            help="build without allocating arrays (shapes and dtypes only)")


def _add_format(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument("--format", choices=formats, default=formats[0], help="output format")
    parser.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="on error, show the whole traceback")
    parser.add_argument("--devices", type=int, metavar="N", default=argparse.SUPPRESS,
                        help="simulate N CPU devices (as before the command)")


def cmd_show(args: argparse.Namespace) -> int:
    from inspector.results import ShowResult
    from loaders import load_source

    with _ProgressLine("reading values", args.values and args.format != "json") as progress:
        src = load_source(args.source, abstract=args.abstract, values=args.values, budget=args.memory_budget,
                          progress=progress)
    stored = src.obj if src.on_disk else None
    _print_notes(src)
    extra = {("checkpoint" if src.form == "checkpoint" else "file"): stored.to_json()} if stored else {}
    result = ShowResult(src.spec, src.form, tuple(src.records), abstract=src.abstract, extra=extra,
                        read=stored.describe() if stored else None)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(result.to_text())
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from inspector.align.rules import forced_pairs, parse_rules, rules_from_entries
    from inspector.diffing import Tolerance, diff_trees, with_value_diffs
    from inspector.errors import InspectorError
    from inspector.results import DiffResult
    from loaders import load_source
    from loaders.source import restore_between

    if args.values and args.abstract:
        raise InspectorError("--values compares arrays, and --abstract builds none: drop one of them")
    from inspector.sharding import parse_axis_rules

    rules = parse_rules(_read_text(args.rules, "rules file"), origin=args.rules) if args.rules else None
    axis_rules = (parse_axis_rules(_read_text(args.axis_rules, "axis rules file"), origin=args.axis_rules)
                  if args.axis_rules else None)
    left = load_source(args.left, abstract=args.abstract)
    right = load_source(args.right, abstract=args.abstract)
    forced, notes = forced_pairs(rules, left.records, right.records) if rules else ([], [])
    lstruct, rstruct, trace_notes = _traced_structures(left, right, enabled=not args.no_trace)
    tolerance = Tolerance(rtol=1e-5 if args.rtol is None else args.rtol, atol=1e-8 if args.atol is None else args.atol)
    entries = diff_trees(
        left.records, right.records, left_structure=lstruct, right_structure=rstruct,
        forced=forced, rng_one_sided=not (left.form == right.form == "nnx"),
        sharding_one_sided=not (left.on_disk or right.on_disk), tolerance=tolerance, axis_rules=axis_rules,
        casts=rules.dtype if rules else None)
    if args.values:
        from loaders.streaming import stream_diffs

        with _ProgressLine("comparing values", args.format != "json") as progress:
            diffs = stream_diffs(left, right, entries, tolerance=tolerance, budget=args.memory_budget,
                                 progress=progress)
        entries = with_value_diffs(entries, diffs)
    _print_notes(left, right)
    for note in [*trace_notes, *notes]:
        print(f"note: {note}", file=sys.stderr)
    restore = restore_between(left, right, entries)
    if args.write_rules:
        found = [(e.left, e.right) for e in entries if e.left is not None and e.right is not None]
        _write_text(args.write_rules, json.dumps(rules_from_entries(found, entries), indent=2) + "\n", "rules file")
    result = DiffResult(left.spec, right.spec, tuple(entries), restore, tuple(notes), tuple(trace_notes))
    if args.format == "json":
        _print_json(result.to_json())
    elif args.format == "markdown":
        print(result.to_markdown(), end="")
    else:
        print(result.to_text())
    return 0 if result.ok else 1


def cmd_port(args: argparse.Namespace) -> int:
    from inspector.align.rules import parse_rules
    from inspector.diffing import Tolerance
    from inspector.errors import InspectorError
    from inspector.results import PortResult
    from inspector.training import parse_train_args
    from loaders import load_source
    from loaders.porting import port_sources, train_sources, write_state

    if args.abstract:
        raise InspectorError("the port check runs both models: it needs concrete sources, drop --abstract")
    given = [f"--{n.replace('_', '-')}" for n in ("loss", "steps", "lr", "train_arg")
             if getattr(args, n) not in (None, [])]
    if given and not args.train:
        raise InspectorError(f"{', '.join(given)} only apply to the training check: add --train")
    train_args = parse_train_args(args.train_arg) if args.train else None
    rules = parse_rules(_read_text(args.rules, "rules file"), origin=args.rules) if args.rules else None
    linen = load_source(args.linen)
    if args.weights:
        from loaders.porting import with_weights

        linen = with_weights(linen, load_source(args.weights))
    target = load_source(args.nnx)
    tolerance = Tolerance(rtol=args.rtol, atol=args.atol)
    report, state = port_sources(linen, target, rules=rules, tolerance=tolerance, trace=not args.no_trace)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    trained = None
    if args.train:
        trained = train_sources(linen, target, report, state, tolerance=tolerance, loss=args.loss or "mean_square",
                                steps=args.steps or 1, lr=args.lr if args.lr is not None else 1e-2,
                                train_args=train_args)
    written = None
    if args.out and state is not None and report.ok:
        written = write_state(args.out, state, force=args.force)
    elif args.out:
        print(f"note: nothing written to {args.out}: the outputs differ, or the conversion was refused",
              file=sys.stderr)
    result = PortResult(linen.spec, target.spec, report, str(written) if written else None, trained,
                        train_asked=args.train)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(result.to_text())
    return 0 if result.ok else 1


def cmd_convert(args: argparse.Namespace) -> int:
    from inspector.align.rules import parse_rules
    from inspector.convert_plan import check_dtype
    from inspector.results import ConvertResult
    from loaders import load_source
    from loaders.convert import (
        check_not_source,
        emit_python,
        model_factory,
        plan_sources,
        terminal_progress,
        write_converted,
    )
    from loaders.porting import check_output

    if args.abstract:
        from inspector.errors import InspectorError

        raise InspectorError("convert reads the source's arrays and always builds the target abstractly: "
                             "drop --abstract")
    dtype = check_dtype(args.dtype)
    rules = parse_rules(_read_text(args.rules, "rules file"), origin=args.rules) if args.rules else None
    source = load_source(args.source)
    target = load_source(args.target, abstract=True)
    _print_notes(source, target)
    if args.out:  # refuse a bad --out before any work
        check_not_source(args.out, source)
        check_output(args.out, force=args.force)
    plan, _, notes = plan_sources(source, target, rules=rules, allow_missing=args.allow_missing,
                                  allow_unused=args.allow_unused, dtype=dtype)
    for note in [*notes, *plan.notes]:
        print(f"note: {note}", file=sys.stderr)
    written = emitted = None
    if plan.ok:
        make_model = model_factory(args.target)
        if args.out:
            progress = terminal_progress() if args.format != "json" and sys.stderr.isatty() else None
            written = str(write_converted(plan, source, target, args.out, make_model=make_model,
                                          force=args.force, progress=progress))
        if args.emit_python:
            _write_text(args.emit_python, emit_python(plan, source, make_model, target=target.spec), "converter file")
            emitted = args.emit_python
    result = ConvertResult(source.spec, target.spec, plan, written, emitted)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(result.to_text())
    return 0 if result.ok else 1


def _traced_structures(left: Any, right: Any, *, enabled: bool) -> tuple[Any, Any, list[str]]:
    """Both sources' structures, reordered by their forward passes when they can be traced."""
    if not enabled:
        return left.structure, right.structure, []
    from loaders.trace import traced_structures

    return traced_structures(left, right)


def _read_text(path: str, what: str) -> str:
    from inspector.errors import InspectorError

    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as err:
        raise InspectorError(f"{what} {path!r} cannot be read: {err.strerror}; check the path") from None
    except UnicodeDecodeError:
        raise InspectorError(f"{what} {path!r} is not UTF-8 text") from None


def _write_text(path: str, text: str, what: str) -> None:
    from inspector.errors import InspectorError

    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        raise InspectorError(f"{what} {path!r} cannot be written: {err.strerror}") from None


def cmd_filter(args: argparse.Namespace) -> int:
    from inspector.filters import parse_filter
    from inspector.results import FilterResult
    from inspector.splitmerge import select, subject_notes, subject_of_source
    from loaders import load_source

    src = load_source(args.source, abstract=args.abstract)
    _print_notes(src)
    subject = subject_of_source(src)
    parsed = parse_filter(args.expr, subject.variable_types, collections=subject.collections)
    records = select(subject, parsed)
    for note in [*subject_notes(subject), *parsed.notes]:
        print(f"note: {note}", file=sys.stderr)
    result = FilterResult(src.spec, parsed, tuple(records))
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(result.to_text())
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from inspector.filters import parse_filters
    from inspector.results import SplitResult
    from inspector.splitmerge import split_groups, subject_notes, subject_of_source
    from loaders import load_source

    src = load_source(args.source, abstract=args.abstract)
    _print_notes(src)
    subject = subject_of_source(src)
    filters = parse_filters(args.exprs, subject.variable_types, collections=subject.collections)
    split = split_groups(subject, filters)
    for note in dict.fromkeys([*subject_notes(subject), *(n for f in filters for n in f.notes)]):
        print(f"note: {note}", file=sys.stderr)
    result = SplitResult(src.spec, tuple(filters), split, splittable=subject.node is not None)
    if args.format == "json":
        _print_json(result.to_json())
    else:
        print(result.to_text())
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    from inspector.report import format_table
    from loaders.weights import folder_steps

    kind, steps = folder_steps(args.directory)
    if args.format == "json":
        _print_json({"directory": args.directory, "latest": steps[-1].step,
                     "steps": [s.to_json() for s in steps]})
    else:
        what = " of legacy flax checkpoints (checkpoint_<N>)" if kind == "legacy" else ""
        rows = [[str(s.step), ", ".join(s.items), s.saved or ""] for s in steps]
        print(f"{args.directory}  ({len(steps)} step{'s' if len(steps) != 1 else ''}{what}, latest {steps[-1].step})\n")
        if kind == "legacy":
            print(format_table(["step", "saved (UTC)"], [[r[0], r[2]] for r in rows], right={0}))
        else:
            print(format_table(["step", "items", "saved (UTC)"], rows, right={0}))
    return 0


def _print_notes(*sources: Any) -> None:
    """What a source noticed (another weight file beside the one read), one ``note:`` line each."""
    for src in sources:
        for note in src.notes:
            print(f"note: {src.spec}: {note}", file=sys.stderr)


def _not_yet(command: str) -> Exception:
    from inspector.errors import InspectorError

    return InspectorError(f"the {command} command is not available in this version")


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from inspector.errors import InspectorError

    try:
        if args.devices is not None:
            from inspector.devices import simulate_devices

            simulate_devices(args.devices)
        return args.func(args)
    except InspectorError as err:
        if args.traceback:
            traceback.print_exception(err.__cause__ or err, file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


if __name__ == "__main__":
    sys.exit(main())
