"""A schema-less view of protobuf bytes, like ``protoc --decode_raw``.

:func:`decode_raw` splits bytes into records (field number, wire type, value) and guesses what a
length-delimited value is: a nested message when its bytes parse completely as records, else a
string when they are printable UTF-8, else bytes. Any input gives either records or a
:class:`~savestate.errors.DecodeError` naming the byte offset: never another exception, and the
nesting guessed is bounded by ``max_depth``.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import DecodeError
from .wire import WireError, read_varint

__all__ = ["RawField", "decode_raw", "format_raw", "raw_to_json"]

WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "len", 3: "group", 5: "fixed32"}


class RawField:
    """One record: its field number, wire type, and value. ``value`` is an int (varint,
    fixed32, fixed64) or, for a length-delimited record, the payload's bytes; ``message`` holds
    the payload's records when it parses as a message, and ``text`` its text when it is
    printable UTF-8. A group (wire type 3, up to its end-group tag) has its records in
    ``message`` and its body's bytes as ``value``.

    A record keeps only offsets into the input it was read from (one buffer shared by every
    record, at any depth), so the memory of a decode is linear in the input with a small
    constant; payload bytes and text are made when asked for.
    """

    __slots__ = ("_data", "_end", "_start", "message", "number", "wire")

    def __init__(
        self,
        number: int,
        wire: int,
        data: bytes,
        start: int,
        end: int,
        message: tuple[RawField, ...] | None = None,
    ) -> None:
        self.number = number
        self.wire = wire
        self._data = data
        self._start = start
        self._end = end
        self.message = message

    @property
    def value(self) -> int | bytes:
        """The record's value: the unsigned int of a varint, fixed64 or fixed32 record (no
        zigzag or sign applied), or a length-delimited record's payload bytes (a new copy each
        time)."""
        if self.wire == 0:
            return read_varint(self._data, self._start, self._end)[0]
        if self.wire == 1:
            return int(struct.unpack_from("<Q", self._data, self._start)[0])
        if self.wire == 5:
            return int(struct.unpack_from("<I", self._data, self._start)[0])
        return self._data[self._start : self._end]

    @property
    def size(self) -> int:
        """The length of a length-delimited payload (0 for other records)."""
        return self._end - self._start if self.wire == 2 else 0

    @property
    def text(self) -> str | None:
        """A length-delimited payload's text when it is printable UTF-8, else None (always None
        for other wire types)."""
        if self.wire != 2:
            return None
        return _text(memoryview(self._data)[self._start : self._end])

    def __repr__(self) -> str:
        return f"RawField({self.number}, {WIRE_NAMES[self.wire]}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawField):
            return NotImplemented
        return (self.number, self.wire, self.value, self.message) == (
            other.number, other.wire, other.value, other.message
        )

    __hash__ = None  # type: ignore[assignment]


def decode_raw(data: bytes | bytearray | memoryview, max_depth: int = 100) -> list[RawField]:
    """The records of ``data`` (raises ``DecodeError`` for bytes that are not records)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    raw = data if isinstance(data, bytes) else bytes(data)
    try:
        return _records(raw, 0, len(raw), max_depth, strict=True) or []
    except _NotRecords as exc:  # pragma: no cover - strict mode raises DecodeError instead
        raise DecodeError(str(exc)) from None


class _NotRecords(Exception):
    pass


def _records(
    data: bytes, pos: int, end: int, depth: int, strict: bool
) -> list[RawField] | None:
    """Parse records; in non-strict mode (a guess at a nested message) return None instead of
    raising when the bytes are not records."""

    def fail(reason: str, at: int) -> NoReturn:
        if strict:
            raise DecodeError(f"at byte {at}: {reason}")
        raise _NotRecords(reason)

    try:
        return _parse(data, pos, end, depth, fail, 0)[0]
    except _NotRecords:
        if strict:  # pragma: no cover
            raise
        return None


