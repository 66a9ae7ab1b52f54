"""From Python annotations to the schema model.

Resolves a declared class's annotations (lazily, so forward references work), maps each one to
a :mod:`savestate.model.schema` type, validates it, and caches the frozen result on the class.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any

import typing_extensions

from ..errors import SchemaError, short_repr
from . import scalars
from .foreign import foreign_type
from .registry import FIELD_KEY, LOCK, ClassInfo, FieldOptions, declared_info, info_of
from .scalars import ScalarKind
from .schema import (
    MISSING,
    DurationType,
    EnumType,
    FieldSchema,
    FixedArrayType,
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
)

__all__ = ["build_schema", "message_schema", "oneof_schema", "schema_of"]



def schema_of(cls: type) -> MessageSchema | OneofSchema:
    """The schema of a declared class (built on first call)."""
    info = declared_info(cls)
    if info.schema is None:
        try:
            build_schema(cls)
        except NameError as exc:
            # At class creation an undefined name may be a class declared later; at first use
            # it is a mistake, reported like every other declaration mistake.
            raise unresolved_annotation(cls, exc) from exc
    schema: MessageSchema | OneofSchema | None = info.schema
    assert schema is not None
    return schema


def message_schema(cls: type) -> MessageSchema:
    """The schema of a declared ``Protobuf`` class, as :func:`schema_of` builds it (and raises
    its ``SchemaError``); the class must not be a Oneof (an ``AssertionError`` then)."""
    schema = schema_of(cls)
    assert isinstance(schema, MessageSchema)
    return schema


def oneof_schema(cls: type) -> OneofSchema:
    """The schema of a declared ``Oneof`` class, as :func:`schema_of` builds it (and raises
    its ``SchemaError``); the class must be a Oneof (an ``AssertionError`` otherwise)."""
    schema = schema_of(cls)
    assert isinstance(schema, OneofSchema)
    return schema


def unresolved_annotation(cls: type, exc: NameError) -> SchemaError:
    """The :class:`SchemaError` for an annotation naming something undefined, naming the
    class and (when it can be told) the field whose annotation holds the name."""
    missing = getattr(exc, "name", None)
    owner = getattr(exc, "savestate_class", cls)  # the class (a variant) that failed
    where = [owner.__name__]
    try:
        own = inspect.get_annotations(owner)
    except Exception:  # only to find the field to name; the error stands
        own = {}
    for fname, annotation in own.items():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if missing is not None and re.search(rf"\b{re.escape(missing)}\b", text):
            where.append(fname)
            return SchemaError(
                f"cannot resolve the annotation {text!r}: name {missing!r} is not defined "
                "(a typo, or a class that is never declared?)",
                where,
            )
    return SchemaError(f"cannot resolve an annotation: {exc}", where)


def build_schema(cls: type) -> None:
    """Build and cache the schema of ``cls``; raises NameError while a name is undefined."""
    info = declared_info(cls)
    if info.schema is not None:
        return
    if info.kind == "oneof":
        schema: MessageSchema | OneofSchema = _build_oneof(cls, info)
    else:
        schema = _build_message(cls, info)
    with LOCK:
        if info.schema is None:
            info.schema = schema


def _doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return None
    # dataclasses invents a signature docstring when there is none.
    if doc.startswith(f"{cls.__name__}("):
        return None
    return _clean_doc(doc)


def _clean_doc(doc: str) -> str:
    return inspect.cleandoc(doc)


class _Annotations:
    """Holds one class's own field annotations, for ``get_type_hints`` to resolve (resolving
    the class itself would also walk the library's base classes)."""

    def __init__(self, annotations: dict[str, Any]) -> None:
        self.__annotations__ = annotations


