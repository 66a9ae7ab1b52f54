"""Long packed lists of integers written many elements at a time, for the pure-Python path.

The generated encoders write a packed list one element at a time, some thirty bytecodes for
each. For a long list of plain ints, :func:`write_varints` does the same with a few operations
on Python's big integers, whose loops run in C, for each block of elements:

1. ``struct`` packs the block into one big integer of fixed-width lanes, one value per lane:
   8 bytes when every value's varint has at most 5 bytes, else 16 (a varint has at most 10).
2. The lanes' 7-bit groups are moved apart, group ``k`` by ``k`` bits, so that each lands in a
   byte of its own: one shift for each bit of ``k``, over every lane at once.
3. A byte takes the continuation bit when a group above it in its lane is not zero. Adding
   0x7F to each group byte carries into its top bit when it is not zero; multiplying those
   marks by a run of 0x01 bytes counts, for every byte, the marks in a window above it.
4. The lanes become bytes again, and the zeros that pad each varint to its lane are deleted.
   A zero value has a lane of zeros: a block with a few writes them between the lanes around
   them; one with more splits its lanes at lane-long runs of zeros (the padding before such a
   run is shorter than a lane, so each run of zero lanes is found whole).

:func:`write_messages` writes a long list of small messages of numbers the same way, a field
at a time: each field's lanes, its tag where the value is not zero, and its size, added up
into each message's length, are laid out in rows, one per message, and the zeros deleted.

A block whose values are all below 128 is its own encoding. The big-integer steps cost about
the same for any value that fits a lane, and the loop costs more for larger values, so a list
whose values are mostly small is left to the loop: a sample of its values says which is less.

The bytes are those of the element-by-element loop, and so are the checks: any element that is
not exactly an ``int`` leaves the whole list to the loop, which says why, and a value out of the
kind's range raises :class:`~savestate.codec.runtime.Mismatch`.
"""

from __future__ import annotations

import struct
from operator import attrgetter, countOf
from typing import Any

from .runtime import Mismatch, varint_tables

__all__ = [
    "BLOCK", "MIN_LENGTH", "MessageField", "min_messages", "row_fields", "serves",
    "write_messages", "write_varints",
]

# Shorter lists are written by the generated loop: below this many elements, the fixed cost
# of a call (some 40k instructions: a few dozen operations on big integers, and the sample)
# is more than it saves.
MIN_LENGTH = 64
# Elements per block: enough to spread the fixed cost, few enough that the big integers stay
# small (a block in 16-byte lanes is a 4 KiB integer).
BLOCK = 256
# A block with at most this many zeros writes them between its lanes; with more, it finds
# them by splitting its lanes (a search of about 10 instructions a byte).
FEW_ZEROS = 16

_M64 = (1 << 64) - 1
_NARROW_MAX = (1 << 35) - 1  # the largest value of at most 5 varint bytes

