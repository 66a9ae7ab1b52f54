"""``SavedStateBlob``: an opaque encoded saved state, wire-compatible with ``google.protobuf.Any``.

A blob holds a type URL (``type.googleapis.com/<package>.<Name>``) and the encoded bytes of a
saved-state root. It is an ordinary message class, so it can be a field anywhere: in a list, a
tuple, behind ``| None``, or inside another blob.

A large blob is moved without copies of its value where that can be avoided:
``encoded_blob_parts`` gives the encoding of a blob around an encoded state that is still in
parts, and ``decode_blob`` decodes one from any buffer, copying its value once (into the
``bytes`` the caller gets) and nothing else of size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from ..codec.wire import WireError, read_varint, skip_field, varint_bytes
from ..declare import Protobuf, field
from ..errors import DecodeError, SchemaError
from ..limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE
from ..model.registry import TYPE_URL_PREFIX, full_name, info_of, is_any

__all__ = [
    "TYPE_URL_PREFIX",
    "VALUE_TAG",
    "BlobTypeMismatch",
    "SavedStateBlob",
    "blob_from_parts",
    "decode_blob",
    "encoded_blob_parts",
    "type_url_of",
]

_R = TypeVar("_R")


def _is_blob_root(cls: Any) -> bool:
    """Roots (``@savedstate``) and the blob class itself (a blob of a blob) have type URLs."""
    info = info_of(cls)
    return info is not None and info.kind == "message" and (info.root or is_any(cls))


def type_url_of(cls: type) -> str:
    """The type URL of a saved-state root: ``type.googleapis.com/<package>.<Name>``."""
    if not _is_blob_root(cls):
        raise SchemaError(
            f"{getattr(cls, '__name__', cls)!r} is not a saved-state root; declare it with "
            "@savedstate(package=...) to give it a type URL"
        )
    return f"{TYPE_URL_PREFIX}{full_name(cls)}"


def _same_url(expected: str, actual: str) -> bool:
    # Like the reference, accept an ``https://`` prefix on the stored URL.
    return actual == expected or actual == "https://" + expected


class BlobTypeMismatch(DecodeError):
    """``SavedStateBlob.parse`` was asked for a type other than the one the blob holds."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"protobuf type mismatch, expected {expected}, got {actual}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.expected, self.actual))


