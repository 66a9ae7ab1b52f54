"""The optional C accelerator (savestate.codec._speedups) against the pure-Python path.

The same class is compiled twice, with the C helpers and without, and both codecs must give
the same bytes, the same values and the same errors (type and message, with the field path) on
generated packed lists and on malformed input; the raw compiled functions must also reject
exactly the same inputs, so that each path hands the same inputs to the interpreter. Every entry
point is repeated in a loop to show that memory stays flat (no reference leaks).

The accelerated half is skipped when the extension is not built (or ``SAVESTATE_PURE=1``);
``SAVESTATE_EXPECT_ACCELERATED=1`` (set by CI) makes a missing extension a failure instead.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import savestate
from savestate import (
    DecodeError,
    EncodeError,
    Protobuf,
    field,
    i8,
    i16,
    i32,
    i64,
    int32,
    int64,
    sint32,
    sint64,
    u16,
    u32,
    u64,
    uint32,
    uint64,
)
from savestate.codec import accel, compiler, interp
from savestate.codec.front import SIGNALS, Codec, codec_of
from savestate.codec.runtime import Mismatch
from savestate.model.plan import enum_value as plan_value
from savestate.model.plan import fingerprint, plan_of

needs_c = pytest.mark.skipif(not accel.ACCELERATED, reason="the C accelerator is not active")


class Color(enum.IntEnum):
    NEG = -3
    RED = 0
    GREEN = 1
    BLUE = 5


class Renumbered(enum.IntEnum):
    """An enum whose ``int()`` is not its member's number: what every path writes."""

    ZERO = 0
    ONE = 1
    TWO = 2

    def __int__(self) -> int:
        return 2 if self.value == 1 else self.value


class RenumberedList(Protobuf, package="test.accel"):
    values: list[Renumbered] = field(1)


class IntSub(int):
    """An int subclass: the C helpers leave it to the interpreter."""


class PackedLists(Protobuf, package="test.accel"):
    a_u16: list[u16] = field(1)
    a_u32: list[u32] = field(2)
    a_u64: list[u64] = field(3)
    a_i8: list[i8] = field(4)
    a_i16: list[i16] = field(5)
    a_i32: list[i32] = field(6)
    a_i64: list[i64] = field(7)
    a_int32: list[int32] = field(8)
    a_int64: list[int64] = field(9)
    a_uint32: list[uint32] = field(10)
    a_uint64: list[uint64] = field(11)
    a_sint32: list[sint32] = field(12)
    a_sint64: list[sint64] = field(13)
    a_bool: list[bool] = field(14)
    a_color: list[Color] = field(15)
    a_fixed: list[u32] = field(16, length=3)


FIELDS = plan_of(PackedLists).fields
NAMES = [f.attr for f in FIELDS]


def _codecs() -> tuple[Codec, Codec | None]:
    """PackedLists compiled without the C helpers and (when they are loaded) with them."""
    built: list[Codec] = []
    for use_c in (False, True):
        if use_c and accel.speedups is None:
            built.append(None)  # type: ignore[arg-type]
            continue
        saved = accel.speedups
        accel.speedups = saved if use_c else None
        try:
            cc = compiler.compile_classes([PackedLists])[PackedLists]
        finally:
            accel.speedups = saved
        assert ("decode_packed(" in cc.source) is use_c
        built.append(Codec(PackedLists, cc.encode, cc.decode, cc.source, cc.filename, None, None,
                           codec_of(PackedLists).record_charge))
    return built[0], built[1]


PURE, NATIVE = _codecs()


def _kind_range(name: str) -> tuple[int, int]:
    kind = next(f for f in FIELDS if f.attr == name).value.kind  # type: ignore[union-attr]
    return kind.lo, kind.hi


