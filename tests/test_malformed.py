"""Malformed input: each case gives a DecodeError of the exact path and reason, and the compiled
fast path rejects it too (it never returns a value the interpreter refuses)."""

from __future__ import annotations

import enum

import pytest

from savestate import DecodeError, Oneof, Protobuf, field, u8, u32
from savestate.codec.front import codec_of


class Inner(Protobuf):
    imr: u8 = field(3)
    name: str = field(4)


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1


class Root(Protobuf):
    a: u32 = field(1)
    inner: Inner = field(2)
    items: list[u32] = field(3)
    kids: list[Inner] = field(4)
    mode: Mode = field(6)
    table: dict[str, Inner] = field(7)


class Stage(Oneof):
    pass


class Ready(Stage, variant=1):
    pass


class Icw3(Stage, variant=2):
    icw4: bool = field(1)


class Holder(Protobuf):
    stage: Stage = field(1)


class Arr(Protobuf):
    regs: bytes = field(1, length=2)
    kids: list[Inner] = field(2, length=2)


CASES: list[tuple[type, str, str]] = [
    # (class, input hex, the error's text)
    (Root, "08", "Root.a: truncated varint"),
    (Root, "0a00", "Root.a: wrong wire type: expected varint, got length-delimited"),
    (Root, "00", "Root: field number 0 is invalid"),
    (Root, "0b", "Root: invalid wire type 3 (field 1)"),
    (Root, "0c", "Root: invalid wire type 4 (field 1)"),
    (Root, "0e", "Root: invalid wire type 6 (field 1)"),
    (Root, "0f", "Root: invalid wire type 7 (field 1)"),
    (Root, "80808080808080808080" "01", "Root: bad tag: varint longer than 10 bytes"),
    (Root, "08ffffffffffffffffff7f", "Root.a: varint longer than 64 bits"),
    (Root, "08ffffffffffffffffffff01", "Root.a: varint longer than 10 bytes"),
    (Root, "08ffffffff1f", "Root.a: value 8589934591 out of range for u32"),
    (Root, "8080", "Root: bad tag: truncated varint"),
    (Root, "8080808010" "00", "Root: field number 536870912 is out of range"),
    (Root, "1205" "0803", "Root.inner: length 5 runs past the end of the input"),
    (Root, "1203" "18ac02", "Root.inner.imr: value 300 out of range for u8"),
    (Root, "1203" "2201ff", "Root.inner.name: invalid UTF-8 in string: invalid start byte"),
    (Root, "1202" "2205", "Root.inner.name: length 5 runs past the end of the input"),
    # A string, or a message kept for later, whose length runs past its own record but not
    # past the input (the compiled code reads such lengths without checking them at once):
    (Root, "1203" "2205" "41" "08010801",
     "Root.inner.name: length 5 runs past the end of the input"),
    (Root, "3a04" "0a00" "1205" "1801" "0801" "0801",
     "Root.table[0].value: length 5 runs past the end of the input"),
    (Root, "3a03" "0a0561" "12020801",
     "Root.table[0].key: length 5 runs past the end of the input"),
    (Root, "1a0201", "Root.items: length 2 runs past the end of the input"),
    (Root, "1a0180", "Root.items: truncated varint"),
    (Root, "1a05ffffffff7f", "Root.items: value 34359738367 out of range for u32"),
    (Root, "2200" "2203" "18ac02", "Root.kids[1].imr: value 300 out of range for u8"),
    (Root, "28", "Root: unknown field 5: truncated varint"),
    (Root, "2a05", "Root: unknown field 5: length 5 runs past the end of the input"),
    (Root, "29000000", "Root: unknown field 5: truncated value"),
    (Root, "3005", "Root.mode: unknown value 5 for enum Mode"),
    (Root, "3a05" "0a01611201", "Root.table[0].value: length 1 runs past the end of the input"),
    (Root, "3a06" "0a0161120100", "Root.table[0].value: field number 0 is invalid"),
    (Holder, "0a021a00", "Holder.stage: unknown variant 3 of Stage"),
    (Holder, "0a00", "Holder.stage: missing variant of Stage"),
    (Holder, "", "Holder.stage: missing required field (a Oneof variant)"),
    (Holder, "0a020801", "Holder.stage.Ready: wrong wire type: expected length-delimited, "
     "got varint"),
    (Arr, "0a0100" "12020a00", "Arr.regs: expected 2 elements, got 1"),
    (Arr, "0a020000", "Arr.kids: missing required field (a fixed-length array)"),
    (Arr, "0a020000" "1206" "0a00" "0a00" "0a00", "Arr.kids: expected 2 elements, got 3"),
    (Arr, "0a020000" "1205" "0a00" "0a0118", "Arr.kids[1].imr: truncated varint"),
]


def _id(case: tuple[type, str, str]) -> str:
    return f"{case[0].__name__}-{case[1] or 'empty'}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_malformed(case: tuple[type, str, str]) -> None:
    cls, hexdata, text = case
    data = bytes.fromhex(hexdata)
    with pytest.raises(DecodeError) as info:
        cls.decode(data)
    assert str(info.value) == text
    assert info.value.path_text == text.split(": ")[0]
    with pytest.raises(Exception):  # noqa: B017 - the fast path may raise anything; see codec.py
        codec_of(cls)._decode(data, 0, len(data), 100, [1 << 62])


def test_decode_errors_are_value_errors_with_a_path() -> None:
    with pytest.raises(ValueError) as info:
        Root.decode(b"\x08")
    assert isinstance(info.value, DecodeError)
    assert info.value.path == ["Root", "a"]
    assert info.value.reason == "truncated varint"


def test_decode_accepts_bytes_like_and_rejects_others() -> None:
    data = bytes(Root(a=1, inner=Inner(imr=2, name="x"), items=[], kids=[], mode=Mode.ON,
                      table={}))
    assert Root.decode(bytearray(data)) == Root.decode(memoryview(data)) == Root.decode(data)
    with pytest.raises(DecodeError):
        Root.decode("not bytes")  # type: ignore[arg-type]


def _nested(depth: int) -> bytes:
    """``depth`` levels of Node messages, each holding the next under field 1."""
    data = b""
    for _ in range(depth - 1):
        data = b"\x0a" + _varint(len(data)) + data
    return data


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Node(Protobuf):
    child: Node | None = field(1, default=None)


@pytest.mark.parametrize("depth", [100, 101, 1000, 100_000])
def test_nesting_depth_limit(depth: int) -> None:
    data = _nested(depth)
    if depth <= 100:
        value = Node.decode(data)
        levels = 0
        while value is not None:
            levels += 1
            value = value.child
        assert levels == depth
        return
    with pytest.raises(DecodeError) as info:
        Node.decode(data)
    assert info.value.reason == "nesting deeper than the limit"
    assert len(info.value.path) == 101  # Node, then child 100 times


def test_depth_limit_is_configurable() -> None:
    data = _nested(10)
    with pytest.raises(DecodeError):
        Node.decode(data, max_depth=9)
    assert Node.decode(data, max_depth=10) is not None
    with pytest.raises(ValueError):
        Node.decode(data, max_depth=0)
