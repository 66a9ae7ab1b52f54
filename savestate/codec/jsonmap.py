"""The proto3 JSON mapping of saved states: ``to_dict``/``from_dict``, ``to_json``/``from_json``.

The JSON is what ``google.protobuf.json_format.MessageToDict`` prints for the same bytes, read
through the ``.proto`` files savestate emits (:mod:`savestate.schemaio.proto`): field names in
lowerCamelCase (both that and the declared name are accepted), fields at their zero value left
out unless the bytes carry them, 64-bit integers as strings, bytes as base64, enums by their
``.proto`` value names, ``NaN``/``Infinity``/``-Infinity`` as strings, a Oneof as an object whose
single key is its variant's member name, ``timedelta`` as a Duration string (``"1.000010s"``), a
blob (``SavedStateBlob``, a ``google.protobuf.Any``) as ``{"@type": url, ...fields}``. Names,
presence and absence are the wire plan's (:mod:`savestate.model.plan`), as for the bytes.

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
import json
import math
import re
import struct
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..errors import (
    DecodeError,
    EncodeError,
    UnknownFieldsDropped,
    path_text,
    warn_unknown_dropped,
)
from ..model import foreign
from ..model.plan import (
    Absent,
    Container,
    EnumValue,
    FieldPlan,
    Form,
    MessagePlan,
    Presence,
    ScalarValue,
    ZeroTest,
    duration_json,
    plan_of,
)
from ..model.registry import info_of, is_any, root_for_url
from ..model.scalars import U8, ScalarKind
from .duration import MAX_DURATION_SECONDS, duration_from_parts, duration_parts, expected
from .interp import MAX_FIELD, check_enum, check_scalar, drops_refused, refusing_drops, unwrap
from .wire import WireError, read_varint, skip_field

__all__ = ["UNKNOWN_KEY", "VALUE_KEY", "JsonError", "from_dict", "from_json", "to_dict",
           "to_json"]

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


def _top(cls: type) -> MessagePlan:
    if info_of(cls) is None:
        raise EncodeError(f"{getattr(cls, '__name__', cls)!r} is not a savestate class")
    return plan_of(cls)


# ---------------------------------------------------------------------------------------------
# Python values -> JSON


# How many more levels of messages the walk in progress may enter (blobs inside blobs count:
# their contents are expanded). A context variable, so that threads and nested calls each
# have their own.
_levels_left: ContextVar[int] = ContextVar("savestate_json_levels_left", default=100)


def to_dict(obj: Any, *, max_depth: int = 100) -> dict[str, Any]:
    """The proto3 JSON object of a message (or Oneof variant) value; a value nested deeper
    than ``max_depth`` messages, blobs expanded, is an EncodeError (as ``encode`` refuses)."""
    cls = type(obj)
    plan = _top(cls)
    path = [cls.__name__ if plan.form is not Form.ONEOF else plan.name]
    token = _levels_left.set(max_depth)
    try:
        body, _ = _message_json(plan, obj, path)
    except RecursionError:
        raise EncodeError("nesting too deep for the Python stack", path[:1]) from None
    finally:
        _levels_left.reset(token)
    assert isinstance(body, dict)
    return body


def to_json(obj: Any, *, indent: int | None = None, max_depth: int = 100) -> str:
    """``to_dict`` as JSON text (compact unless ``indent`` is given)."""
    separators = (",", ":") if indent is None else None
    return json.dumps(to_dict(obj, max_depth=max_depth), indent=indent, separators=separators,
                      ensure_ascii=False)


def _message_json(m: MessagePlan, value: Any, path: list[str]) -> tuple[Any, bool]:
    """The JSON of a message's value, and whether its encoding would be empty: one level."""
    left = _levels_left.get()
    if left <= 0 and m.form is not Form.FOREIGN:
        raise EncodeError("nesting deeper than the limit (max_depth)", path)
    token = _levels_left.set(left - 1)
    try:
        return _message_body_json(m, value, path)
    finally:
        _levels_left.reset(token)


