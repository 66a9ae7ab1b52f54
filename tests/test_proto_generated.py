"""Hypothesis-generated schemas: the emitted .proto compiles and means what the bytes mean.

Each example builds a few classes (messages and Oneofs, some without a package, some in a second
package), emits their .proto, compiles it with protoc, imports it, then checks generated values
both ways (``proto_support.check_meaning``). Each example has its own package names, so that the
descriptor pool never sees one file name twice.
"""

from __future__ import annotations

import datetime
import enum
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from savestate import Oneof, Protobuf, field, write_proto
from savestate.declare import ProtobufMeta
from savestate.model import scalars

from .proto_support import check_meaning, import_generated, run_protoc
from .strategies import instances

_ids = itertools.count()


class Color(enum.IntEnum):  # no zero member
    RED = 1
    GREEN = 2
    BLUE = 300


class Flag(enum.IntEnum):
    CLEAR = 0
    SET = -1


SCALARS: list[Any] = [
    scalars.u8, scalars.u16, scalars.u32, scalars.u64, scalars.i8, scalars.i16, scalars.i32,
    scalars.i64, scalars.int32, scalars.int64, scalars.uint32, scalars.uint64, scalars.sint32,
    scalars.sint64, scalars.fixed32, scalars.fixed64, scalars.sfixed32, scalars.sfixed64,
    scalars.f32, scalars.f64, int, float, bool, str, bytes, Color, Flag,
]
KEYS: list[Any] = [
    scalars.u32, scalars.i64, scalars.int32, scalars.sint32, scalars.fixed64, str, bool,
    bytes, scalars.f64, Flag, tuple[scalars.u8, str], datetime.timedelta,
]
NUMBERS = st.sampled_from([*range(1, 16), 16, 2047, 2048, 18999, 20000, (1 << 29) - 1])
ELEMENTS = st.sampled_from([*SCALARS, datetime.timedelta])


@st.composite
def annotation(draw: st.DrawFn, pool: list[type], depth: int = 1) -> tuple[Any, int | None]:
    """An annotation (and a fixed length for arrays); ``pool`` holds classes to refer to."""
    kinds = ["scalar", "scalar", "optional", "list", "array", "duration"]
    kinds += ["transparent", "transparent"]
    if depth > 0:
        kinds += ["tuple", "map", "nested", "nested", "nested"]
    if pool:
        kinds += ["ref", "ref", "optional_ref", "list_ref", "array_ref"]
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(st.sampled_from(SCALARS)), None
    if kind == "optional":
        return draw(st.sampled_from([*SCALARS, datetime.timedelta])) | None, None
    if kind == "list":
        return list[draw(ELEMENTS)], None  # type: ignore[misc]
    if kind == "array":
        length = draw(st.integers(1, 3))
        elem = draw(ELEMENTS)
        if elem is scalars.u8 and draw(st.booleans()):
            return bytes, length
        return list[elem], length  # type: ignore[valid-type]
    if kind == "duration":
        return datetime.timedelta, None
    if kind == "transparent":  # a transparent class as a field, list element, optional, map value
        cls = draw(transparent(pool))
        where = draw(st.sampled_from(["field", "list", "optional", "map"]))
        if where == "list":
            return list[_listable(draw, cls, pool)], None  # type: ignore[misc]
        if where == "optional":
            return cls | None, None
        if where == "map":
            return dict[draw(st.sampled_from(KEYS)), cls], None  # type: ignore[valid-type]
        return cls, None
    if kind == "nested":
        return draw(nested(pool, depth))
    if kind == "tuple":
        n = draw(st.integers(1, 3))
        choices = [*SCALARS, datetime.timedelta, *pool, "transparent", "nested"]
        elems = [draw(st.sampled_from(choices)) for _ in range(n)]
        for i, elem in enumerate(elems):
            if elem == "transparent":
                elems[i] = draw(transparent(pool))
            elif elem == "nested":
                elems[i] = draw(container(pool, 0))
        if draw(st.booleans()) and n > 1:
            elems[0] = tuple[draw(st.sampled_from(SCALARS))]  # type: ignore[misc]
        return tuple[tuple(elems)], None  # type: ignore[misc]
    if kind == "map":
        key = draw(st.sampled_from(KEYS))
        value = draw(st.sampled_from([*SCALARS, datetime.timedelta, *pool]))
        if draw(st.booleans()):
            value = tuple[value]  # type: ignore[valid-type]
        return dict[key, value], None  # type: ignore[valid-type]
    ref = draw(st.sampled_from(pool))
    if kind == "ref":
        return ref, None
    if kind == "optional_ref":
        return ref | None, None
    if kind == "list_ref":
        return list[ref], None  # type: ignore[valid-type]
    return list[ref], draw(st.integers(1, 2))  # type: ignore[valid-type]


# Transparent classes holding a packed fixed array ([u32; N]), which a list or a oneof cannot
# hold, and those holding list[u8], which a list cannot hold (as list[list[u8]]: use bytes).
_PACKED_ARRAYS: set[type] = set()
_UNLISTABLE: set[type] = set()


