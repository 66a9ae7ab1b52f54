"""The compatibility checker: does saved state written by an earlier release still restore?

The baseline is a directory of ``.proto`` files (what ``savestate proto`` wrote for an earlier
release, or files in the Rust reference writer's style), or ``git:REF:DIR``, read from a git
revision without checking it out. They are parsed by ``protoc``
(from ``grpcio-tools``, the ``savestate-proto[check]`` extra) into descriptors; the current side
comes from the schema model. Both are turned into the same comparable form (:class:`Msg`,
:class:`Fld`, :class:`Ty`) and compared in two directions:

- backward: new code reads old state (a break is an error by default);
- forward: old code reads new state, for rollback (a warning unless asked for).

A rule that depends on the reader and the writer (integer ranges, required fields, oneof
variants, enum values, fixed-array lengths) is checked twice, once per direction, with the
roles swapped. Facts a descriptor cannot carry (``u8`` vs ``u16``, array lengths, non-zero
defaults, which messages are roots) come from the comments of an annotated baseline; without them
those rules are skipped, never guessed, and the report says so in a note.

Rules of the ``json`` category (a field's JSON name, an enum value's name, a Oneof variant's name
changed, a message turned into a ``*Value`` wrapper or back) break the proto3 JSON round trip,
not the bytes: warnings, or errors with ``json=True``.
Every finding carries the baseline file and line it is about.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import os
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SavestateError
from ..model import scalars
from ..model.names import WRAPPER_MESSAGES
from ..model.plan import (
    DURATION,
    Absent,
    EnumValue,
    FieldPlan,
    Form,
    Label,
    MessagePlan,
    ScalarValue,
    enum_value,
    plan_of,
)
from ..model.scalars import ScalarKind
from .discover import DiscoveryError, load_roots
from .proto import HAS_DEFAULT_NOTE, NO_ZERO_NOTE, NULLABLE_NOTE, collect_definitions

__all__ = [
    "RULES",
    "BaselineError",
    "DiscoveryError",
    "Finding",
    "Report",
    "Rule",
    "check_compatible",
    "comment_notes",
    "load_baseline",
    "report_of",
    "run_protoc",
]

# The version of the JSON output's layout (``Report.to_dict``); raised on an incompatible change.
REPORT_VERSION = 1
WIRE = "wire"
JSON = "json"
ROOT_MARK = "savestate: root"  # the leading comment line the emitter writes before a root

BACKWARD = "backward"
FORWARD = "forward"
BOTH = "both"


class BaselineError(SavestateError):
    """The baseline cannot be read: a missing directory, or a ``.proto`` that does not parse."""


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """A compatibility rule: its id, the direction it breaks, its level and what it means.

    A ``json`` rule is a warning unless the check is asked for JSON compatibility too."""

    id: str
    direction: str  # the direction in which it breaks: backward, forward or both
    level: str  # "error" (when its direction is checked) or "warning" (always)
    summary: str
    category: str = WIRE  # "wire" (the bytes) or "json" (the proto3 JSON round trip)


_RULE_LIST = [
    Rule("FIELD_NO_DELETE", BACKWARD, "error",
         "a field was deleted without reserving its number"),
    Rule("RESERVED_NO_DELETE", BACKWARD, "error", "a reserved number or range was removed"),
    Rule("RESERVED_REUSED", BACKWARD, "error", "a reserved number is used by a field again"),
    Rule("FIELD_WIRE_COMPATIBLE_TYPE", BOTH, "error",
         "a field's type moved to another wire-compatibility group"),
    Rule("FIELD_SAME_MESSAGE_TYPE", BOTH, "error",
         "a field now holds a different message that cannot read the old one's bytes"),
    Rule("FIELD_INTEGER_NARROWED", BACKWARD, "error",
         "an integer's range no longer holds every old value (savestate checks ranges)"),
    Rule("FIELD_INTEGER_WIDENED", FORWARD, "error",
         "an integer's range grew: old code rejects or misreads the new values"),
    Rule("FIELD_SAME_CARDINALITY", BOTH, "error",
         "singular <-> repeated, or map <-> repeated scalar"),
    Rule("FIELD_SAME_ONEOF", BOTH, "error", "a field moved into, out of or between oneofs"),
    Rule("ONEOF_VARIANT_NO_DELETE", BACKWARD, "error",
         "a Oneof variant was removed or renumbered"),
    Rule("ONEOF_VARIANT_ADDED", FORWARD, "error",
         "a new Oneof variant: old code cannot decode state holding it"),
    Rule("FIELD_ADDED_REQUIRED", BACKWARD, "error",
         "a new field whose absence is a decode error (fixed array, Oneof, enum without zero)"),
    Rule("FIELD_REMOVED_REQUIRED", FORWARD, "error",
         "a removed field that old code requires (fixed array, Oneof, enum without zero)"),
    Rule("ARRAY_LENGTH_CHANGED", BOTH, "error",
         "a fixed array's length changed (or a list became a fixed array, or back)"),
    Rule("ENUM_VALUE_NO_DELETE", BACKWARD, "error", "an enum value was removed or renumbered"),
    Rule("ENUM_VALUE_ADDED", FORWARD, "error",
         "a new enum value: old code rejects it as unknown"),
    Rule("ROOT_RENAMED", BOTH, "error",
         "a root's name changed: the type URL of existing blobs no longer matches"),
    Rule("PACKAGE_CHANGED", BOTH, "error",
         "a root's package changed: the type URL of existing blobs no longer matches"),
    Rule("MESSAGE_PACKAGE_CHANGED", BOTH, "warning",
         "a non-root message moved to another package (no bytes change; names do)"),
    Rule("FIELD_PRESENCE_CHANGED", BOTH, "warning",
         "`optional` (explicit presence) added to or removed from a scalar, or `| None` to or "
         "from a field whose absence reads as its default or an empty message"),
    Rule("ROOT_DELETED", BACKWARD, "error",
         "a root of the baseline is no longer declared: blobs of its type URL cannot restore"),
    Rule("FIELD_SAME_DEFAULT", BOTH, "error",
         "a field's default changed: state that omits the field decodes to another value"),
    Rule("FIELD_NULLABLE_CHANGED", BOTH, "error",
         "a required field (fixed array, Oneof, enum without zero, message holding a required "
         "field) gained or lost `| None`: None is written as no field, which the side without "
         "it refuses"),
    Rule("FIELD_JSON_NAME_CHANGED", BOTH, "warning",
         "a field's JSON name changed: JSON written before fails to load", JSON),
    Rule("ENUM_VALUE_NAME_CHANGED", BOTH, "warning",
         "an enum value's name changed: JSON written before fails to load", JSON),
    Rule("ONEOF_VARIANT_NAME_CHANGED", BOTH, "warning",
         "a Oneof variant's name changed: JSON written before fails to load", JSON),
    Rule("FIELD_JSON_SHAPE_CHANGED", BOTH, "warning",
         "a field's message became a *Value wrapper or stopped being one: its JSON changed "
         "between a bare value and an object, so JSON written before fails to load", JSON),
]
RULES: dict[str, Rule] = {r.id: r for r in _RULE_LIST}
# Not a rule of the comparison: the finding of ``--corpus``, where the bytes themselves decide.
CORPUS_RULE = Rule(
    "CORPUS_STATE_FAILS", BACKWARD, "error",
    "a saved state of the corpus fails to decode or re-encode with the new classes",
)


@dataclass(frozen=True)
class Finding:
    """One problem: where, what changed, which rule, why it matters, and how bad it is."""

    level: str
    rule: str
    direction: str  # backward or forward (or both for a symmetric rule)
    path: str  # full name of the message, then the field names
    number: int | None
    change: str
    reason: str
    file: str | None = None  # the baseline file (or corpus file) it is about
    line: int | None = None  # 1-based, in ``file``

    @property
    def location(self) -> str:
        """``file:line``, ``file`` or ``""``."""
        if self.file is None:
            return ""
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        where = self.path if self.number is None else f"{self.path} ({self.number})"
        at = f"{self.location}: " if self.location else ""
        return f"{at}{self.level}  {where}: {self.change} [{self.rule}] {self.reason}"

    def github(self) -> str:
        """A GitHub Actions workflow command: an annotation on the baseline file and line."""
        props = []
        if self.file is not None:
            props.append(f"file={_gh_property(self.file)}")
            if self.line is not None:
                props.append(f"line={self.line}")
        props.append(f"title={_gh_property(self.rule)}")
        where = self.path if self.number is None else f"{self.path} ({self.number})"
        text = f"{where}: {self.change}. {self.reason}"
        return f"::{self.level} {','.join(props)}::{_gh_data(text)}"

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON object, one entry of the report's ``findings`` (its rule's
        category added: ``wire`` for a rule not in the table)."""
        return {
            "level": self.level,
            "rule": self.rule,
            "category": RULES[self.rule].category if self.rule in RULES else WIRE,
            "direction": self.direction,
            "path": self.path,
            "number": self.number,
            "change": self.change,
            "reason": self.reason,
            "file": self.file,
            "line": self.line,
        }


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


