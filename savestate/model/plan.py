"""The wire plan: the protobuf shape of every declared class, lowered once from the schema model.

The schema model (:mod:`savestate.model.schema`) says what a field *is* in Python. The plan says
what it is *on the wire*, with every wrapper message explicit, and it is the only place where a
decision about the wire is made. The codecs, the ``.proto`` emitter, the compatibility checker,
the JSON mapping and the command line's typed views all walk plans and never the schema types.

A plan is a tree of :class:`MessagePlan` (a protobuf message) and :class:`FieldPlan` (one of its
fields). Each field holds one :class:`ScalarValue`, :class:`EnumValue` or :class:`MessageValue`:
the encoding of one element. Messages the user declared are referred to lazily (recursion and
forward references), synthetic ones (tuples, map entries, wrappers) are held directly.

The lowering rules, as the Rust derive applies them (``mesh_protobuf``):

======================================  ================================================  =======
Python                                  wire                                              form
======================================  ================================================  =======
scalar, ``IntEnum``                     the value; zero not written in a message          -
``Protobuf`` class, ``Oneof``           a message (an empty one not written; a Oneof      STRUCT,
                                        always)                                           ONEOF
``tuple[A, B]``                         message ``{field1 = 1; field2 = 2}``               TUPLE
``dict[K, V]``                          repeated entries ``{key = 1; value = 2}``         ENTRY
``timedelta``                           ``google.protobuf.Duration``                      DURATION
``list[u8]``, ``bytes``                 one ``bytes`` record                              -
``list[T]``                             packed when T is a number, else one record each  -
fixed length (``field(length=N)``)      always written; a wrapper message for messages   WRAPPER
``T | None``                            written whenever not None, even when zero        -
a sequence inside a sequence            each inner value wrapped as ``{field1 = 1}``      WRAPPER
a transparent class                     exactly as its one field (in a list: not packed)  -
======================================  ================================================  =======

"A sequence" is an optional, a non-``u8`` list or a map (``wrap_in_sequence`` in the derive):
it needs a wrapper message wherever it would be one element of something else (a list element,
an optional's payload, a map value, a Oneof variant), since its own encoding may write nothing or
several records. Fixed-length arrays are never wrapped: their records are always written.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import importlib.util
import json
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemaError
from . import scalars
from .introspect import schema_of
from .names import (
    MAP_KEYS,
    WRAPPER_MESSAGES,
    check_json_names,
    enum_value_names,
    json_name,
    snake_case,
    upper_camel_case,
)
from .registry import info_of
from .scalars import WIRE_LEN, WIRE_VARINT, ScalarKind
from .schema import (
    MISSING,
    DurationType,
    EnumType,
    FieldSchema,
    FixedArrayType,
    ForeignMessageType,
    MapType,
    MessageSchema,
    MessageType,
    OneofSchema,
    OneofType,
    OptionalType,
    RepeatedType,
    ScalarType,
    TransparentType,
    TupleType,
    TypeSchema,
    VariantSchema,
)

__all__ = [
    "Absent",
    "Container",
    "EnumValue",
    "FieldPlan",
    "Form",
    "Label",
    "MessagePlan",
    "MessageValue",
    "Newtype",
    "Presence",
    "ScalarValue",
    "ValuePlan",
    "ZeroTest",
    "duration_json",
    "fingerprint",
    "plan_of",
    "reachable",
]


class Form(enum.Enum):
    """What Python value a message stands for, and so how a walker reads and builds it."""

    STRUCT = "struct"  # a declared class: fields are attributes; keeps unknown fields
    ONEOF = "oneof"  # a Oneof: exactly one field (a variant) is written, chosen by class
    TUPLE = "tuple"  # a tuple: fields 1..n are its items
    ENTRY = "entry"  # a map entry: (key, value)
    WRAPPER = "wrapper"  # the value of its only field, field1, is the message's value
    DURATION = "duration"  # a timedelta as google.protobuf.Duration {seconds, nanos}
    FOREIGN = "foreign"  # a class of another library, which writes and reads its bytes


class Label(enum.Enum):
    """The label of the field in ``.proto`` text."""

    SINGULAR = ""
    OPTIONAL = "optional "
    REPEATED = "repeated "


class Presence(enum.Enum):
    """When the field is written."""

    IMPLICIT = "implicit"  # unless its value is the zero (see ZeroTest)
    EXPLICIT = "explicit"  # whenever it is not None, zero included
    ALWAYS = "always"  # every time (fixed arrays, Oneof fields and variants, defaults)


class ZeroTest(enum.Enum):
    """How an IMPLICIT field tells the zero value that is not written."""

    NONE = "none"  # never skipped (EXPLICIT and ALWAYS fields)
    FALSY = "falsy"  # 0, False, "", b"", an empty list or dict, an enum member equal to 0
    FLOAT = "float"  # +0.0 (-0.0 is written: its sign would be lost)
    EMPTY_BODY = "empty body"  # a message whose encoding is empty


class Absent(enum.Enum):
    """What a field that the bytes do not carry decodes to."""

    ZERO = "zero"  # FieldPlan.zero, an immutable value
    EMPTY_LIST = "empty list"  # a new list
    EMPTY_DICT = "empty dict"  # a new dict
    EMPTY_MESSAGE = "empty message"  # the message decoded from no bytes
    NONE = "none"
    DEFAULT = "default"  # the declared default, or a call of the declared factory
    REQUIRED = "required"  # an error: FieldPlan.required says what is missing


class Container(enum.Enum):
    """The Python container of a field's value."""

    NONE = "none"  # one value
    LIST = "list"  # a list of elements, each written as the field's value
    DICT = "dict"  # a dict: each item is one entry message
    BYTES_LIST = "bytes list"  # a list of ints 0..255, written as one bytes record


