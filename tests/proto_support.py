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
# savestate value -> Google message


def _fd(msg: Message, number: int) -> Any:
    return msg.DESCRIPTOR.fields_by_number[number]


def fill(pb: Message, t: TypeSchema, value: Any) -> None:
    """Fill the (message-like) ``pb`` from ``value`` of type ``t``."""
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
    else:
        raise AssertionError(t)


def fill_fields(pb: Message, fields: tuple[FieldSchema, ...], value: Any) -> None:
    for f in fields:
        set_field(pb, _fd(pb, f.number), f.type, getattr(value, f.name))


def _is_message_like(t: TypeSchema) -> bool:
    return isinstance(t, (MessageType, OneofType, TupleType, DurationType))


def _scalar_out(t: TypeSchema, value: Any) -> Any:
    return int(value) if isinstance(t, EnumType) else value


def set_field(pb: Message, fd: Any, t: TypeSchema, value: Any) -> None:
    name = fd.name
    if isinstance(t, OptionalType):
        if value is not None:
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
        elif isinstance(t, FixedArrayType) and not t.packed:
            wrapper = getattr(pb, name)
            wrapper.SetInParent()
            set_field(wrapper, _fd(wrapper, 1), RepeatedType(t.elem), list(value))
        elif _is_message_like(t.elem):
            container = getattr(pb, name)
            for item in value:
                fill(container.add(), t.elem, item)
        else:
            getattr(pb, name).extend(_scalar_out(t.elem, item) for item in value)
    elif isinstance(t, MapType):
        container = getattr(pb, name)
        if fd.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if _is_message_like(t.value):
                    fill(container[k], t.value, v)
                else:
                    container[k] = _scalar_out(t.value, v)
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
    raise AssertionError(t)


def read_fields(pb: Message, fields: tuple[FieldSchema, ...]) -> dict[str, Any]:
    return {f.name: get_field(pb, _fd(pb, f.number), f.type) for f in fields}


def _scalar_in(t: TypeSchema, value: Any) -> Any:
    return t.cls(value) if isinstance(t, EnumType) else value


def get_field(pb: Message, fd: Any, t: TypeSchema) -> Any:
    name = fd.name
    if isinstance(t, OptionalType):
        return get_field(pb, fd, t.inner) if pb.HasField(name) else None
    if isinstance(t, (ScalarType, EnumType)):
        return _scalar_in(t, getattr(pb, name))
    if _is_message_like(t):
        return read(getattr(pb, name), t)
    if isinstance(t, (RepeatedType, FixedArrayType)):
        if t.as_bytes:
            data = getattr(pb, name)
            return data if isinstance(t, FixedArrayType) and t.python_bytes else list(data)
        if isinstance(t, FixedArrayType) and not t.packed:
            wrapper = getattr(pb, name)
            return get_field(wrapper, _fd(wrapper, 1), RepeatedType(t.elem))
        if _is_message_like(t.elem):
            return [read(item, t.elem) for item in getattr(pb, name)]
        return [_scalar_in(t.elem, item) for item in getattr(pb, name)]
    if isinstance(t, MapType):
        container = getattr(pb, name)
        if fd.message_type.GetOptions().map_entry:
            if _is_message_like(t.value):
                return {k: read(v, t.value) for k, v in container.items()}
            return {k: _scalar_in(t.value, v) for k, v in container.items()}
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