_LEVEL_ORDER = {"error": 0, "warning": 1}


@dataclass(frozen=True)
class Report:
    """What :func:`check_compatible` found. ``ok`` when no finding is an error."""

    findings: tuple[Finding, ...]
    direction: str
    notes: tuple[str, ...] = ()
    json_checked: bool = False  # whether json-category rules were errors

    @property
    def errors(self) -> list[Finding]:
        """The findings of level ``error``, in report order."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of level ``warning``, in report order."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when no finding is an error (warnings and notes do not count)."""
        return not self.errors

    @property
    def rule_ids(self) -> set[str]:
        """The rule ids of every finding, errors and warnings alike."""
        return {f.rule for f in self.findings}

    def __bool__(self) -> bool:
        return self.ok

    def text(self) -> str:
        """The report as ``savestate check`` prints it: one line per finding, one per note,
        then the verdict (``compatible`` or ``breaking``, the direction, and the counts)."""
        lines = [str(f) for f in self.findings]
        lines += [f"note  {n}" for n in self.notes]
        verdict = "compatible" if self.ok else "breaking"
        lines.append(
            f"{verdict} ({self.direction}): {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        )
        return "\n".join(lines)

    def github(self) -> str:
        """GitHub Actions annotations (one per finding and note), then the verdict line."""
        lines = [f.github() for f in self.findings]
        lines += [f"::notice title=savestate check::{_gh_data(n)}" for n in self.notes]
        lines.append(self.text().splitlines()[-1])
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The JSON output (schema version :data:`REPORT_VERSION`, documented in the README)."""
        return {
            "version": REPORT_VERSION,
            "compatible": self.ok,
            "direction": self.direction,
            "json": self.json_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }

    def json(self) -> str:
        """:meth:`to_dict` as indented JSON text with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# The comparable form


ANY_LENGTH = -1  # a fixed array whose length the baseline does not say ("packed repr only")
UNKNOWN = -2  # cannot tell whether it is a fixed array (bytes or a wrapper in a Rust baseline)

# Wire-compatibility groups (what a reader of one type makes of the other's bytes).
_GROUPS = {
    **dict.fromkeys(("int32", "int64", "uint32", "uint64", "bool"), "varint"),
    **dict.fromkeys(("sint32", "sint64"), "zigzag"),
    **dict.fromkeys(("fixed32", "sfixed32"), "fixed32"),
    **dict.fromkeys(("fixed64", "sfixed64"), "fixed64"),
    "string": "string",
    "bytes": "bytes",
    "float": "float",
    "double": "double",
    "message": "message",
    "enum": "enum",
}
_KIND_BY_NAME: dict[str, ScalarKind] = {
    k.name: k for k in vars(scalars).values() if isinstance(k, ScalarKind)
}
# The kind a proto integer type stands for when nothing narrower is said.
_PROTO_KIND = {
    name: _KIND_BY_NAME[name]
    for name in (
        "int32", "int64", "uint32", "uint64", "sint32", "sint64",
        "fixed32", "fixed64", "sfixed32", "sfixed64", "bool",
    )
}
# Proto types that several savestate/Rust kinds share: widths a plain baseline cannot tell.
_AMBIGUOUS = frozenset({"uint32", "sint32"})
# The google.protobuf.*Value wrappers, whose JSON is their bare value, not an object.
_WRAPPERS = frozenset(f"google.protobuf.{name}" for name in WRAPPER_MESSAGES.values())


@dataclass(eq=False)
class Ty:
    """A field's element type: a scalar proto type, a message or an enum."""

    proto: str  # "uint32", ..., "message", "enum"
    ref: str = ""  # full name of a message or enum
    kind: ScalarKind | None = None  # an integer's exact kind when known
    msg: Msg | None = None
    enum: Enm | None = None
    # The type as the text without annotations writes it, where that is another (a nested
    # message holding a `// u8` is a plain `*Value` wrapper there): what a plain baseline has.
    plain: Ty | None = None

    def __str__(self) -> str:
        if self.proto in ("message", "enum"):
            return self.ref
        if self.kind is not None and self.kind.name != self.proto:
            return f"{self.proto} ({self.kind.name})"
        return self.proto


@dataclass(eq=False)
class Fld:
    """A field in the comparable form: its name, number, element type and label, the facts a
    bare descriptor lacks (a fixed array's length, whether a message field may be None, a
    non-zero default), and the file and line that declare it."""

    name: str
    number: int
    ty: Ty
    label: str = "singular"  # singular, optional or repeated
    is_map: bool = False
    oneof: str | None = None
    array: int | None = None  # a length, ANY_LENGTH, UNKNOWN, or None: not a fixed array
    nullable: bool = False  # a message field or fixed array declared `T | None` (absence is fine)
    # Absence decodes to a declared default (a fixed array's, a Oneof's, a message's): fine too.
    has_default: bool = False
    json_name: str = ""
    default: str | None = ""  # a non-zero default as JSON text; "" the zero; None: not known
    file: str | None = None  # where the baseline declares it
    line: int | None = None

    @property
    def cardinality(self) -> str:
        """``map``, ``repeated`` or ``singular`` (an ``optional`` field is singular)."""
        if self.is_map:
            return "map"
        return "repeated" if self.label == "repeated" else "singular"


@dataclass(eq=False)
class Msg:
    """A message in the comparable form: its fields by number, reserved number ranges, whether
    it is a Rust-style enum (one ``oneof variant``) and whether its file is annotated."""

    full_name: str
    fields: dict[int, Fld] = field(default_factory=dict)
    reserved: list[tuple[int, int]] = field(default_factory=list)  # [start, end) ranges
    top_level: bool = True
    is_oneof_enum: bool = False  # a Rust-style enum: one `oneof variant` holding every field
    annotated: bool = False
    file: str | None = None  # where the baseline declares it
    line: int | None = None

    def is_reserved(self, number: int) -> bool:
        """Whether ``number`` falls in one of the reserved ranges."""
        return any(lo <= number < hi for lo, hi in self.reserved)


@dataclass(eq=False)
class Enm:
    """A proto enum in the comparable form: its value names by number, whether it has a zero
    value, and the lines that declare it and each value."""

    full_name: str
    values: dict[int, str]  # the ``<ENUM>_UNSPECIFIED = 0`` added for proto3 included
    # Whether value 0 is a member (else a missing field fails to decode): None when a plain
    # baseline does not say, since proto3 text always has a zero value.
    has_zero: bool | None = True
    file: str | None = None  # where the baseline declares it
    line: int | None = None
    value_lines: dict[int, int] = field(default_factory=dict)


@dataclass
class Side:
    """One side of the comparison: top-level messages and enums by full name."""

    messages: dict[str, Msg] = field(default_factory=dict)
    enums: dict[str, Enm] = field(default_factory=dict)
    roots: set[str] = field(default_factory=set)
    plain_files: list[str] = field(default_factory=list)  # files without annotations
    root_marks: bool = True  # whether ``roots`` is known (a baseline marks its roots)


def _wkt() -> dict[str, Msg]:
    """The well-known messages savestate's model refers to."""

    def msg(name: str, *fields: tuple[str, int, str]) -> Msg:
        m = Msg(f"google.protobuf.{name}")
        for fname, number, proto in fields:
            m.fields[number] = Fld(fname, number, Ty(proto, kind=_PROTO_KIND.get(proto)))
        return m

    return {
        m.full_name: m
        for m in (
            msg("Empty"),
            msg("Any", ("type_url", 1, "string"), ("value", 2, "bytes")),
            msg("Duration", ("seconds", 1, "int64"), ("nanos", 2, "int32")),
        )
    }


# ---------------------------------------------------------------------------------------------
# The current side: from the schema model


class _ModelBuilder:
    """The comparable form of the current code, from the wire plans: every message, field,
    label and wrapper is the one the ``.proto`` emitter writes."""

    def __init__(self, roots: list[type]) -> None:
        self.side = Side()
        self.wkt = _wkt()
        self.pending: list[Ty] = []
        for package, defs in sorted(collect_definitions(roots).items()):
            for name, cls in sorted(defs.items()):
                full = f"{package}.{name}"
                if issubclass(cls, enum.IntEnum):
                    self.side.enums[full] = self.enum(cls, full)
                    continue
                plan = plan_of(cls)
                if plan.root:
                    self.side.roots.add(full)
                self.side.messages[full] = self.message(plan, full, package)
        for ty in self.pending:
            if ty.proto == "message" and ty.msg is None:
                ty.msg = self.side.messages.get(ty.ref) or self.wkt.get(ty.ref)
            elif ty.proto == "enum" and ty.enum is None:
                ty.enum = self.side.enums.get(ty.ref)

    @staticmethod
    def enum(cls: type[enum.IntEnum], full: str) -> Enm:
        value = enum_value(cls)
        return Enm(full, dict(value.names), has_zero=value.zero is not None)

    def message(self, m: MessagePlan, full: str, package: str, top: bool = True) -> Msg:
        msg = Msg(full, top_level=top, is_oneof_enum=m.form is Form.ONEOF, annotated=True)
        msg.reserved = [(r.start, r.stop) for r in m.reserved]
        for f in m.fields:
            fld = self.field(f, full, package)
            if m.form is Form.ONEOF:
                fld.oneof = "variant"
            msg.fields[f.number] = fld
        return msg

    def field(self, f: FieldPlan, owner: str, package: str) -> Fld:
        label = {Label.SINGULAR: "singular", Label.OPTIONAL: "optional",
                 Label.REPEATED: "repeated"}[f.label]
        return Fld(
            f.name,
            f.number,
            self.type(f, owner, package),
            label,
            is_map=f.is_map,
            array=f.length,
            nullable=f.nullable,
            has_default=f.absent is Absent.DEFAULT,
            json_name=f.json_name,
            default=f.default_text,
        )

    def type(self, f: FieldPlan, owner: str, package: str) -> Ty:
        vp = f.value
        if isinstance(vp, ScalarValue):
            kind = vp.kind
            return Ty(kind.proto, kind=kind if kind.is_integer or kind.name == "bool" else None)
        if isinstance(vp, EnumValue):
            ty = Ty("enum", f"{package}.{vp.cls.__name__}")
            self.pending.append(ty)
            return ty
        m = vp.message
        if m.described_as is not None:
            name = m.described_as[0]
            if m.value_wrapper:
                return self.wrapper(m, name, package)
            # A well-known type, or a foreign class (compared by name only).
            return Ty("message", name, msg=self.wkt.get(name))
        if vp.cls is not None:
            ty = Ty("message", f"{m.package or package}.{m.name}")
            self.pending.append(ty)
            return ty
        nested = self.message(m, f"{owner}.{m.name}", package, top=False)
        nested.annotated = True
        plain = None if m.plain_wrapper is None else self.wrapper(m, m.plain_wrapper[0], package)
        return Ty("message", nested.full_name, msg=nested, plain=plain)

    def wrapper(self, m: MessagePlan, name: str, package: str) -> Ty:
        """A ``*Value`` wrapper written for ``m``: its one field, with the width the plan
        gives it."""
        wrapper = Msg(name, top_level=False)
        wrapper.fields[1] = self.field(m.fields[0], name, package)
        return Ty("message", name, msg=wrapper)


def model_side(roots: Sequence[type]) -> Side:
    """The comparable form of the types reachable from ``roots``."""
    return _ModelBuilder(list(roots)).side


# ---------------------------------------------------------------------------------------------
# The baseline side: .proto files parsed by protoc


_TYPE_NAMES = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
    8: "bool", 9: "string", 10: "message", 11: "message", 12: "bytes", 13: "uint32",
    14: "enum", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
}
_baseline_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], Side] = {}


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """protoc writes its messages to file descriptor 2: collect them."""
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


