"""Compiled code kept on disk between processes, so that a program's first save is not spent
compiling what an earlier run of the same program already compiled.

Generating and compiling a class's codec costs far more than using it: for a machine of a few
dozen classes, declaring them and compiling their codecs on first use is the price of hundreds
of steady saves. The codec compiler and the generated ``__init__`` of each declared class keep
their compiled code here, as Python keeps ``.pyc`` files:

- **Where.** ``$SAVESTATE_CACHE_DIR`` when set; an empty value turns the cache off. Otherwise
  ``$XDG_CACHE_HOME/savestate`` (``~/.cache/savestate``).
- **Found only for what it was made from.** Each entry holds, in full, what its user says the
  code was made from (a digest of a class's wire plans, the source of an ``__init__``), with
  this interpreter's bytecode magic number and, for generated codecs, a digest of the text of
  savestate's own code generators (Python's source hash, as hash-based ``.pyc`` files use); an
  entry is used only when all of it is equal. A change to any of them makes a different entry,
  so code is never used for anything it was not made for; stale entries are simply never read
  again.
- **Checked before use.** An entry holds a CRC-32 of its body: a torn or damaged file is a miss,
  never an error. On POSIX the directory is created private (0700) and an entry is used only if
  it is a regular file owned by this user and not writable by others, since loading compiled
  code is running it.
- **Never in the way.** A directory that cannot be created or written, a full disk, a file
  that cannot be read: all are misses, and the code is compiled as if there were no cache.
  Entries are written to a temporary file and renamed into place, so concurrent processes
  never see a partial entry.
- **Bounded.** Past ``MAX_BYTES`` of entries, the least recently used are removed until three
  quarters of it is left (``prune``), along with temporary files that writers left an hour
  ago or more. Only a process that stores entries prunes: on its first store when the
  directory was last pruned a day ago or more, and then every ``PRUNE_EVERY`` stores, so a
  program that makes many schemas (a fuzzer, a property test) cannot fill the disk. An
  entry's time of use is refreshed when it is loaded a day or more after the last refresh.
- **Cheap to reach.** Looking an entry up costs a CRC, one ``open`` and one ``read``, and this
  module imports nothing that ``import savestate`` does not already load: the first
  declaration uses it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import marshal
import os
import re
import stat
import struct
import sys
import threading
import time
import zlib
from types import CodeType
from typing import Any

__all__ = [
    "CACHE_ENV", "MAX_BYTES", "PRUNE_EVERY", "compiled", "directory", "identity", "load", "prune",
    "store",
]

#: The environment variable naming the cache directory (empty: no cache).
CACHE_ENV = "SAVESTATE_CACHE_DIR"

# An entry: this header, the length of what it was made from, that, the CRC-32 of the body,
# then the marshalled body. The CRC finds a torn or damaged file; who may write entries is the
# permission check's part.
_HEADER = b"savestate code cache 2\n"
_FRAME = struct.Struct("<II")  # the length of what it was made from, the body's CRC-32
# The kinds of entry whose code comes from savestate's generators (not only from a source).
_GENERATED = frozenset({"codec", "tables"})
# Every kind of entry: compiled sources, and the generators' code.
_KINDS = _GENERATED | {"code"}

#: The most the entries of a cache directory take before ``prune`` removes some.
MAX_BYTES = 64 << 20
#: How many stores a process makes between two prunes of its cache directory.
PRUNE_EVERY = 512
# A day: how old the last prune (the stamp file's time) may be before a process's first store
# prunes again, and how old an entry's time of use may be before a load refreshes it.
_DAY = 24 * 60 * 60
# A temporary file this old was left by a writer that died.
_STALE_TEMPORARY = 60 * 60
_STAMP = "last-prune"
# The names ``store`` gives: an entry, ``kind-crc-length``, and its temporary file.
_ENTRY = "(?:" + "|".join(sorted(_KINDS)) + r")-[0-9a-f]{8}-[0-9a-f]+"
_ENTRY_NAME = re.compile(_ENTRY)
_TEMPORARY_NAME = re.compile(_ENTRY + r"\.[0-9]+-[0-9a-f]{8}\.tmp")
# Opening a file of the directory never follows a link or waits on a FIFO.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

_lock = threading.Lock()
_salt: bytes | None = None
_stores = 0  # in this process


def directory() -> str | None:
    """The cache directory this process uses, or None when the cache is off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return configured or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "savestate")


def _generator_salt() -> bytes:
    """A digest of the text of the modules that generate code (the package's ``codec``,
    ``model`` and ``declare``), read once: Python's own source hash, as hash-based ``.pyc``
    files use to tell that their source changed."""
    global _salt
    with _lock:
        if _salt is None:
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            sources = [os.path.join(package, "declare.py")]
            for folder in ("codec", "model"):
                where = os.path.join(package, folder)
                try:
                    names = sorted(n for n in os.listdir(where) if n.endswith(".py"))
                except OSError:
                    names = []
                sources.extend(os.path.join(where, n) for n in names)
            texts = []
            for path in sources:
                try:
                    with open(path, "rb") as f:
                        text = f.read()
                except OSError:  # a package without its sources: nothing to key on
                    text = os.urandom(16)
                texts.append(os.path.basename(path).encode() + b"\0" + text)
            _salt = importlib.util.source_hash(b"\0".join(texts))
        return _salt


def identity(kind: str, made_from: bytes) -> bytes:
    """All that an entry of ``kind`` for ``made_from`` must match: the bytecode magic number,
    the kind, for generated code the generators' digest, and ``made_from``. ValueError for a
    kind the cache does not keep."""
    if kind not in _KINDS:
        raise ValueError(f"no such kind of cache entry: {kind!r}")
    salt = _generator_salt() if kind in _GENERATED else b""
    return b"\0".join((importlib.util.MAGIC_NUMBER, kind.encode(), salt, made_from))