@dataclass(frozen=True)
class Newtype:
    """A transparent class: the Python value is ``cls(attr=inner)``, the wire has ``inner``."""

    cls: type
    attr: str

    def unwrap(self, value: Any) -> Any:
        """The inner value that the wire carries for ``value``, an instance of ``cls``."""
        return getattr(value, self.attr)

    def wrap(self, inner: Any) -> Any:
        """A new instance of ``cls`` holding ``inner``, made without calling ``__init__`` (so
        ``inner`` is not checked or converted) and with no unknown fields."""
        obj: Any = object.__new__(self.cls)
        object.__setattr__(obj, self.attr, inner)
        object.__setattr__(obj, "_pb_unknown", None)
        return obj


# ---------------------------------------------------------------------------------------------
# Values: the encoding of one element


@dataclass(frozen=True, eq=False)
class ScalarValue:
    """A scalar of one kind (``u8``, ``sint64``, ``string``, ...), written as that kind's
    protobuf type."""

    kind: ScalarKind

    @property
    def wire(self) -> int:
        """The wire type of one value (varint, 32-bit, 64-bit or length-delimited)."""
        return self.kind.wire

    @property
    def packable(self) -> bool:
        """Whether a list of these values is written packed (every kind but string and
        bytes)."""
        return self.kind.packable

    @property
    def proto(self) -> str:
        """The type's name in ``.proto`` text (``uint32`` for a ``u8``)."""
        return self.kind.proto


@dataclass(frozen=True, eq=False)
class EnumValue:
    """A proto enum. ``names`` are the ``.proto`` value names by number, in file order (the zero
    first, ``<ENUM>_UNSPECIFIED`` added when the class has no zero member)."""

    cls: type[enum.IntEnum]
    members: Mapping[int, enum.IntEnum]
    names: Mapping[int, str]
    #: Whether the class holds only its members: it has no ``_missing_`` of its own that could
    #: make up a pseudo-member for another number (which is not written).
    closed: bool = True
    #: Whether the class reads its members as numbers its own way (its own ``__int__``,
    #: ``__index__`` or ``__bool__``): a member is then written as ``int(member)``, and zero
    #: by that number, as the interpreter writes it, not by the number the member holds.
    converts: bool = False
    wire = WIRE_VARINT
    packable = True
    proto = "enum"

    @property
    def zero(self) -> enum.IntEnum | None:
        """The member numbered 0, which is not written in a message, or None when the enum
        has none."""
        return self.members.get(0)

    def number_of(self, name: str) -> int | None:
        """The number of a ``.proto`` value name or of a Python member name."""
        for number, text in self.names.items():
            if text == name and number in self.members:
                return number
        member = self.cls.__members__.get(name)
        return None if member is None else int(member)


@dataclass(frozen=True, eq=False)
class MessageValue:
    """A length-delimited message: a declared class's plan (looked up lazily, so that plans can
    refer to each other) or a synthetic message held here."""

    cls: type | None = None
    synthetic: MessagePlan | None = None
    wire = WIRE_LEN
    packable = False

    @property
    def message(self) -> MessagePlan:
        """The message's plan: the synthetic one, or the declared class's (built on first
        use by :func:`plan_of`, which raises ``SchemaError`` for a class it cannot plan)."""
        if self.synthetic is not None:
            return self.synthetic
        assert self.cls is not None
        return plan_of(self.cls)


ValuePlan = ScalarValue | EnumValue | MessageValue


# ---------------------------------------------------------------------------------------------
# Fields and messages


@dataclass(frozen=True, eq=False)
class FieldPlan:
    """One field of a message on the wire.

    ``attr`` says where the Python value lives in the message's value: an attribute name
    (STRUCT), an index (TUPLE, ENTRY) or None (WRAPPER, and a ONEOF's variant fields, whose
    value is the variant object). ``unwrap`` turns that value into the wire value (transparent
    classes, outermost first); in a LIST, ``elem_unwrap`` does so for each element. For an
    EXPLICIT field, ``none_at`` says how many of those classes are outside the optional: 0 for
    ``VmTime | None`` (the Python value may be None), 1 for a class holding ``u32 | None`` (its
    attribute may be None, and absence decodes to the class around None).
    ``pyname`` names the field in error paths.
    """

    name: str
    number: int
    value: ValuePlan
    pyname: str
    attr: str | int | None
    label: Label = Label.SINGULAR
    packed: bool = False
    presence: Presence = Presence.IMPLICIT
    zero_test: ZeroTest = ZeroTest.FALSY
    absent: Absent = Absent.ZERO
    zero: Any = None
    default: Any = MISSING
    default_factory: Any = MISSING
    required: str = ""
    container: Container = Container.NONE
    length: int | None = None
    unwrap: tuple[Newtype, ...] = ()
    none_at: int = 0
    elem_unwrap: tuple[Newtype, ...] = ()
    is_map: bool = False  # a proto ``map<K, V>`` (else a repeated entry message)
    variant: type | None = None  # a ONEOF's field: the variant class it stands for
    doc: str | None = None
    notes: tuple[str, ...] = ()  # trailing .proto comments (widths, lengths)
    json_name: str = ""
    # A scalar's or enum's default that is not the zero, as JSON text (an enum by its number):
    # what an absent field decodes to, recorded in the .proto for the compatibility checker.
    default_text: str = ""

    @property
    def tag(self) -> int:
        """The tag of one value of the field, ``number << 3 | wire`` (see :attr:`record_tag`
        for a packed list's record)."""
        return (self.number << 3) | self.value.wire

    @property
    def record_tag(self) -> int:
        """The tag of one record: a packed list is length-delimited."""
        return (self.number << 3) | (WIRE_LEN if self.packed else self.value.wire)

    @property
    def repeated(self) -> bool:
        """Whether the field is ``repeated`` in ``.proto`` text (a list or a map)."""
        return self.label is Label.REPEATED

    @property
    def nullable(self) -> bool:
        """Whether a message field or a fixed array is declared ``T | None`` (its absence
        decodes to None). Their ``.proto`` label is the same either way, unlike a scalar's
        ``optional``, while without ``| None`` a Oneof or a fixed array is required."""
        return self.presence is Presence.EXPLICIT and (
            isinstance(self.value, MessageValue) or self.length is not None
        )

    @property
    def message(self) -> MessagePlan | None:
        """The plan of the message the field holds, or None for a scalar or enum field."""
        return self.value.message if isinstance(self.value, MessageValue) else None

    def absent_value(self) -> Any:
        """The value of the field when the bytes do not carry it. EMPTY_MESSAGE (decode the
        message from no bytes) and REQUIRED (report ``required``) are the walker's to handle:
        they raise KeyError here."""
        a = self.absent
        if a is Absent.NONE:
            value = None
            for newtype in reversed(self.unwrap[: self.none_at]):
                value = newtype.wrap(value)
            return value
        if a is Absent.ZERO:
            value = self.zero
        elif a is Absent.EMPTY_LIST:
            value = []
        elif a is Absent.EMPTY_DICT:
            value = {}
        elif a is Absent.DEFAULT:
            value = (
                self.default_factory()
                if self.default_factory is not MISSING
                else self.default
            )
            return value  # declared in Python terms: not wrapped again
        else:
            raise KeyError(self.required)
        for newtype in reversed(self.unwrap):
            value = newtype.wrap(value)
        return value


