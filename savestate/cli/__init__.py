"""The ``savestate`` command line: a thin layer over the library's functions.

``savestate proto MODULE [MODULE ...] [-o DIR]`` imports the modules, collects the saved-state
roots they define, and writes their ``.proto`` files into DIR (default ``./proto``), printing
one line per file written (``--plain`` leaves out the width and length comments). With
``--check`` it writes nothing: it prints a diff and exits 1 when the files in DIR are not what
the code would write.

``savestate check MODULE [MODULE ...] --against DIR`` checks the modules' saved-state types
against the ``.proto`` files of an earlier release (``git:REF:DIR`` reads them from a git
revision), and with ``--corpus CORPUS`` decodes the states saved by that release: exit 0
compatible, 1 breaking, 2 a usage error or a baseline that does not parse.

Exit statuses: 0 success; 1 a schema error (printed with its class and field); 2 a usage
error: a module that cannot be imported, or that defines no roots, or a file or directory that
cannot be read or written.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import savestate

from ..codec import accel
from ..errors import SchemaError
from ..schemaio.discover import DiscoveryError, load_roots
from ..schemaio.proto import proto_files, write_proto
from .output import warning_printer, write_stdout
from .porting import add_from_proto
from .tools import add_commands

__all__ = ["UsageError", "main"]

EXIT_SCHEMA = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument: reported on one line, exit status 2."""


def _cmd_proto(args: argparse.Namespace) -> int:
    roots = load_roots(args.modules)
    if args.check:
        return _check_proto(args.output, proto_files(roots, annotate=not args.plain))
    for path in write_proto(args.output, roots, annotate=not args.plain):
        _print_out(f"{path}\n")  # a reader gone (`| head -1`) stops no file from being written
    return 0


def _print_out(text: str) -> None:
    """Print ``text`` on standard output (see ``cli.output``: a reader gone is not an error, the
    command goes on); a failure to write is a usage error naming standard output."""
    try:
        write_stdout(text)
    except OSError as exc:
        raise UsageError(f"cannot write standard output: {exc.strerror or exc}") from exc


def _check_proto(directory: str, files: dict[str, str]) -> int:
    """Print a unified diff of what would change in ``directory``; 1 when anything would."""
    import difflib

    out = Path(directory)
    stale = 0
    changed = False
    for name, text in files.items():
        path = out / name
        # A file that is not UTF-8 is not what the code writes: shown in the diff, not raised.
        current = (path.read_bytes().decode("utf-8", "replace") if path.is_file() else None)
        if current == text:
            continue
        stale += 1
        changed = True
        _print_out("".join(difflib.unified_diff(
            [] if current is None else current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=str(path) if current is not None else "/dev/null",
            tofile=str(path),
        )))
    extra = sorted(p for p in out.glob("*.proto") if p.name not in files) if out.is_dir() else []
    for path in extra:
        stale += 1
        _print_out(f"{path}: not written by the code (a package no longer declared?)\n")
    if stale:
        # `savestate proto -o` writes the files of the packages declared and leaves any other
        # alone: a file of a package no longer declared is the user's to remove.
        todo = [f"run `savestate proto ... -o {directory}`"] if changed else []
        if extra:
            todo.append(f"remove {', '.join(str(p) for p in extra)}")
        print(
            f"savestate proto --check: {stale} file(s) in {directory} are not what the code "
            f"writes: {', then '.join(todo)} and commit the result",
            file=sys.stderr,
        )
        return 1
    _print_out(f"{directory}: up to date ({len(files)} file(s))\n")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    # only what `check` needs
    from ..schemaio.compat import BaselineError, check_compatible, report_of

    roots = load_roots(args.modules)
    try:
        report = check_compatible(
            roots, against=args.against, direction=args.direction, json=args.json
        )
        if args.corpus is not None:
            from ..corpus import check_corpus

            corpus = check_corpus(roots, args.corpus)
            report = report_of(
                [*report.findings, *corpus], report.direction, report.notes,
                json_checked=report.json_checked,
            )
    except BaselineError as exc:
        raise UsageError(str(exc)) from exc
    if args.format == "json":
        text = report.json()
    elif args.format == "github":
        text = report.github()
    else:
        text = report.text()
    # The verdict is the exit status: it stands when the reader goes away (`| head -1`).
    _print_out(text + "\n")
    return 0 if report.ok else 1


def version_text() -> str:
    """What ``savestate --version`` prints: the version and which path the codecs take, the C
    accelerator (``savestate.ACCELERATED``) or pure Python, with the reason for pure Python
    (``SAVESTATE_PURE=1``, or an extension that is not built or does not load)."""
    if accel.ACCELERATED:
        codec = "C accelerator"
    elif os.environ.get("SAVESTATE_PURE") == "1":
        codec = "pure Python, SAVESTATE_PURE=1"
    else:
        codec = "pure Python, the C accelerator is not available"
    return f"savestate {savestate.__version__} (codec: {codec})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="savestate", description="Tools for savestate saved-state types."
    )
    parser.add_argument("--version", action="version", version=version_text())
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
    proto.add_argument(
        "--check",
        action="store_true",
        help="write nothing: print a diff and exit 1 when the files in DIR are not what the "
        "code would write (a baseline not regenerated or not committed)",
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
        "--against",
        required=True,
        metavar="DIR",
        help="directory of the baseline .proto files, or git:REF:DIR to read DIR as of a git "
        "revision (e.g. git:v1.0:proto) without checking it out; DIR is from the repository's "
        "root, ./DIR or ../DIR from the current directory, as git show REF:DIR reads them",
    )
    check.add_argument(
        "--corpus",
        metavar="CORPUS",
        help="a directory of snapshot files and state blobs saved by the baseline's release: "
        "each must decode with the new classes and encode again",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="changes that break the proto3 JSON of saved states (renamed fields, enum values, "
        "Oneof variants) are errors, not warnings",
    )
    check.add_argument(
        "--direction",
        choices=("backward", "forward", "both"),
        default="backward",
        help="which breaks are errors: backward (new code reads old state; default), forward "
        "(old code reads new state) or both; the others are warnings",
    )
    check.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text (default), json (a versioned document, see the README) or github "
        "(workflow annotations on the baseline files)",
    )
    check.set_defaults(run=_cmd_check)
    add_commands(commands)  # decode, encode, show, diff
    add_from_proto(commands, UsageError, _print_out)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            if not getattr(args, "debug", False):  # --debug: where in savestate, as Python says
                warnings.showwarning = warning_printer(args.command)
            status: int = args.run(args)
    except (UsageError, DiscoveryError) as exc:
        print(f"savestate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as exc:
        print(f"savestate {args.command}: schema error: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except OSError as exc:  # an output directory that cannot be made, a file not readable
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"savestate {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return status
