"""Low-level protobuf wire helpers shared by both codecs."""

from __future__ import annotations

__all__ = [
    "MASK64",
    "WireError",
    "read_varint",
    "skip_field",
    "varint_bytes",
    "write_varint",
]

MASK64 = (1 << 64) - 1


class WireError(Exception):
    """Malformed bytes, raised without a path; the caller adds where it happened."""


def write_varint(buf: bytearray, value: int) -> None:
    """Append ``value`` (0 <= value < 2**64) as a varint."""
    while value > 0x7F:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


def varint_bytes(value: int) -> bytes:
    """The varint encoding of ``value``, as :func:`write_varint` writes it (0 <= value < 2**64;
    a negative int must be masked with ``MASK64`` first, else ``ValueError``)."""
    buf = bytearray()
    write_varint(buf, value)
    return bytes(buf)


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a varint at ``pos``; at most 10 bytes and at most 64 bits, not past ``end``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = data[pos]
        pos += 1
        if shift == 63 and b > 1:
            if b & 0x80:
                raise WireError("varint longer than 10 bytes")
            raise WireError("varint longer than 64 bits")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def skip_field(data: bytes, pos: int, end: int, wire_type: int) -> int:
    """Skip one value of ``wire_type`` at ``pos``; returns the position after it."""
    if wire_type == 0:
        return read_varint(data, pos, end)[1]
    if wire_type == 1:
        pos += 8
    elif wire_type == 5:
        pos += 4
    elif wire_type == 2:
        length, pos = read_varint(data, pos, end)
        if length > end - pos:
            raise WireError(f"length {length} runs past the end of the input")
        pos += length
    else:
        raise WireError(f"invalid wire type {wire_type}")
    if pos > end:
        raise WireError("truncated value")
    return pos
