"""The interpreting codec: a plain walk over the schema model.

It is the reference the compiled codec is tested against, and it is what reports errors: when
the compiled fast path fails on a value or on bytes, the same input is run through this codec,
which keeps track of the field path and raises an ``EncodeError`` or ``DecodeError`` naming it.
"""

from __future__ import annotations

import enum
import math
import struct
from typing import Any

from ..errors import DecodeError, EncodeError
from ..model import foreign
from ..model.introspect import message_schema, oneof_schema, schema_of, zero_value
from ..model.scalars import INT32, INT64, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, ScalarKind
from ..model.schema import (
    MISSING,
    DurationType,
    EnumType,
    FieldSchema,
    FixedArrayType,
    ForeignMessageType,
    MapType,
    MessageSchema,
    MessageType,
    OneofSchema,
    OneofType,
    OptionalType,
    RepeatedType,
    ScalarType,
    TupleType,
    TypeSchema,
    is_packable,
)
from .duration import duration_from_parts, duration_parts, expected, short_repr
from .wire import MASK64, WireError, read_varint, skip_field, write_varint

__all__ = ["decode", "encode"]

MAX_FIELD = (1 << 29) - 1

_pack_f = struct.Struct("<f").pack
_pack_d = struct.Struct("<d").pack
_unpack_f = struct.Struct("<f").unpack_from
_unpack_d = struct.Struct("<d").unpack_from
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")


def _tag(number: int, wire: int) -> int:
    return (number << 3) | wire


# ---------------------------------------------------------------------------------------------
# Encoding


def encode(cls: type, obj: Any) -> bytes:
    """Encode ``obj`` as a ``cls`` message (or, for a Oneof, as its enum message)."""
    buf = bytearray()
    path = [cls.__name__]
    schema = schema_of(cls)
    if isinstance(schema, OneofSchema):
        _encode_oneof(schema, obj, buf, path)
        return bytes(buf)
    if type(obj) is not cls:
        raise EncodeError(f"expected {cls.__name__}, got {type(obj).__name__}", path)
    _encode_message(schema, obj, buf, path)
    return bytes(buf)


def _encode_message(schema: MessageSchema, obj: Any, buf: bytearray, path: list[str]) -> None:
    for f in schema.fields:
        path.append(f.name)
        _encode_field(f, getattr(obj, f.name), buf, path)
        path.pop()
    unknown = obj._pb_unknown
    if unknown:
        buf += unknown


def _encode_field(f: FieldSchema, value: Any, buf: bytearray, path: list[str]) -> None:
    t = f.type
    if isinstance(t, OptionalType):
        if value is not None:
            _encode_value(t.inner, f.number, value, buf, path, always=True)
        return
    _encode_value(t, f.number, value, buf, path, always=f.always)


def check_scalar(kind: ScalarKind, value: Any, path: list[str]) -> Any:
    """The value to write for ``kind``, or an EncodeError saying why it does not fit."""
    py = kind.python
    if py is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise expected(f"int for {kind.name}", value, path)
        v = int(value)
        if not kind.lo <= v <= kind.hi:
            raise EncodeError(
                f"value {v} out of range for {kind.name} ({kind.lo}..{kind.hi})", path
            )
        return v
    if py is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise expected(f"float for {kind.name}", value, path)
        try:
            v2 = float(value)
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


def _is_zero_scalar(kind: ScalarKind, v: Any) -> bool:
    if kind.python is float:
        # -0.0 is not zero on the wire: its sign would be lost.
        return v == 0.0 and math.copysign(1.0, v) > 0
    return not v


def _write_scalar_payload(kind: ScalarKind, v: Any, buf: bytearray) -> None:
    enc = kind.encoding
    if enc == "varint":
        write_varint(buf, v & MASK64)
    elif enc == "zigzag":
        write_varint(buf, ((v << 1) ^ (v >> 63)) & MASK64)
    elif enc == "bool":
        buf.append(1 if v else 0)
    elif enc == "fixed32":
        buf += _U32.pack(v)
    elif enc == "sfixed32":
        buf += _I32.pack(v)
    elif enc == "fixed64":
        buf += _U64.pack(v)
    elif enc == "sfixed64":
        buf += _I64.pack(v)
    elif enc == "float":
        buf += _pack_f(v)
    elif enc == "double":
        buf += _pack_d(v)
    else:  # string (already encoded) and bytes
        write_varint(buf, len(v))
        buf += v


