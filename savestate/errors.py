"""The error family: every failure the library reports is one of these, with a field path."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

__all__ = ["DecodeError", "EncodeError", "SavestateError", "SchemaError", "UnknownFieldsDropped",
           "path_text", "short_repr", "warn_unknown_dropped"]

# Where savestate's own code runs: its package directory, and the code it generates (compiled
# under names such as "<savestate codec pkg.Type>").
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_GENERATED = "<savestate "


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for an error message (a value whose ``repr``
    fails is named by its type)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"
    return text if len(text) <= 60 else text[:57] + "..."


def path_text(path: list[str]) -> str:
    """A field path as text: ``SavedState.primary.imr``, ``Dev.queues[2].size``."""
    text = ""
    for segment in path:
        if segment.startswith("[") or not text:
            text += segment
        else:
            text += "." + segment
    return text


class SavestateError(Exception):
    """Base of every error savestate raises.

    ``path`` names where the problem is, outermost first, as a list of segments
    (``["SavedState", "primary", "imr"]``); ``reason`` is what went wrong there.
    """

    def __init__(self, reason: str, path: list[str] | None = None) -> None:
        self.reason = reason
        self.path: list[str] = list(path) if path else []
        super().__init__(reason)

    @property
    def path_text(self) -> str:
        """The field path of the error as text (``SavedState.primary.imr``; empty if none)."""
        return path_text(self.path)

    def __str__(self) -> str:
        where = self.path_text
        return f"{where}: {self.reason}" if where else self.reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason, self.path))


class SchemaError(SavestateError, TypeError):
    """A class cannot be used as saved state: a bad field number, annotation or option."""


class EncodeError(SavestateError, ValueError):
    """A value does not fit the type its field declares."""


class DecodeError(SavestateError, ValueError):
    """Bytes are not a valid encoding of the requested type."""


class UnknownFieldsDropped(UserWarning):
    """Unknown fields were read where a value cannot keep them (inside a tuple, a map entry, the
    wrapper of a nested list or optional, or a timedelta), and dropped: re-encoding the value
    will not write them. The message names where."""


def warn_unknown_dropped(message: str) -> None:
    """Warn ``UnknownFieldsDropped(message)`` at the caller's line that called into savestate
    (its ``decode``, ``to_json``, ``restore``...), however deep in the library the drop was
    found: that line is what the user can act on, and what the warning filters match."""
    frame = sys._getframe(1)
    level = 2  # warnings.warn's count for this function's caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
            (_PACKAGE_DIR, _GENERATED)):
        frame = frame.f_back
        level += 1
    warnings.warn(UnknownFieldsDropped(message), stacklevel=level)
