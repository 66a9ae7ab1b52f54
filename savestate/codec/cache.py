"""Compiled code kept on disk between processes, so that a program's first save is not spent
compiling what an earlier run of the same program already compiled.

Generating and compiling a class's codec costs far more than using it: for a machine of a few
dozen classes, declaring them and compiling their codecs on first use is the price of hundreds
of steady saves. The codec compiler and the generated ``__init__`` of each declared class keep
their compiled code here, as Python keeps ``.pyc`` files:

- **Where.** ``$SAVESTATE_CACHE_DIR`` when set; an empty value turns the cache off. Otherwise
  ``$XDG_CACHE_HOME/savestate`` (``~/.cache/savestate``).
- **Keyed by everything the code depends on.** Each entry is found by a SHA-256 over what its
  user says the code was made from (a class's wire plan, the source of an ``__init__``), this
  interpreter's bytecode magic number, and the text of savestate's own code generators. A
  change to any of them is a different key, so an entry is never used for code it was not made
  for; stale entries are simply never read again.
- **Checked before use.** An entry holds its key and a CRC-32 of its body: a torn or damaged
  file is a miss, never an error. On POSIX the directory is created private (0700) and an entry
  is used only if it is a regular file owned by this user and not writable by others, since
  loading compiled code is running it.
- **Never in the way.** A directory that cannot be created or written, a full disk, a file
  that cannot be read: all are misses, and the code is compiled as if there were no cache.
  Entries are written to a temporary file and renamed into place, so concurrent processes
  never see a partial entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import os
import stat
import struct
import sys
import tempfile
import threading
import zlib
from pathlib import Path
from types import CodeType
from typing import Any

__all__ = ["CACHE_ENV", "compiled", "directory", "load", "store"]

#: The environment variable naming the cache directory (empty: no cache).
CACHE_ENV = "SAVESTATE_CACHE_DIR"

# An entry: this header, the 32-byte key, the CRC-32 of the body, then the marshalled body.
# The CRC finds a torn or damaged file; who may write entries is the permission check's part.
_HEADER = b"savestate code cache 1\n"
_DIGEST = 32
_CHECK = struct.Struct("<I")

_lock = threading.Lock()
_salt: bytes | None = None


def directory() -> str | None:
    """The cache directory this process uses, or None when the cache is off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return configured or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "savestate")


def _generator_salt() -> bytes:
    """What every key includes: the bytecode magic number and the text of the modules that
    generate code (the package's ``codec``, ``model`` and ``declare``), read once."""
    global _salt
    with _lock:
        if _salt is None:
            digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)
            package = Path(__file__).resolve().parent.parent
            sources = [package / "declare.py"]
            for folder in ("codec", "model"):
                sources.extend(sorted((package / folder).glob("*.py")))
            for path in sources:
                try:
                    text = path.read_bytes()
                except OSError:  # a package without its sources: nothing to key on
                    text = os.urandom(16)
                digest.update(path.name.encode() + b"\0" + text + b"\0")
            _salt = digest.digest()
        return _salt


def _key(kind: str, made_from: bytes) -> bytes:
    return hashlib.sha256(_generator_salt() + kind.encode() + b"\0" + made_from).digest()


def _entry_path(folder: str, kind: str, key: bytes) -> str:
    return os.path.join(folder, f"{kind}-{key.hex()[:40]}")


def _trusted(fd: int) -> bool:
    """Whether an open entry may be loaded: a regular file, and on POSIX this user's own and
    not writable by anyone else."""
    info = os.fstat(fd)
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
    key = _key(kind, made_from)
    try:
        fd = os.open(_entry_path(folder, kind, key), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not _trusted(fd):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    start = len(_HEADER) + _DIGEST + _CHECK.size
    if (
        data[: len(_HEADER)] != _HEADER
        or data[len(_HEADER) : len(_HEADER) + _DIGEST] != key
        or _CHECK.unpack_from(data, len(_HEADER) + _DIGEST)[0] != zlib.crc32(data[start:])
    ):
        return None
    try:
        return marshal.loads(data[start:])
    except (EOFError, ValueError, TypeError):  # pragma: no cover - the digest matched
        return None


def store(kind: str, made_from: bytes, body: Any) -> None:
    """Keep ``body`` (anything ``marshal`` writes: code, strings, tuples ...) for ``made_from``
    under ``kind``. Failures are ignored: the cache is only ever a shortcut."""
    folder = directory()
    if folder is None:
        return
    key = _key(kind, made_from)
    try:
        payload = marshal.dumps(body)
    except ValueError:  # something marshal cannot write: not cached
        return
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{kind}-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_HEADER + key + _CHECK.pack(zlib.crc32(payload)) + payload)
        os.replace(temporary, _entry_path(folder, kind, key))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def compiled(source: str, filename: str) -> CodeType:
    """``compile(source, filename, "exec")``, or the same code object from the cache when an
    earlier process compiled this very source under this name."""
    made_from = f"{filename}\n{source}".encode()
    code = load("code", made_from)
    if not isinstance(code, CodeType):
        code = compile(source, filename, "exec")
        store("code", made_from, code)
    return code
