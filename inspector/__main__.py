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
