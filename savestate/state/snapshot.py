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

Both directions stream: ``write`` hashes and writes the payload in chunks straight from the
encoder's parts (a large bytes or string field of the state reaches the file without being
copied), and writes the header last; ``read`` reads a large blob's value straight into the
``bytes`` it returns and hashes it there, so that neither holds a second copy of the payload.
``read_state(path, cls)`` is ``read(path).parse(cls)`` (same values, same errors) that reads a
large ``bytes`` field of the state from the file straight into the ``bytes`` the state keeps,
decoding only the rest from memory: the field is never copied. They all take ``progress``, a
callable given ``(bytes done, total bytes)`` as they go.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeAlias, TypeVar, cast

from ..codec.front import codec_of
from ..codec.wire import WireError, read_varint, skip_field, varint_bytes
from ..declare import Protobuf
from ..errors import DecodeError, EncodeError, SchemaError
from ..limits import DEFAULT_MAX_DEPTH
from ..limits import DEFAULT_MAX_SIZE as DEFAULT_MAX_DECODE_SIZE
from ..model.plan import Absent, Container, Form, Label, ScalarValue, plan_of
from ..model.registry import info_of, root_for_url
from ..model.scalars import BYTES
from .blob import (
    VALUE_TAG,
    BlobTypeMismatch,
    SavedStateBlob,
    blob_from_parts,
    decode_blob,
    encoded_blob_parts,
    type_url_of,
)
from .saverestore import (
    RestoreError,
    SavedStateNotSupported,
    SaveError,
    SaveRestore,
    call_restore,
    call_save,
    check_device,
    check_limits,
    check_not_async,
    decoded_state,
    parse_for,
    restore_limits,
    save_blob,
    state_type,
)
from .units import check_nested_blobs, encoded_units_parts

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
    "Progress",
    "SnapshotError",
    "TooLarge",
    "TrailingData",
    "Truncated",
    "UnreadableState",
    "UnsupportedVersion",
    "encode",
    "read",
    "read_bounded",
    "read_state",
    "replace_file",
    "restore",
    "write",
    "write_all",
]

MAGIC = b"\x89SVSNAP\n"
FORMAT_VERSION = 1
# The header before its CRC: magic, format version, reserved, payload length, sha256.
HEADER_FIELDS = struct.Struct("<8sHHQ32s")
_CRC = struct.Struct("<I")
HEADER_SIZE = HEADER_FIELDS.size + _CRC.size  # 56
DEFAULT_MAX_SIZE = DEFAULT_MAX_DECODE_SIZE  # the largest payload read() accepts: 64 MiB

_R = TypeVar("_R")

Progress: TypeAlias = Callable[[int, int], None]
"""A progress callback: called with ``(done, total)`` in bytes of the file, ``done`` never
decreasing, the last call with ``done == total`` once the work is done (for ``write``: the file
written and synced, before it replaces the previous one, so that an exception from that call
still aborts the write)."""

# Writes and checksums go in chunks of this much: progress is reported after each. A write
# hashes a chunk and then hands it to the kernel, which copies it into the page cache: a chunk
# small enough to stay in the core's cache between the two is read from memory once, not twice
# (on a 1 GiB state, 1 MiB chunks take a third less CPU time than 8 MiB chunks).
CHUNK = 1 << 20


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
    """The new file (a snapshot, or another file ``replace_file`` wrote) is in place, renamed
    over ``path``, but the fsync of its directory failed, so the rename may not survive a
    crash. ``__cause__`` is the failure."""

    def __init__(self, path: str, cause: OSError) -> None:
        self.path = path
        self.__cause__ = cause
        super().__init__(
            cause.errno,
            f"{path}: the new file is in place, but its durability is unconfirmed "
            f"(fsync of its directory failed: {cause.strerror or cause})",
        )


def _header(length: int, digest: bytes) -> bytes:
    fields = HEADER_FIELDS.pack(MAGIC, FORMAT_VERSION, 0, length, digest)
    return fields + _CRC.pack(zlib.crc32(fields))


def pack(blob: SavedStateBlob) -> bytes:
    """The bytes of a snapshot file holding ``blob``."""
    return _file_bytes(codec_of(SavedStateBlob).encode_parts(blob))


