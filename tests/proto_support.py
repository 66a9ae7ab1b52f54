"""Helpers for the .proto tests: protoc, the generated Google classes, values both ways.

The converters between savestate values and Google messages walk the savestate schema and the
generated descriptors together, matching fields by *number* (never by name): so they check that
the emitted text puts the right type under each number, whatever it calls the fields.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc_tools
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from grpc_tools import protoc

from savestate import schema_of
from savestate.codec.duration import duration_parts
from savestate.model.schema import (
    DurationType,
    EnumType,
    FieldSchema,
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

WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"


@contextlib.contextmanager
def _captured_fd2() -> Iterator[list[str]]:
    """Capture what is written to file descriptor 2 (protoc writes there from C++)."""
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


def run_protoc(src: Path, out: Path) -> tuple[int, str]:
    """Compile every .proto file of ``src`` to Python in ``out``: (exit status, messages)."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in src.glob("*.proto"))
    args = ["protoc", f"-I{src}", f"-I{WKT_INCLUDE}", f"--python_out={out}", *files]
    cwd = os.getcwd()
    with _captured_fd2() as messages:
        os.chdir(src)
        try:
            status = protoc.main(args)
        finally:
            os.chdir(cwd)
    return status, "".join(messages)


def import_generated(out: Path, proto_names: list[str]) -> None:
    """Import the generated modules of ``proto_names`` (registering their descriptors), in
    isolation from any module of the same name already imported."""
    modules = [name.removesuffix(".proto") + "_pb2" for name in proto_names]
    for module in modules:  # make every directory a regular package
        parts = module.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            (out.joinpath(*parts[:i]) / "__init__.py").touch()
    tops = {m.split(".")[0] for m in modules}

    def ours(name: str) -> bool:
        return name.split(".")[0] in tops

    saved = {k: v for k, v in sys.modules.items() if ours(k)}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, str(out))
    try:
        for module in modules:
            importlib.import_module(module)
    finally:
        sys.path.remove(str(out))
        for k in [k for k in sys.modules if ours(k)]:
            del sys.modules[k]
        sys.modules.update(saved)


def pb_class(full_name: str) -> type[Message]:
    desc = descriptor_pool.Default().FindMessageTypeByName(full_name)
    return message_factory.GetMessageClass(desc)


def full_name(cls: type, host: str | None = None) -> str:
    schema = schema_of(cls)
    return f"{schema.package or host}.{schema.name}"


# ---------------------------------------------------------------------------------------------
# The Rust derive's wrapping rules, restated here from its source (mesh_protobuf), independently
# of savestate.model.plan:
# - a transparent type is its one field (``#[mesh(transparent)]`` forwards everything);
# - a "sequence" is an optional, a map, or a list other than ``list[u8]`` (``wrap_in_sequence``:
#   OptionField, VecField unless its elements must pack as bytes, MapField; a fixed array is not);
# - an optional of a sequence, a list element that is a sequence, and a transparent Oneof variant
#   holding a sequence are written in a wrapper message ``{1: inner}``;
# - a map whose value is a sequence cannot be a proto ``map``: its entries are messages
#   ``{1: key, 2: value}``, the value field holding the sequence (itself wrapped by these rules).


def _strip(t: TypeSchema) -> TypeSchema:
    """The type a transparent type is written as (through any number of transparent layers)."""
    while isinstance(t, TransparentType):
        t = t.field.type
    return t


def _strip_value(t: TypeSchema, value: Any) -> tuple[TypeSchema, Any]:
    while isinstance(t, TransparentType):
        t, value = t.field.type, getattr(value, t.field.name)
    return t, value


def _rewrap(t: TypeSchema, make: Any) -> Any:
    """``make(stripped type)``, wrapped back into the transparent classes of ``t``."""
    if isinstance(t, TransparentType):
        return t.cls(**{t.field.name: _rewrap(t.field.type, make)})
    return make(t)


def is_sequence(t: TypeSchema) -> bool:
    t = _strip(t)
    if isinstance(t, (OptionalType, MapType)):
        return True
    return isinstance(t, RepeatedType) and not t.as_bytes


def _is_message_like(t: TypeSchema) -> bool:
    """Written as one message record (``t`` stripped of transparent layers)."""
    if isinstance(t, FixedArrayType):  # the wrapper message of an array of messages or strings
        return not t.as_bytes and not t.packed
    return isinstance(t, (MessageType, OneofType, TupleType, DurationType))


def _packed_array(t: TypeSchema) -> bool:
    return isinstance(t, FixedArrayType) and not t.as_bytes and t.packed


def _needs_entry_messages(t: MapType) -> bool:
    """A map whose value a proto ``map`` cannot hold (a sequence, or a packed array)."""
    return is_sequence(t.value) or _packed_array(_strip(t.value))


# ---------------------------------------------------------------------------------------------
# savestate value -> Google message


