"""Snapshot files: one saved state in a small, checked container, written atomically.

Layout (version 1, integers little-endian)::

    offset  size  content
         0     8  magic b"\\x89SVSNAP\\n"
         8     2  format version (1)
        10     2  reserved, 0
        12     8  payload length
        20    32  SHA-256 of the payload
        52     4  CRC-32 of bytes 0..52 (the header check)
        56     n  payload: a google.protobuf.Any (SavedStateBlob) encoding

``write`` puts the file in place atomically (a temporary file in the same directory, flushed and
fsynced, renamed over the target, then the directory fsynced), so a crash leaves either the old
file or the new one. ``read`` raises a ``SnapshotError`` (a ``RestoreError``) that says what is
wrong: ``BadMagic``, ``UnsupportedVersion``, ``Truncated``, ``ChecksumMismatch``, ``TrailingData``,
``TooLarge``; or ``RestoreError.ProtobufDecode`` when a well-formed file does not hold a valid blob.

``read`` takes a ``max_size`` (the largest payload it accepts, ``DEFAULT_MAX_SIZE`` = 64 MiB by
default): a larger file, or a header that declares a larger payload, is ``TooLarge``, found from
the file's size before anything is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tempfile
import zlib
from typing import Any

from ..codec.front import DEFAULT_MAX_SIZE as DEFAULT_MAX_DECODE_SIZE
from ..declare import Protobuf
from ..errors import DecodeError
from .blob import SavedStateBlob
from .saverestore import RestoreError, SaveRestore, restore_blob, save_blob

__all__ = [
    "DEFAULT_MAX_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "BadMagic",
    "ChecksumMismatch",
    "SnapshotError",
    "TooLarge",
    "TrailingData",
    "Truncated",
    "UnsupportedVersion",
    "read",
    "restore",
    "write",
]

MAGIC = b"\x89SVSNAP\n"
FORMAT_VERSION = 1
# The header before its CRC: magic, format version, reserved, payload length, sha256.
HEADER_FIELDS = struct.Struct("<8sHHQ32s")
_CRC = struct.Struct("<I")
HEADER_SIZE = HEADER_FIELDS.size + _CRC.size  # 56
DEFAULT_MAX_SIZE = DEFAULT_MAX_DECODE_SIZE  # the largest payload read() accepts: 64 MiB


class SnapshotError(RestoreError):
    """A snapshot file is not a valid, intact snapshot; ``path`` is the file."""

    def __init__(self, message: str, file: str | os.PathLike[str] = "") -> None:
        self.file = os.fspath(file)
        super().__init__(f"{self.file}: {message}" if self.file else message)


class BadMagic(SnapshotError):
    """The file does not start with the snapshot magic number (not a snapshot)."""


class UnsupportedVersion(SnapshotError):
    """The file's format version is not one this release reads."""


class Truncated(SnapshotError):
    """The file ends before its header or payload does."""


class ChecksumMismatch(SnapshotError):
    """The header or the payload does not match its checksum (the file is corrupt)."""


class TrailingData(SnapshotError):
    """The file has bytes after the payload its header describes."""


class TooLarge(SnapshotError):
    """The file, or the payload its header declares, is larger than ``max_size`` allows."""


def pack(blob: SavedStateBlob) -> bytes:
    """The bytes of a snapshot file holding ``blob``."""
    payload = blob.encode()
    fields = HEADER_FIELDS.pack(
        MAGIC, FORMAT_VERSION, 0, len(payload), hashlib.sha256(payload).digest()
    )
    return fields + _CRC.pack(zlib.crc32(fields)) + payload


