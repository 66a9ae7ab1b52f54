"""The immutable schema model: what every part of savestate walks.

A user's class is turned into a :class:`MessageSchema` (or a :class:`OneofSchema` for a Rust-style
enum) once, lazily, and cached on the class. The codec compiler, the interpreting codec, the
``.proto`` emitter and the compatibility checker read these objects, never raw ``typing`` objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .scalars import WIRE_LEN, WIRE_VARINT, ScalarKind

__all__ = [
    "DurationType",
    "EnumType",
    "FieldSchema",
    "FixedArrayType",
    "MapType",
    "MessageSchema",
    "MessageType",
    "OneofSchema",
    "OneofType",
    "OptionalType",
    "RepeatedType",
    "ScalarType",
    "TupleType",
    "TypeSchema",
    "VariantSchema",
]


@dataclass(frozen=True)
class ScalarType:
    kind: ScalarKind

    @property
    def wire(self) -> int:
        return self.kind.wire

    def __str__(self) -> str:
        return self.kind.name


@dataclass(frozen=True)
class MessageType:
    """A field holding a struct message (a ``Protobuf`` class, ``SavedStateBlob`` included)."""

    cls: type
    wire = WIRE_LEN

    def __str__(self) -> str:
        return self.cls.__name__


@dataclass(frozen=True)
class OneofType:
    """A field holding a Rust-style enum: a message whose single variant is always written."""

    cls: type
    wire = WIRE_LEN

    def __str__(self) -> str:
        return self.cls.__name__


@dataclass(frozen=True)
class EnumType:
    """An ``enum.IntEnum``: a proto enum, written as an int32 varint."""

    cls: type[enum.IntEnum]
    values: frozenset[int]
    wire = WIRE_VARINT

    @property
    def zero(self) -> enum.IntEnum | None:
        return self.cls(0) if 0 in self.values else None

    def __str__(self) -> str:
        return self.cls.__name__


@dataclass(frozen=True)
class DurationType:
    """``datetime.timedelta`` as ``google.protobuf.Duration`` ``{1: seconds, 2: nanos}``."""

    wire = WIRE_LEN

    def __str__(self) -> str:
        return "timedelta"


@dataclass(frozen=True)
class OptionalType:
    """``T | None``: written whenever not None, even when zero."""

    inner: TypeSchema

    @property
    def wire(self) -> int:
        return self.inner.wire

    def __str__(self) -> str:
        return f"{self.inner} | None"


@dataclass(frozen=True)
class RepeatedType:
    """``list[T]``: packed for numbers (``list[u8]`` as bytes), else one record per element."""

    elem: TypeSchema
    wire = WIRE_LEN

    @property
    def packed(self) -> bool:
        return is_packable(self.elem)

    @property
    def as_bytes(self) -> bool:
        return is_u8(self.elem)

    def __str__(self) -> str:
        return f"list[{self.elem}]"


@dataclass(frozen=True)
class FixedArrayType:
    """A fixed-length array: bytes for u8, packed for numbers, else a wrapper message.

    Always written, and a decode checks the count. ``python_bytes`` says whether the Python
    value is ``bytes`` (else a ``list``).
    """

    elem: TypeSchema
    length: int
    python_bytes: bool
    wire = WIRE_LEN

    @property
    def packed(self) -> bool:
        return is_packable(self.elem)

    @property
    def as_bytes(self) -> bool:
        return is_u8(self.elem)

    def __str__(self) -> str:
        return f"{'bytes' if self.python_bytes else f'list[{self.elem}]'}[length {self.length}]"


@dataclass(frozen=True)
class TupleType:
    """``tuple[A, B, ...]``: a message with fields 1..n."""

    elems: tuple[TypeSchema, ...]
    wire = WIRE_LEN

    def __str__(self) -> str:
        return f"tuple[{', '.join(map(str, self.elems))}]"


@dataclass(frozen=True)
class MapType:
    """``dict[K, V]``: repeated entry messages ``{1: key, 2: value}``."""

    key: TypeSchema
    value: TypeSchema
    wire = WIRE_LEN

    def __str__(self) -> str:
        return f"dict[{self.key}, {self.value}]"


TypeSchema = (
    ScalarType
    | MessageType
    | OneofType
    | EnumType
    | DurationType
    | OptionalType
    | RepeatedType
    | FixedArrayType
    | TupleType
    | MapType
)


def is_packable(t: TypeSchema) -> bool:
    """Numbers (and proto enums) are packed in sequences."""
    return (isinstance(t, ScalarType) and t.kind.packable) or isinstance(t, EnumType)


def is_u8(t: TypeSchema) -> bool:
    return isinstance(t, ScalarType) and t.kind.name == "u8"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class FieldSchema:
    """One field of a message: its Python name, number, type and defaults.

    ``always`` is set when the declared default is not the type's zero value: then the field is
    written even when zero, so that a decode (which fills missing fields from the default) gives
    back exactly what was encoded.
    """

    name: str
    number: int
    type: TypeSchema
    default: Any = MISSING
    default_factory: Any = MISSING
    doc: str | None = None
    always: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING or self.default_factory is not MISSING

    def make_default(self) -> Any:
        if self.default is not MISSING:
            return self.default
        if self.default_factory is not MISSING:
            return self.default_factory()
        return MISSING


@dataclass(frozen=True)
class MessageSchema:
    """A struct message: a ``Protobuf`` class, or the payload of a Oneof variant."""

    cls: type
    name: str
    package: str | None
    fields: tuple[FieldSchema, ...]
    doc: str | None = None
    reserved: tuple[int, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name

    def field_by_number(self, number: int) -> FieldSchema | None:
        for f in self.fields:
            if f.number == number:
                return f
        return None


@dataclass(frozen=True)
class VariantSchema:
    """One variant of a Oneof.

    ``kind`` is "unit", "tuple", "struct" or "transparent". Unit, tuple and struct variants
    carry a payload message (``message``); a transparent variant writes its single field's
    value directly under the variant number (``message`` then has that one field).
    """

    cls: type
    name: str
    number: int
    kind: str
    message: MessageSchema
    doc: str | None = None

    @property
    def transparent_field(self) -> FieldSchema:
        return self.message.fields[0]


@dataclass(frozen=True)
class OneofSchema:
    """A Rust-style enum: ``message E { oneof variant { ... } }``."""

    cls: type
    name: str
    package: str | None
    variants: tuple[VariantSchema, ...]
    doc: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name

    def variant_by_number(self, number: int) -> VariantSchema | None:
        for v in self.variants:
            if v.number == number:
                return v
        return None