def _elements(name: str, broken: bool) -> st.SearchStrategy[Any]:
    """Valid elements of a field; ``broken``: sometimes out of range or of another type."""
    if name == "a_bool":
        valid: st.SearchStrategy[Any] = st.booleans()
    elif name == "a_color":
        valid = st.sampled_from(list(Color))
    else:
        lo, hi = _kind_range(name)
        edges = st.sampled_from([lo, hi, 0, 1, -1 if lo else 127, 128, 16383, 16384])
        valid = st.one_of(st.integers(lo, hi), edges.filter(lambda v: lo <= v <= hi))
    if not broken:
        return valid
    invalid = st.one_of(
        st.integers(-(1 << 70), 1 << 70),
        st.sampled_from([None, 1.0, True, "1", Color.BLUE, IntSub(3), -(1 << 64), 1 << 64]),
    )
    return st.one_of(valid, valid, valid, invalid)


@st.composite
def packed_values(draw: st.DrawFn) -> dict[str, Any]:
    """Values of every field: all valid, or (one time in three) with stray elements."""
    broken = draw(st.integers(0, 2)) == 0
    values: dict[str, Any] = {}
    for name in NAMES:
        elements = _elements(name, broken)
        size = 3 if name == "a_fixed" and (not broken or draw(st.integers(0, 4))) else None
        if size is None:
            values[name] = draw(st.lists(elements, max_size=8))
        else:
            values[name] = draw(st.lists(elements, min_size=size, max_size=size))
    return values


def _varint_bytes(value: int, pad: int) -> bytes:
    """A varint of ``value`` (any size), with ``pad`` needless continuation bytes."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        elif pad:
            out.append(byte | 0x80)
            out += b"\x80" * (pad - 1) + b"\x00"
            return bytes(out)
        else:
            out.append(byte)
            return bytes(out)


FIXED_TAG = _varint_bytes(16 << 3 | 2, 0)
# Each side of every width's limits, plain and zigzagged.
EDGES = sorted({v for k in (7, 8, 15, 16, 31, 32, 63, 64) for v in (
    (1 << k) - 2, (1 << k) - 1, 1 << k, (1 << k) + 1) if v < 1 << 64})


@st.composite
def wire_records(draw: st.DrawFn) -> bytes:
    """Packed and unpacked records of the class's fields. One time in three the input is
    broken: varints overlong or too large, bad lengths, truncation and stray bytes."""
    broken = draw(st.integers(0, 2)) == 0
    numbers = st.one_of(st.integers(0, 127), st.integers(0, 300), st.integers(0, 1 << 16),
                        st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 64) - 1),
                        st.sampled_from(EDGES))
    if broken:
        numbers = st.one_of(numbers, st.integers(0, (1 << 72) - 1))
    pads = st.integers(0, 3 if broken else 1)
    out = bytearray()
    if not broken or draw(st.booleans()):
        out += FIXED_TAG + b"\x03" + bytes(draw(st.lists(st.integers(0, 127), min_size=3,
                                                          max_size=3)))
    for _ in range(draw(st.integers(0, 5))):
        number = draw(st.integers(1, 15) if not broken else st.integers(1, 17))
        varints = b"".join(
            _varint_bytes(draw(numbers), draw(pads)) for _ in range(draw(st.integers(0, 6)))
        )
        if number in (14, 15) and not broken:  # bool, enum: values that fit
            varints = bytes(draw(st.lists(st.sampled_from([0, 1, 5]), max_size=6)))
        if draw(st.booleans()):
            payload = varints
            length = len(payload)
            if broken:
                payload = payload[: draw(st.integers(0, len(payload)))]
                length = len(payload) + draw(st.sampled_from([0, 1, -1]))
            out += _varint_bytes(number << 3 | 2, 0) + _varint_bytes(max(length, 0), 0)
            out += payload
        else:
            first = _varint_bytes(draw(numbers), draw(pads))
            out += _varint_bytes(number << 3, 0) + first
    if broken:
        out += draw(st.binary(max_size=6))
        out = out[: len(out) - draw(st.integers(0, 3))]
    return bytes(out)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except (EncodeError, DecodeError) as exc:
        return type(exc).__name__, str(exc)


def _raw_outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a compiled function does: a result, or one of the signals the front end catches."""
    try:
        return "ok", call()
    except SIGNALS:
        return "signal", None


def _raw_decode(codec: Codec, data: bytes) -> Any:
    """The compiled decode function called as the front end calls it (with a memory budget
    where the compiler takes one)."""
    code = codec._decode.__code__
    budget = [[1 << 62]] if "budget" in code.co_varnames[: code.co_argcount] else []
    return codec._decode(data, 0, len(data), 100, *budget)


