"""The interpreting codec: a plain walk over the wire plan.

It is the reference the compiled codec is tested against, and it is what reports errors: when
the compiled fast path fails on a value or on bytes, the same input is run through this codec,
which keeps track of the field path and raises an ``EncodeError`` or ``DecodeError`` naming it.
Every decision about the wire (presence, zero values, absence, wrappers) is the plan's
(:mod:`savestate.model.plan`); this module only carries them out.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..errors import DecodeError, EncodeError, path_text, short_repr, warn_unknown_dropped
from ..model import foreign
from ..model.plan import (
    Absent,
    Container,
    EnumValue,
    FieldPlan,
    Form,
    MessagePlan,
    MessageValue,
    Presence,
    ScalarValue,
    ZeroTest,
    plan_of,
)
from ..model.scalars import U8, WIRE_I32, WIRE_LEN, WIRE_VARINT, ScalarKind
from .duration import duration_from_parts, duration_parts, expected
from .runtime import built_cost
from .wire import MASK64, WireError, read_varint, skip_field, write_varint

__all__ = ["check_scalar", "decode", "drops_refused", "encode", "refusing_drops"]

MAX_FIELD = (1 << 29) - 1

_pack_f = struct.Struct("<f").pack
_FIXED = {
    "fixed32": struct.Struct("<I"),
    "sfixed32": struct.Struct("<i"),
    "fixed64": struct.Struct("<Q"),
    "sfixed64": struct.Struct("<q"),
    "float": struct.Struct("<f"),
    "double": struct.Struct("<d"),
}


# Set (by ``refusing_drops``) while the caller has a lossless alternative to a value that
# lost the unknown fields a tuple or map entry cannot keep: the decode then fails instead.
_drops_refused: ContextVar[bool] = ContextVar("savestate_drops_refused", default=False)


@contextmanager
def refusing_drops() -> Iterator[None]:
    """Within it, a decode that would drop unknown fields (with an ``UnknownFieldsDropped``
    warning) raises a ``DecodeError`` instead: for a caller that then keeps the bytes as they
    are (the JSON of a blob, as its raw bytes)."""
    token = _drops_refused.set(True)
    try:
        yield
    finally:
        _drops_refused.reset(token)


def drops_refused() -> bool:
    """Whether this runs within ``refusing_drops``."""
    return _drops_refused.get()


def _tag(number: int, wire: int) -> int:
    return (number << 3) | wire


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(cls: type, obj: Any, max_depth: int = 100) -> bytes:
    """Encode ``obj`` as a ``cls`` message (or, for a Oneof or one of its variants, as the
    Oneof's message); a value nested deeper than ``max_depth`` messages (the root counts as
    one), which no decode with the same limit could read back, is an EncodeError."""
    plan = plan_of(cls)
    path = [cls.__name__]
    buf = bytearray()
    if plan.form is Form.STRUCT and type(obj) is not cls:
        raise EncodeError(f"expected {cls.__name__}, got {type(obj).__name__}", path)
    _encode_body(plan, obj, buf, path, max_depth)
    return bytes(buf)


def check_scalar(kind: ScalarKind, value: Any, path: list[str]) -> Any:
    """The value to write for ``kind`` (a string as its UTF-8 bytes), or an EncodeError saying
    why it does not fit."""
    py = kind.python
    if py is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise expected(f"int for {kind.name}", value, path)
        v = _converted(int, value, kind, path)
        if not kind.lo <= v <= kind.hi:
            raise EncodeError(
                f"value {v} out of range for {kind.name} ({kind.lo}..{kind.hi})", path
            )
        return v
    if py is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise expected(f"float for {kind.name}", value, path)
        try:
            v2 = _converted(float, value, kind, path)
        except OverflowError:
            raise EncodeError(
                f"value {short_repr(value)} out of range for {kind.name}", path
            ) from None
        if kind.encoding == "float" and math.isfinite(v2):
            try:
                _pack_f(v2)
            except OverflowError:
                raise EncodeError(f"value {v2} out of range for f32", path) from None
        return v2
    if py is bool:
        if type(value) is not bool:
            raise expected("bool", value, path)
        return value
    if py is str:
        if not isinstance(value, str):
            raise expected("str", value, path)
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"string is not valid UTF-8: {exc.reason}", path) from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise expected("bytes", value, path)
    return bytes(value)


def _converted(to: Any, value: Any, kind: ScalarKind, path: list[str]) -> Any:
    """``to(value)``: whatever a user class's conversion raises becomes an EncodeError, with
    the exception as its cause."""
    try:
        return to(value)
    except OverflowError:
        raise
    except Exception as exc:
        raise EncodeError(
            f"cannot read {type(value).__name__} as {kind.name}: {type(exc).__name__}: {exc}",
            path,
        ) from exc


def check_enum(value_plan: EnumValue, value: Any, path: list[str]) -> int:
    """The number to write for ``value`` in an enum field: an int that is one of the enum's
    values (a member of this enum, or a plain int). Raises ``EncodeError`` at ``path`` for a
    bool, a non-int, a member of another enum, or a number that is not one of its values."""
    cls = value_plan.cls
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (isinstance(value, enum.Enum) and not isinstance(value, cls))
    ):
        raise expected(f"{cls.__name__} member", value, path)
    v = int(value)
    if v not in value_plan.members:
        raise EncodeError(f"{v} is not a value of {cls.__name__}", path)
    return v


def unwrap(f: FieldPlan, value: Any, path: list[str]) -> tuple[Any, int]:
    """The wire value of a field whose Python value is a transparent class (``f.unwrap``), and
    how many attribute names it pushed on ``path``; an optional inside stops it at None."""
    pushed = 0
    for i, newtype in enumerate(f.unwrap):
        if value is None and i == f.none_at and f.presence is Presence.EXPLICIT:
            break
        if type(value) is not newtype.cls:
            raise expected(newtype.cls.__name__, value, path)
        path.append(newtype.attr)
        pushed += 1
        value = newtype.unwrap(value)
    return value, pushed


def _write_payload(kind: ScalarKind, v: Any, buf: bytearray) -> None:
    enc = kind.encoding
    if enc == "varint":
        write_varint(buf, v & MASK64)
    elif enc == "zigzag":
        write_varint(buf, ((v << 1) ^ (v >> 63)) & MASK64)
    elif enc == "bool":
        buf.append(1 if v else 0)
    elif enc in _FIXED:
        buf += _FIXED[enc].pack(v)
    else:  # string (already encoded) and bytes
        write_varint(buf, len(v))
        buf += v


def _encode_body(
    m: MessagePlan, value: Any, buf: bytearray, path: list[str], depth: int
) -> None:
    """Append the fields of message ``m`` holding the Python ``value`` (no tag, no length);
    ``depth`` is how many levels of messages may still be written, this one included."""
    form = m.form
    if depth <= 0 and form is not Form.FOREIGN:  # (a foreign library nests as it likes)
        raise EncodeError("nesting deeper than the limit (max_depth)", path)
    if form is Form.STRUCT:
        obj: Any = value
        if type(obj) is not m.cls:
            raise expected(m.cls.__name__ if m.cls else m.name, obj, path)
        for f in m.fields:
            _encode_field(f, getattr(obj, f.attr), buf, path, depth)  # type: ignore[arg-type]
        unknown: bytes | None = obj._pb_unknown  # type: ignore[attr-defined]
        if unknown:
            buf += unknown
    elif form is Form.ONEOF:
        member = m.variant_field(type(value))
        if member is None:
            names = ", ".join(f.pyname for f in m.fields)
            raise expected(f"a variant of {m.name} ({names})", value, path)
        _encode_field(member, value, buf, path, depth)
    elif form is Form.TUPLE:
        if not isinstance(value, tuple) or len(value) != len(m.fields):
            raise expected(f"tuple of {len(m.fields)}", value, path)
        for f in m.fields:
            _encode_field(f, value[f.attr], buf, path, depth)  # type: ignore[index]
    elif form is Form.ENTRY:
        for f in m.fields:
            _encode_field(f, value[f.attr], buf, path, depth)
    elif form is Form.WRAPPER:
        _encode_field(m.fields[0], value, buf, path, depth)
    elif form is Form.DURATION:
        seconds, nanos = duration_parts(value, path)
        for f, part in zip(m.fields, (seconds, nanos), strict=True):
            if part:
                write_varint(buf, f.tag)
                write_varint(buf, part & MASK64)
    else:
        assert m.foreign is not None
        if not foreign.check(m.foreign, value):
            raise expected(m.foreign.cls.__name__, value, path)
        buf += foreign.encode(m.foreign, value)


def _encode_field(
    f: FieldPlan, value: Any, buf: bytearray, path: list[str], depth: int
) -> None:
    if value is None and f.presence is Presence.EXPLICIT and f.none_at == 0:
        return
    if f.pyname:
        path.append(f.pyname)
    value, pushed = unwrap(f, value, path)
    _encode_field_value(f, value, buf, path, depth)
    del path[len(path) - pushed - (1 if f.pyname else 0):]


def _encode_field_value(
    f: FieldPlan, value: Any, buf: bytearray, path: list[str], depth: int
) -> None:
    if f.presence is Presence.EXPLICIT and value is None:
        return
    container = f.container
    if container is Container.LIST:
        if not isinstance(value, list):
            raise expected("list", value, path)
        _check_length(f, len(value), path)
        if not value and f.zero_test is not ZeroTest.NONE:
            return
        if f.packed:
            body = bytearray()
            for i, item in enumerate(value):
                path.append(f"[{i}]")
                _write_value(f, item, body, path, depth, tag=False)
                path.pop()
            write_varint(buf, _tag(f.number, WIRE_LEN))
            write_varint(buf, len(body))
            buf += body
            return
        for i, item in enumerate(value):
            path.append(f"[{i}]")
            pushed = len(f.elem_unwrap)
            for newtype in f.elem_unwrap:
                if type(item) is not newtype.cls:
                    raise expected(newtype.cls.__name__, item, path)
                path.append(newtype.attr)
                item = newtype.unwrap(item)
            _write_value(f, item, buf, path, depth, always=True)
            del path[len(path) - pushed - 1:]
        return
    if container is Container.DICT:
        if not isinstance(value, dict):
            raise expected("dict", value, path)
        entry = f.message
        assert entry is not None
        for key, item in value.items():
            path.append(f"[{key!r}]")
            body = bytearray()
            _encode_body(entry, (key, item), body, path, depth - 1)
            path.pop()
            write_varint(buf, _tag(f.number, WIRE_LEN))
            write_varint(buf, len(body))
            buf += body
        return
    if container is Container.BYTES_LIST:
        if not isinstance(value, list):
            raise expected("list", value, path)
        for i, x in enumerate(value):
            path.append(f"[{i}]")
            check_scalar(U8, x, path)
            path.pop()
        _check_length(f, len(value), path)
        if value or f.zero_test is ZeroTest.NONE:
            write_varint(buf, _tag(f.number, WIRE_LEN))
            write_varint(buf, len(value))
            buf += bytes(value)
        return
    if f.length is not None and isinstance(f.value, ScalarValue):  # a fixed bytes array
        data = check_scalar(f.value.kind, value, path)
        if len(data) != f.length:
            raise EncodeError(f"expected {f.length} bytes, got {len(data)}", path)
    elif f.length is not None:  # a fixed array of messages, in its wrapper
        if not isinstance(value, list):
            raise expected("list", value, path)
        _check_length(f, len(value), path)
    _write_value(f, value, buf, path, depth, always=f.zero_test is ZeroTest.NONE)


def _check_length(f: FieldPlan, count: int, path: list[str]) -> None:
    if f.length is not None and count != f.length:
        raise EncodeError(f"expected {f.length} elements, got {count}", path)


def _write_value(
    f: FieldPlan, value: Any, buf: bytearray, path: list[str], depth: int,
    always: bool = True, tag: bool = True,
) -> None:
    """Write one value of ``f`` (with its tag unless ``tag`` is false: in a packed record)."""
    vp = f.value
    if isinstance(vp, ScalarValue):
        kind = vp.kind
        v = check_scalar(kind, value, path)
        if not always and (
            (v == 0.0 and math.copysign(1.0, v) > 0) if f.zero_test is ZeroTest.FLOAT else not v
        ):
            return
        if tag:
            write_varint(buf, _tag(f.number, kind.wire))
        _write_payload(kind, v, buf)
    elif isinstance(vp, EnumValue):
        v = check_enum(vp, value, path)
        if always or v:
            if tag:
                write_varint(buf, _tag(f.number, WIRE_VARINT))
            write_varint(buf, v & MASK64)
    else:
        body = bytearray()
        _encode_body(vp.message, value, body, path, depth - 1)
        if always or body:
            write_varint(buf, _tag(f.number, WIRE_LEN))
            write_varint(buf, len(body))
            buf += body


# ---------------------------------------------------------------------------------------------
# Decoding


class _Decoder:
    __slots__ = ("budget", "data", "limit", "path")

    def __init__(self, data: bytes, budget: int) -> None:
        self.data = data
        self.path: list[str] = []
        # What the objects built may still cost (runtime.built_cost), of ``limit`` in all.
        self.budget = budget
        self.limit = budget

    def fail(self, reason: str) -> DecodeError:
        return DecodeError(reason, list(self.path))


def decode(cls: type, data: Any, max_depth: int, max_memory: int = 1 << 62) -> Any:
    """Decode ``data`` as a ``cls`` value: nesting at most ``max_depth`` messages deep, and
    building objects that cost at most ``max_memory`` bytes by ``runtime.built_cost``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", [cls.__name__])
    raw = bytes(data)
    d = _Decoder(raw, max_memory)
    d.path.append(cls.__name__)
    try:
        return _decode_message(d, plan_of(cls), [(0, len(raw))], max_depth)
    except RecursionError:
        raise DecodeError("nesting too deep for the Python stack", [cls.__name__]) from None


