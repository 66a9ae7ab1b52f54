"""Differential tests against Google's protobuf runtime.

The .proto files in tests/proto/ are compiled with protoc (grpc_tools) during the session.
savestate's bytes must parse in Google's runtime to the same values, and Google's bytes (packed
and unpacked, duplicated, with unknown fields) must decode in savestate to equal values.
"""

from __future__ import annotations

import datetime
import enum
import importlib
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from savestate import (
    Oneof,
    Protobuf,
    f32,
    f64,
    field,
    fixed32,
    fixed64,
    i8,
    i16,
    i32,
    i64,
    int32,
    int64,
    schema_of,
    sfixed32,
    sfixed64,
    sint32,
    sint64,
    u8,
    u16,
    u32,
    u64,
    uint32,
    uint64,
)
from savestate.model.schema import (
    DurationType,
    EnumType,
    MapType,
    MessageSchema,
    MessageType,
    OneofType,
    OptionalType,
    RepeatedType,
    ScalarType,
    TupleType,
)

from .strategies import instances

PROTO_DIR = Path(__file__).parent / "proto"


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Python module protoc generates for difftest.proto."""
    grpc_tools = pytest.importorskip("grpc_tools")
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("pb")
    include = Path(grpc_tools.__file__).parent / "_proto"
    status = protoc.main(
        ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out}", "difftest.proto"]
    )
    assert status == 0
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("difftest_pb2")
    finally:
        sys.path.remove(str(out))


class Scalars(Protobuf, package="difftest"):
    u8: u8 = field(1)
    u16: u16 = field(2)
    u32: u32 = field(3)
    u64: u64 = field(4)
    i8: i8 = field(5)
    i16: i16 = field(6)
    i32: i32 = field(7)
    i64: i64 = field(8)
    int32: int32 = field(9)
    int64: int64 = field(10)
    uint32: uint32 = field(11)
    uint64: uint64 = field(12)
    sint32: sint32 = field(13)
    sint64: sint64 = field(14)
    fixed32: fixed32 = field(15)
    fixed64: fixed64 = field(16)
    sfixed32: sfixed32 = field(17)
    sfixed64: sfixed64 = field(18)
    b: bool = field(19)
    f32: f32 = field(20)
    f64: f64 = field(21)
    s: str = field(22)
    by: bytes = field(23)
    plain: int = field(24)


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1
    BURST = 7


class Reg(Protobuf, package="difftest"):
    index: u32 = field(1)
    value: u64 = field(2)


class Stage(Oneof, package="difftest"):
    pass


class Ready(Stage, variant=1):
    pass


class Icw3(Stage, variant=2):
    icw4: bool = field(1)
    count: u32 = field(2)


class Raw(Stage, variant=3, transparent=True):
    raw: u32 = field(1)


class Label(Stage, variant=4, transparent=True):
    label: str = field(1)


class Device(Protobuf, package="difftest"):
    name: str = field(1)
    version: u32 = field(2)
    regs: list[Reg] = field(3)
    config: bytes = field(4)
    irqs: list[u64] = field(5)
    timestamp: i64 | None = field(6)
    features: dict[str, u32] = field(7)
    main: Reg = field(8)
    tags: list[str] = field(9)
    deltas: list[i32] = field(10)
    opt: u32 | None = field(11)
    mode: Mode = field(12)
    modes: list[Mode] = field(13)
    period: datetime.timedelta = field(14)
    stage: Stage = field(15)
    by_index: dict[u32, Reg] = field(16)
    samples: list[f64] = field(17)
    fx: list[fixed32] = field(18)
    flags: list[bool] = field(19)
    spare: Reg | None = field(20)
    history: list[Stage] = field(21)


_VARIANT_FIELDS = {Ready: "ready", Icw3: "icw3", Raw: "raw", Label: "label"}


# -- converting values between the two runtimes, by walking savestate's schema -----------------


def to_google(value: Any, message: Any) -> Any:
    """Fill the Google ``message`` with the savestate ``value``."""
    if isinstance(value, Stage):
        name = _VARIANT_FIELDS[type(value)]
        if isinstance(value, Raw):
            message.raw = value.raw
        elif isinstance(value, Label):
            message.label = value.label
        elif isinstance(value, Ready):
            message.ready.SetInParent()
        else:
            message.icw3.SetInParent()
            message.icw3.icw4 = value.icw4
            message.icw3.count = value.count
        assert message.WhichOneof("variant") == name
        return message
    schema = schema_of(type(value))
    assert isinstance(schema, MessageSchema)
    for f in schema.fields:
        v = getattr(value, f.name)
        t = f.type
        if isinstance(t, OptionalType):
            if v is None:
                continue
            t = t.inner
        if isinstance(t, (MessageType, OneofType)):
            to_google(v, getattr(message, f.name))
            getattr(message, f.name).SetInParent()
        elif isinstance(t, DurationType):
            getattr(message, f.name).FromTimedelta(v)
        elif isinstance(t, RepeatedType):
            target = getattr(message, f.name)
            if isinstance(t.elem, (MessageType, OneofType)):
                for item in v:
                    to_google(item, target.add())
            else:
                target.extend(int(x) if isinstance(x, enum.IntEnum) else x for x in v)
        elif isinstance(t, MapType):
            target = getattr(message, f.name)
            for k, item in v.items():
                if isinstance(t.value, MessageType):
                    to_google(item, target[k])
                else:
                    target[k] = item
        elif isinstance(t, EnumType):
            setattr(message, f.name, int(v))
        else:
            setattr(message, f.name, v)
    return message


def from_google(message: Any, cls: type) -> Any:
    """The savestate value of ``cls`` that the Google ``message`` holds."""
    if issubclass(cls, Stage):
        which = message.WhichOneof("variant")
        if which == "ready":
            return Ready()
        if which == "icw3":
            return Icw3(icw4=message.icw3.icw4, count=message.icw3.count)
        if which == "raw":
            return Raw(raw=message.raw)
        return Label(label=message.label)
    schema = schema_of(cls)
    assert isinstance(schema, MessageSchema)
    kwargs: dict[str, Any] = {}
    for f in schema.fields:
        t = f.type
        v = getattr(message, f.name)
        if isinstance(t, OptionalType):
            if not message.HasField(f.name):
                kwargs[f.name] = None
                continue
            t = t.inner
        if isinstance(t, (MessageType, OneofType)):
            kwargs[f.name] = from_google(v, t.cls)
        elif isinstance(t, DurationType):
            kwargs[f.name] = v.ToTimedelta()
        elif isinstance(t, RepeatedType):
            if isinstance(t.elem, (MessageType, OneofType)):
                kwargs[f.name] = [from_google(x, t.elem.cls) for x in v]
            elif isinstance(t.elem, EnumType):
                kwargs[f.name] = [t.elem.cls(x) for x in v]
            else:
                kwargs[f.name] = list(v)
        elif isinstance(t, MapType):
            if isinstance(t.value, MessageType):
                kwargs[f.name] = {k: from_google(x, t.value.cls) for k, x in v.items()}
            else:
                kwargs[f.name] = dict(v)
        elif isinstance(t, EnumType):
            kwargs[f.name] = t.cls(v)
        else:
            assert isinstance(t, (ScalarType, TupleType))
            kwargs[f.name] = v
    return cls(**kwargs)


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN, keeps the sign of zero, ignores map order."""
    return _norm(a) == _norm(b)


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return sorted((repr(k), _norm(x)) for k, x in v.items())
    if isinstance(v, Protobuf):
        return (type(v).__name__, [_norm(getattr(v, f)) for f in v.__match_args__])
    return v


