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
the file's size before anything is read; a file that is not a regular file (a FIFO, a device) is
read in chunks, never past ``max_size`` plus the header plus one byte, and nothing is allocated
in proportion to ``max_size`` itself. ``max_depth`` is the nesting limit of every decode on the
way (``Protobuf.decode``). ``write`` refuses a state that ``read`` and ``restore`` with the same
limits could not read back (``UnreadableState``), writes through a symbolic link to the file it
names, removes temporary files that killed writers left behind, and reports a failure after the
rename (the directory's fsync) as ``DurabilityUnconfirmed``: the new file is in place, but may not
survive a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import stat
import struct
import tempfile
import time
import zlib
from typing import IO, Any

from ..codec.front import DEFAULT_MAX_DEPTH
from ..codec.front import DEFAULT_MAX_SIZE as DEFAULT_MAX_DECODE_SIZE
from ..declare import Protobuf
from ..errors import DecodeError, EncodeError
from ..model.registry import root_for_url
from .blob import SavedStateBlob, type_url_of
from .saverestore import (
    RestoreError,
    SaveError,
    SaveRestore,
    call_save,
    check_limits,
    restore_blob,
    save_blob,
    state_type,
)
from .units import check_nested_blobs

try:  # POSIX: a writer holds a lock on its temporary file, so a live one is never removed
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "BadMagic",
    "ChecksumMismatch",
    "DurabilityUnconfirmed",
    "SnapshotError",
    "TooLarge",
    "TrailingData",
    "Truncated",
    "UnreadableState",
    "UnsupportedVersion",
    "read",
    "read_bounded",
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


class UnreadableState(SaveError):
    """``write`` refused a state that ``read`` / ``restore`` with the same ``max_size`` and
    ``max_depth`` could not read back (the cause, chained, names the field path)."""

    cause: BaseException

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        self.__cause__ = cause
        super().__init__(f"refusing to write a snapshot that could not be read back: {cause}")


class DurabilityUnconfirmed(OSError):
    """The new snapshot file is in place (renamed over ``path``), but the fsync of its
    directory failed, so the rename may not survive a crash. ``__cause__`` is the failure."""

    def __init__(self, path: str, cause: OSError) -> None:
        self.path = path
        self.__cause__ = cause
        super().__init__(
            cause.errno,
            f"{path}: the new snapshot file is in place, but its durability is unconfirmed "
            f"(fsync of its directory failed: {cause.strerror or cause})",
        )


def pack(blob: SavedStateBlob) -> bytes:
    """The bytes of a snapshot file holding ``blob``."""
    payload = blob.encode()
    fields = HEADER_FIELDS.pack(
        MAGIC, FORMAT_VERSION, 0, len(payload), hashlib.sha256(payload).digest()
    )
    return fields + _CRC.pack(zlib.crc32(fields)) + payload


def unpack(
    data: bytes,
    file: str | os.PathLike[str] = "",
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> SavedStateBlob:
    """The blob in the bytes of a snapshot file (raises ``SnapshotError`` or
    ``RestoreError.ProtobufDecode``); ``max_size`` bounds the payload, ``max_depth`` its
    nesting."""
    check_limits(max_size, max_depth)
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
        return SavedStateBlob.decode(payload, max_depth=max_depth, max_size=max_size)
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


def _as_blob(state: Any, max_depth: int) -> SavedStateBlob:
    """The blob ``write`` puts in the file: encoded with ``max_depth`` (``EncodeError`` past
    it), so that what ``restore`` with the same limit refuses is not written."""
    if isinstance(state, SavedStateBlob):
        return state
    if isinstance(state, SaveRestore):
        if max_depth == DEFAULT_MAX_DEPTH:
            return save_blob(state)  # its own errors, as ever
        st = state_type(state)
        value = call_save(state)
        if not isinstance(value, Protobuf) or (st is not None and not isinstance(value, st)):
            return save_blob(state)  # saves again, to raise the SaveError it raises for this
        state = value
    if isinstance(state, Protobuf):
        return SavedStateBlob(type_url=type_url_of(type(state)),
                              value=_encode(state, max_depth))
    raise TypeError(
        "write() takes a SavedStateBlob, a saved-state root or a SaveRestore object, "
        f"got {type(state).__name__}"
    )


def _encode(value: Protobuf, max_depth: int) -> bytes:
    if _ENCODE_TAKES_DEPTH:
        encode: Any = value.encode
        data: bytes = encode(max_depth=max_depth)
        return data
    return value.encode()  # the read-back check in ``write`` still holds the limit


# How the encoder words a refusal for depth (``EncodeError.reason``).
_DEPTH_REFUSAL = "deeper than the limit"
_ENCODE_TAKES_DEPTH = "max_depth" in inspect.signature(Protobuf.encode).parameters


def write(
    path: str | os.PathLike[str],
    state: Any,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> int:
    """Write ``state`` (a ``SavedStateBlob``, a root, or a ``SaveRestore`` object such as
    ``StateUnits``) to ``path`` atomically; returns the file size.

    The state is checked first as ``read`` and ``restore`` with the same ``max_size`` and
    ``max_depth`` would check it (the payload's size, every decode's nesting, blobs nested in
    blobs): one they could not read back is refused with ``UnreadableState``. When ``path`` is
    a symbolic link, the file it points to is replaced and the link kept. Temporary files of
    this naming (``.<name>.XXXXXXXX.tmp`` next to the target) that no live writer holds are
    removed.

    Saving errors are ``SaveError``; I/O errors are ``OSError``, and leave any previous file at
    ``path`` as it was, except ``DurabilityUnconfirmed``: the new file is in place, but the
    fsync of its directory failed.
    """
    check_limits(max_size, max_depth)
    try:
        data = pack(_as_blob(state, max_depth))
        _check_readable(data, max_size, max_depth)
    except (SaveError, EncodeError) as exc:
        # Past ``max_depth``, the encoder refuses what a read could not read back; any other
        # failure to save or encode is the caller's error, raised as it was.
        cause = exc.__cause__ if isinstance(exc, SaveError) else exc
        if not (isinstance(cause, EncodeError) and _DEPTH_REFUSAL in cause.reason):
            raise
        raise UnreadableState(cause) from cause
    except (DecodeError, RestoreError) as exc:  # the read-back check
        raise UnreadableState(exc) from exc
    target = os.path.realpath(os.fspath(path))  # through symbolic links: keep the link
    directory = os.path.dirname(target)
    name = os.path.basename(target)
    remove_stale_temporaries(directory, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when this process ends
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            with contextlib.suppress(FileNotFoundError):  # keep the mode of the file replaced
                os.chmod(tmp, os.stat(target).st_mode & 0o7777)
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        _fsync_directory(directory)
    except OSError as exc:
        raise DurabilityUnconfirmed(target, exc) from exc
    return len(data)


def _check_readable(data: bytes, max_size: int, max_depth: int) -> None:
    """Decode the snapshot bytes as ``read`` and ``restore`` would: the blob, the root its type
    URL names, and every registered blob nested in that (raises ``SavestateError``)."""
    blob = unpack(data, max_size=max_size, max_depth=max_depth)
    cls = root_for_url(blob.type_url)
    if cls is None:
        return  # ``read`` returns such a blob as it is; only a caller knowing its type parses it
    value: Any = blob.parse(cls, max_depth=max_depth, max_size=max_size)
    check_nested_blobs(value, max_depth=max_depth, max_size=max_size)


# ``mkstemp`` names: the prefix, 8 characters of its alphabet, the suffix.
_TEMPORARY = "[a-z0-9_]{8}\\.tmp"
# A temporary file younger than this may be one a live writer has created but not yet locked.
STALE_AFTER_SECONDS = 60.0


def remove_stale_temporaries(directory: str, name: str) -> list[str]:
    """Remove the temporary files ``write`` left next to ``name`` in ``directory`` when its
    process was killed; returns their paths.

    A file is removed only when it has this naming, is older than ``STALE_AFTER_SECONDS``, and
    no process holds its lock (a live writer keeps its temporary file locked until the rename;
    the lock goes with the process). Without ``fcntl`` (Windows) nothing is removed.
    """
    if fcntl is None:
        return []
    pattern = re.compile(re.escape(f".{name}.") + _TEMPORARY)
    removed: list[str] = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not pattern.fullmatch(entry):
            continue
        candidate = os.path.join(directory, entry)
        with contextlib.suppress(OSError):
            fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AFTER_SECONDS:
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live writer's
                os.unlink(candidate)
                removed.append(candidate)
            finally:
                os.close(fd)
    return removed


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened and fsynced
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Reads are done in chunks of at most this much, so that a large limit allocates nothing.
READ_CHUNK = 1 << 20


def read_bounded(stream: IO[bytes], limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``stream``, read in chunks (a FIFO, a device or a pipe
    is never read past that, and nothing is allocated in proportion to ``limit``): a result
    longer than ``limit`` means the input is too large."""
    if limit.__class__ is not int or limit < 0:
        raise ValueError("limit must be a non-negative int")
    chunks: list[bytes] = []
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(remaining, READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read(
    path: str | os.PathLike[str],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> SavedStateBlob:
    """The blob in the snapshot file at ``path``.

    Raises a ``SnapshotError`` (a ``RestoreError``) naming the problem, or ``OSError``. A file
    whose payload would be larger than ``max_size`` bytes is ``TooLarge``, found from its size
    before it is read (and never more than ``max_size`` plus the header plus one byte is read,
    should it grow meanwhile or not be a regular file). ``max_depth`` bounds the nesting of the
    blob's decode.
    """
    check_limits(max_size, max_depth)
    limit = HEADER_SIZE + max_size
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > limit:
            raise TooLarge(
                f"the file is {info.st_size} bytes, more than max_size ({max_size}) plus the "
                f"{HEADER_SIZE}-byte header", path)
        data = read_bounded(f, limit)
    if len(data) > limit:
        raise TooLarge(
            f"the file holds more than max_size ({max_size}) plus the {HEADER_SIZE}-byte "
            "header", path)
    return unpack(data, path, max_size=max_size, max_depth=max_depth)


def restore(
    path: str | os.PathLike[str],
    obj: SaveRestore[Any],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> None:
    """Read the snapshot at ``path`` and restore ``obj`` from it (``RestoreError`` on failure).
    ``max_size`` and ``max_depth`` bound the file and every decode on the way, blobs nested in
    the state included."""
    restore_blob(obj, read(path, max_size=max_size, max_depth=max_depth),
                 max_size=max_size, max_depth=max_depth)
