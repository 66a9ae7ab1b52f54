"""The ``decode``, ``encode``, ``show`` and ``diff`` commands: look inside saved states.

Each command reads bytes (a state encoded as one root type, or a snapshot file, recognised by its
magic number) and works on the proto3 JSON of the state (:mod:`savestate.codec.jsonmap`). Types are
found among the saved-state roots registered by the modules given with ``--module`` (and the
library's own, known without ``--module``: ``google.protobuf.Any``, the state units container
``SavedStateUnits`` and ``NoSavedState``). ``--type`` takes any declared message by its full
proto name (:func:`savestate.type_by_name`).

Exit statuses: 0 success (``diff``: no difference), 1 a failure (bad bytes, bad JSON, a value
that does not fit; ``diff``: the states differ), 2 a usage error. A failure is reported as one
line naming the file, the type and the field path; ``--debug`` shows the traceback instead.
When the reader of the output closes it early, as ``head`` does, a command ends quietly with
the status it would have had (``diff``: 1 when the states differ), see ``cli.output``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import enum
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..codec.jsonmap import TYPE_KEY, JsonError, strict_blobs
from ..codec.raw import decode_raw, format_raw, raw_to_json
from ..errors import DecodeError, EncodeError, SavestateError
from ..limits import DEFAULT_MAX_DEPTH
from ..model.registry import (
    TYPE_URL_PREFIX,
    UnknownTypeName,
    full_name,
    info_of,
    root_for_url,
    type_by_name,
)
from ..model.registry import roots as registered_roots
from ..schemaio.discover import DiscoveryError, load_roots
from ..state import snapshot
from ..state.blob import SavedStateBlob
from ..state.units import SavedStateUnits
from .inputs import DEFAULT_MAX_SIZE, InputMissing, InputTooLarge, parse_size, read_input
from .output import escaped, quiet_stdout, write_stdout
from .progress import progress_bar
from .sizes import format_sizes, size_tree, treemap_svg

__all__ = ["add_commands"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Usage(Exception):
    pass


class _Failure(Exception):
    pass


class _OutputFailure(_Failure):
    """An output that could not be written: its message names the output, not the input."""


# ---------------------------------------------------------------------------------------------
# Inputs


def _read_bytes(spec: str, max_size: int) -> bytes:
    """The bytes of a command's input, bounded by ``--max-size`` (see ``cli.inputs``); what
    was read is then decoded with no smaller limit than its own length."""
    if spec == "-" and sys.stdin is None:  # started with standard input closed
        raise _Failure("cannot read standard input: it is closed")
    if spec == "-" and sys.stdin.isatty():  # FILE forgotten: say what is awaited
        print("reading standard input (end it with Ctrl-D; give a FILE to read a file)",
              file=sys.stderr)
    bar = None if spec == "-" else progress_bar(sys.stderr, f"reading {spec}")
    try:
        return read_input(spec, max_size, snapshot_header=True, progress=bar)
    except InputMissing as exc:
        raise _Usage(str(exc)) from None
    except InputTooLarge as exc:
        raise _Failure(str(exc)) from None
    except OSError as exc:
        raise _Failure(f"{spec}: {exc.strerror or exc}") from None
    finally:
        if bar is not None:
            bar.close()


def _load_modules(modules: list[str] | None) -> None:
    if not modules:
        return
    try:
        load_roots(modules)
    except DiscoveryError as exc:
        raise _Usage(str(exc)) from None


def _find_type(name: str) -> Any:
    """The declared class named ``name`` (a full proto name, or a type URL)."""
    try:
        return type_by_name(name.removeprefix("https://").removeprefix(TYPE_URL_PREFIX))
    except UnknownTypeName:
        pass
    known = ", ".join(full_name(c) for c in registered_roots()) or "none"
    raise _Usage(
        f"unknown type {name!r}: no declared class has that name (give its module with "
        f"--module; roots known: {known})"
    )


def _is_snapshot(data: bytes) -> bool:
    return data.startswith(snapshot.MAGIC)


def _unpack(data: bytes, file: str) -> SavedStateBlob:
    """The blob of a snapshot file's bytes, all of them read already (within ``--max-size``).
    The payload is decoded with no smaller limit than the bytes read; the length its header
    declares is allowed whatever it is, so that a file cut short is ``Truncated`` (the header
    promises more than the file holds), not a payload "more than max_size" of the file's own
    length."""
    limit = len(data)
    if len(data) >= snapshot.HEADER_SIZE:
        limit = max(limit, snapshot.HEADER_FIELDS.unpack_from(data)[3])
    return snapshot.unpack(data, file, max_size=limit)


def _state_json(data: bytes, file: str, type_name: str | None, *, has_raw: bool = False) -> Any:
    """The JSON of the bytes of a file: a snapshot's blob, or a state of ``type_name``.
    ``has_raw``: the command has ``--raw`` (``decode``), which reads bytes of no known type."""
    # A blob of a known type whose bytes do not decode is an error, as show and a restore
    # find it, not JSON holding its bytes as if its type were unknown.
    if _is_snapshot(data):
        blob = _unpack(data, file)
        with strict_blobs():
            if type_name is not None and type_name != "google.protobuf.Any":
                cls = _find_type(type_name)
                return blob.parse(cls, max_size=len(blob.value)).to_dict()
            return blob.to_dict()
    if type_name is None:
        hint = " (or use --raw)" if has_raw else ""  # a hint only where the option exists
        raise _Usage(f"{file}: not a snapshot file: give its type with --type{hint}")
    cls = _find_type(type_name)
    value: Any = cls.decode(data, max_size=len(data))
    with strict_blobs():
        return value.to_dict()


def _dump(value: Any, compact: bool) -> str:
    if compact:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False)


def _write_out(data: bytes, output: str | None) -> None:
    if output is None or output == "-":
        _write_stdout(data)
    else:
        _write_file(output, data)


def _write_stdout(data: bytes | str) -> None:
    """Write to standard output (see ``cli.output``): a failure to write (a full disk behind
    ``>``, a closed descriptor) names standard output, since the input is not to blame; a
    reader gone (``| head``) is not a failure."""
    try:
        write_stdout(data)
    except OSError as exc:
        raise _OutputFailure(f"cannot write standard output: {exc.strerror or exc}") from exc


def _write_file(path: str, data: bytes | str) -> None:
    """Write an output file (text as UTF-8); a failure names ``path``: the input was read, it
    is not to blame.

    A regular file, or a new one, is written whole under a temporary name next to it, then
    renamed over it: a write that fails part way (a full disk, a file size limit) leaves the
    earlier file as it was, never a torn one. Anything else (a FIFO, ``/dev/stdout``) is
    written in place, since renaming over it would replace the device, not write to it."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        try:
            info: os.stat_result | None = os.stat(path)  # of what a symbolic link points to
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            Path(path).write_bytes(raw)
        else:  # as a snapshot file is written, and with the same temporary names
            snapshot.replace_file(path, lambda fd: snapshot.write_all(fd, raw))
    except BrokenPipeError:
        raise  # a FIFO's reader gone, as a closed standard output: ends quietly
    except OSError as exc:
        raise _OutputFailure(f"cannot write {path}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------------------------------------
# Commands


def _cmd_decode(args: argparse.Namespace) -> int:
    if args.json and not args.raw:  # its JSON is the state's own already: a mistaken flag
        raise _Usage("--json goes with --raw (without it, decode prints the state's JSON)")
    data = _read_bytes(args.file, args.max_size)
    if args.raw:
        if _is_snapshot(data):
            data = _unpack(data, args.file).value
        fields = decode_raw(data)
        text = _dump(raw_to_json(fields), args.compact) + "\n" if args.json else format_raw(fields)
    else:
        _load_modules(args.module)
        text = _dump(_state_json(data, args.file, args.type, has_raw=True), args.compact) + "\n"
    if args.output is None or args.output == "-":
        _write_stdout(text)
    else:
        _write_file(args.output, text)
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    # Refused before anything is read (standard input may be typed): binary bytes on a terminal
    # are unreadable and can be taken as control sequences, as gzip refuses them.
    if (args.output is None or args.output == "-") and _is_terminal(sys.stdout):
        raise _Usage("not writing binary to a terminal: give an output file with -o FILE, or "
                     "redirect standard output")
    _load_modules(args.module)
    text = _read_bytes(args.file, args.max_size)
    if args.snapshot:
        out = snapshot.encode(_snapshot_blob(text, args.type))
    elif args.type is None:
        raise _Usage("give the type to encode with --type (or --snapshot for a snapshot file)")
    else:
        cls: Any = _find_type(args.type)
        out = cls.from_json(text).encode()
    _write_out(out, args.output)
    return 0


def _is_terminal(stream: Any) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (OSError, ValueError):  # a closed stream: whatever it is, it is no terminal
        return False


def _snapshot_blob(text: bytes, type_name: str | None) -> SavedStateBlob:
    """The blob of the snapshot ``encode --snapshot`` writes: the JSON is a blob as ``decode``
    prints a snapshot (``{"@type": ...}``), or, given ``--type``, a state of that type as
    ``decode --type`` prints it."""
    if type_name is None or type_name == "google.protobuf.Any":
        try:
            return SavedStateBlob.from_json(text)
        except JsonError as exc:
            if type_name is None and _lacks_type_url(text):
                # Most likely a state as `decode --type` prints it: --type says which.
                raise _Failure(f"{exc}; for a state of a declared type, give the type with "
                               "--type PKG.NAME (and its module with -m)") from exc
            raise
    cls: Any = _find_type(type_name)
    try:
        return SavedStateBlob.new(cls.from_json(text))
    except JsonError as exc:
        # Not a state of --type: it may be the blob decode prints, which must then hold one
        # (the type URL checked, the value decoded). Else the state's error is the one to show.
        try:
            blob = SavedStateBlob.from_json(text)
        except JsonError:
            raise exc from None
        blob.parse(cls, max_size=len(blob.value))
        return blob


def _lacks_type_url(text: bytes) -> bool:
    """Whether ``text`` is a JSON object without the ``"@type"`` of a blob."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON at all: the error says so, no hint
        return False
    return isinstance(value, dict) and TYPE_KEY not in value


def _cmd_show(args: argparse.Namespace) -> int:
    _load_modules(args.module)
    data = _read_bytes(args.snapshot, args.max_size)
    blob = _unpack(data, args.snapshot)
    _magic, version, _reserved, length, digest = snapshot.HEADER_FIELDS.unpack_from(data)
    lines = [
        f"snapshot {args.snapshot}",
        f"  format version {version}, header {snapshot.HEADER_SIZE} bytes",
        f"  payload {length} bytes, sha256 {digest.hex()}",
    ]
    if args.sizes or args.svg:
        # The snapshot's blob is the first level of the nesting limit, as decode counts it.
        tree = size_tree(blob.value, blob.type_url, max_depth=DEFAULT_MAX_DEPTH - 1,
                         path=[type(blob).__name__])
        if args.svg:
            _write_file(args.svg, treemap_svg(tree))
            lines.append(f"  treemap written to {args.svg}")
        if args.sizes:
            lines += ["  sizes (bytes, share of the state):", *format_sizes(tree)]
    if not args.sizes:
        lines += _show_blob(blob, "  ", "state", DEFAULT_MAX_DEPTH, [type(blob).__name__])
    _write_stdout("\n".join(lines) + "\n")
    return 0


# As ``to_dict`` words them, so that ``show`` and ``decode`` refuse a state in the same words.
_TOO_DEEP = "nesting deeper than the limit (max_depth)"
_TOO_DEEP_BLOBS = "nesting deeper than the limit (max_depth), blobs expanded"


def _show_blob(
    blob: SavedStateBlob, indent: str, label: str, left: int, path: list[str]
) -> list[str]:
    """A blob's lines; ``left`` is the levels of messages the blob may take, itself and its
    contents expanded, counted as ``to_dict`` counts them: past them, the ``EncodeError`` that
    ``decode`` gives, at ``path``. A type URL with control characters (escape sequences a
    terminal would act on) is shown as its ``repr``, as a unit's name is."""
    if left <= 0:
        raise EncodeError(_TOO_DEEP, path)
    left -= 1
    url = blob.type_url if blob.type_url.isprintable() else repr(blob.type_url)
    lines = [f"{indent}{label}: {url or '(empty)'} ({len(blob.value)} bytes)"]
    cls = root_for_url(blob.type_url)
    inner = indent + "  "
    if cls is None:
        lines.append(f"{inner}(type not known here: give its module with --module)")
        try:
            lines += [inner + line for line in format_raw(decode_raw(blob.value)).splitlines()]
        except DecodeError as exc:
            lines.append(f"{inner}(not protobuf bytes: {exc})")
        return lines
    if left <= 0:
        raise EncodeError(_TOO_DEEP_BLOBS, path)
    # The size is bounded by the read already; the depth by what is left of the limit.
    value: Any = blob.parse(cls, max_size=len(blob.value), max_depth=left)
    here = [*path, cls.__name__]
    if isinstance(value, SavedStateUnits):
        lines[0] = f"{indent}{label}: {blob.type_url} ({len(blob.value)} bytes, " \
                   f"{len(value.units)} units)"
        for i, unit in enumerate(value.units):
            # Two levels on the way: the units container, and the unit's record.
            lines += _show_blob(unit.state, inner, f"unit [{i}] {unit.name!r}", left - 2,
                                [*here, "units", f"[{i}]", "state"])
        return lines
    lines += _tree(value, inner, left - 1, here)
    return lines


# Bytes of at most this length are one line of hex; longer ones a dump with offsets.
SHORT_BYTES = 16


def _hex_dump(data: bytes, indent: str) -> list[str]:
    """``hexdump -C``-style lines: offset, 16 bytes in hex, and their printable ASCII."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{indent}{offset:08x}  {hexes:<47}  |{text}|")
    return lines


def _children(value: Any) -> list[tuple[str, Any]] | None:
    """The named parts of a declared message or variant, a list or a dict; None for a leaf."""
    if isinstance(value, SavedStateBlob):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items()]
    return None


def _is_variant(value: Any) -> bool:
    """Whether ``value`` is a Oneof's variant: shown under its class name, which says which."""
    info = info_of(type(value))
    return info is not None and info.kind == "variant"


def _leaf_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return f"{value.name} ({value.value})"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds()!r}s"
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False)


