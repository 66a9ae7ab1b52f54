"""The proto3 JSON mapping of saved states: ``to_dict``/``from_dict``, ``to_json``/``from_json``.

The JSON is what ``google.protobuf.json_format.MessageToDict`` prints for the same bytes, read
through the ``.proto`` files savestate emits (:mod:`savestate.schemaio.proto`): field names in
lowerCamelCase (both that and the declared name are accepted), fields at their zero value left
out unless the bytes carry them, 64-bit integers as strings, bytes as base64, enums by their
``.proto`` value names, ``NaN``/``Infinity``/``-Infinity`` as strings, a Oneof as an object whose
single key is its variant's member name, ``timedelta`` as a Duration string (``"1.000010s"``), a
blob (``SavedStateBlob``, a ``google.protobuf.Any``) as ``{"@type": url, ...fields}``.

Two extensions keep every byte, so that JSON made from decoded bytes encodes back to the same
bytes (unknown fields included):

- ``"@unknown"``: the base64 of a message's unknown fields (the records the schema does not
  know, in order). Google's parser accepts it with ``ignore_unknown_fields=True``.
- ``"@value"``: in a blob whose type URL names no registered root (or whose value does not
  decode as that root), the base64 of the payload, next to ``"@type"``.

A JSON value that does not fit its field is a :class:`JsonError` (a ``DecodeError``) naming the
field path.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import enum
import json
import math
import re
import struct
from typing import Any

from ..errors import DecodeError, EncodeError
from ..model import foreign
from ..model.introspect import message_schema, oneof_schema, schema_of, zero_value
from ..model.names import MAP_KEYS, enum_value_names, json_name, snake_case, wrapper_message
from ..model.registry import info_of, is_any, root_for_url
from ..model.scalars import ScalarKind
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
    VariantSchema,
)
from .duration import duration_from_parts, duration_parts
from .interp import check_scalar

__all__ = ["UNKNOWN_KEY", "VALUE_KEY", "JsonError", "from_dict", "from_json", "json_name",
           "to_dict", "to_json"]

UNKNOWN_KEY = "@unknown"
VALUE_KEY = "@value"
TYPE_KEY = "@type"

_64 = frozenset({"int64", "uint64", "sint64", "fixed64", "sfixed64"})
_OMIT: Any = object()
_f32 = struct.Struct("<f")


class JsonError(DecodeError):
    """JSON that is not a valid value of the requested type (an unknown key, a wrong type, a
    value out of range): a ``DecodeError``, since it is input being read, with the field path."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Python values -> JSON


def to_dict(obj: Any) -> dict[str, Any]:
    """The proto3 JSON object of a message (or Oneof variant) value."""
    cls = type(obj)
    schema = _top_schema(cls)
    path = [cls.__name__ if isinstance(schema, MessageSchema) else schema.name]
    if isinstance(schema, OneofSchema):
        return _oneof_json(schema, obj, path)
    return _message_json(schema, obj, path)


def to_json(obj: Any, *, indent: int | None = None) -> str:
    """``to_dict`` as JSON text (compact unless ``indent`` is given)."""
    separators = (",", ":") if indent is None else None
    return json.dumps(to_dict(obj), indent=indent, separators=separators, ensure_ascii=False)


def _top_schema(cls: type) -> MessageSchema | OneofSchema:
    if _kind(cls) == "variant":
        parent = next(b for b in cls.__mro__[1:] if _kind(b) == "oneof")
        return schema_of(parent)
    return schema_of(cls)


def _kind(cls: type) -> str | None:
    info = info_of(cls)
    return None if info is None else info.kind


def _message_json(schema: MessageSchema, obj: Any, path: list[str]) -> dict[str, Any]:
    if type(obj) is not schema.cls:
        raise EncodeError(f"expected {schema.cls.__name__}, got {type(obj).__name__}", path)
    if _is_blob(schema.cls):
        return _any_json(obj, path)
    out: dict[str, Any] = {}
    for f in schema.fields:
        path.append(f.name)
        value = _value_json(f.type, getattr(obj, f.name), path, f.always)
        path.pop()
        if value is not _OMIT:
            out[json_name(f.name)] = value
    unknown = getattr(obj, "_pb_unknown", None)
    if unknown:
        out[UNKNOWN_KEY] = _b64(unknown)
    return out