def _file_bytes(parts: Sequence[bytes | bytearray]) -> bytes:
    """A snapshot file's bytes: the header, then the payload, joined from its parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return b"".join([_header(sum(len(p) for p in parts), digest.digest()), *parts])


def _parse_header(
    data: bytes, file: str | os.PathLike[str], max_size: int
) -> tuple[int, bytes]:
    """The payload length and SHA-256 that the start of a file (``data``, up to the whole
    header) declares; raises what ``unpack`` raises for a header, in the same order."""
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
    return length, digest


def _check_extent(length: int, available: int, file: str | os.PathLike[str]) -> None:
    if available < length:
        raise Truncated(
            f"truncated: the payload is {length} bytes, the file holds {available}", file
        )
    if available > length:
        raise TrailingData(
            f"{available - length} unexpected bytes after the {length}-byte payload", file
        )


def unpack(
    data: bytes | bytearray | memoryview,
    file: str | os.PathLike[str] = "",
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> SavedStateBlob:
    """The blob in the bytes of a snapshot file (raises ``SnapshotError`` or
    ``RestoreError.ProtobufDecode``); ``max_size`` bounds the payload, ``max_depth`` its
    nesting. ``data`` may be any buffer: the payload is not copied, only the blob's value
    (into the ``bytes`` of the result)."""
    check_limits(max_size, max_depth)
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    length, digest = _parse_header(bytes(view[:HEADER_SIZE]), file, max_size)
    _check_extent(length, view.nbytes - HEADER_SIZE, file)
    payload = view[HEADER_SIZE:]
    if hashlib.sha256(payload).digest() != digest:
        raise ChecksumMismatch("checksum mismatch in the payload (the file is corrupt)", file)
    return _decoded(lambda: decode_blob(payload, max_depth=max_depth, max_size=max_size))


def _decoded(decode: Callable[[], SavedStateBlob]) -> SavedStateBlob:
    try:
        return decode()
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


class _Payload:
    """A snapshot's payload (the blob's encoding) in parts, with what the read-back check
    needs: the state's own parts when ``write`` encoded it, or the blob it was given; for
    state units whose large blob values are parts of their own, the state itself and the
    stand-in that leaves those values out."""

    __slots__ = ("blob", "parts", "size", "stand_in", "state", "state_cls", "state_parts",
                 "type_url")

    def __init__(
        self,
        parts: list[bytes | bytearray],
        type_url: str,
        state_parts: list[bytes | bytearray] | None = None,
        blob: SavedStateBlob | None = None,
        state_cls: type | None = None,
        state: Any = None,
        stand_in: bytes | bytearray | None = None,
    ) -> None:
        self.state_cls = state_cls
        self.parts = parts
        self.size = sum(len(part) for part in parts)
        self.type_url = type_url
        self.state_parts = state_parts
        self.blob = blob
        self.state = state
        self.stand_in = stand_in


def _payload_of(state: Any, max_depth: int) -> _Payload:
    """What ``write`` puts in the file: a blob as it is, or a root (or what a ``SaveRestore``
    object saves) encoded with ``max_depth`` (``EncodeError`` past it), so that what
    ``restore`` with the same limit refuses is not written."""
    if isinstance(state, SavedStateBlob):
        parts = codec_of(SavedStateBlob).encode_parts(state, max_depth)
        return _Payload(parts, state.type_url, blob=state)
    if isinstance(state, SaveRestore):
        check_not_async(state, "snapshot.write()",
                        "`snapshot.write(path, await save_blob_async(device))`", "save")
        st = state_type(state)
        value = call_save(state)
        if not isinstance(value, Protobuf) or (st is not None and not isinstance(value, st)):
            save_blob(state)  # saves again, to raise the SaveError it raises for this
        try:
            return _state_payload(value, max_depth)
        except SaveError:
            raise
        except Exception as exc:  # as ``save_blob`` reports a state it cannot encode
            raise SaveError.Other(exc) from exc
    if isinstance(state, Protobuf):
        return _state_payload(state, max_depth)
    raise TypeError(
        "write() takes a SavedStateBlob, a saved-state root or a SaveRestore object, "
        f"got {type(state).__name__}"
    )


def _state_payload(value: Any, max_depth: int) -> _Payload:
    url = type_url_of(type(value))
    # State units (what ``StateUnits.save`` gives) hold their large states as blob values,
    # which the compiled encoder would copy: they are parts of their own.
    units_parts = encoded_units_parts(value, max_depth)
    if units_parts is not None:
        stand_in = encoded_units_parts(value, max_depth, emptied=True)
        assert stand_in is not None  # as the parts: the same records, the same checks
        return _Payload(encoded_blob_parts(url, units_parts), url, state_parts=units_parts,
                        state_cls=type(value), state=value, stand_in=stand_in[0])
    state_parts = codec_of(type(value)).encode_parts(value, max_depth)
    return _Payload(encoded_blob_parts(url, state_parts), url, state_parts=state_parts,
                    state_cls=type(value))


# How the encoder words a refusal for depth (``EncodeError.reason``).
_DEPTH_REFUSAL = "deeper than the limit"


def write(
    path: str | os.PathLike[str],
    state: Any,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    progress: Progress | None = None,
) -> int:
    """Write ``state`` (a ``SavedStateBlob``, a root, or a ``SaveRestore`` object such as
    ``StateUnits``) to ``path`` atomically; returns the file size.

    The state is checked first as ``read`` and ``restore`` with the same ``max_size`` and
    ``max_depth`` would check it (the payload's size, every decode's nesting, blobs nested in
    blobs): one they could not read back is refused with ``UnreadableState``. When ``path`` is
    a symbolic link, the file it points to is replaced and the link kept. Temporary files of
    this naming (``.<name>.XXXXXXXX.tmp`` next to the target) that no live writer holds are
    removed.

    The payload is streamed to the file from the encoder's parts: the large bytes and string
    fields of the state (or a blob's value) are hashed and written where they are, never
    copied. ``progress``, when given, is called with ``(bytes written, file size)`` after each
    chunk, and with ``(file size, file size)`` once the whole file is written and synced, just
    before it replaces ``path``.

    Saving errors are ``SaveError``; I/O errors are ``OSError`` naming ``path`` (not the
    temporary file), and leave any previous file at ``path`` as it was, except
    ``DurabilityUnconfirmed``: the new file is in place, but the fsync of its directory
    failed. An exception raised by ``progress`` aborts the write the same way.
    """
    payload = _checked_payload(state, max_size, max_depth)
    total = HEADER_SIZE + payload.size
    # The last report comes before the rename, the point of no return: an exception from
    # ``progress`` must still leave the previous file in place, as any other abort does.
    replace_file(
        path,
        lambda fd: _stream(fd, payload.parts, total, progress),
        before_rename=None if progress is None else lambda: progress(total, total),
    )
    return total


def encode(
    state: Any, *, max_size: int = DEFAULT_MAX_SIZE, max_depth: int = DEFAULT_MAX_DEPTH
) -> bytes:
    """The bytes of the snapshot file ``write`` would write for ``state`` (a
    ``SavedStateBlob``, a root, or a ``SaveRestore`` object), checked as ``write`` checks
    them: a state that ``read`` and ``restore`` with the same ``max_size`` and ``max_depth``
    could not read back is refused with ``UnreadableState``. (``pack`` makes the bytes of a
    blob without that check.)"""
    return _file_bytes(_checked_payload(state, max_size, max_depth).parts)


def _checked_payload(state: Any, max_size: int, max_depth: int) -> _Payload:
    """The payload of ``state``, checked as ``read`` and ``restore`` with these limits would
    read it back (``UnreadableState`` else)."""
    check_limits(max_size, max_depth)
    try:
        payload = _payload_of(state, max_depth)
        _check_readable(payload, max_size, max_depth)
    except (SaveError, EncodeError) as exc:
        # Past ``max_depth``, the encoder refuses what a read could not read back; any other
        # failure to save or encode is the caller's error, raised as it was.
        cause = exc.__cause__ if isinstance(exc, SaveError) else exc
        if not (isinstance(cause, EncodeError) and _DEPTH_REFUSAL in cause.reason):
            raise
        raise UnreadableState(cause) from cause
    except (DecodeError, RestoreError) as exc:  # the read-back check
        raise UnreadableState(exc) from exc
    return payload


def replace_file(
    path: str | os.PathLike[str],
    fill: Callable[[int], None],
    *,
    before_rename: Callable[[], None] | None = None,
) -> None:
    """Replace the file at ``path`` atomically with what ``fill(fd)`` writes to a descriptor:
    a temporary file next to it (``.<name>.XXXXXXXX.tmp``, locked while it is written) is
    filled, synced, given the mode of the file it replaces (a new file: the mode ``open``
    gives under the umask) and renamed over ``path``; a symbolic link is kept and the file it
    points to replaced. ``before_rename``, when given, runs after the sync, just before the
    rename.

    Any failure, of ``fill`` or ``before_rename`` too, removes the temporary file and leaves
    the previous file as it was (an ``OSError`` of the temporary file's own steps names
    ``path``), except ``DurabilityUnconfirmed``: the new file is in place,
    but the fsync of its directory failed. Stale temporary files of this naming are removed
    first (``remove_stale_temporaries``)."""
    target = os.path.realpath(os.fspath(path))  # through symbolic links: keep the link
    directory = os.path.dirname(target)
    name = os.path.basename(target)
    remove_stale_temporaries(directory, name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:  # a missing or read-only directory, which mkstemp words as the temporary
        raise _naming(exc, path) from exc
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when this process ends
        fill(fd)
        os.fsync(fd)
        if before_rename is not None:
            before_rename()
        try:  # keep the mode of the file replaced
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:  # a new file gets the mode open() would give it, not 0600
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename == tmp:  # its chmod, its rename
            raise _naming(exc, path) from exc
        raise
    finally:
        os.close(fd)
    try:
        _fsync_directory(directory)
    except OSError as exc:
        raise DurabilityUnconfirmed(target, exc) from exc


def _naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc``, raised for the temporary file, as the same kind of ``OSError`` (errno and
    strerror) naming ``path``: the caller never named the temporary file, and one that failed
    is gone already."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, os.fspath(path))  # the subclass of that errno


def _umask() -> int:
    """The process's umask. Linux reports it in /proc without changing it; elsewhere it is
    read by setting it and putting it back at once."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stream(
    fd: int, parts: Sequence[bytes | bytearray], total: int, progress: Progress | None
) -> None:
    """Write the header's place, then the payload in chunks, hashing each as it goes, then
    the header over its place: no part is copied or joined."""
    write_all(fd, bytes(HEADER_SIZE))
    digest = hashlib.sha256()
    done = 0
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), CHUNK):
            chunk = view[start : start + CHUNK]
            digest.update(chunk)
            write_all(fd, chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    os.lseek(fd, 0, os.SEEK_SET)
    write_all(fd, _header(total - HEADER_SIZE, digest.digest()))


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to the descriptor ``fd`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _check_readable(payload: _Payload, max_size: int, max_depth: int) -> None:
    """Check that ``read`` and ``restore`` with these limits can read the payload back
    (raises ``SavestateError``), without decoding what cannot fail.

    What can fail on the way back: the payload's size (``TooLarge``, known from the parts);
    the nesting of the state (the encoder already refused a state deeper than ``max_depth``,
    as decode would); the memory budget of its decode, and blobs nested in it (opaque bytes,
    written by other encodes). So the state is decoded, as ``restore`` would decode it, but
    from a stand-in for its encoding in which each large bytes or string field of the root
    (the parts the encoder handed over uncopied) is empty: a decode only copies such a field
    (its content is never checked, a string's UTF-8 came from ``str.encode``, and the budget
    does not count it), so the stand-in decodes exactly when the real encoding does. When the
    stand-in does not decode (a fixed-length field emptied, say), the real encoding is decoded
    instead, and that decides. A blob given as it is has an opaque value, decoded in full.
    """
    if payload.size > max_size:
        raise TooLarge(f"the payload is {payload.size} bytes, more than max_size ({max_size})")
    cls: Any = root_for_url(payload.type_url)
    if payload.state_parts is None:
        assert payload.blob is not None
        if cls is None:
            return  # ``read`` returns such a blob as it is; a caller knowing its type parses it
        value: Any = payload.blob.parse(cls, max_depth=max_depth, max_size=max_size)
    else:
        if cls is None:  # pragma: no cover - a root is registered when it is declared
            return
        # The stand-in holds for the class that encoded it (another class of the same type
        # URL could read those fields as something else).
        stand_in: bytes | bytearray | None = None
        if cls is payload.state_cls:
            stand_in = (_stand_in(payload.state_parts) if payload.stand_in is None
                        else payload.stand_in)
        try:
            if stand_in is None:
                raise DecodeError("no stand-in")
            value = cls.decode(stand_in, max_depth=max_depth, max_size=max_size)
            # State units' stand-in has their large blob values left out: their blobs are
            # checked in the state given, which decodes to the same blobs.
            if payload.stand_in is not None:
                value = payload.state
        except DecodeError:
            value = cls.decode(b"".join(payload.state_parts), max_depth=max_depth,
                               max_size=max_size)
    check_nested_blobs(value, max_depth=max_depth, max_size=max_size)


def _stand_in(parts: Sequence[bytes | bytearray]) -> bytes | None:
    """The encoding ``parts`` join to, with each large field (the parts at odd positions,
    each right after its length) emptied; None when a length is not where it should be."""
    out = bytearray()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out += part
            continue
        size = varint_bytes(len(part))
        if not out.endswith(size):
            return None
        del out[len(out) - len(size) :]
        out.append(0)
    return bytes(out)


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


def read_bounded(stream: IO[bytes], limit: int, *, start: bytes = b"") -> bytes:
    """At most ``limit + 1`` bytes of ``stream``, read in chunks (a FIFO, a device or a pipe
    is never read past that, and nothing is allocated in proportion to ``limit``): a result
    longer than ``limit`` means the input is too large. ``start``, bytes already read from
    the stream, comes first and counts toward ``limit`` (joined once, with the rest)."""
    if limit.__class__ is not int or limit < 0:
        raise ValueError("limit must be a non-negative int")
    chunks: list[bytes] = [start] if start else []
    remaining = limit + 1 - len(start)
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
    progress: Progress | None = None,
) -> SavedStateBlob:
    """The blob in the snapshot file at ``path``.

    Raises a ``SnapshotError`` (a ``RestoreError``) naming the problem, or ``OSError``. A file
    whose payload would be larger than ``max_size`` bytes is ``TooLarge``, found from its size
    before it is read (and never more than ``max_size`` plus the header plus one byte is read,
    should it grow meanwhile or not be a regular file). ``max_depth`` bounds the nesting of the
    blob's decode.

    A large blob's value is read straight into the ``bytes`` of the result and checked there:
    the payload is not copied. ``progress``, when given, is called with ``(bytes read and
    checked, file size)`` as the checksum proceeds, the last call ``(file size, file size)``
    once the blob is decoded (for a FIFO or a device, only that last call).
    """
    check_limits(max_size, max_depth)
    with open(path, "rb", buffering=0) as f:
        blob, total = _read_opened(f, path, os.fstat(f.fileno()), max_size, max_depth, progress)
    if progress is not None:
        progress(total, total)
    return blob


# A payload up to this size is read whole and decoded from memory.
SMALL_PAYLOAD = 1 << 20
# Of a larger one, this much is read first, to find where the blob's value starts.
PAYLOAD_HEAD = 64 << 10


def _read_file(
    f: IO[bytes], path: str | os.PathLike[str], size: int, max_size: int, max_depth: int,
    progress: Progress | None,
) -> SavedStateBlob:
    """The blob in the regular file ``f`` of ``size`` bytes (its size when opened)."""
    length, digest = _parse_header(_read_exact(f, min(size, HEADER_SIZE)), path, max_size)
    _check_extent(length, size - HEADER_SIZE, path)
    checked = _Checker(path, digest, size, progress)
    head = _read_exact(f, min(length, PAYLOAD_HEAD if length > SMALL_PAYLOAD else length))
    span = _open_value(head, length) if len(head) < length else None
    if span is None:  # small, or not the usual layout: the payload whole, in one buffer
        if len(head) < length:
            f.seek(HEADER_SIZE)
            head = _read_exact(f, length)
        checked.end(f, (head,), length)
        return _decoded(lambda: decode_blob(head, max_depth=max_depth, max_size=max_size))
    record, start, end = span
    f.seek(HEADER_SIZE + start)
    value = _read_exact(f, end - start)  # the ``bytes`` the blob keeps
    after = _read_exact(f, length - end)
    before = memoryview(head)[:start]
    checked.end(f, (before, value, after), length)
    return _decoded(lambda: blob_from_parts(
        before[:record], value, after, max_depth=max_depth, max_size=max_size))


class _Checker:
    """The payload's checks once it is read: its extent and its SHA-256, with progress."""

    def __init__(self, path: str | os.PathLike[str], digest: bytes, size: int,
                 progress: Progress | None) -> None:
        self.path = path
        self.digest = digest
        self.size = size
        self.progress = progress

    def end(self, f: IO[bytes], pieces: Sequence[bytes | memoryview], length: int) -> None:
        got = sum(len(p) for p in pieces)
        if got < length:  # the file shrank while it was read
            _check_extent(length, got, self.path)
        if f.read(1):  # it grew
            _check_extent(length, os.fstat(f.fileno()).st_size - HEADER_SIZE, self.path)
        digest = hashlib.sha256()
        done = HEADER_SIZE
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), CHUNK):
                chunk = view[start : start + CHUNK]
                digest.update(chunk)
                done += len(chunk)
                if self.progress is not None and done < self.size:
                    self.progress(done, self.size)
        if digest.digest() != self.digest:
            raise ChecksumMismatch("checksum mismatch in the payload (the file is corrupt)",
                                   self.path)


def _read_exact(f: IO[bytes], size: int) -> bytes:
    """``size`` bytes of ``f`` (fewer at its end), in one ``bytes`` read into directly however
    many reads it takes: one read gives at most about 2 GiB on Linux, and joining the pieces
    would copy the payload (a ``bytearray`` filled in place could not become the ``bytes``
    the result keeps without a copy either). A buffered reader of that file does it: its
    ``read`` makes the ``bytes`` and has the file read into it until it is full; with a
    buffer of one byte it reads nothing ahead, so the file is left just past what was read.
    """
    # Every caller's ``f`` is a file opened unbuffered: a raw stream.
    reader = io.BufferedReader(cast(io.RawIOBase, f), buffer_size=1)
    try:
        return reader.read(size)
    finally:
        reader.detach()  # the file stays open: it is not the reader's to close


def _open_value(head: bytes, length: int) -> tuple[int, int, int] | None:
    """Where the blob's value record starts, and its value starts and ends, when that record
    is the one that runs past ``head`` (the first bytes of a payload of ``length`` bytes);
    None when the records of ``head`` are not laid out so."""
    view = memoryview(head)
    pos, end = 0, len(head)
    try:
        while pos < end:
            record = pos
            tag, pos = read_varint(view, pos, end)  # type: ignore[arg-type]
            if tag != VALUE_TAG:
                pos = skip_field(view, pos, end, tag & 7)  # type: ignore[arg-type]
                continue
            size, pos = read_varint(view, pos, end)  # type: ignore[arg-type]
            if pos + size > end:
                return (record, pos, pos + size) if pos + size <= length else None
            pos += size
    except WireError:
        return None
    return None


def _read_opened(
    f: Any,
    path: str | os.PathLike[str],
    info: os.stat_result,
    max_size: int,
    max_depth: int,
    progress: Progress | None,
) -> tuple[SavedStateBlob, int]:
    """``read``'s work on the file already open as ``f`` (``info`` its status): the blob and
    the file's size. A FIFO, a device or a file of no stated size is read once, to its end,
    so it is never opened twice."""
    limit = HEADER_SIZE + max_size
    if _sized(info):
        if info.st_size > limit:
            raise TooLarge(
                f"the file is {info.st_size} bytes, more than max_size ({max_size}) plus "
                f"the {HEADER_SIZE}-byte header", path)
        return _read_file(f, path, info.st_size, max_size, max_depth, progress), info.st_size
    # The header first, as a regular file's: a device or a FIFO that holds no snapshot
    # (``/dev/zero``) is refused by its first bytes, not once max_size of it has been read.
    head = _read_exact(f, HEADER_SIZE)
    _parse_header(head, path, max_size)
    data = read_bounded(f, limit, start=head)
    if len(data) > limit:
        raise TooLarge(
            f"the file holds more than max_size ({max_size}) plus the {HEADER_SIZE}-byte "
            "header", path)
    return unpack(data, path, max_size=max_size, max_depth=max_depth), len(data)


def _sized(info: os.stat_result) -> bool:
    """Whether a file is read by the size it states: a regular file, but not one of size 0,
    which may hold text all the same (``/proc`` and ``/sys`` files state no size); read to
    its end, an empty file still reads as empty."""
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def read_state(
    path: str | os.PathLike[str],
    cls: type[_R],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    progress: Progress | None = None,
) -> _R:
    """The state of class ``cls`` (a saved-state root) in the snapshot file at ``path``.

    This is ``read(path, max_size=max_size, max_depth=max_depth).parse(cls,
    max_size=max_size, max_depth=max_depth)``: the same value, and the same errors in the same
    order (a ``SnapshotError`` or ``RestoreError.ProtobufDecode`` for the file, then
    ``BlobTypeMismatch`` or the ``DecodeError`` of the state, naming its field path).

    It differs in what it copies. When a singular ``bytes`` field of ``cls`` itself is large
    (``LARGE_FIELD`` bytes or more), its content is read from the file straight into the
    ``bytes`` that the state keeps, and only the rest of the state is decoded from memory;
    ``parse`` would copy it out of the blob's value, holding it twice. The payload's SHA-256
    is checked before anything is decoded. Any other layout (no such field, the field given
    more than once, a file that is not a regular file) is read and parsed the plain way.

    ``progress`` is called as ``read`` calls it, the last call ``(file size, file size)``
    made once the state is decoded.
    """
    check_limits(max_size, max_depth)
    fields = _large_fields(cls)
    value: Any = _NOT_HANDLED
    with open(path, "rb", buffering=0) as f:
        info = os.fstat(f.fileno())
        if fields and _sized(info) and info.st_size <= HEADER_SIZE + max_size:
            value = _read_state_file(f, path, info.st_size, cls, fields, max_size, max_depth,
                                     progress)
            f.seek(0)
        if value is _NOT_HANDLED:  # the plain way, its last progress call kept for the end
            blob, total = _read_opened(f, path, info, max_size, max_depth,
                                       None if progress is None else _HeldProgress(progress))
            value = blob.parse(cls, max_depth=max_depth, max_size=max_size)
        else:
            total = info.st_size
    if progress is not None:
        progress(total, total)
    result: _R = value
    return result


class _HeldProgress:
    """``progress`` for a read that more work follows (a decode): every call but the last,
    ``(size, size)``, whose size it keeps for ``finish``, made once that work is done."""

    __slots__ = ("progress", "size")

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.size: int | None = None

    def __call__(self, done: int, size: int) -> None:
        if done < size:
            self.progress(done, size)
        else:
            self.size = size

    def finish(self) -> None:
        if self.size is not None:
            self.progress(self.size, self.size)


# The smallest ``bytes`` field that ``read_state`` reads from the file on its own.
LARGE_FIELD = 64 << 10
_NOT_HANDLED: Any = object()


def _large_fields(cls: type) -> dict[int, str]:
    """``{record tag: attribute}`` of the fields of ``cls`` that ``read_state`` may read on
    their own: singular (or optional) ``bytes`` fields of a declared root's own message, held
    as plain ``bytes`` attributes (no fixed length, no transparent class around them, never
    required). Empty when ``cls`` is not a root: the plain way then raises what it raises."""
    try:
        type_url_of(cls)
        plan = plan_of(cls)
    except SchemaError:
        return {}
    if plan.form is not Form.STRUCT or plan.cls is not cls:
        return {}
    return {
        f.record_tag: f.attr
        for f in plan.fields
        if isinstance(f.value, ScalarValue) and f.value.kind is BYTES
        and isinstance(f.attr, str) and f.container is Container.NONE
        and f.label is not Label.REPEATED and f.length is None and not f.unwrap
        and f.variant is None and f.absent is not Absent.REQUIRED
    }


# A tag and a length (two varints) take at most this many bytes.
_RECORD_HEAD = 20


def _read_state_file(
    f: IO[bytes], path: str | os.PathLike[str], size: int, cls: type, fields: dict[int, str],
    max_size: int, max_depth: int, progress: Progress | None,
) -> Any:
    """The state of ``cls`` in the regular file ``f`` of ``size`` bytes (read from its
    start), its large field read on its own; ``_NOT_HANDLED``, with nothing reported to
    ``progress``, when the file is not laid out so."""
    length, digest = _parse_header(_read_exact(f, min(size, HEADER_SIZE)), path, max_size)
    _check_extent(length, size - HEADER_SIZE, path)
    head = _read_exact(f, min(length, PAYLOAD_HEAD))
    span = _open_value(head, length) if len(head) < length else None
    if span is None:
        return _NOT_HANDLED
    record, start, end = span  # the blob's value, the state's encoding: payload[start:end]
    buf = bytearray(head)
    found = _find_large_field(f, buf, start, end, fields)
    if found is None:
        return _NOT_HANDLED
    field_record, value_start, value_end = found
    f.seek(HEADER_SIZE + value_start)
    value = _read_exact(f, value_end - value_start)  # the ``bytes`` the state keeps
    after = _read_exact(f, length - value_end)
    view = memoryview(buf)
    _Checker(path, digest, size, progress).end(f, (view[:value_start], value, after), length)
    state_after = memoryview(after)[: end - value_end]
    blob_after = memoryview(after)[end - value_end :]
    tag = read_varint(buf, field_record, value_start)[0]  # type: ignore[arg-type]
    state = _decode_rest(cls, view[:record], blob_after, view[start:field_record], state_after,
                         tag >> 3, max_size, max_depth)
    if state is not _NOT_HANDLED:
        object.__setattr__(state, fields[tag], value)
        return state
    # What the plain way decodes, from the pieces read: the state's encoding joined (the
    # value let go of once it is in there: no more is held than the plain way holds), then
    # the blob and its parse, with their own errors.
    encoding = b"".join((view[start:value_start], value, state_after))
    del value
    blob = _decoded(lambda: blob_from_parts(
        view[:record], encoding, blob_after, max_depth=max_depth, max_size=max_size))
    return blob.parse(cls, max_depth=max_depth, max_size=max_size)


def _find_large_field(
    f: IO[bytes], buf: bytearray, start: int, end: int, fields: dict[int, str]
) -> tuple[int, int, int] | None:
    """Where the record of a large field of ``fields`` starts, and its content starts and
    ends (offsets in the payload), when it is the first record of the state (the payload's
    ``start`` to ``end``) that runs past ``buf`` (the first bytes of the payload, read on from
    ``f`` as the records before it need). None when the state holds no such field, gives it
    more than once before it, or is not records."""
    numbers: set[int] = set()  # of the records before it
    pos = start
    while True:
        stop = min(len(buf), end)
        need = stop + 1  # how far ``buf`` must go for the record at ``pos``
        try:
            while pos < stop:
                tag, at = read_varint(buf, pos, stop)  # type: ignore[arg-type]
                if tag & 7 == 2:
                    size, at = read_varint(buf, at, stop)  # type: ignore[arg-type]
                    if at + size > end:
                        return None  # runs past the state: not records
                    if at + size > stop:  # runs past what is read
                        if tag in fields and size >= LARGE_FIELD:
                            return None if tag >> 3 in numbers else (pos, at, at + size)
                        need = at + size
                        break
                    at += size
                else:
                    at = skip_field(buf, at, stop, tag & 7)  # type: ignore[arg-type]
                numbers.add(tag >> 3)
                pos = at
        except WireError:
            if stop - pos >= _RECORD_HEAD or stop == end:
                return None  # not records
        if pos >= end:
            return None
        # Read on: past the record that does not fit, and as much again as the first read.
        more = _read_exact(f, min(end, max(need, len(buf)) + PAYLOAD_HEAD) - len(buf))
        if not more:
            return None  # the file shrank: the plain way says so
        buf += more


def _decode_rest(
    cls: Any, blob_before: memoryview, blob_after: memoryview, state_before: memoryview,
    state_after: memoryview, number: int, max_size: int, max_depth: int,
) -> Any:
    """The state of ``cls`` decoded from its encoding without its large field's record (the
    records before that record, then those after it), when the blob around the state
    decodes, holds a ``cls``, and the field has no other record; else ``_NOT_HANDLED``, for
    the plain way to decode the whole and raise its own errors.

    Leaving the record out changes nothing else in the value: a ``bytes`` field takes any
    content, its value is not counted against the decode's memory budget, and with no other
    record of the field the decode of the rest leaves it to be set."""
    if _has_number(blob_after, VALUE_TAG >> 3) or _has_number(state_after, number):
        return _NOT_HANDLED
    try:
        blob = SavedStateBlob.decode(bytes(blob_before) + bytes(blob_after),
                                     max_depth=max_depth, max_size=max_size)
    except DecodeError:
        return _NOT_HANDLED
    if not blob.is_a(cls):
        raise BlobTypeMismatch(type_url_of(cls), blob.type_url)
    try:
        return cls.decode(bytes(state_before) + bytes(state_after), max_depth=max_depth,
                          max_size=max_size)
    except DecodeError:
        return _NOT_HANDLED


def _has_number(view: memoryview, number: int) -> bool:
    """Whether the records of ``view`` include one of field ``number`` (True when ``view``
    is not records: the plain way decides)."""
    pos, end = 0, view.nbytes
    try:
        while pos < end:
            tag, pos = read_varint(view, pos, end)  # type: ignore[arg-type]
            if tag >> 3 == number:
                return True
            pos = skip_field(view, pos, end, tag & 7)  # type: ignore[arg-type]
    except WireError:
        return True
    return False


def restore(
    path: str | os.PathLike[str],
    obj: SaveRestore[Any],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
    progress: Progress | None = None,
) -> None:
    """Read the snapshot at ``path`` and restore ``obj`` from it (``RestoreError`` on failure).
    ``max_size`` and ``max_depth`` bound the file and every decode on the way, blobs nested in
    the state included. ``progress`` is called as ``read`` calls it while the file is read and
    checked, and its last call, ``(file size, file size)``, once the state is decoded, before
    ``obj`` is restored (not at all when the state does not decode). When ``obj``'s class
    names its state type, the state is read as ``read_state`` reads it (a large ``bytes``
    field held once, not twice); the values and errors are those of
    ``restore_blob(obj, read(path))``. ``obj`` without a ``restore`` method (a state given
    in place of its device), or an async device, is a ``TypeError``, before the file is
    read."""
    check_limits(max_size, max_depth)
    check_device(obj, "snapshot.restore()", ("restore",))
    check_not_async(obj, "snapshot.restore()",
                    "`await restore_blob_async(device, snapshot.read(path))`")
    st = state_type(obj)
    with restore_limits(max_size, max_depth):
        if st is None or st is SavedStateNotSupported or info_of(st) is None:
            # The class to decode is named by the file's type URL, or the refusal comes after
            # the file is read and checked: the plain way.
            held = None if progress is None else _HeldProgress(progress)
            blob = read(path, max_size=max_size, max_depth=max_depth, progress=held)
            state = parse_for(obj, blob)
            if held is not None:
                held.finish()
        else:
            state_cls = st
            # read_state holds a large bytes field of the state once, where read then parse
            # held it twice (the blob's value and the state's copy of it).
            state = decoded_state(lambda: read_state(path, state_cls, max_size=max_size,
                                                     max_depth=max_depth, progress=progress))
        call_restore(obj, state)