def run_protoc(includes: Sequence[Path], files: Sequence[Path], *, what: str) -> bytes:
    """The descriptor set (imports and source info included) of ``files``, parsed by protoc
    with the import paths ``includes`` and the well-known types; a :class:`BaselineError`
    naming ``what`` with protoc's messages when they do not parse."""
    try:
        # grpcio-tools ships no type information (an optional extra, imported only here)
        import grpc_tools  # type: ignore[import-untyped]
        from grpc_tools import protoc
    except ImportError as exc:
        raise BaselineError(
            "reading a baseline needs protoc from grpcio-tools: "
            "pip install 'savestate-proto[check]'"
        ) from exc
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baseline.pb"
        args = [
            "protoc",
            *(f"-I{d}" for d in includes),
            f"-I{include}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            *(str(f) for f in files),
        ]
        with _captured_stderr() as messages:
            status = protoc.main(args)
        text = "".join(messages).strip()
        if status != 0 or not out.exists():
            for d in includes:
                text = text.replace(f"{d}{os.sep}", "")
            raise BaselineError(f"cannot parse {what}:\n{text}")
        return out.read_bytes()


def load_baseline(directory: str | os.PathLike[str]) -> Side:
    """Parse every ``.proto`` file under ``directory`` (cached while the files are unchanged)."""
    path = Path(directory)
    if not path.is_dir():
        raise BaselineError(f"baseline directory {directory} does not exist")
    path = path.resolve()
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*.proto"))
    if not files:
        raise BaselineError(f"baseline directory {directory} holds no .proto files")
    stamp = tuple(
        (f, (path / f).stat().st_mtime_ns, (path / f).stat().st_size) for f in files
    )
    key = (str(path), stamp)
    cached = _baseline_cache.get(key)
    if cached is not None:
        return cached
    data = run_protoc([path], [path / f for f in files], what=f"the baseline {path}")
    annotated = {
        f for f in files
        if any(
            line.startswith("// savestate:")
            for line in (path / f).read_text(encoding="utf-8", errors="replace").splitlines()
        )
    }
    side = _descriptor_side(data, annotated)
    side.plain_files = [f for f in files if f not in annotated]
    side.root_marks = bool(side.roots)
    _baseline_cache[key] = side
    return side


GIT_PREFIX = "git:"


