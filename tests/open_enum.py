"""An enum whose ``_missing_`` makes up a pseudo-member for any number: a value that is not
one of its class's members, which no codec path may write."""

from __future__ import annotations

import enum
from typing import Any


class Open(enum.IntEnum):
    """An enum that makes up a pseudo-member for any number."""

    ZERO = 0
    ONE = 1

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"V{value}"
        member._value_ = value
        return member
