"""The compatibility checker's promise, over generated schema pairs.

An old schema (a root message ``compat.State`` of a few fields, with an enum ``compat.Mode``,
a message ``compat.Reg`` and a Oneof ``compat.Stage`` it may use) is drawn, then a new one as a
few edits of it. The old one's baseline is written by ``write_proto`` and the new one checked
against it (``direction="both"``). Then the bytes decide:

- no backward error: every old value decodes with the new class, and every field both share
  (the same number, nothing reported about it) reads as the value written;
- no forward error: the same for new values read by the old class.

The fields: integers of every width and name, bool, str, bytes, f32, f64, lists and maps of
those (and of the enum, the message, the Oneof), fixed arrays, ``T | None``, the enum (with or
without a zero member), the message (which holds no message), the Oneof (unit and struct
variants, whose fields hold no message or Oneof), each with or without a default. The edits:
add, delete (reserving the number or not), renumber, rename, another integer width or scalar,
``| None`` toggled, a default added, changed or removed, an array length changed (or a list
made an array, or back), scalar <-> list <-> map, another map key, another type, a
reservation dropped, an enum member added or removed, a variant added, removed, renumbered,
turned between unit and struct or given another field type.

Not generated: transparent classes, tuples, ``timedelta``, ``SavedStateBlob``, tuple and
transparent Oneof variants, nested containers (``list[list[T]]``, ``dict[K, list[V]]``), a
field's move into a Oneof, packages, roots and plain (unannotated) baselines
(``test_compat.py`` has cases for each).
"""

from __future__ import annotations

import enum
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from savestate import DecodeError, Oneof, Protobuf, SchemaError, field, schema_of, write_proto
from savestate.model import scalars
from savestate.model.schema import (
    EnumType,
    FixedArrayType,
    MapType,
    MessageSchema,
    MessageType,
    OneofSchema,
    OneofType,
    OptionalType,
    RepeatedType,
    TypeSchema,
)
from savestate.schemaio.compat import JSON, RULES, Report, check_compatible
from savestate.testing import redeclaring

from .strategies import instances


@pytest.fixture(autouse=True)
def _two_versions() -> Iterator[None]:
    with redeclaring():
        yield


INTS = [
    "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "int32", "int64", "uint32",
    "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64", "int",
]
SCALARS = [*INTS, "bool", "str", "bytes", "f32", "f64"]
KEYS = ["u8", "u32", "i64", "int32", "sint64", "fixed32", "bool", "str"]
# What a list or a map may also hold: compat.Mode, compat.Reg, compat.Stage.
ELEMS = [*SCALARS, "mode", "reg", "stage"]
ARRAY_ELEMS = ["bytes", "u32", "i8", "u64", "f32"]  # "bytes": a `bytes` field of a length
NAMES = list("abcdefghijkm")
VARIANT_NAMES = ["Idle", "Run", "Stop", "Wait", "Go", "Halt"]
ANN: dict[str, Any] = {
    **{name: getattr(scalars, name) for name in INTS if name != "int"},
    "int": int, "bool": bool, "str": str, "bytes": bytes, "f32": scalars.f32, "f64": scalars.f64,
}

# A type: ("s", scalar) | ("list", elem) | ("dict", key, elem) | ("array", elem, length)
# | ("enum",) | ("msg",) | ("oneof",) | ("opt", one of the others but opt and dict).
Ty = tuple[Any, ...]


@dataclass(frozen=True)
class F:
    name: str
    number: int
    type: Ty
    default: int | None  # None: no default; 0: the zero (or first) value; k: another one


@dataclass(frozen=True)
class Msg:
    fields: tuple[F, ...]
    reserved: tuple[int, ...] = ()


@dataclass(frozen=True)
class Variant:
    number: int
    name: str
    fields: tuple[F, ...] | None  # None: a unit variant


@dataclass(frozen=True)
class Schema:
    state: Msg  # compat.State
    reg: Msg  # compat.Reg (holds no compat.Reg)
    mode: tuple[int, ...]  # the members of compat.Mode (named V<number>)
    stage: tuple[Variant, ...]  # the variants of compat.Stage (their fields: scalars)


# ---------------------------------------------------------------------------------------------
# Drawing schemas


