"""Hypothesis strategies: random savestate schemas, and values for any schema."""

from __future__ import annotations

import datetime
import enum
import itertools
from typing import Any

from hypothesis import strategies as st

from savestate import Oneof, Protobuf, field, schema_of
from savestate.model import scalars
from savestate.model.plan import wellknown
from savestate.model.schema import (
    DurationType,
    EnumType,
    FixedArrayType,
    MapType,
    MessageSchema,
    MessageType,
    OneofSchema,
    OneofType,
    OptionalType,
    RepeatedType,
    ScalarType,
    TransparentType,
    TupleType,
    TypeSchema,
)

_names = itertools.count()

SCALARS: list[Any] = [
    scalars.u8, scalars.u16, scalars.u32, scalars.u64, scalars.i8, scalars.i16, scalars.i32,
    scalars.i64, scalars.int32, scalars.int64, scalars.uint32, scalars.uint64, scalars.sint32,
    scalars.sint64, scalars.fixed32, scalars.fixed64, scalars.sfixed32, scalars.sfixed64,
    scalars.f32, scalars.f64, int, float, bool, str, bytes,
]
MAP_KEYS: list[Any] = [scalars.u32, scalars.i64, scalars.int32, str, bool, scalars.fixed64]


class Color(enum.IntEnum):
    BLACK = 0
    RED = 1
    BLUE = 300


def _fresh(stem: str) -> str:
    return f"{stem}{next(_names)}"


def _message(fields: list[tuple[Any, int | None]], package: str | None = None) -> type:
    """A Protobuf class whose fields have the given annotations (and fixed lengths)."""
    numbers = list(range(1, len(fields) + 1))
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for (annotation, length), number in zip(fields, numbers, strict=True):
        name = f"f{number}"
        namespace["__annotations__"][name] = annotation
        namespace[name] = field(number * 3 - 1, length=length)
    kwargs = {"package": package} if package else {}
    return type(Protobuf)(_fresh("M"), (Protobuf,), namespace, **kwargs)


def _oneof(variants: list[tuple[str, list[Any]]]) -> type:
    base = type(Protobuf)(_fresh("E"), (Oneof,), {"__module__": __name__})
    for i, (kind, annotations) in enumerate(variants):
        namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
        for j, annotation in enumerate(annotations):
            namespace["__annotations__"][f"v{j}"] = annotation
            namespace[f"v{j}"] = field(j + 1)
        options: dict[str, Any] = {"variant": i * 2 + 1}
        if kind == "tuple":
            options["tuple"] = True
        if kind == "transparent":
            options["transparent"] = True
        type(Protobuf)(_fresh("V"), (base,), namespace, **options)
    return base


@st.composite
def annotations(draw: st.DrawFn, depth: int = 2) -> tuple[Any, int | None]:
    """An annotation (and a fixed length, when it is an array)."""
    scalar = st.sampled_from(SCALARS)
    choices = ["scalar", "scalar", "optional", "list", "enum", "duration", "newtype"]
    if depth > 0:
        choices += ["array", "tuple", "map", "message", "oneof", "nested", "nested"]
    kind = draw(st.sampled_from(choices))
    if kind == "scalar":
        return draw(scalar), None
    if kind == "newtype":
        inner = draw(st.sampled_from([*SCALARS, list[scalars.u32], list[str], Color]))
        cls = _transparent(inner)
        shape = draw(st.sampled_from(["plain", "list", "optional", "map"]))
        if shape == "list" and inner is not scalars.u8:
            # (A list of a transparent u8 is `repeated uint32 // u8` in .proto text, which
            # from-proto reads back as list[u8], bytes: no text says "transparent".)
            return list[cls], None  # type: ignore[valid-type]
        if shape == "optional":
            return cls | None, None
        if shape == "map":
            return dict[str, cls], None  # type: ignore[valid-type]
        return cls, None
    if kind == "nested":
        # The containers the Rust derive wraps in {field1 = 1} messages.
        elem = draw(st.sampled_from([scalars.u32, scalars.i64, str, bytes, Color, "message"]))
        if elem == "message":
            elem = draw(messages(depth - 1))
        key = draw(st.sampled_from(MAP_KEYS))
        shapes: list[tuple[Any, int | None]] = [
            (list[elem] | None, None),  # type: ignore[valid-type]
            (list[elem | None], None),  # type: ignore[operator]
            (list[list[elem]], None),  # type: ignore[valid-type]
            (list[dict[key, elem]], None),  # type: ignore[valid-type]
            (dict[key, list[elem]], None),  # type: ignore[valid-type]
            (dict[key, elem | None], None),  # type: ignore[operator]
            (list[list[elem] | None], None),  # type: ignore[valid-type]
            (tuple[elem, scalars.u32] | None, None),  # type: ignore[valid-type]
        ]
        if elem in (scalars.u32, scalars.i64):
            shapes.append((list[elem] | None, draw(st.integers(1, 3))))  # type: ignore[valid-type]
        shapes.append((bytes | None, draw(st.integers(1, 4))))
        return draw(st.sampled_from(shapes))
    if kind == "optional":
        inner = draw(st.sampled_from([*SCALARS, datetime.timedelta, Color]))
        return inner | None, None
    if kind == "list":
        return list[draw(st.sampled_from([*SCALARS, Color]))], None  # type: ignore[misc]
    if kind == "enum":
        return Color, None
    if kind == "duration":
        return datetime.timedelta, None
    if kind == "array":
        length = draw(st.integers(1, 4))
        elem = draw(st.sampled_from([scalars.u8, scalars.u32, scalars.i16, scalars.f64, str,
                                     "message"]))
        if elem == "message":
            elem = draw(messages(depth - 1))
        if elem is scalars.u8 and draw(st.booleans()):
            return bytes, length
        return list[elem], length  # type: ignore[valid-type]
    if kind == "tuple":
        n = draw(st.integers(1, 3))
        elems = tuple(draw(annotations(0))[0] for _ in range(n))
        elems = tuple(e for e in elems if getattr(e, "__origin__", None) is not list)
        elems = tuple(e for e in elems if not _is_optional(e)) or (scalars.u32,)
        return tuple[elems], None  # type: ignore[valid-type]
    if kind == "map":
        key = draw(st.sampled_from(MAP_KEYS))
        value = draw(st.sampled_from([scalars.u32, str, bytes, Color, "message"]))
        if value == "message":
            value = draw(messages(depth - 1))
        return dict[key, value], None  # type: ignore[valid-type]
    if kind == "message":
        cls = draw(messages(depth - 1))
        return (cls | None, None) if draw(st.booleans()) else (cls, None)
    variants = []
    for _ in range(draw(st.integers(1, 3))):
        vkind = draw(st.sampled_from(["unit", "struct", "tuple", "transparent"]))
        if vkind == "unit":
            variants.append(("unit", []))
        elif vkind == "transparent":
            held = draw(st.sampled_from([scalar, st.just(scalars.u32 | None),
                                         st.just(list[scalars.u32]), st.just(list[str])]))
            variants.append(("transparent", [draw(held)]))
        else:
            n = draw(st.integers(1, 2))
            variants.append((vkind, [draw(scalar) for _ in range(n)]))
    return _oneof(variants), None