def _message_body_json(m: MessagePlan, value: Any, path: list[str]) -> tuple[Any, bool]:
    form = m.form
    if form is Form.STRUCT:
        if m.cls is not None and type(value) is not m.cls:
            raise expected(m.cls.__name__, value, path)
        if m.described_as is not None and is_any(m.cls):
            body = _any_json(value, path)
            return body, not body
        out = _fields_json(m, value, path)
        unknown = value._pb_unknown
        if m.value_wrapper:  # a tuple variant written as a google.protobuf.*Value: bare
            if unknown:  # a bare value has nowhere to keep them: said, as a decode says it
                if drops_refused():
                    raise _DropRefused
                warn_unknown_dropped(
                    f"{path_text(path)}: {len(unknown)} bytes of unknown fields dropped: "
                    "the JSON of a one-field tuple variant is its bare value"
                )
            return _bare_json(m, getattr(value, m.fields[0].attr), path), not out  # type: ignore[arg-type]
        if unknown:
            out[UNKNOWN_KEY] = _b64(unknown)
        return out, not out
    if form is Form.ONEOF:
        member = m.variant_field(type(value))
        if member is None:
            names = ", ".join(f.pyname for f in m.fields)
            raise EncodeError(
                f"expected a variant of {m.name} ({names}), got {type(value).__name__}", path
            )
        return {member.json_name: _field_json(member, value, path)}, False
    if form is Form.TUPLE:
        if not isinstance(value, tuple) or len(value) != len(m.fields):
            raise expected(f"tuple of {len(m.fields)}", value, path)
        out = _fields_json(m, value, path)
        if m.value_wrapper:  # a google.protobuf.*Value: its JSON is the bare value
            return _bare_json(m, value[0], path), not out
        return out, not out
    if form is Form.WRAPPER:
        out = {}
        j = _field_json(m.fields[0], value, path)
        if j is not _OMIT:
            out["field1"] = j
        return out, not out
    if form is Form.ENTRY:
        out = _fields_json(m, value, path)
        return out, not out
    if form is Form.DURATION:
        seconds, nanos = duration_parts(value, path)  # checks the type and the range
        return duration_json(value), not seconds and not nanos
    assert m.foreign is not None
    try:
        data = foreign.encode(m.foreign, value)
    except TypeError as exc:
        raise EncodeError(str(exc), path) from None
    try:
        return foreign.to_json(m.foreign, value), not data
    except ValueError as exc:
        raise EncodeError(str(exc), path) from None


def _bare_json(m: MessagePlan, value: Any, path: list[str]) -> Any:
    f = m.fields[0]
    path.append(f.pyname)
    value, count = unwrap(f, value, path)  # a transparent class: its inner value
    bare = _value_json(f, value, path, always=True)
    del path[len(path) - 1 - count:]
    return bare


