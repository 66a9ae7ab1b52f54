"""Matching over a Oneof: positional patterns on tuple variants (``kw_only=False``), and a match
that type checkers prove covers every variant (the field is annotated with the union of the
variants, and the last case is ``assert_never``)."""

from __future__ import annotations

from typing import TypeAlias

from typing_extensions import assert_never, reveal_type

from savestate import Oneof, Protobuf, field, savedstate, u8, u32


class Shape(Oneof, package="typing.match"):
    pass


class Dot(Shape, variant=1):
    pass


class Pair(Shape, variant=2, tuple=True, kw_only=False):
    width: u8 = field(1)
    height: u32 = field(2)


class Named(Shape, variant=3):
    label: str = field(1, default="")


AnyShape: TypeAlias = Dot | Pair | Named


@savedstate
class Drawing(Protobuf, package="typing.match"):
    shape: AnyShape = field(1)
    spare: AnyShape | None = field(2, default=None)


def area(shape: AnyShape) -> int:
    match shape:
        case Pair(w, h):
            reveal_type(w)  # revealed: int
            reveal_type(h)  # revealed: int
            return w * h
        case Dot():
            return 0
        case Named(label=label):
            reveal_type(label)  # revealed: str
            return len(label)
        case _:
            assert_never(shape)


drawing = Drawing.decode(bytes(Drawing(shape=Pair(2, 3))))
reveal_type(drawing.shape)  # revealed: Dot | Pair | Named
reveal_type(Pair(2, height=3))  # revealed: Pair
area(drawing.shape)