def _git(args: list[str], what: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], capture_output=True, check=False)
    except OSError as exc:
        raise BaselineError(f"cannot run git to read {what}: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise BaselineError(f"cannot read {what}: {message}")
    return done.stdout


@contextlib.contextmanager
def baseline_directory(against: str | os.PathLike[str]) -> Iterator[tuple[Path, str]]:
    """``(directory to parse, name to show in findings)`` for a baseline: a directory, or
    ``git:REF:DIR`` (DIR as of revision REF, read with ``git show`` into a temporary
    directory, without touching the work tree).

    DIR is read as ``git show REF:DIR`` reads a path: from the root of the repository, unless
    it starts with ``./`` or ``../`` (or is ``.`` or ``..``), which are from the current
    directory. Findings name the files by their path in the repository."""
    spec = os.fspath(against)
    if not spec.startswith(GIT_PREFIX):
        yield Path(spec), spec
        return
    ref, sep, given = spec[len(GIT_PREFIX):].partition(":")
    if not sep or not ref or not given:
        raise BaselineError(f"a git baseline is git:REF:DIR (e.g. git:main:proto), not {spec!r}")
    directory = given
    if directory in (".", "..") or directory.startswith(("./", "../")):
        # The current directory's path in the repository ("sub/dir/", or "" at its root).
        here = os.fsdecode(_git(["rev-parse", "--show-prefix"], spec).rstrip(b"\n"))
        directory = posixpath.join(here, directory)
    # git lists normalised paths: `proto/../proto` must be `proto` to take them apart.
    directory = posixpath.normpath(directory)
    if directory == ".." or directory.startswith("../"):
        raise BaselineError(f"baseline {spec}: {given} is outside the repository")
    # --full-tree: the path and the names listed are from the root, whatever the current
    # directory. -z: without it git quotes a name that is not ASCII ("baseline-\303\274/...").
    listed = _git(
        ["ls-tree", "-r", "-z", "--name-only", "--full-tree", ref, "--", directory], spec
    )
    names = [os.fsdecode(n) for n in listed.split(b"\0") if n.endswith(b".proto")]
    if directory in names:
        raise BaselineError(f"baseline {spec}: {directory} is a file, not a directory")
    if not names:
        raise BaselineError(f"baseline {spec} holds no .proto files")
    with tempfile.TemporaryDirectory(prefix="savestate-baseline-") as tmp:
        prefix = "" if directory == "." else directory + "/"
        for name in names:
            text = _git(["show", f"{ref}:{name}"], f"{name} at {ref}")  # from the root
            target = Path(tmp) / name.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text)
        yield Path(tmp), directory


_MAX_LENGTH_DIGITS = 18  # a fixed array's length fits an int64 (no number of 4300 digits)
_DEFAULT_NOTE = re.compile(r"(?:^|;\s*)default (.*)$", re.S)


def comment_notes(comment: str) -> dict[str, Any]:
    """The structured parts of a trailing comment: width, length, key/value widths, array.

    Raises :class:`BaselineError` for a note that cannot be one savestate wrote: a length that
    is not a plain decimal number, a default nested too deep to read."""
    notes: dict[str, Any] = {}
    # The default comes last, as JSON text (which may hold ";"): take it off first.
    found = _DEFAULT_NOTE.search(comment.strip())
    if found is not None:
        try:
            json.loads(found.group(1))
            notes["default"] = found.group(1).strip()
        except ValueError:
            pass  # not JSON: a comment that only starts like a note
        except RecursionError as exc:
            raise BaselineError(f"the note `default ...` is nested too deep: {exc}") from exc
        comment = comment.strip()[: found.start()]
    for raw in comment.replace("\n", ";").split(";"):
        part = " ".join(raw.split())
        words = part.split(" ")
        if part == "packed repr only":
            notes["array"] = True
        elif part == NO_ZERO_NOTE:
            notes["no_zero"] = True
        elif part == NULLABLE_NOTE:
            notes["nullable"] = True
        elif part == HAS_DEFAULT_NOTE:
            notes["has_default"] = True
        elif part in _KIND_BY_NAME and _KIND_BY_NAME[part].is_integer:
            notes["kind"] = _KIND_BY_NAME[part]
        elif len(words) == 2 and words[0] == "length" and words[1].isdigit():
            # isdigit() accepts digits int() does not read ("²") and numbers of any size
            if not (words[1].isascii() and len(words[1]) <= _MAX_LENGTH_DIGITS):
                raise BaselineError(f"the note {part!r} does not give a length savestate reads")
            notes["length"] = int(words[1])
        elif len(words) == 2 and words[0] in ("key", "value") and words[1] in _KIND_BY_NAME:
            notes[words[0]] = _KIND_BY_NAME[words[1]]
    return notes


def _notes(comment: str, file: str, line: int | None) -> dict[str, Any]:
    """:func:`comment_notes`, its error naming the baseline file and line."""
    try:
        return comment_notes(comment)
    except BaselineError as exc:
        raise BaselineError(f"{file}:{line}: {exc}") from exc


def _descriptor_side(data: bytes, annotated_files: set[str]) -> Side:
    # protobuf ships no type information (an optional extra, imported only here)
    from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]

    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(data)
    side = Side()
    everything: dict[str, Msg] = {}
    enums: dict[str, Enm] = {}
    tys: list[Ty] = []
    # Wrappers named by annotated files: they write a narrower width as a nested message with
    # its note, so a wrapper there holds exactly its own type (a plain file's may be narrower).
    exact: list[Ty] = []
    late: list[tuple[Fld, dict[str, Any]]] = []

    for fd in fds.file:
        annotated = fd.name in annotated_files
        comments = {
            tuple(loc.path): loc.trailing_comments for loc in fd.source_code_info.location
        }
        leading = {
            tuple(loc.path): loc.leading_comments for loc in fd.source_code_info.location
        }
        lines = {  # protoc's spans count lines from 0
            tuple(loc.path): loc.span[0] + 1 for loc in fd.source_code_info.location
        }
        prefix = f"{fd.package}." if fd.package else ""
        file_name = fd.name

        def walk_enum(
            ed: Any, scope: str, path: tuple[int, ...],
            lines: dict[tuple[int, ...], int] = lines, file_name: str = file_name,
            annotated: bool = annotated, comments: dict[tuple[int, ...], str] = comments,
        ) -> None:
            full = f"{scope}{ed.name}"
            value_lines = {}
            # An annotated file marks the zero value the emitter added for proto3; a plain
            # one cannot say whether the Python enum has that member.
            has_zero: bool | None = True if annotated else None
            for j, v in enumerate(ed.value):
                value_path = (*path, 2, j)
                if value_path in lines:
                    value_lines[v.number] = lines[value_path]
                value_notes = _notes(comments.get(value_path, ""), file_name, lines.get(value_path))
                if v.number == 0 and value_notes.get("no_zero"):
                    has_zero = False
            enums[full] = Enm(
                full, {v.number: v.name for v in ed.value}, has_zero=has_zero,
                file=file_name, line=lines.get(path), value_lines=value_lines,
            )

        def walk(
            md: Any,
            scope: str,
            path: tuple[int, ...],
            top: bool,
            annotated: bool = annotated,
            comments: dict[tuple[int, ...], str] = comments,
            leading: dict[tuple[int, ...], str] = leading,
            lines: dict[tuple[int, ...], int] = lines,
            file_name: str = file_name,
        ) -> None:
            full = f"{scope}{md.name}"
            m = Msg(full, top_level=top, annotated=annotated, file=file_name,
                    line=lines.get(path))
            if top and any(
                part.strip() == ROOT_MARK for part in leading.get(path, "").splitlines()
            ):
                side.roots.add(full)
            m.reserved = [(r.start, r.end) for r in md.reserved_range]
            oneofs = [o.name for o in md.oneof_decl]
            for i, fdp in enumerate(md.field):
                proto = _TYPE_NAMES[fdp.type]
                notes = _notes(
                    comments.get((*path, 2, i), ""), file_name, lines.get((*path, 2, i))
                )
                kind: ScalarKind | None = None
                if proto in _PROTO_KIND:
                    kind = notes.get("kind") or (
                        _PROTO_KIND[proto] if annotated or proto not in _AMBIGUOUS else None
                    )
                ty = Ty(proto, ref=fdp.type_name.lstrip("."), kind=kind)
                tys.append(ty)
                if annotated and ty.ref in _WRAPPERS:
                    exact.append(ty)
                repeated = fdp.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                optional = fdp.proto3_optional
                label = "repeated" if repeated else "optional" if optional else "singular"
                fld = Fld(
                    fdp.name, fdp.number, ty, label, json_name=fdp.json_name,
                    # an annotated file records every non-zero default; a plain one none
                    default=notes.get("default", "") if annotated else None,
                    file=file_name, line=lines.get((*path, 2, i)),
                )
                if fdp.HasField("oneof_index") and not optional:
                    fld.oneof = oneofs[fdp.oneof_index]
                fld.nullable = bool(notes.get("nullable"))
                fld.has_default = bool(notes.get("has_default") or notes.get("default"))
                if "length" in notes:
                    fld.array = notes["length"]
                elif notes.get("array"):
                    fld.array = ANY_LENGTH
                elif not annotated and (proto in ("bytes", "message")) and not repeated:
                    fld.array = UNKNOWN
                m.fields[fdp.number] = fld
                if "key" in notes or "value" in notes:
                    late.append((fld, notes))
            if md.oneof_decl and len(oneofs) == 1 and oneofs[0] == "variant" and all(
                f.oneof == "variant" for f in m.fields.values()
            ):
                m.is_oneof_enum = True
            if md.options.map_entry:
                m.is_oneof_enum = False
            everything[full] = m
            if top:
                side.messages[full] = m
            for j, nd in enumerate(md.nested_type):
                walk(nd, f"{full}.", (*path, 3, j), False, annotated, comments, leading,
                     lines, file_name)
            for k, ed in enumerate(md.enum_type):
                walk_enum(ed, f"{full}.", (*path, 4, k), lines, file_name)

        for i, md in enumerate(fd.message_type):
            walk(md, prefix, (4, i), True)
        for k, ed in enumerate(fd.enum_type):
            walk_enum(ed, prefix, (5, k))
            side.enums[f"{prefix}{ed.name}"] = enums[f"{prefix}{ed.name}"]

    map_entries = set()
    for fd in fds.file:
        def entries(md: Any, scope: str) -> None:
            full = f"{scope}{md.name}"
            if md.options.map_entry:
                map_entries.add(full)
            for nd in md.nested_type:
                entries(nd, f"{full}.")

        for md in fd.message_type:
            entries(md, f"{fd.package}." if fd.package else "")
    for ty in tys:
        if ty.proto == "message":
            ty.msg = everything.get(ty.ref)
        elif ty.proto == "enum":
            ty.enum = enums.get(ty.ref)
    for ty in exact:
        inner = ty.msg.fields.get(1) if ty.msg is not None else None
        if ty.msg is not None and inner is not None and inner.ty.kind is None:
            exact_ty = dataclasses.replace(inner.ty, kind=_PROTO_KIND.get(inner.ty.proto))
            ty.msg = dataclasses.replace(
                ty.msg, fields={1: dataclasses.replace(inner, ty=exact_ty)}
            )
    for m in everything.values():
        for f in m.fields.values():
            if f.ty.proto == "message" and f.ty.ref in map_entries:
                f.is_map = True
    for fld, notes in late:
        entry = fld.ty.msg
        if entry is None:
            continue
        for part, number in (("key", 1), ("value", 2)):
            inner = entry.fields.get(number)
            if part in notes and inner is not None and inner.ty.kind is not None:
                inner.ty.kind = notes[part]
    return side