def unpack(
    data: bytes, file: str | os.PathLike[str] = "", *, max_size: int = DEFAULT_MAX_SIZE
) -> SavedStateBlob:
    """The blob in the bytes of a snapshot file (raises ``SnapshotError`` or
    ``RestoreError.ProtobufDecode``); ``max_size`` bounds the payload."""
    if not data.startswith(MAGIC[: len(data)]):
        raise BadMagic("not a savestate snapshot (bad magic number)", file)
    if len(data) < HEADER_SIZE:
        if len(data) >= 10:
            _check_version(data, file)
        raise Truncated(
            f"truncated: the header needs {HEADER_SIZE} bytes, the file has {len(data)}", file
        )
    _magic, _version, reserved, length, digest = HEADER_FIELDS.unpack_from(data)
    _check_version(data, file)
    (crc,) = _CRC.unpack_from(data, HEADER_FIELDS.size)
    if zlib.crc32(data[: HEADER_FIELDS.size]) != crc:
        raise ChecksumMismatch("checksum mismatch in the header (the file is corrupt)", file)
    if reserved != 0:
        raise UnsupportedVersion(f"unsupported header flags {reserved:#06x}", file)
    if length > max_size:
        raise TooLarge(f"the payload is {length} bytes, more than max_size ({max_size})", file)
    available = len(data) - HEADER_SIZE
    if available < length:
        raise Truncated(
            f"truncated: the payload is {length} bytes, the file holds {available}", file
        )
    if available > length:
        raise TrailingData(
            f"{available - length} unexpected bytes after the {length}-byte payload", file
        )
    payload = data[HEADER_SIZE:]
    if hashlib.sha256(payload).digest() != digest:
        raise ChecksumMismatch("checksum mismatch in the payload (the file is corrupt)", file)
    try:
        return SavedStateBlob.decode(payload, max_size=max_size)
    except DecodeError as exc:
        raise RestoreError.ProtobufDecode(exc) from exc


def _check_version(data: bytes, file: str | os.PathLike[str]) -> None:
    (version,) = struct.unpack_from("<H", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise UnsupportedVersion(
            f"unsupported snapshot format version {version} (this release reads "
            f"{FORMAT_VERSION})",
            file,
        )


def _as_blob(state: Any) -> SavedStateBlob:
    if isinstance(state, SavedStateBlob):
        return state
    if isinstance(state, Protobuf):
        return SavedStateBlob.new(state)
    if isinstance(state, SaveRestore):
        return save_blob(state)
    raise TypeError(
        "write() takes a SavedStateBlob, a saved-state root or a SaveRestore object, "
        f"got {type(state).__name__}"
    )


def write(path: str | os.PathLike[str], state: Any) -> int:
    """Write ``state`` (a ``SavedStateBlob``, a root, or a ``SaveRestore`` object such as
    ``StateUnits``) to ``path`` atomically; returns the file size.

    Saving errors are ``SaveError``; I/O errors are ``OSError``, and leave any previous file at
    ``path`` as it was.
    """
    data = pack(_as_blob(state))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):  # keep the mode of the file replaced
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return len(data)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened and fsynced
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_SIZE) -> SavedStateBlob:
    """The blob in the snapshot file at ``path``.

    Raises a ``SnapshotError`` (a ``RestoreError``) naming the problem, or ``OSError``. A file
    whose payload would be larger than ``max_size`` bytes is ``TooLarge``, found from its size
    before it is read (and never more than ``max_size`` plus the header plus one byte is read,
    should it grow meanwhile).
    """
    if max_size.__class__ is not int or max_size < 0:
        raise ValueError("max_size must be a non-negative int")
    limit = HEADER_SIZE + max_size
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise TooLarge(
                f"the file is {size} bytes, more than max_size ({max_size}) plus the "
                f"{HEADER_SIZE}-byte header", path)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the file grew past max_size ({max_size}) while it was read", path)
    return unpack(data, path, max_size=max_size)


def restore(
    path: str | os.PathLike[str], obj: SaveRestore[Any], *, max_size: int = DEFAULT_MAX_SIZE
) -> None:
    """Read the snapshot at ``path`` and restore ``obj`` from it (``RestoreError`` on failure)."""
    restore_blob(obj, read(path, max_size=max_size))