def _fields_json(m: MessagePlan, value: Any, path: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in m.fields:
        item = getattr(value, f.attr) if m.form is Form.STRUCT else value[f.attr]  # type: ignore[arg-type]
        j = _field_json(f, item, path)
        if j is not _OMIT:
            out[f.json_name] = j
    return out


def _field_json(f: FieldPlan, value: Any, path: list[str]) -> Any:
    """The JSON of one field's value, or _OMIT when its bytes would leave it out."""
    if value is None and f.presence is Presence.EXPLICIT and f.none_at == 0:
        return _OMIT
    pushed = 0
    if f.pyname:
        path.append(f.pyname)
        pushed = 1
    value, count = unwrap(f, value, path)
    pushed += count
    try:
        return _field_value_json(f, value, path)
    finally:
        del path[len(path) - pushed:]


def _field_value_json(f: FieldPlan, value: Any, path: list[str]) -> Any:
    if f.presence is Presence.EXPLICIT and value is None:
        return _OMIT
    skip_zero = f.zero_test is not ZeroTest.NONE
    container = f.container
    if container is Container.LIST:
        if not isinstance(value, list):
            raise expected("list", value, path)
        if f.length is not None and len(value) != f.length:
            raise EncodeError(f"expected {f.length} elements, got {len(value)}", path)
        if not value and skip_zero:
            return _OMIT
        out = []
        for i, item in enumerate(value):
            path.append(f"[{i}]")
            for newtype in f.elem_unwrap:
                if type(item) is not newtype.cls:
                    raise expected(newtype.cls.__name__, item, path)
                item = newtype.unwrap(item)
            out.append(_value_json(f, item, path, always=True))
            path.pop()
        return out
    if container is Container.DICT:
        if not isinstance(value, dict):
            raise expected("dict", value, path)
        if not value and skip_zero:
            return _OMIT
        return _map_json(f, value, path)
    if container is Container.BYTES_LIST:
        if not isinstance(value, list):
            raise expected("list", value, path)
        for i, x in enumerate(value):
            path.append(f"[{i}]")
            check_scalar(U8, x, path)
            path.pop()
        if f.length is not None and len(value) != f.length:
            raise EncodeError(f"expected {f.length} elements, got {len(value)}", path)
        if not value and skip_zero:
            return _OMIT
        return _b64(bytes(value))
    if f.length is not None and isinstance(f.value, ScalarValue):  # a fixed bytes array
        data = check_scalar(f.value.kind, value, path)
        if len(data) != f.length:
            raise EncodeError(f"expected {f.length} bytes, got {len(data)}", path)
    elif f.length is not None:  # a fixed array of messages, in its wrapper
        if not isinstance(value, list):
            raise expected("list", value, path)
        if len(value) != f.length:
            raise EncodeError(f"expected {f.length} elements, got {len(value)}", path)
    return _value_json(f, value, path, always=not skip_zero)


def _value_json(f: FieldPlan, value: Any, path: list[str], always: bool) -> Any:
    """The JSON of one value of field ``f``, or _OMIT for a zero that is not written."""
    vp = f.value
    if isinstance(vp, ScalarValue):
        kind = vp.kind
        v = check_scalar(kind, value, path)
        if kind.python is str:
            v = value
        if not always and (
            (v == 0.0 and math.copysign(1.0, v) > 0) if f.zero_test is ZeroTest.FLOAT else not v
        ):
            return _OMIT
        return _scalar_json(kind, v)
    if isinstance(vp, EnumValue):
        number = check_enum(vp, value, path)
        if not always and not number:
            return _OMIT
        return vp.names[number]
    body, empty = _message_json(vp.message, value, path)
    return _OMIT if empty and not always else body


def _map_json(f: FieldPlan, value: dict[Any, Any], path: list[str]) -> Any:
    entry = f.message
    assert entry is not None
    key_f, value_f = entry.fields
    if f.is_map:
        out: dict[str, Any] = {}
        kind = key_f.value.kind  # type: ignore[union-attr]
        for k, v in value.items():
            path.append(f"[{k!r}]")
            key = check_scalar(kind, k, path)
            text = ("true" if key else "false") if kind.python is bool else (
                k if kind.python is str else str(key)
            )
            for newtype in value_f.unwrap:
                if type(v) is not newtype.cls:
                    raise expected(newtype.cls.__name__, v, path)
                v = newtype.unwrap(v)
            out[text] = _value_json(value_f, v, path, always=True)
            path.pop()
        return out
    entries = []
    for k, v in value.items():
        path.append(f"[{k!r}]")
        body, _ = _message_json(entry, (k, v), path)
        entries.append(body)
        path.pop()
    return entries


class _DropRefused(Exception):
    """The JSON of a value would drop unknown fields, within ``refusing_drops``."""


# Set (by ``strict_blobs``) while a blob whose bytes do not decode as the registered root its
# type URL names is an error, not JSON holding its bytes.
_strict_blobs: ContextVar[bool] = ContextVar("savestate_strict_blobs", default=False)


@contextmanager
def strict_blobs() -> Iterator[None]:
    """Within it, the JSON of a blob whose type URL names a registered root, and whose bytes
    do not decode as that root, raises the ``DecodeError`` (its path under the blob's) instead
    of holding the bytes as ``"@value"``: for a reader that must not show a corrupt state as
    an opaque one (``savestate decode`` and ``diff``). A blob kept as its bytes because its
    JSON would drop unknown fields is still its bytes."""
    token = _strict_blobs.set(True)
    try:
        yield
    finally:
        _strict_blobs.reset(token)


class _Undecodable(DecodeError):
    """A blob's bytes do not decode as its root, within ``strict_blobs``: raised through the
    blobs it is inside, which are not to be shown as their bytes for it."""


def _refuse_undecodable(root: Any, value: bytes, left: int, path: list[str]) -> None:
    """Raise the ``DecodeError`` of ``value`` as ``root``, if it has one: not a decode that
    only refused to drop unknown fields, which the blob's bytes keep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownFieldsDropped)
        try:
            root.decode(value, max_depth=left)
        except DecodeError as exc:
            raise _Undecodable(exc.reason, [*path, *exc.path]) from exc


def _any_json(blob: Any, path: list[str]) -> dict[str, Any]:
    url, value, unknown = blob.type_url, blob.value, blob._pb_unknown
    if not url and not value and not unknown:
        return {}
    out: dict[str, Any] = {TYPE_KEY: url}
    root = root_for_url(url) if not unknown else None
    left = _levels_left.get()
    if root is not None and left <= 0:
        raise EncodeError("nesting deeper than the limit (max_depth), blobs expanded", path)
    if root is not None:
        # The blob's contents, within what is left of the limit, unless a decode or the JSON
        # would drop unknown fields held where they cannot be kept: then its bytes, which
        # keep everything.
        try:
            with refusing_drops():
                inner = root.decode(value, max_depth=left)  # type: ignore[attr-defined]
                if is_any(root):
                    expanded = {"value": _any_json(inner, [*path, "value"])}
                else:
                    expanded, _ = _message_json(plan_of(root), inner, [*path, root.__name__])
        except _Undecodable:
            raise
        except (DecodeError, _DropRefused):
            if _strict_blobs.get():
                _refuse_undecodable(root, value, left, path)
            expanded = None
        if expanded is not None:
            out.update(expanded)
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


# ---------------------------------------------------------------------------------------------
# JSON -> Python values


def from_json(cls: type, text: str | bytes, *, max_depth: int = 100) -> Any:
    """Parse proto3 JSON text as a ``cls`` value (raises ``JsonError`` and nothing else, for
    any text)."""
    try:
        data = json.loads(
            text, object_pairs_hook=_object_once, parse_constant=_no_constant, parse_int=_json_int
        )
    except _RepeatedKey as exc:
        raise JsonError(f"key {exc.args[0]!r} given twice in one object", [cls.__name__]) from None
    except _LongInteger as exc:
        raise JsonError(
            f"invalid JSON: an integer of {exc.args[0]} digits, longer than any field holds",
            [cls.__name__],
        ) from None
    except RecursionError:
        raise JsonError("invalid JSON: nested too deeply", [cls.__name__]) from None
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise JsonError(f"invalid JSON: {exc}", [cls.__name__]) from None
    return from_dict(cls, data, max_depth=max_depth)


class _RepeatedKey(ValueError):
    """A JSON object that names one key twice, which ``json.loads`` would collapse to the last."""


class _LongInteger(ValueError):
    """An integer literal past the digits Python converts (``sys.get_int_max_str_digits``),
    whose own error would suggest raising that limit: no field holds such a number."""


def _json_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _LongInteger(len(text.lstrip("-"))) from None


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    # ``NaN`` and ``Infinity`` are not JSON; proto3 JSON spells them as strings.
    raise ValueError(f"{name} is not JSON (write the string \"{name}\")")


def from_dict(cls: type, data: Any, *, max_depth: int = 100) -> Any:
    """Build a ``cls`` value (a message, Oneof or variant) from its proto3 JSON object; JSON
    nested deeper than ``max_depth`` messages, which ``decode`` would refuse as bytes, is a
    ``JsonError``."""
    plan = _top(cls)
    path = [cls.__name__]
    token = _levels_left.set(max_depth)
    try:
        value = _parse_message(plan, data, path)
    except RecursionError:
        raise JsonError("nesting too deep for the Python stack", path) from None
    finally:
        _levels_left.reset(token)
    info = info_of(cls)
    if info is not None and info.kind == "variant" and type(value) is not cls:
        raise JsonError(f"expected variant {cls.__name__}, got {type(value).__name__}", path)
    return value


def _fail(reason: str, path: list[str]) -> JsonError:
    return JsonError(reason, list(path))


def _describe(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # its text would be huge, or refused
        return f"{type(value).__name__} of {value.bit_length()} bits"
    try:
        text = json.dumps(value) if not isinstance(value, float) else repr(value)
    except (ValueError, TypeError, RecursionError):  # a huge int, or no JSON value at all
        text = f"<{type(value).__name__}>"
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _expect_object(data: Any, path: list[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _fail(f"expected a JSON object, got {_describe(data)}", path)
    return data


def _parse_unknown(m: MessagePlan, data: Mapping[str, Any], path: list[str]) -> bytes | None:
    """The unknown fields given as ``"@unknown"``: whole records of numbers ``m`` does not know,
    else encoding them would write bytes that do not decode, or that decode to other values."""
    raw = data.get(UNKNOWN_KEY)
    if raw is None:
        return None
    where = [*path, UNKNOWN_KEY]
    records = _parse_b64(raw, where)
    pos = 0
    try:
        while pos < len(records):
            tag, pos = read_varint(records, pos, len(records))
            if tag >> 3 == 0:
                raise WireError("field number 0")
            if tag >> 3 > MAX_FIELD:  # a decode refuses it, so the state would not load again
                raise WireError(f"field number {tag >> 3} is out of range")
            known = m.by_number.get(tag >> 3)
            if known is not None:  # a decode reads it as the field, never keeps it unknown
                raise _fail(f"holds field {tag >> 3}, which is {m.name}.{known.name}", where)
            pos = skip_field(records, pos, len(records), tag & 7)
    except WireError as exc:
        raise _fail(f"not protobuf records: {exc}", where) from None
    return records or None


def _parse_message(m: MessagePlan, raw: Any, path: list[str]) -> Any:
    """The value of message ``m`` from its JSON: one level."""
    left = _levels_left.get()
    if left <= 0 and m.form is not Form.FOREIGN:
        raise _fail("nesting deeper than the limit (max_depth)", path)
    token = _levels_left.set(left - 1)
    try:
        return _parse_message_body(m, raw, path)
    finally:
        _levels_left.reset(token)


def _parse_message_body(m: MessagePlan, raw: Any, path: list[str]) -> Any:
    form = m.form
    if form is Form.ONEOF:
        return _parse_oneof(m, raw, path)
    if form is Form.DURATION:
        return parse_duration(raw, path)
    if form is Form.FOREIGN:
        assert m.foreign is not None
        try:
            return foreign.from_json(m.foreign, raw)
        except ValueError as exc:
            raise _fail(str(exc), path) from None
    if m.value_wrapper:
        return _build(m, [_parse_field(m.fields[0], raw, path)], None)
    obj = _expect_object(raw, path)
    if form is Form.STRUCT and m.described_as is not None and is_any(m.cls):
        return _parse_any(m, obj, path)
    by_key: dict[str, FieldPlan] = {}
    for f in m.fields:
        by_key[f.json_name] = f
        by_key[f.name] = f
        if form is Form.STRUCT and isinstance(f.attr, str):
            by_key[f.attr] = f
    values: dict[int, Any] = {}
    for key, item in obj.items():
        if key == UNKNOWN_KEY and m.keeps_unknown:
            continue
        found = by_key.get(key)
        if found is None:
            raise _fail(f"unknown field {key!r} of {m.name}", path)
        if found.number in values:
            raise _fail(f"field {found.pyname or found.name!r} given twice", path)
        if item is not None:
            values[found.number] = _parse_field(found, item, path)
    out = [values[f.number] if f.number in values else _absent(f, path) for f in m.fields]
    return _build(m, out, _parse_unknown(m, obj, path) if m.keeps_unknown else None)


def _build(m: MessagePlan, values: list[Any], unknown: bytes | None) -> Any:
    """The Python value of message ``m`` from the values of its fields."""
    if m.form is Form.STRUCT:
        assert m.cls is not None
        kwargs = {str(f.attr): v for f, v in zip(m.fields, values, strict=True)}
        # Read back, not constructed: __post_init__ is not called, as a decode calls none.
        cls: Any = m.cls
        result = object.__new__(cls)
        cls._pb_fill(result, **kwargs)
        object.__setattr__(result, "_pb_unknown", unknown)
        return result
    if m.form is Form.WRAPPER:
        return values[0]
    return tuple(values)  # TUPLE, ENTRY


def _absent(f: FieldPlan, path: list[str]) -> Any:
    """The value of a field the JSON leaves out: what a decode of bytes without it gives."""
    if f.absent is Absent.REQUIRED:
        raise _fail(f.required, [*path, f.pyname] if f.pyname else path)
    if f.absent is Absent.EMPTY_MESSAGE:
        message = f.message
        assert message is not None
        where = [*path, f.pyname]
        if message.value_wrapper:  # its JSON is a bare value: build it from its absences
            value = _build(message, [_absent(g, where) for g in message.fields], None)
        else:
            value = _parse_message(message, {}, where)
        for newtype in reversed(f.unwrap):
            value = newtype.wrap(value)
        return value
    return f.absent_value()


def _parse_field(f: FieldPlan, raw: Any, path: list[str]) -> Any:
    pushed = 0
    if f.pyname:
        path.append(f.pyname)
        pushed = 1
    try:
        value = _parse_field_value(f, raw, path)
    finally:
        del path[len(path) - pushed:]
    return _wrap(f, value)


def _wrap(f: FieldPlan, value: Any) -> Any:
    """The Python value of a field from its wire value: transparent classes built around."""
    for newtype in reversed(f.unwrap):
        value = newtype.wrap(value)
    return value


def _parse_field_value(f: FieldPlan, raw: Any, path: list[str]) -> Any:
    container = f.container
    if container is Container.LIST:
        if not isinstance(raw, list):
            raise _fail(f"expected a JSON array, got {_describe(raw)}", path)
        out = []
        for i, item in enumerate(raw):
            path.append(f"[{i}]")
            if item is None:
                raise _fail("null is not a valid element", path)
            value = _parse_value(f, item, path)
            for newtype in reversed(f.elem_unwrap):
                value = newtype.wrap(value)
            out.append(value)
            path.pop()
        _check_count(f, len(out), path)
        return out
    if container is Container.DICT:
        return _parse_map(f, raw, path)
    if container is Container.BYTES_LIST:
        data = list(_parse_b64(raw, path))
        _check_count(f, len(data), path)
        return data
    value = _parse_value(f, raw, path)
    if f.length is not None:  # fixed bytes, or the list a wrapper message holds
        _check_count(f, len(value), path)
    return value


def _check_count(f: FieldPlan, count: int, path: list[str]) -> None:
    if f.length is not None and count != f.length:
        raise _fail(f"expected {f.length} elements, got {count}", path)


def _parse_value(f: FieldPlan, raw: Any, path: list[str]) -> Any:
    vp = f.value
    if isinstance(vp, ScalarValue):
        return _parse_scalar(vp.kind, raw, path)
    if isinstance(vp, EnumValue):
        return _parse_enum(vp, raw, path)
    return _parse_message(vp.message, raw, path)


def _parse_map(f: FieldPlan, raw: Any, path: list[str]) -> dict[Any, Any]:
    entry = f.message
    assert entry is not None
    key_f, value_f = entry.fields
    out: dict[Any, Any] = {}
    if f.is_map:
        kind = key_f.value.kind  # type: ignore[union-attr]
        for text, item in _expect_object(raw, path).items():
            path.append(f"[{text!r}]")
            if kind.python is bool:
                if text not in ("true", "false"):
                    raise _fail(f"expected a bool map key, got {text!r}", path)
                key: Any = text == "true"
            else:
                key = _parse_scalar(kind, text, path)
            if item is None:
                out[key] = _absent(value_f, path)
            else:
                out[key] = _wrap(value_f, _parse_field_value(value_f, item, path))
            path.pop()
        return out
    if not isinstance(raw, list):
        raise _fail(f"expected a JSON array of entries, got {_describe(raw)}", path)
    for i, item in enumerate(raw):
        path.append(f"[{i}]")
        key, value = _parse_message(entry, item, path)
        out[key] = value
        path.pop()
    return out


_INT_TEXT = re.compile(r"-?\d+")


def _parse_int(kind: ScalarKind, raw: Any, path: list[str]) -> int:
    if isinstance(raw, bool):
        raise _fail(f"expected an integer for {kind.name}, got {_describe(raw)}", path)
    if isinstance(raw, int):
        v = raw
    elif (isinstance(raw, float) and raw.is_integer()) or (
        isinstance(raw, str) and _INT_TEXT.fullmatch(raw)
    ):
        if isinstance(raw, str) and len(raw) > 40:  # no integer of a width has more digits
            raise _fail(
                f"value {_describe(raw)} out of range for {kind.name} ({kind.lo}..{kind.hi})", path
            )
        v = int(raw)
    else:
        raise _fail(f"expected an integer for {kind.name}, got {_describe(raw)}", path)
    if not kind.lo <= v <= kind.hi:
        shown = v if v.bit_length() <= 128 else _describe(v)
        raise _fail(f"value {shown} out of range for {kind.name} ({kind.lo}..{kind.hi})", path)
    return v


_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _parse_float(kind: ScalarKind, raw: Any, path: list[str]) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            v = float(raw)
        except OverflowError:  # an integer past the largest double
            v = math.inf
        if math.isinf(v):  # 1e400: JSON spells infinity as a string
            raise _fail(f"value {_describe(raw)} out of range for {kind.name}", path)
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
        if not raw.isascii():
            try:
                raw.encode()
            except UnicodeEncodeError as exc:  # a lone surrogate ("\\ud800"): no UTF-8 text
                raise _fail(f"string is not valid UTF-8: {exc.reason} at {exc.start}", path) \
                    from None
        return raw
    return _parse_b64(raw, path)


def _parse_enum(vp: EnumValue, raw: Any, path: list[str]) -> Any:
    cls = vp.cls
    if isinstance(raw, str):
        number = vp.number_of(raw)
        if number is None:
            raise _fail(f"unknown value {raw!r} for enum {cls.__name__}", path)
        return vp.members[number]
    if isinstance(raw, int) and not isinstance(raw, bool):
        member = vp.members.get(raw)
        if member is None:
            raise _fail(f"unknown value {_describe(raw)} for enum {cls.__name__}", path)
        return member
    raise _fail(f"expected an enum name for {cls.__name__}, got {_describe(raw)}", path)


_DURATION = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s")


def parse_duration(raw: Any, path: list[str]) -> Any:
    """The ``timedelta`` of a proto3 JSON duration string such as ``"1.5s"`` or ``"-0.25s"``
    (seconds, then up to nine fractional digits). Raises ``JsonError`` at ``path`` for anything
    else, and for a duration outside ``google.protobuf.Duration``'s range or finer than a
    microsecond."""
    if not isinstance(raw, str):
        raise _fail(f"expected a duration string like \"1.5s\", got {_describe(raw)}", path)
    m = _DURATION.fullmatch(raw)
    if m is None:
        raise _fail(f"expected a duration string like \"1.5s\", got {raw!r}", path)
    digits = m.group(2).lstrip("0")
    if len(digits) > len(str(MAX_DURATION_SECONDS)):  # and past what int() takes, at 4,300
        raise _fail(f"duration seconds {_describe(raw)} out of range", path)
    seconds = int(digits or "0")
    nanos = int((m.group(3) or "").ljust(9, "0"))
    if m.group(1):
        seconds, nanos = -seconds, -nanos
    try:
        return duration_from_parts(seconds, nanos)
    except DecodeError as exc:
        raise _fail(exc.reason, path) from None


def _parse_oneof(m: MessagePlan, raw: Any, path: list[str]) -> Any:
    obj = _expect_object(raw, path)
    keys = list(obj)
    if len(keys) != 1:
        if not keys:
            raise _fail(f"missing variant of {m.name}", path)
        raise _fail(f"a {m.name} holds one variant, got {len(keys)}: {keys}", path)
    key = keys[0]
    member = next(
        (f for f in m.fields if key in (f.name, f.json_name, f.pyname)), None
    )
    if member is None:
        raise _fail(f"unknown variant {key!r} of {m.name}", path)
    return _parse_field(member, obj[key], path)


def _parse_any(m: MessagePlan, obj: Mapping[str, Any], path: list[str]) -> Any:
    cls = m.cls
    assert cls is not None
    if not obj:
        return cls()
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
        unknown = _parse_unknown(m, obj, path)
    else:
        root = root_for_url(url)
        if root is None:
            raise _fail(
                f"type URL {url!r} names no registered saved-state root (import its module, "
                f"or give the payload as \"{VALUE_KEY}\")",
                path,
            )
        rest = {k: v for k, v in obj.items() if k != TYPE_KEY}
        if is_any(root):
            if set(rest) - {"value"}:
                raise _fail(f"unknown field {sorted(set(rest) - {'value'})[0]!r}", path)
            where = [*path, "value"]
            inner = _parse_any(plan_of(root), _expect_object(rest.get("value", {}), where), where)
        else:
            inner = _parse_message(plan_of(root), rest, [*path, root.__name__])
        try:
            value = inner.encode()
        except EncodeError as exc:
            raise _fail(str(exc), path) from None
    blob = cls(type_url=url, value=value)
    object.__setattr__(blob, "_pb_unknown", unknown)
    return blob
