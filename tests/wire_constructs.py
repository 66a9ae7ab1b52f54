"""Saved state made of the Rust derive's remaining constructs: transparent newtypes and the
nested containers it wraps in ``{field1 = 1}`` messages (see test_wire_constructs.py)."""

from __future__ import annotations

from savestate import Oneof, Protobuf, field, savedstate, u8, u32, u64

PACKAGE = "wire.constructs"


class VmTime(Protobuf, package=PACKAGE, transparent=True):
    """``#[mesh(transparent)] struct VmTime(u64)``: written as its u64."""

    ticks: u64 = field(1)


class Regs(Protobuf, package=PACKAGE, transparent=True):
    """A transparent class holding a list: written as the packed list."""

    values: list[u32] = field(1)


class Item(Protobuf, package=PACKAGE):
    id: u32 = field(1)


class Event(Oneof, package=PACKAGE):
    """Transparent variants holding a sequence are wrapped as ``{1: value}``."""


class Maybe(Event, variant=1, transparent=True):
    value: u32 | None = field(1)


class Many(Event, variant=2, transparent=True):
    values: list[u32] = field(1)


class At(Event, variant=3, transparent=True):
    time: VmTime = field(1)


@savedstate
class Extras(Protobuf, package=PACKAGE):
    opt_vec: list[u32] | None = field(1)
    vec_opt: list[u32 | None] = field(2)
    opt_arr: bytes | None = field(3, length=4)
    times: list[VmTime] = field(4)
    vec_vec: list[list[u32]] = field(5)
    vec_map: list[dict[u32, u32]] = field(6)
    map_vec: dict[u32, list[u32]] = field(7)
    map_opt: dict[u32, u32 | None] = field(8)
    opt_pair: tuple[u32, u32] | None = field(9)
    opt_bytes: list[u8] | None = field(10)
    time: VmTime = field(11)
    opt_time: VmTime | None = field(12)
    time_map: dict[str, VmTime] = field(13)
    regs: Regs = field(14)
    regs_list: list[Regs] = field(15)
    opt_items: list[Item] | None = field(16)
    items_opt: list[Item | None] = field(17)
    opt_fixed: list[u32] | None = field(18, length=2)
    vec_strs: list[list[str]] = field(19)


@savedstate
class Holder(Protobuf, package=PACKAGE):
    event: Event = field(1)