class SavedStateBlob(Protobuf, package="google.protobuf", name="Any"):
    """An opaque saved state: a root's type URL and encoded bytes (``google.protobuf.Any``).

    ``SavedStateBlob.new(state)`` encodes a root; ``blob.parse(T)`` checks the type URL, then
    decodes. ``bytes(blob)`` is the encoding of the ``Any`` message itself.
    """

    __savestate_wellknown__: ClassVar[str] = "google.protobuf.Any"
    __savestate_import__: ClassVar[str] = "google/protobuf/any.proto"

    type_url: str = field(1, default="")
    value: bytes = field(2, default=b"")

    @classmethod
    def new(cls, state: object) -> SavedStateBlob:
        """Encode a saved-state root (raises ``SchemaError`` for a non-root, ``EncodeError``).

        ``state`` is typed ``object`` because a ``@savedstate`` class declared without the
        ``Protobuf`` base is not seen as one by type checkers; the check happens here.
        """
        url = type_url_of(type(state))
        assert isinstance(state, Protobuf)
        return cls(type_url=url, value=state.encode())

    def parse(
        self, cls: type[_R], *, max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> _R:
        """Decode the blob as ``cls`` (a root): the type URL is checked first.

        Raises ``BlobTypeMismatch`` (a ``DecodeError``) naming both URLs, or the ``DecodeError``
        of the payload. Each parse has its own ``max_depth`` and ``max_size`` (see
        ``Protobuf.decode``): the blob's payload was not decoded with its container, and a blob
        inside the result is decoded only when code asks for it.
        """
        expected = type_url_of(cls)
        if not _same_url(expected, self.type_url):
            raise BlobTypeMismatch(expected, self.type_url)
        result: _R = cls.decode(  # type: ignore[attr-defined]
            self.value, max_depth=max_depth, max_size=max_size
        )
        return result

    def is_a(self, cls: type) -> bool:
        """Whether the blob holds a ``cls`` (by type URL)."""
        return _same_url(type_url_of(cls), self.type_url)

    @property
    def type_name(self) -> str:
        """The full proto name of the held type (the type URL without its prefix)."""
        return self.type_url.rpartition("/")[2]

    def __repr__(self) -> str:
        return f"SavedStateBlob(type_url={self.type_url!r}, value=<{len(self.value)} bytes>)"


# The tag of a blob's value: field 2, length-delimited (``google.protobuf.Any.value``).
VALUE_TAG = 0x12

Buffer = bytes | bytearray | memoryview


def encoded_blob_parts(
    type_url: str, value_parts: Sequence[bytes | bytearray]
) -> list[bytes | bytearray]:
    """The encoding of ``SavedStateBlob(type_url=type_url, value=b"".join(value_parts))``, in
    parts: a small first part (the type URL, then the value's tag and length), then
    ``value_parts`` themselves, uncopied. The bytes are those ``SavedStateBlob.encode`` gives.
    """
    head = bytearray(SavedStateBlob(type_url=type_url).encode())
    size = sum(len(part) for part in value_parts)
    if size:  # an empty value is not written (proto3 implicit presence)
        head.append(VALUE_TAG)
        head += varint_bytes(size)
    return [bytes(head), *value_parts]


def blob_from_parts(
    before: Buffer, value: bytes, after: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int = DEFAULT_MAX_SIZE,
) -> SavedStateBlob:
    """The blob ``SavedStateBlob.decode`` makes of ``before``, then a value record holding
    ``value``, then ``after`` (records, as bytes), with ``value`` kept as it is rather than
    copied out of a joined input.

    ``max_depth`` and ``max_size`` are those of that decode; ``max_size`` bounds the whole.
    Raises the ``DecodeError`` that decode raises.
    """
    size = len(before) + len(value) + len(after)
    if size > max_size or _has_value_record(memoryview(after)):
        return _decode_joined(before, value, after, max_depth, max_size)
    rest = bytes(before) + bytes(after)
    try:
        blob = SavedStateBlob.decode(rest, max_depth=max_depth, max_size=max_size)
    except DecodeError:
        # The error of the whole input, with its own wording (the value record cannot be
        # what fails: a length-delimited bytes field takes any content).
        return _decode_joined(before, value, after, max_depth, max_size)
    blob.value = value
    return blob


def decode_blob(
    data: Buffer, *, max_depth: int = DEFAULT_MAX_DEPTH, max_size: int = DEFAULT_MAX_SIZE
) -> SavedStateBlob:
    """``SavedStateBlob.decode(data)`` for any buffer (a ``memoryview`` of a file's bytes, say),
    copying only the value (into the ``bytes`` of the result) and the records around it.

    Raises the ``DecodeError`` that decode raises, with ``max_depth`` and ``max_size`` as
    there (``max_size`` is checked before anything is copied).
    """
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    if view.nbytes > max_size:
        return SavedStateBlob.decode(view, max_depth=max_depth, max_size=max_size)
    split = _split_at_value(view)
    if split is None:  # not records: the whole decode says what is wrong
        return SavedStateBlob.decode(bytes(view), max_depth=max_depth, max_size=max_size)
    before, (start, end), after = split
    return blob_from_parts(before, bytes(view[start:end]), view[after:],
                           max_depth=max_depth, max_size=max_size)


def _decode_joined(before: Buffer, value: bytes, after: Buffer, max_depth: int,
                   max_size: int) -> SavedStateBlob:
    record = bytes([VALUE_TAG]) + varint_bytes(len(value)) if value else b""
    data = b"".join((bytes(before), record, value, bytes(after)))
    return SavedStateBlob.decode(data, max_depth=max_depth, max_size=max_size)


def _records(view: memoryview) -> Any:
    """``(tag, record start, payload start, record end)`` of each record (``WireError`` for
    bytes that are not records; the payload start is that of a length-delimited record)."""
    pos, end = 0, view.nbytes
    while pos < end:
        start = pos
        tag, pos = read_varint(view, pos, end)  # type: ignore[arg-type]
        if tag & 7 == 2:
            size, pos = read_varint(view, pos, end)  # type: ignore[arg-type]
            if size > end - pos:
                raise WireError("truncated")
            yield tag, start, pos, pos + size
            pos += size
        else:
            pos = skip_field(view, pos, end, tag & 7)  # type: ignore[arg-type]
            yield tag, start, start, pos


def _has_value_record(view: memoryview) -> bool:
    try:
        return any(tag == VALUE_TAG for tag, _, _, _ in _records(view))
    except WireError:
        return True  # not records: let the whole decode report them


def _split_at_value(view: memoryview) -> tuple[bytes, tuple[int, int], int] | None:
    """The records before the last value record (earlier value records left out: the last one
    wins), the span of its payload, and where the records after it start; None when there is
    no value record or the bytes are not records."""
    spans: list[tuple[int, int]] = []
    last: tuple[int, int, int] | None = None  # payload start, payload end, record end
    try:
        for tag, start, payload, end in _records(view):
            if tag == VALUE_TAG:
                last = (payload, end, end)
                spans.append((-1, -1))  # a marker: the records before it end here
            else:
                spans.append((start, end))
    except WireError:
        return None
    if last is None:
        return None
    marker = len(spans) - 1 - spans[::-1].index((-1, -1))
    before = b"".join(view[s:e] for s, e in spans[:marker] if s >= 0)
    return before, (last[0], last[1]), last[2]