def _obj(values: dict[str, Any]) -> PackedLists:
    obj = PackedLists(**{name: [] for name in NAMES})  # type: ignore[arg-type]
    obj.a_fixed = [0, 0, 0]
    for name, value in values.items():
        setattr(obj, name, value)
    return obj


@needs_c
@given(packed_values())
def test_encode_same_bytes_and_errors(values: dict[str, Any]) -> None:
    assert NATIVE is not None
    obj = _obj(values)
    assert _outcome(lambda: NATIVE.encode(obj)) == _outcome(lambda: PURE.encode(obj))

    def raw(codec: Codec) -> Callable[[], bytes]:
        def run() -> bytes:
            buf = bytearray()
            code = codec._encode.__code__
            depth = [100] if "depth" in code.co_varnames[: code.co_argcount] else []
            codec._encode(obj, buf, *depth, None)
            return bytes(buf)
        return run

    assert _raw_outcome(raw(NATIVE)) == _raw_outcome(raw(PURE))


@needs_c
@given(st.one_of(wire_records(), st.binary(max_size=40)))
def test_decode_same_values_and_errors(data: bytes) -> None:
    assert NATIVE is not None
    native, pure = _outcome(lambda: NATIVE.decode(data)), _outcome(lambda: PURE.decode(data))
    assert native == pure
    raw_native = _raw_outcome(lambda: _raw_decode(NATIVE, data))
    raw_pure = _raw_outcome(lambda: _raw_decode(PURE, data))
    assert raw_native == raw_pure


@needs_c
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x0a\x03\xff\xff\x04", "a_u16"),  # past 16 bits
        (b"\x0a\x03\x80\x80\x04", "a_u16"),  # 65536: one past 16 bits
        (b"\x32\x05\x80\x80\x80\x80\x10", "a_i32"),  # zigzag 2**32: past 32 bits
        (b"\x42\x05\x80\x80\x80\x80\x08", "a_int32"),  # 2**31: past int32
        (b"\x1a\x0b" + b"\xff" * 10 + b"\x01", "a_u64"),  # 11 bytes
        (b"\x1a\x0a" + b"\xff" * 9 + b"\x02", "a_u64"),  # past 64 bits
        (b"\x1a\x02\x80", "a_u64"),  # a varint running past its record
        (b"\x22\x02\x80\x02", "a_i8"),  # zigzag 128: past 8 bits
        (b"\x7a\x01\x07", "a_color"),  # no member 7
        (b"\x82\x01\x02\x01\x02", "a_fixed"),  # two elements of three
    ],
)
def test_malformed_packed_errors_name_the_field(data: bytes, message: str) -> None:
    assert NATIVE is not None
    if message != "a_fixed":
        data = FIXED_TAG + b"\x03\x01\x02\x03" + data  # the required array, then the case
    with pytest.raises(DecodeError) as native:
        NATIVE.decode(data)
    with pytest.raises(DecodeError) as pure:
        PURE.decode(data)
    assert str(native.value) == str(pure.value)
    assert message in str(native.value)