scalar_names = st.sampled_from(SCALARS)
int_names = st.sampled_from(INTS)


@st.composite
def types(
    draw: st.DrawFn, optional: bool = True, nested: bool = True, oneof: bool = True
) -> Ty:
    """A field's type; ``nested`` False: none holding compat.Reg (a field of compat.Reg),
    ``oneof`` False: none holding compat.Stage (a field of one of its variants)."""
    kinds = ["s", "s", "s", "list", "dict", "array", "enum"]
    kinds += (["msg"] if nested else []) + (["oneof"] if oneof else [])
    kind = draw(st.sampled_from(kinds + (["opt", "opt"] if optional else [])))
    elems = st.sampled_from([
        e for e in ELEMS if (nested or e != "reg") and (oneof or e != "stage")
    ])
    if kind == "s":
        return ("s", draw(scalar_names))
    if kind == "list":
        return ("list", draw(elems))
    if kind == "dict":
        return ("dict", draw(st.sampled_from(KEYS)), draw(elems))
    if kind == "array":
        return ("array", draw(st.sampled_from(ARRAY_ELEMS)), draw(st.integers(1, 3)))
    if kind == "opt":
        inner = draw(types(optional=False, nested=nested, oneof=oneof))
        assume(inner[0] != "dict")
        return ("opt", inner)
    return (kind,)


defaults = st.sampled_from([None, None, 0, 1, 2])


@st.composite
def messages(draw: st.DrawFn, nested: bool) -> Msg:
    numbers = draw(st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True))
    fields = tuple(
        F(NAMES[i], n, draw(types(nested=nested)), draw(defaults))
        for i, n in enumerate(numbers)
    )
    free = [n for n in range(1, 10) if n not in numbers]
    return Msg(fields, tuple(draw(st.lists(st.sampled_from(free), max_size=1))))


@st.composite
def variant_fields(draw: st.DrawFn) -> tuple[F, ...]:
    numbers = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True))
    return tuple(
        F("xyz"[i], n, draw(variant_types), draw(st.sampled_from([0, 0, 1, 2])))
        for i, n in enumerate(numbers)
    )


# A variant's fields hold no compat.Reg or compat.Stage (and have defaults, so that a variant
# can be a Oneof field's default).
variant_types = st.one_of(st.tuples(st.just("s"), scalar_names),
                          types(nested=False, oneof=False))


@st.composite
def variants(draw: st.DrawFn) -> tuple[Variant, ...]:
    numbers = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True))
    out = []
    for i, n in enumerate(numbers):
        unit = draw(st.booleans())
        out.append(Variant(n, VARIANT_NAMES[i], None if unit else draw(variant_fields())))
    return tuple(out)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    mode = tuple(sorted(draw(st.sets(st.integers(0, 3), min_size=1, max_size=3))))
    return Schema(draw(messages(True)), draw(messages(False)), mode, draw(variants()))


def _int_sites(t: Ty) -> bool:
    if t[0] == "opt":
        return _int_sites(t[1])
    return (t[0] in ("s", "list") and t[1] in INTS) or (t[0] == "dict" and t[2] in INTS)


def _with_scalar(t: Ty, name: str) -> Ty:
    """``t`` with its scalar (a list's element, a map's value) replaced by ``name``."""
    if t[0] == "opt":
        return ("opt", _with_scalar(t[1], name))
    if t[0] in ("s", "list"):
        return (t[0], name)
    return ("dict", t[1], name)


def _scalar_of(t: Ty) -> str | None:
    if t[0] == "opt":
        return _scalar_of(t[1])
    if t[0] in ("s", "list"):
        return str(t[1])
    if t[0] == "dict":
        return str(t[2])
    return None


FIELD_EDITS = [
    "add", "delete", "renumber", "rename", "width", "scalar", "nullable", "default", "length",
    "shape", "retype", "key", "unreserve",
]
OTHER_EDITS = [
    "enum_add", "enum_remove", "variant_add", "variant_remove", "variant_shape", "variant_width",
]


