"""Long packed integer lists written many values at a time (savestate.codec.packed).

The expected bytes come from a plain varint loop written here (the 64-bit pattern of each value,
seven bits a byte), and at the codec level from the interpreting codec, which writes one value
at a time; the errors are the interpreter's.
"""

from __future__ import annotations

import enum
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from savestate import EncodeError, Protobuf, field, i8, i64, int32, int64, u16, u32, u64
from savestate.codec import accel, packed
from savestate.codec.front import codec_of
from savestate.codec.interp import encode as interp_encode
from savestate.codec.runtime import Mismatch

M64 = (1 << 64) - 1


def varints(values: list[int]) -> bytes:
    out = bytearray()
    for value in values:
        value &= M64
        while value > 0x7F:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def bits(low: int, high: int) -> st.SearchStrategy[int]:
    """Values of ``low`` to ``high`` bits, each bit length as likely as another."""
    return st.integers(low, high).flatmap(lambda n: st.integers(1 << n >> 1, (1 << n) - 1))


# Each kind of list the blocks choose between: values below 128, up to 5 varint bytes, up to
# 10, a few wide among small ones, and zeros (a few, or many) among any of them.
EDGES = [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, (1 << 28) - 1, 1 << 28, (1 << 35) - 1, 1 << 35,
         (1 << 56) - 1, 1 << 56, (1 << 63) - 1, 1 << 63, M64]
UNSIGNED = st.one_of(bits(0, 7), bits(0, 35), bits(0, 64), bits(30, 64), st.sampled_from(EDGES))
LENGTHS = st.sampled_from([64, 65, 100, 255, 256, 257, 511, 513, 700])


@st.composite
def unsigned_lists(draw: st.DrawFn) -> list[int]:
    length = draw(LENGTHS)
    common = draw(st.sampled_from([bits(0, 7), bits(0, 35), bits(0, 64), bits(35, 64)]))
    values = draw(st.lists(common, min_size=length, max_size=length))
    for _ in range(draw(st.integers(0, 40))):  # zeros and outliers, anywhere
        values[draw(st.integers(0, length - 1))] = draw(UNSIGNED)
    return values


@given(unsigned_lists())
def test_unsigned_values_are_the_loops_bytes(values: list[int]) -> None:
    buf = bytearray(b"before")
    if packed.write_varints(buf, values, 0, M64):
        assert bytes(buf) == b"before" + varints(values)
    else:
        assert buf == b"before"  # left to the loop, nothing written


@given(unsigned_lists(), st.data())
def test_signed_values_are_their_64_bit_patterns(values: list[int], data: st.DataObject) -> None:
    signed = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    for _ in range(data.draw(st.integers(0, 5))):
        signed[data.draw(st.integers(0, len(signed) - 1))] = data.draw(
            st.sampled_from([-1, -(1 << 63), -(1 << 31), -128, -129]))
    buf = bytearray()
    if packed.write_varints(buf, signed, -(1 << 63), (1 << 63) - 1):
        assert bytes(buf) == varints(signed)
    else:
        assert buf == b""


def test_every_way_of_writing_a_block_is_taken() -> None:
    # Each list is one that the sample sends to the blocks, and each block takes another way.
    cases = {
        "below 128": [5] * 300,
        "8-byte lanes": [(1 << 34) + i for i in range(300)],
        "16-byte lanes": [(1 << 63) + i for i in range(300)],
        "a few zeros": [0 if i % 50 == 7 else (1 << 60) + i for i in range(300)],
        "many zeros": [0 if i % 3 == 0 else (1 << 60) + i for i in range(300)],
        "a zero lane first and last": [0] + [(1 << 40) + i for i in range(298)] + [0],
        "blocks of each kind": [5] * 256 + [1 << 34] * 256 + [M64] * 256 + [1 << 20] * 100,
        "small values with wide ones": [1 << 36 if i % 40 == 0 else 1 << 20 for i in range(600)],
    }
    for name, values in cases.items():
        buf = bytearray()
        assert packed.write_varints(buf, values, 0, M64), name
        assert bytes(buf) == varints(values), name


def test_a_list_the_loop_writes_faster_is_left_to_it() -> None:
    buf = bytearray()
    assert not packed.write_varints(buf, [300, 200, 1000] * 100, 0, M64)  # two bytes each
    assert not packed.write_varints(buf, [1] * 300 + [M64], 0, M64)  # one wide among many
    assert buf == b""


@pytest.mark.parametrize("values", [
    [1 << 40, True] * 20,  # a bool is not a u64
    [1 << 40, 2.0] * 20,
    [1 << 40, "x"] * 20,
])
def test_an_element_that_is_not_an_int_is_left_to_the_loop(values: list[Any]) -> None:
    buf = bytearray()
    assert not packed.write_varints(buf, values, 0, M64)
    assert buf == b""


