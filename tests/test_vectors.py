"""The public test vectors of the Rust reference's own tests: same schema, same bytes.

Each case declares the Python counterpart of the Rust type of the reference test and checks
both directions (encode gives the hex; decoding the hex gives the value back).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from savestate import Oneof, Protobuf, field, i32, u8, u32


class One(Protobuf):
    v: u32 = field(1)


class OneBool(Protobuf):
    v: bool = field(1)


class OneStr(Protobuf):
    v: str = field(1)


class Pair(Protobuf):
    v: tuple[i32, i32] = field(1)


class OptI32(Protobuf):
    v: i32 | None = field(1, default=None)


class OptU32(Protobuf):
    v: u32 | None = field(1, default=None)


class VecI32(Protobuf):
    v: list[i32] = field(1)


class VecStr(Protobuf):
    v: list[str] = field(1)


class ArrI32(Protobuf):
    v: list[i32] = field(1, length=3)


class ArrStr3(Protobuf):
    v: list[str] = field(1, length=3)


class ArrStr2(Protobuf):
    v: list[str] = field(1, length=2)


class ArrU8(Protobuf):
    v: bytes = field(1, length=2)


class ArrU32(Protobuf):
    v: list[u32] = field(1, length=3)


class Map(Protobuf):
    v: dict[str, u32] = field(1)


class MapU32(Protobuf):
    v: dict[u32, u32] = field(1)


class Dur(Protobuf):
    v: datetime.timedelta = field(1)


class E(Oneof):
    pass


class A(E, variant=1):
    pass


class B(E, variant=2, tuple=True):
    a: u32 = field(1)
    b: str = field(2)


class C(E, variant=3):
    x: bool = field(1)
    y: u32 = field(2)


class T(Oneof):
    pass


class Bar(T, variant=1, transparent=True):
    v: u32 = field(1)


class Foo(Protobuf):
    x: u32 = field(1)
    y: u32 = field(2)
    z: str = field(3)
    w: bool | None = field(4, default=None)


class Inner(Protobuf):
    a: bool | None = field(1, default=None)
    b: u32 = field(2)


class FooB(Protobuf):
    x: u32 = field(1)
    y: u32 = field(2)
    b: Inner | None = field(3, default=None)


class Empty(Protobuf):
    pass


class OptEmpty(Protobuf):
    v: Empty | None = field(1, default=None)


class Msg0(Protobuf):
    v: u32 = field(1)


class Nested0(Protobuf):
    v: tuple[Msg0] = field(1)


class Outer2(Protobuf):
    o: Msg0 = field(1)
    i: Msg0 = field(2)


CASES: list[tuple[Any, str]] = [
    (One(v=5), "0805"),
    (OneBool(v=True), "0801"),
    (OneStr(v="hi"), "0a026869"),
    (Pair(v=(1, 2)), "0a0408021004"),
    (Pair(v=(0, 0)), ""),
    (Pair(v=(0, 1)), "0a021002"),
    (OptI32(v=5), "080a"),
    (OptI32(v=0), "0800"),
    (OptI32(v=None), ""),
    (OptU32(v=0), "0800"),
    (VecI32(v=[1, 2, 3]), "0a03020406"),
    (VecI32(v=[]), ""),
    (VecStr(v=["abc", "def"]), "0a036162630a03646566"),
    (VecStr(v=["", "a"]), "0a000a0161"),
    (ArrI32(v=[1, 2, 3]), "0a03020406"),
    (ArrStr3(v=["a", "b", "c"]), "0a090a01610a01620a0163"),
    (ArrStr2(v=["abc", "def"]), "0a0a0a036162630a03646566"),
    (ArrU8(v=b"\0\0"), "0a020000"),
    (ArrU32(v=[0, 0, 0]), "0a03000000"),
    (Map(v={"hi": 6, "hmm": 2}), "0a060a02686910060a070a03686d6d1002"),
    (MapU32(v={0: 0}), "0a00"),
    (MapU32(v={1: 0}), "0a020801"),
    (MapU32(v={0: 5}), "0a021005"),
    (Dur(v=datetime.timedelta(0)), ""),
    (Dur(v=datetime.timedelta(seconds=1)), "0a020801"),
    (Dur(v=datetime.timedelta(seconds=1, microseconds=10)), "0a05080110904e"),
    (Foo(x=5, y=104824, z="alphabet"), "080510f8b2061a08616c706861626574"),
    (FooB(x=5, y=104824, b=Inner(a=True, b=5)), "080510f8b2061a0408011005"),
    (OptEmpty(v=Empty()), "0a00"),
    (OptEmpty(v=None), ""),
    (Nested0(v=(Msg0(v=0),)), ""),
    (Outer2(o=Msg0(v=0), i=Msg0(v=1)), "12020801"),
]

# Enums encoded as whole messages, as the reference's tests do.
ENUM_CASES: list[tuple[Any, str]] = [
    (A(), "0a00"),
    (B(a=12, b="hi"), "1206080c12026869"),
    (C(x=True, y=0), "1a020801"),
    (C(x=False, y=0), "1a00"),
    (Bar(v=0), "0800"),
]


def _id(case: tuple[Any, str]) -> str:
    return f"{type(case[0]).__name__}-{case[1] or 'empty'}"


@pytest.mark.parametrize("case", CASES + ENUM_CASES, ids=_id)
def test_vector(case: tuple[Any, str]) -> None:
    value, hexdata = case
    assert bytes(value).hex() == hexdata
    assert type(value).decode(bytes.fromhex(hexdata)) == value


def test_signed_int32_two_ways() -> None:
    from savestate import int32

    class S(Protobuf):
        sint32: i32 = field(1)
        int32_: int32 = field(2)

    assert bytes(S(sint32=-1, int32_=-1)).hex() == "080110ffffffffffffffffff01"


def test_enum_decode_last_variant_wins_and_same_variant_merges() -> None:
    # Two different variants: the last one wins.
    assert E.decode(bytes.fromhex("0a00" "1a020801")) == C(x=True, y=0)
    # The same struct variant twice: its fields merge.
    assert E.decode(bytes.fromhex("1a020801" "1a021005")) == C(x=True, y=5)


def test_duplicate_message_fields_merge() -> None:
    # FooB.b twice: the second record's fields overwrite, the others stay.
    data = bytes.fromhex("1a020801" "1a021005")
    assert FooB.decode(data).b == Inner(a=True, b=5)


def test_last_scalar_wins_and_lists_append() -> None:
    assert One.decode(bytes.fromhex("08010802")).v == 2
    assert VecI32.decode(bytes.fromhex("0a0102" "08" "04")).v == [1, 2]  # packed then unpacked
    assert Map.decode(bytes.fromhex("0a050a01611001" "0a050a01611002")).v == {"a": 2}


def test_u8_fields_are_varints_not_bytes() -> None:
    class R(Protobuf):
        imr: u8 = field(3)

    assert bytes(R(imr=0xFB)).hex() == "18fb01"