Spans = list[tuple[int, int]]


class _Acc:
    """What has been read of one field so far: a value, or the records of a message that
    merge."""

    __slots__ = ("spans", "value")

    def __init__(self) -> None:
        self.value: Any = _NOTHING
        self.spans: Spans | None = None


_NOTHING: Any = object()
_EMPTY_ACC = _Acc()  # a field the bytes do not carry (never written to)
_FORM_NAMES = {
    Form.TUPLE: "tuple",
    Form.ENTRY: "map entry",
    Form.WRAPPER: "list or optional inside another (its wrapper message)",
    Form.DURATION: "timedelta",
}


def _read_tag(d: _Decoder, pos: int, end: int) -> tuple[int, int, int]:
    try:
        tag, pos = read_varint(d.data, pos, end)
    except WireError as exc:
        raise d.fail(f"bad tag: {exc}") from None
    number = tag >> 3
    wire = tag & 7
    if number == 0:
        raise d.fail("field number 0 is invalid")
    if number > MAX_FIELD:
        raise d.fail(f"field number {number} is out of range")
    if wire in (3, 4, 6, 7):
        raise d.fail(f"invalid wire type {wire} (field {number})")
    return number, wire, pos


def _skip(d: _Decoder, number: int, wire: int, pos: int, end: int) -> int:
    try:
        return skip_field(d.data, pos, end, wire)
    except WireError as exc:
        raise d.fail(f"unknown field {number}: {exc}") from None