@pytest.mark.parametrize("values, lo, hi", [
    ([1 << 40, -1] * 20, 0, M64),
    ([1 << 50, 1 << 64] * 20, 0, M64),
    ([1 << 31, 1 << 32] * 20, 0, (1 << 32) - 1),
    ([1 << 30, -(1 << 31) - 1] * 20, -(1 << 31), (1 << 31) - 1),
    ([-(1 << 30), 1 << 31] * 20, -(1 << 31), (1 << 31) - 1),
    ([-1, 1 << 63] * 20, -(1 << 63), (1 << 63) - 1),
])
def test_a_value_out_of_range_mismatches(values: list[int], lo: int, hi: int) -> None:
    with pytest.raises(Mismatch):
        packed.write_varints(bytearray(), values, lo, hi)


def test_the_kinds_served_are_full_ranges() -> None:
    assert packed.serves(0, M64) and packed.serves(0, 0xFFFF)
    assert packed.serves(-(1 << 63), (1 << 63) - 1) and packed.serves(-128, 127)
    assert not packed.serves(0, 1000) and not packed.serves(-5, 5)
    assert not packed.serves(0, (1 << 65) - 1)


# -- through the codec: the same bytes and errors as the interpreter -------------------------


class Color(enum.IntEnum):
    RED = 1 << 40


class Lists(Protobuf):
    unsigned: list[u64] = field(1)
    signed: list[i64] = field(2)  # zigzag: always the loop
    narrow: list[u32] = field(3)
    small_signed: list[int32] = field(4)
    shorts: list[u16] = field(5)
    tiny: list[i8] = field(6)  # zigzag
    plain: list[int64] = field(7)


def _lists(**values: Any) -> Lists:
    kw: dict[str, Any] = {name: [] for name in ("unsigned", "signed", "narrow", "small_signed",
                                                 "shorts", "tiny", "plain")}
    kw.update(values)
    return Lists(**kw)


def test_the_pure_path_calls_it_for_long_lists_of_full_range_kinds() -> None:
    source = codec_of(Lists).source
    if accel.ACCELERATED:
        assert "write_varints" not in source  # the C helpers write packed lists
    else:
        calls = re.findall(r"not write_varints\(buf, (\w+), (-?\d+), (\d+)\):", source)
        assert sorted(calls) == sorted([
            ("unsigned", "0", str(M64)),
            ("narrow", "0", str((1 << 32) - 1)),
            ("small_signed", str(-(1 << 31)), str((1 << 31) - 1)),
            ("shorts", "0", "65535"),
            ("plain", str(-(1 << 63)), str((1 << 63) - 1)),
        ])


@given(unsigned_lists(), st.data())
def test_codec_bytes_are_the_interpreters(values: list[int], data: st.DataObject) -> None:
    signed = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    obj = _lists(
        unsigned=values,
        signed=signed,
        plain=signed,
        narrow=[v & 0xFFFFFFFF for v in values],
        small_signed=[(v & 0xFFFFFFFF) - (1 << 31) for v in values],
        shorts=[v & 0xFFFF for v in values],
        tiny=[(v & 0xFF) - 128 for v in values],
    )
    assert codec_of(Lists).encode(obj) == interp_encode(Lists, obj)


def test_int_enum_members_encode_as_their_values() -> None:
    values = [Color.RED, 1 << 41] * 50
    obj = _lists(unsigned=values)
    assert codec_of(Lists).encode(obj) == interp_encode(Lists, obj)


@pytest.mark.parametrize("name, values", [
    ("unsigned", [1 << 40] * 100 + [True]),
    ("unsigned", [1 << 40] * 100 + [-1]),
    ("unsigned", [1 << 40] * 300 + [1 << 64]),
    ("signed", [-(1 << 40)] * 100 + [1 << 63]),
    ("narrow", [1 << 31] * 100 + [1 << 32]),
    ("small_signed", [-(1 << 30)] * 100 + [1 << 31]),
    ("tiny", [-100] * 100 + [128]),
    ("plain", [-(1 << 62)] * 100 + [1.5]),
])
def test_errors_are_the_interpreters(name: str, values: list[Any]) -> None:
    obj = _lists(**{name: values})
    with pytest.raises(EncodeError) as fast:
        codec_of(Lists).encode(obj)
    with pytest.raises(EncodeError) as slow:
        interp_encode(Lists, obj)
    assert str(fast.value) == str(slow.value)
    assert f"{name}[" in str(fast.value)  # names the element


# -- lists of small messages of numbers ---------------------------------------------------


class Register(Protobuf):
    index: u32 = field(1)
    value: u64 = field(2)
    on: bool = field(3)
    delta: int64 = field(4)
    small: int32 = field(5)
    short: u16 = field(15)


class Registers(Protobuf):
    registers: list[Register] = field(3)
    name: str = field(1)


def reg(**values: Any) -> Register:
    """A register with the fields not given zero."""
    return Register(**{"index": 0, "value": 0, "on": False, "delta": 0, "small": 0, "short": 0,
                       **values})


class Named(Protobuf):
    label: str = field(1)
    value: u64 = field(2)


