"""Helpers the generated codecs call on their slow paths (multi-byte varints, unknown fields).

Generated code raises :class:`Mismatch` (or lets a builtin exception escape) whenever anything is
off; the codec front end then re-runs the interpreting codec to report a precise error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..model.plan import (
    Absent,
    Container,
    Form,
    MessagePlan,
    MessageValue,
    messages_in,
    plan_of,
    references,
)
from ..model.registry import info_of
from . import cache
from .duration import duration_from_parts, duration_parts
from .wire import MASK64, WireError, skip_field

__all__ = ["Mismatch"]


class Mismatch(Exception):
    """The fast path met something it does not accept; the interpreter will say what."""


def write_varint(buf: bytearray, value: int) -> None:
    """Append a varint of ``value`` (>= 128 on the call sites; 0 <= value < 2**64)."""
    while value > 0x7F:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


_tables: tuple[list[bytes], list[bytes]] | None = None


def varint_tables() -> tuple[list[bytes], list[bytes]]:
    """Varint bytes of every 14-bit value: as a middle chunk (both bytes continued) and as the
    last chunk (one or two bytes, the last not continued). Made once, on first need: loaded
    from the code cache, which costs a quarter of building them (the C helpers build them
    faster still: :func:`savestate.codec.accel.varint_tables`)."""
    global _tables
    if _tables is None:
        kept = cache.load("tables", b"varint 14-bit chunks")
        if _valid_tables(kept):
            _tables = (kept[0], kept[1])
        else:
            middle = [bytes(((i & 127) | 128, (i >> 7) | 128)) for i in range(16384)]
            last = [
                bytes((i,)) if i < 128 else bytes(((i & 127) | 128, i >> 7))
                for i in range(16384)
            ]
            cache.store("tables", b"varint 14-bit chunks", (middle, last))
            _tables = (middle, last)
    return _tables


_shifted: tuple[list[int], ...] | None = None


def shifted_bytes() -> tuple[list[int], ...]:
    """For ``i`` from 1 to 4, the value of every byte shifted left by ``7 * i`` bits (index 0
    holds no table), as the generated decoders add the bytes of a long varint: an index into a
    list gives an int that exists already, where a shift makes a new one. Each is under 2**30,
    a one-digit int."""
    global _shifted
    if _shifted is None:
        steps = [1 << (7 * i) for i in (1, 2, 3, 4)]
        _shifted = ([], *(list(range(0, 256 * step, step)) for step in steps))
    return _shifted


def _valid_tables(kept: Any) -> bool:
    return (
        type(kept) is tuple and len(kept) == 2
        and all(type(t) is list and len(t) == 16384 for t in kept)
    )


def read_varint_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a varint whose first byte is at ``pos`` (at most 10 bytes and 64 bits, not past
    ``end``). The caller has handled one-byte varints already."""
    result = 0
    shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        if b < 0x80:
            result |= b << shift
            if shift == 63 and b > 1:
                raise Mismatch
            return result, pos
        result |= (b & 0x7F) << shift
        shift += 7
        if shift > 63:
            raise Mismatch
    raise Mismatch


# What decoding a message costs in memory, by what it builds: an object (its header, the
# collector's header, a slot per field and one for unknown fields), a tuple, a map entry, and
# for each container field a list or dict, made even when the field is absent. Numbers,
# strings and bytes are left out: each costs at most a small multiple of its own record.
_OBJECT = 32
_SLOT = 8
_LIST = 56
_DICT = 64
_ENTRY = 48
_costs: dict[int, int] = {}
_costs_with_empties: dict[int, int] = {}


def built_cost(m: MessagePlan) -> int:
    """The memory, in bytes, that building one value of message ``m`` costs, by the measure
    the decode's ``max_memory`` budget counts (the same in both codecs)."""
    cost = _costs.get(id(m))
    if cost is not None:
        return cost
    form = m.form
    if form is Form.STRUCT:
        cost = _OBJECT + _SLOT * (len(m.fields) + 1)
    elif form is Form.TUPLE:
        cost = _OBJECT + _SLOT * len(m.fields)
    elif form is Form.ENTRY:
        cost = _OBJECT + _SLOT * 2 + _ENTRY
    else:  # ONEOF, WRAPPER (they build their field's value), DURATION, FOREIGN
        cost = 0
    for f in m.fields:
        if f.container is Container.DICT:
            cost += _DICT
        elif f.container is not Container.NONE:
            cost += _LIST
        cost += (_OBJECT + 2 * _SLOT) * len(f.unwrap)  # a transparent class around it
    _costs[id(m)] = cost
    return cost


def _cost_with_empties(m: MessagePlan) -> int:
    """What one value of ``m`` costs with the empty messages its absent fields decode to (each
    built by its decoder, so charged, with no bytes of its own)."""
    cost = _costs_with_empties.get(id(m))
    if cost is None:
        cost = _costs_with_empties[id(m)] = built_cost(m) + sum(
            _cost_with_empties(f.value.message)
            for f in m.fields
            if f.absent is Absent.EMPTY_MESSAGE and isinstance(f.value, MessageValue)
        )
    return cost


