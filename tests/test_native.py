"""The C accelerator's whole-message encoder and decoder (``Layout``, ``savestate.codec.native``)
against the generated Python code and the interpreter.

A class whose message the native tables hold is written and read by them first. They must give
the bytes the interpreter gives, build the values the generated code builds (every slot,
``_pb_unknown`` included, floats bit for bit), and refuse, with ``Mismatch``, at least every
input the generated code refuses: what they refuse, the generated code and then the interpreter
decide, so the errors stay the same. Each entry point is repeated in a loop to show that memory
stays flat.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from savestate import (
    DecodeError,
    EncodeError,
    Oneof,
    Protobuf,
    SavedStateBlob,
    f32,
    f64,
    field,
    fixed32,
    i64,
    int32,
    sfixed64,
    u8,
    u32,
    u64,
)
from savestate.codec import accel, interp, native
from savestate.codec.front import SIGNALS, codec_of
from savestate.codec.runtime import Mismatch
from savestate.model.plan import plan_of

from .open_enum import Open
from .strategies import instances, messages

pytestmark = pytest.mark.skipif(not accel.ACCELERATED, reason="the C accelerator is not active")


class Mode(enum.IntEnum):
    OFF = 0
    ON = 1
    NEG = -2


class Leaf(Protobuf, package="test.native"):
    n: u32 = field(1)
    name: str = field(2)


def leaf(n: int = 0, name: str = "") -> Leaf:
    return Leaf(n=n, name=name)


class Choice(Oneof, package="test.native"):
    pass


class Empty(Choice, variant=1):
    pass


class Number(Choice, variant=2):
    value: i64 = field(1)
    leaf: Leaf | None = field(2)


class Wrapped(Protobuf, package="test.native", transparent=True):
    inner: u32 = field(1)


class HasTransparent(Protobuf, package="test.native"):
    w: Wrapped = field(1)


class HasDefault(Protobuf, package="test.native"):
    n: u32 = field(1, default=7)


class Everything(Protobuf, package="test.native"):
    a_u8: u8 = field(1)
    a_i64: i64 = field(2)
    a_int32: int32 = field(3)
    a_bool: bool = field(4)
    a_mode: Mode = field(5)
    a_fixed32: fixed32 = field(6)
    a_sfixed64: sfixed64 = field(7)
    a_f32: f32 = field(8)
    a_f64: f64 = field(9)
    text: str = field(10)
    data: bytes = field(11)
    opt: u64 | None = field(12)
    opt_text: str | None = field(13)
    leaf: Leaf = field(14)
    maybe_leaf: Leaf | None = field(15)
    choice: Choice = field(16)
    leaves: list[Leaf] = field(17)
    numbers: list[u64] = field(18)
    floats: list[f64] = field(19)
    modes: list[Mode] = field(20)
    texts: list[str] = field(21)
    blobs: list[bytes] = field(22)
    by_name: dict[str, u32] = field(23)
    by_number: dict[u32, Leaf] = field(24)
    pairs: list[tuple[str, u32]] = field(25)
    key: bytes = field(26, length=4)
    trio: list[Leaf] = field(27, length=3)
    transparent: HasTransparent | None = field(28)  # no table: by its generated functions
    defaulted: HasDefault | None = field(29)
    big_number: u32 = field(300)  # past the table of small numbers


def everything(**kw: Any) -> Everything:
    base: dict[str, Any] = {
        "a_u8": 200, "a_i64": -5, "a_int32": -1, "a_bool": True, "a_mode": Mode.NEG,
        "a_fixed32": 7, "a_sfixed64": -9, "a_f32": 1.5, "a_f64": -0.0, "text": "héllo",
        "data": b"\x00\x01", "opt": 0, "opt_text": "", "leaf": leaf(n=1, name="a" * 200),
        "maybe_leaf": None, "choice": Number(value=3, leaf=leaf(n=2)),
        "leaves": [leaf(n=i) for i in range(3)], "numbers": [0, 1, 1 << 63],
        "floats": [0.5, float("inf")], "modes": [Mode.ON, Mode.NEG], "texts": ["", "x"],
        "blobs": [b"", b"y"], "by_name": {"a": 1, "": 0}, "by_number": {0: leaf(), 5: leaf(n=5)},
        "pairs": [("p", 1), ("", 0)], "key": b"abcd", "trio": [leaf(), leaf(n=1), leaf(n=2)],
        "transparent": HasTransparent(w=Wrapped(inner=4)), "defaulted": HasDefault(n=3),
        "big_number": 1,
    }
    base.update(kw)
    return Everything(**base)


def snap(value: Any) -> Any:
    """Everything a value holds, floats by their bits and classes by name."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [snap(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(snap(k), snap(v)) for k, v in value.items()])
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, Protobuf):
        names = [f.attr for f in plan_of(type(value)).fields if isinstance(f.attr, str)]
        return (type(value).__name__, tuple((n, snap(getattr(value, n))) for n in names),
                value._pb_unknown)
    return (type(value).__name__, value)