def _as_any(value: Any) -> Any:
    return value


def _is_blob(cls: type) -> bool:
    return is_any(cls)


def _any_json(blob: Any, path: list[str]) -> dict[str, Any]:
    url, value, unknown = blob.type_url, blob.value, blob._pb_unknown
    if not url and not value and not unknown:
        return {}
    out: dict[str, Any] = {TYPE_KEY: url}
    root = root_for_url(url) if not unknown else None
    if root is not None:
        try:
            inner = _as_any(root).decode(value)
        except DecodeError:
            inner = None
        if inner is not None:
            if _is_blob(root):
                out["value"] = _any_json(inner, [*path, "value"])
            else:
                out.update(_message_json(message_schema(root), inner, [*path, root.__name__]))
            return out
    out[VALUE_KEY] = _b64(value)
    if unknown:
        out[UNKNOWN_KEY] = _b64(unknown)
    return out


def _scalar_json(kind: ScalarKind, v: Any) -> Any:
    py = kind.python
    if py is int:
        return str(v) if kind.proto in _64 else v
    if py is float:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if kind.encoding == "float":
            return _shortest_f32(v)
        return v
    if py is bytes:
        return _b64(v)
    return v


def _shortest_f32(v: float) -> float:
    """The shortest decimal that reads back as the same 32-bit float."""
    target = _f32.unpack(_f32.pack(v))[0]
    for precision in range(6, 18):
        rounded = float(f"{target:.{precision}g}")
        if _f32.unpack(_f32.pack(rounded))[0] == target:
            return rounded
    return float(target)


def _is_zero(kind: ScalarKind, v: Any) -> bool:
    if kind.python is float:
        return bool(v == 0.0 and math.copysign(1.0, v) > 0)
    return not v


def _value_json(t: TypeSchema, value: Any, path: list[str], always: bool) -> Any:
    """The JSON of one field value, or _OMIT when its bytes would leave it out."""
    if isinstance(t, OptionalType):
        if value is None:
            return _OMIT
        return _value_json(t.inner, value, path, True)
    if isinstance(t, ScalarType):
        kind = t.kind
        if kind.python is str:
            if not isinstance(value, str):
                check_scalar(kind, value, path)
            v = value
        else:
            v = check_scalar(kind, value, path)
        if not always and _is_zero(kind, v):
            return _OMIT
        return _scalar_json(kind, v)
    if isinstance(t, EnumType):
        if not isinstance(value, int) or isinstance(value, bool) or int(value) not in t.values:
            raise EncodeError(f"expected a {t.cls.__name__} member, got {value!r}", path)
        if not always and int(value) == 0:
            return _OMIT
        return enum_value_names(t.cls)[int(value)]
    if isinstance(t, RepeatedType):
        if not isinstance(value, list):
            raise EncodeError(f"expected list for {t}, got {type(value).__name__}", path)
        if not value and not always:
            return _OMIT
        return _sequence_json(t.elem, value, path)
    if isinstance(t, FixedArrayType):
        if t.python_bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise EncodeError(f"expected bytes, got {type(value).__name__}", path)
            return _b64(bytes(value))
        if not isinstance(value, list):
            raise EncodeError(f"expected list for {t}, got {type(value).__name__}", path)
        items = _sequence_json(t.elem, value, path)
        return items if t.packed or t.as_bytes else {"field1": items}
    if isinstance(t, MapType):
        if not isinstance(value, dict):
            raise EncodeError(f"expected dict for {t}, got {type(value).__name__}", path)
        if not value and not always:
            return _OMIT
        return _map_json(t, value, path)
    if isinstance(t, MessageType):
        body = _message_json(message_schema(t.cls), value, path)
        return _OMIT if not body and not always else body
    if isinstance(t, OneofType):
        return _oneof_json(oneof_schema(t.cls), value, path)
    if isinstance(t, TupleType):
        return _tuple_json(t, value, path, always)
    if isinstance(t, DurationType):
        seconds, nanos = duration_parts(value, path)
        if not seconds and not nanos and not always:
            return _OMIT
        return format_duration(seconds, nanos)
    assert isinstance(t, ForeignMessageType)
    try:
        data = foreign.encode(t, value)
    except TypeError as exc:
        raise EncodeError(str(exc), path) from None
    if not data and not always:
        return _OMIT
    return foreign.to_json(t, value)