def _check_enum(t: EnumType, value: Any, path: list[str]) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (isinstance(value, enum.Enum) and not isinstance(value, t.cls))
    ):
        raise expected(f"{t.cls.__name__} member", value, path)
    v = int(value)
    if v not in t.values:
        raise EncodeError(f"{v} is not a value of {t.cls.__name__}", path)
    return v


def _encode_value(
    t: TypeSchema, number: int, value: Any, buf: bytearray, path: list[str], always: bool
) -> None:
    """Write field ``number`` holding ``value`` of type ``t`` (skipping a zero unless
    ``always``)."""
    if isinstance(t, ScalarType):
        kind = t.kind
        v = check_scalar(kind, value, path)
        if not always and _is_zero_scalar(kind, v):
            return
        write_varint(buf, _tag(number, kind.wire))
        _write_scalar_payload(kind, v, buf)
    elif isinstance(t, EnumType):
        v = _check_enum(t, value, path)
        if v or always:
            write_varint(buf, _tag(number, WIRE_VARINT))
            write_varint(buf, v & MASK64)
    elif isinstance(t, RepeatedType):
        if not isinstance(value, list):
            raise expected(f"list for {t}", value, path)
        _encode_sequence(t.elem, number, value, buf, path, skip_empty=not always)
    elif isinstance(t, FixedArrayType):
        _encode_fixed_array(t, number, value, buf, path)
    elif isinstance(t, MapType):
        if not isinstance(value, dict):
            raise expected(f"dict for {t}", value, path)
        for key, item in value.items():
            path.append(f"[{key!r}]")
            sub = bytearray()
            _encode_value(t.key, 1, key, sub, path, always=False)
            _encode_value(t.value, 2, item, sub, path, always=False)
            path.pop()
            write_varint(buf, _tag(number, WIRE_LEN))
            write_varint(buf, len(sub))
            buf += sub
    else:
        sub = bytearray()
        _encode_message_value(t, value, sub, path)
        if sub or always:
            write_varint(buf, _tag(number, WIRE_LEN))
            write_varint(buf, len(sub))
            buf += sub


def _encode_message_value(t: TypeSchema, value: Any, sub: bytearray, path: list[str]) -> None:
    """Encode the body of a length-delimited message-like value (no tag, no length)."""
    if isinstance(t, MessageType):
        if type(value) is not t.cls:
            raise expected(t.cls.__name__, value, path)
        _encode_message(message_schema(t.cls), value, sub, path)
    elif isinstance(t, OneofType):
        _encode_oneof(oneof_schema(t.cls), value, sub, path)
    elif isinstance(t, TupleType):
        if not isinstance(value, tuple) or len(value) != len(t.elems):
            raise expected(f"tuple of {len(t.elems)} for {t}", value, path)
        for i, (et, ev) in enumerate(zip(t.elems, value, strict=True)):
            path.append(f"[{i}]")
            _encode_value(et, i + 1, ev, sub, path, always=False)
            path.pop()
    elif isinstance(t, DurationType):
        seconds, nanos = duration_parts(value, path)
        if seconds:
            write_varint(sub, _tag(1, WIRE_VARINT))
            write_varint(sub, seconds & MASK64)
        if nanos:
            write_varint(sub, _tag(2, WIRE_VARINT))
            write_varint(sub, nanos & MASK64)
    elif isinstance(t, ForeignMessageType):
        if not foreign.check(t, value):
            raise expected(t.cls.__name__, value, path)
        sub += foreign.encode(t, value)
    else:  # pragma: no cover - the schema builder admits no other type
        raise AssertionError(t)