def _transparent(inner: Any) -> type:
    """A transparent class holding one field of type ``inner``."""
    namespace: dict[str, Any] = {"__annotations__": {"value": inner}, "value": field(1),
                                 "__module__": __name__}
    return type(Protobuf)(_fresh("T"), (Protobuf,), namespace, transparent=True)


def _is_optional(annotation: Any) -> bool:
    return type(None) in getattr(annotation, "__args__", ())


@st.composite
def messages(draw: st.DrawFn, depth: int = 2) -> type:
    n = draw(st.integers(0, 5))
    return _message([draw(annotations(depth)) for _ in range(n)])


# ---------------------------------------------------------------------------------------------


def values_of(t: TypeSchema, depth: int = 3) -> st.SearchStrategy[Any]:
    """Values of type ``t``; recursion stops at ``depth`` (lists and maps empty, None)."""
    if isinstance(t, ScalarType):
        kind = t.kind
        if kind.python is int:
            return st.integers(kind.lo, kind.hi)
        if kind.python is bool:
            return st.booleans()
        if kind.python is float:
            width = 32 if kind.encoding == "float" else 64
            return st.floats(allow_nan=False, width=width)
        if kind.python is str:
            return st.text(max_size=6)
        return st.binary(max_size=6)
    if isinstance(t, EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, DurationType):
        limit = datetime.timedelta(days=3_000_000)
        return st.timedeltas(min_value=-limit, max_value=limit)
    if isinstance(t, OptionalType):
        if depth <= 0:
            return st.none()
        return st.none() | values_of(t.inner, depth)
    if isinstance(t, RepeatedType):
        if depth <= 0:
            return st.just([])
        return st.lists(values_of(t.elem, depth - 1), max_size=3)
    if isinstance(t, FixedArrayType):
        if t.python_bytes:
            return st.binary(min_size=t.length, max_size=t.length)
        return st.lists(values_of(t.elem, depth - 1), min_size=t.length, max_size=t.length)
    if isinstance(t, TupleType):
        return st.tuples(*(values_of(e, depth - 1) for e in t.elems))
    if isinstance(t, MapType):
        if depth <= 0:
            return st.just({})
        return st.dictionaries(values_of(t.key, 0), values_of(t.value, depth - 1), max_size=3)
    if isinstance(t, MessageType):
        return instances(t.cls, depth - 1)
    if isinstance(t, TransparentType):
        return st.builds(t.cls, **{t.field.name: values_of(t.field.type, depth)})
    if isinstance(t, OneofType):
        schema = schema_of(t.cls)
        assert isinstance(schema, OneofSchema)
        return st.one_of(*(instances(v.cls, depth - 1) for v in schema.variants))
    raise AssertionError(t)


def instances(cls: type, depth: int = 3) -> st.SearchStrategy[Any]:
    """Values of a declared message class (or Oneof variant)."""
    if wellknown(cls) is not None:  # SavedStateBlob: any type URL, any bytes
        return st.builds(cls, type_url=st.text(max_size=8), value=st.binary(max_size=8))

    def build() -> st.SearchStrategy[Any]:
        schema = schema_of(cls)
        assert isinstance(schema, MessageSchema)
        return st.builds(cls, **{f.name: values_of(f.type, depth) for f in schema.fields})

    return st.deferred(build)
