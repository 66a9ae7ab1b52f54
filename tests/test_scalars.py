"""(value, bytes) tables for every scalar kind: field 1 holding the value.

The expected bytes are worked out from the protobuf encoding rules (varint, zigzag, little-endian
fixed widths); test_differential.py checks the same kinds against Google's runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from savestate import (
    EncodeError,
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
    sint64,
    u8,
    u16,
    u32,
    u64,
    uint32,
    uint64,
)
from savestate.codec.front import codec_of
from savestate.codec.interp import decode as interp_decode
from savestate.codec.interp import encode as interp_encode


def _holder(annotation: Any, name: str) -> type:
    # The metaclass, called as a class statement would call it.
    return type(Protobuf)(name, (Protobuf,), {"__annotations__": {"v": annotation}, "v": field(1)})


U8 = _holder(u8, "U8")
U16 = _holder(u16, "U16")
U32 = _holder(u32, "U32")
U64 = _holder(u64, "U64")
I8 = _holder(i8, "I8")
I16 = _holder(i16, "I16")
I32 = _holder(i32, "I32")
I64 = _holder(i64, "I64")
INT32 = _holder(int32, "Int32")
INT64 = _holder(int64, "Int64")
UINT32 = _holder(uint32, "Uint32")
UINT64 = _holder(uint64, "Uint64")
SINT32 = _holder(sint32, "Sint32")
SINT64 = _holder(sint64, "Sint64")
FIXED32 = _holder(fixed32, "Fixed32")
FIXED64 = _holder(fixed64, "Fixed64")
SFIXED32 = _holder(sfixed32, "Sfixed32")
SFIXED64 = _holder(sfixed64, "Sfixed64")
PLAIN_INT = _holder(int, "PlainInt")
BOOL = _holder(bool, "Bool")
F32 = _holder(f32, "F32")
F64 = _holder(f64, "F64")
PLAIN_FLOAT = _holder(float, "PlainFloat")
STR = _holder(str, "Str")
BYTES = _holder(bytes, "Bytes")

U64_MAX = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1

# (class, value, hex); an empty hex means the zero value is omitted.
TABLE: list[tuple[type, Any, str]] = [
    (U8, 0, ""), (U8, 1, "0801"), (U8, 255, "08ff01"),
    (U16, 0, ""), (U16, 1, "0801"), (U16, 65535, "08ffff03"),
    (U32, 0, ""), (U32, 1, "0801"), (U32, 4294967295, "08ffffffff0f"),
    (U64, 0, ""), (U64, 1, "0801"), (U64, U64_MAX, "08ffffffffffffffffff01"),
    (UINT32, 1, "0801"), (UINT32, 4294967295, "08ffffffff0f"),
    (UINT64, 1, "0801"), (UINT64, U64_MAX, "08ffffffffffffffffff01"),
    # zigzag: 0 -> 0, -1 -> 1, 1 -> 2, max -> 2*max, min -> 2*|min| - 1
    (I8, 0, ""), (I8, 1, "0802"), (I8, -1, "0801"), (I8, 127, "08fe01"), (I8, -128, "08ff01"),
    (I16, 32767, "08feff03"), (I16, -32768, "08ffff03"), (I16, -1, "0801"),
    (I32, 2147483647, "08feffffff0f"), (I32, -2147483648, "08ffffffff0f"), (I32, -1, "0801"),
    (I64, I64_MAX, "08feffffffffffffffff01"), (I64, I64_MIN, "08ffffffffffffffffff01"),
    (I64, -1, "0801"), (I64, 1, "0802"),
    (SINT32, -1, "0801"), (SINT32, 2147483647, "08feffffff0f"),
    (SINT64, -1, "0801"), (SINT64, I64_MIN, "08ffffffffffffffffff01"),
    # int32/int64: two's complement in 64 bits, so negatives take ten bytes
    (INT32, 0, ""), (INT32, 1, "0801"), (INT32, -1, "08ffffffffffffffffff01"),
    (INT32, 2147483647, "08ffffffff07"), (INT32, -2147483648, "0880808080f8ffffffff01"),
    (INT64, -1, "08ffffffffffffffffff01"), (INT64, I64_MAX, "08ffffffffffffffff7f"),
    (INT64, I64_MIN, "0880808080808080808001"),
    (PLAIN_INT, 1, "0801"), (PLAIN_INT, -1, "08ffffffffffffffffff01"),
    (FIXED32, 0, ""), (FIXED32, 1, "0d01000000"), (FIXED32, 4294967295, "0dffffffff"),
    (FIXED64, 1, "090100000000000000"), (FIXED64, U64_MAX, "09ffffffffffffffff"),
    (SFIXED32, -1, "0dffffffff"), (SFIXED32, -2147483648, "0d00000080"),
    (SFIXED32, 2147483647, "0dffffff7f"), (SFIXED32, 1, "0d01000000"),
    (SFIXED64, -1, "09ffffffffffffffff"), (SFIXED64, I64_MIN, "090000000000000080"),
    (BOOL, False, ""), (BOOL, True, "0801"),
    (F32, 0.0, ""), (F32, 1.0, "0d0000803f"), (F32, -1.0, "0d000080bf"),
    (F32, -0.0, "0d00000080"),  # -0.0 keeps its sign: compared by bits, as the reference does
    (F64, 0.0, ""), (F64, 1.0, "09000000000000f03f"), (F64, -1.0, "09000000000000f0bf"),
    (F64, -0.0, "090000000000000080"), (PLAIN_FLOAT, 0.5, "09000000000000e03f"),
    (STR, "", ""), (STR, "hi", "0a026869"), (STR, "é", "0a02c3a9"),
    (BYTES, b"", ""), (BYTES, b"\x00", "0a0100"), (BYTES, b"\xff\x01", "0a02ff01"),
]

OUT_OF_RANGE: list[tuple[type, Any]] = [
    (U8, -1), (U8, 256), (U16, 65536), (U16, -1), (U32, 1 << 32), (U32, -1), (U64, 1 << 64),
    (U64, -1), (I8, 128), (I8, -129), (I16, 32768), (I32, 1 << 31), (I32, -(1 << 31) - 1),
    (I64, 1 << 63), (INT32, 1 << 31), (INT64, -(1 << 63) - 1), (FIXED32, -1),
    (FIXED32, 1 << 32), (SFIXED32, 1 << 31), (FIXED64, 1 << 64), (SFIXED64, 1 << 63),
    (F32, 1e300),
]

WRONG_TYPE: list[tuple[type, Any]] = [
    (U8, 1.0), (U8, "1"), (U8, True), (U8, None), (I64, 2.5), (BOOL, 1), (BOOL, None),
    (F64, "1.0"), (F64, True), (STR, b"hi"), (STR, 1), (BYTES, "hi"), (BYTES, [1, 2]),
    (STR, "\ud800"),
]


def _id(case: tuple[Any, ...]) -> str:
    return f"{case[0].__name__}={case[1]!r}"


@pytest.mark.parametrize("case", TABLE, ids=_id)
def test_encode_table(case: tuple[type, Any, str]) -> None:
    cls, value, expected = case
    obj = cls(v=value)
    assert bytes(obj).hex() == expected
    assert interp_encode(cls, obj).hex() == expected
    buf = bytearray()
    codec_of(cls)._encode(obj, buf, 100)  # the compiled fast path on its own
    assert buf.hex() == expected


@pytest.mark.parametrize("case", TABLE, ids=_id)
def test_decode_table(case: tuple[type, Any, str]) -> None:
    cls, value, hexdata = case
    data = bytes.fromhex(hexdata)
    for decoded in (
        cls.decode(data),
        interp_decode(cls, data, 100),
        codec_of(cls)._decode(data, 0, len(data), 100, [1 << 62]),
    ):
        assert decoded.v == value
        assert type(decoded.v) is type(value)
        if isinstance(value, float):
            assert str(decoded.v) == str(value)  # the sign of zero survives


@pytest.mark.parametrize("case", OUT_OF_RANGE, ids=_id)
def test_out_of_range_is_an_encode_error(case: tuple[type, Any]) -> None:
    cls, value = case
    with pytest.raises(EncodeError) as info:
        bytes(cls(v=value))
    assert info.value.path == [cls.__name__, "v"]
    assert "out of range" in str(info.value)
    assert str(info.value).startswith(f"{cls.__name__}.v: ")


@pytest.mark.parametrize("case", WRONG_TYPE, ids=_id)
def test_wrong_type_is_an_encode_error(case: tuple[type, Any]) -> None:
    cls, value = case
    with pytest.raises(EncodeError) as info:
        bytes(cls(v=value))
    assert info.value.path == [cls.__name__, "v"]


def test_error_message_says_expected_and_got() -> None:
    with pytest.raises(EncodeError) as info:
        bytes(U8(v=256))
    assert str(info.value) == "U8.v: value 256 out of range for u8 (0..255)"
    with pytest.raises(EncodeError) as info:
        bytes(U8(v=1.5))
    assert str(info.value) == "U8.v: expected int for u8, got float 1.5"


def test_int_subclasses_are_accepted_as_ints() -> None:
    import enum

    class Reg(enum.IntEnum):
        A = 7

    assert bytes(U8(v=Reg.A)).hex() == "0807"


def test_floats_accept_ints_and_f32_rounds() -> None:
    assert bytes(F64(v=2)).hex() == "090000000000000040"
    assert F32.decode(bytes(F32(v=0.1))).v == pytest.approx(0.1, rel=1e-7)
    nan = F64.decode(bytes(F64(v=float("nan")))).v
    assert nan != nan
    assert F64.decode(bytes(F64(v=float("inf")))).v == float("inf")


def test_unsigned_decode_rejects_values_over_the_width() -> None:
    from savestate import DecodeError

    with pytest.raises(DecodeError) as info:
        U8.decode(bytes.fromhex("08ac02"))  # 300
    assert str(info.value) == "U8.v: value 300 out of range for u8"
    with pytest.raises(DecodeError):
        I8.decode(bytes.fromhex("088002"))  # zigzag 256 -> 128
    with pytest.raises(DecodeError):
        INT32.decode(bytes.fromhex("0880808080f0ffffffff01"))  # below int32's min
    # A bool varint other than 0 or 1 reads as true, as protobuf and the reference read it.
    assert BOOL.decode(bytes.fromhex("0802")).v is True
    assert BOOL.decode(bytes.fromhex("08808080808001")).v is True
