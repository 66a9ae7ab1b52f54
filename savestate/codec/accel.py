"""Which path the compiled codec takes for its hottest loops: the optional C helpers, or Python.

The C extension ``savestate.codec._speedups`` is built by ``pip install`` when a compiler is
present. It is used unless it is missing or the environment sets ``SAVESTATE_PURE=1`` (read
once, at import). Either way the codec gives the same bytes and the same errors: the helpers
accept exactly what the generated Python loops accept and raise the codec's ``Mismatch`` signal
otherwise, so the interpreter reports the precise error.
"""

from __future__ import annotations

import os
from types import ModuleType

from ..model.plan import EnumValue, ScalarValue
from . import runtime
from .runtime import Mismatch

__all__ = ["ACCELERATED", "FIXED_KINDS", "MODES", "speedups", "varint_kind", "varint_tables"]


def _load() -> ModuleType | None:
    if os.environ.get("SAVESTATE_PURE") == "1":
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined]  # built only when possible
    except ImportError:
        return None
    _speedups.bind(Mismatch)
    module: ModuleType = _speedups
    return module


#: The C helpers, or None when the pure-Python path is active.
speedups: ModuleType | None = _load()

#: True when the compiled codecs call the C helpers.
ACCELERATED: bool = speedups is not None

# The helpers' kinds of packed varint, by the plan's scalar encoding (see _speedups.c).
MODES = {"unsigned": 0, "signed": 1, "zigzag": 2, "bool": 3, "enum": 4}
# The helpers' fixed-width kinds, by the scalar encoding.
FIXED_KINDS = {"fixed32": 5, "sfixed32": 6, "fixed64": 7, "sfixed64": 8, "float": 9,
               "double": 10}


def varint_kind(vp: ScalarValue | EnumValue) -> tuple[str, int] | None:
    """The helpers' varint mode (a key of ``MODES``) and width for a value of ``vp``, or None
    for a kind that is not a varint of a full 8, 16, 32 or 64-bit range."""
    if isinstance(vp, EnumValue):
        return "enum", 32
    kind = vp.kind
    if kind.encoding == "bool":
        return "bool", 8
    if kind.encoding not in ("varint", "zigzag"):
        return None
    signed = kind.lo < 0
    bits = kind.hi.bit_length() + signed
    if bits not in (8, 16, 32, 64) or kind.lo != (-(1 << (bits - 1)) if signed else 0):
        return None
    if kind.encoding == "zigzag":
        return "zigzag", bits
    return ("signed" if signed else "unsigned"), bits


_tables: tuple[list[bytes], list[bytes]] | None = None


def varint_tables() -> tuple[list[bytes], list[bytes]]:
    """The generated encoders' tables of 14-bit varint chunks
    (:func:`savestate.codec.runtime.varint_tables`), made by the C helpers when they are
    active: a twentieth of the instructions of building them in Python."""
    global _tables
    if speedups is None:
        return runtime.varint_tables()
    if _tables is None:
        _tables = speedups.varint_tables()
    return _tables