def _parse(
    data: bytes, pos: int, end: int, depth: int, fail: Callable[[str, int], NoReturn], group: int
) -> tuple[list[RawField], int, int]:
    """The records from ``pos``, up to ``end`` or, inside group ``group`` (non-zero), up to its
    end-group tag: the records, where they end, and the position after that tag."""
    out: list[RawField] = []
    while pos < end:
        start = pos
        try:
            tag, pos = read_varint(data, pos, end)
        except WireError as exc:
            fail(f"bad tag: {exc}", start)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > (1 << 29) - 1:
            fail(f"invalid field number {number}", start)
        if wire == 0:
            value_start = pos
            try:
                pos = read_varint(data, pos, end)[1]
            except WireError as exc:
                fail(f"field {number}: {exc}", pos)
            out.append(RawField(number, wire, data, value_start, pos))
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if end - pos < size:
                fail(f"field {number}: truncated fixed-width value", pos)
            out.append(RawField(number, wire, data, pos, pos + size))
            pos += size
        elif wire == 2:
            try:
                length, pos = read_varint(data, pos, end)
            except WireError as exc:
                fail(f"field {number}: bad length: {exc}", pos)
            if length > end - pos:
                fail(f"field {number}: length {length} runs past the end", pos)
            nested = None
            if length and depth > 1:
                found = _records(data, pos, pos + length, depth - 1, strict=False)
                nested = tuple(found) if found else None
            out.append(RawField(number, wire, data, pos, pos + length, nested))
            pos += length
        elif wire == 3:  # a group (proto2): shown as a message, as protoc shows it
            if depth <= 1:
                fail(f"field {number}: groups nested deeper than the limit", start)
            body = pos
            fields, body_end, pos = _parse(data, pos, end, depth - 1, fail, number)
            out.append(RawField(number, wire, data, body, body_end, tuple(fields)))
        elif wire == 4 and number == group:
            return out, start, pos
        elif wire == 4:
            fail(f"field {number}: end of a group that was not started", start)
        else:
            fail(f"field {number}: invalid wire type {wire}", start)
    if group:
        fail(f"field {group}: group not ended", pos)
    return out, pos, pos


def _text(payload: bytes | memoryview) -> str | None:
    try:
        text = str(payload, "utf-8")
    except UnicodeDecodeError:
        return None
    if all(c.isprintable() or c in "\n\t\r" for c in text):
        return text
    return None


def _guess_message(f: RawField) -> bool:
    """A non-empty value that parses as records is shown as a message, as ``protoc
    --decode_raw`` shows it (so ``"hi"`` shows as ``{13: 105}``, and an ``Any`` holding only a
    type URL as a message, not as a string)."""
    return f.message is not None


def format_raw(fields: list[RawField] | tuple[RawField, ...], indent: str = "") -> str:
    """Text in the style of ``protoc --decode_raw``."""
    lines: list[str] = []
    for f in fields:
        if f.wire not in (2, 3):
            value = f.value
            assert isinstance(value, int)
            if f.wire == 0:
                lines.append(f"{indent}{f.number}: {value}")
            else:
                width = 8 if f.wire == 5 else 16
                lines.append(f"{indent}{f.number}: 0x{value:0{width}x}")
        elif _guess_message(f):
            assert f.message is not None
            lines.append(f"{indent}{f.number} {{")
            lines.append(format_raw(f.message, indent + "  ").rstrip("\n"))
            lines.append(f"{indent}}}")
        else:
            assert isinstance(f.value, bytes)
            lines.append(f"{indent}{f.number}: {_quote(f.value)}")
    return "\n".join(line for line in lines if line) + ("\n" if lines else "")


# The escapes protoc's C-style quoting uses; any other byte outside printable ASCII is octal.
_ESCAPES = {ord('"'): '\\"', ord("'"): "\\'", ord("\\"): "\\\\", ord("\n"): "\\n",
            ord("\r"): "\\r", ord("\t"): "\\t"}


def _quote(data: bytes) -> str:
    out = []
    for b in data:
        escape = _ESCAPES.get(b)
        if escape is not None:
            out.append(escape)
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def raw_to_json(fields: list[RawField] | tuple[RawField, ...]) -> list[dict[str, Any]]:
    """The records as JSON: ``{"field": n, "wire": "varint", "value": ...}`` each. A
    length-delimited value that parses as records is ``"message"`` (those records), as
    ``format_raw`` shows it; any other is its ``"value"`` in base64, with a ``"text"`` guess.

    A message's bytes are not given beside its records: every level would repeat the bytes of
    all the levels inside it, so that deep input would print depth times its size."""
    out: list[dict[str, Any]] = []
    for f in fields:
        item: dict[str, Any] = {"field": f.number, "wire": WIRE_NAMES[f.wire]}
        if _guess_message(f):
            assert f.message is not None
            item["message"] = raw_to_json(f.message)
        else:
            value = f.value
            if isinstance(value, bytes):
                item["value"] = base64.b64encode(value).decode("ascii")
                text = f.text
                if text is not None:
                    item["text"] = text
            else:
                item["value"] = value
        out.append(item)
    return out