def _fd(msg: Message, number: int) -> Any:
    return msg.DESCRIPTOR.fields_by_number[number]


def _wrapper(pb: Message, fd: Any) -> tuple[Message, Any]:
    """The wrapper message under ``fd`` (made present) and its field 1."""
    sub = getattr(pb, fd.name)
    sub.SetInParent()
    assert [f.number for f in sub.DESCRIPTOR.fields] == [1], sub.DESCRIPTOR.full_name
    return sub, _fd(sub, 1)


def fill(pb: Message, t: TypeSchema, value: Any) -> None:
    """Fill the (message-like) ``pb`` from ``value`` of type ``t``."""
    t, value = _strip_value(t, value)
    if isinstance(t, MessageType):
        schema = schema_of(t.cls)
        assert isinstance(schema, MessageSchema)
        fill_fields(pb, schema.fields, value)
    elif isinstance(t, OneofType):
        schema = schema_of(t.cls)
        assert isinstance(schema, OneofSchema)
        variant = next(v for v in schema.variants if type(value) is v.cls)
        fd = _fd(pb, variant.number)
        if variant.kind == "transparent":
            f = variant.transparent_field
            if is_sequence(f.type):  # a variant holding an optional or a list: {n: {1: value}}
                set_field(*_wrapper(pb, fd), f.type, getattr(value, f.name))
            else:
                set_field(pb, fd, f.type, getattr(value, f.name))
        else:
            sub = getattr(pb, fd.name)
            sub.SetInParent()
            fill_fields(sub, variant.message.fields, value)
    elif isinstance(t, TupleType):
        for i, (et, ev) in enumerate(zip(t.elems, value, strict=False), 1):
            set_field(pb, _fd(pb, i), et, ev)
    elif isinstance(t, DurationType):
        pb.seconds, pb.nanos = duration_parts(value, [])  # type: ignore[attr-defined]
    elif isinstance(t, FixedArrayType):
        set_field(pb, _fd(pb, 1), RepeatedType(t.elem), list(value))
    else:
        raise AssertionError(t)


def fill_fields(pb: Message, fields: tuple[FieldSchema, ...], value: Any) -> None:
    for f in fields:
        set_field(pb, _fd(pb, f.number), f.type, getattr(value, f.name))


def _scalar_out(t: TypeSchema, value: Any) -> Any:
    if isinstance(t, EnumType):
        return int(value)
    if isinstance(t, (RepeatedType, FixedArrayType)):
        assert t.as_bytes, t
        return bytes(value)
    return value


def _add_element(container: Any, t: TypeSchema, value: Any) -> None:
    """Append ``value`` (of a type that is not a sequence) to a repeated field."""
    t, value = _strip_value(t, value)
    if _is_message_like(t):
        fill(container.add(), t, value)
    else:
        container.append(_scalar_out(t, value))


def set_field(pb: Message, fd: Any, t: TypeSchema, value: Any) -> None:
    t, value = _strip_value(t, value)
    name = fd.name
    if isinstance(t, OptionalType):
        if value is None:
            return
        if is_sequence(t.inner):
            set_field(*_wrapper(pb, fd), t.inner, value)
        else:
            set_field(pb, fd, t.inner, value)
        return
    if isinstance(t, (ScalarType, EnumType)):
        setattr(pb, name, _scalar_out(t, value))
    elif _is_message_like(t):
        sub = getattr(pb, name)
        sub.SetInParent()
        fill(sub, t, value)
    elif isinstance(t, (RepeatedType, FixedArrayType)):
        if t.as_bytes:
            setattr(pb, name, bytes(value))
            return
        container = getattr(pb, name)
        for item in value:
            if is_sequence(t.elem):  # one wrapper record per element
                sub = container.add()
                set_field(sub, _fd(sub, 1), t.elem, item)
            else:
                _add_element(container, t.elem, item)
    elif isinstance(t, MapType):
        container = getattr(pb, name)
        if fd.message_type.GetOptions().map_entry:
            assert not _needs_entry_messages(t), f"{fd.full_name}: a map of {t.value}"
            for k, v in value.items():
                key = _scalar_out(t.key, k)
                vt, vv = _strip_value(t.value, v)
                if _is_message_like(vt):
                    fill(container[key], vt, vv)
                else:
                    container[key] = _scalar_out(vt, vv)
        else:
            for k, v in value.items():
                entry = container.add()
                set_field(entry, _fd(entry, 1), t.key, k)
                set_field(entry, _fd(entry, 2), t.value, v)
    else:
        raise AssertionError(t)


def to_pb(cls: type, value: Any, host: str | None = None) -> Message:
    pb = pb_class(full_name(cls, host))()
    fill(pb, MessageType(cls), value)
    return pb


# ---------------------------------------------------------------------------------------------
# Google message -> savestate value