def _hints(cls: type, info: ClassInfo) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    own = inspect.get_annotations(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    holder = _Annotations({name: own[name] for name in names})
    try:
        return typing.get_type_hints(
            holder, globalns=globalns, localns=_LocalChain(info.localns), include_extras=True
        )
    except NameError as exc:
        if not hasattr(exc, "savestate_class"):  # the innermost class, for the message
            setattr(exc, "savestate_class", cls)  # noqa: B010 - an attribute of our own
        raise
    except Exception as exc:  # a malformed annotation: report it against the class
        raise SchemaError(f"cannot resolve annotations: {exc}", [cls.__name__]) from exc


class _LocalChain(dict[str, Any]):
    """Local names for ``eval``: a dict (as ``get_type_hints`` wants) that falls back to the
    class's scope namespace, looked up when a name is missing."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        super().__init__()
        self._scope = scope

    def __missing__(self, key: str) -> Any:
        return self._scope[key]


def _build_message(cls: type, info: ClassInfo) -> MessageSchema:
    hints = _hints(cls, info)
    fields: list[FieldSchema] = []
    for f in dataclasses.fields(cls):
        options: FieldOptions = f.metadata[FIELD_KEY]
        where = [cls.__name__, f.name]
        t = to_type(hints[f.name], where, options.length)
        fields.append(_field_schema(f, options, t, where))
    if info.kind == "variant":
        _check_variant_fields(cls, info, fields)
    elif info.transparent and len(fields) != 1:
        raise SchemaError(
            f"a transparent class has exactly one field, got {len(fields)}", [cls.__name__]
        )
    return MessageSchema(
        cls=cls,
        name=info.name,
        package=info.package,
        fields=tuple(fields),
        doc=_doc(cls),
        reserved=info.reserved,
    )


def _check_variant_fields(cls: type, info: ClassInfo, fields: list[FieldSchema]) -> None:
    if info.transparent and len(fields) != 1:
        raise SchemaError("a transparent variant has exactly one field", [cls.__name__])
    if info.tuple:
        numbers = [f.number for f in fields]
        if numbers != list(range(1, len(fields) + 1)):
            raise SchemaError(
                f"a tuple variant's fields are numbered 1..n in order, got {numbers}",
                [cls.__name__],
            )


def _field_schema(
    f: dataclasses.Field[Any], options: FieldOptions, t: TypeSchema, where: list[str]
) -> FieldSchema:
    default: Any = MISSING if f.default is dataclasses.MISSING else f.default
    factory: Any = MISSING if f.default_factory is dataclasses.MISSING else f.default_factory
    always = False
    if isinstance(t, OptionalType):
        if default is not None and (default is not MISSING or factory is not MISSING):
            raise SchemaError(
                "an optional field's default must be None (None is how absence is decoded)",
                where,
            )
    else:
        # A default that is not the wire zero: the field is then written even when zero. A
        # transparent class's default is looked at through the class.
        inner: TypeSchema = t
        value, seen_through = default, True
        while isinstance(inner, TransparentType):
            if value is not MISSING:
                seen_through = type(value) is inner.cls
                value = getattr(value, inner.field.name, None) if seen_through else None
            inner = inner.field.type
        if isinstance(inner, (ScalarType, EnumType)):
            if factory is not MISSING:
                always = True
                if inner is t:  # called once, to check it; a decode calls it again
                    _check_default_fits(inner, _call_factory(factory, where), where)
            elif value is not MISSING:
                if seen_through:
                    _check_default_fits(inner, value, where)
                    if isinstance(inner, EnumType) and type(value) is int and inner is t:
                        default = inner.cls(value)  # decoded as a member: the default too
                always = not _is_zero(inner, value)
        elif inner is t and (default is not MISSING or factory is not MISSING):
            # Called once here, to check it: a decode calls it again for each missing field.
            value = default if factory is MISSING else _call_factory(factory, where)
            _check_value(t, value, where)
            if isinstance(t, (RepeatedType, MapType)) and value:
                raise SchemaError(
                    f"a {'map' if isinstance(t, MapType) else 'list'}'s default must be empty "
                    f"(the bytes cannot tell an empty one from a missing one), got "
                    f"{short_repr(value)}",
                    where,
                )
            # Written even when zero, as a scalar's is, so that a decode of state that does
            # not carry the field (written before it existed) gives the declared default.
            always = not isinstance(t, (OneofType, FixedArrayType)) and not _is_wire_zero(
                t, value
            )
    return FieldSchema(
        name=f.name,
        number=options.number,
        type=t,
        default=default,
        default_factory=factory,
        doc=options.doc,
        always=always,
    )


def _call_factory(factory: Any, where: list[str]) -> Any:
    try:
        return factory()
    except NameError:  # a class declared later, maybe: tried again at first use
        raise
    except Exception as exc:
        raise SchemaError(
            f"default_factory {short_repr(factory)} raised {type(exc).__name__}: {exc}", where
        ) from exc


def _check_value(t: TypeSchema, value: Any, where: list[str]) -> None:
    """A default of a composite type holds values of the field's types: one that does not
    would fail at the first encode, or be handed out by a decode."""
    ok = True
    if isinstance(t, (ScalarType, EnumType)):
        _check_default_fits(t, value, where)
    elif isinstance(t, OptionalType):
        if value is not None:
            _check_value(t.inner, value, where)
    elif isinstance(t, DurationType):
        ok = isinstance(value, datetime.timedelta)
        if ok and abs(value.total_seconds()) > DurationType.MAX_SECONDS:
            raise SchemaError(
                f"default {value} is outside google.protobuf.Duration's range", where
            )
    elif isinstance(t, TupleType):
        ok = type(value) is tuple and len(value) == len(t.elems)
        if ok:
            for elem, item in zip(t.elems, value, strict=True):
                _check_value(elem, item, where)
    elif isinstance(t, (RepeatedType, FixedArrayType)):
        if isinstance(t, FixedArrayType) and t.python_bytes:
            ok = type(value) is bytes and len(value) == t.length
        else:
            ok = type(value) is list and (
                not isinstance(t, FixedArrayType) or len(value) == t.length
            )
            for item in value if ok else ():
                _check_value(t.elem, item, where)
    elif isinstance(t, MapType):
        ok = type(value) is dict
        for key, item in value.items() if ok else ():
            _check_value(t.key, key, where)
            _check_value(t.value, item, where)
    elif isinstance(t, (MessageType, TransparentType)):
        ok = type(value) is t.cls
    elif isinstance(t, OneofType):
        ok = isinstance(value, t.cls) and type(value) is not t.cls
    if not ok:
        raise SchemaError(f"default {short_repr(value)} is not a {t}", where)


def _is_wire_zero(t: TypeSchema, value: Any) -> bool:
    """Whether a decode of bytes without the field gives ``value`` (a checked default)."""
    if isinstance(t, (ScalarType, EnumType)):
        return _is_zero(t, value)
    if isinstance(t, DurationType):
        return bool(value == datetime.timedelta(0))
    if isinstance(t, TupleType):
        return all(_is_wire_zero(e, v) for e, v in zip(t.elems, value, strict=True))
    if isinstance(t, (RepeatedType, MapType)):
        return not value
    if isinstance(t, OptionalType):
        return value is None
    if isinstance(t, MessageType):
        try:
            return bool(value == t.cls())  # a message decoded from no bytes
        except Exception:  # a field of it has no default: the bytes must carry the value
            return False
    return False


_F32_MAX = 3.4028234663852886e38


def _check_default_fits(t: ScalarType | EnumType, value: Any, where: list[str]) -> None:
    """A default is a value of the field's type and width: one that is not would be written
    as something else, or fail at the first encode."""
    if isinstance(t, EnumType):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (isinstance(value, enum.Enum) and not isinstance(value, t.cls))  # another's
            or int(value) not in t.values
        ):
            raise SchemaError(
                f"default {value!r} is not a member of {t.cls.__name__}", where
            )
        return
    kind = t.kind
    if kind.python is int:
        if type(value) is not int and not isinstance(value, enum.IntEnum):
            raise SchemaError(f"default {value!r} is not an int ({kind.name})", where)
        if not kind.lo <= value <= kind.hi:
            raise SchemaError(
                f"default {value!r} does not fit {kind.name} ({kind.lo}..{kind.hi})", where
            )
    elif kind.python is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"default {value!r} is not a float ({kind.name})", where)
        limit = _F32_MAX if kind.name == "f32" else sys.float_info.max
        # inf and nan are representable; an int is compared exactly (float() could overflow)
        if (isinstance(value, int) or math.isfinite(value)) and abs(value) > limit:
            raise SchemaError(f"default {value!r} does not fit {kind.name}", where)
    elif type(value) is not kind.python:
        raise SchemaError(f"default {value!r} is not a {kind.python.__name__}", where)
    elif isinstance(value, str) and not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate: it has no UTF-8, so it cannot be written
            raise SchemaError(f"default {value!r} is not valid UTF-8", where) from None


def _is_zero(t: ScalarType | EnumType, value: Any) -> bool:
    if isinstance(t, EnumType):
        return isinstance(value, int) and value == 0
    kind = t.kind
    if kind.python is float:
        return isinstance(value, (int, float)) and value == 0 and str(float(value)) == "0.0"
    if kind.python is int:
        return type(value) is int and value == 0
    return bool(value == kind.zero) and type(value) is kind.python


def zero_value(t: TypeSchema) -> Any:
    """The value a missing field of type ``t`` decodes to, or MISSING when absence is an
    error (fixed arrays, Oneofs, enums without a zero member). Messages and tuples decode
    from empty input instead, so they are MISSING here too."""
    if isinstance(t, ScalarType):
        return t.kind.zero
    if isinstance(t, EnumType):
        zero = t.zero
        return MISSING if zero is None else zero
    if isinstance(t, OptionalType):
        return None
    if isinstance(t, DurationType):
        return datetime.timedelta(0)
    return MISSING


_NONE_TYPES = (type(None),)
_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)


def to_type(annotation: Any, where: list[str], length: int | None = None) -> TypeSchema:
    """Map one resolved annotation to a schema type (``length`` from ``field(length=N)``)."""
    t = _to_type(annotation, where, length)
    fixed = t.inner if isinstance(t, OptionalType) else t
    if length is not None and not isinstance(fixed, FixedArrayType):
        raise SchemaError(f"length= applies to bytes and list fields, not {t}", where)
    return t


def _unsupported(annotation: Any, where: list[str], why: str = "") -> SchemaError:
    text = getattr(annotation, "__name__", None) or repr(annotation)
    return SchemaError(f"cannot encode a field of type {text}{why}", where)


def _to_type(annotation: Any, where: list[str], length: int | None) -> TypeSchema:
    origin = typing_extensions.get_origin(annotation)
    args = typing_extensions.get_args(annotation)

    if origin is typing_extensions.Annotated:
        kinds = [m for m in annotation.__metadata__ if isinstance(m, ScalarKind)]
        if not kinds:
            return _to_type(args[0], where, length)
        kind = kinds[0]
        base = args[0]
        if base is not kind.python:
            raise _unsupported(annotation, where, f": {kind.name} annotates {kind.python}")
        return ScalarType(kind)

    if origin in _UNION_TYPES:
        present = [a for a in args if a not in _NONE_TYPES]
        oneof = _variants_union(present, where)
        if oneof is not None:
            return OptionalType(oneof) if len(present) != len(args) else oneof
        if len(present) != 1 or len(args) != 2:
            raise _unsupported(
                annotation, where, ": only `T | None` unions are supported (use a Oneof)"
            )
        return OptionalType(_to_type(present[0], where, length))

    if origin is list:
        if len(args) != 1:
            raise _unsupported(annotation, where, ": list needs its element type")
        elem = _to_type(args[0], where, None)
        if length is not None:
            _check_length(length, where)
            return FixedArrayType(elem, length, python_bytes=False)
        return RepeatedType(elem)

    if origin is tuple:
        # ``tuple[()]`` has the arguments ``((),)`` before Python 3.11 and none from 3.11 on,
        # when only a bare ``Tuple`` lacks ``__args__``.
        if args == ((),) or (not args and getattr(annotation, "__args__", None) == ()):
            raise _unsupported(
                annotation, where, ": an empty tuple (Rust's `()`) has no savestate form; "
                "declare a message class with no fields",
            )
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            raise _unsupported(
                annotation, where, ": a tuple needs fixed element types (use list for variable)"
            )
        return TupleType(tuple(_to_type(a, where, None) for a in args))

    if origin is dict:
        if len(args) != 2:
            raise _unsupported(annotation, where, ": dict needs key and value types")
        key = _to_type(args[0], where, None)
        value = _to_type(args[1], where, None)
        if not _hashable(key):
            raise _unsupported(annotation, where, f": a {key} cannot be a dict key")
        return MapType(key, value)

    if origin is not None:
        raise _unsupported(annotation, where)

    if annotation is bytes and length is not None:
        _check_length(length, where)
        return FixedArrayType(ScalarType(scalars.U8), length, python_bytes=True)
    if annotation in scalars.PLAIN:
        return ScalarType(scalars.PLAIN[annotation])
    if annotation is datetime.timedelta:
        return DurationType()
    if isinstance(annotation, type):
        if issubclass(annotation, enum.IntEnum):
            return _enum_type(annotation, where)
        info = info_of(annotation)
        if info is not None:
            if info.kind == "message" and info.transparent:
                inner = message_schema(annotation)
                return TransparentType(annotation, inner.fields[0])
            if info.kind == "message":
                return MessageType(annotation)
            if info.kind == "oneof":
                return OneofType(annotation)
            raise _unsupported(
                annotation, where, ": a variant is not a type of its own; use its Oneof"
            )
        foreign = foreign_type(annotation)
        if foreign is not None:
            return foreign
    raise _unsupported(annotation, where)


def _variants_union(members: list[Any], where: list[str]) -> OneofType | None:
    """A union that lists every variant of one Oneof (``Ready | Running``) is that Oneof: the
    field is written as the Oneof, and type checkers can see a ``match`` over it cover every
    variant. A union of some of the variants only is an error naming the ones left out."""
    infos = [info_of(m) if isinstance(m, type) else None for m in members]
    if len(members) < 2 or not all(i is not None and i.kind == "variant" for i in infos):
        return None
    parents = {next(b for b in m.__mro__[1:] if _is_oneof(b)) for m in members}
    if len(parents) != 1:
        names = ", ".join(sorted(p.__name__ for p in parents))
        raise SchemaError(f"a union of variants must be of one Oneof, not of {names}", where)
    (parent,) = parents
    declared = declared_info(parent).variants
    missing = [v.__name__ for v in declared if v not in members]
    if missing:
        raise SchemaError(
            f"the union of {parent.__name__}'s variants leaves out {', '.join(missing)}: list "
            f"every variant, or annotate the field as {parent.__name__}",
            where,
        )
    return OneofType(parent)


def _is_oneof(cls: type) -> bool:
    info = info_of(cls)
    return info is not None and info.kind == "oneof"


def _check_length(length: int, where: list[str]) -> None:
    if length < 1:
        raise SchemaError("a fixed-length array needs length >= 1 (an empty one is never written)",
                          where)


def _enum_type(cls: type[enum.IntEnum], where: list[str]) -> EnumType:
    values = frozenset(int(m.value) for m in cls)
    for v in values:
        if not -(1 << 31) <= v < (1 << 31):
            raise SchemaError(f"enum {cls.__name__} value {v} does not fit int32", where)
    if not values:
        raise SchemaError(f"enum {cls.__name__} has no members", where)
    return EnumType(cls, values)


def _hashable(t: TypeSchema) -> bool:
    if isinstance(t, (ScalarType, EnumType, DurationType)):
        return True
    if isinstance(t, TupleType):
        return all(_hashable(e) for e in t.elems)
    return False


def _build_oneof(cls: type, info: ClassInfo) -> OneofSchema:
    from .schema import VariantSchema

    variants: list[VariantSchema] = []
    seen: dict[int, str] = {}
    for vcls in info.variants:
        vinfo = declared_info(vcls)
        assert vinfo.variant is not None
        number = vinfo.variant
        where = [cls.__name__, vcls.__name__]
        if number in seen:
            raise SchemaError(f"variant number {number} is already used by {seen[number]}", where)
        seen[number] = vcls.__name__
        if not 1 <= number < (1 << 29) or 19000 <= number <= 19999:
            raise SchemaError(f"variant number {number} is not a valid field number", where)
        if vinfo.schema is None:
            build_schema(vcls)
        message = vinfo.schema
        assert isinstance(message, MessageSchema)
        if vinfo.transparent:
            kind = "transparent"
        elif not message.fields:
            kind = "unit"
        elif vinfo.tuple:
            kind = "tuple"
        else:
            kind = "struct"
        variants.append(
            VariantSchema(
                cls=vcls, name=vinfo.name, number=number, kind=kind, message=message,
                doc=message.doc,
            )
        )
    if not variants:
        raise SchemaError(
            f"Oneof {cls.__name__} has no variants: declare class V({cls.__name__}, variant=N)",
            [cls.__name__],
        )
    return OneofSchema(
        cls=cls, name=info.name, package=info.package, variants=tuple(variants), doc=_doc(cls),
        reserved=info.reserved,
    )