# ---------------------------------------------------------------------------------------------
# The comparison


def _may_be_none(f: Fld) -> bool:
    """Whether a writer leaves field ``f`` out as None: a message field or fixed array declared
    ``T | None``, or an ``optional`` scalar or enum without a non-zero default (one with such a
    default is ``optional`` so that a zero is written, never None)."""
    if f.nullable:
        return True
    return f.label == "optional" and not f.has_default and f.ty.proto != "message"


def _requires(f: Fld, seen: frozenset[int] = frozenset()) -> bool:
    """Whether a reader fails when field ``f`` is absent from the bytes."""
    if f.nullable or f.has_default:
        return False  # absence is None or the default, for fixed arrays and Oneofs too
    if f.array is not None and f.array != UNKNOWN:
        return True
    if f.label != "singular" or f.is_map:
        return False
    if f.ty.proto == "enum":
        return f.ty.enum is not None and f.ty.enum.has_zero is False
    msg = f.ty.msg
    if f.ty.proto != "message" or msg is None or id(msg) in seen:
        return False
    if msg.is_oneof_enum:
        return True
    inner = seen | {id(msg)}
    return any(_requires(g, inner) for g in msg.fields.values())


def _why_required(f: Fld) -> str:
    if f.array is not None:
        return "a fixed array"
    if f.ty.proto == "enum":
        return "an enum without a zero value"
    if f.ty.msg is not None and f.ty.msg.is_oneof_enum:
        return "a Oneof"
    return "a message holding a required field"


def _range(kind: ScalarKind) -> tuple[int, int]:
    return kind.lo, kind.hi


Where = tuple[str | None, int | None]  # a baseline file and line


def _at(item: Msg | Fld | Enm | None) -> Where:
    return (None, None) if item is None else (item.file, item.line)