def _enter(d: _Decoder, f: FieldPlan) -> int:
    """Push the path segments of field ``f``; returns how many to pop."""
    count = 0
    if f.pyname:
        d.path.append(f.pyname)
        count = 1
    for newtype in f.unwrap:
        d.path.append(newtype.attr)
    return count + len(f.unwrap)


def _leave(d: _Decoder, count: int) -> None:
    if count:
        del d.path[-count:]


def _decode_message(d: _Decoder, m: MessagePlan, spans: Spans, depth: int) -> Any:
    """Decode message ``m`` from its records ``spans`` (more than one merge, read in turn)."""
    if m.form is Form.FOREIGN:
        assert m.foreign is not None
        try:  # parsed by its own library: hand it the records joined
            return foreign.decode(m.foreign, b"".join(d.data[s:e] for s, e in spans))
        except ValueError as exc:
            raise d.fail(str(exc)) from None
    if depth <= 0:
        raise d.fail("nesting deeper than the limit")
    if m.form is Form.ONEOF:
        return _decode_oneof(d, m, spans, depth)
    d.budget -= built_cost(m)
    if d.budget < 0:
        raise d.fail(
            f"the decoded value would take more than max_memory ({d.limit} bytes)"
        )
    by_number = m.by_number
    accs: dict[int, _Acc] = {}  # made for the fields the bytes carry, as they come
    unknown: list[bytes] = []
    dropped = 0
    for pos, end in spans:
        while pos < end:
            start = pos
            number, wire, pos = _read_tag(d, pos, end)
            f = by_number.get(number)
            if f is None:
                pos = _skip(d, number, wire, pos, end)
                if m.keeps_unknown:
                    unknown.append(d.data[start:pos])
                else:
                    dropped += pos - start
                continue
            acc = accs.get(number)
            if acc is None:
                acc = accs[number] = _Acc()
            count = _enter(d, f)
            pos = _read_field(d, f, acc, wire, pos, end, depth)
            _leave(d, count)
    if dropped:
        if _drops_refused.get():
            raise d.fail(f"{dropped} bytes of unknown fields that a {_FORM_NAMES[m.form]} "
                         "cannot keep")
        warn_unknown_dropped(
            f"{path_text(d.path)}: {dropped} bytes of unknown fields "
            f"dropped: a {_FORM_NAMES[m.form]} has nowhere to keep them"
        )
    values = []
    for f in m.fields:
        count = _enter(d, f)
        values.append(_finish(d, f, accs.get(f.number) or _EMPTY_ACC, depth))
        _leave(d, count)
    form = m.form
    if form is Form.STRUCT:
        obj: Any = object.__new__(m.cls)  # type: ignore[arg-type]
        for f, v in zip(m.fields, values, strict=True):
            object.__setattr__(obj, f.attr, v)  # type: ignore[arg-type]
        object.__setattr__(obj, "_pb_unknown", b"".join(unknown) if unknown else None)
        return obj
    if form is Form.WRAPPER:
        return values[0]
    if form is Form.DURATION:
        return duration_from_parts(values[0], values[1], d.fail)
    return tuple(values)  # TUPLE, ENTRY


