"""The ``savestate`` command line: a thin layer over the library's functions.

``savestate proto MODULE [MODULE ...] [-o DIR]`` imports the modules, collects the saved-state
roots they define, and writes their ``.proto`` files into DIR (default ``./proto``), printing
one line per file written (``--plain`` leaves out the width and length comments).

``savestate check MODULE [MODULE ...] --against DIR`` checks the modules' saved-state types
against the ``.proto`` files of an earlier release: exit 0 compatible, 1 breaking, 2 a usage
error or a baseline that does not parse.

Exit statuses: 0 success; 1 a schema error (printed with its class and field); 2 a usage
error: a module that cannot be imported, or that defines no roots.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import savestate

from ..errors import SchemaError
from ..schemaio.discover import DiscoveryError, load_roots
from ..schemaio.proto import write_proto
from .porting import add_from_proto
from .tools import add_commands

__all__ = ["UsageError", "main"]

EXIT_SCHEMA = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


def _cmd_proto(args: argparse.Namespace) -> int:
    roots = load_roots(args.modules)
    for path in write_proto(args.output, roots, annotate=not args.plain):
        print(path)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ..schemaio.compat import BaselineError, check_compatible  # only what `check` needs

    roots = load_roots(args.modules)
    try:
        report = check_compatible(roots, against=args.against, direction=args.direction)
    except BaselineError as exc:
        raise UsageError(str(exc)) from exc
    print(report.json() if args.format == "json" else report.text())
    return 0 if report.ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="savestate", description="Tools for savestate saved-state types."
    )
    version = f"savestate {savestate.__version__}"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    proto = commands.add_parser(
        "proto",
        help="write the .proto files of the saved-state roots of modules",
        description="Import the modules, collect their saved-state roots and write one "
        ".proto file per package.",
    )
    proto.add_argument(
        "modules", nargs="+", metavar="MODULE", help="a dotted module name or a .py file"
    )
    proto.add_argument(
        "-o",
        "--output",
        default="proto",
        metavar="DIR",
        help="directory to write into (default: ./proto)",
    )
    proto.add_argument(
        "--plain",
        action="store_true",
        help="leave out the trailing comments with integer widths and array lengths (which "
        "`savestate check` reads from a release's files)",
    )
    proto.set_defaults(run=_cmd_proto)
    check = commands.add_parser(
        "check",
        help="check saved-state types against the .proto files of an earlier release",
        description="Exit 0 when state written by the baseline's release still decodes, 1 when "
        "a change breaks it, 2 for a usage error or a baseline that does not parse.",
    )
    check.add_argument(
        "modules", nargs="+", metavar="MODULE", help="a dotted module name or a .py file"
    )
    check.add_argument(
        "--against", required=True, metavar="DIR", help="directory of the baseline .proto files"
    )
    check.add_argument(
        "--direction",
        choices=("backward", "forward", "both"),
        default="backward",
        help="which breaks are errors: backward (new code reads old state; default), forward "
        "(old code reads new state) or both; the others are warnings",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(run=_cmd_check)
    add_commands(commands)  # decode, encode, show, diff
    add_from_proto(commands, UsageError)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (UsageError, DiscoveryError) as exc:
        print(f"savestate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as exc:
        print(f"savestate {args.command}: schema error: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    return status
