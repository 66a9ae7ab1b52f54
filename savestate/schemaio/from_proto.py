"""savestate declarations generated from ``.proto`` files: the wire plan read in reverse.

The input is parsed by ``protoc`` (from ``grpcio-tools``, the ``savestate[check]`` extra) into
descriptors, never by a home-made parser. Each proto package becomes one Python module, in a
tree that mirrors the packages (``chipset.pic`` -> ``chipset/pic.py``; a package that is also
the parent of another -> ``.../__init__.py``), so that OUTDIR on ``sys.path`` imports them.

The shapes that savestate's emitter (:mod:`savestate.schemaio.proto`) and the Rust reference
writer produce are recognised and turned back into the Python they came from:

=====================================================  ============================================
``.proto``                                             Python
=====================================================  ============================================
a message whose only content is ``oneof variant``     a ``Oneof``, one subclass per member
member ``.google.protobuf.Empty``                      a unit variant
member ``.google.protobuf.*Value``, or a nested        a tuple variant (``tuple=True``)
message ``{field1 = 1; ...}`` named after it
member: a nested message named after it               a struct variant
member: any other type                                 a transparent variant (``transparent=True``)
nested ``{field1 = 1; field2 = 2; ...}`` named after   ``tuple[...]``
its field (one field: a scalar or enum)
nested ``{field1 = 1}`` holding a sequence or a        the wrapper of a nested container:
message, named after its field                         ``list[T] | None``, ``list[T | None]``, ...
``map<K, V>``, or repeated nested ``{key; value}``     ``dict[K, V]``
``google.protobuf.Any`` / ``Duration``                 ``SavedStateBlob`` / ``timedelta``
a proto ``enum``                                       an ``IntEnum`` (the ``ENUM_`` prefix dropped)
``optional`` scalar                                    ``T | None``
a singular message field                               ``T | None`` (it has presence in proto3; in
                                                       savestate's annotated text, only one marked
                                                       ``// nullable``)
``// u8``, ``// length 4``, ``// packed repr only``    the width, ``field(length=4)``
``reserved``                                           ``reserved=``
=====================================================  ============================================

A file carrying savestate's header line (``// savestate: widths and lengths in trailing
comments.``) says every width; elsewhere ``uint32`` and ``sint32`` become ``u32`` and ``i32``,
with a comment that a narrower width writes the same bytes. A nested message that matches no
shape (hand-written files nest ordinary messages) becomes a top-level class named after its
path (``OuterInner``), with a comment: its bytes are the same, its full name is not.

Leading comments become docstrings and ``doc=``. Top-level messages that no other message uses
are registered as roots (``@savedstate``) unless the roots are named. Features without a savestate
form are a :class:`FromProtoError` naming the message and field: proto2 ``required``, groups,
extensions, non-zero proto2 defaults, editions, oneofs beside other fields.
"""

from __future__ import annotations

import base64
import json
import keyword
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchemaError
from ..model import scalars
from ..model.names import WRAPPER_MESSAGES, snake_case, upper_camel_case
from ..model.plan import NARROW
from .compat import BaselineError, comment_notes, run_protoc

__all__ = ["FromProtoError", "Generated", "ProtoInputError", "generate", "write"]

LINE = 100  # the line length of the generated code (ruff's default in this project)


class FromProtoError(SchemaError):
    """A ``.proto`` construct that has no savestate form, or input that cannot be read (the
    path names the message and field)."""


class ProtoInputError(FromProtoError):
    """The input cannot be read: a missing file or directory, or ``.proto`` text that protoc
    rejects (its messages are included)."""


# FieldDescriptorProto.Type and .Label values.
_DOUBLE, _FLOAT, _INT64, _UINT64, _INT32, _FIXED64, _FIXED32, _BOOL, _STRING = range(1, 10)
_GROUP, _MESSAGE, _BYTES, _UINT32, _ENUM, _SFIXED32, _SFIXED64, _SINT32, _SINT64 = range(10, 19)
_REQUIRED, _REPEATED = 2, 3

_SCALAR = {
    _DOUBLE: "f64", _FLOAT: "f32", _INT64: "int64", _UINT64: "u64", _INT32: "int32",
    _FIXED64: "fixed64", _FIXED32: "fixed32", _BOOL: "bool", _STRING: "str", _BYTES: "bytes",
    _UINT32: "u32", _SFIXED32: "sfixed32", _SFIXED64: "sfixed64", _SINT32: "i32", _SINT64: "i64",
}
# Each scalar annotation's kind (its range), to check a recorded default.
_KINDS: dict[str, scalars.ScalarKind] = {
    k.name: k for k in vars(scalars).values() if isinstance(k, scalars.ScalarKind)
}
# The narrower kinds a width comment may give each proto type.
_NARROWER = {_UINT32: ("u8", "u16"), _SINT32: ("i8", "i16")}
_PROTO_TO_PY = {
    "double": "f64", "float": "f32", "int64": "int64", "uint64": "u64", "int32": "int32",
    "uint32": "u32", "bool": "bool", "string": "str", "bytes": "bytes",
}
_VALUE_WRAPPERS = {
    f"google.protobuf.{name}": _PROTO_TO_PY[proto] for proto, name in WRAPPER_MESSAGES.items()
}
_BUILTINS = frozenset({"bool", "str", "bytes"})
_EMPTY = "google.protobuf.Empty"
_ANY = "google.protobuf.Any"
_DURATION = "google.protobuf.Duration"
_ZERO_DEFAULTS = frozenset({"", "0", "false", "0.0", "-0", "0e0"})
# savestate's emitter writes this comment line before each root (annotated files only).
ROOT_MARK = "savestate: root"


# ---------------------------------------------------------------------------------------------
# The descriptors, read once


@dataclass(eq=False)
class _Field:
    name: str
    number: int
    type: int
    type_name: str  # full name without the leading dot, for messages and enums
    label: int
    optional: bool  # explicit presence: proto3 `optional`, or a proto2 optional scalar
    oneof: int | None
    packed: bool | None
    doc: str | None
    notes: dict[str, Any]
    owner: _Message

    @property
    def repeated(self) -> bool:
        return self.label == _REPEATED

    @property
    def where(self) -> list[str]:
        return [*self.owner.where, self.name]