def _decode_oneof(d: _Decoder, m: MessagePlan, spans: Spans, depth: int) -> Any:
    current: FieldPlan | None = None
    acc = _Acc()
    for pos, end in spans:
        while pos < end:
            number, wire, pos = _read_tag(d, pos, end)
            f = m.by_number.get(number)
            if f is None:
                raise d.fail(f"unknown variant {number} of {m.name}")
            if f is not current:
                current = f
                acc = _Acc()  # a different variant replaces the previous one
            count = _enter(d, f)
            pos = _read_field(d, f, acc, wire, pos, end, depth)
            _leave(d, count)
    if current is None:
        raise d.fail(f"missing variant of {m.name}")
    count = _enter(d, current)
    value = _finish(d, current, acc, depth)
    _leave(d, count)
    return value


def _read_len(d: _Decoder, pos: int, end: int) -> tuple[int, int]:
    try:
        length, pos = read_varint(d.data, pos, end)
    except WireError as exc:
        raise d.fail(f"bad length: {exc}") from None
    if length > end - pos:
        raise d.fail(f"length {length} runs past the end of the input")
    return pos, pos + length


def _wire_name(wire: int) -> str:
    return {0: "varint", 1: "fixed64", 2: "length-delimited", 5: "fixed32"}.get(wire, str(wire))