def _sequence_json(elem: TypeSchema, items: list[Any], path: list[str]) -> Any:
    if isinstance(elem, ScalarType) and elem.kind.name == "u8":
        for i, x in enumerate(items):
            check_scalar(elem.kind, x, [*path, f"[{i}]"])
        return _b64(bytes(items))
    out = []
    for i, item in enumerate(items):
        path.append(f"[{i}]")
        out.append(_value_json(elem, item, path, True))
        path.pop()
    return out


def _map_json(t: MapType, value: dict[Any, Any], path: list[str]) -> Any:
    if isinstance(t.key, ScalarType) and t.key.kind.proto in MAP_KEYS:
        out: dict[str, Any] = {}
        for k, v in value.items():
            path.append(f"[{k!r}]")
            key = check_scalar(t.key.kind, k, path) if t.key.kind.python is not str else k
            if not isinstance(key, (int, str)):
                raise EncodeError(f"expected str key, got {type(k).__name__}", path)
            text = ("true" if key else "false") if isinstance(key, bool) else str(key)
            out[text] = _value_json(t.value, v, path, True)
            path.pop()
        return out
    entries = []
    for k, v in value.items():
        path.append(f"[{k!r}]")
        entry: dict[str, Any] = {}
        kj = _value_json(t.key, k, path, False)
        if kj is not _OMIT:
            entry["key"] = kj
        vj = _value_json(t.value, v, path, False)
        if vj is not _OMIT:
            entry["value"] = vj
        entries.append(entry)
        path.pop()
    return entries


def _tuple_json(t: TupleType, value: Any, path: list[str], always: bool) -> Any:
    if not isinstance(value, tuple) or len(value) != len(t.elems):
        raise EncodeError(f"expected tuple of {len(t.elems)} for {t}, got {value!r}", path)
    body: dict[str, Any] = {}
    for i, (et, ev) in enumerate(zip(t.elems, value, strict=True)):
        path.append(f"[{i}]")
        j = _value_json(et, ev, path, False)
        path.pop()
        if j is not _OMIT:
            body[f"field{i + 1}"] = j
    if not body and not always:
        return _OMIT
    if len(t.elems) == 1 and wrapper_message(t.elems[0]) is not None:
        # A google.protobuf.*Value wrapper: its JSON is the bare value.
        return _value_json(t.elems[0], value[0], [*path, "[0]"], True)
    return body


def format_duration(seconds: int, nanos: int) -> str:
    """A Duration as proto3 JSON: ``"1.000010s"`` (0, 3, 6 or 9 fractional digits)."""
    sign = "-" if seconds < 0 or nanos < 0 else ""
    seconds, nanos = abs(seconds), abs(nanos)
    if nanos == 0:
        frac = ""
    elif nanos % 1_000_000 == 0:
        frac = f".{nanos // 1_000_000:03d}"
    elif nanos % 1000 == 0:
        frac = f".{nanos // 1000:06d}"
    else:
        frac = f".{nanos:09d}"
    return f"{sign}{seconds}{frac}s"


def _member(v: VariantSchema) -> str:
    return snake_case(v.name)


def _oneof_json(schema: OneofSchema, obj: Any, path: list[str]) -> dict[str, Any]:
    variant = next((v for v in schema.variants if type(obj) is v.cls), None)
    if variant is None:
        names = ", ".join(v.name for v in schema.variants)
        raise EncodeError(
            f"expected a variant of {schema.name} ({names}), got {type(obj).__name__}", path
        )
    path.append(variant.name)
    key = json_name(_member(variant))
    fields = variant.message.fields
    if variant.kind == "transparent":
        f = variant.transparent_field
        path.append(f.name)
        body = _value_json(f.type, getattr(obj, f.name), path, True)
        path.pop()
    elif variant.kind == "tuple" and _tuple_wrapped(variant):
        path.append(fields[0].name)
        body = _value_json(fields[0].type, getattr(obj, fields[0].name), path, True)
        path.pop()
    else:
        renamed = variant.kind == "tuple"
        body = {}
        for f in fields:
            path.append(f.name)
            j = _value_json(f.type, getattr(obj, f.name), path, f.always)
            path.pop()
            if j is not _OMIT:
                body[f"field{f.number}" if renamed else json_name(f.name)] = j
        if obj._pb_unknown:
            body[UNKNOWN_KEY] = _b64(obj._pb_unknown)
    path.pop()
    return {key: body}


