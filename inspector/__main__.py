"""Command line: ``python -m inspector COMMAND ...``.

A top layer like ``app.py``: it parses arguments, calls the loaders and the core, and prints.
Exit codes: 0 success, 1 a finding (a diff that mismatches), 2 bad input, reported as one last
``error:`` line on stderr (``--traceback`` adds the whole traceback).
"""

from __future__ import annotations

import argparse
import json
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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    show = commands.add_parser("show", help="list every variable of a source, with totals per kind",
                               description="List every variable of a source, with totals per kind.")
    _add_source(show, "SOURCE")
    _add_format(show, ("table", "json"))
    show.set_defaults(func=cmd_show)

    diff = commands.add_parser("diff", help="align two sources variable by variable and report what differs",
                               description="Align two sources variable by variable and report what "
                                           "differs. Exit 0: no mismatch; 1: mismatches; 2: bad input.")
    _add_source(diff, "LEFT")
    _add_source(diff, "RIGHT")
    _add_format(diff, ("table", "json", "markdown"))
    diff.add_argument("--values", action="store_true", help="also compare values (max_abs, max_rel, allclose)")
    diff.add_argument("--rtol", type=float, default=None, help="relative tolerance for --values")
    diff.add_argument("--atol", type=float, default=None, help="absolute tolerance for --values")
    diff.add_argument("--rules", metavar="FILE", help="JSON rules file overriding the automatic alignment")
    diff.add_argument("--write-rules", metavar="FILE", help="write the alignment found as a rules file")
    diff.set_defaults(func=cmd_diff)

    filt = commands.add_parser("filter", help="the variables an NNX filter expression selects",
                               description="Show the variables an NNX filter expression selects, e.g. "
                                           "\"nnx.All(nnx.Param, nnx.PathContains('bn1'))\" or 'Param & ~...'.")
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

    steps = commands.add_parser("steps", help="list the steps (and their items) of a CheckpointManager directory")
    steps.add_argument("directory", metavar="DIR")
    _add_format(steps, ("table", "json"))
    steps.set_defaults(func=cmd_steps)
    return parser


def _add_source(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(name.lower(), metavar=name,
                        help="sample:NAME:linen|nnx, path/to/file.py:FACTORY, package.module:FACTORY "
                             "or an Orbax checkpoint directory")
    if not any(a.dest == "abstract" for a in parser._actions):
        parser.add_argument("--abstract", action="store_true",
                            help="build without allocating arrays (shapes and dtypes only)")


def _add_format(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument("--format", choices=formats, default=formats[0], help="output format")
    parser.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="on error, show the whole traceback")


def cmd_show(args: argparse.Namespace) -> int:
    from inspector.report import records_table, show_json
    from loaders import load_source

    src = load_source(args.source, abstract=args.abstract)
    if args.format == "json":
        _print_json(show_json(src.spec, src.records))
    else:
        print(f"{src.spec}  ({src.form}{', abstract' if src.abstract else ''})\n")
        print(records_table(src.records))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    raise _not_yet("diff")


def cmd_filter(args: argparse.Namespace) -> int:
    raise _not_yet("filter")


def cmd_split(args: argparse.Namespace) -> int:
    raise _not_yet("split")


def cmd_steps(args: argparse.Namespace) -> int:
    raise _not_yet("steps")


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
        return args.func(args)
    except InspectorError as err:
        if args.traceback:
            traceback.print_exception(err.__cause__ or err, file=sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