def _wrong_wire(d: _Decoder, expected_wire: int, got: int) -> DecodeError:
    return d.fail(
        f"wrong wire type: expected {_wire_name(expected_wire)}, got {_wire_name(got)}"
    )


def _read_field(
    d: _Decoder, f: FieldPlan, acc: _Acc, wire: int, pos: int, end: int, depth: int
) -> int:
    """Read one record of field ``f`` into ``acc``; returns the position after it."""
    vp = f.value
    container = f.container
    if container is Container.LIST:
        if acc.value is _NOTHING:
            acc.value = []
        if isinstance(vp, MessageValue) or (
            isinstance(vp, ScalarValue) and vp.wire == WIRE_LEN
        ):
            if wire != WIRE_LEN:
                raise _wrong_wire(d, WIRE_LEN, wire)
            s, e = _read_len(d, pos, end)
            d.path.append(f"[{len(acc.value)}]")
            acc.value.append(_wrap_elem(f, _decode_len_value(d, vp, s, e, depth)))
            d.path.pop()
            return e
        # Numbers: packed and unpacked records are both accepted.
        if wire == WIRE_LEN:
            s, e = _read_len(d, pos, end)
            if f.length is not None:
                acc.value = []  # a fixed array given twice: the last record wins
            p = s
            while p < e:
                value, p = _read_scalar(d, vp, vp.wire, p, e)
                acc.value.append(_wrap_elem(f, value))
            return e
        if wire != vp.wire:
            raise _wrong_wire(d, vp.wire, wire)
        value, pos = _read_scalar(d, vp, wire, pos, end)
        acc.value.append(_wrap_elem(f, value))
        return pos
    if container is Container.DICT:
        if wire != WIRE_LEN:
            raise _wrong_wire(d, WIRE_LEN, wire)
        s, e = _read_len(d, pos, end)
        if acc.value is _NOTHING:
            acc.value = {}
        d.path.append(f"[{len(acc.value)}]")
        entry = f.message
        assert entry is not None
        key, value = _decode_message(d, entry, [(s, e)], depth - 1)
        d.path.pop()
        acc.value[key] = value
        return e
    if isinstance(vp, MessageValue):
        if wire != WIRE_LEN:
            raise _wrong_wire(d, WIRE_LEN, wire)
        s, e = _read_len(d, pos, end)
        if acc.spans is None or f.length is not None:
            acc.spans = []  # (a fixed array's wrapper given twice: the last record wins)
        acc.spans.append((s, e))
        return e
    if wire != vp.wire:
        raise _wrong_wire(d, vp.wire, wire)
    if wire == WIRE_LEN:
        s, e = _read_len(d, pos, end)
        acc.value = _decode_len_value(d, vp, s, e, depth)
        return e
    acc.value, pos = _read_scalar(d, vp, wire, pos, end)
    return pos