def _durations() -> st.SearchStrategy[datetime.timedelta]:
    limit = datetime.timedelta(days=3_000_000)
    return st.timedeltas(min_value=-limit, max_value=limit)


def devices() -> st.SearchStrategy[Device]:
    return instances(Device)


@given(instances(Scalars))
def test_scalars_both_ways_byte_identical(pb: Any, value: Scalars) -> None:
    ours = bytes(value)
    theirs = to_google(value, pb.Scalars())
    assert theirs.SerializeToString(deterministic=True) == ours
    parsed = pb.Scalars.FromString(ours)
    assert _same(from_google(parsed, Scalars), value)
    assert _same(Scalars.decode(theirs.SerializeToString()), value)


@given(devices())
def test_device_savestate_bytes_parse_in_google(pb: Any, value: Device) -> None:
    parsed = pb.Device.FromString(bytes(value))
    assert _same(from_google(parsed, Device), value)


@given(devices())
def test_device_google_bytes_decode_in_savestate(pb: Any, value: Device) -> None:
    google = to_google(value, pb.Device())
    assert _same(Device.decode(google.SerializeToString()), value)
    assert _same(Device.decode(google.SerializeToString(deterministic=True)), value)


@given(devices())
def test_unpacked_repeated_fields_decode(pb: Any, value: Device) -> None:
    unpacked = pb.DeviceUnpacked(
        irqs=value.irqs, deltas=value.deltas, modes=[int(m) for m in value.modes],
        samples=value.samples, fx=value.fx, flags=value.flags,
    )
    unpacked.stage.ready.SetInParent()
    decoded = Device.decode(unpacked.SerializeToString())
    for name in ("irqs", "deltas", "modes", "samples", "fx", "flags"):
        assert _same(getattr(decoded, name), getattr(value, name))


@given(devices(), devices())
def test_duplicated_fields_merge_as_google_merges(pb: Any, a: Device, b: Device) -> None:
    data = bytes(a) + bytes(b)
    merged = pb.Device()
    merged.MergeFromString(data)
    assert _same(Device.decode(data), from_google(merged, Device))


@given(
    st.text(max_size=6), st.lists(st.integers(0, 2**64 - 1), max_size=3),
    st.integers(-(2**31), 2**31 - 1), devices(),
)
def test_unknown_fields_survive_a_savestate_round_trip(
    pb: Any, firmware: str, counters: list[int], delta: int, value: Device
) -> None:
    newer = pb.DeviceNext(name=value.name, version=value.version, firmware=firmware,
                          counters=counters, delta=delta)
    newer.extra.index = 3
    newer.stage.raw = 0
    old = Device.decode(newer.SerializeToString())
    assert (old.name, old.version) == (value.name, value.version)
    again = pb.DeviceNext.FromString(bytes(old))
    assert again == newer


def test_google_and_savestate_agree_on_nan_and_negative_zero(pb: Any) -> None:
    value = Scalars(
        u8=0, u16=0, u32=0, u64=0, i8=0, i16=0, i32=0, i64=0, int32=0, int64=0, uint32=0,
        uint64=0, sint32=0, sint64=0, fixed32=0, fixed64=0, sfixed32=0, sfixed64=0, b=False,
        f32=-0.0, f64=math.nan, s="", by=b"", plain=0,
    )
    theirs = to_google(value, pb.Scalars())
    assert theirs.SerializeToString() == bytes(value)