def python_decode(cls: type, data: bytes, depth: int = 100, budget: int = 1 << 62) -> Any:
    return codec_of(cls)._decode(data, 0, len(data), depth, [budget])


def python_encode(cls: type, obj: Any, depth: int = 100) -> bytes:
    buf = bytearray()
    codec_of(cls)._encode(obj, buf, depth, None)
    return bytes(buf)


def layout(cls: type) -> Any:
    found = codec_of(cls).native
    assert found is not None, cls
    return found


def check_decode(cls: type, data: bytes, depth: int = 100, budget: int = 1 << 62) -> None:
    """What the native decoder accepts, the generated code accepts with the same value."""
    try:
        got = layout(cls).decode(data, depth, budget)
    except SIGNALS:  # Mismatch, or what a nested class's generated functions raised
        return
    assert snap(got) == snap(python_decode(cls, data, depth, budget))


def check_encode(cls: type, obj: Any, depth: int = 100) -> None:
    """What the native encoder accepts, the interpreter writes the same; the codec's answer
    (bytes or error) is the interpreter's."""
    try:
        got = layout(cls).encode(obj, depth)
    except SIGNALS:
        got = None
    expected: Any
    try:
        expected = interp.encode(cls, obj, depth)
    except EncodeError as exc:
        expected = str(exc)
        assert got is None
        with pytest.raises(EncodeError) as raised:
            codec_of(cls).encode(obj, depth)
        assert str(raised.value) == expected
        return
    if got is not None:
        assert got == expected
    assert codec_of(cls).encode(obj, depth) == expected