class Far(Protobuf):
    value: u64 = field(16)  # a two-byte tag


class Others(Protobuf):
    named: list[Named] = field(1)
    far: list[Far] = field(2)
    zigzag: list[Lists] = field(3)
    late: list[Register] = field(16)  # a two-byte tag of its own


@st.composite
def registers(draw: st.DrawFn) -> list[Register]:
    """Registers whose fields are drawn from one of the widths, each zero at a drawn rate
    (a seeded generator makes the many values; hypothesis draws how)."""
    length = draw(st.sampled_from([64, 128, 129, 255, 256, 257, 600]))
    low, high = draw(st.sampled_from([(0, 7), (0, 35), (0, 64), (35, 64)]))
    zeros = draw(st.sampled_from([0.0, 0.2, 0.9, 1.0]))
    rng = random.Random(draw(st.integers(0, 2**32)))

    def number() -> int:
        if rng.random() < zeros:
            return 0
        n = rng.randint(low, high)
        return rng.randint(1 << n >> 1, (1 << n) - 1)

    return [
        reg(index=number() & 0xFFFFFFFF, value=number(), on=rng.random() >= zeros,
            delta=number() - (1 << 63), small=(number() & 0xFFFFFFFF) - (1 << 31),
            short=number() & 0xFFFF)
        for _ in range(length)
    ]


@given(registers())
def test_message_lists_are_the_interpreters_bytes(items: list[Register]) -> None:
    obj = Registers(registers=items, name="r")
    assert codec_of(Registers).encode(obj) == interp_encode(Registers, obj)
    buf = bytearray(b"before")
    fields = codec_of(Registers)._encode.__globals__.get("Register_rows")
    if fields is not None:  # the pure path: the helper writes them, in full
        assert packed.write_messages(buf, items, Register, fields, 3 << 3 | 2)
        records = interp_encode(Registers, Registers(registers=items, name=""))
        assert bytes(buf) == b"before" + records


def test_message_lists_the_helper_leaves_to_the_loop() -> None:
    many = [reg(index=i, value=1 << 40) for i in range(200)]
    kept = reg(index=5)
    kept._pb_unknown = b"\x30\x01"  # field 6 = 1, kept from an earlier decode
    cases = {
        "another class": [*many, Named(label="", value=1)],
        "unknown fields": [*many, kept],
        "a bool for a number": [*many, reg(index=True)],
        "an int for a bool": [*many, reg(on=1)],
        "an IntEnum member": [*many, reg(value=Color.RED)],
    }
    for name, items in cases.items():
        obj = Registers(registers=items, name="")
        if name in ("another class", "a bool for a number", "an int for a bool"):
            with pytest.raises(EncodeError) as fast:
                codec_of(Registers).encode(obj)
            with pytest.raises(EncodeError) as slow:
                interp_encode(Registers, obj)
            assert str(fast.value) == str(slow.value), name
        else:
            assert codec_of(Registers).encode(obj) == interp_encode(Registers, obj), name
        if not accel.ACCELERATED:
            fields = codec_of(Registers)._encode.__globals__["Register_rows"]
            buf = bytearray()
            assert not packed.write_messages(buf, items, Register, fields, 26), name
            assert buf == b""


@pytest.mark.parametrize("change", [
    {"value": 1 << 64}, {"value": -1}, {"index": 1 << 32}, {"small": 1 << 31},
    {"delta": -(1 << 63) - 1}, {"short": 1 << 16},
])
def test_message_list_errors_are_the_interpreters(change: dict[str, int]) -> None:
    items = [reg(index=i, value=(1 << 50) + i) for i in range(300)]
    items[270] = reg(**change)
    obj = Registers(registers=items, name="")
    with pytest.raises(EncodeError) as fast:
        codec_of(Registers).encode(obj)
    with pytest.raises(EncodeError) as slow:
        interp_encode(Registers, obj)
    assert str(fast.value) == str(slow.value)
    assert "registers[270]" in str(fast.value)


def test_empty_messages_keep_their_zero_length() -> None:
    items = [reg() if i % 7 == 0 else reg(value=1 << 40) for i in range(300)]
    for batch in (items, [reg() for _ in range(300)]):
        obj = Registers(registers=batch, name="")
        assert codec_of(Registers).encode(obj) == interp_encode(Registers, obj)


def test_only_lists_of_small_messages_of_numbers_take_the_helper() -> None:
    if accel.ACCELERATED:
        assert "write_messages" not in codec_of(Others).source
        return
    calls = re.findall(r"write_messages\(buf, (\w+), (\w+), ", codec_of(Others).source)
    assert calls == []  # a string field; a two-byte tag; zigzag fields; a two-byte list tag
    source = codec_of(Registers).source
    assert re.findall(r"if len\((\w+)\) < (\d+) or not write_messages\(buf, \w+, "
                      r"(\w+), ", source) == [("registers", "128", "Register")]
    # Too deep for the elements: refused before the helper is called, which does not check.
    assert source.index("if depth <= 1:") < source.index("write_messages(")
