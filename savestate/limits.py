"""The limits every decode and encode is held to, and their defaults.

They live apart from the codec so that the declaring side can name the very default objects
the codec compares against: ``Codec.decode`` takes the checks of a call with every limit at its
default (the same objects) as already made.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_MEMORY", "DEFAULT_MAX_SIZE", "INTRINSIC_PER_INPUT_BYTE",
    "MAX_ALLOWED_DEPTH", "MEMORY_FLOOR", "MEMORY_PER_INPUT_BYTE",
]

DEFAULT_MAX_DEPTH = 100
# The largest input ``decode`` accepts unless told otherwise: 64 MiB, like the official runtimes'
# historical default. Checked before the input is copied or read.
DEFAULT_MAX_SIZE = 64 << 20
# Each level of nesting takes a few Python frames; past this the interpreter's own stack
# limit would be reached first.
MAX_ALLOWED_DEPTH = 200
# The memory budget of a decode (``max_memory``) unless told otherwise: what the objects it builds
# may take, as counted by ``runtime.built_cost``: 32 bytes per byte of ``max_size`` (2 GiB at the
# default 64 MiB), and 1 MiB for small inputs. Numbers, strings and bytes are not counted: each
# costs at most ``INTRINSIC_PER_INPUT_BYTE`` per byte of its own record, whatever the schema.
MEMORY_PER_INPUT_BYTE = 32
MEMORY_FLOOR = 1 << 20
INTRINSIC_PER_INPUT_BYTE = 64
# The budget at the default max_size.
DEFAULT_MAX_MEMORY = MEMORY_PER_INPUT_BYTE * DEFAULT_MAX_SIZE + MEMORY_FLOOR