@dataclass(frozen=True, eq=False)
class MessagePlan:
    """A protobuf message. ``nested`` are the messages declared inside it in ``.proto`` text, in
    their order there; ``described_as`` is ``(full name, import)`` when the message is written
    as an existing type (a well-known type, a ``*Value`` wrapper, a foreign class).
    ``plain_wrapper`` is the ``*Value`` wrapper that the text without annotations writes
    instead of this nested message, declared only for a note (``// u8``) that text leaves out;
    :meth:`described` gives the description of either text."""

    name: str
    form: Form
    fields: tuple[FieldPlan, ...]
    cls: type | None = None
    package: str | None = None
    nested: tuple[MessagePlan, ...] = ()
    described_as: tuple[str, str] | None = None
    plain_wrapper: tuple[str, str] | None = None
    doc: str | None = None
    reserved: tuple[range, ...] = ()  # sorted, disjoint ranges of step 1
    root: bool = False
    foreign: ForeignMessageType | None = None
    by_number: Mapping[int, FieldPlan] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_number", {f.number: f for f in self.fields})

    @property
    def keeps_unknown(self) -> bool:
        """Whether a decoded value keeps the records it does not know, to write them again:
        only a declared class (STRUCT) can."""
        return self.form is Form.STRUCT

    @property
    def full_name(self) -> str:
        """``package.Name``, or the bare name for a message without a package."""
        return f"{self.package}.{self.name}" if self.package else self.name

    @property
    def value_wrapper(self) -> bool:
        """Written as a ``google.protobuf.*Value`` (a one-element tuple of a builtin) in the
        annotated text, which the JSON mapping and the compatibility checker follow."""
        return self.described_as is not None and self.described_as[1] == WRAPPERS_IMPORT

    def described(self, annotate: bool) -> tuple[str, str] | None:
        """``(full name, import)`` of the existing type the ``.proto`` text written with
        ``annotate`` describes this message as, or None where it declares the message."""
        if annotate or self.described_as is not None:
            return self.described_as
        return self.plain_wrapper

    def variant_field(self, cls: type) -> FieldPlan | None:
        """The field of a ONEOF message that stands for the variant class ``cls``, or None
        when ``cls`` is not one of its variants."""
        for f in self.fields:
            if f.variant is cls:
                return f
        return None


# ---------------------------------------------------------------------------------------------
# Lowering

EMPTY = ("google.protobuf.Empty", "google/protobuf/empty.proto")
DURATION = ("google.protobuf.Duration", "google/protobuf/duration.proto")
WRAPPERS_IMPORT = "google/protobuf/wrappers.proto"
WELL_KNOWN_IMPORTS = {
    "google.protobuf.Any": "google/protobuf/any.proto",
    "google.protobuf.Duration": "google/protobuf/duration.proto",
    "google.protobuf.Empty": "google/protobuf/empty.proto",
    "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
    "google.protobuf.Struct": "google/protobuf/struct.proto",
    "google.protobuf.FieldMask": "google/protobuf/field_mask.proto",
    **{f"google.protobuf.{w}": WRAPPERS_IMPORT for w in WRAPPER_MESSAGES.values()},
}
# Kinds narrower than their proto type: the widths an annotated .proto file spells out.
NARROW = frozenset({"u8", "u16", "i8", "i16"})



def wellknown(cls: type) -> tuple[str, str] | None:
    """``(full name, import path)`` of a class standing for a well-known type, else None.

    A class says so with ``__savestate_wellknown__``: its full name (the import path then comes
    from ``__savestate_import__``, or is known for a ``google.protobuf`` type), or the pair
    ``(full name, import path)``.
    """
    mark = getattr(cls, "__savestate_wellknown__", None)
    if mark is None:
        return None
    if isinstance(mark, str) and mark:
        path = getattr(cls, "__savestate_import__", None) or WELL_KNOWN_IMPORTS.get(mark)
        if path is None:
            raise SchemaError(
                f"well-known type {mark!r} has no known import: give (name, import path)",
                [cls.__name__],
            )
        return mark, str(path)
    if (
        isinstance(mark, tuple)
        and len(mark) == 2
        and all(isinstance(part, str) and part for part in mark)
    ):
        return mark[0], mark[1]
    raise SchemaError(
        f"__savestate_wellknown__ must be a name or (name, import path), got {mark!r}",
        [cls.__name__],
    )


def is_sequence(t: TypeSchema) -> bool:
    """Whether a value of ``t`` must be wrapped where it is one element of something else: an
    optional, a list other than ``list[u8]`` or a map (through transparent classes). Its own
    encoding may write no record, or several."""
    while isinstance(t, TransparentType):
        t = t.field.type
    if isinstance(t, RepeatedType):
        return not _is_u8(t.elem)
    return isinstance(t, (OptionalType, MapType))


