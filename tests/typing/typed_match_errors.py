"""What type checkers catch in a match over a Oneof's variants."""

from __future__ import annotations

from typing import TypeAlias

from typing_extensions import assert_never

from savestate import Oneof, Protobuf, field, u8


class Signal(Oneof, package="typing.match_errors"):
    pass


class Off(Signal, variant=1):
    pass


class Level(Signal, variant=2, tuple=True, kw_only=False):
    value: u8 = field(1)


class Edge(Signal, variant=3):
    rising: bool = field(1, default=False)


AnySignal: TypeAlias = Off | Level | Edge


class Pin(Protobuf, package="typing.match_errors"):
    signal: AnySignal = field(1)


def describe(signal: AnySignal) -> str:
    match signal:
        case Level(v):
            return str(v)
        case Off():
            return "off"
        case _:
            assert_never(signal)  # error: arg-type


def keyword_only(edge: Edge) -> bool:
    match edge:
        case Edge(rising):  # error: misc
            return bool(rising)
    return False


Pin(signal=Level("high"))  # error: arg-type