def _tree(value: Any, indent: str, left: int, path: list[str]) -> list[str]:
    """A decoded state as indented ``name: value`` lines: integers as numbers, bytes in hex
    (a dump with offsets when long), a variant under its class name, a blob as its type URL
    with its fields when that type is known. ``left``: the levels of messages below ``value``
    (a message or a container) that its blobs may take (the decode bounded the rest)."""
    lines: list[str] = []
    for key, v in _children(value) or []:
        if isinstance(v, (bytes, bytearray)):
            if len(v) <= SHORT_BYTES:
                lines.append(f"{indent}{key}: {bytes(v).hex(' ') or '(empty)'}")
            else:
                lines.append(f"{indent}{key}: {len(v)} bytes")
                lines += _hex_dump(bytes(v), indent + "  ")
        elif isinstance(v, SavedStateBlob):
            lines += _show_blob(v, indent, key, left, [*path, key])
        else:
            parts = _children(v)
            if parts is None:
                lines.append(f"{indent}{key}: {_leaf_text(v)}")
            elif not parts and not _unknown_of(v):
                empty = type(v).__name__ if _is_variant(v) else "(empty)"
                lines.append(f"{indent}{key}: {empty}")
            else:
                variant = f" {type(v).__name__}" if _is_variant(v) else ""
                lines.append(f"{indent}{key}:{variant}")
                # A message (or a tuple, one on the wire) takes a level; a list or a map not.
                below = left if isinstance(v, (list, dict)) else left - 1
                lines += _tree(v, indent + "  ", below, [*path, key])
    unknown = _unknown_of(value)
    if unknown:
        # Fields the classes here do not declare (a newer release's, or a deleted field's):
        # the state holds them and writes them back, so they are shown, as decode_raw shows.
        lines.append(f"{indent}(unknown fields, {len(unknown)} bytes)")
        try:
            raw = format_raw(decode_raw(unknown)).splitlines()
        except DecodeError:  # kept as records by the decode; never expected
            lines += _hex_dump(unknown, indent + "  ")
        else:
            lines += [f"{indent}  {line}" for line in raw]
    return lines


