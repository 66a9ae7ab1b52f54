"""``SavedStateBlob``: an opaque encoded saved state, wire-compatible with ``google.protobuf.Any``.

A blob holds a type URL (``type.googleapis.com/<package>.<Name>``) and the encoded bytes of a
saved-state root. It is an ordinary message class, so it can be a field anywhere: in a list, a
tuple, behind ``| None``, or inside another blob.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from ..declare import Protobuf, field
from ..errors import DecodeError, SchemaError
from ..model.registry import TYPE_URL_PREFIX, full_name, info_of, is_any

__all__ = ["TYPE_URL_PREFIX", "BlobTypeMismatch", "SavedStateBlob", "type_url_of"]

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

    def parse(self, cls: type[_R], *, max_depth: int = 100, max_size: int = 64 << 20) -> _R:
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