@dataclass(eq=False)
class _Enum:
    full: str
    name: str
    package: str
    values: list[tuple[str, int, str | None]]
    doc: str | None
    parent: _Message | None
    order: tuple[int, ...] = ()


@dataclass(eq=False)
class _Message:
    full: str
    name: str
    package: str
    proto2: bool
    annotated: bool
    doc: str | None
    parent: _Message | None
    fields: list[_Field] = field(default_factory=list)
    nested: list[_Message] = field(default_factory=list)
    enums: list[_Enum] = field(default_factory=list)
    oneofs: list[str] = field(default_factory=list)  # real oneofs, by index (else "")
    reserved: list[tuple[int, int]] = field(default_factory=list)
    reserved_names: list[str] = field(default_factory=list)
    map_entry: bool = False
    order: tuple[int, ...] = ()
    marked_root: bool = False  # savestate's emitter wrote its root mark before the message

    @property
    def where(self) -> list[str]:
        return self.full.removeprefix(f"{self.package}.").split(".")


def _notes(comment: str, where: list[str]) -> dict[str, Any]:
    """The notes of a trailing comment; one savestate cannot read is a FromProtoError."""
    try:
        return comment_notes(comment)
    except BaselineError as exc:
        raise FromProtoError(str(exc), where) from exc


def _clean_comment(text: str) -> str | None:
    """A comment as protoc gives it (each line with its leading space) as doc text."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.split("\n")]
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) or None


def _is_zero_default(value: str) -> bool:
    try:
        return value.lower() in _ZERO_DEFAULTS or float(value) == 0
    except ValueError:
        return False


class _Reader:
    """Every message and enum of a descriptor set, with its comments and notes."""

    def __init__(self, data: bytes, skip: set[str]) -> None:
        from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]

        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(data)
        self.messages: dict[str, _Message] = {}
        self.enums: dict[str, _Enum] = {}
        self.top: list[_Message | _Enum] = []
        self.packages: dict[str, list[str]] = {}  # package -> its files
        for index, fd in enumerate(fds.file):
            if fd.name in skip:
                continue
            self._file(fd, index)

    def _file(self, fd: Any, index: int) -> None:
        if fd.syntax == "editions":
            raise FromProtoError(
                f"{fd.name}: protobuf editions have no savestate form (use proto3)"
            )
        if not fd.package:
            raise FromProtoError(f"{fd.name}: a file without a package has no savestate module")
        for part in fd.package.split("."):
            if not part.isidentifier() or keyword.iskeyword(part):
                raise FromProtoError(
                    f"{fd.name}: package {fd.package} is not a Python module path ({part!r})"
                )
        if fd.extension:
            raise FromProtoError(
                f"{fd.name}: extensions have no savestate form", [fd.extension[0].extendee]
            )
        self.packages.setdefault(fd.package, []).append(fd.name)
        leading: dict[tuple[int, ...], str] = {}
        trailing: dict[tuple[int, ...], str] = {}
        spans: dict[tuple[int, ...], int] = {}
        annotated = False
        for loc in fd.source_code_info.location:
            path = tuple(loc.path)
            if loc.leading_comments:
                leading[path] = loc.leading_comments
            if loc.trailing_comments:
                trailing[path] = loc.trailing_comments
            if loc.span:
                spans[path] = loc.span[0]
            for detached in loc.leading_detached_comments:
                if any(line.strip().startswith("savestate:") for line in detached.split("\n")):
                    annotated = True
        proto2 = fd.syntax in ("", "proto2")
        ctx = (fd, leading, trailing, spans, annotated, proto2, index)
        for i, md in enumerate(fd.message_type):
            self.top.append(self._message(md, (4, i), None, ctx))
        for i, ed in enumerate(fd.enum_type):
            self.top.append(self._enum(ed, (5, i), None, ctx))

    def _enum(self, ed: Any, path: tuple[int, ...], parent: _Message | None, ctx: Any) -> _Enum:
        fd, leading, trailing, spans, annotated, _, index = ctx
        scope = parent.full if parent else fd.package
        values = [
            (v.name, v.number, _clean_comment(leading.get((*path, 2, j), "")))
            for j, v in enumerate(ed.value)
            # The zero savestate adds for proto3 to an enum without one is no member: kept,
            # the class would read a missing field as it instead of refusing it.
            if not (
                annotated and v.number == 0
                and _notes(trailing.get((*path, 2, j), ""), [ed.name, v.name]).get("no_zero")
            )
        ]
        found = _Enum(
            f"{scope}.{ed.name}", ed.name, fd.package, values,
            _clean_comment(leading.get(path, "")), parent, (index, spans.get(path, 0)),
        )
        self.enums[found.full] = found
        return found

    def _message(
        self, md: Any, path: tuple[int, ...], parent: _Message | None, ctx: Any
    ) -> _Message:
        fd, leading, trailing, spans, annotated, proto2, index = ctx
        scope = parent.full if parent else fd.package
        doc = _clean_comment(leading.get(path, ""))
        marked = doc is not None and doc.split("\n")[-1] == ROOT_MARK
        if marked:
            assert doc is not None
            doc = _clean_comment(" " + doc.rpartition(ROOT_MARK)[0].replace("\n", "\n "))
        m = _Message(
            f"{scope}.{md.name}", md.name, fd.package, proto2, annotated, doc, parent,
            map_entry=md.options.map_entry, order=(index, spans.get(path, 0)),
            marked_root=marked,
        )
        where = m.where
        if md.extension_range or md.extension:
            raise FromProtoError("extensions have no savestate form", where)
        real = {
            i for i, _ in enumerate(md.oneof_decl)
            if any(f.HasField("oneof_index") and f.oneof_index == i and not f.proto3_optional
                   for f in md.field)
        }
        m.oneofs = [o.name if i in real else "" for i, o in enumerate(md.oneof_decl)]
        m.reserved = [(r.start, r.end) for r in md.reserved_range]
        m.reserved_names = list(md.reserved_name)
        for j, fdp in enumerate(md.field):
            fwhere = [*where, fdp.name]
            if fdp.label == _REQUIRED:
                raise FromProtoError("proto2 `required` has no savestate form", fwhere)
            if fdp.type == _GROUP:
                raise FromProtoError("proto2 groups have no savestate form", fwhere)
            if fdp.HasField("default_value") and not _is_zero_default(fdp.default_value):
                raise FromProtoError(
                    f"a proto2 default ({fdp.default_value}) has no savestate form: savestate "
                    "decodes a missing field to the zero of its type",
                    fwhere,
                )
            oneof = fdp.oneof_index if fdp.HasField("oneof_index") else None
            explicit = fdp.proto3_optional or (
                proto2 and fdp.label != _REPEATED and oneof is None and fdp.type != _MESSAGE
            )
            if fdp.proto3_optional:
                oneof = None
            m.fields.append(
                _Field(
                    name=fdp.name, number=fdp.number, type=fdp.type,
                    type_name=fdp.type_name.lstrip("."), label=fdp.label, optional=explicit,
                    oneof=oneof,
                    packed=fdp.options.packed if fdp.options.HasField("packed") else None,
                    doc=_clean_comment(leading.get((*path, 2, j), "")),
                    notes=_notes(trailing.get((*path, 2, j), ""), fwhere), owner=m,
                )
            )
        for j, nd in enumerate(md.nested_type):
            m.nested.append(self._message(nd, (*path, 3, j), m, ctx))
        for j, ed in enumerate(md.enum_type):
            m.enums.append(self._enum(ed, (*path, 4, j), m, ctx))
        self.messages[m.full] = m
        return m


# ---------------------------------------------------------------------------------------------
# Python types as the generator builds them


@dataclass(frozen=True)
class _Py:
    """An annotation: its text, and what the lowering rules need to know about it."""

    text: str
    seq: bool = False  # a sequence: an optional, a list other than bytes, a dict
    optional: bool = False
    message: bool = False  # one message record on the wire (a class, a tuple, a blob)


def _opt(t: _Py) -> _Py:
    return _Py(f"{t.text} | None", seq=True, optional=True)


@dataclass
class _FieldOut:
    """A field of a generated class: attribute, annotation, number, length, doc, comments."""

    name: str
    annotation: str
    number: int
    length: int | None = None
    doc: str | None = None
    comments: list[str] = field(default_factory=list)
    default: str | None = None


@dataclass
class _ClassOut:
    name: str
    bases: str
    doc: str | None
    fields: list[_FieldOut] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    decorator: str | None = None
    members: list[tuple[str, int, str | None]] | None = None  # an IntEnum's members


# ---------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` made: the source of each module by path relative to OUTDIR
    (``__init__.py`` files of the package tree included), the module of each proto package,
    and the full names of the roots."""

    files: dict[str, str]
    modules: dict[str, str]
    roots: tuple[str, ...]
    types: tuple[str, ...]  # the full proto name of every generated message and Oneof