def _entry_path(folder: str, kind: str, ident: bytes) -> str:
    return os.path.join(folder, f"{kind}-{zlib.crc32(ident):08x}-{len(ident):x}")


def _trusted(info: os.stat_result) -> bool:
    """Whether a file may be loaded (or removed) as an entry: a regular file, and on POSIX this
    user's own and not writable by anyone else."""
    if not stat.S_ISREG(info.st_mode):
        return False
    if sys.platform == "win32" or not hasattr(os, "geteuid"):
        return True  # pragma: no cover - Windows
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(kind: str, made_from: bytes) -> Any:
    """The body stored for ``made_from`` under ``kind``, or None on any kind of miss."""
    folder = directory()
    if folder is None:
        return None
    ident = identity(kind, made_from)
    try:
        fd = os.open(_entry_path(folder, kind, ident), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not _trusted(info):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
        if time.time() - info.st_mtime >= _DAY:  # in use: not the first to be pruned
            with contextlib.suppress(OSError, NotImplementedError):
                os.utime(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    at = len(_HEADER)
    if data[:at] != _HEADER or len(data) < at + _FRAME.size:
        return None
    size, check = _FRAME.unpack_from(data, at)
    at += _FRAME.size
    body = at + size
    if data[at:body] != ident or zlib.crc32(data[body:]) != check:
        return None
    try:
        return marshal.loads(data[body:])
    except (EOFError, ValueError, TypeError):  # pragma: no cover - the CRC matched
        return None


def store(kind: str, made_from: bytes, body: Any) -> None:
    """Keep ``body`` (anything ``marshal`` writes: code, strings, tuples ...) for ``made_from``
    under ``kind``. Failures are ignored: the cache is only ever a shortcut."""
    folder = directory()
    if folder is None:
        return
    ident = identity(kind, made_from)
    try:
        payload = marshal.dumps(body)
    except ValueError:  # something marshal cannot write: not cached
        return
    path = _entry_path(folder, kind, ident)
    temporary = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEADER + _FRAME.pack(len(ident), zlib.crc32(payload)) + ident + payload)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return
    if _prune_due(folder):
        prune(folder)


def _prune_due(folder: str) -> bool:
    """Whether this store, the process's latest, is one after which ``folder`` is pruned."""
    global _stores
    with _lock:
        _stores += 1
        count = _stores
    if count % PRUNE_EVERY == 0:
        return True
    if count > 1:
        return False
    try:
        info = os.stat(os.path.join(folder, _STAMP), follow_symlinks=False)
    except OSError:
        return True  # never pruned
    return not _trusted(info) or time.time() - info.st_mtime >= _DAY


def _touch_stamp(folder: str) -> None:
    """Mark ``folder`` pruned now (a regular file of this user's, never through a link)."""
    try:
        fd = os.open(os.path.join(folder, _STAMP), os.O_WRONLY | os.O_CREAT | _OPEN_FLAGS,
                     0o600)
    except OSError:
        return
    try:
        if _trusted(os.fstat(fd)):
            os.utime(fd)
    except (OSError, NotImplementedError):
        pass
    finally:
        os.close(fd)


def _is_entry(path: str) -> bool:
    """Whether the file at ``path`` is an entry ``store`` wrote: one ``load`` would trust, that
    starts with the entry header (a file of the user's own that merely has such a name is
    not)."""
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except OSError:
        return False
    try:
        return _trusted(os.fstat(fd)) and os.read(fd, len(_HEADER)) == _HEADER
    except OSError:
        return False
    finally:
        os.close(fd)


def prune(folder: str, max_bytes: int | None = None) -> int:
    """Remove entries of the cache directory ``folder``, least recently used first, until
    they take three quarters of ``max_bytes`` (``MAX_BYTES`` unless given) when they take
    more; and temporary files left by writers an hour ago or more. Only files with the names
    ``store`` gives, that ``load`` would trust and (entries) that start with an entry's header,
    are removed. Returns how many are gone; failures are ignored."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    now = time.time()
    _touch_stamp(folder)  # first: processes starting meanwhile need not prune too
    entries: list[tuple[float, int, str]] = []
    removed = 0
    try:
        with os.scandir(folder) as found:
            for item in found:
                temporary = _TEMPORARY_NAME.fullmatch(item.name) is not None
                if not temporary and _ENTRY_NAME.fullmatch(item.name) is None:
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not _trusted(info):
                    continue
                if not temporary:
                    entries.append((info.st_mtime, info.st_size, item.path))
                elif now - info.st_mtime >= _STALE_TEMPORARY:
                    removed += _remove(item.path)
    except OSError:
        return removed
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return removed
    entries.sort()
    for _, size, path in entries:
        if total <= limit * 3 // 4:
            break
        if _is_entry(path) and _remove(path):
            removed += 1
            total -= size
    return removed


def _remove(path: str) -> int:
    """1 when the file at ``path`` is gone: removed now, or by another process pruning at the
    same time (which then counts as removed here too, so that two prunes do not both go
    down to the bound); else 0."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 1
    except OSError:
        return 0
    return 1


def compiled(source: str, filename: str) -> CodeType:
    """``compile(source, filename, "exec")``, or the same code object from the cache when an
    earlier process compiled this very source under this name."""
    made_from = f"{filename}\n{source}".encode()
    code = load("code", made_from)
    if not isinstance(code, CodeType):
        code = compile(source, filename, "exec")
        store("code", made_from, code)
    return code