def _encode_oneof(schema: OneofSchema, value: Any, sub: bytearray, path: list[str]) -> None:
    variant = None
    for v in schema.variants:
        if type(value) is v.cls:
            variant = v
            break
    if variant is None:
        names = ", ".join(v.name for v in schema.variants)
        raise expected(f"a variant of {schema.name} ({names})", value, path)
    path.append(variant.name)
    if variant.kind == "transparent":
        f = variant.transparent_field
        path.append(f.name)
        _encode_value(f.type, variant.number, getattr(value, f.name), sub, path, always=True)
        path.pop()
    else:
        body = bytearray()
        _encode_message(variant.message, value, body, path)
        write_varint(sub, _tag(variant.number, WIRE_LEN))
        write_varint(sub, len(body))
        sub += body
    path.pop()


def _encode_sequence(
    elem: TypeSchema,
    number: int,
    items: list[Any],
    buf: bytearray,
    path: list[str],
    skip_empty: bool,
) -> None:
    if not items and skip_empty:
        return
    if is_packable(elem):
        body = bytearray()
        for i, item in enumerate(items):
            path.append(f"[{i}]")
            if isinstance(elem, EnumType):
                write_varint(body, _check_enum(elem, item, path) & MASK64)
            else:
                kind = elem.kind  # type: ignore[union-attr]
                v = check_scalar(kind, item, path)
                if kind.name == "u8":
                    body.append(v)
                else:
                    _write_scalar_payload(kind, v, body)
            path.pop()
        write_varint(buf, _tag(number, WIRE_LEN))
        write_varint(buf, len(body))
        buf += body
        return
    for i, item in enumerate(items):
        path.append(f"[{i}]")
        _encode_value(elem, number, item, buf, path, always=True)
        path.pop()


def _encode_fixed_array(
    t: FixedArrayType, number: int, value: Any, buf: bytearray, path: list[str]
) -> None:
    if t.python_bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise expected("bytes", value, path)
        data = bytes(value)
        if len(data) != t.length:
            raise EncodeError(f"expected {t.length} bytes, got {len(data)}", path)
        write_varint(buf, _tag(number, WIRE_LEN))
        write_varint(buf, len(data))
        buf += data
        return
    if not isinstance(value, list):
        raise expected(f"list for {t}", value, path)
    if len(value) != t.length:
        raise EncodeError(f"expected {t.length} elements, got {len(value)}", path)
    if t.packed:
        _encode_sequence(t.elem, number, value, buf, path, skip_empty=False)
        return
    body = bytearray()
    _encode_sequence(t.elem, 1, value, body, path, skip_empty=True)
    write_varint(buf, _tag(number, WIRE_LEN))
    write_varint(buf, len(body))
    buf += body


# ---------------------------------------------------------------------------------------------
# Decoding


class _Decoder:
    __slots__ = ("data", "path")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.path: list[str] = []

    def fail(self, reason: str) -> DecodeError:
        return DecodeError(reason, list(self.path))