def _listable(draw: st.DrawFn, elem: Any, pool: list[type]) -> Any:
    """``elem``, or a replacement when ``list[elem]`` is not a schema (a packed array)."""
    while elem in _UNLISTABLE or elem is scalars.u8:
        elem = draw(st.sampled_from([scalars.u16, str, datetime.timedelta, *pool]))
    return elem


@st.composite
def transparent(draw: st.DrawFn, pool: list[type], depth: int = 1) -> type:
    """A transparent class (``class T(Protobuf, transparent=True)``) holding one field."""
    choices = ["scalar", "scalar", "tuple", "bytes", "array", "strings", "optional", "list"]
    choices += ["optional_list", *(["ref"] if pool else [])]
    if depth > 0:
        choices += ["transparent"]
    inner = draw(st.sampled_from(choices))
    length = None
    if inner == "scalar":
        inner = draw(st.sampled_from([*SCALARS, datetime.timedelta]))
    elif inner == "ref":
        inner = draw(st.sampled_from(pool))
    elif inner == "tuple":
        inner = tuple[scalars.u32, str]
    elif inner == "bytes":
        inner, length = bytes, 2
    elif inner == "array":
        inner, length = list[draw(st.sampled_from([scalars.u32, scalars.f64, Flag]))], 2
    elif inner == "strings":
        inner, length = list[draw(st.sampled_from([str, datetime.timedelta]))], 2
    elif inner == "optional":
        inner = draw(st.sampled_from([scalars.u32, str, datetime.timedelta, *pool])) | None
    elif inner == "list":
        inner = list[draw(st.sampled_from([scalars.u32, scalars.u8, str, *pool]))]
    elif inner == "optional_list":
        inner = list[draw(st.sampled_from([scalars.u32, str]))] | None
    elif inner == "transparent":
        inner = draw(transparent(pool, depth - 1))
    ns = _namespace([(inner, length, 1, False)])
    cls = ProtobufMeta(f"T{next(_ids)}", (Protobuf,), ns, transparent=True)
    held = getattr(inner, "__args__", (None,))[0]
    if length is not None and inner is not bytes and held not in (str, datetime.timedelta):
        _PACKED_ARRAYS.add(cls)
    if inner in _PACKED_ARRAYS:
        _PACKED_ARRAYS.add(cls)
    if cls in _PACKED_ARRAYS or inner in _UNLISTABLE or (length is None and held is scalars.u8):
        _UNLISTABLE.add(cls)
    return cls


@st.composite
def container(draw: st.DrawFn, pool: list[type], depth: int) -> Any:
    """A nested container the Rust derive wraps: an optional or a list of a sequence, a list
    of optionals, a map of sequences (entry messages), an optional map."""
    choices = ["scalar", "scalar", "transparent", *(["ref"] if pool else [])]
    if depth > 0:
        choices += ["nested"]
    elem: Any = draw(st.sampled_from(choices))
    if elem == "scalar":
        elem = draw(st.sampled_from([*SCALARS, datetime.timedelta]))
    elif elem == "ref":
        elem = draw(st.sampled_from(pool))
    elif elem == "transparent":
        elem = draw(transparent(pool))
    elif elem == "nested":
        elem = draw(container(pool, depth - 1))
    key = draw(st.sampled_from(KEYS))
    shape = draw(st.sampled_from(
        ["opt_list", "list_opt", "list_list", "list_map", "map_list", "map_opt", "map_map",
         "opt_map"]
    ))
    if shape == "opt_list":
        return list[_listable(draw, elem, pool)] | None  # type: ignore[misc]
    if shape == "list_opt":
        return list[elem | None]  # type: ignore[misc]
    if shape == "list_list":
        return list[list[_listable(draw, elem, pool)]]  # type: ignore[misc]
    if shape == "list_map":
        return list[dict[key, elem]]  # type: ignore[valid-type]
    if shape == "map_list":
        return dict[key, list[_listable(draw, elem, pool)]]  # type: ignore[misc]
    if shape == "map_opt":
        return dict[key, elem | None]  # type: ignore[misc]
    if shape == "map_map":
        return dict[key, dict[draw(st.sampled_from(KEYS)), elem]]  # type: ignore[valid-type]
    return dict[key, elem] | None  # type: ignore[valid-type]


@st.composite
def nested(draw: st.DrawFn, pool: list[type], depth: int) -> tuple[Any, int | None]:
    """A nested container, an optional tuple, or an optional fixed array (no wrapper)."""
    shape = draw(st.sampled_from(["container", "container", "opt_tuple", "opt_array"]))
    if shape == "container":
        return draw(container(pool, depth)), None
    if shape == "opt_tuple":
        n = draw(st.integers(1, 2))
        elems = [draw(st.sampled_from([*SCALARS, datetime.timedelta, *pool])) for _ in range(n)]
        return tuple[tuple(elems)] | None, None  # type: ignore[misc]
    length = draw(st.integers(1, 3))
    elem = draw(st.sampled_from([scalars.u8, scalars.u32, scalars.sint64, scalars.f32, Flag,
                                 str, datetime.timedelta, *pool]))
    if elem is scalars.u8 and draw(st.booleans()):
        return bytes | None, length
    return list[elem] | None, length  # type: ignore[valid-type]