class _Module:
    """One proto package's module: its classes, and the names it imports."""

    def __init__(self, package: str, module: str) -> None:
        self.package = package
        self.module = module
        self.classes: list[_ClassOut] = []
        self.savestate: set[str] = set()
        self.stdlib: dict[str, set[str]] = {}
        self.imports: dict[str, dict[str, str]] = {}  # module -> {name: alias}
        self.taken: set[str] = {"PACKAGE"}
        self.names: dict[str, str] = {}  # full proto name -> local class name


class _Generator:
    def __init__(self, reader: _Reader, prefix: str | None) -> None:
        self.r = reader
        self.prefix = prefix
        self.modules: dict[str, _Module] = {}
        packages = sorted(reader.packages)
        for package in packages:
            parent = any(p.startswith(package + ".") for p in packages)
            module = f"{prefix}.{package}" if prefix else package
            self.modules[package] = _Module(package, module)
            self.modules[package].taken |= {"__init__"} if parent else set()
        self.refs = self._count_refs()
        self.synthetic: set[str] = set()
        self.hoisted: list[_Message | _Enum] = []
        self.oneof_classes: set[str] = set()
        self._plan_names()

    # -- which nested messages are savestate's synthetic ones

    def _count_refs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.r.messages.values():
            for f in m.fields:
                if f.type_name:
                    counts[f.type_name] = counts.get(f.type_name, 0) + 1
        return counts

    def _is_oneof(self, m: _Message) -> bool:
        real = [name for name in m.oneofs if name]
        return (
            len(real) == 1
            and bool(m.fields)
            and all(f.oneof is not None and m.oneofs[f.oneof] for f in m.fields)
        )

    def _candidate(self, m: _Message, scope: _Message, name: str) -> bool:
        """Whether ``m`` can be a message savestate nests for a field named ``name`` of
        ``scope``: nested there, named after the field, used once, plain."""
        return (
            m.parent is scope
            and m.name == upper_camel_case(name)
            and self.refs.get(m.full, 0) == 1
            and not m.map_entry
            and not m.enums
            and not m.reserved
            and not any(m.oneofs)
            and m.doc is None
        )

    @staticmethod
    def _tuple_shaped(m: _Message) -> bool:
        n = len(m.fields)
        if n == 0 or [f.name for f in m.fields] != [f"field{i}" for i in range(1, n + 1)]:
            return False
        if [f.number for f in m.fields] != list(range(1, n + 1)):
            return False
        if n > 1:
            return True
        f = m.fields[0]
        if f.repeated or f.optional:
            return False
        # `{Msg field1 = 1}` is a one-element tuple or the wrapper of `Msg | None`: savestate's
        # annotated text tells them apart by the wrapper's `// nullable`; other text, never.
        return f.type != _MESSAGE or (m.annotated and not f.notes.get("nullable"))

    @staticmethod
    def _wrapper_shaped(m: _Message) -> bool:
        return (
            len(m.fields) == 1
            and m.fields[0].name == "field1"
            and m.fields[0].number == 1
            and not _Generator._tuple_shaped(m)
        )

    @staticmethod
    def _entry_shaped(m: _Message) -> bool:
        return [(f.name, f.number) for f in m.fields] == [("key", 1), ("value", 2)] and not any(
            f.repeated for f in m.fields[:1]
        )

    def _take(self, m: _Message) -> None:
        self.synthetic.add(m.full)

    # -- names

    def _plan_names(self) -> None:
        for d in sorted(self.r.top, key=lambda d: d.order):
            self._name(d)

    def _name(self, d: _Message | _Enum, local: str | None = None) -> None:
        mod = self.modules[d.package]
        name = local or d.name
        if name in mod.taken or name in _RESERVED_NAMES or keyword.iskeyword(name):
            if isinstance(d, _Enum):
                raise FromProtoError(
                    f"enum {d.name} clashes with another name in module {mod.module}",
                    [d.name],
                )
            name = f"{name}Message"
            while name in mod.taken:
                name += "_"
        mod.taken.add(name)
        mod.names[d.full] = name

    # -- references to types

    def ref(self, full: str, here: _Module, where: list[str]) -> str:
        """The local name of the class of ``full``, importing it into ``here`` if needed."""
        if full not in self.r.messages and full not in self.r.enums:
            raise FromProtoError(f"type {full} has no savestate form", where)
        d: _Message | _Enum = self.r.messages.get(full) or self.r.enums[full]
        if full not in self.modules[d.package].names:
            self._hoist(d)
        owner = self.modules[d.package]
        name = owner.names[full]
        if owner is here:
            return name
        imported = here.imports.setdefault(owner.module, {})
        if name not in imported:
            alias = name
            if alias in here.taken:
                alias = upper_camel_case(d.package.rpartition(".")[2]) + name
                while alias in here.taken:
                    alias += "_"
            here.taken.add(alias)
            imported[name] = alias
        return imported[name]

    def _hoist(self, d: _Message | _Enum) -> None:
        """A nested message or enum savestate would not nest: a top-level class named after
        its path in the .proto."""
        path = d.full.removeprefix(f"{d.package}.").split(".")
        self._name(d, "".join(path))
        self.hoisted.append(d)

    # -- field types

    def scalar(self, f: _Field, mod: _Module, kind: Any = None) -> tuple[str, list[str]]:
        text = _SCALAR.get(f.type)
        comments: list[str] = []
        if f.type == _ENUM:
            return self.ref(f.type_name, mod, f.where), comments
        assert text is not None
        narrow = kind.name if kind is not None else f.notes.get("kind")
        narrow = narrow.name if narrow is not None and not isinstance(narrow, str) else narrow
        if narrow is not None and narrow in _NARROWER.get(f.type, ()):
            text = narrow
        elif f.type in _NARROWER and not f.owner.annotated:
            smaller = " or ".join(_NARROWER[f.type])
            comments.append(f"{f.name}: {smaller} would write the same bytes")
        if text not in _BUILTINS:
            mod.savestate.add(text)
        return text, comments

    def field_type(
        self, f: _Field, mod: _Module, struct: bool
    ) -> tuple[_Py, int | None, list[str]]:
        """The annotation of field ``f``: ``struct`` for a field of a class (where a message
        is ``T | None``), else an element of a tuple or map entry."""
        length = f.notes.get("length")
        # Refused here, as a declaration would refuse it: else the module does not import.
        if length is not None and length < 1:
            raise FromProtoError(
                f"`// length {length}`: a fixed-length array needs length >= 1", f.where
            )
        if (length is not None and not f.repeated
                and f.type not in (_BYTES, _MESSAGE)):
            raise FromProtoError(
                "a `// length N` field must be bytes, repeated or a wrapper message", f.where
            )
        if f.type == _MESSAGE and f.type_name in self.r.messages:
            m = self.r.messages[f.type_name]
            if m.map_entry:
                return self.map_type(f, m, mod)
        if f.repeated:
            if f.type == _MESSAGE:
                m = self.r.messages.get(f.type_name)  # type: ignore[assignment]
                if m is not None and self._candidate(m, f.owner, f.name) and \
                        self._entry_shaped(m):
                    key = self.entry_type(m.fields[0], mod, allow_seq=False)
                    value = self.entry_type(m.fields[1], mod, allow_seq=True)
                    if key is not None and value is not None:
                        self._take(m)
                        return (_Py(f"dict[{key[0].text}, {value[0].text}]", seq=True),
                                None, key[1] + value[1])
                elem = self.element(f, mod)
                return _Py(f"list[{elem.text}]", seq=True), None, []
            text, comments = self.scalar(f, mod)
            if f.notes.get("array") and length is None:
                comments.append(
                    f"{f.name}: a fixed-length array in the source (packed repr only): "
                    "declare it with length=N"
                )
            unpacked = f.packed is False or (f.owner.proto2 and f.packed is None)
            if unpacked and f.type not in (_STRING, _BYTES):
                comments.append(f"{f.name}: written packed (readers accept both forms)")
            t = _Py(f"list[{text}]", seq=True)
            if length is not None and f.notes.get("nullable"):
                t = _opt(t)  # a fixed array that may be None: its text says so only here
            return t, length, comments
        if f.type == _MESSAGE:
            if length is not None:
                return self.fixed_wrapper(f, mod, length)
            t = self.value_of(f, mod, allow_seq=True)
            # savestate's annotated text marks the message fields that may be None (`//
            # nullable`); elsewhere any message field may be absent, as in proto3.
            nullable = f.notes.get("nullable") or (struct and not f.owner.annotated)
            if nullable and (t.message or f.owner.annotated) and not t.optional:
                t = _opt(t)
            return t, None, []
        text, comments = self.scalar(f, mod)
        t = _Py(text)
        if f.optional:
            t = _opt(t)
        return t, length, comments

    def fixed_wrapper(self, f: _Field, mod: _Module, length: int) -> tuple[_Py, int, list[str]]:
        m = self.r.messages.get(f.type_name)
        if (
            m is None
            or not self._candidate(m, f.owner, f.name)
            or len(m.fields) != 1
            or not m.fields[0].repeated
        ):
            raise FromProtoError(
                "a `// length N` message field must be a wrapper {repeated T field1 = 1}",
                f.where,
            )
        self._take(m)
        inner, _, comments = self.field_type(m.fields[0], mod, struct=False)
        return inner, length, comments

    def element(self, f: _Field, mod: _Module) -> _Py:
        """The type of one element of the repeated message field ``f``."""
        m = self.r.messages.get(f.type_name)
        if m is not None and self._candidate(m, f.owner, f.name) and self._wrapper_shaped(m):
            self._take(m)
            return self.wrapped(m, mod)
        return self.value_of(f, mod, allow_seq=False)

    def wrapped(self, m: _Message, mod: _Module) -> _Py:
        """The value a wrapper message ``{field1 = 1}`` holds: always a sequence."""
        t, _, _ = self.field_type(m.fields[0], mod, struct=True)
        return t if t.seq else _opt(t)

    def value_of(self, f: _Field, mod: _Module, allow_seq: bool) -> _Py:
        """The type of one record of the message field ``f``, where a sequence may (wrapped)
        stand or not."""
        full = f.type_name
        if full == _DURATION:
            mod.stdlib.setdefault("datetime", set()).add("timedelta")
            return _Py("timedelta")
        if full == _ANY:
            mod.savestate.add("SavedStateBlob")
            return _Py("SavedStateBlob", message=True)
        if full in _VALUE_WRAPPERS:
            text = _VALUE_WRAPPERS[full]
            if text not in _BUILTINS:
                mod.savestate.add(text)
            return _Py(f"tuple[{text}]", message=True)
        if full.startswith("google.protobuf."):
            raise FromProtoError(f"{full} has no savestate form", f.where)
        m = self.r.messages.get(full)
        if m is not None and self._candidate(m, f.owner, f.name):
            if self._tuple_shaped(m):
                self._take(m)
                elems = [self.field_type(g, mod, struct=False)[0].text for g in m.fields]
                return _Py(f"tuple[{', '.join(elems)}]", message=True)
            if self._wrapper_shaped(m):
                self._take(m)
                inner = self.wrapped(m, mod)
                # Where a sequence may stand, the wrapper is its `| None` (savestate's annotated
                # text marks that field `// nullable`), else a one-element tuple.
                tuple_of = inner.optional or not allow_seq or (
                    f.owner.annotated and not f.notes.get("nullable")
                )
                if tuple_of:
                    return _Py(f"tuple[{inner.text}]", message=True)
                return _opt(inner)
        return _Py(self.ref(full, mod, f.where), message=True)

    def entry_type(
        self, f: _Field, mod: _Module, allow_seq: bool
    ) -> tuple[_Py, list[str]] | None:
        """The key or value of a map entry message (None: not one savestate writes)."""
        if f.type == _MESSAGE and not f.repeated:
            m = self.r.messages.get(f.type_name)
            if m is not None and m.map_entry:
                return None
            t = self.value_of(f, mod, allow_seq=allow_seq)
            # A value that may be a sequence is an entry message's: a plain message value
            # would have made a proto map (unless its key cannot be a map key, which only
            # savestate's annotated text tells by its `// nullable`), so it is `T | None`.
            nullable = bool(f.notes.get("nullable")) if f.owner.annotated else t.message
            return (_opt(t) if allow_seq and nullable else t), []
        t, length, comments = self.field_type(f, mod, struct=False)
        if length is not None:
            return None
        if not allow_seq and t.seq:
            return None
        return t, comments

    def map_type(
        self, f: _Field, entry: _Message, mod: _Module
    ) -> tuple[_Py, int | None, list[str]]:
        key_f, value_f = entry.fields
        key, comments = self.scalar(key_f, mod, f.notes.get("key"))
        if value_f.type == _MESSAGE:
            # The message a map's value needs is nested beside the map field, named after it.
            view = _Field(
                f.name, 2, _MESSAGE, value_f.type_name, 1, False, None, None, None, {}, f.owner
            )
            value = self.value_of(view, mod, allow_seq=False).text
        else:
            value, more = self.scalar(value_f, mod, f.notes.get("value"))
            comments += more
        return _Py(f"dict[{key}, {value}]", seq=True), None, comments

    # -- classes

    def struct(self, m: _Message, local: str, root: bool) -> _ClassOut:
        mod = self.modules[m.package]
        for f in m.fields:
            if f.oneof is not None:
                raise FromProtoError(
                    f"oneof {m.oneofs[f.oneof]} beside other fields has no savestate form "
                    "(a Rust-style enum is a message holding only `oneof variant`)",
                    [*m.where, m.oneofs[f.oneof]],
                )
        options = ["package=PACKAGE"]
        if local != m.name and m.parent is None:
            options.append(f"name={_literal(m.name)}")
        elif m.parent is not None and local != m.name:
            options.append(f"name={_literal(local)}")
        out = _ClassOut(local, "", m.doc)
        reserved = self.reserved(m, out)
        if reserved:
            options.append(f"reserved={reserved}")
        out.bases = ", ".join(["Protobuf", *options])
        mod.savestate.add("Protobuf")
        if root:
            out.decorator = "savedstate"
            mod.savestate.add("savedstate")
        if m.parent is not None:
            out.comments.append(f"Nested in the .proto: {m.full} there.")
        out.fields = [self.struct_field(f, mod) for f in m.fields]
        return out

    def struct_field(self, f: _Field, mod: _Module, attr: str | None = None) -> _FieldOut:
        name = attr or f.name
        _check_attr(name, f.where)
        t, length, comments = self.field_type(f, mod, struct=True)
        out = _FieldOut(name, t.text, f.number, length, f.doc, comments)
        if "default" in f.notes and not f.repeated and f.type != _MESSAGE:
            # savestate's emitter wrote a non-zero default: the field is `optional` on the wire
            # only because it is always written; in Python it is the plain type.
            out.annotation = t.text.removesuffix(" | None")
            out.default = self.default(f, mod, out.annotation)
        elif f.notes.get("has_default"):
            # Only a scalar's default is recorded as a value: without one, this field is
            # required, and old state that lacks it would no longer decode.
            out.comments.append(
                "The baseline declares a default here, which its .proto does not record: "
                "declare the same one (default= or default_factory=)."
            )
        return out

    def default(self, f: _Field, mod: _Module, annotation: str = "") -> str:
        """The Python expression of the default recorded (as JSON) in ``f``'s comment, checked
        against the field's type ``annotation`` (a module that declares a default its field
        cannot hold does not import)."""
        text = f.notes["default"]
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise FromProtoError(f"the default {text} is not JSON", f.where) from exc
        if f.type == _ENUM:
            e = self.r.enums[f.type_name]
            for member, number, *_ in self.members(e):
                if number == value:
                    return f"{self.ref(e.full, mod, f.where)}.{member}"
            raise FromProtoError(f"the default {text} is no value of {e.name}", f.where)
        kind = _KINDS.get(annotation)
        if f.type == _BYTES and isinstance(value, str):
            try:
                return repr(base64.b64decode(value, validate=True))
            except ValueError as exc:
                raise FromProtoError(f"the default {text} is not base64", f.where) from exc
        if f.type == _STRING and isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:  # JSON's "\ud800": a lone surrogate
                    raise FromProtoError(
                        f"the default {text} is not UTF-8 text ({exc.reason})", f.where
                    ) from None
            return _literal(value)
        if f.type == _BOOL and isinstance(value, bool):
            return repr(value)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind is not None and kind.is_integer and is_int:
            if not kind.lo <= value <= kind.hi:
                raise FromProtoError(
                    f"the default {text} is out of range for {kind.name}", f.where
                )
            return repr(value)
        if f.type in (_DOUBLE, _FLOAT) and (is_int or isinstance(value, float)):
            as_float = float(value)
            # json reads NaN and Infinity, whose repr is no Python expression
            return repr(as_float) if math.isfinite(as_float) else f'float("{as_float!r}")'
        raise FromProtoError(
            f"the default {text} does not fit the field ({annotation or 'its type'})", f.where
        )

    def reserved(self, m: _Message, out: _ClassOut) -> str:
        parts: list[str] = []
        for start, end in m.reserved:
            if end - start == 1:
                parts.append(str(start))
            else:
                parts.append(f"range({start}, {end})")
        if m.reserved_names:
            out.comments.append(f"reserved names in the .proto: {', '.join(m.reserved_names)}")
        if not parts:
            return ""
        return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"

    def oneof(self, m: _Message, local: str) -> list[_ClassOut]:
        mod = self.modules[m.package]
        mod.savestate.add("Oneof")
        name = next(n for n in m.oneofs if n)
        head = _ClassOut(local, "Oneof, package=PACKAGE", m.doc)
        if name != "variant":
            head.comments.append(f"The oneof is named {name} in the .proto (savestate: variant).")
        if m.reserved or m.reserved_names:
            head.comments.append("The .proto reserves numbers here; a Oneof keeps no reservations.")
        if m.parent is not None:
            head.comments.append(f"Nested in the .proto: {m.full} there.")
        out = [head]
        for f in m.fields:
            out.append(self.variant(m, f, local, mod))
        return out

    def variant(self, m: _Message, f: _Field, oneof: str, mod: _Module) -> _ClassOut:
        where = f.where
        nested = self.r.messages.get(f.type_name) if f.type == _MESSAGE else None
        kind = "transparent"
        fields: list[_FieldOut] = []
        proto_name = upper_camel_case(f.name)
        if f.type == _MESSAGE and f.type_name == _EMPTY:
            kind = "unit"
        elif f.type == _MESSAGE and f.type_name in _VALUE_WRAPPERS:
            kind = "tuple"
            fields = [_FieldOut("value", self.value_of(f, mod, False).text[6:-1], 1)]
        elif nested is not None and nested.parent is m and self.refs.get(nested.full) == 1 and \
                not nested.map_entry and not any(nested.oneofs) and not nested.enums:
            length = f.notes.get("length")
            if length is not None and nested.name == proto_name:
                t, _, _ = self.fixed_wrapper(f, mod, length)
                fields = [_FieldOut("value", t.text, 1, length)]
            elif (nested.name == proto_name and self._tuple_shaped(nested)) or (
                nested.name == proto_name and self._wrapper_shaped(nested)
            ):
                kind = "tuple"
                self._take(nested)
                attrs = ["value"] if len(nested.fields) == 1 else [
                    g.name for g in nested.fields
                ]
                fields = [
                    self.struct_field(g, mod, a)
                    for g, a in zip(nested.fields, attrs, strict=True)
                ]
            elif snake_case(nested.name) == f.name and nested.fields and not nested.reserved:
                kind = "struct"
                proto_name = nested.name
                self._take(nested)
                fields = [self.struct_field(g, mod) for g in nested.fields]
        if kind == "transparent" and not fields:
            if f.type == _MESSAGE:
                text = self.value_of(f, mod, allow_seq=False).text
                fields = [_FieldOut("value", text, 1)]
            else:
                text, comments = self.scalar(f, mod)
                fields = [_FieldOut("value", text, 1, f.notes.get("length"), None, comments)]
        if snake_case(proto_name) != f.name:
            raise FromProtoError(
                f"no variant class name gives the member name {f.name!r} (savestate names "
                "a member after its variant class, in snake_case)",
                where,
            )
        local = proto_name
        options = [f"variant={f.number}"]
        if local in mod.taken or local in _RESERVED_NAMES or keyword.iskeyword(local):
            local = f"{oneof}{proto_name}"
            while local in mod.taken:
                local += "_"
            options.append(f"name={_literal(proto_name)}")
        mod.taken.add(local)
        if kind == "tuple":
            options.append("tuple=True")
        elif kind == "transparent":
            options.append("transparent=True")
        return _ClassOut(local, ", ".join([oneof, *options]), f.doc, fields)

    @staticmethod
    def members(e: _Enum) -> list[tuple[str, int, str | None, str]]:
        """``(member, number, doc, .proto name)`` of each value, aliases left out: the
        ``ENUM_`` prefix that savestate's emitter adds back is dropped."""
        prefix = snake_case(e.name).upper() + "_"
        out: list[tuple[str, int, str | None, str]] = []
        seen: set[int] = set()
        for name, number, doc in e.values:
            if number in seen:
                continue
            seen.add(number)
            member = name.removeprefix(prefix)
            if not member.isidentifier() or member.startswith("_") or keyword.iskeyword(member):
                member = name
            if not member.isidentifier() or keyword.iskeyword(member):
                raise FromProtoError(f"enum value {name} is not a Python name", [e.name, name])
            out.append((member, number, doc, name))
        return out

    def enum(self, e: _Enum, local: str) -> _ClassOut:
        mod = self.modules[e.package]
        mod.stdlib.setdefault("enum", set()).add("IntEnum")
        members = [(member, number, doc) for member, number, doc, _ in self.members(e)]
        out = _ClassOut(local, "IntEnum", e.doc, members=members)
        kept = {name for *_, name in self.members(e)}
        for name, number, _ in e.values:
            if name not in kept:
                out.comments.append(f"{name} = {number} is an alias in the .proto")
        if e.parent is not None:
            out.comments.append(f"Nested in the .proto: {e.full} there.")
        return out

    # -- the whole

    def build(self, root_names: Sequence[str] | None) -> tuple[list[str], list[str]]:
        tops = [d for d in self.r.top if isinstance(d, _Message)]
        if root_names is None and any(m.marked_root for m in tops):
            roots = [m.full for m in tops if m.marked_root]
        elif root_names is None:
            used: set[str] = set()
            for m in self.r.messages.values():
                top = m
                while top.parent is not None:
                    top = top.parent
                for f in m.fields:
                    if f.type_name and f.type_name != top.full:
                        used.add(f.type_name)
            roots = [m.full for m in tops if m.full not in used and not self._is_oneof(m)]
        else:
            by_name = {m.full: m for m in tops}
            roots = []
            for name in root_names:
                found = by_name.get(name)
                if found is None or self._is_oneof(found):
                    raise FromProtoError(
                        f"--root {name}: no top-level message (other than a Oneof) has that "
                        "full name"
                    )
                roots.append(name)
        types: list[str] = []
        pending = sorted(self.r.top, key=lambda d: d.order)
        done: set[str] = set()
        while pending or self.hoisted:
            d = pending.pop(0) if pending else self.hoisted.pop(0)
            if d.full in done:
                continue
            done.add(d.full)
            mod = self.modules[d.package]
            local = mod.names[d.full]
            if isinstance(d, _Enum):
                mod.classes.append(self.enum(d, local))
                continue
            types.append(d.full)
            if self._is_oneof(d):
                mod.classes.extend(self.oneof(d, local))
            else:
                mod.classes.append(self.struct(d, local, d.full in roots))
            for n in d.nested:
                if n.full not in self.synthetic and not n.map_entry and \
                        n.full not in mod.names:
                    self._hoist(n)
            for e in d.enums:
                if e.full not in mod.names:
                    self._hoist(e)
        return roots, types

    def render(self) -> dict[str, str]:
        files: dict[str, str] = {}
        for package, mod in sorted(self.modules.items()):
            parts = mod.module.split(".")
            if "__init__" in mod.taken:
                path = "/".join(parts) + "/__init__.py"
            else:
                path = "/".join(parts) + ".py"
            for i in range(1, len(parts)):
                files.setdefault("/".join(parts[:i]) + "/__init__.py", "")
            files[path] = _render_module(mod, self.r.packages[package])
        return dict(sorted(files.items()))