@st.composite
def field_edit(draw: st.DrawFn, m: Msg, nested: bool) -> tuple[str, Msg]:
    """One edit of message ``m`` (``nested`` False: compat.Reg, which holds no Reg)."""
    kind = draw(st.sampled_from(FIELD_EDITS))
    fields = list(m.fields)
    used = {f.number for f in fields}
    names = [n for n in NAMES if n not in {f.name for f in fields}]
    elem_names = st.sampled_from([e for e in ELEMS if nested or e != "reg"])
    if kind == "add" or not fields:
        free = [n for n in range(1, 11) if n not in used]
        if not free or not names:
            return "nothing", m
        f = F(names[0], draw(st.sampled_from(free)), draw(types(nested=nested)), draw(defaults))
        reserved = tuple(r for r in m.reserved if r != f.number)
        return f"add {f}", Msg((*fields, f), reserved)
    if kind == "unreserve":
        return "unreserve", replace(m, reserved=())
    i = draw(st.integers(0, len(fields) - 1))
    f = fields[i]
    t = f.type

    def put(what: str, **changes: Any) -> tuple[str, Msg]:
        fields[i] = replace(f, **changes)
        return f"{f.name}: {what}", replace(m, fields=tuple(fields))

    if kind == "delete":
        keep = draw(st.booleans())
        del fields[i]
        reserved = tuple(sorted({*m.reserved, f.number})) if keep else m.reserved
        return f"delete {f.name} reserve={keep}", Msg(tuple(fields), reserved)
    if kind == "renumber":
        free = [n for n in range(1, 11) if n not in used and n not in m.reserved]
        n = draw(st.sampled_from(free))
        return put(f"renumber -> {n}", number=n)
    if kind == "rename":
        return put(f"rename -> {names[0]}", name=names[0])
    if kind in ("width", "scalar") and (
        _scalar_of(t) is not None and (kind == "scalar" or _int_sites(t))
    ):
        name = draw(int_names if kind == "width" else
                    scalar_names if t[0] in ("s", "opt") else elem_names)
        return put(f"{t} -> {name}", type=_with_scalar(t, name))
    if kind == "nullable" and t[0] != "dict":
        new = t[1] if t[0] == "opt" else ("opt", t)
        return put(f"{t} -> {new}", type=new)
    if kind == "default":
        d = draw(defaults.filter(lambda d: d != f.default))
        return put(f"default {f.default} -> {d}", default=d)
    if kind == "length":
        inner = t[1] if t[0] == "opt" else t
        if inner[0] == "array":
            if draw(st.booleans()) and inner[1] != "bytes":
                new_inner: Ty = ("list", inner[1])
            else:
                new_inner = ("array", inner[1], draw(st.integers(0, 4)))
        elif inner[0] == "list" and inner[1] in ARRAY_ELEMS:
            new_inner = ("array", inner[1], draw(st.integers(1, 3)))
        elif inner == ("s", "bytes"):
            new_inner = ("array", "bytes", draw(st.integers(1, 3)))
        else:
            new_inner = inner
        new = ("opt", new_inner) if t[0] == "opt" else new_inner
        return put(f"{t} -> {new}", type=new)
    scalar = _scalar_of(t)
    if kind == "shape" and scalar in SCALARS and t[0] != "opt":
        assert scalar is not None
        choices: list[Ty] = [("s", scalar), ("list", scalar), ("dict", "u32", scalar),
                             ("dict", "str", scalar)]
        new = draw(st.sampled_from([c for c in choices if c != t]))
        return put(f"{t} -> {new}", type=new)
    if kind == "key" and t[0] == "dict":
        new = ("dict", draw(st.sampled_from(KEYS)), t[2])
        return put(f"{t} -> {new}", type=new)
    new = draw(types(nested=nested))
    return put(f"{t} -> {new}", type=new)


