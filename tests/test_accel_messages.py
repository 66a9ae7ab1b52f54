"""The C accelerator's helpers for repeated messages (``decode_messages``, ``encode_messages``,
which the generated code of a class without a table of its own calls with its elements'
table) against the generated Python code and the interpreter.

The same classes are compiled with the helpers and without: both codecs and the interpreting
codec must give the same bytes, the same values (every slot, ``_pb_unknown`` included, floats
bit for bit) and the same errors, and the raw compiled functions must refuse exactly the same
inputs, so that each path hands the same inputs to the interpreter. Each entry point is repeated
in a loop to show that memory stays flat.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import math
import struct
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from savestate import (
    DecodeError,
    EncodeError,
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
    sfixed32,
    sfixed64,
    sint32,
    u8,
    u16,
    u32,
    u64,
    uint64,
)
from savestate.codec import accel, compiler, interp, native, runtime
from savestate.codec.front import SIGNALS, Codec, codec_of
from savestate.codec.runtime import Mismatch
from savestate.model.plan import plan_of

needs_c = pytest.mark.skipif(not accel.ACCELERATED, reason="the C accelerator is not active")


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1
    NEG = -2


class Sparse(enum.IntEnum):  # no member 0: a field of it is required, not for the helper
    ONE = 1


class Nums(Protobuf, package="test.accelmsg"):
    a_u8: u8 = field(1)
    a_u16: u16 = field(2)
    a_u32: u32 = field(3)
    a_u64: u64 = field(4)
    a_i8: i8 = field(5)
    a_i16: i16 = field(6)
    a_i32: i32 = field(7)
    a_i64: i64 = field(8)
    a_int32: int32 = field(9)
    a_int64: int64 = field(10)
    a_bool: bool = field(11)
    a_mode: Mode = field(12)


class Fixed(Protobuf, package="test.accelmsg"):
    a_fixed32: fixed32 = field(1)
    a_sfixed32: sfixed32 = field(2)
    a_fixed64: fixed64 = field(3)
    a_sfixed64: sfixed64 = field(4)
    a_f32: f32 = field(5)
    a_sint32: sint32 = field(6)
    a_uint64: uint64 = field(7)
    a_f64: f64 = field(20)  # a two-byte tag


class Holder(Protobuf, package="test.accelmsg"):
    nums: list[Nums] = field(1)
    fixed: list[Fixed] = field(2)
    tail: u32 = field(3)
    name: str = field(4)


class WithDefault(Protobuf, package="test.accelmsg"):
    n: u32 = field(1, default=7)


class Choice(Oneof, package="test.accelmsg"):
    pass


class Picked(Choice, variant=1):
    n: u32 = field(1)


class Named_(Choice, variant=2):
    name: str = field(1)


class NotForTheHelper(Protobuf, package="test.accelmsg"):
    defaults: list[WithDefault] = field(1)


NUMS = plan_of(Nums).fields
FIXED = plan_of(Fixed).fields


def _codecs() -> tuple[Codec, Codec | None]:
    """Holder compiled without the C helpers and (when they are loaded) with them."""
    built: list[Codec | None] = []
    for use_c in (False, True):
        if use_c and accel.speedups is None:
            built.append(None)
            continue
        saved = accel.speedups
        accel.speedups = saved if use_c else None
        try:
            cc = compiler.compile_classes([Holder, Nums, Fixed])[Holder]
        finally:
            accel.speedups = saved
        assert ("decode_messages(" in cc.source) is use_c
        assert ("encode_messages(" in cc.source) is use_c
        for name, (other, direction) in cc.needs.items():  # as the front end links them
            if direction == "table":
                cc.env[name] = codec_of(other).native
        built.append(Codec(Holder, cc.encode, cc.decode, cc.source, cc.filename, None, None,
                           codec_of(Holder).record_charge))
    pure = built[0]
    assert pure is not None
    return pure, built[1]


PURE, NATIVE = _codecs()


def snap(value: Any) -> Any:
    """Everything a decoded value holds, floats by their bits (NaN payloads included)."""
    if isinstance(value, list):
        return [snap(v) for v in value]
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, Protobuf):
        names = [f.attr for f in plan_of(type(value)).fields]
        return (type(value).__name__, tuple((n, snap(getattr(value, n))) for n in names),
                value._pb_unknown)
    return (type(value).__name__, value)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", snap(call())
    except (EncodeError, DecodeError) as exc:
        return type(exc).__name__, str(exc)


def _raw(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", snap(call())
    except SIGNALS:
        return "signal", None


def _raw_decode(codec: Codec, data: bytes, depth: int = 100, budget: int = 1 << 62) -> Any:
    return codec._decode(data, 0, len(data), depth, [budget])


def _raw_encode(codec: Codec, obj: Any, depth: int = 100) -> bytes:
    buf = bytearray()
    codec._encode(obj, buf, depth, None)
    return bytes(buf)


def check_decode(data: bytes, depth: int = 100, memory: int | None = None) -> None:
    """Compiled with C, compiled pure and the interpreter agree on ``data``."""
    assert NATIVE is not None
    kw: dict[str, Any] = {"max_depth": depth}
    if memory is not None:
        kw["max_memory"] = memory
    native = _outcome(lambda: NATIVE.decode(data, **kw))
    pure = _outcome(lambda: PURE.decode(data, **kw))
    budget = memory if memory is not None else 64 * len(data) + (1 << 20)
    oracle = _outcome(lambda: interp.decode(Holder, data, depth, budget))
    assert native == pure
    if memory is not None:
        assert oracle == pure
    budget = memory if memory is not None else 1 << 62
    assert _raw(lambda: _raw_decode(NATIVE, data, depth, budget)) == _raw(
        lambda: _raw_decode(PURE, data, depth, budget))


def check_encode(obj: Holder, depth: int = 100) -> None:
    assert NATIVE is not None
    native = _outcome(lambda: NATIVE.encode(obj, depth))
    pure = _outcome(lambda: PURE.encode(obj, depth))
    oracle = _outcome(lambda: interp.encode(Holder, obj, depth))
    assert native == pure == oracle
    # The raw functions: what the helper accepts, Python accepts with the same bytes; what
    # Python refuses, the helper refuses. (It leaves int subclasses, ints for doubles and
    # _pb_unknown of other types than bytes to the interpreter: the results above agree.)
    raw_native = _raw(lambda: _raw_encode(NATIVE, obj, depth))
    raw_pure = _raw(lambda: _raw_encode(PURE, obj, depth))
    assert raw_native == raw_pure or (raw_native[0] == "signal" and native[0] == "ok")


def varint(value: int, pad: int = 0) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or pad:
            out.append(byte | 0x80)
            if not value:
                out += b"\x80" * (pad - 1) + b"\x00"
                return bytes(out)
        else:
            out.append(byte)
            return bytes(out)


def rec(number: int, wire: int, payload: bytes) -> bytes:
    """A record: tag, then (for wire type 2) the length, then the payload."""
    if wire == 2:
        payload = varint(len(payload)) + payload
    return varint(number << 3 | wire) + payload


def nums(*records: bytes) -> bytes:
    return rec(1, 2, b"".join(records))


def fixed(*records: bytes) -> bytes:
    return rec(2, 2, b"".join(records))


# -- which fields qualify ---------------------------------------------------------------------

@needs_c
def test_the_helpers_take_the_elements_that_have_tables() -> None:
    for cls in (Nums, Fixed, Holder):
        assert native.holds_class(cls) and codec_of(cls).native is not None
    assert not native.holds_class(WithDefault)  # absence is its default, not the zero
    assert codec_of(WithDefault).native is None


@needs_c
def test_helpers_only_where_the_plan_allows() -> None:
    source = codec_of(NotForTheHelper).source
    assert "decode_messages(" not in source and "encode_messages(" not in source
    data = rec(1, 2, b"")
    assert NotForTheHelper.decode(data).defaults[0].n == 7


class Named(Protobuf, package="test.accelmsg"):
    name: str = field(1)
    leaf: Nums | None = field(2)
    data: bytes = field(3)


class NamedList(Protobuf, package="test.accelmsg"):
    version: u32 = field(1, default=7)  # no table of its own: its generated code runs
    items: list[Named] = field(2)
    choices: list[Choice] = field(3)


@needs_c
def test_a_list_of_any_message_with_a_table_goes_to_the_helpers() -> None:
    """Elements with strings, bytes and nested messages, and Oneof values, are read and written
    by their tables, as the generated code reads and writes them (bytes, values and errors)."""
    assert codec_of(NamedList).native is None and codec_of(Named).native is not None
    source = codec_of(NamedList).source
    assert "decode_messages(" in source and "encode_messages(" in source
    assert "Named_table" in source and "Choice_table" in source  # a struct's and a Oneof's
    value = NamedList(
        items=[Named(name="é" * i, leaf=_num(a_u64=i, a_mode=Mode.NEG) if i % 2 else None,
                     data=bytes(range(i))) for i in range(40)],
        choices=[Picked(n=i) if i % 3 else Named_(name=str(i)) for i in range(40)],
    )
    data = value.encode()
    assert data == interp.encode(NamedList, value, 100)
    assert NamedList.decode(data) == value == interp.decode(NamedList, data, 100, 1 << 40)
    for bad in (
        rec(2, 2, rec(1, 2, b"\xff")),  # a name that is not UTF-8
        rec(3, 2, rec(2, 2, rec(1, 2, b"\xff"))),  # a variant's name that is not UTF-8
        rec(3, 2, b""),  # a Oneof element with no variant
    ):
        with pytest.raises(DecodeError) as native_error:
            NamedList.decode(bad)
        with pytest.raises(DecodeError) as interp_error:
            interp.decode(NamedList, bad, 100, 1 << 40)
        assert str(native_error.value) == str(interp_error.value)
    both = rec(3, 2, rec(1, 2, b"") + rec(2, 2, b""))  # two variants in one element: the last
    assert NamedList.decode(both) == interp.decode(NamedList, both, 100, 1 << 40)
    for refused_value, where in (
        (NamedList(items=[Named(name="\udc80", leaf=None, data=b"")], choices=[]),
         "items[0].name"),
        (NamedList(items=[], choices=[Named_(name="\udc80")]), "choices[0]"),
        (NamedList(items=[], choices=[_num()]), "choices[0]"),  # not a variant
    ):
        with pytest.raises(EncodeError) as refused:
            refused_value.encode()
        with pytest.raises(EncodeError) as interp_refused:
            interp.encode(NamedList, refused_value, 100)
        assert str(refused.value) == str(interp_refused.value) and where in str(refused.value)


# -- hand-picked cases ------------------------------------------------------------------------

EDGE_CASES = [
    b"",
    nums(),  # one empty element: every field its zero
    nums() + nums() + nums(),
    nums(rec(1, 0, b"\xff\x01")),  # 255: the top of u8
    nums(rec(1, 0, b"\x80\x02")),  # 256: past u8
    nums(rec(2, 0, varint(65536))),  # past u16
    nums(rec(3, 0, varint(1 << 32))),  # past u32
    nums(rec(4, 0, varint((1 << 64) - 1))),  # the top of u64
    nums(rec(4, 0, b"\xff" * 9 + b"\x02")),  # past 64 bits
    nums(rec(4, 0, b"\xff" * 10 + b"\x01")),  # 11 bytes
    nums(rec(4, 0, varint(1, pad=8))),  # overlong but 10 bytes: accepted
    nums(rec(5, 0, varint(255))),  # zigzag -128: the bottom of i8
    nums(rec(5, 0, varint(256))),  # zigzag 128: past i8
    nums(rec(7, 0, varint((1 << 32) - 1))),  # zigzag bottom of i32
    nums(rec(8, 0, varint((1 << 64) - 1))),  # zigzag bottom of i64
    nums(rec(9, 0, varint((1 << 64) - (1 << 31)))),  # int32 min, ten bytes
    nums(rec(9, 0, varint(1 << 31))),  # past int32
    nums(rec(10, 0, varint(1 << 63))),  # int64 min
    nums(rec(11, 0, varint(7))),  # a bool of 7 is true
    nums(rec(11, 0, varint(0))),
    nums(rec(12, 0, varint((1 << 64) - 2))),  # Mode.NEG
    nums(rec(12, 0, varint(3))),  # no member 3
    nums(rec(1, 0, b"\x01"), rec(1, 0, b"\x02")),  # the last value wins
    nums(rec(1, 2, b"\x01")),  # a known field with the wrong wire type
    nums(rec(1, 5, b"\x01\x00\x00\x00")),
    nums(rec(99, 0, b"\x05"), rec(2, 0, b"\x01"), rec(98, 2, b"xy")),  # unknown, kept in order
    nums(rec(99, 1, b"12345678"), rec(97, 5, b"1234")),
    nums(rec(99, 1, b"1234567")),  # an unknown fixed64 cut short
    nums(rec(99, 2, b"")[:-1] + b"\x05ab"),  # an unknown length past the element
    nums(rec(99, 3, b"")),  # wire type 3
    nums(rec(99, 4, b"")),
    nums(rec(99, 6, b"")),
    nums(rec(99, 7, b"")),
    nums(rec(0, 0, b"\x01")),  # field number 0
    nums(varint(1 << 32) + b"\x01"),  # a number past 2**29 - 1
    nums(varint(8, pad=2) + b"\x05"),  # field 1 by an overlong tag
    nums(b"\x88"),  # a tag cut short
    nums(rec(1, 0, b"\x80")),  # a value cut short inside the element
    nums(rec(1, 0, b"")),
    nums() + rec(3, 0, b"\x05") + nums(rec(2, 0, b"\x09")),  # another field between elements
    nums() + b"\x0a",  # the next element's length missing
    nums() + b"\x0a\x05\x08",  # the next element longer than the input
    nums() + varint(10, pad=1) + b"\x00",  # the next element by an overlong tag
    b"\x0a\x80",  # a length cut short
    b"\x0a" + b"\xff" * 10 + b"\x01",  # an 11-byte length
    fixed(rec(1, 5, b"\xff\xff\xff\xff"), rec(2, 5, b"\xff\xff\xff\xff")),
    fixed(rec(3, 1, b"\xff" * 8), rec(4, 1, b"\x00" * 7 + b"\x80")),
    fixed(rec(5, 5, struct.pack("<f", -0.0)), rec(20, 1, struct.pack("<d", math.inf))),
    fixed(rec(5, 5, b"\x01\x00\xa0\x7f"), rec(20, 1, b"\x01\x00\x00\x00\x00\x00\xf4\x7f")),  # NaNs
    fixed(rec(5, 5, b"\x00\x00\x80")),  # a float cut short
    fixed(rec(20, 1, b"\x00" * 7)),
    fixed(rec(20, 0, b"\x01")),  # the two-byte tag with the wrong wire type
    fixed(rec(6, 0, varint((1 << 32) - 1)), rec(7, 0, varint((1 << 64) - 1))),
    fixed(rec(6, 0, varint(1 << 32))),  # zigzag past 32 bits
    nums(rec(1, 0, b"\x01")) + fixed(rec(1, 5, b"\x01\x00\x00\x00")) + nums(),
    nums() + rec(4, 2, b"\xff"),  # invalid UTF-8 after the elements
]


@needs_c
@pytest.mark.parametrize("data", EDGE_CASES)
def test_edge_cases_agree(data: bytes) -> None:
    check_decode(data)


@needs_c
def test_depth_and_memory_budget_agree() -> None:
    data = nums(rec(1, 0, b"\x01")) * 5 + fixed() * 3
    for depth in (1, 2, 3):
        check_decode(data, depth=depth)
    cost = compiler.runtime.built_cost(plan_of(Holder))
    per_num = compiler.runtime.built_cost(plan_of(Nums))
    for memory in range(cost + 4 * per_num - 2, cost + 5 * per_num + 3 * 96):
        check_decode(data, memory=memory)


@needs_c
def test_the_budget_is_charged_per_element() -> None:
    assert NATIVE is not None
    data = nums() * 10
    for start in (5000, 1000):  # enough, and too little: charged up to the element refused
        budget, expect = [start], [start]
        with contextlib.suppress(Mismatch):
            NATIVE._decode(data, 0, len(data), 100, budget)
        with contextlib.suppress(Mismatch):
            PURE._decode(data, 0, len(data), 100, expect)
        assert budget == expect


def _holder(**kw: Any) -> Holder:
    values: dict[str, Any] = {"nums": [], "fixed": [], "tail": 0, "name": ""}
    values.update(kw)
    return Holder(**values)


def _num(**kw: Any) -> Nums:
    values: dict[str, Any] = {f.attr: f.zero for f in NUMS}
    values.update(kw)
    return Nums(**values)


def _fix(**kw: Any) -> Fixed:
    values: dict[str, Any] = {f.attr: f.zero for f in FIXED}
    values.update(kw)
    return Fixed(**values)


class IntSub(int):
    pass


def _with_unknown(obj: Any, unknown: Any) -> Any:
    obj._pb_unknown = unknown
    return obj


ENCODE_CASES = [
    _holder(),
    _holder(nums=[_num()] * 3),
    _holder(nums=[_num(a_u8=255, a_u64=(1 << 64) - 1, a_i8=-128, a_i64=-(1 << 63),
                       a_int32=-1, a_int64=-(1 << 63), a_bool=True, a_mode=Mode.NEG)]),
    _holder(nums=[_num(a_u8=256)]),
    _holder(nums=[_num(a_i8=128)]),
    _holder(nums=[_num(a_u32=-1)]),
    _holder(nums=[_num(a_u64=1 << 64)]),
    _holder(nums=[_num(a_u32=IntSub(5))]),  # an int subclass: the interpreter's
    _holder(nums=[_num(a_u32=Mode.ON)]),
    _holder(nums=[_num(a_u32=1.0)]),
    _holder(nums=[_num(a_bool=1)]),
    _holder(nums=[_num(a_mode=1)]),
    _holder(nums=[_num(a_mode=None)]),
    _holder(nums=[_num(), None]),
    _holder(nums=[_fix()]),  # an element of another class
    _holder(nums=(_num(),)),  # not a list
    _holder(nums=[_with_unknown(_num(a_u8=1), rec(99, 0, b"\x05"))]),
    _holder(nums=[_with_unknown(_num(), b"x" * 300)]),  # a two-byte length
    _holder(nums=[_with_unknown(_num(), bytearray(b"\x08\x01"))]),
    _holder(fixed=[_fix(a_fixed32=(1 << 32) - 1, a_sfixed32=-(1 << 31),
                        a_fixed64=(1 << 64) - 1, a_sfixed64=-1, a_f32=-0.0,
                        a_f64=math.nan, a_sint32=-1, a_uint64=1)]),
    _holder(fixed=[_fix(a_f32=1e300)]),  # too large for a float
    _holder(fixed=[_fix(a_f32=math.inf, a_f64=-math.inf)]),
    _holder(fixed=[_fix(a_f64=3)]),  # an int for a double
    _holder(fixed=[_fix(a_fixed32=1 << 32)]),
    _holder(fixed=[_fix(a_sfixed64=1 << 63)]),
]


@needs_c
@pytest.mark.parametrize("case", range(len(ENCODE_CASES)))
def test_encode_edge_cases_agree(case: int) -> None:
    obj = ENCODE_CASES[case]
    check_encode(obj)
    for depth in (1, 2):
        check_encode(obj, depth)


# -- properties -------------------------------------------------------------------------------

def _range(f: Any) -> tuple[int, int]:
    kind = f.value.kind
    return kind.lo, kind.hi


@st.composite
def nums_values(draw: st.DrawFn, broken: bool) -> Nums:
    values: dict[str, Any] = {}
    for f in NUMS:
        if f.attr == "a_bool":
            v: Any = draw(st.booleans())
        elif f.attr == "a_mode":
            v = draw(st.sampled_from(list(Mode)))
        else:
            lo, hi = _range(f)
            v = draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, 127, 128])))
        if broken and draw(st.integers(0, 5)) == 0:
            v = draw(st.sampled_from([None, -1, 1 << 64, 1.5, True, IntSub(1), Mode.ON]))
        values[f.attr] = v
    obj = Nums(**values)
    if draw(st.integers(0, 3)) == 0:
        obj._pb_unknown = draw(st.sampled_from([rec(99, 0, b"\x01"), rec(50, 2, b"ab")]))
    return obj


@st.composite
def fixed_values(draw: st.DrawFn, broken: bool) -> Fixed:
    values: dict[str, Any] = {}
    for f in FIXED:
        if f.value.kind.python is float:  # type: ignore[union-attr]
            v: Any = draw(st.floats(allow_nan=True, width=32 if f.attr == "a_f32" else 64))
        else:
            lo, hi = _range(f)
            v = draw(st.integers(lo, hi))
        if broken and draw(st.integers(0, 5)) == 0:
            v = draw(st.sampled_from([None, 1, 1e300, 1 << 64, -(1 << 70)]))
        values[f.attr] = v
    return Fixed(**values)


@st.composite
def holders(draw: st.DrawFn) -> Holder:
    broken = draw(st.integers(0, 2)) == 0
    return _holder(nums=draw(st.lists(nums_values(broken), max_size=4)),
                   fixed=draw(st.lists(fixed_values(broken), max_size=3)),
                   tail=draw(st.integers(0, 300)))


@needs_c
@settings(max_examples=150)
@given(holders())
def test_encode_property(obj: Holder) -> None:
    check_encode(obj)


@st.composite
def element_body(draw: st.DrawFn, numbers: list[int], broken: bool) -> bytes:
    out = bytearray()
    for _ in range(draw(st.integers(0, 6))):
        number = draw(st.sampled_from([*numbers, 0, 30, 99, 1 << 20]))
        wire = draw(st.sampled_from([0, 0, 1, 2, 5] + ([3, 4, 6, 7] if broken else [])))
        if wire == 0:
            payload = varint(draw(st.one_of(st.integers(0, 300), st.integers(0, (1 << 64) - 1),
                                            st.integers(0, (1 << 70) if broken else 0))),
                             pad=draw(st.integers(0, 2)))
        elif wire in (1, 5):
            payload = draw(st.binary(min_size=8 if wire == 1 else 4,
                                     max_size=8 if wire == 1 else 4))
        else:
            payload = draw(st.binary(max_size=4))
        out += rec(number, wire, payload)
    if broken:
        out = out[: len(out) - draw(st.integers(0, 2))]
    return bytes(out)


@st.composite
def holder_bytes(draw: st.DrawFn) -> bytes:
    broken = draw(st.integers(0, 2)) == 0
    out = bytearray()
    for _ in range(draw(st.integers(0, 6))):
        which = draw(st.integers(0, 3))
        if which == 0:
            out += nums(draw(element_body(list(range(1, 13)), broken)))
        elif which == 1:
            out += fixed(draw(element_body([1, 2, 3, 4, 5, 6, 7, 20], broken)))
        elif which == 2:
            out += rec(3, 0, varint(draw(st.integers(0, 1 << 33))))
        else:
            out += rec(draw(st.sampled_from([5, 60])), 0, b"\x01")
    if broken:
        out += draw(st.binary(max_size=4))
        out = out[: len(out) - draw(st.integers(0, 3))]
    return bytes(out)


@needs_c
@settings(max_examples=300)
@given(st.one_of(holder_bytes(), st.binary(max_size=30)))
def test_decode_property(data: bytes) -> None:
    check_decode(data)


def test_round_trip_large() -> None:
    obj = _holder(
        nums=[_num(a_u64=i * 0x9E3779B97F4A7C15 % (1 << 64), a_i32=-i, a_mode=Mode(i % 2))
              for i in range(3000)],
        fixed=[_fix(a_f64=i / 7, a_sfixed32=-i) for i in range(500)],
    )
    data = PURE.encode(obj)
    assert snap(PURE.decode(data)) == snap(obj)
    if NATIVE is not None:
        assert NATIVE.encode(obj) == data
        assert snap(NATIVE.decode(data)) == snap(obj)


# -- the helpers called directly --------------------------------------------------------------

NUMS_TABLE = codec_of(Nums).native
FIXED_TABLE = codec_of(Fixed).native


def _entry_table() -> Any:
    """The table of a map entry of two u32s."""
    assert accel.speedups is not None
    entry = accel.speedups.Layout()
    key, value = ((n, 0, 32, 0, 0, 0, -1, n - 1, 0, None, None, None, None, None, None)
                  for n in (1, 2))
    entry.fill(2, None, 0, (key, value))
    return entry


@needs_c
def test_helper_arguments_are_checked() -> None:
    c = accel.speedups
    assert c is not None
    data = nums()
    args: list[Any] = [data, 1, len(data), [], 100, [1 << 40], NUMS_TABLE, 10]
    assert c.decode_messages(*args) == len(data)
    with pytest.raises(TypeError):
        c.decode_messages(*args[:7])
    for index, bad, error in [
        (0, bytearray(data), TypeError), (3, (), TypeError), (5, (1,), TypeError),
        (6, Nums, TypeError),  # not a table
        (6, _entry_table(), TypeError),  # a map entry's table: not a declared class's
        (6, c.Layout(), Mismatch),  # a table never filled refuses everything
    ]:
        call = list(args)
        call[index] = bad
        with pytest.raises(error):
            c.decode_messages(*call)
    for pos, end in ((-1, 2), (0, len(data) + 1), (2, 1)):
        with pytest.raises(Mismatch):
            c.decode_messages(data, pos, end, *args[3:])
    with pytest.raises(Mismatch):  # depth
        c.decode_messages(*args[:4], 1, *args[5:])
    for budget in ([], [1.0], [10], [-1], [-(1 << 70)]):
        with pytest.raises(Mismatch):
            c.decode_messages(*args[:5], budget, *args[6:])
    huge = [1 << 70]  # past 64 bits: read as the most the C code holds, and charged exactly
    assert c.decode_messages(*args[:5], huge, *args[6:]) == len(data)
    assert huge == [(1 << 70) - runtime.built_cost(plan_of(Nums))]
    counted: list[Any] = []
    uncounted: list[Any] = []  # a budget of None: not counted, as in the generated code
    assert c.decode_messages(data, 1, len(data), counted, 100, [1 << 40], *args[6:]) == len(data)
    assert c.decode_messages(data, 1, len(data), uncounted, 100, None, *args[6:]) == len(data)
    assert [snap(x) for x in uncounted] == [snap(x) for x in counted] and counted
    buf = bytearray(b"kept")
    eargs: list[Any] = [buf, [_num()], 100, b"\x0a", NUMS_TABLE]
    c.encode_messages(*eargs)
    assert buf == b"kept\x0a\x00"
    with pytest.raises(TypeError):
        c.encode_messages(b"", *eargs[1:])
    with pytest.raises(TypeError):
        c.encode_messages(*eargs[:4], Nums)
    with pytest.raises(Mismatch):
        c.encode_messages(buf, (_num(),), *eargs[2:])
    with pytest.raises(Mismatch):
        c.encode_messages(buf, [_num(), _num(a_u8=300)], *eargs[2:])
    with pytest.raises(Mismatch):
        c.encode_messages(buf, [_fix()], *eargs[2:])  # an element of another class
    with pytest.raises(Mismatch):  # depth
        c.encode_messages(buf, [_num()], 1, *eargs[3:])
    assert buf == b"kept\x0a\x00"  # a refused list leaves nothing behind


def _leak_cases() -> list[tuple[str, Callable[[], Any]]]:
    c = accel.speedups
    assert c is not None
    ok = nums(rec(4, 0, varint(1 << 60)), rec(12, 0, b"\x01"), rec(99, 2, b"xyz")) * 20
    ok_fixed = fixed(rec(20, 1, struct.pack("<d", 1.5)), rec(3, 1, b"\xff" * 8)) * 20
    many = [_num(a_u64=1 << 60, a_mode=Mode.NEG, a_i8=-3)] * 20
    with_unknown = [_with_unknown(_num(a_u8=3), b"\x98\x06\x01")] * 20
    many_fixed = [_fix(a_f64=2.5, a_sfixed64=-7)] * 20

    def decode(
        data: bytes, budget: int | None = 1 << 40, table: Any = NUMS_TABLE
    ) -> Callable[[], Any]:
        def run() -> None:
            with contextlib.suppress(Mismatch):
                c.decode_messages(data, 1, len(data), [], 100,
                                  None if budget is None else [budget], table, data[0])
        return run

    def encode(items: list[Any], table: Any = NUMS_TABLE) -> Callable[[], Any]:
        def run() -> None:
            with contextlib.suppress(Mismatch):
                c.encode_messages(bytearray(), items, 100, b"\x0a", table)
        return run

    return [
        ("decode ok", decode(ok)),
        ("decode fixed", decode(ok_fixed, table=FIXED_TABLE)),
        ("decode out of range",
         decode(nums(rec(1, 0, b"\x01")) * 5 + nums(rec(1, 0, b"\xff\x7f")))),
        ("decode bad member", decode(nums(rec(2, 0, b"\x01"), rec(12, 0, b"\x05")))),
        ("decode truncated", decode(ok[:-2])),
        ("decode budget", decode(ok, budget=1000)),
        ("decode uncounted", decode(ok, budget=None)),
        ("decode bad wire", decode(nums(rec(99, 0, b"\x01"), rec(1, 2, b"")))),
        ("encode ok", encode(many)),
        ("encode unknown", encode(with_unknown)),
        ("encode fixed", encode(many_fixed, table=FIXED_TABLE)),
        ("encode refused", encode([*many, _num(a_u16=-1)])),
        ("encode bad float", encode([_fix(a_f32=1e300)], table=FIXED_TABLE)),
        ("codec", lambda: NATIVE.decode(NATIVE.encode(_holder(nums=many)))),  # type: ignore[union-attr]
    ]


LEAK_CASES = 14


@needs_c
@pytest.mark.parametrize("case", range(LEAK_CASES))
def test_entry_points_do_not_leak(case: int) -> None:
    cases = _leak_cases()
    assert len(cases) == LEAK_CASES
    name, call = cases[case]
    for _ in range(2000):
        call()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(30_000):
            call()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One leaked object per call would be a megabyte or more.
    assert grown < 16_384, f"{name}: {grown} bytes more after the loop"


@needs_c
def test_arguments_keep_their_reference_counts() -> None:
    c = accel.speedups
    assert c is not None
    data = nums(rec(12, 0, b"\x01"), rec(99, 0, b"\x01"))
    items = [_num(a_mode=Mode.ON)]
    watched = (data, items, Nums, NUMS_TABLE, Mode, Mode.ON, Mode.OFF)
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(1000):
        out: list[Any] = []
        c.decode_messages(data, 1, len(data), out, 100, [1 << 30], NUMS_TABLE, 10)
        c.encode_messages(bytearray(), items, 100, b"\x0a", NUMS_TABLE)
        del out
    after = [sys.getrefcount(x) for x in watched]
    assert after == before