def read(pb: Message, t: TypeSchema) -> Any:
    return _rewrap(t, lambda s: _read(pb, s))


def _read(pb: Message, t: TypeSchema) -> Any:
    if isinstance(t, MessageType):
        schema = schema_of(t.cls)
        assert isinstance(schema, MessageSchema)
        return t.cls(**read_fields(pb, schema.fields))
    if isinstance(t, OneofType):
        schema = schema_of(t.cls)
        assert isinstance(schema, OneofSchema)
        which = pb.WhichOneof("variant")
        assert which is not None, "no variant set"
        number = pb.DESCRIPTOR.fields_by_name[which].number
        variant = next(v for v in schema.variants if v.number == number)
        if variant.kind == "transparent":
            f = variant.transparent_field
            if is_sequence(f.type):
                sub = getattr(pb, which)
                return variant.cls(**{f.name: get_field(sub, _fd(sub, 1), f.type)})
            return variant.cls(**{f.name: get_field(pb, _fd(pb, number), f.type)})
        return variant.cls(**read_fields(getattr(pb, which), variant.message.fields))
    if isinstance(t, TupleType):
        return tuple(get_field(pb, _fd(pb, i), et) for i, et in enumerate(t.elems, 1))
    if isinstance(t, DurationType):
        assert pb.nanos % 1000 == 0  # type: ignore[attr-defined]
        return datetime.timedelta(
            seconds=pb.seconds,  # type: ignore[attr-defined]
            microseconds=pb.nanos // 1000,  # type: ignore[attr-defined]
        )
    if isinstance(t, FixedArrayType):
        return get_field(pb, _fd(pb, 1), RepeatedType(t.elem))
    raise AssertionError(t)


def read_fields(pb: Message, fields: tuple[FieldSchema, ...]) -> dict[str, Any]:
    return {f.name: get_field(pb, _fd(pb, f.number), f.type) for f in fields}


def _scalar_in(t: TypeSchema, value: Any) -> Any:
    if isinstance(t, EnumType):
        return t.cls(value)
    if isinstance(t, FixedArrayType):
        return value if t.python_bytes else list(value)
    if isinstance(t, RepeatedType):
        return list(value)
    return value


def _element(t: TypeSchema, item: Any) -> Any:
    """An element (not a sequence) of a repeated field, or a map value, as savestate's value."""
    return _rewrap(t, lambda s: read(item, s) if _is_message_like(s) else _scalar_in(s, item))


def get_field(pb: Message, fd: Any, t: TypeSchema) -> Any:
    return _rewrap(t, lambda s: _get_field(pb, fd, s))


def _get_field(pb: Message, fd: Any, t: TypeSchema) -> Any:
    name = fd.name
    if isinstance(t, OptionalType):
        if is_sequence(t.inner):
            if not pb.HasField(name):
                return None
            sub = getattr(pb, name)
            return get_field(sub, _fd(sub, 1), t.inner)
        if _packed_array(_strip(t.inner)):  # a packed record: no presence but its length
            return get_field(pb, fd, t.inner) if len(getattr(pb, name)) else None
        return get_field(pb, fd, t.inner) if pb.HasField(name) else None
    if isinstance(t, (ScalarType, EnumType)):
        return _scalar_in(t, getattr(pb, name))
    if _is_message_like(t):
        return read(getattr(pb, name), t)
    if isinstance(t, (RepeatedType, FixedArrayType)):
        if t.as_bytes:
            return _scalar_in(t, getattr(pb, name))
        if is_sequence(t.elem):
            return [get_field(sub, _fd(sub, 1), t.elem) for sub in getattr(pb, name)]
        return [_element(t.elem, item) for item in getattr(pb, name)]
    if isinstance(t, MapType):
        container = getattr(pb, name)
        if fd.message_type.GetOptions().map_entry:
            assert not _needs_entry_messages(t), f"{fd.full_name}: a map of {t.value}"
            return {_scalar_in(t.key, k): _element(t.value, v) for k, v in container.items()}
        return {
            get_field(e, _fd(e, 1), t.key): get_field(e, _fd(e, 2), t.value) for e in container
        }
    raise AssertionError(t)


def from_pb(cls: type, pb: Message) -> Any:
    return read(pb, MessageType(cls))


def check_meaning(cls: type, value: Any, host: str | None = None) -> None:
    """savestate's bytes read by Google give ``value``; Google's bytes decode to ``value``."""
    ours = bytes(value)
    theirs_cls = pb_class(full_name(cls, host))
    parsed = theirs_cls.FromString(ours)
    assert from_pb(cls, parsed) == value
    theirs = to_pb(cls, value, host).SerializeToString()
    assert cls.decode(theirs) == value
    # And Google's re-serialisation of what it read from savestate's bytes.
    assert cls.decode(parsed.SerializeToString()) == value