def decode(cls: type, data: Any, max_depth: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", [cls.__name__])
    raw = bytes(data)
    d = _Decoder(raw)
    d.path.append(cls.__name__)
    schema = schema_of(cls)
    try:
        if isinstance(schema, OneofSchema):
            return _decode_oneof(d, schema, [(0, len(raw))], max_depth)
        return _decode_message(d, schema, [(0, len(raw))], max_depth)
    except RecursionError:
        raise DecodeError("nesting too deep for the Python stack", [cls.__name__]) from None


class _Acc:
    """What has been read of one field so far."""

    __slots__ = ("spans", "value")

    def __init__(self) -> None:
        self.value: Any = MISSING
        self.spans: list[tuple[int, int]] | None = None


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


Spans = list[tuple[int, int]]


def _decode_message(d: _Decoder, schema: MessageSchema, spans: Spans, depth: int) -> Any:
    """Decode a message from its records ``spans`` (more than one merge, read in turn)."""
    if depth <= 0:
        raise d.fail("nesting deeper than the limit")
    fields = {f.number: f for f in schema.fields}
    accs = {f.number: _Acc() for f in schema.fields}
    unknown: list[bytes] = []
    for pos, end in spans:
        while pos < end:
            start = pos
            number, wire, pos = _read_tag(d, pos, end)
            f = fields.get(number)
            if f is None:
                try:
                    pos = skip_field(d.data, pos, end, wire)
                except WireError as exc:
                    raise d.fail(f"unknown field {number}: {exc}") from None
                unknown.append(d.data[start:pos])
                continue
            d.path.append(f.name)
            pos = _read_field(d, f.type, accs[number], wire, pos, end, depth)
            d.path.pop()
    obj: Any = object.__new__(schema.cls)
    for f in schema.fields:
        d.path.append(f.name)
        object.__setattr__(obj, f.name, _finish(d, f, accs[f.number], depth))
        d.path.pop()
    object.__setattr__(obj, "_pb_unknown", b"".join(unknown) if unknown else None)
    return obj


def _finish(d: _Decoder, f: FieldSchema, acc: _Acc, depth: int) -> Any:
    t = f.type
    if acc.spans is not None:
        inner = t.inner if isinstance(t, OptionalType) else t
        return _decode_spans(d, inner, acc.spans, depth)
    if acc.value is not MISSING:
        v = acc.value
        if isinstance(t, FixedArrayType):
            count = len(v)
            if count != t.length:
                raise d.fail(f"expected {t.length} elements, got {count}")
            if t.python_bytes:
                return bytes(v)
        return v
    # Absent from the bytes.
    if isinstance(t, (RepeatedType, MapType)):
        return {} if isinstance(t, MapType) else []
    if isinstance(t, FixedArrayType):
        raise d.fail("missing required field (a fixed-length array)")
    if isinstance(t, (MessageType, TupleType, ForeignMessageType)):
        return _decode_spans(d, t, [(0, 0)], depth)
    if f.always or isinstance(t, OneofType):
        default = f.make_default()
        if default is not MISSING:
            return default
        if isinstance(t, OneofType):
            raise d.fail("missing required field (a Oneof variant)")
    zero = zero_value(t)
    if zero is MISSING:
        default = f.make_default()
        if default is not MISSING:
            return default
        raise d.fail(f"missing required field ({t} has no zero value)")
    return zero


def _decode_spans(d: _Decoder, t: TypeSchema, spans: Spans, depth: int) -> Any:
    """Decode a singular message-like field from every record seen: they merge, read in turn
    (never joined, so nested merges cost memory in proportion to the records, not the depth)."""
    if isinstance(t, MessageType):
        return _decode_message(d, message_schema(t.cls), spans, depth - 1)
    if isinstance(t, OneofType):
        return _decode_oneof(d, oneof_schema(t.cls), spans, depth - 1)
    if isinstance(t, TupleType):
        fields = tuple(
            FieldSchema(name=f"[{i}]", number=i + 1, type=et) for i, et in enumerate(t.elems)
        )
        return _decode_fields_as_tuple(d, fields, spans, depth - 1)
    if isinstance(t, DurationType):
        seconds, nanos = _decode_fields_as_tuple(d, _DURATION_FIELDS, spans, depth - 1)
        return duration_from_parts(seconds, nanos, d.fail)
    if isinstance(t, ForeignMessageType):
        # Parsed by its own library: hand it the records joined.
        try:
            return foreign.decode(t, b"".join(d.data[s:e] for s, e in spans))
        except ValueError as exc:
            raise d.fail(str(exc)) from None
    raise AssertionError(t)


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


def _wrong_wire(d: _Decoder, expected: int, got: int) -> DecodeError:
    return d.fail(f"wrong wire type: expected {_wire_name(expected)}, got {_wire_name(got)}")


def _read_field(
    d: _Decoder, t: TypeSchema, acc: _Acc, wire: int, pos: int, end: int, depth: int
) -> int:
    if isinstance(t, OptionalType):
        t = t.inner
    if isinstance(t, (ScalarType, EnumType)):
        if wire != t.wire:
            raise _wrong_wire(d, t.wire, wire)
        if wire == WIRE_LEN:
            s, e = _read_len(d, pos, end)
            acc.value = _decode_len_value(d, t, d.data, s, e, depth)
            return e
        acc.value, pos = _read_scalar(d, t, wire, pos, end)
        return pos
    if wire != WIRE_LEN:
        # A packable sequence also accepts unpacked elements.
        if isinstance(t, (RepeatedType, FixedArrayType)) and t.packed and not t.as_bytes:
            if wire != t.elem.wire:
                raise _wrong_wire(d, t.elem.wire, wire)
            value, pos = _read_scalar(d, t.elem, wire, pos, end)  # type: ignore[arg-type]
            if acc.value is MISSING:
                acc.value = []
            acc.value.append(value)
            return pos
        raise _wrong_wire(d, WIRE_LEN, wire)
    s, e = _read_len(d, pos, end)
    if isinstance(t, (RepeatedType, FixedArrayType)):
        if acc.value is MISSING:
            acc.value = []
        if t.as_bytes:
            acc.value = list(d.data[s:e])  # a bytes field: the last record wins
        elif t.packed:
            p = s
            while p < e:
                value, p = _read_scalar(d, t.elem, t.elem.wire, p, e)  # type: ignore[arg-type]
                acc.value.append(value)
        elif isinstance(t, FixedArrayType):
            # The wrapper message: repeated elements under field 1 (wrappers merge).
            _read_wrapper(d, t, acc.value, s, e, depth)
        else:
            d.path.append(f"[{len(acc.value)}]")
            acc.value.append(_decode_len_value(d, t.elem, d.data, s, e, depth))
            d.path.pop()
        return e
    if isinstance(t, MapType):
        if acc.value is MISSING:
            acc.value = {}
        d.path.append(f"[{len(acc.value)}]")
        entry = (FieldSchema("key", 1, t.key), FieldSchema("value", 2, t.value))
        key, value = _decode_fields_as_tuple(d, entry, [(s, e)], depth - 1)
        d.path.pop()
        acc.value[key] = value
        return e
    if acc.spans is None:
        acc.spans = []
    acc.spans.append((s, e))
    return e


def _read_wrapper(
    d: _Decoder, t: FixedArrayType, out: list[Any], pos: int, end: int, depth: int
) -> None:
    if depth - 1 <= 0:
        raise d.fail("nesting deeper than the limit")
    while pos < end:
        number, wire, pos = _read_tag(d, pos, end)
        if number != 1:
            try:
                pos = skip_field(d.data, pos, end, wire)
            except WireError as exc:
                raise d.fail(f"unknown field {number}: {exc}") from None
            continue
        if wire != WIRE_LEN:
            raise _wrong_wire(d, WIRE_LEN, wire)
        s, e = _read_len(d, pos, end)
        d.path.append(f"[{len(out)}]")
        out.append(_decode_len_value(d, t.elem, d.data, s, e, depth - 1))
        d.path.pop()
        pos = e


def _read_scalar(
    d: _Decoder, t: ScalarType | EnumType, wire: int, pos: int, end: int
) -> tuple[Any, int]:
    data = d.data
    if wire == WIRE_VARINT:
        try:
            raw, pos = read_varint(data, pos, end)
        except WireError as exc:
            raise d.fail(str(exc)) from None
        if isinstance(t, EnumType):
            v = raw - (1 << 64) if raw >> 63 else raw
            if v not in t.values:
                raise d.fail(f"unknown value {v} for enum {t.cls.__name__}")
            return t.cls(v), pos
        kind = t.kind
        enc = kind.encoding
        if enc == "bool":
            if raw > 1:
                raise d.fail(f"value {raw} out of range for bool")
            return raw == 1, pos
        if enc == "zigzag":
            v = (raw >> 1) ^ -(raw & 1)
        elif kind.lo < 0:
            v = raw - (1 << 64) if raw >> 63 else raw
        else:
            v = raw
        if not kind.lo <= v <= kind.hi:
            raise d.fail(f"value {v} out of range for {kind.name}")
        return v, pos
    kind = t.kind  # type: ignore[union-attr]
    size = 4 if wire == WIRE_I32 else 8
    if end - pos < size:
        raise d.fail("truncated fixed-width value")
    enc = kind.encoding
    if enc == "float":
        return _unpack_f(data, pos)[0], pos + 4
    if enc == "double":
        return _unpack_d(data, pos)[0], pos + 8
    fmt = {"fixed32": _U32, "sfixed32": _I32, "fixed64": _U64, "sfixed64": _I64}[enc]
    assert wire in (WIRE_I32, WIRE_I64)
    return fmt.unpack_from(data, pos)[0], pos + size


def _decode_len_value(
    d: _Decoder, t: TypeSchema, data: bytes, s: int, e: int, depth: int
) -> Any:
    """Decode the payload of one length-delimited record as a value of ``t``."""
    if isinstance(t, ScalarType):
        if t.kind.encoding == "string":
            try:
                return data[s:e].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise d.fail(f"invalid UTF-8 in string: {exc.reason}") from None
        if t.kind.encoding == "bytes":
            return data[s:e]
        raise AssertionError(t)
    if d.data is not data:
        sub = _Decoder(data)
        sub.path = d.path
        d = sub
    return _decode_spans(d, t, [(s, e)], depth)


_DURATION_FIELDS = (
    FieldSchema(name="seconds", number=1, type=ScalarType(INT64)),
    FieldSchema(name="nanos", number=2, type=ScalarType(INT32)),
)


def _decode_fields_as_tuple(
    d: _Decoder, fields: tuple[FieldSchema, ...], spans: Spans, depth: int
) -> tuple[Any, ...]:
    """Decode a message whose fields are positional (tuples, map entries, Duration)."""
    if depth <= 0:
        raise d.fail("nesting deeper than the limit")
    by_number = {f.number: f for f in fields}
    accs = {f.number: _Acc() for f in fields}
    for pos, end in spans:
        while pos < end:
            number, wire, pos = _read_tag(d, pos, end)
            f = by_number.get(number)
            if f is None:
                try:
                    pos = skip_field(d.data, pos, end, wire)
                except WireError as exc:
                    raise d.fail(f"unknown field {number}: {exc}") from None
                continue
            d.path.append(f.name)
            pos = _read_field(d, f.type, accs[number], wire, pos, end, depth)
            d.path.pop()
    out = []
    for f in fields:
        d.path.append(f.name)
        out.append(_finish(d, f, accs[f.number], depth))
        d.path.pop()
    return tuple(out)


def _decode_oneof(d: _Decoder, schema: OneofSchema, spans: Spans, depth: int) -> Any:
    if depth <= 0:
        raise d.fail("nesting deeper than the limit")
    current = None
    acc = _Acc()
    for pos, end in spans:
        while pos < end:
            number, wire, pos = _read_tag(d, pos, end)
            variant = schema.variant_by_number(number)
            if variant is None:
                raise d.fail(f"unknown variant {number} of {schema.name}")
            if variant is not current:
                current = variant
                acc = _Acc()  # a different variant replaces the previous one
            d.path.append(variant.name)
            if variant.kind == "transparent":
                f = variant.transparent_field
                d.path.append(f.name)
                pos = _read_field(d, f.type, acc, wire, pos, end, depth)
                d.path.pop()
            else:
                if wire != WIRE_LEN:
                    raise _wrong_wire(d, WIRE_LEN, wire)
                s, e = _read_len(d, pos, end)
                if acc.spans is None:
                    acc.spans = []
                acc.spans.append((s, e))
                pos = e
            d.path.pop()
    if current is None:
        raise d.fail(f"missing variant of {schema.name}")
    d.path.append(current.name)
    if current.kind == "transparent":
        f = current.transparent_field
        d.path.append(f.name)
        value = _finish(d, f, acc, depth)
        d.path.pop()
        obj: Any = object.__new__(current.cls)
        object.__setattr__(obj, f.name, value)
        object.__setattr__(obj, "_pb_unknown", None)
    else:
        assert acc.spans is not None
        obj = _decode_spans(d, MessageType(current.cls), acc.spans, depth)
    d.path.pop()
    return obj