@st.composite
def edit(draw: st.DrawFn, s: Schema) -> tuple[str, Schema]:
    target = draw(st.sampled_from(["state", "state", "state", "reg", "other"]))
    if target == "state":
        what, state = draw(field_edit(s.state, nested=True))
        return what, replace(s, state=state)
    if target == "reg":
        what, reg = draw(field_edit(s.reg, nested=False))
        return f"reg {what}", replace(s, reg=reg)
    kind = draw(st.sampled_from(OTHER_EDITS))
    if kind == "enum_add":
        v = draw(st.sampled_from([v for v in range(0, 5) if v not in s.mode]))
        return f"mode + {v}", replace(s, mode=tuple(sorted({*s.mode, v})))
    if kind == "enum_remove":
        if len(s.mode) < 2:
            return "nothing", s
        v = draw(st.sampled_from(s.mode))
        return f"mode - {v}", replace(s, mode=tuple(m for m in s.mode if m != v))
    if kind == "variant_add":
        free = [n for n in range(1, 6) if n not in {v.number for v in s.stage}]
        names = [n for n in VARIANT_NAMES if n not in {v.name for v in s.stage}]
        if not free or not names:
            return "nothing", s
        n = draw(st.sampled_from(free))
        stage = list(s.stage)
        if draw(st.booleans()) and len(stage) > 1:  # renumber a variant
            j = draw(st.integers(0, len(stage) - 1))
            stage[j] = replace(stage[j], number=n)
            return f"variant {stage[j].name} -> {n}", replace(s, stage=tuple(stage))
        unit = draw(st.booleans())
        new_v = Variant(n, names[0], None if unit else draw(variant_fields()))
        return f"variant + {new_v}", replace(s, stage=(*stage, new_v))
    if kind == "variant_remove":
        if len(s.stage) < 2:
            return "nothing", s
        j = draw(st.integers(0, len(s.stage) - 1))
        return f"variant - {s.stage[j].name}", replace(
            s, stage=s.stage[:j] + s.stage[j + 1:]
        )
    j = draw(st.integers(0, len(s.stage) - 1))
    was = s.stage[j]
    if kind == "variant_width" and was.fields:
        k = draw(st.integers(0, len(was.fields) - 1))
        vf = list(was.fields)
        vf[k] = replace(vf[k], type=draw(variant_types))
        now = replace(was, fields=tuple(vf))
    elif was.fields is None:
        now = replace(was, fields=draw(variant_fields()))
    elif draw(st.booleans()):
        now = replace(was, fields=None)
    else:
        now = replace(was, fields=was.fields[:-1] or None)
    stage = list(s.stage)
    stage[j] = now
    return f"variant {was} -> {now}", replace(s, stage=tuple(stage))


EDIT_COUNT = 3  # edits from an old schema to its new one, at most


@st.composite
def schema_pairs(draw: st.DrawFn) -> tuple[Schema, Schema, list[str]]:
    old = draw(schemas())
    new = old
    done = []
    for _ in range(draw(st.integers(1, EDIT_COUNT))):
        what, new = draw(edit(new))
        done.append(what)
    return old, new, done


# ---------------------------------------------------------------------------------------------
# Declaring the classes of a schema


def _zero(name: str) -> Any:
    return {"bool": False, "str": "", "bytes": b"", "f32": 0.0, "f64": 0.0}.get(name, 0)


def _other(name: str, k: int) -> Any:
    """A value of scalar ``name`` other than the zero (``k`` > 0)."""
    if name in INTS:
        signed = name.startswith(("i", "s", "int"))
        return -k if signed and k % 2 == 0 else k
    return {"bool": True, "str": "x" * k, "bytes": b"\x01" * k, "f32": k + 0.5,
            "f64": k + 0.25}[name]