def test_large_lists_agree() -> None:
    obj = _obj({"a_u64": list(range(0, 1 << 64, (1 << 64) // 5000)),
                "a_i64": list(range(-(1 << 63), 1 << 63, (1 << 64) // 3000)),
                "a_color": list(Color) * 100})
    data = PURE.encode(obj)
    assert PURE.decode(data) == obj
    if NATIVE is not None:
        assert NATIVE.encode(obj) == data
        assert NATIVE.decode(data) == obj


@needs_c
def test_a_made_up_enum_value_in_a_packed_list_is_refused() -> None:
    """A value of the enum's class that is none of its members (made by ``int.__new__``) is
    refused by the helper, as by the generated loop, so that the interpreter names it: its
    number is not written."""
    c = accel.speedups
    assert c is not None and NATIVE is not None
    made_up = int.__new__(Color, 7)
    obj = _obj({"a_color": [Color.BLUE, made_up]})
    for codec in (NATIVE, PURE):
        with pytest.raises(EncodeError, match=r"a_color\[1\]: 7 is not a value of Color"):
            codec.encode(obj)
    members = {m.value: m for m in Color}
    buf = bytearray(b"kept")
    with pytest.raises(Mismatch):
        c.encode_packed(buf, [Color.BLUE, made_up], 4, 32, Color, members)
    assert buf == b"kept"
    # One that has a member's number is still not that member: the interpreter decides.
    with pytest.raises(Mismatch):
        c.encode_packed(buf, [int.__new__(Color, 5)], 4, 32, Color, members)
    c.encode_packed(buf, [Color.BLUE, Color.NEG], 4, 32, Color, members)
    assert buf == b"kept\x05" + b"\xfd" + b"\xff" * 8 + b"\x01"


def test_an_enum_with_its_own_int_is_written_by_it_on_both_paths() -> None:
    """A list of an enum that says what ``int()`` of a member is: written as the interpreter
    writes it, by the Python loop, not by the helper, which reads the member's number."""
    obj = RenumberedList(values=[Renumbered.ONE, Renumbered.ZERO, Renumbered.TWO])
    expected = b"\x0a\x03\x02\x00\x02"
    assert interp.encode(RenumberedList, obj) == expected
    assert codec_of(RenumberedList).encode(obj) == expected


class AlwaysTrue(enum.IntEnum):
    """An enum whose zero member is true: written by its number, which is 0, so left out."""

    OFF = 0
    ON = 1

    def __bool__(self) -> bool:
        return True


class Converting(Protobuf, package="test.accel"):
    first: AlwaysTrue = field(1)
    second: Renumbered = field(2)


class PlainAlike(enum.IntEnum):
    """``AlwaysTrue`` without its ``__bool__``: the same members, the same plan otherwise."""

    OFF = 0
    ON = 1


class NotConverting(Protobuf, package="test.accel"):
    first: PlainAlike = field(1)
    second: Renumbered = field(2)


def test_an_enum_field_is_left_out_by_its_number_on_both_paths() -> None:
    for value in (
        Converting(first=AlwaysTrue.OFF, second=Renumbered.ZERO),
        Converting(first=AlwaysTrue.ON, second=Renumbered.ONE),
        Converting(first=AlwaysTrue.OFF, second=Renumbered.TWO),
    ):
        assert codec_of(Converting).encode(value) == interp.encode(Converting, value)
    assert bytes(Converting(first=AlwaysTrue.OFF, second=Renumbered.ZERO)) == b""
    assert bytes(Converting(first=AlwaysTrue.ON, second=Renumbered.ONE)) == b"\x08\x01\x10\x02"
    # Whether a class converts its members is part of its plan, so a codec kept in the code
    # cache for one enum is never taken for another that differs only there.
    assert plan_value(AlwaysTrue).converts and not plan_value(PlainAlike).converts
    assert fingerprint(Converting)[0] != fingerprint(NotConverting)[0]


def test_module_attribute_says_which_path() -> None:
    assert savestate.ACCELERATED is accel.ACCELERATED
    if os.environ.get("SAVESTATE_EXPECT_ACCELERATED") == "1":
        assert accel.ACCELERATED, "the C accelerator was expected to be built and loaded"
    if os.environ.get("SAVESTATE_PURE") == "1":
        assert not accel.ACCELERATED
    forced = subprocess.run(
        [sys.executable, "-c", "import savestate; print(savestate.ACCELERATED)"],
        env={**os.environ, "SAVESTATE_PURE": "1"}, capture_output=True, text=True, check=True,
    )
    assert forced.stdout.strip() == "False"


def test_codec_uses_the_helpers_only_when_loaded() -> None:

    source = codec_of(PackedLists).source
    assert ("encode_packed(" in source) is accel.ACCELERATED
    assert ("decode_packed(" in source) is accel.ACCELERATED


# -- the helpers called directly --------------------------------------------------------------

@needs_c
def test_helper_arguments_are_checked() -> None:
    c = accel.speedups
    assert c is not None
    mismatch = Mismatch
    with pytest.raises(TypeError):
        c.decode_packed(b"\x01", 0, 1, (), 0, 32)
    with pytest.raises(ValueError):
        c.decode_packed(b"\x01", 0, 1, [], 9, 32)
    with pytest.raises(ValueError):
        c.decode_packed(b"\x01", 0, 1, [], 0, 12)
    with pytest.raises(TypeError):
        c.decode_packed(b"\x01", 0, 1, [], 4, 32)  # an enum needs its members
    for pos, end in ((-1, 1), (0, 2), (1, 0)):
        with pytest.raises(mismatch):
            c.decode_packed(b"\x01", pos, end, [], 0, 32)
    with pytest.raises(TypeError):
        c.encode_packed(b"", [1], 0, 32)
    with pytest.raises(TypeError):  # an enum needs its members
        c.encode_packed(bytearray(), [Color.BLUE], 4, 32, Color, None)
    with pytest.raises(mismatch):
        c.encode_packed(bytearray(), (1,), 0, 32)
    buf = bytearray(b"kept")
    with pytest.raises(mismatch):
        c.encode_packed(buf, [1, 2, 1 << 40], 0, 32)
    assert buf == b"kept"  # a rejected list leaves nothing behind
    out: list[int] = []
    assert c.decode_packed(bytearray(b"\x00\x96\x01"), 1, 3, out, 0, 32) == 3
    assert out == [150]


def _leak_cases() -> list[tuple[str, Callable[[], Any]]]:
    c = accel.speedups
    assert c is not None
    mismatch = Mismatch
    members = {m.value: m for m in Color}
    ok_u64 = b"".join(_varint_bytes(v, 0) for v in [1, 300, (1 << 64) - 1] * 10)
    big = [1 << 63, 5, 1 << 40] * 10

    def swallow(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> None:
            with contextlib.suppress(mismatch):
                call()
        return run

    return [
        ("decode ok", lambda: c.decode_packed(ok_u64, 0, len(ok_u64), [], 0, 64)),
        ("decode enum", lambda: c.decode_packed(b"\x05\x01\x00", 0, 3, [], 4, 32, members)),
        ("decode out of range", swallow(lambda: c.decode_packed(b"\x01\xff\x7f", 0, 3, [],
                                                                 0, 8))),
        ("decode unknown member", swallow(lambda: c.decode_packed(b"\x07", 0, 1, [], 4, 32,
                                                                   members))),
        ("decode truncated", swallow(lambda: c.decode_packed(b"\x01\xff", 0, 2, [], 0, 64))),
        ("encode ok", lambda: c.encode_packed(bytearray(), big, 0, 64)),
        ("encode enum", lambda: c.encode_packed(bytearray(), [Color.NEG, Color.BLUE], 4, 32,
                                                Color, members)),
        ("encode bad type", swallow(lambda: c.encode_packed(bytearray(), [1, None], 2, 64))),
        ("encode overflow", swallow(lambda: c.encode_packed(bytearray(), [1, 1 << 70], 1, 64))),
        ("codec", lambda: NATIVE.decode(NATIVE.encode(_obj({"a_u64": big})))),  # type: ignore[union-attr]
    ]


@needs_c
@pytest.mark.parametrize("case", range(10))
def test_entry_points_do_not_leak(case: int) -> None:
    name, call = _leak_cases()[case]
    for _ in range(2000):  # warm caches, free lists and the allocator's arenas
        call()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100_000 if case < 9 else 10_000):
            call()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # One leaked int per call would be 2.8 MB; allow a few stray kilobytes of bookkeeping.
    assert grown < 16_384, f"{name}: {grown} bytes more after the loop"


@needs_c
def test_arguments_keep_their_reference_counts() -> None:
    c = accel.speedups
    assert c is not None
    members = {m.value: m for m in Color}
    values = [Color.BLUE, Color.NEG]
    data = b"\x05\x01"
    before = [sys.getrefcount(x) for x in (members, values, Color, data, Color.BLUE)]
    for _ in range(1000):
        out: list[Any] = []
        c.decode_packed(data, 0, 2, out, 4, 32, members)
        c.encode_packed(bytearray(), values, 4, 32, Color, members)
        del out
    after = [sys.getrefcount(x) for x in (members, values, Color, data, Color.BLUE)]
    assert after == before
