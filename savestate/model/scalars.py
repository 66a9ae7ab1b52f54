"""Scalar kinds and the ``Annotated`` markers users write (``u8``, ``i32``, ``fixed64``, ...).

Each marker is ``Annotated[int, <kind>]`` (or ``float``), so a type checker sees a plain ``int``
while the schema builder reads the wire kind from the metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

__all__ = [
    "ScalarKind",
    "f32",
    "f64",
    "fixed32",
    "fixed64",
    "i8",
    "i16",
    "i32",
    "i64",
    "int32",
    "int64",
    "sfixed32",
    "sfixed64",
    "sint32",
    "sint64",
    "u8",
    "u16",
    "u32",
    "u64",
    "uint32",
    "uint64",
]

# Wire types of the protobuf encoding.
WIRE_VARINT = 0
WIRE_I64 = 1
WIRE_LEN = 2
WIRE_I32 = 5


@dataclass(frozen=True)
class ScalarKind:
    """One scalar wire kind: its name in savestate, its proto type, how it is written."""

    name: str
    proto: str
    wire: int
    # How the value is written: "varint", "zigzag", "fixed32", "fixed64", "sfixed32",
    # "sfixed64", "float", "double", "bool", "string", "bytes".
    encoding: str
    # Python type of the value: int, float, bool, str or bytes.
    python: type
    lo: int = 0
    hi: int = 0

    @property
    def packable(self) -> bool:
        """Whether a list of this kind is written packed: every kind but ``str`` and
        ``bytes``, which are length-delimited."""
        return self.wire != WIRE_LEN

    @property
    def is_integer(self) -> bool:
        """Whether the Python value is an ``int`` (every integer kind; not ``bool``)."""
        return self.python is int

    @property
    def zero(self) -> object:
        """The zero value, which is not written in a message (proto3 implicit presence)."""
        return self.python()

    def __repr__(self) -> str:
        return f"<scalar {self.name}>"


def _int(name: str, proto: str, encoding: str, bits: int, signed: bool) -> ScalarKind:
    widths = {"fixed32": WIRE_I32, "sfixed32": WIRE_I32, "fixed64": WIRE_I64, "sfixed64": WIRE_I64}
    wire = widths.get(encoding, WIRE_VARINT)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return ScalarKind(name, proto, wire, encoding, int, lo, hi)


U8 = _int("u8", "uint32", "varint", 8, False)
U16 = _int("u16", "uint32", "varint", 16, False)
U32 = _int("u32", "uint32", "varint", 32, False)
U64 = _int("u64", "uint64", "varint", 64, False)
I8 = _int("i8", "sint32", "zigzag", 8, True)
I16 = _int("i16", "sint32", "zigzag", 16, True)
I32 = _int("i32", "sint32", "zigzag", 32, True)
I64 = _int("i64", "sint64", "zigzag", 64, True)
INT32 = _int("int32", "int32", "varint", 32, True)
INT64 = _int("int64", "int64", "varint", 64, True)
UINT32 = _int("uint32", "uint32", "varint", 32, False)
UINT64 = _int("uint64", "uint64", "varint", 64, False)
SINT32 = _int("sint32", "sint32", "zigzag", 32, True)
SINT64 = _int("sint64", "sint64", "zigzag", 64, True)
FIXED32 = _int("fixed32", "fixed32", "fixed32", 32, False)
FIXED64 = _int("fixed64", "fixed64", "fixed64", 64, False)
SFIXED32 = _int("sfixed32", "sfixed32", "sfixed32", 32, True)
SFIXED64 = _int("sfixed64", "sfixed64", "sfixed64", 64, True)
BOOL = ScalarKind("bool", "bool", WIRE_VARINT, "bool", bool, 0, 1)
F32 = ScalarKind("f32", "float", WIRE_I32, "float", float)
F64 = ScalarKind("f64", "double", WIRE_I64, "double", float)
STRING = ScalarKind("str", "string", WIRE_LEN, "string", str)
BYTES = ScalarKind("bytes", "bytes", WIRE_LEN, "bytes", bytes)

# The kinds of the plain Python types.
PLAIN: dict[type, ScalarKind] = {int: INT64, float: F64, bool: BOOL, str: STRING, bytes: BYTES}

u8 = Annotated[int, U8]
u16 = Annotated[int, U16]
u32 = Annotated[int, U32]
u64 = Annotated[int, U64]
i8 = Annotated[int, I8]
i16 = Annotated[int, I16]
i32 = Annotated[int, I32]
i64 = Annotated[int, I64]
int32 = Annotated[int, INT32]
int64 = Annotated[int, INT64]
uint32 = Annotated[int, UINT32]
uint64 = Annotated[int, UINT64]
sint32 = Annotated[int, SINT32]
sint64 = Annotated[int, SINT64]
fixed32 = Annotated[int, FIXED32]
fixed64 = Annotated[int, FIXED64]
sfixed32 = Annotated[int, SFIXED32]
sfixed64 = Annotated[int, SFIXED64]
f32 = Annotated[float, F32]
f64 = Annotated[float, F64]