class Declared:
    """The classes of one schema: compat.State and what it uses."""

    def __init__(self, s: Schema) -> None:
        self.schema = s
        self.mode = enum.IntEnum("Mode", {f"V{v}": v for v in s.mode})  # type: ignore[misc]
        self.stage = type(Protobuf)("Stage", (Oneof,), {"__module__": __name__}, package="compat")
        self.variants = []
        for v in s.stage:
            ns = self._namespace(v.fields or ())
            self.variants.append(
                type(Protobuf)(v.name, (self.stage,), ns, variant=v.number)
            )
        self.reg = self._message("Reg", s.reg)
        self.state = self._message("State", s.state)

    def _message(self, name: str, m: Msg) -> type:
        ns = self._namespace(m.fields)
        return type(Protobuf)(name, (Protobuf,), ns, package="compat", reserved=m.reserved)

    def _namespace(self, fields: tuple[F, ...]) -> dict[str, Any]:
        ns: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
        for f in fields:
            ns["__annotations__"][f.name] = self.annotation(f.type)
            inner = f.type[1] if f.type[0] == "opt" else f.type
            length = inner[2] if inner[0] == "array" else None
            ns[f.name] = field(f.number, length=length, **self.default(f))
        return ns

    def elem(self, name: str) -> Any:
        return getattr(self, name) if name in ("mode", "reg", "stage") else ANN[name]

    def annotation(self, t: Ty) -> Any:
        kind = t[0]
        if kind == "s":
            return ANN[t[1]]
        if kind == "list":
            return list[self.elem(t[1])]  # type: ignore[misc]  # a runtime annotation
        if kind == "dict":
            return dict[self.elem(t[1]), self.elem(t[2])]  # type: ignore[misc]  # the same
        if kind == "array":
            return bytes if t[1] == "bytes" else list[self.elem(t[1])]  # type: ignore[misc]
        if kind == "enum":
            return self.mode
        if kind == "msg":
            return self.reg
        if kind == "oneof":
            return self.stage
        return self.annotation(t[1]) | None

    def default(self, f: F) -> dict[str, Any]:
        t, d = f.type, f.default
        if d is None:
            return {}
        kind = t[0]
        if kind == "opt":
            return {"default": None}
        if kind == "s":
            return {"default": _zero(t[1]) if d == 0 else _other(t[1], d)}
        if kind == "list":
            return {"default_factory": list}
        if kind == "dict":
            return {"default_factory": dict}
        if kind == "array":
            n = t[2]
            if t[1] == "bytes":
                return {"default": bytes([d]) * n}
            value = [_zero(t[1]) if d == 0 else _other(t[1], d)] * n
            return {"default_factory": lambda: list(value)}
        if kind == "enum":
            members = list(self.mode)
            return {"default": members[d % len(members)]}
        if kind == "msg":
            if any(g.default is None for g in self.schema.reg.fields):
                return {}  # Reg() is no value
            return {"default_factory": self.reg}
        return {"default_factory": self.variants[d % len(self.variants)]}


# ---------------------------------------------------------------------------------------------
# Comparing what was written with what was read


def _touched(report: Report, path: str) -> bool:
    return any(f.path == path or f.path.startswith(path + ".") for f in report.findings)


def _same(report: Report, wt: TypeSchema, wv: Any, rt: TypeSchema, rv: Any, path: str) -> str:
    """Why ``rv`` (read with type ``rt``) is not ``wv`` (written with ``wt``), in the fields
    both share that the report says nothing about; "" when it is the same."""
    if isinstance(wt, MessageType) and isinstance(rt, MessageType):
        ws, rs = schema_of(wt.cls), schema_of(rt.cls)
        assert isinstance(ws, MessageSchema) and isinstance(rs, MessageSchema)
        return _same_fields(report, ws, wv, rs, rv, f"compat.{ws.name}")
    if isinstance(wt, OneofType) and isinstance(rt, OneofType):
        wo, ro = schema_of(wt.cls), schema_of(rt.cls)
        assert isinstance(wo, OneofSchema) and isinstance(ro, OneofSchema)
        (wvar,) = [v for v in wo.variants if type(wv) is v.cls]
        (rvar,) = [v for v in ro.variants if type(rv) is v.cls]
        if wvar.number != rvar.number:
            return f"{path}: variant {wvar.name} read as {rvar.name}"
        vpath = f"compat.{wo.name}.{wvar.name.lower()}"
        if _touched(report, vpath):
            return ""
        return _same_fields(report, wvar.message, wv, rvar.message, rv, vpath)
    if isinstance(wt, OptionalType) or isinstance(rt, OptionalType):
        if wv is None or rv is None:
            return "" if wv is None and rv is None else f"{path}: {wv!r} read as {rv!r}"
        wt = wt.inner if isinstance(wt, OptionalType) else wt
        rt = rt.inner if isinstance(rt, OptionalType) else rt
        return _same(report, wt, wv, rt, rv, path)
    classes = (MessageType, OneofType)
    if isinstance(wt, classes) != isinstance(rt, classes):
        # A class on one side, a wrapper message savestate writes (`list[T] | None`) on the
        # other: what they share is fields of those messages, not Python values to compare.
        return ""
    seqs = (RepeatedType, FixedArrayType)
    if isinstance(wt, seqs) and isinstance(rt, seqs) and not isinstance(wv, bytes):
        if len(wv) != len(rv):
            return f"{path}: {wv!r} read as {rv!r}"
        for i, (w, r) in enumerate(zip(wv, rv, strict=True)):
            why = _same(report, wt.elem, w, rt.elem, r, f"{path}[{i}]")
            if why:
                return why
        return ""
    if isinstance(wt, MapType) and isinstance(rt, MapType):
        if set(wv) != set(rv):  # (a bool key reads as 0 or 1: True == 1)
            return f"{path}: {wv!r} read as {rv!r}"
        for k, w in wv.items():
            why = _same(report, wt.value, w, rt.value, rv[k], f"{path}[{k!r}]")
            if why:
                return why
        return ""
    if _plain(wt, wv) != _plain(rt, rv):
        return f"{path}: {wv!r} read as {rv!r}"
    return ""


