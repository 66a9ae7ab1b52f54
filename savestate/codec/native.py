"""Whole-message tables for the C accelerator, made from the wire plans.

With the C helpers active, a class whose message the native encoder and decoder can take on
gets a ``Layout`` (see ``_speedups.c``): one table per message plan, its nested messages'
tables linked in. ``Codec.encode`` and ``Codec.decode`` run it first; when it raises
``Mismatch`` (a value or bytes it does not take on: an int subclass, a merged record, an error),
the generated code runs, and then, if that refuses too, the interpreter. Every decision about
what the tables can hold is made here, from the plan:

- a struct (a declared class with plain slots), a Oneof, and a map's entry;
- fields of numbers, enums, strings, bytes (also of a fixed size) and messages, alone,
  optional (``T | None``), in lists (numbers packed) or in maps;
- a nested declared class whose own message the tables cannot hold is written and read by its
  generated functions; a tuple, a wrapper, a transparent class, a default or a Duration in
  the message itself keeps the whole class on the generated code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model.plan import (
    Absent,
    Container,
    EnumValue,
    FieldPlan,
    Form,
    MessagePlan,
    MessageValue,
    Presence,
    ScalarValue,
    ZeroTest,
    plan_of,
)
from . import accel, runtime

__all__ = ["Functions", "holds_class", "layouts", "table_of"]

#: The generated (encode, decode) functions of a declared class.
Functions = tuple[Any, Any]

_FORMS = {Form.STRUCT: 0, Form.ONEOF: 1, Form.ENTRY: 2, Form.TUPLE: 3, Form.WRAPPER: 4}
_CONTAINERS = {Container.NONE: 0, Container.LIST: 1, Container.DICT: 2}
_PRESENCE = {Presence.IMPLICIT: 0, Presence.EXPLICIT: 1, Presence.ALWAYS: 2}
_ABSENT = {Absent.ZERO: 0, Absent.NONE: 1, Absent.EMPTY_LIST: 2, Absent.EMPTY_DICT: 3,
           Absent.EMPTY_MESSAGE: 4, Absent.REQUIRED: 5}
# The C kinds beyond the varint modes and fixed kinds of ``accel``.
KIND_STRING, KIND_BYTES, KIND_MESSAGE, KIND_CALL = 11, 12, 13, 14
# How a field of each presence tells the value that is not written.
_ZERO_TESTS = {Presence.IMPLICIT: (ZeroTest.FALSY, ZeroTest.FLOAT, ZeroTest.EMPTY_BODY),
               Presence.EXPLICIT: (ZeroTest.NONE,), Presence.ALWAYS: (ZeroTest.NONE,)}


def layouts(
    functions: Mapping[type, Functions],
    earlier: Callable[[type], tuple[Any, Functions] | None],
    strict: bool = False,
) -> dict[type, Any]:
    """The native layouts of the classes just compiled (``functions``: their generated
    functions), by class; a class the tables cannot hold has none. ``earlier(cls)`` gives a
    class compiled before, its layout (or None) and its functions. A table that the C code
    refuses to fill is a bug here: ``strict`` raises it, else the class goes without (and a
    class linking to it finds an empty table, which refuses everything)."""
    if accel.speedups is None:
        return {}
    maker = _Maker(functions, earlier, strict)
    found = {}
    for cls in functions:
        layout = maker.of_class(cls)
        if layout is not None:
            found[cls] = layout
    return found


def holds_class(cls: type) -> bool:
    """Whether the C helpers are loaded and the tables hold the message of the declared class
    ``cls`` (it gets a layout when compiled)."""
    return accel.speedups is not None and _holds(plan_of(cls))


def table_of(cls: type, made: Mapping[type, Any],
             earlier: Callable[[type], tuple[Any, Functions] | None]) -> Any:
    """The layout of ``cls`` for generated code that names it (see ``holds_class``): just
    made, or made before; an empty one, which refuses everything, where the C code refused to
    fill it (so the generated code hands the value to the interpreter)."""
    layout = made.get(cls)
    if layout is None:
        known = earlier(cls)
        layout = None if known is None else known[0]
    if layout is None:
        layout = accel.speedups.Layout()  # type: ignore[union-attr]
    return layout


class _Maker:
    def __init__(
        self,
        functions: Mapping[type, Functions],
        earlier: Callable[[type], tuple[Any, Functions] | None],
        strict: bool,
    ) -> None:
        self.functions = functions
        self.earlier = earlier
        self.strict = strict
        self.by_class: dict[type, Any] = {}  # a layout, or None when the class has none
        self.by_plan: dict[int, Any] = {}  # synthetic plans (variants, entries)

    def of_class(self, cls: type) -> Any:
        """The layout of a declared class: made (and linked) on first ask; None when its
        message is not one the tables hold."""
        if cls in self.by_class:
            return self.by_class[cls]
        if cls not in self.functions:
            known = self.earlier(cls)
            return None if known is None else known[0]
        m = plan_of(cls)
        if not _holds(m):
            self.by_class[cls] = None
            return None
        layout = self.by_class[cls] = accel.speedups.Layout()  # type: ignore[union-attr]
        try:
            self.fill(layout, m)  # after it is known, so that a recursive class links to it
        except (ValueError, TypeError):
            if self.strict:
                raise
            self.by_class[cls] = None
            return None
        return layout

    def of_synthetic(self, m: MessagePlan) -> Any:
        layout = self.by_plan.get(id(m))
        if layout is None:
            layout = self.by_plan[id(m)] = accel.speedups.Layout()  # type: ignore[union-attr]
            self.fill(layout, m)
        return layout

    def fill(self, layout: Any, m: MessagePlan) -> None:
        fields = tuple(self.field(m, f) for f in m.fields)
        cls = m.cls if m.form is Form.STRUCT else None
        layout.fill(_FORMS[m.form], cls, runtime.built_cost(m), fields)

    def functions_of(self, cls: type) -> Functions | None:
        done = self.functions.get(cls)
        if done is not None:
            return done
        known = self.earlier(cls)
        return None if known is None else known[1]

    def field(self, m: MessagePlan, f: FieldPlan) -> tuple[Any, ...]:
        """The C table row of field ``f`` (``_holds`` said that it can have one)."""
        vp = f.value
        kind, bits = _kind(vp)
        members = enum_cls = sub = encode = decode = None
        cls = f.variant
        if isinstance(vp, EnumValue):
            members, enum_cls = dict(vp.members), vp.cls
        elif isinstance(vp, MessageValue):
            if vp.cls is None:  # a Oneof's variant, a map's entry, a tuple or a wrapper
                sub = self.of_synthetic(vp.message)
            else:
                sub = self.of_class(vp.cls)
                if vp.message.form is Form.STRUCT:
                    cls = vp.cls  # the value is exactly of its class
                if sub is None:
                    kind = KIND_CALL
                    encode, decode = self.functions_of(vp.cls)  # type: ignore[misc]
        return (
            f.number, kind, bits, _CONTAINERS[f.container], _PRESENCE[f.presence],
            _ABSENT[f.absent], -1 if f.length is None else f.length, f.attr,
            f.zero if f.absent is Absent.ZERO else None, members, enum_cls, sub, encode,
            decode, cls,
        )


def _kind(vp: ScalarValue | EnumValue | MessageValue) -> tuple[int, int]:
    """The C kind and width of one value."""
    if isinstance(vp, MessageValue):
        return KIND_MESSAGE, 0
    varint = accel.varint_kind(vp)
    if varint is not None:
        return accel.MODES[varint[0]], varint[1]
    assert isinstance(vp, ScalarValue)
    encoding = vp.kind.encoding
    if encoding == "string":
        return KIND_STRING, 0
    if encoding == "bytes":
        return KIND_BYTES, 0
    return accel.FIXED_KINDS[encoding], 0


def _holds(m: MessagePlan) -> bool:
    """Whether the tables hold message ``m`` itself (its nested declared classes aside)."""
    if m.form is Form.STRUCT:
        if m.cls is None or not m.keeps_unknown or not _plain_slots(m.cls, m):
            return False
    elif m.form is Form.ONEOF:
        if not m.fields or any(f.variant is None for f in m.fields):
            return False
    elif m.form not in (Form.ENTRY, Form.TUPLE, Form.WRAPPER):
        return False
    return all(_holds_field(f) for f in m.fields)


def _plain_slots(cls: type, m: MessagePlan) -> bool:
    """Whether the class reads and writes its fields as plain slots (what the C code does)."""
    access: tuple[Any, ...] = (cls.__getattribute__, cls.__setattr__, cls.__delattr__)
    if access != (object.__getattribute__, object.__setattr__, object.__delattr__):
        return False
    if getattr(cls, "__getattr__", None) is not None:
        return False
    names = [f.attr for f in m.fields] + ["_pb_unknown"]
    for name in names:
        if not isinstance(name, str):
            return False
        for base in cls.__mro__:
            if name in base.__dict__:
                if type(base.__dict__[name]).__name__ != "member_descriptor":
                    return False
                break
        else:
            return False
    return True


def _holds_field(f: FieldPlan) -> bool:
    if f.unwrap or f.elem_unwrap or f.absent is Absent.DEFAULT:
        return False
    if f.zero_test not in _ZERO_TESTS[f.presence]:
        return False
    if f.presence is Presence.EXPLICIT and f.absent is not Absent.NONE:
        return False
    vp = f.value
    if f.length is not None:
        # A fixed-size bytes value (an array of bytes), or a fixed array of anything else: a
        # list, in a wrapper message.
        if f.container is not Container.NONE or f.presence is not Presence.ALWAYS:
            return False
        if isinstance(vp, ScalarValue):
            return vp.kind.encoding == "bytes"
        return (isinstance(vp, MessageValue) and vp.cls is None
                and vp.message.form is Form.WRAPPER and _holds(vp.message))
    if f.container is Container.DICT:
        entry = f.message
        return f.is_map and entry is not None and entry.form is Form.ENTRY and _holds(entry)
    if f.container is Container.LIST:
        if f.presence is not Presence.IMPLICIT or f.zero_test is not ZeroTest.FALSY:
            return False
        if vp.packable != f.packed:
            return False
    elif f.container is not Container.NONE:
        return False
    if isinstance(vp, EnumValue):
        return not vp.converts  # the C code reads the number a member holds
    if isinstance(vp, ScalarValue):
        return True
    return _holds_message(vp)


def _holds_message(vp: MessageValue) -> bool:
    """A nested message: a declared struct or Oneof (by its table or its functions), or a
    synthetic variant or entry the tables hold."""
    m = vp.message
    if vp.cls is not None:
        return m.form in (Form.STRUCT, Form.ONEOF)
    return m.form in (Form.STRUCT, Form.ENTRY, Form.TUPLE, Form.WRAPPER) and _holds(m)
