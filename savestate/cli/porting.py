"""The ``from-proto`` command: savestate declarations generated from ``.proto`` files.

``savestate from-proto FILE_OR_DIR... [-I INCLUDE]... -o OUTDIR [--root NAME]... [--prefix P]``
writes one Python module per proto package under OUTDIR (see
:mod:`savestate.schemaio.from_proto`) and prints the path of each module written. Exit
statuses: 0 success; 1 a construct without a savestate form (named with its message and
field); 2 input that cannot be read (a missing file, or text that protoc rejects), or an
output directory that cannot be written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_from_proto"]


class _InputError(Exception):
    """Reported by the command line as a usage error (exit status 2)."""


def _cmd_from_proto(args: argparse.Namespace) -> int:
    from ..schemaio.from_proto import ProtoInputError, write  # needs protoc: only when run

    try:
        paths = write(
            args.inputs, args.output, includes=args.include, roots=args.root or None,
            prefix=args.prefix,
        )
    except ProtoInputError as exc:
        raise args.usage_error(str(exc)) from exc
    for path in paths:
        args.print_out(f"{path}\n")
    return 0


def add_from_proto(
    commands: Any, usage_error: type[Exception], print_out: Callable[[str], None]
) -> None:
    """Add the ``from-proto`` command to the subparsers ``commands``; ``usage_error`` is the
    exception the command line reports as a usage error, ``print_out`` how it prints (a reader
    gone is not an error)."""
    parser = commands.add_parser(
        "from-proto",
        help="write savestate declarations for .proto files",
        description="Parse the .proto files with protoc and write one Python module of "
        "savestate declarations per proto package, in a tree that mirrors the packages.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="FILE_OR_DIR", help="a .proto file, or a directory of them"
    )
    parser.add_argument(
        "-I", "--include", action="append", default=[], metavar="DIR",
        help="an import path (default: each input directory and the directory of each file)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUTDIR", help="directory to write into"
    )
    parser.add_argument(
        "--root", action="append", default=[], metavar="NAME",
        help="the full name of a message to register as a root (repeatable; default: every "
        "top-level message that no other message uses)",
    )
    parser.add_argument(
        "--prefix", metavar="PACKAGE",
        help="put the package tree under this dotted Python package",
    )
    parser.set_defaults(run=_cmd_from_proto, usage_error=usage_error, print_out=print_out)