_RESERVED_NAMES = frozenset(
    {
        "Oneof", "Protobuf", "SavedStateBlob", "field", "savedstate", "IntEnum", "timedelta",
        "PACKAGE", *_SCALAR.values(), *NARROW, "annotations",
        # builtins the generated code names (``list[...]``, ``reserved=(range(...),)``,
        # ``float("nan")``): a class of the module by such a name would stand for them
        "list", "dict", "tuple", "range", "float",
    }
)


def _check_attr(name: str, where: list[str]) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise FromProtoError(f"field name {name!r} is not a Python name", where)
    if name in ("field", "_pb_unknown") or name.startswith("__"):
        raise FromProtoError(
            f"field name {name!r} would shadow what the class body needs", where
        )


# ---------------------------------------------------------------------------------------------
# Rendering


def _literal(text: str) -> str:
    """A double-quoted Python string literal."""
    out = ['"']
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _docstring(doc: str, indent: str) -> list[str]:
    text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'
    lines = text.split("\n")
    if len(lines) == 1:
        out = [f'{indent}"""{lines[0]}"""']
    else:
        out = [f'{indent}"""{lines[0]}']
        out += [f"{indent}{line}" if line else "" for line in lines[1:]]
        out.append(f'{indent}"""')
    if any(len(line) > LINE for line in out):
        out[-1] += "  # noqa: E501"
    return out