def _tuple_wrapped(v: VariantSchema) -> bool:
    """A one-field tuple variant described as a ``google.protobuf.*Value`` (see proto.py)."""
    fields = v.message.fields
    return (
        len(fields) == 1
        and not fields[0].doc
        and not fields[0].always
        and wrapper_message(fields[0].type) is not None
    )


# ---------------------------------------------------------------------------------------------
# JSON -> Python values


def from_json(cls: type, text: str | bytes) -> Any:
    """Parse proto3 JSON text as a ``cls`` value (raises ``JsonError``)."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonError(f"invalid JSON: {exc}", [cls.__name__]) from None
    return from_dict(cls, data)


def from_dict(cls: type, data: Any) -> Any:
    """Build a ``cls`` value (a message, Oneof or variant) from its proto3 JSON object."""
    schema = _top_schema(cls)
    path = [cls.__name__]
    if isinstance(schema, OneofSchema):
        value = _parse_oneof(schema, data, path)
        if value is not None and _kind(cls) == "variant" and type(value) is not cls:
            raise JsonError(f"expected variant {cls.__name__}, got {type(value).__name__}",
                            path)
        return value
    return _parse_message(schema, data, path)


def _fail(reason: str, path: list[str]) -> JsonError:
    return JsonError(reason, list(path))


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _expect_object(data: Any, path: list[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(f"expected a JSON object, got {_describe(data)}", path)
    return data


def _parse_unknown(data: dict[str, Any], path: list[str]) -> bytes | None:
    raw = data.get(UNKNOWN_KEY)
    if raw is None:
        return None
    return _parse_b64(raw, [*path, UNKNOWN_KEY]) or None


def _parse_message(schema: MessageSchema, data: Any, path: list[str]) -> Any:
    obj = _expect_object(data, path)
    if _is_blob(schema.cls):
        return _parse_any(schema.cls, obj, path)
    names: dict[str, FieldSchema] = {}
    for f in schema.fields:
        names[f.name] = f
        names[json_name(f.name)] = f
    values: dict[str, Any] = {}
    for key, raw in obj.items():
        if key == UNKNOWN_KEY:
            continue
        fs = names.get(key)
        if fs is None:
            raise _fail(f"unknown field {key!r} of {schema.name}", path)
        if fs.name in values:
            raise _fail(f"field {fs.name!r} given twice", path)
        path.append(fs.name)
        values[fs.name] = _MISSING_FIELD if raw is None else _parse_value(fs.type, raw, path)
        path.pop()
    kwargs: dict[str, Any] = {}
    for f in schema.fields:
        value = values.get(f.name, _MISSING_FIELD)
        if value is _MISSING_FIELD:
            path.append(f.name)
            value = _absent(f, path)
            path.pop()
        kwargs[f.name] = value
    result = schema.cls(**kwargs)
    object.__setattr__(result, "_pb_unknown", _parse_unknown(obj, path))
    return result


_MISSING_FIELD: Any = object()


def _absent(f: FieldSchema, path: list[str]) -> Any:
    """The value of a field the JSON leaves out: what a decode of bytes without it gives."""
    t = f.type
    if isinstance(t, OptionalType):
        return None
    if isinstance(t, RepeatedType):
        return []
    if isinstance(t, MapType):
        return {}
    if isinstance(t, FixedArrayType):
        raise _fail("missing required field (a fixed-length array)", path)
    if isinstance(t, (MessageType, TupleType, ForeignMessageType)):
        return _empty(t, path)
    if f.always or isinstance(t, OneofType):
        default = f.make_default()
        if default is not MISSING:
            return default
        if isinstance(t, OneofType):
            raise _fail("missing required field (a Oneof variant)", path)
    zero = zero_value(t)
    if zero is MISSING:
        default = f.make_default()
        if default is not MISSING:
            return default
        raise _fail(f"missing required field ({t} has no zero value)", path)
    return zero


def _empty(t: TypeSchema, path: list[str]) -> Any:
    if isinstance(t, MessageType):
        return _parse_message(message_schema(t.cls), {}, path)
    if isinstance(t, ForeignMessageType):
        return foreign.decode(t, b"")
    assert isinstance(t, TupleType)
    return tuple(
        _absent(FieldSchema(f"[{i}]", i + 1, e), [*path, f"[{i}]"]) for i, e in enumerate(t.elems)
    )


_INT_TEXT = re.compile(r"-?\d+")


def _parse_int(kind: ScalarKind, raw: Any, path: list[str]) -> int:
    if isinstance(raw, bool):
        raise _fail(f"expected an integer for {kind.name}, got {_describe(raw)}", path)
    if isinstance(raw, int):
        v = raw
    elif (isinstance(raw, float) and raw.is_integer()) or (
        isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip())
    ):
        v = int(raw)
    else:
        raise _fail(f"expected an integer for {kind.name}, got {_describe(raw)}", path)
    if not kind.lo <= v <= kind.hi:
        raise _fail(f"value {v} out of range for {kind.name} ({kind.lo}..{kind.hi})", path)
    return v


_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _parse_float(kind: ScalarKind, raw: Any, path: list[str]) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        v = float(raw)
    elif isinstance(raw, str) and raw in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[raw]
    elif isinstance(raw, str):
        try:
            v = float(raw)
        except ValueError:
            raise _fail(f"expected a number for {kind.name}, got {_describe(raw)}", path) from None
        if not math.isfinite(v):
            raise _fail(f"expected a number for {kind.name}, got {_describe(raw)}", path)
    else:
        raise _fail(f"expected a number for {kind.name}, got {_describe(raw)}", path)
    if kind.encoding == "float" and math.isfinite(v):
        try:
            # The value a decode of the same 32 bits gives (JSON has the shortest decimal).
            v = float(_f32.unpack(_f32.pack(v))[0])
        except OverflowError:
            raise _fail(f"value {v} out of range for f32", path) from None
    return v


def _parse_b64(raw: Any, path: list[str]) -> bytes:
    if not isinstance(raw, str):
        raise _fail(f"expected base64 text, got {_describe(raw)}", path)
    text = raw.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(f"invalid base64: {raw[:40]!r}", path) from None


def _parse_scalar(kind: ScalarKind, raw: Any, path: list[str]) -> Any:
    py = kind.python
    if py is int:
        return _parse_int(kind, raw, path)
    if py is float:
        return _parse_float(kind, raw, path)
    if py is bool:
        if not isinstance(raw, bool):
            raise _fail(f"expected true or false, got {_describe(raw)}", path)
        return raw
    if py is str:
        if not isinstance(raw, str):
            raise _fail(f"expected a string, got {_describe(raw)}", path)
        return raw
    return _parse_b64(raw, path)


def _parse_enum(t: EnumType, raw: Any, path: list[str]) -> enum.IntEnum:
    if isinstance(raw, str):
        for number, name in enum_value_names(t.cls).items():
            if raw == name and number in t.values:
                return t.cls(number)
        member = t.cls.__members__.get(raw)
        if member is not None:
            return member
        raise _fail(f"unknown value {raw!r} for enum {t.cls.__name__}", path)
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw not in t.values:
            raise _fail(f"unknown value {raw} for enum {t.cls.__name__}", path)
        return t.cls(raw)
    raise _fail(f"expected an enum name for {t.cls.__name__}, got {_describe(raw)}", path)


def _parse_value(t: TypeSchema, raw: Any, path: list[str]) -> Any:
    if isinstance(t, OptionalType):
        return None if raw is None else _parse_value(t.inner, raw, path)
    if isinstance(t, ScalarType):
        return _parse_scalar(t.kind, raw, path)
    if isinstance(t, EnumType):
        return _parse_enum(t, raw, path)
    if isinstance(t, RepeatedType):
        return _parse_sequence(t.elem, raw, path)
    if isinstance(t, FixedArrayType):
        if t.python_bytes:
            value: Any = _parse_b64(raw, path)
        elif t.packed or t.as_bytes:
            value = _parse_sequence(t.elem, raw, path)
        else:
            inner = _expect_object(raw, path)
            extra = set(inner) - {"field1"}
            if extra:
                raise _fail(f"unknown field {sorted(extra)[0]!r} of the array wrapper", path)
            value = _parse_sequence(t.elem, inner.get("field1", []), path)
        if len(value) != t.length:
            raise _fail(f"expected {t.length} elements, got {len(value)}", path)
        return value
    if isinstance(t, MapType):
        return _parse_map(t, raw, path)
    if isinstance(t, MessageType):
        return _parse_message(message_schema(t.cls), raw, path)
    if isinstance(t, OneofType):
        return _parse_oneof(oneof_schema(t.cls), raw, path)
    if isinstance(t, TupleType):
        return _parse_tuple(t, raw, path)
    if isinstance(t, DurationType):
        return parse_duration(raw, path)
    assert isinstance(t, ForeignMessageType)
    try:
        return foreign.from_json(t, raw)
    except ValueError as exc:
        raise _fail(str(exc), path) from None


def _parse_sequence(elem: TypeSchema, raw: Any, path: list[str]) -> list[Any]:
    if isinstance(elem, ScalarType) and elem.kind.name == "u8":
        return list(_parse_b64(raw, path))
    if not isinstance(raw, list):
        raise _fail(f"expected a JSON array, got {_describe(raw)}", path)
    out = []
    for i, item in enumerate(raw):
        path.append(f"[{i}]")
        if item is None:
            raise _fail("null is not a valid element", path)
        out.append(_parse_value(elem, item, path))
        path.pop()
    return out


def _parse_map(t: MapType, raw: Any, path: list[str]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    if isinstance(t.key, ScalarType) and t.key.kind.proto in MAP_KEYS:
        kind = t.key.kind
        for text, item in _expect_object(raw, path).items():
            path.append(f"[{text!r}]")
            if kind.python is bool:
                if text not in ("true", "false"):
                    raise _fail(f"expected a bool map key, got {text!r}", path)
                key: Any = text == "true"
            else:
                key = _parse_scalar(kind, text, path)
            out[key] = _parse_value(t.value, item, path)
            path.pop()
        return out
    if not isinstance(raw, list):
        raise _fail(f"expected a JSON array of entries, got {_describe(raw)}", path)
    for i, entry in enumerate(raw):
        path.append(f"[{i}]")
        obj = _expect_object(entry, path)
        extra = set(obj) - {"key", "value"}
        if extra:
            raise _fail(f"unknown field {sorted(extra)[0]!r} of a map entry", path)
        key = _entry_part(FieldSchema("key", 1, t.key), obj, path)
        out[key] = _entry_part(FieldSchema("value", 2, t.value), obj, path)
        path.pop()
    return out


def _entry_part(f: FieldSchema, obj: dict[str, Any], path: list[str]) -> Any:
    path.append(f.name)
    raw = obj.get(f.name)
    value = _absent(f, path) if raw is None else _parse_value(f.type, raw, path)
    path.pop()
    return value


def _parse_tuple(t: TupleType, raw: Any, path: list[str]) -> tuple[Any, ...]:
    if len(t.elems) == 1 and wrapper_message(t.elems[0]) is not None:
        return (_parse_value(t.elems[0], raw, [*path, "[0]"]),)
    obj = _expect_object(raw, path)
    names = {f"field{i + 1}": i for i in range(len(t.elems))}
    for key in obj:
        if key not in names:
            raise _fail(f"unknown field {key!r} of {t}", path)
    out = []
    for i, e in enumerate(t.elems):
        out.append(_entry_part(FieldSchema(f"field{i + 1}", i + 1, e), obj, path))
    return tuple(out)


_DURATION = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s")


def parse_duration(raw: Any, path: list[str]) -> datetime.timedelta:
    if not isinstance(raw, str):
        raise _fail(f"expected a duration string like \"1.5s\", got {_describe(raw)}", path)
    m = _DURATION.fullmatch(raw)
    if m is None:
        raise _fail(f"expected a duration string like \"1.5s\", got {raw!r}", path)
    seconds = int(m.group(2))
    nanos = int((m.group(3) or "").ljust(9, "0"))
    if m.group(1):
        seconds, nanos = -seconds, -nanos
    try:
        value: datetime.timedelta = duration_from_parts(seconds, nanos)
    except DecodeError as exc:
        raise _fail(exc.reason, path) from None
    return value


def _parse_oneof(schema: OneofSchema, raw: Any, path: list[str]) -> Any:
    obj = _expect_object(raw, path)
    keys = list(obj)
    if len(keys) != 1:
        if not keys:
            raise _fail(f"missing variant of {schema.name}", path)
        raise _fail(f"a {schema.name} holds one variant, got {len(keys)}: {keys}", path)
    key = keys[0]
    variant = None
    for v in schema.variants:
        member = _member(v)
        if key in (member, json_name(member), v.name):
            variant = v
            break
    if variant is None:
        raise _fail(f"unknown variant {key!r} of {schema.name}", path)
    body = obj[key]
    path.append(variant.name)
    fields = variant.message.fields
    if variant.kind == "transparent" or (variant.kind == "tuple" and _tuple_wrapped(variant)):
        f = fields[0]
        path.append(f.name)
        value = _parse_value(f.type, body, path)
        path.pop()
        result = variant.cls(**{f.name: value})
    elif variant.kind == "tuple":
        inner = _expect_object(body, path)
        renamed = {f"field{f.number}": f for f in fields}
        for k in inner:
            if k not in renamed and k != UNKNOWN_KEY and k not in {f.name for f in fields}:
                raise _fail(f"unknown field {k!r} of {variant.name}", path)
        kwargs: dict[str, Any] = {}
        for f in fields:
            raw_value = inner.get(f"field{f.number}", inner.get(f.name))
            path.append(f.name)
            kwargs[f.name] = _absent(f, path) if raw_value is None else _parse_value(
                f.type, raw_value, path
            )
            path.pop()
        result = variant.cls(**kwargs)
        object.__setattr__(result, "_pb_unknown", _parse_unknown(inner, path))
    else:
        result = _parse_message(variant.message, body, path)
    path.pop()
    return result


def _parse_any(blob_cls: type, obj: dict[str, Any], path: list[str]) -> Any:
    """A blob (of the ``google.protobuf.Any`` class ``blob_cls``) from its JSON object."""
    if not obj:
        return blob_cls()
    url = obj.get(TYPE_KEY)
    if not isinstance(url, str):
        raise _fail(f"a blob needs \"{TYPE_KEY}\" (its type URL), got {_describe(url)}",
                    path)
    unknown = None
    if VALUE_KEY in obj:
        extra = set(obj) - {TYPE_KEY, VALUE_KEY, UNKNOWN_KEY}
        if extra:
            raise _fail(f"unknown field {sorted(extra)[0]!r} next to {VALUE_KEY}", path)
        value = _parse_b64(obj[VALUE_KEY], [*path, VALUE_KEY])
        unknown = _parse_unknown(obj, path)
    else:
        root = root_for_url(url)
        if root is None:
            raise _fail(
                f"type URL {url!r} names no registered saved-state root (import its module, "
                f"or give the payload as \"{VALUE_KEY}\")",
                path,
            )
        rest = {k: v for k, v in obj.items() if k != TYPE_KEY}
        if _is_blob(root):
            if set(rest) - {"value"}:
                raise _fail(f"unknown field {sorted(set(rest) - {'value'})[0]!r}", path)
            inner = _parse_any(root, _expect_object(rest.get("value", {}), [*path, "value"]),
                               [*path, "value"])
        else:
            inner = _parse_message(message_schema(root), rest, [*path, root.__name__])
        try:
            value = inner.encode()
        except EncodeError as exc:
            raise _fail(str(exc), path) from None
    blob = blob_cls(type_url=url, value=value)
    object.__setattr__(blob, "_pb_unknown", unknown)
    return blob
