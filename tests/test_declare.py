"""Declaring saved state: field numbers, annotations, defaults, forward references, dataclass
behaviour. Every schema mistake is a SchemaError naming the class and the field."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any, ClassVar

import pytest

import savestate
from savestate import (
    DecodeError,
    EncodeError,
    Oneof,
    Protobuf,
    SchemaError,
    f32,
    field,
    savedstate,
    schema_of,
    u8,
    u16,
    u32,
)


def test_missing_field_number() -> None:
    with pytest.raises(SchemaError) as info:

        class Bad(Protobuf):
            a: u8 = field(1)
            b: u8

    assert info.value.path == ["Bad", "b"]
    assert "explicit number" in str(info.value)


def test_plain_default_is_not_a_field_number() -> None:
    with pytest.raises(SchemaError) as info:

        class Bad(Protobuf):
            a: u8 = 3

    assert info.value.path == ["Bad", "a"]


@pytest.mark.parametrize("number", [0, -1, 1 << 29, 19000, 19999])
def test_field_number_out_of_range(number: int) -> None:
    with pytest.raises(SchemaError) as info:

        class Bad(Protobuf):
            a: u8 = field(number)

    assert info.value.path == ["Bad", "a"]


@pytest.mark.parametrize("number", [1, (1 << 29) - 1, 18999, 20000])
def test_field_number_edges_are_valid(number: int) -> None:
    class Good(Protobuf):
        a: u8 = field(number)

    assert Good.decode(bytes(Good(a=7))) == Good(a=7)


def test_duplicate_field_number() -> None:
    with pytest.raises(SchemaError) as info:

        class Bad(Protobuf):
            a: u8 = field(1)
            b: u16 = field(1)

    assert info.value.path == ["Bad", "b"]
    assert "already used by 'a'" in str(info.value)


@pytest.mark.parametrize(
    "annotation",
    [object, complex, "list", "set[int]", "tuple[int, ...]", "int | str",
     "dict[bytes | None, int]", "datetime.datetime"],
)
def test_unsupported_annotation(annotation: object) -> None:
    with pytest.raises(SchemaError) as info:
        type(Protobuf)(
            "Bad", (Protobuf,),
            {"__annotations__": {"x": annotation}, "x": field(1), "__module__": __name__},
        )
    assert info.value.path == ["Bad", "x"]


def test_empty_tuple_is_refused_as_such() -> None:
    # Rust's `()` has no savestate form; the error said a tuple needs fixed element types.
    with pytest.raises(SchemaError) as info:
        type(Protobuf)(
            "Bad", (Protobuf,),
            {"__annotations__": {"x": tuple[()]}, "x": field(1), "__module__": __name__},
        )
    assert str(info.value) == (
        "Bad.x: cannot encode a field of type tuple: an empty tuple (Rust's `()`) has no "
        "savestate form; declare a message class with no fields"
    )


def test_length_only_for_arrays() -> None:
    with pytest.raises(SchemaError) as info:

        class Bad(Protobuf):
            x: u32 = field(1, length=4)

    assert info.value.path == ["Bad", "x"]
    with pytest.raises(SchemaError):

        class Empty(Protobuf):
            x: bytes = field(1, length=0)


def test_optional_default_must_be_none() -> None:
    with pytest.raises(SchemaError):

        class Bad(Protobuf):
            x: u32 | None = field(1, default=5)


def test_forward_reference_resolves_on_first_use() -> None:
    class Early(Protobuf):
        later: Later = field(1)

    class Later(Protobuf):
        x: u8 = field(1)

    value = Early(later=Later(x=3))
    assert Early.decode(bytes(value)) == value
    assert bytes(value).hex() == "0a020803"


def test_unresolvable_annotation_reports_on_use() -> None:
    class Dangling(Protobuf):
        x: Nowhere = field(1)  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match=r"^Dangling\.x: cannot resolve the annotation"):
        bytes(Dangling(x=1))


def test_recursive_message() -> None:
    class Node(Protobuf):
        value: u32 = field(1)
        children: list[Node] = field(2, default_factory=list)
        parent_hint: Node | None = field(3, default=None)

    tree = Node(value=1, children=[Node(value=2), Node(value=3, children=[Node(value=4)])])
    assert Node.decode(bytes(tree)) == tree


def test_required_self_reference_is_a_schema_error() -> None:
    class Loop(Protobuf):
        again: Loop = field(1)

    with pytest.raises(SchemaError) as info:
        Loop.decode(b"")
    assert "contain itself" in str(info.value)


def test_dataclass_behaviour() -> None:
    class Regs(Protobuf, package="t.regs"):
        """Two registers."""

        a: u8 = field(1)
        b: u16 = field(2, default=7)
        tags: list[u8] = field(3, default_factory=list)

    r = Regs(a=1)
    assert dataclasses.is_dataclass(r)
    assert [f.name for f in dataclasses.fields(Regs)] == ["a", "b", "tags"]
    assert r == Regs(a=1, b=7, tags=[])
    assert repr(r).endswith("Regs(a=1, b=7, tags=[])")
    assert dataclasses.replace(r, a=2).a == 2
    assert not hasattr(r, "__dict__")  # slots
    with pytest.raises(TypeError):
        Regs(1)  # type: ignore[misc]  # keyword-only
    assert Regs(a=1).tags is not Regs(a=1).tags
    match r:
        case Regs(a, b):
            assert (a, b) == (1, 7)
    assert schema_of(Regs).doc == "Two registers."
    assert schema_of(Regs).full_name == "t.regs.Regs"


def test_methods_may_use_super_and_the_class_is_created_once() -> None:
    named: list[tuple[type, str]] = []

    class Mode(enum.IntEnum):
        """A default that learns where it is stored, as a descriptor would."""

        OFF = 0
        ON = 1

        def __set_name__(self, owner: type, name: str) -> None:
            if issubclass(owner, Protobuf):
                named.append((owner, name))

    class Device(Protobuf, package="t.device"):
        irq: u8 = field(1, default=3)
        mode: Mode = field(2, default=Mode.ON)

        def __post_init__(self) -> None:
            super().__init_subclass__()  # a method using super() has a __class__ cell
            if self.irq > 15:
                raise ValueError("irq is at most 15")

        def described(self) -> str:
            return f"{__class__.__name__}: {super().__repr__()}"

    assert Device().described() == f"Device: {Device()!r}"
    with pytest.raises(ValueError, match="at most 15"):
        Device(irq=16)
    # Created once: the class the methods' __class__ cell names is the declared one, and the
    # default saw that class as its owner, once.
    assert named == [(Device, "mode")]
    assert type(Device.__dict__["irq"]).__name__ == "member_descriptor"
    assert Device.__slots__ == ("irq", "mode")
    assert [f.default for f in dataclasses.fields(Device)] == [3, Mode.ON]
    assert not hasattr(Device(), "__dict__")


def test_classvars_are_not_fields() -> None:
    class WithConst(Protobuf):
        LIMIT: ClassVar[int] = 4
        x: u8 = field(1)

    assert [f.name for f in dataclasses.fields(WithConst)] == ["x"]


def test_nonzero_default_is_always_written_so_zero_survives() -> None:
    class Cfg(Protobuf):
        enabled: bool = field(1, default=True)
        level: u8 = field(2, default=3)
        name: str = field(3, default="eth0")

    # Missing fields take the declared default (state from an older release).
    assert Cfg.decode(b"") == Cfg()
    # A zero value is written explicitly, or the decode would give the default back.
    off = Cfg(enabled=False, level=0, name="")
    assert bytes(off).hex() == "080010001a00"
    assert Cfg.decode(bytes(off)) == off


class Inner(Protobuf):
    x: u8 = field(1)


class Added(Protobuf):
    """A release that added fields with declared defaults of every kind that is not a scalar."""

    a: u8 = field(1)
    timeout: datetime.timedelta = field(2, default=datetime.timedelta(seconds=30))
    pair: tuple[u8, u8] = field(3, default=(1, 2))
    inner: Inner = field(4, default_factory=lambda: Inner(x=3))
    zero: Inner = field(5, default_factory=lambda: Inner(x=0))


def test_state_without_a_composite_field_decodes_to_its_default() -> None:
    older = bytes.fromhex("0801")  # a = 1, written before the other fields existed
    assert Added.decode(older) == Added(a=1)
    assert Added.from_dict({"a": 1}) == Added(a=1)
    # Zero values are written, so that they do not come back as the defaults. An Inner with
    # every field required has no value without bytes, so its default is written too.
    zeros = Added(
        a=1, timeout=datetime.timedelta(0), pair=(0, 0), inner=Inner(x=0), zero=Inner(x=0)
    )
    assert bytes(zeros).hex() == "0801" "1200" "1a00" "2200" "2a00"
    assert Added.decode(bytes(zeros)) == zeros
    assert bytes(Added(a=1)).hex() == "0801" "1202081e" "1a0408011002" "22020803" "2a00"


def test_a_decoded_default_equal_to_no_bytes_is_not_written() -> None:
    class Cfg(Protobuf):
        x: u8 = field(1, default=0)

    class Holder(Protobuf):
        cfg: Cfg = field(1, default_factory=Cfg)
        pair: tuple[u8, u8] = field(2, default=(0, 0))
        wait: datetime.timedelta = field(3, default=datetime.timedelta(0))

    assert bytes(Holder()) == b""


def test_an_enum_default_given_as_a_number_is_its_member() -> None:
    class Mode(enum.IntEnum):
        OFF = 0
        ON = 1

    class Holder(Protobuf):
        mode: Mode = field(1, default=1)

    assert type(Holder.decode(b"").mode) is Mode  # as when the bytes carry it
    assert type(Holder.decode(b"\x08\x00").mode) is Mode


@pytest.mark.parametrize(
    ("annotation", "options", "message"),
    [
        (list[u8], {"default_factory": lambda: [1, 2]}, "a list's default must be empty"),
        (dict[u8, u8], {"default_factory": lambda: {1: 1}}, "a map's default must be empty"),
        (datetime.timedelta, {"default": 5}, "default 5 is not a timedelta"),
        (datetime.timedelta, {"default": datetime.timedelta(days=10**7)},
         "is outside google.protobuf.Duration's range"),
        (tuple[u8, u8], {"default": (300, 1)}, "default 300 does not fit u8 (0..255)"),
        (tuple[u8, u8], {"default": (1,)}, "default (1,) is not a tuple[u8, u8]"),
        (Inner, {"default_factory": lambda: Added(a=1)}, "is not a Inner"),
        (u8, {"default_factory": lambda: "x"}, "default 'x' is not an int (u8)"),
        (u8, {"default_factory": lambda: 1 // 0}, "raised ZeroDivisionError: "),
        (str, {"default": "\ud800"}, "default '\\ud800' is not valid UTF-8"),
    ],
)
def test_a_default_that_a_decode_cannot_give_back_is_refused(
    annotation: object, options: dict[str, object], message: str
) -> None:
    ns = {"__annotations__": {"a": annotation}, "a": field(1, **options)}
    with pytest.raises(SchemaError) as info:
        type(Protobuf)("Bad", (Protobuf,), ns)
    assert str(info.value).startswith("Bad.a: ")
    assert message in str(info.value), str(info.value)


def test_a_default_of_another_enum_is_refused() -> None:
    class Mode(enum.IntEnum):
        OFF = 0
        ON = 1

    class Other(enum.IntEnum):
        Y = 1

    with pytest.raises(SchemaError, match=r"Bad\.mode: default <Other\.Y: 1> is not a member"):

        class Bad(Protobuf):
            mode: Mode = field(1, default=Other.Y)


def test_savedstate_root_registration() -> None:
    @savedstate(package="t.root")
    class SavedThing:
        """A root."""

        x: u32 = field(1)

    assert issubclass(SavedThing, Protobuf)
    assert SavedThing in savestate.roots()
    assert SavedThing.decode(bytes(SavedThing(x=5))).x == 5
    with pytest.raises(SchemaError):

        @savedstate(package="")
        class NoPackage:
            x: u32 = field(1)


def test_two_roots_with_one_name_conflict() -> None:
    @savedstate(package="t.dup")
    class Twin:
        x: u32 = field(1)

    with pytest.raises(SchemaError):

        def other_scope() -> type:
            @savedstate(package="t.dup")
            class Twin:
                y: u32 = field(1)

            return Twin

        other_scope()


def test_message_subclassing_is_refused() -> None:
    class Base(Protobuf):
        x: u8 = field(1)

    with pytest.raises(SchemaError):

        class Derived(Base):  # type: ignore[misc]
            y: u8 = field(2)


def test_oneof_declaration_errors() -> None:
    class Stage(Oneof):
        pass

    with pytest.raises(TypeError):
        Stage()
    with pytest.raises(SchemaError):

        class NoNumber(Stage):  # type: ignore[call-arg]
            pass

    with pytest.raises(SchemaError):

        class WithField(Oneof):
            x: u8 = field(1)

    class Ok(Stage, variant=1):
        pass

    with pytest.raises(SchemaError, match=r"^Stage\.Dup: variant number 1 is already used by Ok$"):

        class Dup(Stage, variant=1):  # at declaration, not at first use
            pass


def test_variant_after_first_use_is_refused() -> None:
    class Late(Oneof):
        pass

    class First(Late, variant=1):
        pass

    assert Late.decode(bytes(First())) == First()
    with pytest.raises(SchemaError):

        class Second(Late, variant=2):
            pass


def test_oneof_values_work_with_match_and_eq() -> None:
    class Shape(Oneof):
        pass

    class Point(Shape, variant=1):
        pass

    class Circle(Shape, variant=2):
        radius: u32 = field(1)

    class Label(Shape, variant=3, transparent=True):
        text: str = field(1)

    class Drawing(Protobuf):
        shapes: list[Shape] = field(1)

    d = Drawing(shapes=[Point(), Circle(radius=0), Circle(radius=5), Label(text="")])
    back = Drawing.decode(bytes(d))
    assert back == d
    seen = []
    for s in back.shapes:
        match s:
            case Point():
                seen.append("point")
            case Circle(radius=r):
                seen.append(f"circle {r}")
            case Label(text):
                seen.append(f"label {text!r}")
    assert seen == ["point", "circle 0", "circle 5", "label ''"]
    assert Circle(radius=1) != Circle(radius=2)
    assert Point() == Point()


def test_tuple_variant_numbers_must_be_positional() -> None:
    class Op(Oneof):
        pass

    with pytest.raises(SchemaError):

        class Bad(Op, variant=1, tuple=True):
            a: u8 = field(2)


def test_enum_fields() -> None:
    class Mode(enum.IntEnum):
        OFF = 0
        ON = 1
        BURST = 7

    class NoZero(enum.IntEnum):
        A = 1
        B = 2

    class Dev(Protobuf):
        mode: Mode = field(1, default=Mode.OFF)
        modes: list[Mode] = field(2, default_factory=list)
        nz: NoZero = field(3, default=NoZero.A)

    d = Dev(mode=Mode.BURST, modes=[Mode.ON, Mode.OFF], nz=NoZero.B)
    assert bytes(d).hex() == "0807" "12020100" "1802"
    back = Dev.decode(bytes(d))
    assert back == d and back.mode is Mode.BURST
    assert Dev.decode(b"") == Dev()
    with pytest.raises(DecodeError) as info:
        Dev.decode(bytes.fromhex("0805"))
    assert str(info.value) == "Dev.mode: unknown value 5 for enum Mode"
    with pytest.raises(EncodeError):
        bytes(Dev(mode=5))  # type: ignore[arg-type]


def test_durations() -> None:
    class Timer(Protobuf):
        period: datetime.timedelta = field(1)

    for td in [datetime.timedelta(0), datetime.timedelta(microseconds=1),
               datetime.timedelta(days=-1), datetime.timedelta(seconds=-1, microseconds=5),
               datetime.timedelta(days=3650, microseconds=999999)]:
        assert Timer.decode(bytes(Timer(period=td))).period == td
    # A negative duration: seconds and nanos both negative, as google.protobuf.Duration says.
    assert bytes(Timer(period=datetime.timedelta(microseconds=-1))).hex() == (
        "0a0b1098f8ffffffffffffff01"
    )
    with pytest.raises(DecodeError) as info:
        Timer.decode(bytes.fromhex("0a021001"))  # 1 ns: finer than a timedelta can hold
    assert info.value.path == ["Timer", "period"]
    with pytest.raises(EncodeError):
        bytes(Timer(period=datetime.timedelta(days=999_999_999)))


def test_fixed_arrays() -> None:
    class Timers(Protobuf):
        count: u16 = field(1)

    class Pit(Protobuf):
        timers: list[Timers] = field(1, length=3)
        cmos: bytes = field(2, length=4)
        regs: list[u32] = field(3, length=2)

    p = Pit(timers=[Timers(count=1), Timers(count=0), Timers(count=3)], cmos=b"\0\1\2\3",
            regs=[0, 0])
    assert bytes(p).hex() == "0a0a0a0208010a000a020803" "120400010203" "1a020000"
    assert Pit.decode(bytes(p)) == p
    with pytest.raises(EncodeError) as info:
        bytes(Pit(timers=p.timers, cmos=b"\0", regs=[0, 0]))
    assert str(info.value) == "Pit.cmos: expected 4 bytes, got 1"
    with pytest.raises(DecodeError) as dinfo:
        Pit.decode(bytes.fromhex("120400010203" "1a020000"))
    assert str(dinfo.value) == "Pit.timers: missing required field (a fixed-length array)"
    with pytest.raises(DecodeError) as dinfo:
        Pit.decode(bytes.fromhex("0a020a00" "120400010203" "1a020000"))
    assert str(dinfo.value) == "Pit.timers: expected 3 elements, got 1"


def test_a_missing_fixed_array_takes_its_declared_default() -> None:
    class Timers(Protobuf):
        count: u16 = field(1)

    class Pit(Protobuf):
        cmos: bytes = field(1, length=2, default=b"ab")
        regs: list[u8] = field(2, length=4, default_factory=lambda: [9] * 4)
        counts: list[u32] = field(3, length=2, default_factory=lambda: [1, 2])
        timers: list[Timers] = field(4, length=1, default_factory=lambda: [Timers(count=3)])

    # Still always written, as the reference writes a fixed array: the bytes do not change.
    assert bytes(Pit()).hex() == "0a026162" "120409090909" "1a020102" "22040a020803"
    assert Pit.decode(b"") == Pit()
    assert Pit.from_json("{}") == Pit()
    assert Pit.decode(b"").regs is not Pit.decode(b"").regs  # a new value each time
    assert Pit.decode(bytes.fromhex("0a027879")) == Pit(cmos=b"xy")


def test_unknown_fields_survive_decode_and_encode() -> None:
    class V1(Protobuf):
        a: u8 = field(1)
        c: u8 = field(3)

    class V2(Protobuf):
        a: u8 = field(1)
        b: str = field(2)
        c: u8 = field(3)
        d: list[u32] = field(4)

    new = bytes(V2(a=1, b="new", c=3, d=[1, 2]))
    old = V1.decode(new)
    assert (old.a, old.c) == (1, 3)
    again = bytes(old)
    assert V2.decode(again) == V2(a=1, b="new", c=3, d=[1, 2])
    old.a = 9
    assert V2.decode(bytes(old)) == V2(a=9, b="new", c=3, d=[1, 2])


def test_decoded_defaults_are_never_shared() -> None:
    class Stage(Oneof):
        pass

    class Ready(Stage, variant=1):
        x: u8 = field(1)

    class Holder(Protobuf):
        stage: Stage = field(1, default_factory=lambda: Ready(x=5))
        buf: bytes = field(2, default_factory=bytes)
        n: u8 = field(3)

    first, second = Holder.decode(b"\x18\x01"), Holder.decode(b"\x18\x01")
    assert first.stage == second.stage == Ready(x=5)
    assert first.stage is not second.stage
    first.stage.x = 9
    assert Holder.decode(b"\x18\x01").stage == Ready(x=5)


def test_a_float_too_large_for_a_double_is_an_encode_error() -> None:
    class F(Protobuf):
        x: float = field(1)
        y: f32 = field(2)

    with pytest.raises(EncodeError) as info:
        bytes(F(x=10**400, y=0.0))
    assert info.value.path == ["F", "x"]
    with pytest.raises(EncodeError) as info:
        bytes(F(x=0.0, y=10**400))
    assert info.value.path == ["F", "y"]


def test_self_reference_through_nested_tuples_is_a_schema_error() -> None:
    class Knot(Protobuf):
        t: tuple[tuple[Knot, u8], u8] = field(1)

    with pytest.raises(SchemaError):
        Knot.decode(b"")


def test_equality_repr_and_docstrings_come_from_the_base() -> None:
    class Point(Protobuf):
        x: u32 = field(1)
        y: u32 = field(2)

    class Other(Protobuf):
        x: u32 = field(1)
        y: u32 = field(2)

    class Empty(Protobuf):
        """Nothing in it."""

    a, b = Point(x=1, y=2), Point(x=1, y=2)
    assert a == b and a != Point(x=1, y=3)
    assert a != Other(x=1, y=2) and a.__eq__(Other(x=1, y=2)) is NotImplemented
    assert Empty() == Empty() and Empty() != Point(x=0, y=0)
    with pytest.raises(TypeError):
        hash(a)  # mutable values: unhashable, as a dataclass with eq is
    assert repr(a) == f"{Point.__qualname__}(x=1, y=2)"
    assert repr(Empty()) == f"{Empty.__qualname__}()"
    assert dataclasses.replace(a, y=5) == Point(x=1, y=5)
    assert Point.__doc__ is None and Empty.__doc__ == "Nothing in it."
    assert "__eq__" not in vars(Point) and "__repr__" not in vars(Point)


def test_a_class_defining_its_own_eq_and_repr_keeps_them() -> None:
    class Custom(Protobuf):
        x: u32 = field(1)

        def __eq__(self, other: object) -> bool:
            return True

        def __repr__(self) -> str:
            return "custom"

        __hash__ = None  # type: ignore[assignment]

    assert Custom(x=1) == Custom(x=2) and repr(Custom(x=1)) == "custom"


def test_a_recursive_value_reprs_without_recursing_forever() -> None:
    class Cell(Protobuf):
        items: list[Cell] = field(1, default_factory=list)

    cell = Cell()
    cell.items.append(cell)
    assert repr(cell) == f"{Cell.__qualname__}(items=[...])"


@pytest.mark.parametrize(
    ("default", "factory"),
    [([], "list"), ({}, "dict"), (bytearray(), "bytearray"), ([1, 2], "lambda: [1, 2]")],
)
def test_a_mutable_default_is_a_schema_error_naming_a_factory(
    default: object, factory: str
) -> None:
    with pytest.raises(SchemaError) as info:

        class Shared(Protobuf):
            a: list[u8] = field(1, default=default)

    assert str(info.value).startswith("Shared.a: a mutable default")
    assert f"use default_factory={factory}" in str(info.value)


def test_a_message_default_is_a_schema_error_naming_a_factory() -> None:
    class Inner(Protobuf):
        x: u8 = field(1, default=0)

    with pytest.raises(SchemaError) as info:

        class Outer(Protobuf):
            inner: Inner = field(1, default=Inner())

    assert str(info.value) == (
        "Outer.inner: a mutable default (Inner) would be shared by every value: use "
        "default_factory=Inner"
    )


def test_a_dataclass_base_with_fields_is_a_schema_error() -> None:
    @dataclasses.dataclass
    class Base:
        x: int = 0

    with pytest.raises(SchemaError, match=r"^Mixed\.x: inherits the dataclass field 'x' from Base"):

        class Mixed(Base, Protobuf):
            a: u8 = field(1)

    @dataclasses.dataclass
    class Empty:
        pass

    class Fine(Empty, Protobuf):  # a dataclass base without fields adds none
        a: u8 = field(1)

    assert Fine(a=1).a == 1


def test_own_slots_are_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"^Slotted: a savestate class must not declare __slots"):

        class Slotted(Protobuf):
            __slots__ = ("cache",)
            a: u8 = field(1)


def test_a_field_may_be_named_self() -> None:
    class Me(Protobuf):
        self: u8 = field(1)
        other: u8 = field(2, default=3)

    me = Me(self=4)
    assert (me.self, me.other) == (4, 3)
    assert Me.decode(bytes(me)) == me


@pytest.mark.parametrize(
    ("fname", "why"),
    [
        ("decode", "it would hide the method decode()"),
        ("to_dict", "it would hide the method to_dict()"),
        ("from_json", "it would hide the method from_json()"),
        ("_pb_unknown", "names starting with _pb_ are savestate's own"),
        ("_pb_values", "names starting with _pb_ are savestate's own"),
        ("__savestate_missing__", "names of the form __name__ belong to Python"),
    ],
)
def test_a_field_name_that_hides_the_class_api_is_a_schema_error(fname: str, why: str) -> None:
    namespace = {"__annotations__": {fname: u8}, fname: field(1)}
    with pytest.raises(SchemaError) as info:
        type(Protobuf)("Hiding", (Protobuf,), namespace)
    assert str(info.value).startswith(f"Hiding.{fname}: a field cannot be named {fname!r}: ")
    assert why in str(info.value)


def test_field_names_like_the_generated_init_helpers_do_not_shadow_them() -> None:
    class Helpers(Protobuf):
        _round_f32: u8 = field(1, default=0)
        _MISSING: u8 = field(2, default=0)
        _d_level: u8 = field(3, default=0)
        _f_items: u8 = field(4, default=0)
        level: f32 = field(5, default=0.5)
        items: list[u8] = field(6, default_factory=list)

    value = Helpers(level=0.1)
    assert value.items == []
    assert value.level == 0.10000000149011612
    assert Helpers.decode(bytes(value)) == value


def _module_from(name: str, source: str) -> dict[str, object]:
    """Run ``source`` as the module ``name`` (registered while it runs, as an import does)."""
    import sys
    import types

    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), vars(module))
    finally:
        del sys.modules[name]
    return vars(module)


def test_a_classvar_spelt_through_an_alias_is_not_a_field() -> None:
    ns = _module_from(
        "classvar_aliases",
        "from __future__ import annotations\n"
        "import typing as t\n"
        "import typing_extensions as te\n"
        "from typing import ClassVar as CV\n"
        "from savestate import Protobuf, field, u8\n"
        "class Limits(Protobuf):\n"
        "    MAX: t.ClassVar[int] = 10\n"
        "    MIN: CV[int] = 1\n"
        "    STEP: te.ClassVar = 2\n"
        "    level: u8 = field(1)\n",
    )
    limits: Any = ns["Limits"]
    assert [f.name for f in dataclasses.fields(limits)] == ["level"]
    assert (limits.MAX, limits.MIN, limits.STEP) == (10, 1, 2)


def test_a_class_named_like_classvar_is_a_field_type() -> None:
    ns = _module_from(
        "classvar_lookalike",
        "from __future__ import annotations\n"
        "from savestate import Protobuf, field, u8\n"
        "class ClassVarious(Protobuf):\n"
        "    a: u8 = field(1)\n"
        "class Holder(Protobuf):\n"
        "    inner: ClassVarious = field(1)\n",
    )
    holder: Any = ns["Holder"]
    inner: Any = ns["ClassVarious"]
    assert [f.name for f in dataclasses.fields(holder)] == ["inner"]
    value = holder(inner=inner(a=1))
    assert holder.decode(bytes(value)) == value
    with pytest.raises(SchemaError, match=r"^Twice\.again: field number 1 is already used"):
        _module_from(
            "classvar_lookalike_numbers",
            "from __future__ import annotations\n"
            "from savestate import Protobuf, field, u8\n"
            "class ClassVarious(Protobuf):\n"
            "    a: u8 = field(1)\n"
            "class Twice(Protobuf):\n"
            "    inner: ClassVarious = field(1)\n"
            "    again: u8 = field(1)\n",
        )


def test_a_classvar_imported_in_the_declaring_function_is_not_a_field() -> None:
    import typing_extensions

    class Local(Protobuf):
        LIMIT: typing_extensions.ClassVar[int] = 3
        x: u8 = field(1)

    assert [f.name for f in dataclasses.fields(Local)] == ["x"]
    # The class keeps its annotations as written.
    assert Local.__annotations__ == {"LIMIT": "typing_extensions.ClassVar[int]", "x": "u8"}
    assert Local.LIMIT == 3


def test_post_init_runs_after_construction_but_not_when_read_back() -> None:
    calls: list[tuple[int, float]] = []

    class Checked(Protobuf):
        a: u8 = field(1, default=0)
        level: f32 = field(2, default=0.5)

        def __post_init__(self) -> None:
            calls.append((self.a, self.level))  # every field is set, f32 rounded
            if self.a > 100:
                raise ValueError("a is at most 100")

    value = Checked(a=5, level=0.1)
    assert calls == [(5, value.level)] and value.level != 0.1
    with pytest.raises(ValueError, match="at most 100"):
        Checked(a=200)
    assert dataclasses.replace(value, a=6).a == 6
    assert calls[-1] == (6, value.level)
    calls.clear()
    # Saved data is read back, not constructed anew: no hook runs, as for a pickle.
    assert Checked.decode(b"\x08\xc8\x01").a == 200
    assert Checked.from_json('{"a": 200}').a == 200
    assert Checked.from_dict({"a": 200}).a == 200
    assert calls == []


def test_an_own_init_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"^Custom\.__init__: a savestate class must not define"):

        class Custom(Protobuf):
            a: u8 = field(1, default=0)

            def __init__(self, a: int = 7) -> None:
                self.a = a


@pytest.mark.parametrize("proto_name", ["1x", "x.y", "a-b", "Größe", ""])
def test_a_message_name_that_is_not_a_protobuf_identifier_is_a_schema_error(
    proto_name: str,
) -> None:
    with pytest.raises(SchemaError, match=r"^Named: "):

        class Named(Protobuf, package="t.names", name=proto_name):
            a: u8 = field(1)


def test_names_that_are_not_protobuf_identifiers_are_schema_errors() -> None:
    with pytest.raises(SchemaError) as info:

        class Sizes(Protobuf):
            größe: u8 = field(1)

    assert str(info.value) == (
        "Sizes.größe: the field name 'größe' is not a protobuf identifier: ASCII letters, "
        "digits and underscores, not starting with a digit"
    )
    with pytest.raises(SchemaError, match=r"^Maße: the class name \(its message name"):

        class Maße(Protobuf):
            a: u8 = field(1)

    class Maß2(Protobuf, name="Mass2"):  # name= gives the message another name
        a: u8 = field(1)

    assert schema_of(Maß2).name == "Mass2"


@pytest.mark.parametrize("reserved", [[0], [-5], [2**40], [1 << 29], range(0, 3)])
def test_a_reserved_number_that_is_no_field_number_is_a_schema_error(reserved: object) -> None:
    with pytest.raises(SchemaError, match=r"^Kept: reserved number -?\d+ is outside 1\.\."):

        class Kept(Protobuf, reserved=reserved):
            a: u8 = field(1)


def test_the_edges_of_field_numbers_can_be_reserved() -> None:
    class Edges(Protobuf, reserved=[1, (1 << 29) - 1, range(19000, 20000)]):
        a: u8 = field(2)

    with pytest.raises(SchemaError, match=r"^Taken\.a: field number 536870911 is reserved"):

        class Taken(Protobuf, reserved=[(1 << 29) - 1]):
            a: u8 = field((1 << 29) - 1)


def test_a_reserved_range_stays_a_range() -> None:
    # protobuf's `reserved 1000 to max;`: half a billion numbers, kept as one range.
    class Wide(Protobuf, package="t.wide", reserved=[7, 5, 6, range(1000, 1 << 29)]):
        a: u8 = field(1)

    assert Wide.__savestate__.reserved == (range(5, 8), range(1000, 1 << 29))
    text = savestate.proto_files([Wide])["t.wide.proto"]
    assert "  reserved 5 to 7, 1000 to 536870911;\n" in text
    with pytest.raises(SchemaError, match=r"^Inside\.a: field number 123456 is reserved"):

        class Inside(Protobuf, reserved=range(1000, 1 << 29)):
            a: u8 = field(123456)

    class Stage(Oneof, reserved=range(10, 1 << 29)):
        pass

    with pytest.raises(SchemaError, match=r"^Stage\.Far: variant number 99999 is reserved"):

        class Far(Stage, variant=99999):
            pass

    from savestate.schemaio.compat import model_side

    @savedstate
    class WideRoot(Protobuf, package="t.wide", reserved=range(1000, 1 << 29)):
        a: u8 = field(1)

    msg = model_side([WideRoot]).messages["t.wide.WideRoot"]
    assert msg.reserved == [(1000, 1 << 29)]
    assert msg.is_reserved(123456) and not msg.is_reserved(999)


@pytest.mark.parametrize("reserved", [range(1, 10, 2), range(5, 5)])
def test_a_stepped_or_empty_reserved_range_is_a_schema_error(reserved: range) -> None:
    with pytest.raises(SchemaError, match=r"^Odd: reserved= "):

        class Odd(Protobuf, reserved=reserved):
            a: u8 = field(11)


class Replaced(Protobuf, package="t.declare.replaced"):
    count: u32 = field(1)
    ratio: f32 = field(2)
    seen: ClassVar[list[int]] = []

    def __post_init__(self) -> None:
        Replaced.seen.append(self.count)


class ReplacedPair(Protobuf, package="t.declare.replaced", kw_only=False):
    value: u32 = field(1)
    other: u32 = field(2)


def test_replace_keeps_unknown_fields_that_dataclasses_replace_drops() -> None:
    # Field 9 is a field of a newer release: a decode keeps it, and so must a changed copy.
    newer = bytes.fromhex("0801") + bytes.fromhex("4805")
    value = Replaced.decode(newer)
    assert bytes(dataclasses.replace(value, count=2)) == bytes.fromhex("0802")
    Replaced.seen.clear()
    changed = savestate.replace(value, count=2, ratio=0.1)
    assert Replaced.seen == [2]  # __post_init__ ran, as with dataclasses.replace
    assert bytes(changed) == bytes(Replaced(count=2, ratio=0.1)) + bytes.fromhex("4805")
    assert changed.ratio == Replaced(count=0, ratio=0.1).ratio  # rounded, as __init__ does
    assert bytes(value) == newer  # the original is left as it was
    assert bytes(value.__replace__()) == newer
    with pytest.raises(TypeError):
        savestate.replace(value, counts=3)
    pair = ReplacedPair.decode(bytes.fromhex("0801" "1002" "4805"))
    assert bytes(savestate.replace(pair, value=7)) == bytes.fromhex("0807" "1002" "4805")