@dataclass
class _Shape:
    """A type lowered to field level, before the field's own presence and absence."""

    value: ValuePlan
    label: Label = Label.SINGULAR
    packed: bool = False
    container: Container = Container.NONE
    length: int | None = None
    unwrap: tuple[Newtype, ...] = ()
    none_at: int = 0  # how many of ``unwrap`` are outside the optional
    elem_unwrap: tuple[Newtype, ...] = ()
    is_map: bool = False
    optional: bool = False  # written whenever not None
    oneof: bool = False  # a Oneof message: always written, absence is an error
    duration: bool = False
    notes: tuple[str, ...] = ()


class _Scope:
    """The messages nested in one message being lowered, and the names taken in it."""

    def __init__(self) -> None:
        self.messages: list[MessagePlan] = []
        self.names: dict[str, str] = {}

    def claim(self, name: str, what: str, where: list[str]) -> None:
        previous = self.names.get(name)
        if previous is not None:
            raise SchemaError(
                f"{what} {name!r} clashes with {previous} of the same name in the .proto output",
                where,
            )
        self.names[name] = what

    def declare(self, plan: MessagePlan, where: list[str]) -> None:
        self.claim(plan.name, "nested message", where)
        self.messages.append(plan)


@dataclass(frozen=True)
class _Place:
    """Where a message that a type needs goes: its name, and the scope it is declared in."""

    name: str
    scope: _Scope


def _shape(t: TypeSchema, place: _Place, where: list[str]) -> _Shape:
    """Lower the type of one field; messages it needs are declared at ``place``."""
    if isinstance(t, TransparentType):
        inner = _shape(t.field.type, place, where)
        inner.unwrap = (Newtype(t.cls, t.field.name), *inner.unwrap)
        if inner.optional:
            inner.none_at += 1
        return inner
    if isinstance(t, ScalarType):
        return _Shape(ScalarValue(t.kind), notes=_width_notes(t.kind, ""))
    if isinstance(t, EnumType):
        return _Shape(enum_value(t.cls))
    if isinstance(t, MessageType):
        return _Shape(MessageValue(cls=t.cls))
    if isinstance(t, OneofType):
        return _Shape(MessageValue(cls=t.cls), oneof=True)
    if isinstance(t, DurationType):
        return _Shape(MessageValue(synthetic=_DURATION_PLAN), duration=True)
    if isinstance(t, ForeignMessageType):
        return _Shape(MessageValue(synthetic=_foreign_plan(t)))
    if isinstance(t, TupleType):
        return _Shape(MessageValue(synthetic=_tuple(t, place, where)))
    if isinstance(t, OptionalType):
        shape = _element(t.inner, place, where)
        shape.optional = True
        shape.none_at = 0
        if shape.label is Label.SINGULAR and not isinstance(shape.value, MessageValue):
            shape.label = Label.OPTIONAL
        return shape
    if isinstance(t, RepeatedType):
        if _is_u8(t.elem):
            return _Shape(ScalarValue(scalars.BYTES), container=Container.BYTES_LIST)
        elem = _element(t.elem, place, where)
        if elem.container is not Container.NONE or elem.label is Label.REPEATED:
            raise _nested_sequence("a list", t.elem, elem, where)
        return _Shape(
            elem.value,
            label=Label.REPEATED,
            # A transparent element has no packed form (the derive writes one record each).
            packed=elem.value.packable and not elem.unwrap,
            container=Container.LIST,
            elem_unwrap=elem.unwrap,
            notes=elem.notes,
        )
    if isinstance(t, FixedArrayType):
        return _fixed(t, place, where)
    if isinstance(t, MapType):
        return _map(t, place, where)
    raise AssertionError(t)  # pragma: no cover - introspection admits no other type


def _nested_sequence(what: str, t: TypeSchema, elem: _Shape, where: list[str]) -> SchemaError:
    """The error for a list or array whose elements are themselves a byte list or a packed
    array: each would be a record of its own, which no element of a .proto message is."""
    if elem.label is Label.REPEATED:
        return SchemaError(
            f"cannot encode {what} of {t}: its elements are fixed-length arrays of numbers, "
            "each written as one packed record, which no .proto can describe (declare a "
            "message holding the array as the element)",
            where,
        )
    return SchemaError(f"cannot encode {what} of {t}: declare its elements as bytes", where)


def _element(t: TypeSchema, place: _Place, where: list[str]) -> _Shape:
    """The shape of one element of a list, an optional's payload or a map's value: a sequence
    is wrapped in a message ``{field1 = 1}`` named after the field."""
    if not is_sequence(t):
        return _shape(t, place, where)
    scope = _Scope()
    inner = _shape(t, _Place("Field1", scope), where)
    f = _finish_field(inner, FieldSchema(name="", number=1, type=t), "field1", None)
    wrapper = MessagePlan(place.name, Form.WRAPPER, (f,), nested=tuple(scope.messages))
    place.scope.declare(wrapper, where)
    return _Shape(MessageValue(synthetic=wrapper))


def _tuple(t: TupleType, place: _Place, where: list[str]) -> MessagePlan:
    scope = _Scope()
    fields = tuple(
        _field(FieldSchema(name=f"[{i}]", number=i + 1, type=e), f"field{i + 1}", i, scope,
               [*where, f"[{i}]"])
        for i, e in enumerate(t.elems)
    )
    described, plain = _wrapper_message(fields)
    plan = MessagePlan(
        place.name, Form.TUPLE, fields, nested=tuple(scope.messages), described_as=described,
        plain_wrapper=plain,
    )
    if described is None:
        place.scope.declare(plan, where)
    return plan