def _unknown_of(value: Any) -> bytes:
    """The unknown fields a decoded message or variant kept (empty for anything else)."""
    unknown = getattr(value, "_pb_unknown", None)
    return bytes(unknown) if isinstance(unknown, (bytes, bytearray)) else b""


def _cmd_diff(args: argparse.Namespace) -> int:
    _load_modules(args.module)
    a = _state_json(_read_bytes(args.a, args.max_size), args.a, args.type)
    b = _state_json(_read_bytes(args.b, args.max_size), args.b, args.type)
    changes = list(diff_json(a, b))
    # A path holds the keys of maps, strings from the files: escaped as an error line is.
    _write_stdout("".join(
        escaped(f"{path or '.'}: {_describe(old)} -> {_describe(new)}") + "\n"
        for path, old, new in changes
    ))
    return 1 if changes else 0


_ABSENT: Any = object()


def _describe(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def diff_json(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(path, old, new)`` for each place where two JSON values differ. Lists of objects
    with a ``"name"`` (state units) are matched by name, other lists by index."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else key
            yield from diff_json(a.get(key, _ABSENT), b.get(key, _ABSENT), sub)
        return
    if isinstance(a, list) and isinstance(b, list):
        if _named(a) and _named(b):
            left = {x["name"]: x for x in a}
            right = {x["name"]: x for x in b}
            for name in [*left, *(n for n in right if n not in left)]:
                yield from diff_json(
                    left.get(name, _ABSENT), right.get(name, _ABSENT), f"{path}[{name!r}]"
                )
            return
        for i in range(max(len(a), len(b))):
            yield from diff_json(
                a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT, f"{path}[{i}]"
            )
        return
    if a != b or type(a) is not type(b):
        yield path, a, b


def _named(items: list[Any]) -> bool:
    names = [x.get("name") if isinstance(x, dict) else None for x in items]
    return bool(items) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


# ---------------------------------------------------------------------------------------------
# Wiring


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report a failure as one line (file, type, field path) unless ``--debug``."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except BaseException as exc:
            if getattr(args, "debug", False) or isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            status, text = _classify(exc, args)
            if status == EXIT_FAILURE and args.command == "diff":
                # diff's 1 means "the states differ": like diff(1), it reports trouble as 2,
                # so that a script never takes an unreadable state for a changed one.
                status = EXIT_USAGE
            if text:
                print(f"savestate {args.command}: {escaped(text)}", file=sys.stderr)
            return status

    return wrapper


def _classify(exc: BaseException, args: argparse.Namespace) -> tuple[int, str]:
    if isinstance(exc, _Usage):
        return EXIT_USAGE, f"error: {exc}"
    if isinstance(exc, BrokenPipeError):  # a FIFO given as an output file, its reader gone
        quiet_stdout()
        return 0, ""
    if isinstance(exc, _OutputFailure):
        return EXIT_FAILURE, f"error: {exc}"
    where = getattr(args, "file", None) or getattr(args, "snapshot", None) or ""
    if getattr(args, "command", "") == "diff":
        where = f"{args.a} / {args.b}"
    prefix = f"{where}: " if where and where != "-" and not str(exc).startswith(where) else ""
    type_name = getattr(args, "type", None)
    if type_name and isinstance(exc, SavestateError):
        prefix += f"as {type_name}: "
    if isinstance(exc, (SavestateError, _Failure)):
        return EXIT_FAILURE, f"error: {prefix}{exc}"
    if isinstance(exc, OSError):
        return EXIT_FAILURE, f"error: {prefix}{exc.strerror or exc}"
    detail = f"{type(exc).__name__}: {exc}"
    return EXIT_FAILURE, f"error: {prefix}{detail} (run with --debug for the traceback)"


def _common(p: argparse.ArgumentParser, typed: bool = True) -> None:
    if typed:
        p.add_argument(
            "--type", metavar="PKG.NAME",
            help="the root type of the bytes (its full proto name, e.g. chipset.pic.SavedState)"
        )
    p.add_argument(
        "--module", "-m", action="append", metavar="MOD",
        help="import this module (dotted name or .py file) to register its roots; repeatable",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    p.add_argument(
        "--max-size", type=_size_argument, default=DEFAULT_MAX_SIZE, metavar="BYTES",
        help="refuse an input larger than this (default 64M; K, M and G suffixes), checked "
        "before a file is read; standard input, FIFOs and devices are never read past it",
    )


def _size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_commands(commands: Any) -> None:
    """Add ``decode``, ``encode``, ``show`` and ``diff`` to the ``savestate`` parser."""
    decode = commands.add_parser(
        "decode",
        help="print a saved state (or a snapshot file) as proto3 JSON",
        description="Decode FILE (or standard input) as --type and print its proto3 JSON. A "
        "snapshot file needs no --type: its blob is printed with its type URL, and embedded "
        "when a --module registers that type. --raw prints any protobuf bytes without a "
        "schema, like protoc --decode_raw.",
    )
    decode.add_argument("file", nargs="?", default="-", metavar="FILE",
                        help="the bytes to decode (default: - for standard input)")
    _common(decode)
    decode.add_argument("--compact", action="store_true", help="one line of JSON")
    decode.add_argument("--raw", action="store_true",
                        help="no schema: field numbers, wire types and guessed nesting")
    decode.add_argument("--json", action="store_true", help="with --raw: records as JSON")
    decode.add_argument("-o", "--output", metavar="OUT", help="write here, not to stdout")
    decode.set_defaults(run=_guarded(_cmd_decode))

    encode = commands.add_parser(
        "encode",
        help="encode proto3 JSON as a saved state (the inverse of decode)",
        description="Read proto3 JSON from FILE (or standard input) and write the encoding of "
        "--type to standard output (or -o). JSON printed by decode encodes back to the same "
        "bytes, unknown fields included (kept under \"@unknown\").",
    )
    encode.add_argument("file", nargs="?", default="-", metavar="FILE",
                        help="the JSON to encode (default: - for standard input)")
    _common(encode)
    encode.add_argument("-o", "--output", metavar="OUT",
                        help="write here, not to stdout (which must not be a terminal)")
    encode.add_argument(
        "--snapshot", action="store_true",
        help="write a snapshot file: the JSON is a blob as decode prints a snapshot "
        "({\"@type\": ...}), or a state of --type",
    )
    encode.set_defaults(run=_guarded(_cmd_encode))

    show = commands.add_parser(
        "show",
        help="describe a snapshot file: header, units, types, sizes and fields",
        description="Print the snapshot header, its state's type URL and size, each state "
        "unit with its name, type URL and size, and the decoded fields of each state whose "
        "type is registered (by --module), as a tree: integers as numbers, bytes in hex. "
        "--sizes prints instead where the bytes go, per unit and per field, with percentages; "
        "--svg FILE draws the same tree as a treemap.",
    )
    show.add_argument("snapshot", metavar="SNAPSHOT", help="a snapshot file")
    show.add_argument("--sizes", action="store_true",
                      help="a tree of bytes per unit and per field, with percentages")
    show.add_argument("--svg", metavar="FILE", help="write a treemap of the sizes as SVG")
    _common(show, typed=False)
    show.set_defaults(run=_guarded(_cmd_show))

    diff = commands.add_parser(
        "diff",
        help="list the field paths whose values differ between two states",
        description="Compare two snapshot files (or two states of --type) field by field and "
        "print 'path: old -> new' for each difference. Exit 0 when equal, 1 when they differ, "
        "2 when they cannot be compared (a usage error, an input that is missing or does not "
        "decode), as diff(1) does.",
    )
    diff.add_argument("a", metavar="A", help="the old state or snapshot file")
    diff.add_argument("b", metavar="B", help="the new state or snapshot file")
    _common(diff)
    diff.set_defaults(run=_guarded(_cmd_diff))
