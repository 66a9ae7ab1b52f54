"""Declaring saved state: ``field``, the ``Protobuf`` metaclass, ``Oneof`` and ``@savedstate``.

The metaclass is the analogue of the Rust ``Protobuf`` derive: it checks the field numbers at
class creation, turns the class into a keyword-only, slotted dataclass, and leaves the schema
(resolved annotations) and the codec to be built on first use, so that forward references and
recursive messages work.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import operator
import re
import reprlib
import struct
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import Self, dataclass_transform
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Self, dataclass_transform

from .errors import SchemaError
from .limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE
from .model.registry import (
    FIELD_KEY,
    LOCK,
    ClassInfo,
    FieldOptions,
    info_of,
    register_root,
    register_type,
    remember_scope,
)

if TYPE_CHECKING:
    from .codec.front import Codec

__all__ = ["Oneof", "Protobuf", "ProtobufMeta", "field", "replace", "savedstate"]

_T = TypeVar("_T")

MAX_FIELD_NUMBER = (1 << 29) - 1
RESERVED_RANGE = range(19000, 20000)

@overload
def field(
    number: int, *, default: _T, length: int | None = None, doc: str | None = None
) -> _T: ...
@overload
def field(
    number: int,
    *,
    default_factory: Callable[[], _T],
    length: int | None = None,
    doc: str | None = None,
) -> _T: ...
@overload
def field(number: int, *, length: int | None = None, doc: str | None = None) -> Any: ...
def field(
    number: int,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    length: int | None = None,
    doc: str | None = None,
) -> Any:
    """Declare a field with its protobuf field number.

    ``default`` / ``default_factory`` give the constructor's default, and the value a decode
    uses when the field is absent from the bytes. ``length`` makes a ``bytes`` or ``list`` field
    a fixed-length array (always written, its count checked on decode). ``doc`` becomes the
    field's comment in the emitted ``.proto``.
    """
    if isinstance(number, bool) or not isinstance(number, int):
        raise SchemaError(f"field number must be an int, got {type(number).__name__}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)
                               or length < 0):
        raise SchemaError(f"field length must be a non-negative int, got {length!r}")
    metadata = {FIELD_KEY: FieldOptions(number, length, doc)}
    if default is not dataclasses.MISSING and default_factory is not dataclasses.MISSING:
        raise SchemaError("field cannot have both default and default_factory")
    if default is not dataclasses.MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(metadata=metadata)


def _check_numbers(name: str, numbers: dict[str, int], reserved: tuple[range, ...]) -> None:
    seen: dict[int, str] = {}
    for fname, number in numbers.items():
        where = [name, fname]
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise SchemaError(f"field number {number} is outside 1..{MAX_FIELD_NUMBER}", where)
        if number in RESERVED_RANGE:
            raise SchemaError(
                f"field number {number} is in 19000..19999, reserved by protobuf", where
            )
        if number in seen:
            raise SchemaError(f"field number {number} is already used by {seen[number]!r}", where)
        if _is_reserved(reserved, number):
            raise SchemaError(f"field number {number} is reserved", where)
        seen[number] = fname


def round_f32(value: Any) -> Any:
    """``value`` as a float32 holds it, when it is a float that fits one (anything else is left
    for the encoder to accept or refuse): what an ``f32`` field stores when constructed, so that
    a value equals its own decoded copy, as the Rust ``f32`` it mirrors would."""
    if type(value) is not float:
        return value
    try:
        rounded: float = _F32.unpack(_F32.pack(value))[0]
    except OverflowError:  # too large for a float32: the encoder reports it with the field path
        return value
    return rounded


_F32 = struct.Struct("<f")


def _f32_shape(
    cls: type, f: dataclasses.Field[Any], localns: Mapping[str, Any]
) -> str | Callable[[Any], Any] | None:
    """``"scalar"`` for a field annotated ``f32`` or ``f32 | None``, ``"list"`` for
    ``list[f32]`` (and its optional form), the rounder of any other container that holds
    f32 values (:func:`_f32_rounder`), else None. The annotation is evaluated where the
    schema resolves it, in the class's module and the locals of the call that declared it
    (``localns``, from ``remember_scope``); one that does not resolve yet (a forward
    reference) names no f32."""
    from .model.scalars import F32

    annotation: Any = f.type
    if isinstance(annotation, str):
        module = sys.modules.get(cls.__module__)
        try:
            # The module's own namespace, not a copy: evaluating an expression adds nothing.
            annotation = eval(annotation, vars(module) if module else {}, localns)
        except Exception:  # a forward reference or a name defined later: not an f32 field
            return None

    def is_f32(t: Any) -> bool:
        return F32 in getattr(t, "__metadata__", ())

    def strip_none(t: Any) -> Any:
        args = [a for a in typing.get_args(t) if a is not type(None)]
        is_union = typing.get_origin(t) in (typing.Union, types.UnionType)
        return args[0] if is_union and len(args) == 1 else t

    annotation = strip_none(annotation)
    if is_f32(annotation):
        return "scalar"
    origin = typing.get_origin(annotation)
    if origin is list and is_f32(typing.get_args(annotation)[0]):
        return "list"
    if origin not in _F32_CONTAINERS:  # a scalar, enum or message: nothing inside to round
        return None
    return _f32_rounder(annotation, is_f32)


_F32_CONTAINERS = (list, dict, tuple, typing.Union, types.UnionType)


def _f32_rounder(t: Any, is_f32: Callable[[Any], bool]) -> Callable[[Any], Any] | None:
    """A function that rounds the f32 values inside a container of type ``t`` (a dict's
    values, a tuple's items, ``list[f32 | None]``, lists of lists), or None when ``t`` holds
    none outside a message (a message rounds its own). A value of another shape is left to the
    encoder, which refuses it with the field path."""
    if is_f32(t):
        return round_f32
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        present = _f32_rounder(inner[0], is_f32) if len(inner) == 1 else None
        if present is None:
            return None
        return lambda v: v if v is None else present(v)
    if origin is list and args:
        each = _f32_rounder(args[0], is_f32)
        if each is None:
            return None
        return lambda v: [each(x) for x in v] if type(v) is list else v
    if origin is dict and len(args) == 2:
        keys, values = _f32_rounder(args[0], is_f32), _f32_rounder(args[1], is_f32)
        if keys is None and values is None:
            return None
        key = keys or _same
        value = values or _same
        return lambda v: {key(k): value(x) for k, x in v.items()} if type(v) is dict else v
    if origin is tuple and args and args[-1] is not Ellipsis:
        items = [_f32_rounder(a, is_f32) or _same for a in args]
        if all(r is _same for r in items):
            return None
        n = len(items)
        return lambda v: (
            tuple(r(x) for r, x in zip(items, v, strict=True))
            if type(v) is tuple and len(v) == n
            else v
        )
    return None


def _same(value: Any) -> Any:
    return value


_SELF = "__savestate_self__"
_MISSING = "__savestate_missing__"
_ROUND = "__savestate_round_f32__"


def _generated_init(
    cls: type,
    fields: list[dataclasses.Field[Any]],
    localns: Mapping[str, Any],
    kw_only: bool = True,
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The ``__init__``: keyword-only unless ``kw_only=False``; it stores f32 fields rounded to
    float32 (:func:`round_f32`), clears the slot for unknown fields and, last, calls the class's
    ``__post_init__`` if it has one, as a dataclass does.

    Returned with the same initialiser without the ``__post_init__`` call (the same function
    when there is none), for building values from JSON: a value read back from saved data is
    not constructed anew, as neither a decode nor ``pickle`` constructs one."""
    params: list[str] = []
    body: list[str] = []
    # Every name the generated code adds is of the form __savestate_...__, which no field may
    # take (see _check_field_name): a field named like a helper would shadow it.
    env: dict[str, Any] = {_MISSING: dataclasses.MISSING, _ROUND: round_f32}
    for f in fields:
        shape = _f32_shape(cls, f, localns)
        if shape == "scalar":
            stored = f"{_ROUND}({f.name})"
        elif shape == "list":
            stored = (
                f"{f.name} if {f.name} is None or type({f.name}) is not list "
                f"else [{_ROUND}(v) for v in {f.name}]"
            )
        elif shape is not None:
            rounder = f"__savestate_round_{f.name}__"
            env[rounder] = shape
            stored = f"{rounder}({f.name})"
        else:
            stored = f.name
        if not kw_only and f.default is dataclasses.MISSING and (
            f.default_factory is dataclasses.MISSING
        ) and any("=" in p for p in params):
            raise SchemaError(
                "with kw_only=False a field without a default cannot follow one with a default",
                [cls.__name__, f.name],
            )
        if f.default is not dataclasses.MISSING:
            default = f"__savestate_default_{f.name}__"
            env[default] = f.default
            params.append(f"{f.name}={default}")
            body.append(f"{_SELF}.{f.name} = {stored}")
        elif f.default_factory is not dataclasses.MISSING:
            factory = f"__savestate_factory_{f.name}__"
            env[factory] = f.default_factory
            params.append(f"{f.name}={_MISSING}")
            body.append(f"if {f.name} is {_MISSING}: {f.name} = {factory}()")
            body.append(f"{_SELF}.{f.name} = {stored}")
        else:
            params.append(f.name)
            body.append(f"{_SELF}.{f.name} = {stored}")
    body.append(f"{_SELF}._pb_unknown = None")
    marker = "*, " if kw_only else ""
    # The instance is a mangled name, as in dataclasses, so that a field may be named `self`.
    signature = f"{_SELF}, {marker}{', '.join(params)}" if params else _SELF
    source = f"def __init__({signature}):\n" + "".join(f"    {line}\n" for line in body)
    hook = hasattr(cls, "__post_init__")
    if hook:
        source = source.replace("def __init__(", "def __savestate_fill__(", 1) + (
            f"def __init__({signature}):\n"
            + "".join(f"    {line}\n" for line in body)
            + f"    {_SELF}.__post_init__()\n"
        )
    # Loaded with the first declaration, not with `import savestate`.
    from .codec.cache import compiled

    exec(compiled(source, f"<savestate __init__ of {cls.__qualname__}>"), env)
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    fill: Callable[..., None] = env["__savestate_fill__"] if hook else init
    return init, fill



def _no_values(obj: object) -> tuple[()]:
    """The field values of a class without fields."""
    return ()

@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class ProtobufMeta(type):
    """Metaclass of every declared message, Oneof and variant."""

    def __new__(
        mcls,
        cls_name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        *,
        package: str | None = None,
        name: str | None = None,
        variant: int | None = None,
        tuple: bool = False,
        transparent: bool = False,
        reserved: Any = (),
        kw_only: bool = True,
        **kwargs: Any,
    ) -> ProtobufMeta:
        # ``name=`` gives the proto message name when it differs from the class name.
        proto_name, name = name, cls_name
        if proto_name is not None and (not isinstance(proto_name, str) or not proto_name):
            raise SchemaError(f"name must be a non-empty string, got {proto_name!r}", [name])
        if namespace.get("_pb_base"):  # the library's own bases
            return super().__new__(mcls, name, bases, namespace, **kwargs)
        if kwargs and not _takes_subclass_keywords(bases):
            raise SchemaError(_unknown_keywords(kwargs), [name])

        oneof_bases = [b for b in bases if _kind(b) == "oneof"]
        is_oneof_root = Oneof in bases
        if is_oneof_root:
            kind = "oneof"
        elif oneof_bases:
            kind = "variant"
        else:
            kind = "message"
        for b in bases:
            binfo = info_of(b)
            if binfo is not None and binfo.kind in ("message", "variant"):
                raise SchemaError(
                    f"cannot subclass the message {b.__name__}; declare a new message instead",
                    [name],
                )
        if kind == "variant":
            if variant is None:
                raise SchemaError(
                    f"a variant of {oneof_bases[0].__name__} needs variant=N", [name]
                )
            package = package if package is not None else _info(oneof_bases[0]).package
        elif variant is not None or tuple:
            raise SchemaError("variant= and tuple= belong to Oneof variants", [name])
        elif transparent and kind == "oneof":
            raise SchemaError("a Oneof cannot be transparent: its variants can", [name])
        # The naming rules load with the first declaration, not with `import savestate`.
        from .model.names import check_identifier, check_json_names, check_package

        if package is not None:
            check_package(package, [name])
        if proto_name is not None:
            check_identifier(proto_name, "the message name", [name])
        else:
            check_identifier(name, "the class name (its message name unless name= is given)",
                             [name])
        reserved_numbers = _reserved_numbers(name, reserved)

        if kind == "oneof":
            namespace.setdefault("__slots__", ())
        else:
            _check_dataclass_body(name, bases, namespace)
        annotations: dict[str, Any] = namespace.get("__annotations__", {})
        numbers: dict[str, int] = {}
        classvars: set[str] = set()
        for fname, annotation in annotations.items():
            if _is_classvar(annotation, namespace.get("__module__")):
                classvars.add(fname)
                continue
            value = namespace.get(fname, dataclasses.MISSING)
            options = (
                value.metadata.get(FIELD_KEY) if isinstance(value, dataclasses.Field) else None
            )
            if options is None:
                raise SchemaError(
                    "every field needs an explicit number: declare it as "
                    f"`{fname}: ... = field(N)`",
                    [name, fname],
                )
            _check_field_name(name, fname)
            check_identifier(fname, "the field name", [name, fname])
            if value.default is not dataclasses.MISSING:
                _check_shared_default(name, fname, value.default)
            numbers[fname] = options.number
        if kind == "oneof" and numbers:
            raise SchemaError(
                "a Oneof holds no fields itself; declare its variants as subclasses "
                f"(class V({name}, variant=N))",
                [name, next(iter(numbers))],
            )
        _check_numbers(name, numbers, reserved_numbers)
        if not tuple:  # a tuple variant's proto names are field1..n: they cannot collide
            check_json_names(name, [(fname, fname) for fname in numbers])
        if kind == "variant":
            assert variant is not None
            _check_variant_number(oneof_bases[0], name, variant)

        # The class is slotted from the start, one slot per field, and created once: were
        # dataclasses to add the slots, it would create a second class, and a method that uses
        # ``super()`` (its ``__class__`` cell names the first) could not be declared at all.
        # Each field's ``field()`` leaves the namespace for a slot, and comes back for as long
        # as dataclasses reads it.
        specs = {fname: namespace.pop(fname) for fname in numbers}
        if kind != "oneof":
            namespace["__slots__"] = builtins.tuple(numbers)
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        info = ClassInfo(kind, proto_name or name, package)
        info.reserved = reserved_numbers
        info.transparent = transparent
        if kind == "oneof":
            # The enum itself is never instantiated: its values are its variants.
            cls.__savestate__ = info  # type: ignore[attr-defined]
            register_type(cls)
            info.localns = remember_scope(cls)
            return cls

        # ``__eq__`` and ``__repr__`` come from Protobuf, one pair for every class, and a class
        # without a docstring keeps none: dataclasses would generate and compile both methods
        # and spell a docstring from the signature, which together cost more than the rest of
        # declaring the class.
        documented = bool(cls.__doc__)
        if not documented:
            cls.__doc__ = "-"
        make_dataclass: Any = dataclasses.dataclass(init=False, repr=False, eq=False)
        slots = {fname: cls.__dict__[fname] for fname in specs}
        for fname, spec in specs.items():
            setattr(cls, fname, spec)
            spec.__set_name__(cls, fname)  # as the class statement would have called it
        if classvars:
            # dataclasses sees only the fields: it tells a string ClassVar by a narrower rule
            # (no typing_extensions, no name imported in the function), and would make one a
            # field without a number. The class keeps its annotations as written.
            cls.__annotations__ = {k: v for k, v in annotations.items() if k not in classvars}
        cls = make_dataclass(cls)
        for fname, slot in slots.items():
            setattr(cls, fname, slot)
        if "__replace__" not in namespace and "__replace__" in cls.__dict__:
            # Python 3.13's dataclasses add their own, which drops the unknown fields that
            # Protobuf.__replace__ keeps (``copy.replace`` and ``savestate.replace`` call it).
            del cls.__replace__
        if classvars:
            cls.__annotations__ = annotations
        if not documented:
            cls.__doc__ = None
        fields: list[dataclasses.Field[Any]] = list(dataclasses.fields(cls))
        names = builtins.tuple(f.name for f in fields)
        cls._pb_values = operator.attrgetter(*names) if names else staticmethod(_no_values)
        # Our own __init__: keyword-only (positional too with kw_only=False, which type
        # checkers read as dataclass_transform's kw_only), f32 values rounded to float32, and
        # the slot of unknown fields cleared.
        localns = remember_scope(cls)
        cls.__init__, cls._pb_fill = _generated_init(cls, fields, localns, kw_only=kw_only)
        # Positional patterns (`case Point(x, y)`) match fields in declaration order.
        cls.__match_args__ = names  # type: ignore[misc]
        cls.__savestate__ = info
        register_type(cls)
        info.localns = localns
        if kind == "variant":
            parent = oneof_bases[0]
            pinfo = _info(parent)
            info.variant = variant
            info.tuple = tuple
            with LOCK:
                if pinfo.schema is not None:
                    raise SchemaError(
                        f"variant {name} was declared after {parent.__name__} was first used; "
                        "declare every variant before encoding or decoding",
                        [parent.__name__, name],
                    )
                pinfo.variants.append(cls)
        _try_build(cls)
        result: ProtobufMeta = cls
        return result


def _check_dataclass_body(
    name: str, bases: builtins.tuple[type, ...], namespace: dict[str, Any]
) -> None:
    """Refuse what ``dataclasses`` would refuse with a bare exception, or take in without the
    model seeing it, naming the class (and the field) instead."""
    if "__init__" in namespace:
        raise SchemaError(
            "a savestate class must not define __init__: it is generated (one keyword "
            "argument per field); check or adjust the values in __post_init__, which it calls, "
            "or construct values another way in a classmethod",
            [name, "__init__"],
        )
    if "__slots__" in namespace:
        raise SchemaError(
            "a savestate class must not declare __slots__: it is slotted already, one slot per "
            "field, and holds nothing else (keep other state outside the saved state)",
            [name],
        )
    for base in bases:
        if info_of(base) is not None:  # a declared class: its own bases were checked then
            continue
        for c in base.__mro__:
            if info_of(c) is not None or not dataclasses.is_dataclass(c):
                continue
            for f in dataclasses.fields(c):
                # Its fields would join the class's without a number: every field of a
                # message is declared in the class itself.
                raise SchemaError(
                    f"inherits the dataclass field {f.name!r} from {c.__name__}: declare every "
                    f"field in the class itself, as `{f.name}: ... = field(N)`",
                    [name, f.name],
                )


def _check_field_name(name: str, fname: str) -> None:
    """A field's attribute would hide what the class needs under that name."""
    where = [name, fname]
    if fname in _API_NAMES:
        raise SchemaError(
            f"a field cannot be named {fname!r}: it would hide the method {fname}() that every "
            "savestate class has; choose another name",
            where,
        )
    if fname.startswith("_pb_"):
        raise SchemaError(
            f"a field cannot be named {fname!r}: names starting with _pb_ are savestate's own",
            where,
        )
    if fname.startswith("__") and fname.endswith("__"):
        raise SchemaError(
            f"a field cannot be named {fname!r}: names of the form __name__ belong to Python "
            "and to savestate (the generated __init__ uses __savestate_...__ names)",
            where,
        )


def _check_shared_default(name: str, fname: str, default: Any) -> None:
    """A default that is mutable (unhashable, as ``dataclasses`` judges it) would be one object
    shared by every value constructed without it."""
    if type(default).__hash__ is not None:
        return
    try:
        empty = type(default)() == default
    except Exception:  # no argument-free constructor: suggest a lambda instead
        empty = False
    factory = type(default).__name__ if empty else f"lambda: {reprlib.repr(default)}"
    raise SchemaError(
        f"a mutable default ({type(default).__name__}) would be shared by every value: use "
        f"default_factory={factory}",
        [name, fname],
    )


_CLASS_KEYWORDS = (
    "package", "name", "reserved", "transparent", "variant", "tuple", "kw_only"
)


def _takes_subclass_keywords(bases: builtins.tuple[type, ...]) -> bool:
    """Whether a user's base class defines ``__init_subclass__``, which may take keywords."""
    return any(
        "__init_subclass__" in vars(b)
        for base in bases
        for b in base.__mro__
        if b is not object and info_of(b) is None and b.__module__ != __name__
    )


def _unknown_keywords(kwargs: dict[str, Any]) -> str:
    import difflib

    parts = []
    for key in kwargs:
        close = difflib.get_close_matches(key, _CLASS_KEYWORDS, n=1)
        parts.append(f"{key}=" + (f" (did you mean {close[0]}=?)" if close else ""))
    known = ", ".join(f"{k}=" for k in _CLASS_KEYWORDS)
    return f"unknown class keyword {', '.join(parts)}; a savestate class takes {known}"


def _check_variant_number(parent: type, name: str, number: Any) -> None:
    """A variant number is a field number, unique in its Oneof and not reserved there."""
    where = [parent.__name__, name]
    if isinstance(number, bool) or not isinstance(number, int):
        raise SchemaError(f"variant= must be an int, got {number!r}", where)
    if not 1 <= number <= MAX_FIELD_NUMBER or number in RESERVED_RANGE:
        raise SchemaError(f"variant number {number} is not a valid field number", where)
    pinfo = _info(parent)
    if _is_reserved(pinfo.reserved, number):
        raise SchemaError(f"variant number {number} is reserved", where)
    with LOCK:
        for other in pinfo.variants:
            if _info(other).variant == number:
                raise SchemaError(
                    f"variant number {number} is already used by {other.__name__}", where
                )


def _reserved_numbers(name: str, reserved: Any) -> tuple[range, ...]:
    """``reserved=`` as sorted, disjoint, non-adjacent ranges of step 1. A range stays a range
    (``range(1000, 1 << 29)`` is protobuf's ``reserved 1000 to max;``, half a billion
    numbers), so a check against it costs one comparison per range."""
    spans: list[range] = []
    items = reserved if isinstance(reserved, (tuple, list, set, frozenset)) else (reserved,)
    for item in items:
        if isinstance(item, range):
            if item.step != 1:
                raise SchemaError(f"reserved= takes ranges of step 1, got {item!r}", [name])
            if not item:
                raise SchemaError(f"reserved= range {item!r} is empty", [name])
            span = item
        elif isinstance(item, int) and not isinstance(item, bool):
            span = range(item, item + 1)
        else:
            raise SchemaError(f"reserved= takes numbers and ranges, got {item!r}", [name])
        # Only field numbers can be reserved: protoc refuses the .proto file otherwise.
        for number in (span.start, span.stop - 1):
            if not 1 <= number <= MAX_FIELD_NUMBER:
                raise SchemaError(
                    f"reserved number {number} is outside 1..{MAX_FIELD_NUMBER}", [name]
                )
        spans.append(span)
    merged: list[range] = []
    for span in sorted(spans, key=lambda r: r.start):
        if merged and span.start <= merged[-1].stop:
            last = merged.pop()
            span = range(last.start, max(last.stop, span.stop))
        merged.append(span)
    return tuple(merged)


def _is_reserved(reserved: tuple[range, ...], number: int) -> bool:
    return any(number in span for span in reserved)


# The head of a string annotation: `ClassVar`, `t.ClassVar` in `t.ClassVar[int]`.
_HEAD = re.compile(r"\s*(?:(\w+)\s*\.\s*)?(\w+)\s*(?:\[|$)")
_TYPING_MODULES = ("typing", "typing_extensions")


def _is_classvar(annotation: Any, module: str | None) -> bool:
    """Whether an annotation is ``ClassVar`` (bare or subscripted). A string annotation (under
    ``from __future__ import annotations``) cannot be evaluated yet; its head is looked up in
    the class's module, as dataclasses does, so that an alias (``import typing as t``,
    ``from typing import ClassVar as CV``) is recognised and a name that only starts like one
    (``ClassVarious``) is not."""
    if not isinstance(annotation, str):
        return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar
    if annotation.isidentifier():  # most are one name (`u8`, `Register`): no pattern needed
        qualifier, head = None, annotation
    else:
        match = _HEAD.match(annotation)
        if match is None:
            return False
        qualifier, head = match.groups()
    mod = sys.modules.get(module) if module else None
    ns: dict[str, Any] = vars(mod) if mod is not None else {}
    if qualifier is not None:
        owner = ns.get(qualifier)
        if owner is None and qualifier in _TYPING_MODULES:  # imported in the declaring function
            owner = sys.modules.get(qualifier)
        return getattr(owner, head, None) is ClassVar
    if head in ns:
        return ns[head] is ClassVar
    return head == "ClassVar"  # imported in the declaring function, not in its module


def _kind(cls: type) -> str | None:
    info = info_of(cls)
    return None if info is None else info.kind


def _info(cls: type) -> ClassInfo:
    """The info of a class known to be declared."""
    info = info_of(cls)
    assert info is not None
    return info


def _try_build(cls: type) -> None:
    """Build the schema now if every annotation already resolves; else on first use."""
    from .model.introspect import build_schema

    with contextlib.suppress(NameError):
        build_schema(cls)


class Protobuf(metaclass=ProtobufMeta):
    """Base of saved-state messages: ``class Regs(Protobuf, package="chipset.pic"): ...``.

    Subclasses become keyword-only slotted dataclasses with ``encode``/``bytes()``/``decode``.
    """

    _pb_base: ClassVar[bool] = True
    __slots__ = ("_pb_unknown",)
    __savestate__: ClassVar[ClassInfo]
    # The fields' values as one tuple (one value when there is one field): what __eq__ compares.
    _pb_values: ClassVar[Callable[[Any], Any]]
    # __init__ without the __post_init__ call: what building a value from JSON calls.
    _pb_fill: ClassVar[Callable[..., None]]
    __match_args__: ClassVar[builtins.tuple[str, ...]] = ()

    def encode(self, *, max_depth: int = 100) -> bytes:
        """The protobuf encoding of this value (raises ``EncodeError``).

        ``max_depth`` bounds the nesting of messages as ``decode`` does (the root counts as 1):
        a value that no decode with the same limit could read back is refused.
        """
        codec = type(self).__savestate__.codec
        return (codec or _codec_of(type(self))).encode(self, max_depth)

    def __bytes__(self) -> bytes:
        codec = type(self).__savestate__.codec
        return (codec or _codec_of(type(self))).encode(self)

    def __replace__(self, **changes: Any) -> Self:
        """A new value with ``changes``, made as ``dataclasses.replace`` makes one (through
        ``__init__``, so ``f32`` fields are rounded and ``__post_init__`` runs), which also
        keeps the unknown fields a decode kept: what ``copy.replace`` calls (Python 3.13), and
        what :func:`replace` calls on every version."""
        values = {name: getattr(self, name) for name in self.__match_args__}
        values.update(changes)
        new = type(self)(**values)
        new._pb_unknown = self._pb_unknown  # type: ignore[attr-defined]  # the base's slot
        return new

    def __eq__(self, other: object) -> bool:
        """Equal when ``other`` is of the same class and every field is equal (as a dataclass
        compares; unknown fields kept from decoding are not compared)."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        values = type(self)._pb_values
        result: bool = values(self) == values(other)
        return result

    # Values are mutable: equal ones may not hash alike.
    __hash__ = None  # type: ignore[assignment]

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        """``Name(field=value, ...)``, every field in declaration order, as a dataclass shows
        itself."""
        items = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({items})"

    @classmethod
    def decode(
        cls,
        data: bytes | bytearray | memoryview,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
        max_memory: int | None = None,
    ) -> Self:
        """Decode ``data`` (raises ``DecodeError`` naming the field path).

        ``max_depth`` bounds the nesting of messages (the root counts as 1); ``max_size`` the
        length of ``data`` in bytes (64 MiB by default), checked before anything is read;
        ``max_memory`` what the objects the decode builds may take, in bytes (by default 32
        per byte of ``max_size``, plus 1 MiB), refused with a ``DecodeError`` before it is
        spent, whatever the schema.
        """
        codec = cls.__savestate__.codec or _codec_of(cls)
        result: Self = codec.decode(data, max_depth, max_size, max_memory)
        return result

    def to_dict(self, *, max_depth: int = 100) -> dict[str, Any]:
        """The proto3 JSON object of this value (see :mod:`savestate.codec.jsonmap`), nested
        at most ``max_depth`` messages deep, blobs expanded (else ``EncodeError``)."""
        from .codec.jsonmap import to_dict

        return to_dict(self, max_depth=max_depth)

    def to_json(self, *, indent: int | None = None, max_depth: int = 100) -> str:
        """The proto3 JSON text of this value (compact unless ``indent`` is given)."""
        from .codec.jsonmap import to_json

        return to_json(self, indent=indent, max_depth=max_depth)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, max_depth: int = 100) -> Self:
        """Build a value from its proto3 JSON object (raises ``JsonError``, a ``DecodeError``
        naming the field path), nested at most ``max_depth`` messages deep."""
        from .codec.jsonmap import from_dict

        result: Self = from_dict(cls, data, max_depth=max_depth)
        return result

    @classmethod
    def from_json(cls, text: str | bytes, *, max_depth: int = 100) -> Self:
        """Parse proto3 JSON text (raises ``JsonError``, a ``DecodeError``, for any text)."""
        from .codec.jsonmap import from_json

        result: Self = from_json(cls, text, max_depth=max_depth)
        return result


class Oneof(Protobuf):
    """Base of Rust-style enums with data.

    ``class Stage(Oneof, package=...)`` declares the enum; each variant is a subclass with a
    number: ``class Ready(Stage, variant=1)`` (unit), a struct variant with ``field(N)`` fields,
    ``tuple=True`` for a tuple variant (fields 1..n), ``transparent=True`` for a variant whose
    single field is written directly under the variant number.
    """

    _pb_base: ClassVar[bool] = True
    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if _kind(cls) == "oneof":
            raise TypeError(
                f"{cls.__name__} is a Oneof: construct one of its variants instead"
            )
        return super().__new__(cls)


_C = TypeVar("_C", bound=type)


_P = TypeVar("_P", bound=Protobuf)


def replace(value: _P, /, **changes: Any) -> _P:
    """``dataclasses.replace`` for savestate values: a new value with ``changes`` that keeps
    the unknown fields ``value`` holds (fields of a newer release, kept by a decode), which
    ``dataclasses.replace`` drops, since it builds the value anew through ``__init__``. An
    unknown field name is a ``TypeError``, as there."""
    return value.__replace__(**changes)


@overload
def savedstate(cls: type[_P], /) -> type[_P]: ...
@overload
def savedstate(
    *, package: str | None = None, reserved: Any = ()
) -> Callable[[type[_T]], type[_T]]: ...
@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def savedstate(
    cls: type[Any] | None = None, /, *, package: str | None = None, reserved: Any = ()
) -> Any:
    """Declare a saved-state root: a message with a type URL, registered for ``roots()``.

    The typed form is a ``Protobuf`` class, with the decorator bare or with arguments:
    ``@savedstate`` over ``class S(Protobuf, package="p")`` (type checkers then see
    ``encode``/``decode``/``to_json`` on it). The short form ``@savedstate(package="p")`` over a
    plain annotated class turns it into a ``Protobuf`` message at run time, but type checkers
    cannot see the methods it gains there.
    """
    if cls is not None:
        return savedstate(package=package, reserved=reserved)(cls)
    def wrap(cls: type[_T]) -> type[_T]:
        from .model.names import check_package

        if package is not None:
            check_package(package, [cls.__name__])
        info = info_of(cls)
        if info is None:
            if package is None:
                raise SchemaError(
                    "a saved-state root needs a package: @savedstate(package=...) on a plain "
                    "class, or a Protobuf class declared with package=...",
                    [cls.__name__],
                )
            namespace = {
                k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")
            }
            # Under its own qualname from the start: the registry names it by module.qualname.
            namespace["__qualname__"] = cls.__qualname__
            bases = (*(b for b in cls.__bases__ if b is not object), Protobuf)
            new = ProtobufMeta(cls.__name__, bases, namespace, package=package, reserved=reserved)
            info = _info(new)
            cls = new  # type: ignore[assignment]
        elif info.kind != "message":
            raise SchemaError("only a message can be a saved-state root", [cls.__name__])
        elif info.transparent:
            raise SchemaError(
                "a transparent class cannot be a saved-state root: it has no message of its own",
                [cls.__name__],
            )
        elif info.package is None:
            suggestion = package or "..."
            raise SchemaError(
                "a saved-state root needs a package: declare the class with one, "
                f'class {cls.__name__}(Protobuf, package="{suggestion}")',
                [cls.__name__],
            )
        elif package is not None and info.package != package:
            raise SchemaError(
                f"@savedstate(package={package!r}) differs from the class's package "
                f"{info.package!r}: give the package once, on the class",
                [cls.__name__],
            )
        info.root = True
        register_root(cls)
        return cls

    return wrap


def _codec_of(cls: type) -> Codec:
    """The codec of ``cls``, compiling it (the codec modules are imported on first use)."""
    from .codec.front import codec_of

    return codec_of(cls)


# The public methods of every message, Oneof and variant: a field of one of these names would
# replace the method on the class.
_API_NAMES = frozenset(
    n for c in (Protobuf, Oneof) for n in vars(c) if not n.startswith("_")
)