def _fixed(t: FixedArrayType, place: _Place, where: list[str]) -> _Shape:
    """A fixed-length array: bytes for u8, packed numbers, else a wrapper message of the
    elements; always written, never wrapped again."""
    notes = (f"length {t.length}",)
    if _is_u8(t.elem):
        return _Shape(
            ScalarValue(scalars.BYTES),
            container=Container.NONE if t.python_bytes else Container.BYTES_LIST,
            length=t.length,
            notes=notes,
        )
    scope = _Scope()
    elem = _element(t.elem, _Place("Field1", scope), where)
    if elem.container is not Container.NONE or elem.label is Label.REPEATED:
        # A byte list or a packed array is not wrapped as an element (the derive writes each
        # as a record of its own), so the wrapper below would hold it as one scalar.
        raise _nested_sequence("a fixed-length array", t.elem, elem, where)
    if elem.value.packable and not elem.unwrap:
        return _Shape(
            elem.value, label=Label.REPEATED, packed=True, container=Container.LIST,
            length=t.length, notes=(*notes, *elem.notes),
        )
    repeated = _Shape(
        elem.value, label=Label.REPEATED, container=Container.LIST,
        elem_unwrap=elem.unwrap, notes=elem.notes,
    )
    f = _finish_field(repeated, FieldSchema(name="", number=1, type=t), "field1", None)
    wrapper = MessagePlan(place.name, Form.WRAPPER, (f,), nested=tuple(scope.messages))
    place.scope.declare(wrapper, where)
    return _Shape(MessageValue(synthetic=wrapper), length=t.length, notes=notes)


def _map(t: MapType, place: _Place, where: list[str]) -> _Shape:
    """Repeated entries ``{key = 1; value = 2}``: a proto ``map<K, V>`` when protobuf allows
    it (then a message the value needs is named after the field, beside it), else a repeated
    entry message named after the field."""
    # protoc's map<K, V> takes no value that .proto text labels (optional, repeated): decide
    # from the value's shape, lowered once aside to look.
    probe = _shape(t.value, _Place("Value", _Scope()), where)
    is_map = (
        isinstance(t.key, ScalarType)
        and t.key.kind.proto in MAP_KEYS
        and not probe.optional
        and probe.label is Label.SINGULAR
        and probe.container in (Container.NONE, Container.BYTES_LIST)
    )
    key_f = FieldSchema(name="key", number=1, type=t.key)
    value_f = FieldSchema(name="value", number=2, type=t.value)
    if is_map:
        key = _finish_field(_shape(t.key, place, where), key_f, "key", 0)
        value = _finish_field(_shape(t.value, place, where), value_f, "value", 1)
        entry = MessagePlan(f"{place.name}Entry", Form.ENTRY, (key, value))
        place.scope.claim(entry.name, "map entry", where)
        notes = tuple(
            f"{part} {n}" for part, f in (("key", key), ("value", value)) for n in f.notes
        )
    else:
        scope = _Scope()
        fields = (
            _field(key_f, "key", 0, scope, where),
            _field(value_f, "value", 1, scope, where),
        )
        entry = MessagePlan(place.name, Form.ENTRY, fields, nested=tuple(scope.messages))
        place.scope.declare(entry, where)
        notes = ()
    return _Shape(
        MessageValue(synthetic=entry), label=Label.REPEATED, container=Container.DICT,
        is_map=is_map, notes=notes,
    )


def _field(
    f: FieldSchema, proto_name: str, attr: str | int | None, scope: _Scope, where: list[str]
) -> FieldPlan:
    shape = _shape(f.type, _Place(upper_camel_case(proto_name), scope), where)
    return _finish_field(shape, f, proto_name, attr)


def _finish_field(
    shape: _Shape, f: FieldSchema, proto_name: str, attr: str | int | None
) -> FieldPlan:
    """Presence, zero test and absence of a field of ``shape``, declared as ``f``."""
    value = shape.value
    presence = Presence.IMPLICIT
    absent = Absent.ZERO
    zero: Any = None
    required = ""
    label = shape.label
    if shape.optional:
        presence, absent = Presence.EXPLICIT, Absent.NONE
    elif shape.length is not None:
        # Always written, as the reference writes it: only bytes from elsewhere (an older
        # release, before the field was added) lack it. The reference refuses those; a default
        # declared says what they mean, as it does for a Oneof.
        presence = Presence.ALWAYS
        absent = Absent.DEFAULT if f.has_default else Absent.REQUIRED
        required = "missing required field (a fixed-length array)"
    elif shape.container is Container.DICT:
        absent = Absent.EMPTY_DICT
    elif shape.container is not Container.NONE:
        absent = Absent.EMPTY_LIST
    elif shape.oneof:
        presence = Presence.ALWAYS
        absent = Absent.DEFAULT if f.has_default else Absent.REQUIRED
        required = "missing required field (a Oneof variant)"
    elif f.always and (shape.duration or isinstance(value, MessageValue)):
        # A default that a decode of no bytes would not give: written even when zero, as a
        # scalar's is (below).
        presence, absent = Presence.ALWAYS, Absent.DEFAULT
    elif shape.duration:
        zero = datetime.timedelta(0)
    elif isinstance(value, MessageValue):
        absent = Absent.EMPTY_MESSAGE
    else:
        zero = _zero_of(value)
        if f.always:
            # A default that is not the zero: written even when zero, so that a decode (which
            # fills a missing field from the default) gives back exactly what was encoded.
            presence, absent = Presence.ALWAYS, Absent.DEFAULT
            label = Label.OPTIONAL
        elif zero is MISSING:
            absent = Absent.DEFAULT if f.has_default else Absent.REQUIRED
            required = f"missing required field ({f.type} has no zero value)"
    zero_test = ZeroTest.NONE
    if presence is Presence.IMPLICIT:
        if isinstance(value, MessageValue) and shape.container is Container.NONE:
            zero_test = ZeroTest.EMPTY_BODY
        elif (
            isinstance(value, ScalarValue)
            and value.kind.python is float
            and shape.container is Container.NONE
        ):
            zero_test = ZeroTest.FLOAT
        else:
            zero_test = ZeroTest.FALSY
    return FieldPlan(
        name=proto_name,
        number=f.number,
        value=value,
        pyname=f.name,
        attr=attr,
        label=label,
        packed=shape.packed,
        presence=presence,
        zero_test=zero_test,
        absent=absent,
        zero=None if zero is MISSING else zero,
        default=f.default,
        default_factory=f.default_factory,
        required=required,
        container=shape.container,
        length=shape.length,
        unwrap=shape.unwrap,
        none_at=shape.none_at,
        elem_unwrap=shape.elem_unwrap,
        is_map=shape.is_map,
        doc=f.doc,
        notes=shape.notes,
        json_name=json_name(proto_name),
        default_text=_default_text(f, shape) if f.always else "",
    )