class _Checker:
    def __init__(
        self, old: Side, new: Side, checked: set[str], json_checked: bool = False
    ) -> None:
        self.old = old
        self.new = new
        self.checked = checked
        self.json_checked = json_checked
        self.findings: list[Finding] = []
        self.pairs: set[tuple[int, int]] = set()
        self.enum_pairs: set[tuple[int, int]] = set()
        self.where: Where = (None, None)  # the baseline field being compared

    # -- recording

    def add(
        self, rule: str, direction: str, path: str, number: int | None, change: str, reason: str,
        at: Where | None = None,
    ) -> None:
        r = RULES[rule]
        level = r.level
        if r.category == JSON:
            level = "error" if self.json_checked else "warning"
        elif level == "error" and direction != BOTH and direction not in self.checked:
            level = "warning"
        file, line = self.where if at is None else at
        self.findings.append(
            Finding(level, rule, direction, path, number, change, reason, file, line)
        )

    # -- top level

    def run(self) -> None:
        for name, om in sorted(self.old.messages.items()):
            nm = self.new.messages.get(name)
            if nm is not None:
                self.messages(om, nm, name)
        for name, oe in sorted(self.old.enums.items()):
            ne = self.new.enums.get(name)
            if ne is not None:
                self.enums(oe, ne, name)
        self.roots()

    def roots(self) -> None:
        referenced = {
            f.ty.ref for m in self._all_old() for f in m.fields.values() if f.ty.proto == "message"
        }
        if self.old.root_marks:  # the baseline says which messages were roots
            gone = [
                self.old.messages[name] for name in sorted(self.old.roots - self.new.roots)
                if name in self.old.messages
            ]
        else:
            gone = [
                m for name, m in sorted(self.old.messages.items())
                if name not in self.new.messages and name not in referenced
                and not name.startswith("google.protobuf.")
            ]
        matched: set[str] = set()
        for root in sorted(self.new.roots):
            if root in self.old.messages:
                continue
            package, _, simple = root.rpartition(".")
            same_name = [m for m in gone if m.full_name.rpartition(".")[2] == simple]
            same_package = [m for m in gone if m.full_name.rpartition(".")[0] == package]
            new_msg = self.new.messages.get(root)
            if same_name:
                old_msg = same_name[0]
                old_package = old_msg.full_name.rpartition(".")[0]
                self.add(
                    "PACKAGE_CHANGED", BOTH, root, None,
                    f"package {old_package} -> {package}",
                    f"blobs saved as type.googleapis.com/{old_msg.full_name} no longer match",
                    at=_at(old_msg),
                )
                matched.add(old_msg.full_name)
            elif same_package:
                old_msg = same_package[0]
                names = ", ".join(m.full_name for m in same_package)
                self.add(
                    "ROOT_RENAMED", BOTH, root, None,
                    f"root {names} -> {root}" if len(same_package) == 1
                    else f"root one of ({names}) -> {root}",
                    "the type URL of existing blobs no longer matches",
                    at=_at(old_msg),
                )
                matched.add(old_msg.full_name)  # any other one is reported deleted
            else:
                continue
            if new_msg is not None:
                self.messages(old_msg, new_msg, root)
        if not self.old.root_marks:
            return
        for old_msg in gone:
            name = old_msg.full_name
            if name in matched:
                continue
            change = (
                f"{name} is no longer a root" if name in self.new.messages
                else f"root {name} deleted"
            )
            self.add(
                "ROOT_DELETED", BACKWARD, name, None, change,
                f"blobs saved as type.googleapis.com/{name} no longer restore (declare it "
                "again, or check every module that declares roots)",
                at=_at(old_msg),
            )

    def _all_old(self) -> Iterable[Msg]:
        stack = list(self.old.messages.values())
        seen: set[int] = set()
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield m
            for f in m.fields.values():
                if f.ty.msg is not None:
                    stack.append(f.ty.msg)

    # -- messages

    def messages(self, om: Msg, nm: Msg, path: str) -> None:
        key = (id(om), id(nm))
        if key in self.pairs:
            return
        self.pairs.add(key)
        if om.is_oneof_enum != nm.is_oneof_enum:
            # A Oneof's bytes hold exactly one of its variants; a plain message's hold none
            # (an empty one is no bytes at all), whatever its field numbers.
            reader = "new" if nm.is_oneof_enum else "old"
            self.add(
                "FIELD_SAME_ONEOF", BACKWARD if reader == "new" else FORWARD, path, None,
                "message -> Oneof" if reader == "new" else "Oneof -> message",
                f"the {reader} code reads a Oneof, which requires one of its variants: "
                f"{'old' if reader == 'new' else 'new'} state of the message holds none and "
                "fails to decode",
                at=_at(om),
            )
        names = {f.name: f for f in nm.fields.values()}
        for number, of in sorted(om.fields.items()):
            nf = nm.fields.get(number)
            where = f"{path}.{of.name}"
            # A well-known message's field is declared in protobuf's own file, not in the
            # baseline: point at the field using it.
            here = self.where if om.full_name.startswith("google.protobuf.") else _at(of)
            if nf is not None:
                if om.full_name not in _WRAPPERS and nm.full_name not in _WRAPPERS:
                    self.names(om, of, nf, f"{path}.{nf.name}", here)
                saved, self.where = self.where, here
                try:
                    self.fields(of, nf, f"{path}.{nf.name}")
                finally:
                    self.where = saved
                continue
            if om.is_oneof_enum and of.oneof is not None:
                moved = names.get(of.name)
                change = (
                    f"variant {of.name} renumbered {number} -> {moved.number}"
                    if moved is not None and moved.oneof is not None
                    else f"variant {of.name} removed"
                )
                self.add(
                    "ONEOF_VARIANT_NO_DELETE", BACKWARD, where, number, change,
                    "old state holding this variant fails to decode (unknown variant)",
                    at=here,
                )
                continue
            if _requires(of):
                self.add(
                    "FIELD_REMOVED_REQUIRED", FORWARD, where, number,
                    f"field {of.name} removed",
                    f"old code requires it ({_why_required(of)}): new state lacks it",
                    at=here,
                )
            if not nm.is_reserved(number):
                self.add(
                    "FIELD_NO_DELETE", BACKWARD, where, number, f"field {of.name} deleted",
                    "its number is not reserved: old values are dropped, and a later field "
                    "of that number would misread them (add it to reserved=)",
                    at=here,
                )
        for number, nf in sorted(nm.fields.items()):
            if number in om.fields:
                continue
            where = f"{path}.{nf.name}"
            if nm.is_oneof_enum and nf.oneof is not None:
                self.add(
                    "ONEOF_VARIANT_ADDED", FORWARD, where, number, f"variant {nf.name} added",
                    "old code fails to decode new state holding this variant", at=_at(om),
                )
                continue
            if om.is_reserved(number):
                self.add(
                    "RESERVED_REUSED", BACKWARD, where, number,
                    f"reserved number {number} reused by {nf.name}",
                    "state written before the number was reserved decodes into this field",
                    at=_at(om),
                )
            elif _requires(nf):
                self.add(
                    "FIELD_ADDED_REQUIRED", BACKWARD, where, number, f"field {nf.name} added",
                    f"old state lacks it and it is {_why_required(nf)}: decoding fails",
                    at=_at(om),
                )
        self.reserved(om, nm, path)

    def reserved(self, om: Msg, nm: Msg, path: str) -> None:
        for lo, hi in om.reserved:
            left = [(lo, hi)]
            for nlo, nhi in nm.reserved:
                left = [
                    part
                    for a, b in left
                    for part in ((a, min(b, nlo)), (max(a, nhi), b))
                    if part[0] < part[1]
                ]
            for a, b in left:
                free = [(x, y) for x, y in _split(a, b, set(nm.fields)) if x < y]
                for x, y in free:
                    text = str(x) if y == x + 1 else f"{x} to {y - 1}"
                    self.add(
                        "RESERVED_NO_DELETE", BACKWARD, path, None,
                        f"reserved {text} removed",
                        "a later field of that number would misread state from before the "
                        "reservation",
                        at=_at(om),
                    )

    def names(self, om: Msg, of: Fld, nf: Fld, path: str, at: Where) -> None:
        """The JSON name of a field (a Oneof variant's too) is the key JSON is written under."""
        old_json, new_json = of.json_name or of.name, nf.json_name or nf.name
        if old_json == new_json:
            return
        variant = om.is_oneof_enum and of.oneof is not None
        self.add(
            "ONEOF_VARIANT_NAME_CHANGED" if variant else "FIELD_JSON_NAME_CHANGED", BOTH, path,
            nf.number,
            f"{'variant' if variant else 'field'} {of.name} -> {nf.name} "
            f"(JSON {old_json!r} -> {new_json!r})",
            f"JSON written before (savestate decode, to_json) holds {old_json!r}: loading it "
            "fails (unknown field)",
            at=at,
        )

    def enums(self, oe: Enm, ne: Enm, path: str) -> None:
        key = (id(oe), id(ne))
        if key in self.enum_pairs:
            return
        self.enum_pairs.add(key)
        old_values, new_values = oe.values, ne.values
        if oe.has_zero is not None and ne.has_zero is not None:
            # Both sides say whether 0 is a member: the zero added only for proto3 is no value
            # (decoding it fails), so losing or gaining a zero member is a value removed or added.
            old_values, new_values = _members(oe), _members(ne)
        by_name = {name: v for v, name in new_values.items()}
        for value, name in sorted(old_values.items()):
            if value not in new_values:
                moved = by_name.get(name)
                change = (
                    f"value {name} renumbered {value} -> {moved}"
                    if moved is not None else f"value {name} ({value}) removed"
                )
                self.add(
                    "ENUM_VALUE_NO_DELETE", BACKWARD, f"{path}.{name}", value, change,
                    "old state holding it omits the field, which the new code requires now "
                    "that the enum has no zero member" if value == 0 else
                    "old state holding it fails to decode (unknown enum value)",
                    at=(oe.file, oe.value_lines.get(value, oe.line)),
                )
            elif new_values[value] != name:
                self.add(
                    "ENUM_VALUE_NAME_CHANGED", BOTH, f"{path}.{name}", value,
                    f"value {name} -> {new_values[value]} ({value})",
                    f"JSON written before holds {name!r}: loading it fails (unknown enum value)",
                    at=(oe.file, oe.value_lines.get(value, oe.line)),
                )
        for value, name in sorted(new_values.items()):
            if value not in old_values:
                self.add(
                    "ENUM_VALUE_ADDED", FORWARD, f"{path}.{name}", value,
                    f"value {name} ({value}) added",
                    "new state holding it omits the field, which old code requires (its enum "
                    "had no zero member)" if value == 0 else
                    "old code rejects new state holding it (unknown enum value)",
                    at=(oe.file, oe.line),
                )

    # -- fields

    def fields(self, of: Fld, nf: Fld, path: str) -> None:
        n = nf.number
        if of.oneof != nf.oneof:
            self.add(
                "FIELD_SAME_ONEOF", BOTH, path, n,
                f"oneof {of.oneof or '(none)'} -> {nf.oneof or '(none)'}",
                "a oneof member replaces its siblings: values can be lost or misread",
            )
            return
        oc, nc = of.cardinality, nf.cardinality
        if oc != nc and not (
            {oc, nc} == {"map", "repeated"}
            and of.ty.proto == "message" and nf.ty.proto == "message"
        ):
            self.add(
                "FIELD_SAME_CARDINALITY", BOTH, path, n,
                f"{oc} {of.ty} -> {nc} {nf.ty}",
                "one value and many are read differently: values are lost or fail to decode",
            )
            return
        nt = nf.ty
        if nt.plain is not None and nt.plain.ref == of.ty.ref and of.file in self.old.plain_files:
            nt = nt.plain  # what the new code writes without annotations: the same type
        if not self.types(of.ty, nt, path, n):
            return
        self.arrays(of, nf, path)
        self.defaults(of, nf, path)
        if self.nullable(of, nf, path):
            return
        if (
            oc == "singular"
            and of.ty.proto not in ("message",)
            and {of.label, nf.label} == {"singular", "optional"}
            # A fixed array is always written: `optional` there is only `| None` (above).
            and not any(f.array is not None and f.array != UNKNOWN for f in (of, nf))
        ):
            if nf.label == "optional":
                effect = "a zero the old code did not write now decodes as None or the default"
            else:
                effect = "a present zero and an absent value now read the same"
            self.add(
                "FIELD_PRESENCE_CHANGED", BOTH, path, n,
                f"{'optional' if of.label == 'optional' else 'implicit'} presence -> "
                f"{'optional' if nf.label == 'optional' else 'implicit'}",
                effect,
            )

    def nullable(self, of: Fld, nf: Fld, path: str) -> bool:
        """``T | None`` added to or removed from a field: None is no field at all. Where ``T``
        is required (a fixed array, a Oneof, an enum without zero, a message holding one), the
        side without ``| None`` refuses that: True, reported. Else a message field or fixed
        array reads its default (or an empty message) there, and writes the empty message as
        no field, which the other side reads as None (a scalar's presence is the caller's)."""
        old_none, new_none = _may_be_none(of), _may_be_none(nf)
        if old_none == new_none:
            return False
        if of.file in self.old.plain_files:
            return False  # a plain baseline does not say which fields may be None
        change = f"{of.ty}{' | None' if old_none else ''} -> {nf.ty}"
        change += " | None" if new_none else ""
        if old_none and _requires(nf):
            self.add(
                "FIELD_NULLABLE_CHANGED", BACKWARD, path, nf.number, change,
                f"old state holding None lacks the field, and it is {_why_required(nf)}: "
                "decoding fails",
            )
        elif new_none and _requires(of):
            self.add(
                "FIELD_NULLABLE_CHANGED", FORWARD, path, nf.number, change,
                f"new state holding None lacks the field, which old code requires "
                f"({_why_required(of)})",
            )
        else:
            if of.nullable or nf.nullable:
                self.add(
                    "FIELD_PRESENCE_CHANGED", BOTH, path, nf.number, change,
                    "None is written as no field, which the side without `| None` reads as "
                    "its default or an empty message: None and that value now read as each "
                    "other",
                )
            return False
        return True

    def defaults(self, of: Fld, nf: Fld, path: str) -> None:
        if of.default is None or nf.default is None or of.cardinality != "singular":
            return  # a baseline that does not record defaults: nothing to compare
        if of.has_default != nf.has_default and not (of.default or nf.default):
            self.message_defaults(of, nf, path)
            return
        if _default_value(of.default) == _default_value(nf.default):
            return
        old, new = of.default or "zero", nf.default or "zero"
        # A default is read only where the field is left out, which a writer that requires
        # the field (an enum without zero and no default) never does.
        if not nf.default:  # new code omits a zero, which old code reads as its default
            if _requires(nf):
                return
            self.add(
                "FIELD_SAME_DEFAULT", FORWARD, path, nf.number, f"default {old} -> {new}",
                f"new state holding zero does not carry the field: old code reads {old}",
            )
            return
        if _requires(of):
            return
        self.add(
            "FIELD_SAME_DEFAULT", BACKWARD, path, nf.number, f"default {old} -> {new}",
            "old state that does not carry the field (the old code omits a zero when its "
            f"default is the zero; other writers may omit it) decodes to {new}, not {old}",
        )

    def message_defaults(self, of: Fld, nf: Fld, path: str) -> None:
        """A default gained or lost by a field whose default has no value in the ``.proto``
        (a message's, a tuple's: ``// has default``). A writer without one leaves the empty
        message out, and the reader with one decodes that as its default. A writer that must
        write the field (a Oneof, a fixed array) or may leave it out as None (``| None``, the
        nullable rules' case) is not that."""
        if nf.has_default and not (of.nullable or _requires(of)):
            self.add(
                "FIELD_SAME_DEFAULT", BACKWARD, path, nf.number, "default empty -> declared",
                "old state holding the empty value does not carry the field: new code reads "
                "its declared default instead",
            )
        elif of.has_default and not (nf.nullable or _requires(nf)):
            self.add(
                "FIELD_SAME_DEFAULT", FORWARD, path, nf.number, "default declared -> empty",
                "new state holding the empty value does not carry the field: old code reads "
                "its declared default instead",
            )

    def types(self, ot: Ty, nt: Ty, path: str, number: int) -> bool:
        """Compare element types; False when they differ so much that nothing else matters."""
        og, ng = _GROUPS[ot.proto], _GROUPS[nt.proto]
        if og != ng:
            self.add(
                "FIELD_WIRE_COMPATIBLE_TYPE", BOTH, path, number, f"type {ot} -> {nt}",
                _wire_reason(og, ng),
            )
            return False
        if ot.proto == "message":
            self.message_types(ot, nt, path, number)
            return True
        if ot.proto == "enum":
            if ot.enum is not None and nt.enum is not None and not (
                ot.ref == nt.ref and ot.ref in self.old.enums and nt.ref in self.new.enums
            ):
                self.enums(ot.enum, nt.enum, path)
            return True
        self.integers(ot, nt, path, number)
        return True

    def integers(self, ot: Ty, nt: Ty, path: str, number: int) -> None:
        ok, nk = ot.kind, nt.kind
        if ok is None or nk is None:
            if ot.proto == nt.proto or ot.proto not in _PROTO_KIND:
                return  # a width the baseline does not say: nothing to compare
            ok = ok or _PROTO_KIND[ot.proto]
            nk = nk or _PROTO_KIND[nt.proto]
        change = f"type {ot} -> {nt}"
        olo, ohi = _range(ok)
        nlo, nhi = _range(nk)
        if not (nlo <= olo and ohi <= nhi):
            self.add(
                "FIELD_INTEGER_NARROWED", BACKWARD, path, number, change,
                _range_reason("old", ok, nk),
            )
        if not (olo <= nlo and nhi <= ohi):
            self.add(
                "FIELD_INTEGER_WIDENED", FORWARD, path, number, change,
                _range_reason("new", nk, ok),
            )

    def message_types(self, ot: Ty, nt: Ty, path: str, number: int) -> None:
        om, nm = ot.msg, nt.msg
        if om is None or nm is None:
            return
        wkt = ot.ref.startswith("google.protobuf.")
        if ot.ref == nt.ref and (wkt or (om.top_level and nm.top_level)):
            return  # compared once, by name
        duration = DURATION[0]
        if (ot.ref == duration) != (nt.ref == duration):
            # A Duration is read as a timedelta, which holds whole microseconds within
            # Duration's range: another message of the same fields (tuple[int64, int32]) writes
            # what it refuses. The other way, every timedelta reads as its seconds and nanos.
            reader = "new" if nt.ref == duration else "old"
            self.add(
                "FIELD_SAME_MESSAGE_TYPE", BACKWARD if reader == "new" else FORWARD, path,
                number, f"type {ot.ref} -> {nt.ref}",
                f"the {reader} code reads a timedelta: "
                f"{'old' if reader == 'new' else 'new'} values whose nanos are not whole "
                "microseconds, or out of Duration's range, fail to decode",
            )
        if (ot.ref in _WRAPPERS) != (nt.ref in _WRAPPERS):
            old_json, new_json = (
                "a bare value" if ref in _WRAPPERS else "an object" for ref in (ot.ref, nt.ref)
            )
            self.add(
                "FIELD_JSON_SHAPE_CHANGED", BOTH, path, number, f"type {ot.ref} -> {nt.ref}",
                f"JSON written before (savestate decode, to_json) holds {old_json} here, and "
                f"now {new_json} is read: loading it fails",
            )
        named = om.top_level and nm.top_level and not ot.ref.startswith("google.protobuf.")
        if not named:
            self.messages(om, nm, path)
            return
        # Two different named messages: does the new one read the old one's bytes?
        sub = _Checker(self.old, self.new, self.checked, self.json_checked)
        sub.pairs = set(self.pairs)
        sub.messages(om, nm, nt.ref)
        # A break of the inner messages is one in the directions it breaks in: a widening
        # inside is a forward break (a warning unless forward is checked), as it is when the
        # message keeps its name.
        breaks = [f for f in sub.findings if RULES[f.rule].level == "error"]
        oldp, _, olds = ot.ref.rpartition(".")
        newp, _, news = nt.ref.rpartition(".")
        if breaks:
            directions = {f.direction for f in breaks}
            direction = directions.pop() if len(directions) == 1 else BOTH
            first = min(breaks, key=lambda f: _LEVEL_ORDER[f.level])
            self.add(
                "FIELD_SAME_MESSAGE_TYPE", direction, path, number,
                f"type {ot.ref} -> {nt.ref}",
                f"the {'old' if direction == FORWARD else 'new'} message does not read the "
                f"{'new' if direction == FORWARD else 'old'} one: {first.change} [{first.rule}]",
            )
        elif olds == news and oldp != newp:
            self.add(
                "MESSAGE_PACKAGE_CHANGED", BOTH, path, number, f"type {ot.ref} -> {nt.ref}",
                "the bytes are read the same; tools naming the type must follow",
            )

    def arrays(self, of: Fld, nf: Fld, path: str) -> None:
        o, n = of.array, nf.array
        if o == n or UNKNOWN in (o, n):
            return
        num = nf.number
        if o is not None and n is not None:
            if ANY_LENGTH in (o, n):
                return
            self.add(
                "ARRAY_LENGTH_CHANGED", BOTH, path, num, f"length {o} -> {n}",
                "a reader requires exactly its own count: the other side's arrays fail to decode",
            )
        elif n is not None:
            self.add(
                "ARRAY_LENGTH_CHANGED", BACKWARD, path, num,
                f"list -> fixed length {'?' if n == ANY_LENGTH else n}",
                "old state holding another count fails to decode",
            )
        else:
            self.add(
                "ARRAY_LENGTH_CHANGED", FORWARD, path, num,
                f"fixed length {'?' if o == ANY_LENGTH else o} -> list",
                "old code requires exactly its count: new state of another count fails",
            )


