"""Bounded reads of the command line's inputs: files, standard input, FIFOs and devices.

Every command that reads takes ``--max-size`` (default 64 MiB, the library's decode default;
``K``, ``M`` and ``G`` suffixes are binary). A regular file larger than that is refused from its
size, before anything is read; anything else (standard input, a pipe, a FIFO, ``/dev/zero``) is
read in chunks and refused as soon as it passes the limit, so no input costs more than
``max_size`` plus one byte, and nothing is allocated in proportion to the limit itself. The
reading of a regular file can report its progress (the bar of :mod:`savestate.cli.progress`).
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from typing import IO, Any

from ..limits import DEFAULT_MAX_SIZE
from ..state.snapshot import HEADER_SIZE, read_bounded

__all__ = ["DEFAULT_MAX_SIZE", "InputMissing", "InputTooLarge", "parse_size", "read_input"]


class InputTooLarge(Exception):
    """An input is larger than ``--max-size``; the message names it and the limit."""


class InputMissing(Exception):
    """An input file does not exist."""


_SIZE = re.compile(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``"64M"`` → 67108864: a byte count with an optional binary ``K``/``M``/``G`` suffix
    (``ValueError`` for anything else); the ``type`` of ``--max-size``."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (a byte count, e.g. 1048576, 512K, 64M, 1G)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def read_input(
    spec: str,
    max_size: int,
    *,
    snapshot_header: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """The bytes of ``spec`` (a path, or ``-`` for standard input), at most ``max_size`` of
    them (plus a snapshot's 56-byte header when ``snapshot_header``: ``--max-size`` bounds the
    state, as ``snapshot.read``'s ``max_size`` does).

    ``progress`` is called with ``(bytes read, file size)`` after each chunk of a regular
    file (standard input and other streams have no size to report against).

    Raises ``InputTooLarge`` before reading a regular file that is too large, and as soon as
    a stream passes the limit; ``InputMissing`` for a path that does not exist; ``OSError``.
    """
    limit = max_size + (HEADER_SIZE if snapshot_header else 0)
    name = "standard input" if spec == "-" else spec
    if spec == "-":
        data = read_bounded(sys.stdin.buffer, limit)
    else:
        try:
            f = open(spec, "rb")  # noqa: SIM115 -- closed below; the fstat needs the file
        except FileNotFoundError:
            raise InputMissing(f"{spec}: no such file") from None
        with f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise InputTooLarge(_too_large(name, f"is {info.st_size} bytes", limit))
            stream: Any = f if progress is None else _Reporting(f, info.st_size, progress)
            data = read_bounded(stream, limit)
    if len(data) > limit:
        raise InputTooLarge(_too_large(name, "does not end within the limit", limit))
    return data


class _Reporting:
    """A file whose reads report how far they have come."""

    def __init__(self, f: IO[bytes], size: int, progress: Callable[[int, int], None]) -> None:
        self.f = f
        self.size = size
        self.progress = progress
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.f.read(n)
        self.done += len(chunk)
        self.progress(self.done, max(self.size, self.done))
        return chunk


def _too_large(name: str, what: str, limit: int) -> str:
    return f"{name} {what}: larger than --max-size allows ({limit} bytes); give a larger " \
           "--max-size to read it"