def _namespace(fields: list[tuple[Any, int | None, int, bool]]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for annotation_, length, number, nonzero_default in fields:
        name = f"f{number}"
        namespace["__annotations__"][name] = annotation_
        if nonzero_default:
            namespace[name] = field(number, default=Color.GREEN)
        else:
            namespace[name] = field(number, length=length)
    return namespace


@st.composite
def message_fields(
    draw: st.DrawFn, pool: list[type], tuple_numbers: bool = False
) -> list[tuple[Any, int | None, int, bool]]:
    count = draw(st.integers(0 if not tuple_numbers else 1, 4))
    if tuple_numbers:
        numbers = list(range(1, count + 1))
    else:
        numbers = draw(st.lists(NUMBERS, min_size=count, max_size=count, unique=True))
    out = []
    for number in numbers:
        annotation_, length = draw(annotation(pool))
        nonzero = annotation_ is Color and draw(st.booleans())
        out.append((annotation_, length, number, nonzero))
    return out


@st.composite
def schema(draw: st.DrawFn) -> type:
    """A root class (in its own package) and the classes it refers to."""
    n = next(_ids)
    package = f"pbgen{n}"
    pool: list[type] = []
    # Classes that reach the main package: the sub package must not use them (no import cycle).
    main: set[type] = set()
    for i in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from([None, package, f"{package}.sub"]))
        kwargs = {} if where is None else {"package": where}
        everything = pool
        if where == f"{package}.sub":
            pool = [c for c in pool if c not in main]
        if draw(st.booleans()):
            ns = _namespace(draw(message_fields(pool)))
            cls = ProtobufMeta(f"M{i}", (Protobuf,), ns, **kwargs)
        else:
            cls = _oneof(draw, i, pool, kwargs)
        if where == package or (where is None and set(pool) & main):
            main.add(cls)
        pool = [*everything, cls]
    ns = _namespace(draw(message_fields(pool)))
    return ProtobufMeta("Root", (Protobuf,), ns, package=package)


def _oneof(draw: st.DrawFn, i: int, pool: list[type], kwargs: dict[str, Any]) -> type:
    base = ProtobufMeta(f"E{i}", (Oneof,), {"__module__": __name__}, **kwargs)
    numbers = draw(st.lists(NUMBERS, min_size=1, max_size=4, unique=True))
    for j, number in enumerate(numbers):
        vkind = draw(st.sampled_from(["unit", "tuple", "struct", "transparent"]))
        options: dict[str, Any] = {"variant": number}
        if vkind == "unit":
            ns: dict[str, Any] = {"__module__": __name__}
        elif vkind == "transparent":
            options["transparent"] = True
            choices = ["scalar", "scalar", "tuple", "bytes", "strings", "optional", "optional"]
            choices += ["list", "list", "optional_ref", "list_ref", "transparent", "nested"]
            inner = draw(st.sampled_from([*choices, *(["ref"] if pool else [])]))
            length = None
            if inner == "scalar":
                inner = draw(st.sampled_from([*SCALARS, datetime.timedelta]))
            elif inner == "ref":
                inner = draw(st.sampled_from(pool))
            elif inner == "tuple":
                inner = tuple[scalars.u32, str]
            elif inner == "bytes":
                inner, length = bytes, 2
            elif inner == "strings":
                inner, length = list[str], 2
            elif inner == "optional":  # wrapped as {n: {1: value}}
                inner = scalars.u32 | None
            elif inner == "list":  # wrapped as {n: {1: packed}}
                inner = list[scalars.u32]
            elif inner in ("optional_ref", "list_ref"):
                ref = draw(st.sampled_from([*pool, str, datetime.timedelta]))
                inner = ref | None if inner == "optional_ref" else list[ref]
            elif inner == "transparent":
                inner = draw(transparent(pool))
                while inner in _PACKED_ARRAYS:  # a oneof member cannot be a packed array
                    inner = draw(transparent(pool))
            elif inner == "nested":
                inner = draw(container(pool, 0))
            ns = _namespace([(inner, length, 1, False)])
        else:
            options["tuple"] = vkind == "tuple"
            ns = _namespace(draw(message_fields(pool, tuple_numbers=vkind == "tuple")))
        ProtobufMeta(f"V{i}x{j}", (base,), ns, **options)
    return base


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@settings(
    max_examples=max(5, settings().max_examples // 5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_schema_means_its_bytes(workdir: Path, data: st.DataObject) -> None:
    root = data.draw(schema(), label="schema")
    base = workdir / root.__savestate__.package
    paths = write_proto(base / "proto", [root])
    status, messages = run_protoc(base / "proto", base / "py")
    assert (status, messages) == (0, ""), "\n".join(p.read_text() for p in paths)
    import_generated(base / "py", [p.name for p in paths])
    for _ in range(8):
        check_meaning(root, data.draw(instances(root), label="value"))