def _wrap_elem(f: FieldPlan, value: Any) -> Any:
    for newtype in reversed(f.elem_unwrap):
        value = newtype.wrap(value)
    return value


def _finish(d: _Decoder, f: FieldPlan, acc: _Acc, depth: int) -> Any:
    """The Python value of field ``f`` once every record is read."""
    if acc.spans is not None:
        message = f.message
        assert message is not None
        value = _decode_message(d, message, acc.spans, depth - 1)
        if f.length is not None and len(value) != f.length:
            raise d.fail(f"expected {f.length} elements, got {len(value)}")
    elif acc.value is not _NOTHING:
        value = acc.value
        if f.container is Container.BYTES_LIST:
            value = list(value)
        if f.length is not None and len(value) != f.length:
            raise d.fail(f"expected {f.length} elements, got {len(value)}")
    elif f.absent is Absent.REQUIRED:
        raise d.fail(f.required)
    elif f.absent is Absent.EMPTY_MESSAGE:
        message = f.message
        assert message is not None
        value = _decode_message(d, message, [(0, 0)], depth - 1)
    else:
        return f.absent_value()
    for newtype in reversed(f.unwrap):
        value = newtype.wrap(value)
    return value


def _read_scalar(
    d: _Decoder, vp: ScalarValue | EnumValue, wire: int, pos: int, end: int
) -> tuple[Any, int]:
    data = d.data
    if wire == WIRE_VARINT:
        try:
            raw, pos = read_varint(data, pos, end)
        except WireError as exc:
            raise d.fail(str(exc)) from None
        if isinstance(vp, EnumValue):
            v = raw - (1 << 64) if raw >> 63 else raw
            member = vp.members.get(v)
            if member is None:
                raise d.fail(f"unknown value {v} for enum {vp.cls.__name__}")
            return member, pos
        kind = vp.kind
        enc = kind.encoding
        if enc == "bool":
            return raw != 0, pos  # any non-zero varint is true, as protobuf reads it
        if enc == "zigzag":
            v = (raw >> 1) ^ -(raw & 1)
        elif kind.lo < 0:
            v = raw - (1 << 64) if raw >> 63 else raw
        else:
            v = raw
        if not kind.lo <= v <= kind.hi:
            raise d.fail(f"value {v} out of range for {kind.name}")
        return v, pos
    assert isinstance(vp, ScalarValue)
    size = 4 if wire == WIRE_I32 else 8
    if end - pos < size:
        raise d.fail("truncated fixed-width value")
    return _FIXED[vp.kind.encoding].unpack_from(data, pos)[0], pos + size


def _decode_len_value(
    d: _Decoder, vp: ScalarValue | EnumValue | MessageValue, s: int, e: int, depth: int
) -> Any:
    """The value of one length-delimited record: a string, bytes or a message."""
    if isinstance(vp, MessageValue):
        return _decode_message(d, vp.message, [(s, e)], depth - 1)
    assert isinstance(vp, ScalarValue)
    if vp.kind.encoding == "string":
        try:
            return d.data[s:e].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise d.fail(f"invalid UTF-8 in string: {exc.reason}") from None
    return d.data[s:e]