def record_charges(classes: list[type], earlier: Callable[[type], int]) -> dict[type, int]:
    """For each class of ``classes`` (compiled together), the most its decode charges the memory
    budget for any one message record: the largest :func:`_cost_with_empties` of the messages it
    can meet. ``earlier`` gives the figure of a class compiled before (which reaches none of
    ``classes``).

    Every message but the outermost has a record of its own, whose tag and length take two
    bytes at least, so a decode of ``n`` bytes is charged ``(n // 2 + 1)`` times this at most.
    """
    own: dict[type, int] = {}
    refs: dict[type, list[type]] = {}
    for cls in classes:
        plan = plan_of(cls)
        own[cls] = max(_cost_with_empties(m) for m in messages_in(plan))
        # The declared classes it calls, as the compiler's closure follows them.
        refs[cls] = [r for r in references(plan) if info_of(r) is not None]
    charges: dict[type, int] = {}
    for cls in classes:
        largest = 0
        seen = {cls}
        todo = [cls]
        while todo:
            c = todo.pop()
            if c not in own:
                largest = max(largest, earlier(c))
                continue
            largest = max(largest, own[c])
            for r in refs[c]:
                if r not in seen:
                    seen.add(r)
                    todo.append(r)
        charges[cls] = largest
    return charges


def skip_unknown(data: bytes, pos: int, end: int, tag: int, known: frozenset[int]) -> int:
    """Skip the value of an unknown field after its tag; a known number (with the wrong wire
    type), number 0 or an invalid wire type is a mismatch."""
    number = tag >> 3
    wire = tag & 7
    if number in known or number == 0 or number > 0x1FFFFFFF or wire in (3, 4, 6, 7):
        raise Mismatch
    try:
        return skip_field(data, pos, end, wire)
    except WireError:
        raise Mismatch from None


def as_int(value: Any) -> int:
    """An int subclass (an IntEnum member, say) as a plain int; anything else mismatches."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(value)
        except Exception:
            raise Mismatch from None
    raise Mismatch


def as_float(value: Any) -> float:
    """``value`` as a float for a float or double field: an int or a float, not a bool.
    Raises ``Mismatch`` otherwise, or when the int is too large for a float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except Exception:
            raise Mismatch from None
    raise Mismatch


def as_bytes(value: Any) -> bytes:
    """``value`` as bytes for a bytes field: a copy of a bytes, bytearray or memoryview.
    Raises ``Mismatch`` for any other type."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise Mismatch


def encode_duration(value: Any, buf: bytearray) -> None:
    """Append the body of a ``google.protobuf.Duration`` for the ``timedelta`` ``value`` to
    ``buf``: seconds (field 1) and nanos (field 2), each left out when zero. Raises
    ``EncodeError`` (without a field path) for a value that is not a timedelta or is out of
    Duration's range."""
    seconds, nanos = duration_parts(value, [])
    if seconds:
        buf.append(0x08)
        write_varint(buf, seconds & MASK64)
    if nanos:
        buf.append(0x10)
        write_varint(buf, nanos & MASK64)


def decode_duration(
    data: bytes, pos: int, end: int, depth: int, more: list[int] | None = None
) -> Any:
    """A Duration from ``data[pos:end]`` and the records ``more`` merged into it (their
    bounds, the last record's first: ``[e_n, s_n, ..., e_2, s_2]``, used up)."""
    if depth <= 0:
        raise Mismatch
    seconds = nanos = 0
    while True:
        while pos < end:
            tag = data[pos]
            if tag == 0x08:
                seconds, pos = read_varint_at(data, pos + 1, end)
            elif tag == 0x10:
                nanos, pos = read_varint_at(data, pos + 1, end)
            else:  # a timedelta keeps no unknown fields: the interpreter says so
                raise Mismatch
        if pos != end:
            raise Mismatch
        if not more:
            break
        pos = more.pop()
        end = more.pop()
    if seconds >> 63:
        seconds -= 1 << 64
    nanos &= MASK64
    if nanos >> 63:
        nanos -= 1 << 64
    if not -(1 << 31) <= nanos < (1 << 31):
        raise Mismatch
    return duration_from_parts(seconds, nanos)


pack_f = struct.Struct("<f").pack
pack_d = struct.Struct("<d").pack
unpack_f = struct.Struct("<f").unpack_from
unpack_d = struct.Struct("<d").unpack_from
pack_u32 = struct.Struct("<I").pack
pack_i32 = struct.Struct("<i").pack
pack_u64 = struct.Struct("<Q").pack
pack_i64 = struct.Struct("<q").pack
unpack_u32 = struct.Struct("<I").unpack_from
unpack_i32 = struct.Struct("<i").unpack_from
unpack_u64 = struct.Struct("<Q").unpack_from
unpack_i64 = struct.Struct("<q").unpack_from