def _same_fields(
    report: Report, ws: MessageSchema, wv: Any, rs: MessageSchema, rv: Any, path: str
) -> str:
    readers = {f.number: f for f in rs.fields}
    for wf in ws.fields:
        rf = readers.get(wf.number)
        if rf is None:
            continue
        if _touched(report, f"{path}.{wf.name}") or _touched(report, f"{path}.{rf.name}"):
            continue
        if _holds_enum(rf.type) and _touched(report, "compat.Mode"):
            continue
        why = _same(report, wf.type, getattr(wv, wf.name), rf.type, getattr(rv, rf.name),
                    f"{path}.{rf.name}")
        if why:
            return why
    return ""


def _holds_enum(t: TypeSchema) -> bool:
    if isinstance(t, EnumType):
        return True
    if isinstance(t, OptionalType):
        return _holds_enum(t.inner)
    if isinstance(t, (RepeatedType, FixedArrayType)):
        return _holds_enum(t.elem)
    if isinstance(t, MapType):
        return _holds_enum(t.value)
    return False


def _plain(t: TypeSchema, v: Any) -> Any:
    """A scalar or enum value without its class: enums as numbers, bytes as lists of numbers
    (``list[u8]`` is bytes on the wire), NaN made comparable."""
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, list):
        return [_plain(t, x) for x in v]
    if isinstance(t, EnumType):
        return int(v)
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return v


def _breaks(report: Report, direction: str) -> bool:
    return any(
        f.level == "error" and f.direction in (direction, "both") for f in report.findings
    )


def _root_type(cls: type) -> MessageType:
    return MessageType(cls)


def _reads(report: Report, writer: type, reader: type, values: list[Any], what: str) -> None:
    wt, rt = _root_type(writer), _root_type(reader)
    for value in values:
        data = value.encode()
        try:
            read = reader.decode(data)
        except DecodeError as e:
            raise AssertionError(
                f"{what}: no error reported, but {value!r} fails to decode: {e}\n"
                f"{report.text()}"
            ) from e
        why = _same(_about(report, what), wt, value, rt, read, "compat.State")
        assert not why, f"{what}: no error reported, but {why}\n{report.text()}"


def _about(report: Report, direction: str) -> Report:
    """The findings that may excuse a value read differently in ``direction``: those of the
    bytes (not of JSON) in that direction or both."""
    return replace(report, findings=tuple(
        f for f in report.findings
        if RULES[f.rule].category != JSON and f.direction in (direction, "both")
    ))


def declare(s: Schema) -> Declared:
    try:
        return Declared(s)
    except SchemaError as e:
        note(f"not declarable: {e}")
        assume(False)
        raise


@given(st.data())
def test_no_reported_break_means_every_value_reads_back(data: st.DataObject) -> None:
    old_s, new_s, edits = data.draw(schema_pairs(), label="schemas")
    note(f"old: {old_s}")
    note(f"edits: {edits}")
    old = declare(old_s)
    with tempfile.TemporaryDirectory() as directory:
        write_proto(directory, [old.state])
        new = declare(new_s)
        report = check_compatible([new.state], against=directory, direction="both")
    note(report.text())
    old_values = data.draw(st.lists(instances(old.state), min_size=1, max_size=4), label="old")
    new_values = data.draw(st.lists(instances(new.state), min_size=1, max_size=4), label="new")
    if not _breaks(report, "backward"):
        _reads(report, old.state, new.state, old_values, "backward")
    if not _breaks(report, "forward"):
        _reads(report, new.state, old.state, new_values, "forward")