def _split_literal(text: str, width: int) -> list[str]:
    """``text`` as implicitly concatenated literals, each fitting ``width`` when possible."""
    pieces: list[str] = []
    current = ""
    for word in re.split(r"(?<=[ \n])", text):
        if current and len(_literal(current + word)) > width:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return [_literal(p) for p in pieces]


def _comment_lines(text: str, indent: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        words = line.split(" ")
        current = f"{indent}#"
        for word in words:
            if len(current) + 1 + len(word) > LINE and current != f"{indent}#":
                out.append(current)
                current = f"{indent}#"
            current += f" {word}"
        out.append(current)
    return out


def _render_field(f: _FieldOut) -> list[str]:
    indent = "    "
    out: list[str] = []
    for comment in f.comments:
        out += _comment_lines(comment, indent)
    args = [str(f.number)]
    if f.default is not None:
        args.append(f"default={f.default}")
    if f.length is not None:
        args.append(f"length={f.length}")
    head = f"{indent}{f.name}: {f.annotation} = field("
    one_line = head + ", ".join([*args, *([f"doc={_literal(f.doc)}"] if f.doc else [])]) + ")"
    if len(one_line) <= LINE:
        return [*out, one_line]
    out.append(head)
    for arg in args:
        out.append(f"{indent * 2}{arg},")
    if f.doc:
        pieces = _split_literal(f.doc, LINE - len(indent) * 3 - 1)
        if len(pieces) == 1:
            line = f"{indent * 2}doc={pieces[0]},"
            out.append(line + ("  # noqa: E501" if len(line) > LINE else ""))
        else:
            out.append(f"{indent * 2}doc=(")
            for piece in pieces:
                line = f"{indent * 3}{piece}"
                out.append(line + ("  # noqa: E501" if len(line) > LINE else ""))
            out.append(f"{indent * 2}),")
    out.append(f"{indent})")
    return out


def _render_class(c: _ClassOut) -> list[str]:
    out: list[str] = []
    for comment in c.comments:
        out += _comment_lines(comment, "")
    if c.decorator:
        out.append(f"@{c.decorator}")
    head = f"class {c.name}({c.bases}):"
    if len(head) > LINE:
        head = f"class {c.name}(\n    {c.bases}\n):"
        if len(head.split("\n")[1]) > LINE:
            head = f"class {c.name}(\n" + "".join(
                f"    {part.strip()},\n" for part in c.bases.split(", ")
            ) + "):"
    out += head.split("\n")
    body: list[str] = []
    if c.doc:
        body += _docstring(c.doc, "    ")
    if c.members is not None:
        if body:
            body.append("")
        for name, number, doc in c.members:
            if doc:
                body += _comment_lines(doc, "    ")
            body.append(f"    {name} = {number}")
    elif c.fields:
        if body:
            body.append("")
        for f in c.fields:
            body += _render_field(f)
    if not body:
        body = ["    pass"]
    return out + body


def _natural(name: str) -> tuple[Any, ...]:
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    parts = re.split(r"(\d+)", name.lower())
    return (kind, *((int(p) if p.isdigit() else p) for p in parts if p))


def _import_line(module: str, names: Iterable[tuple[str, str]]) -> list[str]:
    items = sorted(names, key=lambda item: _natural(item[0]))
    rendered = [name if alias == name else f"{name} as {alias}" for name, alias in items]
    line = f"from {module} import {', '.join(rendered)}"
    if len(line) <= LINE:
        return [line]
    return [f"from {module} import (", *(f"    {r}," for r in rendered), ")"]


def _render_module(mod: _Module, files: list[str]) -> str:
    sources = ", ".join(sorted(files))
    out = [
        f'"""Saved state of the proto package {mod.package}, generated by savestate from-proto',
        f"from {sources}.",
        '"""',
        "",
        "from __future__ import annotations",
    ]
    if len(out[1]) > LINE:
        out[1:2] = _wrap_words(f"from {sources}.", LINE)
    out.append("")
    stdlib = [
        line
        for module in sorted(mod.stdlib)
        for line in _import_line(module, ((n, n) for n in mod.stdlib[module]))
    ]
    if stdlib:
        out += [*stdlib, ""]
    if any(c.fields for c in mod.classes):
        mod.savestate.add("field")
    out += _import_line("savestate", ((n, n) for n in mod.savestate))
    if mod.imports:
        out.append("")
        for module in sorted(mod.imports):
            out += _import_line(module, mod.imports[module].items())
    out += ["", f"PACKAGE = {_literal(mod.package)}"]
    for c in mod.classes:
        out += ["", "", *_render_class(c)]
    return "\n".join(out) + "\n"


def _wrap_words(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


# ---------------------------------------------------------------------------------------------
# Entry points


_WELL_KNOWN = ("google/protobuf/",)


def _inputs(
    inputs: Sequence[str | os.PathLike[str]], includes: Sequence[str | os.PathLike[str]]
) -> tuple[list[Path], list[Path]]:
    """The include directories and the input files (each inside one of them)."""
    include_dirs = [Path(i).resolve() for i in includes]
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(path.resolve().rglob("*.proto"))
            if not found:
                raise ProtoInputError(f"{spec}: the directory holds no .proto files")
            files += found
            if not includes:
                include_dirs.append(path.resolve())
        elif path.is_file():
            files.append(path.resolve())
            if not includes:
                include_dirs.append(path.resolve().parent)
        else:
            raise ProtoInputError(f"{spec}: no such file or directory")
    names: list[str] = []
    for file in files:
        for d in include_dirs:
            if file.is_relative_to(d):
                names.append(file.relative_to(d).as_posix())
                break
        else:
            raise ProtoInputError(f"{file} is in none of the include directories (-I)")
    del names  # checked: protoc maps each file to its name under the first include holding it
    return list(dict.fromkeys(include_dirs)), list(dict.fromkeys(files))


def generate(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    includes: Sequence[str | os.PathLike[str]] = (),
    roots: Sequence[str] | None = None,
    prefix: str | None = None,
) -> Generated:
    """savestate declarations for the ``.proto`` files ``inputs`` (files or directories).

    ``includes`` are the import paths (``-I``; by default each input directory, and the
    directory of each input file). Every file protoc reads, imports included (the
    ``google/protobuf`` ones aside), gets its package's module. ``roots`` names the messages
    to register as roots by full name; by default every top-level message that no other message
    uses. ``prefix`` puts the package tree under a Python package of that dotted name.
    Raises :class:`FromProtoError` (a ``SchemaError``) for a construct without a savestate
    form and for input that protoc rejects.
    """
    if prefix is not None:
        for part in prefix.split("."):
            if not part.isidentifier() or keyword.iskeyword(part):
                raise FromProtoError(f"prefix {prefix!r} is not a dotted Python module name")
    include_dirs, files = _inputs(inputs, includes)
    try:
        data = run_protoc(include_dirs, files, what="the .proto input")
    except BaselineError as exc:
        raise ProtoInputError(str(exc)) from exc
    from google.protobuf import descriptor_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(data)
    skip = {fd.name for fd in fds.file if fd.name.startswith(_WELL_KNOWN)}
    reader = _Reader(data, skip)
    gen = _Generator(reader, prefix)
    root_list, types = gen.build(roots)
    modules = {package: mod.module for package, mod in gen.modules.items()}
    return Generated(gen.render(), modules, tuple(root_list), tuple(types))


def write(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    includes: Sequence[str | os.PathLike[str]] = (),
    roots: Sequence[str] | None = None,
    prefix: str | None = None,
) -> list[Path]:
    """Write :func:`generate`'s modules under ``output`` (created if needed); returns the
    paths of the modules written (``__init__.py`` files of the tree are created when missing,
    and never overwritten)."""
    generated = generate(inputs, includes=includes, roots=roots, prefix=prefix)
    out = Path(output)
    written: list[Path] = []
    for name, text in generated.files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not text and path.name == "__init__.py":
            if not path.exists():
                path.write_text("", encoding="utf-8")
            continue
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
