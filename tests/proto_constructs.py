"""A schema using every construct the .proto emitter describes (golden files, protoc, meaning).

Two packages (one importing the other), types without a package, proto enums with and without a
zero member, Duration, Any, every scalar kind, optional, repeated, fixed arrays of every element
class, tuples, maps with and without a proto ``map``, Oneofs with every variant kind, recursion,
docs, reserved numbers, a non-zero default and ``name=``.
"""

from __future__ import annotations

import datetime
import enum

from savestate import (
    Oneof,
    Protobuf,
    SavedStateBlob,
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
    savedstate,
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


class Mode(enum.IntEnum):
    """How the device runs."""

    OFF = 0
    POLLED = 1
    IRQ_DRIVEN = 2


class Level(enum.IntEnum):
    # no zero member: the .proto gains LEVEL_UNSPECIFIED = 0
    low = 1
    HIGH = 2
    LEVEL_MAX = 7


class Point(Protobuf):
    """A message without a package: described in the package of each message using it."""

    x: i32 = field(1, default=0)
    y: i32 = field(2, default=0)


class Shape(Oneof):
    """A Oneof without a package."""


class Dot(Shape, variant=1):
    pass


class Segment(Shape, variant=2):
    start: Point = field(1)
    end: Point = field(2)


class Register(Protobuf, package="constructs.other"):
    """A register in another package."""

    value: u64 = field(1, default=0)
    mask: u64 = field(2, default=0)


class Node(Protobuf, package="constructs.other", name="TreeNode"):
    """A recursive message, named TreeNode in the .proto."""

    label: str = field(1, default="")
    children: list[Node] = field(2, default_factory=list)
    parent: Node | None = field(3, default=None)
    shape: Shape = field(4, default_factory=Dot)


class Stage(Oneof, package="constructs.main"):
    """Every kind of variant.

    A second paragraph of the doc.
    """


class Idle(Stage, variant=1):
    """A unit variant."""


class Count(Stage, variant=2, tuple=True):
    """A tuple variant of one builtin: a google.protobuf wrapper."""

    n: u32 = field(1)


class Offset(Stage, variant=3, tuple=True):
    """A tuple variant of one sint32: no wrapper exists, so a nested message."""

    delta: i32 = field(1)


class Pair(Stage, variant=4, tuple=True):
    first: u8 = field(1)
    second: str = field(2)


class Wrapped(Stage, variant=5, tuple=True):
    reg: Register = field(1)


class Busy(Stage, variant=6):
    """A struct variant."""

    since: datetime.timedelta = field(1)
    corner: tuple[u32, u32] = field(2, doc="a tuple inside a struct variant")
    level: Level = field(3, default=Level.low)


class Raw(Stage, variant=7, transparent=True):
    code: u32 = field(1)


class Where(Stage, variant=8, transparent=True):
    at: Point = field(1)


class Span(Stage, variant=9, transparent=True):
    bounds: tuple[i64, i64] = field(1)


class Blob(Stage, variant=10, transparent=True):
    data: bytes = field(1)


class Names(Stage, variant=12, transparent=True):
    names: list[str] = field(1, length=2)


class Inner(Stage, variant=11, transparent=True):
    shape: Shape = field(1)


class Scalars(Protobuf, package="constructs.main", reserved=(20, 21, range(30, 33))):
    """One field of each scalar kind."""

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
    a_uint32: uint32 = field(11)
    a_uint64: uint64 = field(12)
    a_sint32: sint32 = field(13)
    a_sint64: sint64 = field(14)
    a_fixed32: fixed32 = field(15)
    a_fixed64: fixed64 = field(16)
    a_sfixed32: sfixed32 = field(17)
    a_sfixed64: sfixed64 = field(18)
    a_f32: f32 = field(19)
    a_f64: f64 = field(22)
    a_int: int = field(23)
    a_float: float = field(24)
    a_bool: bool = field(25)
    a_str: str = field(26)
    a_bytes: bytes = field(27)
    a_mode: Mode = field(28)
    a_level: Level = field(29, default=Level.HIGH)
    a_duration: datetime.timedelta = field(34)
    ticks: u32 = field(35, default=100, doc="Written even when zero: its default is not.")


@savedstate(package="constructs.main")
class Everything:
    """The root: every construct.

    Its doc has
      an indented line.
    """

    scalars: Scalars = field(1)
    # optional
    opt_u32: u32 | None = field(2, default=None, doc="optional scalar")
    opt_str: str | None = field(3, default=None)
    opt_mode: Level | None = field(4, default=None)
    opt_reg: Register | None = field(5, default=None)
    opt_pair: tuple[u32] | None = field(6, default=None)
    opt_duration: datetime.timedelta | None = field(7, default=None)
    # repeated
    list_u8: list[u8] = field(8, default_factory=list)
    list_u32: list[u32] = field(9, default_factory=list)
    list_i16: list[i16] = field(10, default_factory=list)
    list_f32: list[f32] = field(11, default_factory=list)
    list_bool: list[bool] = field(12, default_factory=list)
    list_mode: list[Mode] = field(13, default_factory=list)
    list_str: list[str] = field(14, default_factory=list)
    list_bytes: list[bytes] = field(15, default_factory=list)
    list_reg: list[Register] = field(16, default_factory=list)
    list_tuple: list[tuple[u32, str]] = field(17, default_factory=list)
    list_wrapped: list[tuple[u64]] = field(18, default_factory=list)
    list_stage: list[Stage] = field(19, default_factory=list)
    list_duration: list[datetime.timedelta] = field(20, default_factory=list)
    # fixed arrays
    fixed_bytes: bytes = field(21, length=4, default=bytes(4))
    fixed_u8_list: list[u8] = field(22, length=3, default_factory=lambda: [0, 0, 0])
    fixed_u32: list[u32] = field(23, length=2, default_factory=lambda: [0, 0])
    fixed_i32: list[i32] = field(24, length=2, default_factory=lambda: [0, 0])
    fixed_fixed32: list[fixed32] = field(25, length=1, default_factory=lambda: [0])
    fixed_f64: list[f64] = field(26, length=2, default_factory=lambda: [0.0, 0.0])
    fixed_mode: list[Mode] = field(27, length=2, default_factory=lambda: [Mode.OFF] * 2)
    fixed_str: list[str] = field(28, length=2, default_factory=lambda: ["", ""])
    fixed_reg: list[Register] = field(
        29, length=2, default_factory=lambda: [Register(), Register()]
    )
    fixed_tuple: list[tuple[u32, bool]] = field(30, length=1, default_factory=lambda: [(0, False)])
    fixed_stage: list[Stage] = field(31, length=1, default_factory=lambda: [Idle()])
    # tuples
    pair: tuple[u32, str] = field(32, default=(0, ""))
    wrapped_u32: tuple[u32] = field(33, default=(0,))
    wrapped_str: tuple[str] = field(34, default=("",))
    single_sint: tuple[i32] = field(35, default=(0,))
    nested_tuple: tuple[tuple[u8, u8], Register, Mode] = field(
        36, default_factory=lambda: ((0, 0), Register(), Mode.OFF)
    )
    # maps
    map_str_u32: dict[str, u32] = field(37, default_factory=dict)
    map_u64_reg: dict[u64, Register] = field(38, default_factory=dict)
    map_bool_tuple: dict[bool, tuple[u32, u32]] = field(39, default_factory=dict)
    map_i32_wrapped: dict[i32, tuple[u32]] = field(40, default_factory=dict)
    map_int_stage: dict[int, Stage] = field(41, default_factory=dict)
    map_fixed_mode: dict[fixed64, Mode] = field(42, default_factory=dict)
    map_bytes_str: dict[bytes, str] = field(43, default_factory=dict)
    map_mode_u32: dict[Mode, u32] = field(44, default_factory=dict)
    map_tuple_str: dict[tuple[u32, str], str] = field(45, default_factory=dict)
    map_double: dict[f64, Point] = field(46, default_factory=dict)
    map_duration: dict[datetime.timedelta, bool] = field(47, default_factory=dict)
    # messages, Oneofs, well-known types
    stage: Stage = field(48, default_factory=Idle)
    shape: Shape = field(49, default_factory=Dot)
    point: Point = field(50, default_factory=Point)
    tree: Node = field(51, default_factory=lambda: Node(label=""))
    blob: SavedStateBlob = field(52, default_factory=SavedStateBlob)
    blobs: list[SavedStateBlob] = field(53, default_factory=list)


@savedstate(package="constructs.other")
class OtherRoot:
    """A second root: a package-less Point is described in constructs.other too."""

    where: Point = field(1)
    level: Level = field(2, default=Level.HIGH)