def _default_text(f: FieldSchema, shape: _Shape) -> str:
    """The JSON text of a non-zero scalar or enum default, seen through transparent classes:
    ``5``, ``true``, ``"text"``, base64 for bytes, an enum value's number."""
    value = f.default_factory() if f.default_factory is not MISSING else f.default
    for newtype in shape.unwrap:
        value = newtype.unwrap(value)
    if isinstance(value, datetime.timedelta):
        return json.dumps(duration_json(value))
    if not isinstance(value, (bool, int, float, str, bytes, bytearray)):
        return ""  # a message or tuple: no note, and the checker does not compare it
    if isinstance(value, (bytes, bytearray)):
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, int) and not isinstance(value, bool):  # IntEnum members too
        return str(int(value))
    return json.dumps(value)


def duration_json(value: datetime.timedelta) -> str:
    """A timedelta as proto3 JSON writes a Duration: ``"1.000010s"`` (with 0, 3, 6 or 9
    fractional digits)."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, nanos = abs(micros) // 1_000_000, abs(micros) % 1_000_000 * 1000
    if nanos == 0:
        frac = ""
    elif nanos % 1_000_000 == 0:
        frac = f".{nanos // 1_000_000:03d}"
    elif nanos % 1000 == 0:
        frac = f".{nanos // 1000:06d}"
    else:
        frac = f".{nanos:09d}"
    return f"{sign}{seconds}{frac}s"


def _is_u8(t: TypeSchema) -> bool:
    return isinstance(t, ScalarType) and t.kind.name == "u8"


def _zero_of(value: ValuePlan) -> Any:
    if isinstance(value, ScalarValue):
        return value.kind.zero
    if isinstance(value, EnumValue):
        zero = value.zero
        return MISSING if zero is None else zero
    return MISSING


def _width_notes(kind: ScalarKind, prefix: str) -> tuple[str, ...]:
    return (f"{prefix}{kind.name}",) if kind.name in NARROW else ()


def _wrapper_message(
    fields: tuple[FieldPlan, ...],
) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """The google.protobuf.*Value message describing a message of ``fields`` (a tuple or a
    tuple variant), as ``(described_as, plain_wrapper)`` of its plan.

    The reference writer uses one for a single builtin field without an annotation: a scalar
    without a doc or a default of its own, a transparent class being its inner type. A note
    (``// u8``) is an annotation too, but only the annotated text has it: there the nested
    message stays, whose field has a line for the comment (``described_as`` None, and
    ``plain_wrapper`` the wrapper that the text without annotations, the reference writer's,
    which has no widths, writes instead)."""
    if len(fields) != 1:
        return None, None
    f = fields[0]
    if f.doc or f.label is not Label.SINGULAR or f.absent is Absent.DEFAULT:
        return None, None
    if not isinstance(f.value, ScalarValue):
        return None, None
    wrapper = WRAPPER_MESSAGES.get(f.value.proto)
    if wrapper is None:
        return None, None
    described = (f"google.protobuf.{wrapper}", WRAPPERS_IMPORT)
    return (None, described) if f.notes else (described, None)


_enum_cache: dict[type, EnumValue] = {}
_lock = threading.RLock()


def enum_value(cls: type[enum.IntEnum]) -> EnumValue:
    """The plan of an ``IntEnum`` (made once per class)."""
    with _lock:
        found = _enum_cache.get(cls)
        if found is None:
            members = {int(m.value): m for m in cls}
            missing = getattr(cls._missing_, "__func__", None)
            closed = missing is getattr(enum.Enum._missing_, "__func__", None)
            converts = (cls.__bool__, cls.__int__, cls.__index__) != (
                int.__bool__, int.__int__, int.__index__)
            found = EnumValue(cls, members, enum_value_names(cls), closed, converts)
            _enum_cache[cls] = found
        return found


_DURATION_PLAN = MessagePlan(
    "Duration",
    Form.DURATION,
    (
        FieldPlan("seconds", 1, ScalarValue(scalars.INT64), "seconds", 0, zero=0,
                  json_name="seconds"),
        FieldPlan("nanos", 2, ScalarValue(scalars.INT32), "nanos", 1, zero=0,
                  json_name="nanos"),
    ),
    described_as=DURATION,
)


def _foreign_plan(t: ForeignMessageType) -> MessagePlan:
    return MessagePlan(
        t.full_name.rpartition(".")[2], Form.FOREIGN, (), cls=t.cls,
        described_as=(t.full_name, t.proto_file), foreign=t,
    )


# -- declared classes


def _struct_fields(fields: tuple[FieldSchema, ...], owner: str, scope: _Scope,
                   proto_names: bool = True) -> tuple[FieldPlan, ...]:
    out = []
    for f in fields:
        where = [owner, f.name]
        name = f.name if proto_names else f"field{f.number}"
        scope.claim(name, "field", where)
        out.append(_field(f, name, f.name, scope, where))
    check_json_names(owner, [(p.pyname, p.name) for p in out])  # also at declaration
    return tuple(out)


def _lower_struct(schema: MessageSchema, root: bool) -> MessagePlan:
    scope = _Scope()
    fields = _struct_fields(schema.fields, schema.cls.__name__, scope)
    return MessagePlan(
        schema.name,
        Form.STRUCT,
        fields,
        cls=schema.cls,
        package=schema.package,
        nested=tuple(scope.messages),
        described_as=wellknown(schema.cls),
        doc=schema.doc,
        reserved=schema.reserved,
        root=root,
    )


def _lower_oneof(schema: OneofSchema) -> MessagePlan:
    """``message E { oneof variant { ... } }``: the nested messages of struct variants come
    first, then those of the other variants, as the derive's writer orders them."""
    where = [schema.name]
    members = _Scope()
    members.claim("variant", "the oneof", where)
    structs, others = _Scope(), _Scope()
    fields = []
    for v in schema.variants:
        member = snake_case(v.name)
        members.claim(member, "oneof member", [schema.name, v.name])
        fields.append(_variant_field(v, member, structs, others, [schema.name, v.name]))
    for m in (*structs.messages, *others.messages):
        members.claim(m.name, "nested message", where)
    return MessagePlan(
        schema.name,
        Form.ONEOF,
        tuple(fields),
        cls=schema.cls,
        package=schema.package,
        nested=(*structs.messages, *others.messages),
        doc=schema.doc,
        reserved=schema.reserved,
    )


def _variant_field(
    v: VariantSchema, member: str, structs: _Scope, others: _Scope, where: list[str]
) -> FieldPlan:
    """The oneof member of one variant: always written (a unit variant as an empty message),
    its value the variant object."""
    variant: dict[str, Any] = {
        "number": v.number, "pyname": v.name, "presence": Presence.ALWAYS,
        "zero_test": ZeroTest.NONE, "absent": Absent.REQUIRED, "variant": v.cls, "doc": v.doc,
        "json_name": json_name(member), "name": member,
        "required": f"missing variant {v.name}",
    }
    message = v.message
    if v.kind == "transparent":
        f = message.fields[0]
        fwhere = [*where, f.name]
        place = _Place(upper_camel_case(member), others)
        shape = _element(f.type, place, fwhere)
        if shape.length is not None and shape.label is Label.REPEATED:
            raise SchemaError(
                f"a transparent variant cannot hold {f.type}: a oneof member cannot be a "
                "packed array (declare it with tuple=True)",
                fwhere,
            )
        built = _finish_field(shape, f, member, None)
        return dataclasses.replace(
            built, unwrap=(Newtype(v.cls, f.name), *built.unwrap), label=Label.SINGULAR,
            **variant,
        )
    if v.kind == "unit":
        plan = MessagePlan(v.name, Form.STRUCT, (), cls=v.cls, described_as=EMPTY)
        return FieldPlan(value=MessageValue(synthetic=plan), attr=None, **variant)
    if v.kind == "struct":
        scope = _Scope()
        fields = _struct_fields(message.fields, v.name, scope)
        plan = MessagePlan(
            v.name, Form.STRUCT, fields, cls=v.cls, nested=tuple(scope.messages),
            reserved=message.reserved,
        )
        structs.declare(plan, where)
        return FieldPlan(value=MessageValue(synthetic=plan), attr=None, **variant)
    # A tuple variant: fields 1..n named field1..n, their Python attributes the class's own.
    scope = _Scope()
    fields = _struct_fields(message.fields, v.name, scope, proto_names=False)
    described, plain = _wrapper_message(fields)
    plan = MessagePlan(
        upper_camel_case(member), Form.STRUCT, fields, cls=v.cls,
        nested=tuple(scope.messages), described_as=described, plain_wrapper=plain,
    )
    if described is None:
        others.declare(plan, where)
    return FieldPlan(value=MessageValue(synthetic=plan), attr=None, **variant)


# ---------------------------------------------------------------------------------------------
# Entry points


def plan_of(cls: type) -> MessagePlan:
    """The plan of a declared message or Oneof class (lowered on first call, then cached).

    A variant's plan is its Oneof's. Raises :class:`SchemaError` for a class that cannot be
    described on the wire.
    """
    with _lock:
        found = _plans.get(cls)
        if found is not None:
            return found
    info = info_of(cls)
    if info is not None and info.kind == "variant":
        return plan_of(next(b for b in cls.__mro__[1:] if _is_oneof(b)))
    schema = schema_of(cls)
    if isinstance(schema, OneofSchema):
        plan = _lower_oneof(schema)
    else:
        plan = _lower_struct(schema, root=info is not None and info.root)
    with _lock:
        return _plans.setdefault(cls, plan)


_plans: dict[type, MessagePlan] = {}


def _is_oneof(cls: type) -> bool:
    info = info_of(cls)
    return info is not None and info.kind == "oneof"


def messages_in(plan: MessagePlan) -> Iterator[MessagePlan]:
    """``plan`` and every synthetic message inside it (not the declared classes it refers
    to), outermost first."""
    yield plan
    for f in plan.fields:
        if isinstance(f.value, MessageValue) and f.value.synthetic is not None:
            yield from messages_in(f.value.synthetic)


def references(plan: MessagePlan) -> Iterator[type]:
    """The declared classes and enums that ``plan``'s fields refer to, in field order."""
    for m in messages_in(plan):
        for f in m.fields:
            vp = f.value
            if isinstance(vp, EnumValue) or (isinstance(vp, MessageValue) and vp.cls is not None):
                yield vp.cls  # type: ignore[misc]


def reachable(roots: list[type], follow: Callable[[type], bool] | None = None) -> list[type]:
    """Every declared class (and ``IntEnum``) reachable from ``roots``, roots first, each once.
    ``follow`` says whether to look inside a class (default: always)."""
    order: list[type] = []
    seen: set[type] = set()
    stack = list(reversed(roots))
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        order.append(cls)
        if issubclass(cls, enum.IntEnum) or (follow is not None and not follow(cls)):
            continue
        stack.extend(reversed(list(references(plan_of(cls)))))
    return order


def fingerprint(cls: type) -> tuple[str, list[object]]:
    """A short text that stands for everything the wire plans of ``cls`` and of the declared
    classes it reaches say, and the objects those plans hold (classes, enum members, defaults,
    factories), in the order the plans mention them.

    Each plan is spelled out in full, every number, string and flag in it, and an object it
    cannot spell (a class, a callable, a value of a user's type) is named by its type and its
    position in the list; the text is a digest of each reachable class's spelling (Python's
    source hash), with the references between them. Two classes with the same text therefore
    have the same plans up to which objects sit at those positions: the key under which a codec
    generated from the plans is kept (:mod:`savestate.codec.cache`), with the objects found
    again by position.
    """
    text: list[str] = []
    objects: list[object] = []
    number: dict[type, int] = {cls: 0}
    queue = [cls]
    for current in queue:  # grows as references are found
        digest, own_objects, refs = _spelling(current)
        for ref in refs:
            if ref not in number:
                number[ref] = len(number)
                queue.append(ref)
        text.append(f"{number[current]}{[number[r] for r in refs]}{digest}\n")
        objects.extend(own_objects)
    return "".join(text), objects


def _spelling(cls: type) -> tuple[str, list[object], list[type]]:
    """One class's part of :func:`fingerprint`: a digest of its plan spelled out, the objects
    the plan holds, and the declared classes it refers to, numbered by first mention (made once
    per class, as its plan is)."""
    with _lock:
        found = _spellings.get(cls)
    if found is None:
        out: list[str] = []
        objects: list[object] = []
        refs: dict[type, int] = {}
        _spell(plan_of(cls), out, objects, refs)
        # Python's source hash (as hash-based .pyc files use): a 64-bit keyed SipHash.
        digest = importlib.util.source_hash("".join(out).encode()).hex()
        found = (digest, objects, list(refs))
        with _lock:
            found = _spellings.setdefault(cls, found)
    return found


_spellings: dict[type, tuple[str, list[object], list[type]]] = {}
# A range (reserved numbers) is plain too: its repr spells it exactly.
_PLAIN: frozenset[type] = frozenset({bool, int, float, str, bytes, range, type(None)})
# How _spell reads an object of each type met so far: "plain" values are spelled with repr;
# "member" values (the plan's own enums, scalar kinds) by name; a getter reads the fields of a
# plan dataclass (and its class, so that it returns a tuple even for one field); "items" and
# "mapping" are containers; anything else is an "object", named by its type.
_reading: dict[type, str | Callable[[Any], tuple[Any, ...]]] = {kind: "plain" for kind in _PLAIN}


def _reading_of(kind: type) -> str | Callable[[Any], tuple[Any, ...]]:
    in_model = kind.__module__.startswith("savestate.model")
    how: str | Callable[[Any], tuple[Any, ...]]
    if in_model and (issubclass(kind, enum.Enum) or kind is ScalarKind):
        how = "member"  # the library's own constants, spelled by name
    elif in_model and dataclasses.is_dataclass(kind):
        # Not the indexes derived from other fields (``compare=False``: ``by_number``).
        names = [f.name for f in dataclasses.fields(kind) if f.compare]
        how = operator.attrgetter(*names, "__class__")  # a tuple even for one name
    elif kind in (tuple, list, frozenset):
        how = "items"
    elif issubclass(kind, Mapping):
        how = "mapping"
    else:
        how = "object"
    _reading[kind] = how
    return how


def _spell(node: Any, out: list[str], objects: list[object], refs: dict[type, int]) -> None:
    kind = type(node)
    how = _reading.get(kind) or _reading_of(kind)
    if how == "plain":
        out.append(f"{kind.__name__}:{node!r};")
        return
    if how == "member":
        out.append(f"{kind.__name__}.{node.name};")
        return
    objects.append(node)
    if kind is MessageValue and node.cls is not None:
        objects.append(node.cls)
        out.append(f"MessageValue(ref {refs.setdefault(node.cls, len(refs))});")
    elif type(how) is operator.attrgetter:
        out.append(f"{kind.__name__}(")
        for value in how(node)[:-1]:
            # Most fields are plain values: spelled here, without a call for each.
            if type(value) in _PLAIN:
                out.append(f"{value!r};")
            else:
                _spell(value, out, objects, refs)
        out.append(");")
    elif how == "items":
        out.append(f"{kind.__name__}[")
        for item in sorted(node, key=repr) if kind is frozenset else node:
            _spell(item, out, objects, refs)
        out.append("];")
    elif how == "mapping":
        out.append("{")
        for key, value in node.items():
            _spell(key, out, objects, refs)
            _spell(value, out, objects, refs)
        out.append("};")
    else:  # named by its type; found again by its position in ``objects``
        what = node if isinstance(node, type) else kind
        out.append(f"object {what.__module__}.{what.__qualname__};")


def check_recursion(cls: type) -> None:
    """A message that contains itself through fields that are always present (not optional,
    not in a list or map) could never be decoded: each absent field would decode the same
    message again."""

    def required_refs(c: type) -> Iterator[tuple[str, type]]:
        plan = plan_of(c)
        if plan.form is not Form.STRUCT:
            return
        for f in plan.fields:
            todo = [f]
            while todo:  # a message, or one inside (nested) tuples: all always present
                g = todo.pop()
                if g.absent is not Absent.EMPTY_MESSAGE or not isinstance(g.value, MessageValue):
                    continue
                if g.value.cls is not None:
                    yield f.pyname, g.value.cls
                else:
                    todo.extend(g.value.message.fields)

    path: list[str] = []
    visiting: set[type] = set()

    def visit(c: type) -> None:
        if c in visiting:
            raise SchemaError(
                "a message cannot contain itself through required fields; make the "
                "field `| None` or a list",
                [*path],
            )
        visiting.add(c)
        for name, ref in required_refs(c):
            path.append(f"{c.__name__}.{name}")
            visit(ref)
            path.pop()
        visiting.discard(c)

    visit(cls)