def test_layouts_follow_the_plan() -> None:
    """The tables take on structs, Oneofs and every field they can hold; a transparent class or
    a default keeps its own class on the generated code, and its users call it."""
    for cls in (Everything, Leaf, Choice, Empty, Number):
        assert codec_of(cls).native is not None
    assert codec_of(HasTransparent).native is None
    assert codec_of(HasDefault).native is None
    # A variant shares its Oneof's table.
    assert codec_of(Number).native is codec_of(Choice).native

    class OwnSetattr(Protobuf, package="test.native"):
        n: u32 = field(1)

        def __setattr__(self, name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

    assert codec_of(OwnSetattr).native is None
    assert OwnSetattr.decode(OwnSetattr(n=3).encode()) == OwnSetattr(n=3)

    class OwnGetattr(Protobuf, package="test.native"):
        n: u32 = field(1)

        def __getattr__(self, name: str) -> Any:
            raise AttributeError(name)

    class OwnDelattr(Protobuf, package="test.native"):
        n: u32 = field(1)

        def __delattr__(self, name: str) -> None:
            object.__delattr__(self, name)

    class UsesThem(Protobuf, package="test.native"):
        g: OwnGetattr | None = field(1)
        d: OwnDelattr | None = field(2)

    for cls in (OwnGetattr, OwnDelattr):
        assert codec_of(cls).native is None
        assert cls.decode(cls(n=3).encode()) == cls(n=3)  # type: ignore[call-arg]
    # Their user has a table, and calls their generated code.
    assert codec_of(UsesThem).native is not None
    value = UsesThem(g=OwnGetattr(n=1), d=OwnDelattr(n=2))
    assert UsesThem.decode(value.encode()) == value

    class Counted(enum.IntEnum):
        ZERO = 0
        FIVE = 5

        def __int__(self) -> int:
            return 7

    class HasCounted(Protobuf, package="test.native"):
        c: Counted = field(1)

    assert codec_of(HasCounted).native is None


class HasOpen(Protobuf, package="test.native"):
    o: Open = field(1)


def test_a_made_up_enum_member_is_left_to_the_python_paths() -> None:
    with pytest.raises(Mismatch):
        layout(HasOpen).encode(HasOpen(o=Open(7)), 100)
    assert layout(HasOpen).encode(HasOpen(o=Open.ONE), 100) == b"\x08\x01"
    check_encode(HasOpen, HasOpen(o=Open(7)))


def test_native_path_is_the_one_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a table, the generated functions are not called at all for plain values."""
    codec = codec_of(Everything)
    data = interp.encode(Everything, everything(), 100)

    def refuse(*args: object) -> None:
        raise AssertionError("the generated code ran")

    monkeypatch.setattr(codec, "_encode", refuse)
    monkeypatch.setattr(codec, "_decode", refuse)
    assert codec.encode(everything()) == data
    assert snap(codec.decode(data)) == snap(interp.decode(Everything, data, 100, 1 << 62))


def test_everything_round_trips_as_the_interpreter() -> None:
    value = everything()
    data = interp.encode(Everything, value, 100)
    assert layout(Everything).encode(value, 100) == data
    assert snap(layout(Everything).decode(data, 100, 1 << 62)) == snap(
        interp.decode(Everything, data, 100, 1 << 62))
    assert snap(Everything.decode(data)) == snap(python_decode(Everything, data))
    zero = _zero()
    assert layout(Everything).encode(zero, 100) == interp.encode(Everything, zero, 100)


def _zero() -> Everything:
    return everything(
        a_u8=0, a_i64=0, a_int32=0, a_bool=False, a_mode=Mode.OFF, a_fixed32=0, a_sfixed64=0,
        a_f32=0.0, a_f64=0.0, text="", data=b"", opt=None, opt_text=None, leaf=leaf(),
        maybe_leaf=None, choice=Empty(), leaves=[], numbers=[], floats=[], modes=[], texts=[],
        blobs=[], by_name={}, by_number={}, pairs=[], key=b"\0\0\0\0",
        trio=[leaf(), leaf(), leaf()], transparent=None, defaulted=None, big_number=0,
    )


def rec(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _varint(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def ld(number: int, payload: bytes) -> bytes:
    return rec(number, 2, _varint(len(payload)) + payload)


LEAF = ld(1, b"\x08\x05")  # Leaf.n = 5 in a field of number 1
DECODE_CASES = [
    b"",
    rec(1, 0, b"\xff\x01"),  # u8 out of range
    rec(1, 0, b"\x05") + rec(1, 0, b"\x06"),  # the last value wins
    rec(1, 2, b"\x00"),  # a known number with another wire type
    rec(99, 0, b"\x01") + rec(98, 5, b"abcd") + ld(97, b"xyz"),  # unknown fields are kept
    rec(99, 3, b""),  # a group
    rec(0, 0, b"\x01"),  # field number 0
    rec(5, 0, b"\x07"),  # an enum number with no member
    rec(5, 0, b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01"),  # Mode.NEG
    ld(10, b"\xff"),  # invalid UTF-8
    ld(10, b"\xed\xa0\x80"),  # a surrogate in UTF-8
    ld(14, b"\x08\x01") + ld(14, ld(2, b"x")),  # a singular message twice: merged
    ld(16, ld(1, b"")) + ld(16, ld(2, b"\x08\x01")),  # the Oneof twice
    ld(16, ld(2, b"\x08\x01") + ld(2, b"\x12\x00")),  # a variant's records merge
    ld(16, b""),  # a Oneof with no variant
    ld(16, ld(9, b"")),  # an unknown variant
    ld(18, b"\x01\x02\x03") + rec(18, 0, b"\x04"),  # packed and unpacked
    ld(18, b"\x80"),  # a packed varint cut short
    ld(19, b"\x00\x00\x00"),  # a packed double cut short
    ld(23, ld(1, b"k") + rec(2, 0, b"\x01")) + ld(23, ld(1, b"k") + rec(2, 0, b"\x02")),
    ld(23, rec(2, 0, b"\x01")),  # a map entry without its key
    ld(23, rec(3, 0, b"\x01")),  # an unknown field in an entry
    ld(24, rec(1, 0, b"\x05")),  # a map entry without its message value
    ld(25, ld(1, b"p")),  # a tuple with one item absent
    ld(26, b"abc"),  # a fixed-size bytes value of another size
    ld(27, LEAF + LEAF + LEAF),  # a fixed array of three
    ld(27, LEAF + LEAF),  # of two
    ld(28, rec(1, 0, b"\x05")),  # a message by its generated functions
    ld(28, rec(1, 0, b"\x05")) + ld(28, b""),  # ... twice
    ld(29, b""),  # a message with a default, by its generated functions
    rec(300, 0, b"\x01"),  # a two-byte tag
    ld(14, b"\x08"),  # a nested message cut short
    ld(14, b"\x0a\x05ab"),  # a string past its message
    b"\x80",  # a tag cut short
    rec(8, 5, b"\x00\x00\x80\x7f"),  # f32 infinity
    rec(9, 1, b"\x01\x00\x00\x00\x00\x00\xf8\x7f"),  # a NaN with a payload
    ld(21, b"\xc3\x28"),  # invalid UTF-8 in a list
]


@pytest.mark.parametrize("data", DECODE_CASES)
def test_decode_cases(data: bytes) -> None:
    check_decode(Everything, data)
    # And the codec as a whole answers as the interpreter does.
    try:
        expected: Any = snap(interp.decode(Everything, data, 100, 1 << 62))
    except DecodeError as exc:
        expected = str(exc)
    try:
        got: Any = snap(Everything.decode(data))
    except DecodeError as exc:
        got = str(exc)
    assert got == expected


def test_merged_and_repeated_records_are_left_to_the_generated_code() -> None:
    for case in (DECODE_CASES[11], DECODE_CASES[12], DECODE_CASES[13], DECODE_CASES[28]):
        data = interp.encode(Everything, everything(), 100) + case  # required fields first
        with pytest.raises(Mismatch):
            layout(Everything).decode(data, 100, 1 << 62)
        assert snap(Everything.decode(data)) == snap(python_decode(Everything, data))


def test_depth_and_budget_are_the_generated_codes() -> None:
    """At every depth and budget, the native decoder accepts exactly where the generated code
    does (both are charged the same per message)."""
    data = interp.encode(Everything, everything(), 100)
    for depth in range(1, 6):
        native_ok = python_ok = True
        try:
            layout(Everything).decode(data, depth, 1 << 62)
        except Mismatch:
            native_ok = False
        try:
            python_decode(Everything, data, depth)
        except SIGNALS:
            python_ok = False
        assert native_ok == python_ok, depth
    needed = next(b for b in range(0, 10_000, 8) if _accepts(data, b))
    assert not _accepts(data, needed - 1) if needed else True
    assert _python_accepts(data, needed) and not _python_accepts(data, needed - 1)
    # A budget past 64 bits is accepted by both, and charged exactly: the C helpers that the
    # generated code calls for its list of leaves take what they spent from it.
    huge = [1 << 70]
    codec_of(Everything)._decode(data, 0, len(data), 100, huge)
    assert huge == [(1 << 70) - needed] and _accepts(data, 1 << 70)
    for depth in range(1, 6):
        obj = everything()
        native_ok = python_ok = True
        try:
            layout(Everything).encode(obj, depth)
        except Mismatch:
            native_ok = False
        try:
            python_encode(Everything, obj, depth)
        except SIGNALS:
            python_ok = False
        assert native_ok == python_ok, depth


def _accepts(data: bytes, budget: int) -> bool:
    try:
        layout(Everything).decode(data, 100, budget)
    except Mismatch:
        return False
    return True


def _python_accepts(data: bytes, budget: int) -> bool:
    try:
        python_decode(Everything, data, 100, budget)
    except SIGNALS:
        return False
    return True


class IntSub(int):
    pass


def _unknown(obj: Any, unknown: Any) -> Any:
    object.__setattr__(obj, "_pb_unknown", unknown)
    return obj


ENCODE_CASES: list[Callable[[], Any]] = [
    lambda: everything(a_u8=IntSub(3)),  # an int subclass: the generated code converts it
    lambda: everything(a_u8=256),
    lambda: everything(a_u8=True),
    lambda: everything(a_i64=1 << 63),
    lambda: everything(a_mode=1),  # a plain int for an enum
    lambda: everything(a_f64=1),  # an int for a double
    lambda: everything(a_f32=1e300),  # too large for a float
    lambda: everything(a_f32=float("nan")),
    lambda: everything(text="\udc80"),  # a lone surrogate
    lambda: everything(text=b"x"),
    lambda: everything(data=bytearray(b"ab")),
    lambda: everything(opt=None, opt_text=None, maybe_leaf=leaf(n=0)),
    lambda: everything(leaf=Number(value=1, leaf=None)),  # a message of another class
    lambda: everything(choice=leaf()),  # not a variant
    lambda: everything(choice=Empty()),
    lambda: everything(leaves=(leaf(),)),  # a tuple for a list
    lambda: everything(leaves=[leaf(), None]),
    lambda: everything(numbers=[1, -1]),
    lambda: everything(floats=[1.0, 2]),
    lambda: everything(modes=[Mode.ON, 1]),
    lambda: everything(by_name={"a": 1, 2: 3}),
    lambda: everything(by_name=[("a", 1)]),
    lambda: everything(by_number={1: None}),
    lambda: everything(pairs=[("a", 1, 2)]),
    lambda: everything(pairs=[["a", 1]]),
    lambda: everything(key=b"abc"),
    lambda: everything(trio=[leaf(), leaf()]),
    lambda: everything(transparent=HasTransparent(w=Wrapped(inner=-1))),
    lambda: everything(big_number=1 << 32),
    lambda: _unknown(everything(), b"\x98\x06\x01"),
    lambda: _unknown(everything(), bytearray(b"\x98\x06\x01")),
    lambda: everything(leaf=_unknown(leaf(n=1), b"\x18\x01")),
    lambda: everything(leaves=[leaf(n=i, name="n" * i) for i in range(200)]),
    lambda: everything(data=b"z" * 70_000),  # a length of three bytes
]


@pytest.mark.parametrize("case", range(len(ENCODE_CASES)))
def test_encode_cases(case: int) -> None:
    check_encode(Everything, ENCODE_CASES[case]())


def test_empty_unknown_bytes_before_any_buffer() -> None:
    """An empty message whose ``_pb_unknown`` is ``b""`` encodes to nothing, also when no
    buffer is kept from an earlier encode (one past 1 MiB is not kept)."""
    layout(Everything).encode(everything(data=b"z" * (2 << 20)), 100)
    empty = _unknown(leaf(), b"")
    assert layout(Leaf).encode(empty, 100) == b""


def test_an_unset_slot_is_refused() -> None:
    obj = everything()
    object.__delattr__(obj, "text")
    with pytest.raises(Mismatch):
        layout(Everything).encode(obj, 100)


class SwapsAKey(int):
    """An int whose conversion, user code run while the map holding it is written, swaps the
    map's first key for a new one: the map keeps its size."""

    into: dict[str, Any]

    def __new__(cls, value: int, into: dict[str, Any]) -> SwapsAKey:
        made = super().__new__(cls, value)
        made.into = into
        return made

    def __int__(self) -> int:
        if "a" in self.into:
            del self.into["a"]
            self.into["c"] = HasDefault(n=3)
        return 5


class MapOfCalled(Protobuf, package="test.native"):
    by_name: dict[str, HasDefault] = field(1)  # the values by their generated functions


def test_a_key_swapped_while_the_map_is_written_is_the_generated_codes() -> None:
    """The map that results is written, as the pure-Python path writes it: the entry of the
    removed key is not written too, as a state the map never held."""
    assert codec_of(MapOfCalled).native is not None
    assert codec_of(HasDefault).native is None
    into: dict[str, Any] = {}
    into.update(a=HasDefault(n=SwapsAKey(5, into)), b=HasDefault(n=2))
    with pytest.raises(SIGNALS):
        layout(MapOfCalled).encode(MapOfCalled(by_name=into), 100)
    assert list(into) == ["b", "c"]
    into.clear()
    into.update(a=HasDefault(n=SwapsAKey(5, into)), b=HasDefault(n=2))
    after = interp.encode(MapOfCalled, MapOfCalled(by_name={"b": HasDefault(n=2),
                                                           "c": HasDefault(n=3)}), 100)
    assert MapOfCalled(by_name=into).encode() == after

@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_schemas_agree(data: st.DataObject) -> None:
    """Random schemas and values: the native bytes are the interpreter's, the native value is
    the generated code's, and on damaged bytes the native decoder accepts nothing that the
    generated code refuses (and builds the same value when it accepts)."""
    cls = data.draw(messages())
    value = data.draw(instances(cls))
    found = codec_of(cls).native
    note(codec_of(cls).source)
    if found is None:
        return
    encoded = interp.encode(cls, value, 100)
    assert found.encode(value, 100) == encoded
    assert snap(found.decode(encoded, 100, 1 << 62)) == snap(python_decode(cls, encoded))
    for _ in range(5):
        damaged = bytearray(encoded)
        action = data.draw(st.integers(0, 2))
        if action == 0 and damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
        elif action == 1:
            damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
        else:
            damaged += data.draw(st.binary(max_size=6))
        check_decode(cls, bytes(damaged))


@settings(max_examples=200)
@given(st.binary(max_size=40))
def test_arbitrary_bytes(data: bytes) -> None:
    check_decode(Everything, data)
    check_decode(Leaf, data)
    check_decode(Choice, data)


def test_malformed_layouts_are_refused() -> None:
    Layout = accel.speedups.Layout  # type: ignore[union-attr]
    row = (1, accel.MODES["unsigned"], 32, 0, 0, 0, -1, "n", 0, None, None, None, None, None,
           None)
    good = Layout()
    good.fill(0, Leaf, 56, (row,))
    with pytest.raises(ValueError, match="filled once"):
        good.fill(0, Leaf, 56, (row,))
    def changed(at: int, value: Any) -> tuple[Any, ...]:
        return (*row[:at], value, *row[at + 1:])

    bad_rows = [
        (row[:14],),  # too short
        (changed(0, 0),),  # field number 0
        (changed(1, 99),),  # no such kind
        (changed(2, 7),),  # no such width
        (changed(7, "nope"),),  # not a slot
        (changed(7, 5),),  # a struct's field names its slot
        (row, row),  # two fields of one number
        (changed(1, 13),),  # a message without its layout
        (changed(3, 2),),  # a map without its entry
        (changed(1, 14),),  # a called message without its functions
        (changed(5, 4),),  # a number cannot be absent as a message
    ]
    for rows in bad_rows:
        with pytest.raises((ValueError, TypeError)):
            Layout().fill(0, Leaf, 56, rows)
    with pytest.raises((ValueError, TypeError)):
        Layout().fill(0, int, 56, ())
    with pytest.raises((ValueError, TypeError)):
        Layout().fill(9, None, 0, ())
    empty = Layout()  # never filled: refuses everything
    with pytest.raises(Mismatch):
        empty.encode(leaf(), 100)
    with pytest.raises(Mismatch):
        empty.decode(b"", 100, 100)
    with pytest.raises(TypeError):
        good.decode(bytearray(b""), 100, 100)
    with pytest.raises(TypeError):
        good.encode(leaf())
    with pytest.raises(Mismatch):
        good.decode(b"", 100, -1)
    assert good.decode(b"\x08\x05", 100, 1 << 70).n == 5  # a budget past 64 bits


def _leak_cases() -> list[tuple[str, Callable[[], Any]]]:
    value = everything()
    data = interp.encode(Everything, value, 100)
    broken = [case() for case in ENCODE_CASES[:30]]
    found = layout(Everything)

    def encode_refused() -> None:
        for obj in broken:
            with contextlib.suppress(*SIGNALS):
                found.encode(obj, 100)

    def decode_refused() -> None:
        for bad in DECODE_CASES:
            with contextlib.suppress(*SIGNALS):
                found.decode(bad, 100, 1 << 62)

    def budget_refused() -> None:
        with contextlib.suppress(Mismatch):
            found.decode(data, 100, 100)

    return [
        ("encode", lambda: found.encode(value, 100)),
        ("decode", lambda: found.decode(data, 100, 1 << 62)),
        ("encode refused", encode_refused),
        ("decode refused", decode_refused),
        ("budget refused", budget_refused),
        ("layout made", lambda: native.layouts({}, lambda cls: None)),
    ]


@pytest.mark.parametrize("name", ["encode", "decode", "encode refused", "decode refused",
                                  "budget refused", "layout made"])
def test_memory_stays_flat(name: str) -> None:
    call = dict(_leak_cases())[name]
    for _ in range(200):
        call()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(300):
            call()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(1500):
            call()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 4096, (name, after - before)


def test_library_types_have_tables() -> None:
    from savestate.state.units import SavedStateUnit, SavedStateUnits

    for cls in (SavedStateBlob, SavedStateUnit, SavedStateUnits):
        assert codec_of(cls).native is not None
    units = SavedStateUnits(units=[SavedStateUnit(name="a", state=SavedStateBlob(
        type_url="t", value=b"v"))])
    assert units.encode() == interp.encode(SavedStateUnits, units, 100)


MIB = 1 << 20


@pytest.mark.parametrize("size", [MIB // 3, MIB // 2, MIB - 300, MIB, MIB + 1, 3 * MIB + 17])
def test_large_outputs_are_written_whole(size: int) -> None:
    # From 512 KiB on, the encoder's output moves into a bytes object of its own: every byte written
    # before and after the move, and the lengths put in front of bodies that span it, stay.
    value = everything(
        data=bytes(range(256)) * (size // 512),
        leaf=leaf(n=9, name="é" * (size // 4)),
        blobs=[b"a" * (size // 8), b"", b"b" * 300],
        leaves=[leaf(n=i, name="x" * (size // 16)) for i in range(2)],
    )
    found = layout(Everything)
    assert found.encode(value, 100) == interp.encode(Everything, value, 100)
    assert codec_of(Everything).encode(value) == interp.encode(Everything, value, 100)


def test_a_large_output_is_held_once() -> None:
    # The payload is copied once, into the result: no second buffer of its size is held while
    # the result is made.
    payload = bytes(8 * MIB)
    value = SavedStateBlob(type_url="t", value=payload)
    found = layout(SavedStateBlob)
    found.encode(value, 100)
    tracemalloc.start()
    try:
        encoded = found.encode(value, 100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert encoded == interp.encode(SavedStateBlob, value, 100)
    assert peak < 1.25 * len(payload), peak / len(payload)


def test_a_large_output_refused_midway_is_released() -> None:
    # The refusal comes after the output has moved into its own bytes object.
    bad = everything(data=bytes(2 * MIB), trio=[leaf(), leaf()])
    found = layout(Everything)
    for _ in range(3):
        with pytest.raises(Mismatch):
            found.encode(bad, 100)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            with pytest.raises(Mismatch):
                found.encode(bad, 100)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 4096
    with pytest.raises(EncodeError, match="trio"):
        codec_of(Everything).encode(bad)
