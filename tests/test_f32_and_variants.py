"""f32 fields hold float32 values from construction on; tuple variants can take positional
arguments and patterns; a union of every variant of a Oneof is that Oneof."""

from __future__ import annotations

import struct
from typing import TypeAlias

import pytest

from savestate import Oneof, Protobuf, SchemaError, f32, field, u8, u32


class Gauge(Protobuf, package="tests.f32"):
    level: f32 = field(1, default=0.1)
    samples: list[f32] = field(2, default_factory=list)
    spare: f32 | None = field(3, default=None)
    exact: float = field(4, default=0.1)


def _as_float32(x: float) -> float:
    value: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return value


def test_f32_is_rounded_when_constructed_so_the_round_trip_is_equal() -> None:
    gauge = Gauge(samples=[0.1, 2.5], spare=0.3)
    assert gauge.level == _as_float32(0.1) != 0.1
    assert gauge.samples == [_as_float32(0.1), 2.5]
    assert gauge.spare == _as_float32(0.3)
    assert gauge.exact == 0.1  # a double keeps every bit
    again = Gauge.decode(bytes(gauge))
    assert again == gauge and bytes(again) == bytes(gauge)


class Nested(Protobuf, package="tests.f32"):
    by_id: dict[u8, f32] = field(1, default_factory=dict)
    pair: tuple[f32, u8] = field(2, default=(0.0, 0))
    maybe: list[f32 | None] = field(3, default_factory=list)
    rows: list[list[f32]] = field(4, default_factory=list)
    table: dict[u8, list[f32]] | None = field(5, default=None)


def test_f32_inside_containers_is_rounded_when_constructed() -> None:
    value = Nested(
        by_id={1: 0.1}, pair=(0.1, 7), maybe=[0.1, None], rows=[[0.1], []], table={2: [0.3]}
    )
    tenth = _as_float32(0.1)
    assert value.by_id == {1: tenth}
    assert value.pair == (tenth, 7)
    assert value.maybe == [tenth, None]
    assert value.rows == [[tenth], []]
    assert value.table == {2: [_as_float32(0.3)]}
    assert Nested.decode(bytes(value)) == value
    wrong = [0.1, 7]  # a shape the encoder refuses is left for it to name
    assert Nested(pair=wrong).pair is wrong  # type: ignore[arg-type]


def test_f32_leaves_what_it_cannot_round_to_the_encoder() -> None:
    from savestate import EncodeError

    assert Gauge(level=float("inf")).level == float("inf")
    too_big = Gauge(level=1e300)
    assert too_big.level == 1e300
    with pytest.raises(EncodeError, match="level"):
        bytes(too_big)
    samples = (0.1,)
    assert Gauge(samples=samples).samples is samples  # type: ignore[arg-type]


class Shape(Oneof, package="tests.variants"):
    pass


class Dot(Shape, variant=1):
    pass


class Pair(Shape, variant=2, tuple=True, kw_only=False):
    width: u8 = field(1)
    height: u32 = field(2)


AnyShape: TypeAlias = Dot | Pair


class Drawing(Protobuf, package="tests.variants"):
    shape: AnyShape = field(1)
    spare: AnyShape | None = field(2, default=None)


class ByOneof(Protobuf, package="tests.variants"):
    shape: Shape = field(1)
    spare: Shape | None = field(2, default=None)


def test_tuple_variant_takes_positional_arguments_and_patterns() -> None:
    pair = Pair(2, 3)
    assert pair == Pair(width=2, height=3)
    match pair:
        case Pair(w, h):
            assert (w, h) == (2, 3)
        case _:
            pytest.fail("no match")
    with pytest.raises(TypeError):
        Dot(1)  # type: ignore[call-arg]


def test_kw_only_false_needs_defaults_last() -> None:
    with pytest.raises(SchemaError, match=r"Late\.b"):
        class Late(Shape, variant=3, kw_only=False):
            a: u8 = field(1, default=0)
            b: u8 = field(2)


def test_union_of_every_variant_is_the_oneof() -> None:
    drawing = Drawing(shape=Pair(2, 3), spare=Dot())
    same = ByOneof(shape=Pair(2, 3), spare=Dot())
    assert bytes(drawing) == bytes(same)
    assert Drawing.decode(bytes(drawing)) == drawing
    assert Drawing.decode(bytes(Drawing(shape=Dot()))).spare is None


class Light(Oneof, package="tests.variants"):
    pass


class Red(Light, variant=1):
    pass


class Amber(Light, variant=2):
    pass


class Green(Light, variant=3):
    pass


def test_union_of_some_variants_is_an_error() -> None:
    with pytest.raises(SchemaError, match=r"Partial\.light.*leaves out Amber"):
        class Partial(Protobuf, package="tests.variants"):
            light: Red | Green = field(1)

        bytes(Partial(light=Red()))


def test_f32_named_in_the_declaring_function_is_rounded() -> None:
    # A name only the function knows: resolved where the schema resolves it, not in the module.
    from savestate import f32 as single

    class Local(Protobuf):
        level: single = field(1, default=0.1)
        samples: list[single] = field(2, default_factory=list)

    local = Local(samples=[0.1])
    assert local.level == _as_float32(0.1)
    assert local.samples == [_as_float32(0.1)]
    assert Local.decode(bytes(local)) == local