def _members(e: Enm) -> dict[int, str]:
    """The values of ``e`` that are members (without a zero added only for proto3)."""
    if e.has_zero is False:
        return {v: name for v, name in e.values.items() if v != 0}
    return e.values


def _default_value(text: str) -> Any:
    """A recorded default, comparable: its JSON value (``""`` is the zero; a NaN is
    ``_NAN``, since NaN is not equal to itself and a NaN default would never match)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return _NAN if isinstance(value, float) and math.isnan(value) else value


_NAN: Any = object()


def _split(a: int, b: int, used: set[int]) -> list[tuple[int, int]]:
    """[a, b) without the numbers in ``used``."""
    parts = []
    start = a
    for u in sorted(x for x in used if a <= x < b):
        parts.append((start, u))
        start = u + 1
    parts.append((start, b))
    return parts


def _wire_reason(old: str, new: str) -> str:
    if {old, new} <= {"varint", "zigzag"}:
        return "old values decode to different numbers (zigzag and plain varints differ)"
    if "message" in (old, new) or "enum" in (old, new):
        return "old bytes cannot be read as the new type"
    return "the wire encodings differ: old state fails to decode or changes meaning"


# The readers that take a value past their top as another value, not as an error: a bool
# reads any non-zero as true, and these two's-complement kinds, as wide as their wire, read
# the upper half as negative numbers.
_WRAPS_NEGATIVE = frozenset({"int64", "sfixed32", "sfixed64"})


def _range_reason(writer: str, wk: ScalarKind, rk: ScalarKind) -> str:
    if wk.lo < rk.lo:
        return (
            f"{writer} values below {rk.lo} fail to decode or change sign "
            f"({wk.name} -> {rk.name})"
        )
    if rk.name == "bool":
        return f"{writer} values over 1 read as true ({wk.name} holds up to {wk.hi})"
    if rk.proto in _WRAPS_NEGATIVE:
        return (
            f"{writer} values over {rk.hi} read as negative numbers "
            f"({wk.name} holds up to {wk.hi})"
        )
    return f"{writer} values over {rk.hi} fail to decode ({wk.name} holds up to {wk.hi})"


# ---------------------------------------------------------------------------------------------
# Entry point


def _directions(direction: str) -> set[str]:
    if direction == BOTH:
        return {BACKWARD, FORWARD}
    if direction in (BACKWARD, FORWARD):
        return {direction}
    raise ValueError(f"direction must be backward, forward or both, not {direction!r}")


def _roots_of(roots_or_modules: Iterable[type | str] | type | str) -> list[type]:
    items = (
        [roots_or_modules] if isinstance(roots_or_modules, (type, str)) else roots_or_modules
    )
    roots: list[type] = []
    modules: list[str] = []
    for item in items:
        if isinstance(item, str):
            modules.append(item)
        else:
            roots.append(item)
    if modules:
        roots += [r for r in load_roots(modules) if r not in roots]
    return roots


def check_compatible(
    roots_or_modules: Iterable[type | str] | type | str,
    against: str | os.PathLike[str],
    direction: str = BACKWARD,
    *,
    json: bool = False,
) -> Report:
    """Check the saved-state types of ``roots_or_modules`` against the baseline ``against``.

    ``roots_or_modules``: root classes and/or module names (imported, as ``savestate check``
    does). ``against``: a directory of ``.proto`` files of an earlier release, or
    ``git:REF:DIR`` to read DIR as of a git revision (DIR from the root of the repository,
    ``./DIR`` or ``../DIR`` from the current directory, as ``git show`` reads them).
    ``direction``: ``"backward"`` (new code reads old state; the default), ``"forward"`` (old
    code reads new state) or ``"both"``; findings of the other direction are reported as
    warnings. ``json``: changes that break the proto3 JSON round trip (renamed fields, enum
    values, Oneof variants) are errors, not warnings. Every finding names the baseline file and
    line. Raises :class:`BaselineError` when the baseline cannot be read,
    :class:`DiscoveryError` for a module that cannot be imported or defines no roots,
    :class:`SchemaError` for a bad declaration: all ``SavestateError``s.
    """
    checked = _directions(direction)
    with baseline_directory(against) as (directory, shown):
        old = load_baseline(directory)
    new = model_side(_roots_of(roots_or_modules))
    checker = _Checker(old, new, checked, json)
    checker.run()
    findings = [
        dataclasses.replace(f, file=f"{shown.rstrip('/')}/{f.file}") if f.file else f
        for f in checker.findings
    ]
    return report_of(findings, direction, _baseline_notes(old), json_checked=json)


def report_of(
    findings: Iterable[Finding],
    direction: str,
    notes: Iterable[str] = (),
    *,
    json_checked: bool = False,
) -> Report:
    """A :class:`Report` of ``findings``, each once, errors first, then by path."""
    unique = {
        (f.rule, f.direction, f.path, f.number, f.change, f.file): f for f in findings
    }
    ordered = sorted(
        unique.values(),
        key=lambda f: (_LEVEL_ORDER[f.level], f.path, f.number or 0, f.rule, f.direction),
    )
    return Report(tuple(ordered), direction, tuple(notes), json_checked)


def _baseline_notes(old: Side) -> list[str]:
    notes = []
    if old.plain_files:
        notes.append(
            f"{len(old.plain_files)} baseline file(s) without savestate annotations "
            f"({', '.join(old.plain_files)}): integer widths of uint32/sint32 (a one-element "
            "tuple's too), array lengths and defaults were not compared (write baselines with "
            "`savestate proto`, without --plain)"
        )
    if not old.root_marks:
        notes.append(
            "the baseline marks no saved-state roots (no `// savestate: root` lines): deleted "
            "roots cannot be checked (write baselines with `savestate proto`, without --plain)"
        )
    return notes