# What writing one value costs, in units of 32 CPython 3.11 instructions (callgrind), by the
# bit length of its 64-bit pattern: by the generated loop (a varint byte more every 7 bits,
# and more again past 30 bits, where an int takes two digits); in 8-byte lanes; in 16-byte
# lanes. A list, and a block that would need 16-byte lanes, goes the cheaper way for a sample
# of its values (their bit lengths as bytes, translated to costs and added up in C).
_LOOP_COST = bytes(
    (23, 33, 60, 64, 104, 108, 128, 148, 169, 187)[max(bits - 1, 0) // 7] for bits in range(65)
) + bytes(191)
_NARROW_COST = 41
_WIDE_COST = 81
_SAMPLES = 64  # about this many values of a list, and every 8th of a block
_BLOCK_STEP = 8


def _bit_lengths(values: list[int], signed: bool) -> bytes:
    """The bit length of each value's 64-bit pattern (of the value itself, when unsigned), as
    bytes; ``TypeError`` or ``ValueError`` for what is not an int of 64 bits."""
    if signed:
        return bytes(map(int.bit_length, map(_M64.__and__, values)))
    return bytes(map(int.bit_length, values))


def serves(lo: int, hi: int) -> bool:
    """Whether :func:`write_varints` writes an integer kind of range ``lo..hi``: a full
    unsigned or signed range of 64 bits or fewer."""
    span = hi - lo + 1
    return span & (span - 1) == 0 and span <= 1 << 64 and lo in (0, -(span >> 1))


def write_varints(buf: bytearray, values: list[int], lo: int, hi: int) -> bool:
    """Append the varints of ``values``, the packed list of an integer kind that
    :func:`serves` (``lo..hi``; a negative value as its 64-bit two's complement), to ``buf``.

    Returns False, having written nothing, when the loop is the cheaper way, or when an element
    is not exactly an ``int``. Raises ``Mismatch`` for a value out of range.
    """
    signed = lo < 0
    try:
        sample = _bit_lengths(values[:: len(values) // _SAMPLES + 1], signed)
    except (TypeError, ValueError):  # not an int, or a huge one: the loop says so
        return False
    # Values below 128 are their own bytes, which is cheaper than the loop too.
    if max(sample) > 7 and sum(sample.translate(_LOOP_COST)) < _NARROW_COST * len(sample):
        return False
    if countOf(map(type, values), int) != len(values):
        return False
    for start in range(0, len(values), BLOCK):
        block = values[start : start + BLOCK]
        count = len(block)
        try:
            part = _bit_lengths(block[::_BLOCK_STEP], signed)
        except ValueError:  # a value of 256 bits and more
            raise Mismatch from None
        wide = max(part) > 35
        if wide and sum(part.translate(_LOOP_COST)) >= _WIDE_COST * len(part):
            # Most likely 16-byte lanes: packed so at once (any value fits them).
            _WIDE.write(buf, _pack(block, lo, hi, wide=True)[1], block)
            continue
        packed, lanes = _pack(block, lo, hi)
        above_small, above_narrow = _bounds_of(count)
        if not lanes & above_small:
            buf += bytes(block)
        elif not lanes & above_narrow:
            _NARROW.write(buf, lanes, block)
        elif wide:  # the loop is cheaper, as the sample says
            _write_each(buf, block)
        else:  # wide values that the sample missed
            _WIDE.write(buf, _widened(packed), block)
    return True


#: A field of a message that :func:`write_messages` writes: its attribute, its one-byte tag,
#: and its kind's range, or None for a bool.
MessageField = tuple[str, int, tuple[int, int] | None]


def min_messages(fields: tuple[MessageField, ...]) -> int:
    """The shortest list of messages of ``fields`` that :func:`write_messages` is given: below
    it, the fixed cost of each field's column (some 20k instructions) is more than it saves."""
    return 16 * (len(fields) + 2)


def row_fields(fields: tuple[MessageField, ...]) -> bool:
    """Whether :func:`write_messages` writes a message of ``fields``: at most 11 of them, so
    that a message's length (at most 11 bytes a field) takes one byte."""
    return 0 < len(fields) <= 11 and all(
        0 < tag < 0x80 and (span is None or serves(*span)) for _, tag, span in fields
    )


def write_messages(
    buf: bytearray, items: list[Any], cls: type, fields: tuple[MessageField, ...], tag: int
) -> bool:
    """Append the records of ``items``, a list of messages of class ``cls`` under the
    one-byte ``tag``, each message of ``fields`` that :func:`row_fields` accepts, to ``buf``.

    Each field is written as a column, :data:`BLOCK` messages at a time: its values in lanes (as
    :func:`write_varints` makes them), their tags where they are not zero, and their sizes,
    added up into each message's length. The rows of one block (a message's tag, length, and its
    fields' tags and lanes) are laid side by side, and every zero is deleted: a field that is
    zero is not written, and the rest of a lane is padding. Only a message with no field set
    has a zero of its own, its length: it is written apart.

    Returns False, having written nothing, when an item is not exactly a ``cls`` or keeps
    unknown fields, or a field's value is not exactly an ``int`` (a ``bool``); the loop then
    writes them, or says why not. Raises ``Mismatch`` for a value out of range.
    """
    count = len(items)
    if countOf(map(type, items), cls) != count or any(map(_UNKNOWN, items)):
        return False
    columns = []
    for attr, field_tag, span in fields:
        values = list(map(attrgetter(attr), items))
        if countOf(map(type, values), int if span else bool) != count:
            return False
        columns.append((values, field_tag, span))
    header = bytes((tag, 0))
    for start in range(0, count, BLOCK):
        _write_rows(buf, [(v[start : start + BLOCK], t, s) for v, t, s in columns], header)
    return True


def _write_rows(
    buf: bytearray, columns: list[tuple[list[int], int, tuple[int, int] | None]], header: bytes
) -> None:
    """Append the records of one block of messages, given as columns of field values."""
    count = len(columns[0][0])
    laid: list[tuple[int, int, bytes]] = []  # each field's tag, lane width and lanes
    lengths = 0
    for values, tag, span in columns:
        if span is None:  # bools: 1 or 0 in a lane of 8 bytes
            lanes, width = struct.pack(f"<{count}Q", *values), 8
            sizes = bytes(values).translate(_BOOL_SIZES)
        else:
            lo, hi = span
            try:
                sampled = _bit_lengths(values[::_BLOCK_STEP], lo < 0)
            except ValueError:  # a value of 256 bits and more
                raise Mismatch from None
            if max(sampled) > 35:  # most likely 16-byte lanes: packed so at once
                number = _pack(values, lo, hi, wide=True)[1]
                lanes, width = _WIDE.padded(number, count), 16
            else:
                packed, number = _pack(values, lo, hi)
                width = 8
                if not number:
                    continue  # all zero: this field is in no message of the block
                above_small, above_narrow = _bounds_of(count)
                if not number & above_small:
                    lanes = packed  # each value its own varint
                elif not number & above_narrow:
                    lanes = _NARROW.padded(number, count)
                else:
                    number = _widened(packed)
                    lanes, width = _WIDE.padded(number, count), 16
            # (Without a negative value, each value's own bit length is its pattern's.)
            negative = lo < 0 and number & _each_lane(1 << 63, count, width)
            sizes = _bit_lengths(values, bool(negative)).translate(_SIZES)
        lengths += int.from_bytes(sizes, "little")
        laid.append((tag, width, lanes))
    # A row: 8 bytes of which the last three are the message's tag and length and the first
    # field's tag, then each field's lane, whose last byte (past any varint) holds the next
    # field's tag. Lanes are copied 8 bytes at a time; then every zero is deleted.
    stride = 8 + sum(width for _, width, _ in laid)
    rows = bytearray(stride * count)
    length_bytes = lengths.to_bytes(count, "little")  # at most 121 each: no carry between
    with memoryview(rows) as view, view.cast("Q") as units:
        at = 1
        for _, width, lanes in laid:
            with memoryview(lanes) as lane_view, lane_view.cast("Q") as lane_units:
                for unit in range(width // 8):
                    units[at + unit :: stride // 8] = lane_units[unit :: width // 8]
            at += width // 8
    rows[5::stride] = header[:1] * count
    rows[6::stride] = length_bytes
    at = 7
    for tag, width, lanes in laid:
        rows[at::stride] = lanes[0::width].translate(_tag_where_set(tag))
        at += width
    if 0 not in length_bytes:
        buf += rows.translate(None, b"\x00")
        return
    done = 0
    for _ in range(length_bytes.count(0)):  # messages with no field set: tag and length 0
        empty = length_bytes.index(0, done)
        buf += rows[stride * done : stride * empty].translate(None, b"\x00")
        buf += header
        done = empty + 1
    buf += rows[stride * done :].translate(None, b"\x00")


# A field's size in its message (its tag and varint, or nothing for zero), by the bit length of
# its value's 64-bit pattern; a bool's, by its byte.
_SIZES = bytes(0 if bits == 0 else 1 + (bits + 6) // 7 for bits in range(65)) + bytes(191)
_BOOL_SIZES = bytes((0, 2)) + bytes(254)
_UNKNOWN = attrgetter("_pb_unknown")
_tags: dict[int, bytes] = {}


def _tag_where_set(tag: int) -> bytes:
    """A table for ``bytes.translate`` that makes a lane's first byte its field's tag, or 0 for
    a lane of zero (whose first byte is the only zero first byte)."""
    table = _tags.get(tag)
    if table is None:
        table = _tags[tag] = bytes((0,)) + bytes((tag,)) * 255
    return table


def _pack(block: list[int], lo: int, hi: int, wide: bool = False) -> tuple[bytes, int]:
    """``block`` (of ints) packed in 8-byte lanes (``wide``: 16-byte lanes, each value then 8
    zeros), as bytes and as one integer (a negative value as its 64-bit pattern); ``Mismatch``
    for a value out of ``lo..hi``."""
    code = "q" if lo < 0 else "Q"
    try:
        if wide:
            packed = struct.pack("<" + f"{code}8x" * len(block), *block)
        else:
            packed = struct.pack(f"<{len(block)}{code}", *block)
    except struct.error:  # out of the 64-bit range
        raise Mismatch from None
    lanes = int.from_bytes(packed, "little")
    if lo < 0:
        if lo != -1 << 63 and (min(block) < lo or max(block) > hi):
            raise Mismatch
    elif hi != _M64 and lanes & _each_lane(_M64 ^ hi, len(block), 16 if wide else 8):
        raise Mismatch
    return packed, lanes


def _widened(packed: bytes) -> int:
    """The 8-byte lanes of ``packed`` in 16-byte lanes: each value's 8 bytes, then 8 zeros."""
    wide = bytearray(2 * len(packed))
    memoryview(wide).cast("Q")[::2] = memoryview(packed).cast("Q")
    return int.from_bytes(wide, "little")


def _write_each(buf: bytearray, block: list[int]) -> None:
    """Append the varints of ``block`` (checked already) one by one, as the loop does."""
    middle, last = varint_tables()
    append = buf.append
    for value in block:
        if value < 0x80:
            if value >= 0:
                append(value)
                continue
            value &= _M64
        while value > 0x3FFF:
            buf += middle[value & 0x3FFF]
            value >>= 14
        buf += last[value]


def _lanes_for(count: int) -> int:
    """How many lanes the constants for a block of ``count`` lanes have: the next power of
    two, so that few are kept. A constant longer than the block is harmless where it is used:
    the block's lanes past its end are zero, and each step leaves zero lanes zero."""
    return 1 << (count - 1).bit_length()


_kept: dict[tuple[int, int, int], int] = {}


def _each_lane(value: int, count: int, width: int = 8) -> int:
    """``value`` in each of the ``width``-byte lanes of a block of ``count``."""
    key = (value, width, _lanes_for(count))
    constant = _kept.get(key)
    if constant is None:
        lane = value.to_bytes(width, "little")
        constant = _kept[key] = int.from_bytes(lane * key[2], "little")
    return constant


_bounds: dict[int, tuple[int, int]] = {}


def _bounds_of(count: int) -> tuple[int, int]:
    """For 8-byte lanes of a block of ``count``: the bits of values of 128 and up, and of
    values past :data:`_NARROW_MAX`."""
    size = 1 << (count - 1).bit_length()
    kept = _bounds.get(size)
    if kept is None:
        kept = _bounds[size] = (_each_lane(_M64 ^ 0x7F, size), _each_lane(_M64 ^ _NARROW_MAX, size))
    return kept


def _run(pattern: bytes, groups: int, width: int) -> int:
    """A lane with ``pattern`` over its ``groups`` group bytes, zero after."""
    return int.from_bytes(pattern + bytes(width - groups), "little")


class _Layout:
    """Lanes of ``width`` bytes holding varints of at most ``groups`` bytes."""

    __slots__ = (
        "below",
        "carry",
        "flags",
        "groups",
        "kept",
        "low7",
        "marks",
        "steps",
        "width",
        "window",
        "zero_lane",
    )

    def __init__(self, width: int, groups: int) -> None:
        self.width = width
        self.groups = groups
        # The group bytes counted above each byte. A window may reach one byte into the next
        # lane (whose first byte is never counted) but no further; when that falls short of
        # the lane's last group, byte 0 counts that group apart.
        self.window = min(groups - 1, width - groups + 2)
        self.steps = self.spread_steps()
        self.low7 = _run(b"\x7f" * groups, groups, width)  # 0x7F in each group byte
        self.marks = _run(b"\x00" + b"\x01" * (groups - 1), groups, width)  # not the first
        self.flags = _run(b"\x80" * (groups - 1) + b"\x00", groups, width)  # not the last
        self.below = (1 << 7 * groups) - 1  # the largest value a lane holds
        self.carry = 1 << 7 * groups  # what adding ``below`` sets in a lane that is not zero
        self.zero_lane = bytes(width)
        self.kept: dict[int, tuple[int, ...]] = {}

    def spread_steps(self) -> tuple[tuple[int, int], ...]:
        """(shift, mask) pairs that move group ``k`` of a lane by ``k`` bits, largest first."""
        at = [7 * k for k in range(self.groups)]
        steps = []
        shift = 1 << (self.groups - 1).bit_length() - 1
        while shift:
            mask = 0
            for k in range(self.groups):
                if k & shift:
                    mask |= 0x7F << at[k]
                    at[k] += shift
            steps.append((shift, mask))
            shift >>= 1
        assert at == [8 * k for k in range(self.groups)]
        return tuple(steps)

    def constants(self, count: int) -> tuple[int, ...]:
        """The masks of the spreading steps, then ``low7``, ``marks``, ``flags``, the first
        byte of each lane, ``below`` and ``carry``, in each lane of a block of ``count``."""
        size = 1 << (count - 1).bit_length()
        kept = self.kept.get(size)
        if kept is None:
            patterns = (*(mask for _, mask in self.steps), self.low7, self.marks, self.flags,
                        1, self.below, self.carry)
            kept = self.kept[size] = tuple(_each_lane(p, size, self.width) for p in patterns)
        return kept

    def padded(self, lanes: int, count: int) -> bytes:
        """The varints of the ``count`` values in ``lanes``, each padded with zeros to the
        width of its lane."""
        *spread, low7, marks, flags, first, _, _ = self.constants(count)
        for (shift, _), mask in zip(self.steps, spread, strict=True):
            moved = lanes & mask
            lanes = (lanes ^ moved) | (moved << shift)
        window = self.window
        marks = (lanes + low7) >> 7 & marks  # 1 in each group byte (not the first) not zero
        counts = marks * _RUNS[window] >> 8 * window  # byte j: the marks of j+1..j+window
        if window < self.groups - 1:
            counts += marks >> 8 * (self.groups - 1) & first
        lanes |= (counts + low7) & flags
        return lanes.to_bytes(self.width * count, "little")

    def write(self, buf: bytearray, lanes: int, block: list[int]) -> None:
        """Append the varints of ``block``, packed in ``lanes``, to ``buf``."""
        count = len(block)
        width = self.width
        *_, below, carry = self.constants(count)
        # The carry of the block's own lanes only (a longer constant would count lanes past it).
        carry >>= 8 * width * (_lanes_for(count) - count)
        padded = self.padded(lanes, count)
        if (lanes + below) & carry == carry:  # no value is zero
            buf += padded.translate(None, b"\x00")
            return
        zeros = block.count(0)
        if zeros > FEW_ZEROS:
            runs = padded.split(self.zero_lane)
            buf += b"\x00".join([run.translate(None, b"\x00") for run in runs])
            return
        done = 0
        for _ in range(zeros):
            at = block.index(0, done)
            buf += padded[width * done : width * at].translate(None, b"\x00")
            buf.append(0)
            done = at + 1
        buf += padded[width * done :].translate(None, b"\x00")


_RUNS = {n: int.from_bytes(b"\x01" * n, "little") for n in (4, 8)}
_NARROW = _Layout(width=8, groups=5)
_WIDE = _Layout(width=16, groups=10)
