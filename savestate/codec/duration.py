"""``datetime.timedelta`` as ``google.protobuf.Duration``: the seconds and nanos of a value, the
value of seconds and nanos, and their ranges. Shared by the interpreter, the compiled codecs'
runtime and the JSON mapping."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from ..errors import DecodeError, EncodeError, short_repr
from ..model.schema import DurationType

__all__ = ["MAX_DURATION_SECONDS", "duration_from_parts", "duration_parts", "expected"]

MAX_DURATION_SECONDS = DurationType.MAX_SECONDS


def expected(what: str, value: Any, path: list[str]) -> EncodeError:
    """The ``EncodeError`` for a value that is not ``what``."""
    return EncodeError(f"expected {what}, got {type(value).__name__} {short_repr(value)}", path)


def duration_parts(value: Any, path: list[str]) -> tuple[int, int]:
    """``(seconds, nanos)`` of a timedelta, both with its sign (raises ``EncodeError``)."""
    if not isinstance(value, datetime.timedelta):
        raise expected("timedelta", value, path)
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    seconds = abs(micros) // 1_000_000
    nanos = (abs(micros) % 1_000_000) * 1000
    if micros < 0:
        seconds, nanos = -seconds, -nanos
    if abs(seconds) > MAX_DURATION_SECONDS:
        raise EncodeError(
            f"duration {value} is outside google.protobuf.Duration's range", path
        )
    return seconds, nanos


def duration_from_parts(
    seconds: int, nanos: int, fail: Callable[[str], DecodeError] = DecodeError
) -> datetime.timedelta:
    """The timedelta of decoded seconds and nanos; ``fail`` makes the ``DecodeError`` of a value
    out of range (or finer than a microsecond) from its reason."""
    if not -999_999_999 <= nanos <= 999_999_999:
        raise fail(f"duration nanos {nanos} out of range")
    if abs(seconds) > MAX_DURATION_SECONDS:
        raise fail(f"duration seconds {seconds} out of range")
    if nanos % 1000:
        raise fail(f"duration nanos {nanos} is finer than timedelta's microseconds")
    return datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
