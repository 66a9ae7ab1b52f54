"""The codec compiler: specialised Python source for each declared class, from its wire plan.

For every message (and Oneof) it writes one encode function and one decode function, with the
tag bytes of each field known in advance, a fast path for one-byte varints, every value checked
against its declared type, and no per-call look-up of the plan. The source is compiled with one
``exec`` per class and registered in ``linecache`` under a name of its own, so that tracebacks
and ``inspect.getsource`` show it.

Every decision about the wire comes from the plan (:mod:`savestate.model.plan`): the compiler
only chooses how to write it in Python. Locals are named after the fields they hold, tag bytes
after their fields (``IRR_TAG``), and the messages the plan nests (tuples, map entries, wrappers)
get helper functions named after the field that holds them.

Generated code does not build error messages: on anything unexpected it raises ``Mismatch``
(or, for bytes that run past the end, lets an ``IndexError`` escape), and the front end re-runs
the interpreting codec, which names the field path and the reason.
"""

from __future__ import annotations

import keyword
import linecache
import math
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from ..model import foreign
from ..model.plan import (
    Absent,
    Container,
    EnumValue,
    FieldPlan,
    Form,
    MessagePlan,
    MessageValue,
    Newtype,
    Presence,
    ScalarValue,
    ZeroTest,
    fingerprint,
    plan_of,
    references,
)
from ..model.registry import info_of
from ..model.scalars import WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, ScalarKind
from ..model.schema import MISSING
from . import accel, cache, native, packed, runtime
from .wire import varint_bytes

__all__ = ["CompiledClass", "compile_classes", "generate"]

M64 = (1 << 64) - 1
# A bytes or str field larger than this, at the top level, is joined into the result instead of
# being copied into the encode buffer first: one copy instead of two.
LARGE_PAYLOAD = 1 << 16
# Small messages of numbers are written and read inline, in their parent's function.
INLINE_FIELDS = 12

# Names the generated functions use for their own purposes: a local named after a field
# never takes one of them.
_RESERVED = frozenset(
    {"obj", "buf", "parts", "ap", "data", "pos", "end", "depth", "budget", "more", "tag", "e",
     "byte", "shift", "cur", "variant", "rest", "high"}
)
_STRUCT_CODES = {"float": "f", "double": "d", "fixed32": "I", "sfixed32": "i",
                 "fixed64": "Q", "sfixed64": "q"}


def _tag(number: int, wire: int) -> int:
    return (number << 3) | wire


@dataclass
class CompiledClass:
    """The generated functions of one class, and what its source needs from other classes:
    env name -> (class, "encode", "decode" or "table": its native layout)."""

    cls: type
    source: str
    filename: str
    env: dict[str, Any]
    encode_name: str
    decode_name: str
    encode: Any = None
    decode: Any = None
    needs: dict[str, tuple[type, str]] = field(default_factory=dict)


class _Writer:
    """Indented source lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def indent(self) -> _Indent:
        return _Indent(self)


class _Indent:
    def __init__(self, w: _Writer) -> None:
        self.w = w

    def __enter__(self) -> None:
        self.w.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.w.depth -= 1


def _identifier(text: str) -> str:
    """A Python identifier from a field or class name (``[0]`` -> ``item0``)."""
    ident = re.sub(r"\W", "", text.replace("[", "item")) or "value"
    if ident[0].isdigit():
        ident = f"_{ident}"
    return ident


class _Names:
    """Unique names in one scope: a stem is used as it is the first time, then with a counter
    (``irr``, ``irr_2``). Locals are unique within their function and never take a name of
    the module's globals; globals never take a name that any local has."""

    def __init__(self, taken: frozenset[str] = _RESERVED, outer: _Names | None = None) -> None:
        self.used: set[str] = set(taken)
        self.outer = outer
        # Every name any function has used, kept by the globals' scope.
        self.locals_seen: set[str] = set()

    def new(self, stem: str) -> str:
        stem = _identifier(stem)
        name = stem
        n = 1
        while self.taken(name):
            n += 1
            name = f"{stem}_{n}"
        self.used.add(name)
        if self.outer is not None:
            self.outer.locals_seen.add(name)
        return name

    def taken(self, name: str) -> bool:
        if name in self.used or keyword.iskeyword(name) or name in self.locals_seen:
            return True
        return self.outer is not None and name in self.outer.used


def base_env() -> dict[str, Any]:
    """The globals every generated module starts with: the runtime's helpers, and the C
    helpers when the accelerator is active. Everything else a module needs, the compiler adds
    as it writes the source (tag bytes, classes, enum members)."""
    env: dict[str, Any] = {
        "Mismatch": runtime.Mismatch,
        "write_varint": runtime.write_varint,
        "varint_bytes": varint_bytes,
        "read_varint": runtime.read_varint_at,
        "skip_unknown": runtime.skip_unknown,
        "as_int": runtime.as_int,
        "as_float": runtime.as_float,
        "as_bytes": runtime.as_bytes,
        "encode_duration": runtime.encode_duration,
        "decode_duration": runtime.decode_duration,
        "encode_foreign": foreign.encode_into,
        "check_foreign": foreign.check,
        "decode_foreign": foreign.decode_span,
        "new": object.__new__,
        "join": b"".join,
        "copysign": math.copysign,
        "unpack_many": struct.unpack_from,
        "write_varints": packed.write_varints,
        "write_messages": packed.write_messages,
    }
    if accel.speedups is not None:  # the C helpers for packed varints (see accel)
        env["decode_packed"] = accel.speedups.decode_packed
        env["encode_packed"] = accel.speedups.encode_packed
        env["decode_messages"] = accel.speedups.decode_messages
        env["encode_messages"] = accel.speedups.encode_messages
        for mode, number in accel.MODES.items():
            env[f"VARINT_{mode.upper()}"] = number
    for name in ("pack_f", "pack_d", "unpack_f", "unpack_d", "pack_u32", "pack_i32",
                 "pack_u64", "pack_i64", "unpack_u32", "unpack_i32", "unpack_u64",
                 "unpack_i64"):
        env[name] = getattr(runtime, name)
    return env


class _ClassGen:
    """Generates the source of one class's codec."""

    def __init__(self, cls: type, plan: MessagePlan) -> None:
        self.cls = cls
        self.plan = plan
        self.w = _Writer()
        self.globals = _Names()
        self.names = _Names(outer=self.globals)
        self.env = base_env()
        self.globals.used.update(self.env)
        self.needs: dict[str, tuple[type, str]] = {}
        self.helpers: list[list[str]] = []
        # Messages entered below the encode function's own (its root is level 0).
        self.level = 0
        # The level whose depth check is written once before a loop over a list's or a map's
        # elements, not again for each element.
        self.depth_checked: int | None = None
        # Message classes whose encoding is being written inline (outermost first).
        self.inlining: list[type] = []
        self.linked: dict[tuple[type, str], str] = {}
        self.helper_of: dict[int, str] = {}

    # -- naming -----------------------------------------------------------------------------

    def const(self, stem: str, value: Any) -> str:
        """A name in the generated module's globals for ``value`` (found again if present)."""
        for name, existing in self.env.items():
            if existing is value or (
                type(existing) is bytes and type(value) is bytes and existing == value
            ):
                return name
        name = self.globals.new(stem)
        self.env[name] = value
        return name

    def tag_bytes(self, f: FieldPlan, wire: int, suffix: bytes = b"") -> str:
        """The named constant of a field's tag (``IRR_TAG``), with ``suffix`` bytes after it."""
        data = varint_bytes(_tag(f.number, wire)) + suffix
        what = "true" if suffix == b"\x01" and wire == WIRE_VARINT else "tag"
        return self.const(f"{f.pyname or f.name}_{what}".upper(), data)

    def emit_tag(self, w: _Writer, f: FieldPlan, wire: int) -> None:
        """Append field ``f``'s tag: a one-byte tag as a number, since appending an int to the
        bytearray costs less than adding a bytes object to it."""
        tag = _tag(f.number, wire)
        if tag < 128:
            w(f"ap({tag})  # {f.pyname or f.name}")
        else:
            w(f"buf += {self.tag_bytes(f, wire)}")

    def function(self, cls: type, direction: str) -> str:
        """The name this source uses for a class's encode or decode function."""
        return self.link(cls, direction, f"{direction}_{cls.__name__}")

    def link(self, cls: type, direction: str, stem: str) -> str:
        """The global name this source uses for what ``cls`` provides (its ``"encode"`` or
        ``"decode"`` function, or its ``"table"``), recorded in ``needs`` for the front end to
        bind: all but this class's own functions, which its source defines."""
        key = (cls, direction)
        name = self.linked.get(key)
        if name is None:
            name = self.linked[key] = self.globals.new(stem)
            if cls is not self.cls or direction == "table":
                self.needs[name] = (cls, direction)
        return name

    # -- encoding ---------------------------------------------------------------------------
    #
    # Every encode function appends to one bytearray, ``buf``, through ``ap = buf.append``:
    # length-delimited bodies (nested messages, packed numbers, map entries) are written in
    # place after a one-byte length placeholder that is patched afterwards.

    def emit_varint(self, w: _Writer, var: str, hi: int | None = None) -> None:
        """Append local ``var`` (0 <= var < 2**64) as a varint; ``var`` is consumed. A varint
        of two bytes or more goes 14 bits at a time through tables of ready-made byte pairs:
        fewer steps, each on a smaller int, than 7 bits at a time (measured cheaper at every
        length from two bytes).

        With ``hi``, ``var`` is an unsigned value not yet checked, refused unless in 0..hi
        (``hi`` at least 127): a negative one makes ``bytearray.append`` raise ValueError, one
        of the signals, and only a value of two bytes or more is compared with ``hi``. One
        comparison instead of three for a one-byte value, and two for a longer one."""
        self.env["VARINT14"], self.env["VARINT14_LAST"] = accel.varint_tables()
        w(f"if {var} < 128:")
        with w.indent():
            w(f"ap({var})")
        w("else:")
        with w.indent():
            if hi is not None:
                self.emit_refuse(w, f"{var} > {hi}")
            w(f"while {var} > 16383:")
            with w.indent():
                w(f"buf += VARINT14[{var} & 16383]")
                w(f"{var} >>= 14")
            w(f"buf += VARINT14_LAST[{var}]")

    def emit_len_block(
        self, w: _Writer, f: FieldPlan, omit_empty: bool, body: Callable[[], None]
    ) -> None:
        """Write field ``f`` as a length-delimited record whose body ``body`` emits."""
        tag = varint_bytes(_tag(f.number, WIRE_LEN))
        w(f"buf += {self.tag_bytes(f, WIRE_LEN, bytes(1))}")
        start, size = self.names.new("start"), self.names.new("size")
        w(f"{start} = len(buf)")
        body()
        w(f"{size} = len(buf) - {start}")
        # A body of 128 bytes or more needs a longer length than its placeholder: the common
        # two-byte one is made inline (a call per level made deep nesting superlinear).
        w(f"if {size} >= 128:")
        with w.indent():
            w(f"if {size} < 16384:")
            with w.indent():
                w(f"buf[{start} - 1:{start}] = bytes(({size} & 127 | 128, {size} >> 7))")
            w("else:")
            with w.indent():
                w(f"buf[{start} - 1:{start}] = varint_bytes({size})")
        if omit_empty:
            w(f"elif {size}:")
            with w.indent():
                w(f"buf[{start} - 1] = {size}")
            w("else:")
            with w.indent():
                w(f"del buf[{start} - {len(tag) + 1}:]")
        else:
            w("else:")
            with w.indent():
                w(f"buf[{start} - 1] = {size}")

    def emit_refuse(self, w: _Writer, condition: str) -> None:
        """Mismatch when ``condition`` holds (the interpreter then says what is wrong)."""
        w(f"if {condition}:")
        with w.indent():
            w("raise Mismatch")

    def emit_check_scalar(self, w: _Writer, kind: ScalarKind, v: str) -> None:
        """Make ``v`` a value of ``kind``'s Python type, or mismatch."""
        if kind.python is int:
            w(f"if {v}.__class__ is not int:")
            with w.indent():
                w(f"{v} = as_int({v})")
        elif kind.python is float:
            w(f"if {v}.__class__ is not float:")
            with w.indent():
                w(f"{v} = as_float({v})")
        elif kind.python is bool or kind.python is str:
            self.emit_refuse(w, f"{v}.__class__ is not {kind.python.__name__}")
        else:
            w(f"if {v}.__class__ is not bytes:")
            with w.indent():
                w(f"{v} = as_bytes({v})")

    def emit_range(self, w: _Writer, kind: ScalarKind, v: str) -> None:
        if kind.python is not int:
            return
        self.emit_refuse(w, f"{v} < {kind.lo} or {v} > {kind.hi}")

    def emit_scalar_payload(
        self, w: _Writer, kind: ScalarKind, v: str, top: bool = False
    ) -> None:
        """Append the value ``v`` (of the kind's Python type, and consumed) without its tag,
        refusing an int out of the kind's range. ``top``: a field of the message being encoded
        at the top level, where a large payload is not copied into ``buf`` but handed over in
        ``parts`` (joined once by the caller)."""
        enc = kind.encoding
        if enc == "varint" and kind.lo == 0 and kind.hi >= 127:
            self.emit_varint(w, v, hi=kind.hi)  # the range checked as it is written
            return
        self.emit_range(w, kind, v)
        if enc == "varint":
            if kind.lo < 0:
                w(f"if {v} < 0:")
                with w.indent():
                    w(f"{v} &= {M64}")
            self.emit_varint(w, v)
        elif enc == "zigzag":
            w(f"{v} = ({v} << 1) ^ ({v} >> 63)")
            self.emit_varint(w, v)
        elif enc == "bool":
            w(f"ap(1 if {v} else 0)")
        elif enc in _STRUCT_CODES:
            packer = {"float": "pack_f", "double": "pack_d", "fixed32": "pack_u32",
                      "sfixed32": "pack_i32", "fixed64": "pack_u64",
                      "sfixed64": "pack_i64"}[enc]
            w(f"buf += {packer}({v})")
        else:  # string or bytes
            if enc == "string":
                w(f"{v} = {v}.encode()")
            size = self.names.new("size")
            w(f"{size} = len({v})")
            self.emit_varint(w, size)
            self.emit_payload_bytes(w, v, top)

    def emit_payload_bytes(self, w: _Writer, v: str, top: bool) -> None:
        if not top:
            w(f"buf += {v}")
            return
        w(f"if parts is not None and len({v}) > {LARGE_PAYLOAD}:")
        with w.indent():
            w("parts.append(bytes(buf))")
            w("buf.clear()")
            w(f"parts.append({v})")
        w("else:")
        with w.indent():
            w(f"buf += {v}")

    def emit_unwrap(self, w: _Writer, newtypes: Any, v: str) -> None:
        for newtype in newtypes:
            cls = self.const(newtype.cls.__name__, newtype.cls)
            self.emit_refuse(w, f"{v}.__class__ is not {cls}")
            w(f"{v} = {v}.{newtype.attr}")

    def emit_field(self, w: _Writer, f: FieldPlan, v: str, top: bool = False) -> None:
        """Write field ``f`` whose Python value is in local ``v``."""
        outside = f.unwrap[: f.none_at] if f.presence is Presence.EXPLICIT else f.unwrap
        self.emit_unwrap(w, outside, v)
        if f.presence is Presence.EXPLICIT:
            w(f"if {v} is not None:")
            w.depth += 1
            self.emit_unwrap(w, f.unwrap[f.none_at :], v)
        skip_zero = f.zero_test is not ZeroTest.NONE
        container = f.container
        if container is Container.LIST:
            self.emit_refuse(w, f"{v}.__class__ is not list")
            if f.length is not None:
                self.emit_refuse(w, f"len({v}) != {f.length}")
            if skip_zero:
                w(f"if {v}:")
                w.depth += 1
            self.emit_list(w, f, v, nonempty=skip_zero)
            if skip_zero:
                w.depth -= 1
        elif container is Container.DICT:
            self.emit_refuse(w, f"{v}.__class__ is not dict")
            entry = f.message
            assert entry is not None
            key, item = self.names.new(f"{f.pyname}_key"), self.names.new(f"{f.pyname}_item")
            with self.elements_checked(w, v, nonempty=False):
                w(f"for {key}, {item} in {v}.items():")
                with w.indent():
                    def body() -> None:
                        self.emit_check_depth(w)
                        self.emit_field(w, entry.fields[0], key)
                        self.emit_field(w, entry.fields[1], item)
                    self.level += 1
                    self.emit_len_block(w, f, omit_empty=False, body=body)
                    self.level -= 1
        elif container is Container.BYTES_LIST:
            self.emit_refuse(w, f"{v}.__class__ is not list")
            x = self.names.new(f"{f.pyname}_byte")
            w(f"for {x} in {v}:")
            with w.indent():
                self.emit_refuse(w, f"{x}.__class__ is not int")
            if f.length is not None:
                self.emit_refuse(w, f"len({v}) != {f.length}")
            if skip_zero:
                w(f"if {v}:")
                w.depth += 1
            w(f"{v} = bytes({v})")  # a ValueError for an int out of 0..255
            w(f"buf += {self.tag_bytes(f, WIRE_LEN)}")
            size = self.names.new("size")
            w(f"{size} = len({v})")
            self.emit_varint(w, size)
            w(f"buf += {v}")
            if skip_zero:
                w.depth -= 1
        elif f.length is not None and isinstance(f.value, ScalarValue):  # fixed bytes
            w(f"if {v}.__class__ is not bytes:")
            with w.indent():
                w(f"{v} = as_bytes({v})")
            self.emit_refuse(w, f"len({v}) != {f.length}")
            prefix = varint_bytes(f.length)
            w(f"buf += {self.tag_bytes(f, WIRE_LEN, prefix)}")
            self.emit_payload_bytes(w, v, top)
        else:
            if f.length is not None:  # a fixed array of messages, in its wrapper
                self.emit_refuse(w, f"{v}.__class__ is not list or len({v}) != {f.length}")
            self.emit_value(w, f, v, always=not skip_zero, top=top)
        if f.presence is Presence.EXPLICIT:
            w.depth -= 1

    def emit_value(
        self, w: _Writer, f: FieldPlan, v: str, always: bool, top: bool = False
    ) -> None:
        """Write one value of ``f`` with its tag (a zero is skipped unless ``always``)."""
        vp = f.value
        if isinstance(vp, ScalarValue):
            kind = vp.kind
            self.emit_check_scalar(w, kind, v)
            if kind.encoding == "bool" and not always:
                w(f"if {v}:")
                with w.indent():
                    w(f"buf += {self.tag_bytes(f, kind.wire, bytes([1]))}")
                return
            if not always:
                cond = f"{v} or copysign(1.0, {v}) < 0" if f.zero_test is ZeroTest.FLOAT else v
                w(f"if {cond}:")
                w.depth += 1
            self.emit_tag(w, f, kind.wire)
            self.emit_scalar_payload(w, kind, v, top)
            if not always:
                w.depth -= 1
            return
        if isinstance(vp, EnumValue):
            self.emit_check_enum(w, vp, v)
            if vp.converts:  # its number is what int() gives, zero included
                w(f"{v} = int({v})")
            if not always:
                w(f"if {v}:")
                w.depth += 1
            self.emit_tag(w, f, WIRE_VARINT)
            self.emit_enum_payload(w, v)
            if not always:
                w.depth -= 1
            return
        message = vp.message
        if message.form is Form.STRUCT and vp.cls is not None:
            self.emit_refuse(w, f"{v}.__class__ is not {self.const(vp.cls.__name__, vp.cls)}")
        self.level += 1
        self.emit_len_block(w, f, not always, lambda: self.emit_body(w, message, vp, v))
        self.level -= 1

    def emit_check_depth(self, w: _Writer) -> None:
        """A message written here, ``level`` messages below this function's own: refuse it
        where the decoder's ``max_depth`` would (the root counts as one)."""
        if self.level != self.depth_checked:
            self.emit_refuse(w, f"depth <= {self.level}")

    @contextmanager
    def elements_checked(self, w: _Writer, v: str, nonempty: bool) -> Iterator[None]:
        """Refuse the elements of list or map ``v``, one level below here, before the loop
        over them: once, where each element would check its depth again (``nonempty``: ``v``
        is known to hold one)."""
        condition = f"depth <= {self.level + 1}"
        self.emit_refuse(w, condition if nonempty else f"{condition} and {v}")
        outer, self.depth_checked = self.depth_checked, self.level + 1
        try:
            yield
        finally:
            self.depth_checked = outer

    def emit_check_enum(self, w: _Writer, vp: EnumValue, v: str) -> None:
        """Refuse anything but one of the plan's members (a plain int, another enum's member,
        or a pseudo-member that an open enum's ``_missing_`` made up)."""
        cls, members = self.const(vp.cls.__name__, vp.cls), self.enum_members(vp)
        self.emit_refuse(w, f"{v}.__class__ is not {cls} or {members}.get({v}) is not {v}")

    def emit_enum_payload(self, w: _Writer, v: str) -> None:
        w(f"if {v} < 0:")
        with w.indent():
            w(f"{v} &= {M64}")
        w("else:")
        with w.indent():
            w(f"{v} = int({v})")
        self.emit_varint(w, v)

    def emit_body(self, w: _Writer, m: MessagePlan, vp: MessageValue, v: str) -> None:
        """Append the fields of message ``m`` holding local ``v`` (no tag, no length)."""
        form = m.form
        calls = vp.cls is not None and (form is Form.ONEOF or not self.can_inline(vp.cls, m))
        if calls:
            assert vp.cls is not None
            w(f"{self.function(vp.cls, 'encode')}({v}, buf, depth - {self.level})")
            return
        if _checks_depth(m):
            self.emit_check_depth(w)
        if form is Form.STRUCT and vp.cls is not None:
            # A small message's fields are written right here: no call per element.
            self.inlining.append(vp.cls)
            w(f"# {m.name}, inline")
            self.emit_fields(w, m, v, top=False)
            self.emit_unknown(w, v)
            self.inlining.pop()
        elif form is Form.STRUCT:  # a Oneof variant's payload, in its Oneof's function
            self.emit_fields(w, m, v, top=False)
            self.emit_unknown(w, v)
        elif form is Form.TUPLE:
            self.emit_refuse(w, f"{v}.__class__ is not tuple or len({v}) != {len(m.fields)}")
            for f in m.fields:
                item = self.names.new(f"{v}_{f.attr}")
                w(f"{item} = {v}[{f.attr}]")
                self.emit_field(w, f, item)
        elif form is Form.WRAPPER:
            inner = self.names.new(f"{v}_inner")
            w(f"{inner} = {v}")
            self.emit_field(w, m.fields[0], inner)
        elif form is Form.DURATION:
            w(f"encode_duration({v}, buf)")
        elif form is Form.FOREIGN:
            spec = self.const(f"{m.name}_class", m.foreign)
            self.emit_refuse(w, f"not check_foreign({spec}, {v})")
            w(f"encode_foreign({spec}, {v}, buf)")
        else:  # pragma: no cover - map entries are written by emit_field
            raise AssertionError(form)

    def emit_unknown(self, w: _Writer, v: str) -> None:
        unknown = self.names.new(f"{v}_unknown")
        w(f"{unknown} = {v}._pb_unknown")
        w(f"if {unknown}:")
        with w.indent():
            w(f"buf += {unknown}")

    def emit_list(self, w: _Writer, f: FieldPlan, v: str, nonempty: bool) -> None:
        """Write the elements of list ``v`` (packed when numeric; ``nonempty``: ``v`` is known
        to hold an element)."""
        vp = f.value
        if f.packed:
            def body() -> None:
                x = self.names.new(f"{f.pyname}_item")
                if isinstance(vp, ScalarValue) and vp.kind.name == "u8":
                    w(f"for {x} in {v}:")
                    with w.indent():
                        self.emit_refuse(w, f"{x}.__class__ is not int")
                    w(f"buf += bytes({v})")
                    return
                assert isinstance(vp, (ScalarValue, EnumValue))  # packed: numbers only
                native = self.packed_kind_args(vp, "encode")
                if native is not None:
                    w(f"encode_packed(buf, {v}, {native})")
                    return
                kind = vp.kind if isinstance(vp, ScalarValue) else None
                many = kind is not None and kind.encoding == "varint" and packed.serves(
                    kind.lo, kind.hi)
                if many:  # a long list may go many values at a time (see codec.packed)
                    assert kind is not None
                    w(f"if len({v}) < {packed.MIN_LENGTH} or not write_varints("
                      f"buf, {v}, {kind.lo}, {kind.hi}):")
                    w.depth += 1
                w(f"for {x} in {v}:")
                with w.indent():
                    if isinstance(vp, EnumValue):
                        self.emit_check_enum(w, vp, x)
                        self.emit_enum_payload(w, x)
                    else:
                        assert isinstance(vp, ScalarValue)
                        self.emit_check_scalar(w, vp.kind, x)
                        self.emit_scalar_payload(w, vp.kind, x)
                if many:
                    w.depth -= 1
            self.emit_len_block(w, f, omit_empty=False, body=body)
            return
        table = self.element_table(f)
        if table is not None:
            depth = f"depth - {self.level}" if self.level else "depth"
            w(f"encode_messages(buf, {v}, {depth}, {self.tag_bytes(f, WIRE_LEN)}, {table})")
            return
        # Elements that would each check their depth check it here, once.
        checks = isinstance(vp, MessageValue) and _checks_depth(vp.message)
        with self.elements_checked(w, v, nonempty) if checks else nullcontext():
            rows = self.message_rows(f)
            if rows is not None:  # a long list may go a block of messages at a time
                cls, fields, tag, shortest = rows
                w(f"if len({v}) < {shortest} or not "
                  f"write_messages(buf, {v}, {cls}, {fields}, {tag}):")
                w.depth += 1
            x = self.names.new(f"{f.pyname}_item")
            w(f"for {x} in {v}:")
            with w.indent():
                self.emit_unwrap(w, f.elem_unwrap, x)
                self.emit_value(w, f, x, always=True)
            if rows is not None:
                w.depth -= 1

    def message_rows(self, f: FieldPlan) -> tuple[str, str, int, int] | None:
        """For a list field ``f`` of small messages of numbers, which ``write_messages`` writes
        (on the pure-Python path): the names of the element class and of its fields' tuple,
        the list's one-byte tag, and the shortest list worth the call. None for any other
        list."""
        vp = f.value
        if accel.speedups is not None or not isinstance(vp, MessageValue) or f.elem_unwrap:
            return None
        m = vp.message
        if vp.cls is None or m.form is not Form.STRUCT or f.length is not None:
            return None
        if not _all_scalar(m, numbers_only=True):
            return None
        tag = _tag(f.number, WIRE_LEN)
        fields: list[packed.MessageField] = []
        for g in m.fields:
            value = g.value
            if (g.zero_test is not ZeroTest.FALSY or not isinstance(value, ScalarValue)
                    or not isinstance(g.attr, str)):
                return None
            kind = value.kind
            if kind.encoding == "bool":
                fields.append((g.attr, _tag(g.number, WIRE_VARINT), None))
            elif kind.encoding == "varint" and kind.python is int:
                fields.append((g.attr, _tag(g.number, WIRE_VARINT), (kind.lo, kind.hi)))
            else:
                return None
        if tag >= 0x80 or not packed.row_fields(tuple(fields)):
            return None
        name = vp.cls.__name__
        rows = tuple(fields)
        return (self.const(name, vp.cls), self.const(f"{name}_rows", rows), tag,
                packed.min_messages(rows))

    def element_table(self, f: FieldPlan) -> str | None:
        """The name of the table of the list field ``f``'s elements, for the C helpers that
        read and write the whole list (``decode_messages``, ``encode_messages``); None when the
        helpers are not loaded or the element is not a declared class (a struct or a Oneof)
        that the tables hold."""
        vp = f.value
        if accel.speedups is None or not isinstance(vp, MessageValue) or f.elem_unwrap:
            return None
        if f.length is not None or vp.cls is None or vp.message.form not in (Form.STRUCT,
                                                                             Form.ONEOF):
            return None
        if not native.holds_class(vp.cls):
            return None
        # Bound once the tables are made, after this code (they call its functions).
        return self.link(vp.cls, "table", f"{vp.cls.__name__}_table")

    def packed_kind_args(self, vp: ScalarValue | EnumValue, direction: str) -> str | None:
        """The kind arguments of a C helper call for a packed list of ``vp``, or None when
        the helpers are not loaded or do not serve this kind."""
        kind = accel.varint_kind(vp) if accel.speedups is not None else None
        if kind is None:
            return None
        args = f"VARINT_{kind[0].upper()}, {kind[1]}"
        if not isinstance(vp, EnumValue):
            return args
        if direction == "decode":
            return f"{args}, {self.enum_members(vp)}"
        if not vp.closed:  # the helpers check the class; the Python loop checks membership
            return None
        if vp.converts:
            return None  # the Python loop writes int(member); the helpers, the number itself
        return f"{args}, {self.const(vp.cls.__name__, vp.cls)}, {self.enum_members(vp)}"

    def enum_members(self, vp: EnumValue) -> str:
        # The plan's own dict (never changed): a cached codec finds it again in the plan.
        return self.const(f"{vp.cls.__name__}_members", vp.members)

    def emit_fields(self, w: _Writer, m: MessagePlan, obj: str, top: bool = True) -> None:
        for f in m.fields:
            v = self.names.new(f.pyname)
            w(f"{v} = {obj}.{f.attr}")
            self.emit_field(w, f, v, top=top)

    def can_inline(self, cls: type, m: MessagePlan) -> bool:
        """Inline a nested message's encoding when it is small, made only of scalars, and not
        already being inlined (recursion) or too deep."""
        if cls is self.cls or cls in self.inlining or len(self.inlining) >= 2:
            return False
        return _all_scalar(m)

    # -- decoding ---------------------------------------------------------------------------

    def emit_read_varint(self, w: _Writer, v: str) -> None:
        """Read a varint at ``pos`` into ``v``, inline: the second and third bytes unrolled,
        then a loop (a call per long varint measured 10-13% slower on the decode benchmarks).
        For a tag, a length or an enum, short numbers whose code stays small; a field's number
        is read by ``emit_read_number``. A read past the record's end is caught by the position
        check that follows every loop; at most 10 bytes and 64 bits are accepted."""
        w(f"{v} = data[pos]")
        w("pos += 1")
        w(f"if {v} > 127:")
        with w.indent():
            w("byte = data[pos]")
            w("pos += 1")
            w(f"{v} = ({v} & 127) | (byte & 127) << 7")
            w("if byte > 127:")
            with w.indent():
                w("byte = data[pos]")
                w("pos += 1")
                w(f"{v} |= (byte & 127) << 14")
                w("if byte > 127:")
                with w.indent():
                    w("shift = 21")
                    w("while True:")
                    with w.indent():
                        w("byte = data[pos]")
                        w("pos += 1")
                        w(f"{v} |= (byte & 127) << shift")
                        w("if byte < 128:")
                        with w.indent():
                            w("break")
                        w("shift += 7")
                        self.emit_refuse(w, "shift > 63")
                    self.emit_refuse(w, f"{v} >> 64")

    def emit_read_number(self, w: _Writer, v: str, kind: ScalarKind) -> None:
        """Read a varint at ``pos`` into ``v`` for a field's number (often long, unlike a tag or
        a length), its bytes unrolled up to the longest a number of ``kind`` takes.

        Each byte is read at its offset from ``pos`` and added unmasked, shifted, from a table
        (``SHIFTED[i][byte] == byte << 7 * i``: an int made once, where a shift would make a
        new one); the continuation bits that the sum then holds, a constant for each length,
        are taken off once at the end, and ``pos`` is moved once. Bytes five to nine are summed
        apart (``high``) with the same four tables and joined with one shift. A longer varint
        (overlong, or out of the kind's range) is read again by ``read_varint``. A read past
        the record's end is caught by the position check that follows every loop; at most 10
        bytes and 64 bits are accepted, as by ``emit_read_varint``."""
        def carries(count: int) -> int:  # the continuation bits of a varint of count bytes
            return sum(128 << (7 * i) for i in range(count - 1))

        if kind.encoding == "varint" and kind.lo < 0:
            longest = 10  # a negative number is sign-extended to 64 bits
        else:
            top = max(kind.hi, -kind.lo) << (kind.encoding == "zigzag")
            longest = max(1, (top.bit_length() + 6) // 7)
        w(f"{v} = data[pos]")
        w(f"if {v} < 128:")
        with w.indent():
            w("pos += 1")
        for i in range(1, longest):
            w("else:")
            w.depth += 1
            if i == 9:  # the tenth byte holds the 64th bit only
                w("byte = data[pos + 9]")
                self.emit_refuse(w, "byte > 1")
                w(f"{v} += ((high + (byte << 35)) << 28) - {carries(10)}")
                w("pos += 10")
                break
            total, added = (v, f"{v} -= ") if i < 4 else ("high", f"{v} += (high << 28) - ")
            if i == 4:
                w("high = data[pos + 4]")
                w("if high < 128:")
            else:
                w(f"byte = data[pos + {i}]")
                w(f"{total} += {self.shifted(i % 4 or 4)}[byte]")
                w("if byte < 128:")
            with w.indent():
                w(f"{added}{carries(i + 1)}")
                w(f"pos += {i + 1}")
        else:
            w("else:")
            with w.indent():
                w(f"{v}, pos = read_varint(data, pos, len(data))")
        w.depth -= longest - 1

    def shifted(self, i: int) -> str:
        """The name of the table of each byte's value shifted left by ``7 * i`` bits."""
        name = f"SHIFTED{i}"
        self.env[name] = runtime.shifted_bytes()[i]
        return name

    def emit_read_len(self, w: _Writer, end: str, checked: bool = True) -> None:
        """Read a length at ``pos`` into ``e``, as the position where the record ends.

        ``checked=False`` leaves a record that ends past ``end`` to the check after the loop
        (``pos != end``): for a value that is only sliced (a string, bytes, a message's bounds
        kept for later), which reads nothing from the bytes, then sets ``pos = e`` and so ends
        the loop. The slice is thrown away with the refused decode; it costs one copy of the
        input at most, as a record that long would."""
        self.emit_read_varint(w, "e")
        w("e += pos")
        if checked:
            self.emit_refuse(w, f"e > {end}")

    def emit_read_scalar(self, w: _Writer, vp: ScalarValue | EnumValue, v: str) -> None:
        """Read one non-length-delimited value at ``pos`` into ``v``."""
        if isinstance(vp, EnumValue):
            self.emit_read_varint(w, v)
            w(f"if {v} >> 63:")
            with w.indent():
                w(f"{v} -= {1 << 64}")
            w(f"{v} = {self.enum_members(vp)}[{v}]")
            return
        kind = vp.kind
        enc = kind.encoding
        if kind.wire == WIRE_VARINT:
            self.emit_read_number(w, v, kind)
            if enc == "bool":
                w(f"{v} = {v} != 0")  # any non-zero varint is true, as protobuf reads it
            elif enc == "zigzag":
                w(f"{v} = ({v} >> 1) ^ -({v} & 1)")
                if kind.hi < (1 << 63) - 1:
                    self.emit_range(w, kind, v)
            elif kind.lo < 0:
                w(f"if {v} >> 63:")
                with w.indent():
                    w(f"{v} -= {1 << 64}")
                if kind.hi < (1 << 63) - 1:
                    self.emit_range(w, kind, v)
            elif kind.hi < M64:
                self.emit_refuse(w, f"{v} > {kind.hi}")
            return
        size = 4 if kind.wire == WIRE_I32 else 8
        unpacker = {"float": "unpack_f", "double": "unpack_d", "fixed32": "unpack_u32",
                    "sfixed32": "unpack_i32", "fixed64": "unpack_u64",
                    "sfixed64": "unpack_i64"}[enc]
        w(f"{v} = {unpacker}(data, pos)[0]")
        w(f"pos += {size}")

    def emit_decode_len_value(
        self, w: _Writer, vp: ScalarValue | EnumValue | MessageValue, v: str, owner: str
    ) -> None:
        """Decode the record ``data[pos:e]`` as one value (an element)."""
        if isinstance(vp, ScalarValue):
            if vp.kind.encoding == "string":
                w(f"{v} = data[pos:e].decode()")
            else:
                w(f"{v} = data[pos:e]")
            return
        assert isinstance(vp, MessageValue)
        w(f"{v} = {self.decoder_call(vp, owner, 'data', 'pos', 'e')}")

    def decoder_call(
        self, vp: MessageValue, owner: str, data: str, start: str, end: str,
        more: str | None = None,
    ) -> str:
        """A call decoding a message from ``data[start:end]`` and, merged into it, the further
        records whose bounds are in the list ``more`` (see emit_decode_body)."""
        tail = f", {more}" if more else ""
        m = vp.message
        if vp.cls is not None:
            call = self.function(vp.cls, "decode")
            return f"{call}({data}, {start}, {end}, depth - 1, budget{tail})"
        if m.form is Form.DURATION:
            return f"decode_duration({data}, {start}, {end}, depth - 1{tail})"
        if m.form is Form.FOREIGN:
            spec = self.const(f"{m.name}_class", m.foreign)
            return f"decode_foreign({spec}, {data}, {start}, {end})"
        return f"{self.helper(m, owner)}({data}, {start}, {end}, depth - 1, budget{tail})"

    def helper(self, m: MessagePlan, owner: str) -> str:
        """The decode function of a message the plan nests (a tuple, a map entry, a wrapper,
        a Oneof variant's payload), written once and named after where it is used."""
        name = self.helper_of.get(id(m))
        if name is None:
            name = self.globals.new(f"decode_{owner}")
            self.helper_of[id(m)] = name
            w = _Writer()
            outer_locals = self.names
            self.emit_decoder(w, name, m, merging=True)
            self.names = outer_locals
            self.helpers.append(w.lines)
        return name

    def new_function(self) -> None:
        """Start the locals of a new generated function."""
        self.names = _Names(outer=self.globals)

    def emit_decoder(self, w: _Writer, name: str, m: MessagePlan, merging: bool) -> None:
        """A decode function of message ``m``: builds its Python value."""
        self.new_function()
        w(f"def {name}(data, pos, end, depth, budget, more=None):")
        with w.indent():
            self.emit_refuse(w, "depth <= 0")
            self.emit_decode_body(w, m, "end", "return ", merging=merging)

    def emit_decode_body(
        self, w: _Writer, m: MessagePlan, end: str, result: str, merging: bool = False,
    ) -> None:
        """Read fields from ``pos`` to ``end``, then ``result`` (a statement prefix such as
        ``return `` or ``items.append(``... ``)``) the value built.

        ``merging``: repeated records of a singular message merge. The first is ``pos, end``
        and the bounds of the others come in ``more``, the last record's first
        (``[e_n, s_n, ..., e_2, s_2]``, a list the decoder uses up), and each record is read in
        turn into the same locals: no record is copied or joined, so nested merges cost memory
        in proportion to the number of records, not to the depth times the input.
        """
        cost = runtime.built_cost(m)
        if cost:
            # What building this value costs, counted against the decode's memory budget
            # (None when the input is too small to exhaust it: see Codec.decode).
            w("if budget is not None:")
            with w.indent():
                w(f"budget[0] -= {cost}")
                self.emit_refuse(w, "budget[0] < 0")
        readers = [_FieldReader(self, f, m) for f in m.fields]
        for r in readers:
            r.emit_init(w)
        keep_unknown = m.keeps_unknown
        if keep_unknown:
            # Locals of their own: an inline element's body sits inside its parent's loop.
            unknown, start = self.names.new("unknown"), self.names.new("start")
            w(f"{unknown} = None")
        known = self.const(f"{m.name}_numbers", frozenset(m.by_number)) if keep_unknown else ""
        if merging:
            w("while True:")
            w.depth += 1
        self.emit_loop_to(w, end)
        with w.indent():
            self.emit_read_tag(w, end, start if keep_unknown else None)
            first = True
            for r in readers:
                for tag, comment, body in r.branches():
                    w(f"{'if' if first else 'elif'} tag == {tag}:  # {comment}")
                    first = False
                    with w.indent():
                        body(w)
            w("else:" if not first else "if True:")
            with w.indent():
                if not keep_unknown:
                    # A tuple, map entry or wrapper has nowhere to keep unknown fields: the
                    # interpreter drops them, with a warning that says where.
                    w("raise Mismatch")
                else:
                    # Where the record began, for a tag of one byte (a longer tag was marked
                    # when read): a longer tag never ends in a byte equal to its value, as its
                    # last byte holds the value's top bits (zero in an overlong one, and a tag
                    # of zero is refused).
                    w("if data[pos - 1] == tag:")
                    with w.indent():
                        w(f"{start} = pos - 1")
                    w(f"pos = skip_unknown(data, pos, {end}, tag, {known})")
                if keep_unknown:
                    w(f"if {unknown} is None:")
                    with w.indent():
                        w(f"{unknown} = []")
                    w(f"{unknown}.append(data[{start}:pos])")
            self.emit_loop_end(w, end)
        self.emit_refuse(w, f"pos != {end}")
        if merging:
            self.emit_next_record(w)
            w.depth -= 1
        for r in readers:
            r.emit_finish(w)
        close = ")" if result.endswith("(") else ""
        form = m.form
        if form is Form.STRUCT:
            o = self.names.new(m.name.lower())
            w(f"{o} = new({self.const(m.cls.__name__, m.cls)})")  # type: ignore[union-attr]
            for r in readers:
                w(f"{o}.{r.field.attr} = {r.var}")
            w(f"{o}._pb_unknown = join({unknown}) if {unknown} else None")
            w(f"{result}{o}{close}")
        elif form is Form.WRAPPER:
            w(f"{result}{readers[0].var}{close}")
        else:  # TUPLE, ENTRY
            w(f"{result}({''.join(r.var + ', ' for r in readers)}){close}")

    def emit_loop_to(self, w: _Writer, end: str) -> None:
        """Open a loop that reads while ``pos < end``; its body follows, one level in, and
        ends with ``emit_loop_end``.

        Not ``while pos < end``: that tests ``pos`` before a jump over the whole body, and
        CPython 3.11 specializes a comparison only when the jump after it is short (a long one
        takes an extended argument), so every pass would pay for a generic comparison (about
        60 instructions more; a long list decoded that way measured half as slow again). Here
        the test made on each pass jumps over one ``break``."""
        w(f"if pos < {end}:")
        w.depth += 1
        w("while True:")

    def emit_loop_end(self, w: _Writer, end: str) -> None:
        w(f"if pos >= {end}:")
        with w.indent():
            w("break")
        w.depth -= 1

    def emit_read_tag(self, w: _Writer, end: str, start: str | None = None) -> None:
        """Read the tag at ``pos`` into ``tag``: one byte on the fast path. ``start``: a local
        that a tag of more than one byte sets to where it began (one of one byte is found
        again from the byte before ``pos``, which spares the common case a store)."""
        w("tag = data[pos]")
        w("if tag < 128:")
        with w.indent():
            w("pos += 1")
        w("else:")
        with w.indent():
            if start is not None:
                w(f"{start} = pos")
            w(f"tag, pos = read_varint(data, pos, {end})")

    def emit_next_record(self, w: _Writer) -> None:
        """Inside ``while True``: go on with the next record in ``more``, or stop."""
        w("if not more:")
        with w.indent():
            w("break")
        w("pos = more.pop()")
        w("end = more.pop()")

    def can_inline_decode(self, vp: MessageValue) -> bool:
        """Decode a list element inline when it is a small message of numbers (whose reads
        never look at ``end`` or ``e``) and not recursive."""
        if vp.cls is None or vp.cls is self.cls:
            return False
        m = vp.message
        return m.form is Form.STRUCT and _all_scalar(m, numbers_only=True)

    # -- whole classes ----------------------------------------------------------------------

    def generate_message(self) -> None:
        w, m = self.w, self.plan
        w(f"def {self.function(self.cls, 'encode')}(obj, buf, depth, parts=None):")
        with w.indent():
            self.emit_check_depth(w)
            w("ap = buf.append")
            self.emit_fields(w, m, "obj")
            w("unknown = obj._pb_unknown")
            w("if unknown:")
            with w.indent():
                w("buf += unknown")
        w("")
        w("")
        self.emit_decoder(w, self.function(self.cls, "decode"), m, merging=True)

    def generate_oneof(self) -> None:
        w, m = self.w, self.plan
        w(f"def {self.function(self.cls, 'encode')}(obj, buf, depth, parts=None):")
        with w.indent():
            self.emit_check_depth(w)
            w("ap = buf.append")
            w("variant = obj.__class__")
            first = True
            for f in m.fields:
                assert f.variant is not None
                cls_name = self.const(f.variant.__name__, f.variant)
                w(f"{'if' if first else 'elif'} variant is {cls_name}:")
                first = False
                with w.indent():
                    v = self.names.new(f.name)
                    w(f"{v} = obj")
                    self.emit_field(w, f, v)
            w("else:")
            with w.indent():
                w("raise Mismatch")
        w("")
        w("")
        self.emit_oneof_decoder(w, m)

    def emit_oneof_decoder(self, w: _Writer, m: MessagePlan) -> None:
        self.new_function()
        w(f"def {self.function(self.cls, 'decode')}(data, pos, end, depth, budget, more=None):")
        with w.indent():
            self.emit_refuse(w, "depth <= 0")
            w("cur = 0")
            readers = {f.number: _FieldReader(self, f, m) for f in m.fields}
            w("while True:")
            w.depth += 1
            self.emit_loop_to(w, "end")
            with w.indent():
                self.emit_read_tag(w, "end")
                first = True
                for number, reader in readers.items():
                    for tag, comment, body in reader.branches():
                        w(f"{'if' if first else 'elif'} tag == {tag}:  # {comment}")
                        first = False
                        with w.indent():
                            w(f"if cur != {number}:")
                            with w.indent():
                                w(f"cur = {number}")
                                reader.emit_init(w)
                            body(w)
                w("else:")
                with w.indent():
                    w("raise Mismatch")
                self.emit_loop_end(w, "end")
            self.emit_refuse(w, "pos != end")
            self.emit_next_record(w)
            w.depth -= 1
            for number, reader in readers.items():
                w(f"if cur == {number}:")
                with w.indent():
                    reader.emit_finish(w)
                    w(f"return {reader.var}")
            w("raise Mismatch")

    def source(self) -> str:
        lines = [
            f"# The codec of {self.cls.__module__}.{self.cls.__qualname__}, "
            "generated by savestate from its wire plan.",
            "",
            *self.w.lines,
        ]
        for helper in self.helpers:
            lines.extend(("", ""))
            lines.extend(helper)
        return "\n".join(lines) + "\n"


def _checks_depth(m: MessagePlan) -> bool:
    """Whether writing message ``m`` refuses it past ``max_depth``: every form but a foreign
    library's message, which nests as that library likes, both ways."""
    return m.form is not Form.FOREIGN


def _all_scalar(m: MessagePlan, numbers_only: bool = False) -> bool:
    """A small message of scalars and enums (``numbers_only``: none length-delimited)."""
    if len(m.fields) > INLINE_FIELDS:
        return False
    for f in m.fields:
        if f.container is not Container.NONE or f.unwrap or f.length is not None:
            return False
        if f.presence is Presence.EXPLICIT:
            return False
        if isinstance(f.value, MessageValue):
            return False
        if numbers_only and f.value.wire == WIRE_LEN:
            return False
    return True


class _FieldReader:
    """How one field is accumulated while decoding: its locals, its tag branches, its final
    value."""

    def __init__(self, gen: _ClassGen, f: FieldPlan, owner: MessagePlan) -> None:
        self.gen = gen
        self.field = f
        self.owner = owner
        self.var = gen.names.new(f.pyname or f.name)
        if self.spans:  # the record's start and end, and the list of merged records
            gen.names.used.update(f"{self.var}{suffix}" for suffix in ("_s", "_e", "_d"))
        # Set when the field starts out MISSING: absence is then checked at the end.
        self.may_be_missing = False

    @property
    def spans(self) -> bool:
        """Singular messages keep their record spans, so that duplicates can merge."""
        f = self.field
        return isinstance(f.value, MessageValue) and f.container is Container.NONE

    @property
    def helper_owner(self) -> str:
        return f"{self.owner.name}_{self.field.pyname or self.field.name}"

    def emit_init(self, w: _Writer) -> None:
        f, var = self.field, self.var
        if f.length is not None and not self.spans:
            w(f"{var} = MISSING")
        elif f.absent is Absent.NONE and not self.spans:
            w(f"{var} = None")
        elif f.container is Container.LIST or f.container is Container.BYTES_LIST:
            w(f"{var} = []")
        elif f.container is Container.DICT:
            w(f"{var} = {{}}")
        elif self.spans:
            w(f"{var} = MISSING")
            w(f"{var}_d = None")
        elif f.absent is Absent.ZERO and not f.unwrap:
            w(f"{var} = {self.literal(f.zero)}")
        elif f.absent is Absent.NONE:
            w(f"{var} = None")
        else:
            self.may_be_missing = True
            w(f"{var} = MISSING")
        self.gen.env["MISSING"] = MISSING

    def literal(self, value: Any) -> str:
        """Source for an immutable value: its repr when that reads back, else a constant."""
        if type(value) in (int, float, str, bytes, bool) and not (
            type(value) is float and (math.isnan(value) or math.isinf(value))
        ):
            return repr(value)
        return self.gen.const(f"{self.field.pyname or 'field'}_zero", value)

    def branches(self) -> Iterator[tuple[int, str, Callable[[_Writer], None]]]:
        """(tag, comment, emitter of the branch body) for each tag this field accepts."""
        f, vp = self.field, self.field.value
        where = f"{f.pyname or f.name} = {f.number}"
        if f.container is Container.LIST:
            if isinstance(vp, MessageValue) or vp.wire == WIRE_LEN:
                yield _tag(f.number, WIRE_LEN), where, self.emit_element
                return
            yield _tag(f.number, WIRE_LEN), f"{where}, packed", self.emit_packed
            yield _tag(f.number, vp.wire), f"{where}, one element", self.emit_unpacked
            return
        if f.container is Container.DICT:
            yield _tag(f.number, WIRE_LEN), where, self.emit_entry
            return
        if f.container is Container.BYTES_LIST:
            yield _tag(f.number, WIRE_LEN), where, self.emit_bytes_list
            return
        if isinstance(vp, MessageValue):
            yield _tag(f.number, WIRE_LEN), where, self.emit_span
            return
        yield _tag(f.number, vp.wire), where, self.emit_scalar

    def emit_scalar(self, w: _Writer) -> None:
        vp, gen = self.field.value, self.gen
        assert isinstance(vp, (ScalarValue, EnumValue))
        if vp.wire == WIRE_LEN:
            gen.emit_read_len(w, "end", checked=False)
            gen.emit_decode_len_value(w, vp, self.var, self.helper_owner)
            w("pos = e")
        else:
            gen.emit_read_scalar(w, vp, self.var)

    def emit_bytes_list(self, w: _Writer) -> None:
        self.gen.emit_read_len(w, "end")
        w(f"{self.var} = list(data[pos:e])")
        w("pos = e")

    def emit_entry(self, w: _Writer) -> None:
        f, gen = self.field, self.gen
        gen.emit_read_len(w, "end")
        entry = f.message
        assert entry is not None
        name = gen.helper(entry, f"{self.helper_owner}_entry")
        key, item = gen.names.new(f"{f.pyname}_key"), gen.names.new(f"{f.pyname}_item")
        w(f"{key}, {item} = {name}(data, pos, e, depth - 1, budget)")
        w(f"{self.var}[{key}] = {item}")
        w("pos = e")

    def emit_span(self, w: _Writer) -> None:
        """A singular message: remember where its record is; duplicates merge at the end (a
        fixed array's wrapper given twice: the last record wins)."""
        var = self.var
        self.gen.emit_read_len(w, "end", checked=False)
        if self.field.length is not None:
            w(f"{var}_s = pos")
            w(f"{var}_e = e")
            w(f"{var}_d = False")
            w("pos = e")
            return
        w(f"if {var}_d is None:")
        with w.indent():
            w(f"{var}_s = pos")
            w(f"{var}_e = e")
            w(f"{var}_d = False")
        w("else:")
        with w.indent():
            w(f"if not {var}_d:")
            with w.indent():
                w(f"{var}_d = [{var}_s, {var}_e]")
            w(f"{var}_d.append(pos)")
            w(f"{var}_d.append(e)")
        w("pos = e")

    def ensure_list(self, w: _Writer) -> None:
        if self.field.length is not None:
            w(f"if {self.var} is MISSING:")
            with w.indent():
                w(f"{self.var} = []")

    def emit_packed(self, w: _Writer) -> None:
        f, gen, var = self.field, self.gen, self.var
        vp = f.value
        assert isinstance(vp, (ScalarValue, EnumValue))
        gen.emit_read_len(w, "end")
        if f.length is not None:
            w(f"{var} = []")  # a fixed array given twice: the last record wins
        size = {WIRE_I32: 4, WIRE_I64: 8}.get(vp.wire)
        if size is not None and isinstance(vp, ScalarValue) and not f.elem_unwrap:
            code = _STRUCT_CODES[vp.kind.encoding]
            count = gen.names.new("count")
            w(f"{count}, rest = divmod(e - pos, {size})")
            self.gen.emit_refuse(w, "rest")
            w(f"{var}.extend(unpack_many('<%d{code}' % {count}, data, pos))")
            w("pos = e")
            return
        native = gen.packed_kind_args(vp, "decode") if not f.elem_unwrap else None
        if native is not None:
            w(f"pos = decode_packed(data, pos, e, {var}, {native})")
            return
        one_byte_run = (isinstance(vp, ScalarValue) and vp.kind.encoding == "varint"
                        and not f.elem_unwrap)
        if one_byte_run:
            # Numbers under 128 take a byte each, and any kind holds them as they are: a
            # record of nothing else is its own list, extended in one step.
            run = gen.names.new("run")
            w(f"{run} = data[pos:e]")
            w(f"if {run}.isascii():")
            with w.indent():
                w(f"{var} += {run}")
                w("pos = e")
            w("else:")
            w.depth += 1
        x = gen.names.new(f"{f.pyname}_item")
        append = gen.names.new(f"{f.pyname}_append")
        w(f"{append} = {var}.append")
        gen.emit_loop_to(w, "e")
        with w.indent():
            gen.emit_read_scalar(w, vp, x)
            self.emit_wrap_elem(w, x)
            w(f"{append}({x})")
            gen.emit_loop_end(w, "e")
        self.gen.emit_refuse(w, "pos != e")
        if one_byte_run:
            w.depth -= 1

    def emit_wrap_elem(self, w: _Writer, x: str) -> None:
        for newtype in reversed(self.field.elem_unwrap):
            cls = self.gen.const(newtype.cls.__name__, newtype.cls)
            o = self.gen.names.new("wrapped")
            w(f"{o} = new({cls})")
            w(f"{o}.{newtype.attr} = {x}")
            w(f"{o}._pb_unknown = None")
            w(f"{x} = {o}")

    def emit_unpacked(self, w: _Writer) -> None:
        vp = self.field.value
        assert isinstance(vp, (ScalarValue, EnumValue))
        self.ensure_list(w)
        x = self.gen.names.new(f"{self.field.pyname}_item")
        self.gen.emit_read_scalar(w, vp, x)
        self.emit_wrap_elem(w, x)
        w(f"{self.var}.append({x})")

    def emit_element(self, w: _Writer) -> None:
        f, gen, var = self.field, self.gen, self.var
        vp = f.value
        table = gen.element_table(f)
        if table is not None:
            # This element and every one right after it, in one call.
            tag = _tag(f.number, WIRE_LEN)
            w(f"pos = decode_messages(data, pos, end, {var}, depth, budget, {table}, {tag})")
            return
        gen.emit_read_len(w, "end")
        if isinstance(vp, MessageValue) and gen.can_inline_decode(vp) and not f.elem_unwrap:
            m = vp.message
            w(f"# {m.name}, inline")
            self.gen.emit_refuse(w, "depth <= 1")
            gen.emit_decode_body(w, m, "e", f"{var}.append(")
            return
        x = gen.names.new(f"{f.pyname}_item")
        gen.emit_decode_len_value(w, vp, x, self.helper_owner)
        self.emit_wrap_elem(w, x)
        w(f"{var}.append({x})")
        w("pos = e")

    def emit_finish(self, w: _Writer) -> None:
        f, var, gen = self.field, self.var, self.gen
        if self.spans:
            vp = f.value
            assert isinstance(vp, MessageValue)
            owner = self.helper_owner
            w(f"if {var}_d:")
            with w.indent():
                if vp.message.form is Form.FOREIGN:
                    # Parsed by its own library: hand it the records joined.
                    joined = gen.names.new("joined")
                    w(f"{joined} = join([data[{var}_d[i]:{var}_d[i + 1]] "
                      f"for i in range(0, len({var}_d), 2)])")
                    w(f"{var} = {gen.decoder_call(vp, owner, joined, '0', f'len({joined})')}")
                else:
                    call = gen.decoder_call(vp, owner, "data", f"{var}_d[0]", f"{var}_d[1]",
                                            f"{var}_d[:1:-1]")
                    w(f"{var} = {call}")
                self.emit_count_and_wrap(w)
            w(f"elif {var}_d is not None:")
            with w.indent():
                w(f"{var} = {gen.decoder_call(vp, owner, 'data', f'{var}_s', f'{var}_e')}")
                self.emit_count_and_wrap(w)
            w("else:")
            with w.indent():
                self.emit_absent(w)
            return
        if f.length is not None:
            w(f"if {var} is MISSING:")
            with w.indent():
                self.emit_absent(w)
            w(f"elif len({var}) != {f.length}:")
            with w.indent():
                w("raise Mismatch")
            if f.unwrap:
                w("else:")
                with w.indent():
                    self.emit_wrap(w)
            return
        if self.may_be_missing:
            w(f"if {var} is MISSING:")
            with w.indent():
                self.emit_absent(w)
            if f.unwrap:
                w("else:")
                with w.indent():
                    self.emit_wrap(w)
            return
        if f.unwrap and f.absent is Absent.NONE:
            w(f"if {var} is not None:")
            with w.indent():
                self.emit_wrap(w)
            if f.none_at:
                w("else:")
                with w.indent():
                    self.emit_wrap(w, f.unwrap[: f.none_at])
            return
        self.emit_wrap(w)

    def emit_absent(self, w: _Writer) -> None:
        """Set the field's local to what absence decodes to (the plan says what)."""
        f, var, gen = self.field, self.var, self.gen
        absent = f.absent
        if absent is Absent.REQUIRED:
            w("raise Mismatch")
        elif absent is Absent.NONE:
            w(f"{var} = None")
            self.emit_wrap(w, f.unwrap[: f.none_at])  # the classes outside the optional
        elif absent is Absent.DEFAULT:
            # Declared in Python terms: nothing to wrap.
            if f.default_factory is not MISSING:
                w(f"{var} = {gen.const(f'{f.pyname}_default_factory', f.default_factory)}()")
            else:
                w(f"{var} = {self.literal(f.default)}")
        elif absent is Absent.EMPTY_MESSAGE:
            vp = f.value
            assert isinstance(vp, MessageValue)
            w(f"{var} = {gen.decoder_call(vp, self.helper_owner, 'EMPTY', '0', '0')}")
            gen.env["EMPTY"] = b""
            self.emit_wrap(w)
        else:  # ZERO (of the wire value: a transparent class is built around it)
            w(f"{var} = {self.literal(f.zero)}")
            self.emit_wrap(w)

    def emit_count_and_wrap(self, w: _Writer) -> None:
        """Check a fixed array's count (in its wrapper message), then wrap the value."""
        if self.field.length is not None:
            self.gen.emit_refuse(w, f"len({self.var}) != {self.field.length}")
        self.emit_wrap(w)

    def emit_wrap(self, w: _Writer, layers: tuple[Newtype, ...] | None = None) -> None:
        """Build the transparent classes around the wire value in the local (``f.unwrap``,
        or the given outer ``layers`` of it)."""
        var = self.var
        for newtype in reversed(self.field.unwrap if layers is None else layers):
            cls = self.gen.const(newtype.cls.__name__, newtype.cls)
            o = self.gen.names.new("wrapped")
            w(f"{o} = new({cls})")
            w(f"{o}.{newtype.attr} = {var}")
            w(f"{o}._pb_unknown = None")
            w(f"{var} = {o}")


def generate(cls: type) -> CompiledClass:
    """The source of ``cls``'s codec, and its globals before linking."""
    plan = plan_of(cls)
    gen = _ClassGen(cls, plan)
    if plan.form is Form.ONEOF:
        gen.generate_oneof()
    else:
        gen.generate_message()
    return CompiledClass(
        cls, gen.source(), _filename(cls), gen.env,
        encode_name=gen.function(cls, "encode"), decode_name=gen.function(cls, "decode"),
        needs=gen.needs,
    )


_filenames: set[str] = set()
_filenames_lock = threading.Lock()


def _filename(cls: type) -> str:
    """A linecache name of its own for ``cls``: two classes of the same qualified name (in a
    function run twice, say) never share one."""
    stem = f"<savestate codec {cls.__module__}.{cls.__qualname__}"
    with _filenames_lock:
        name = f"{stem}>"
        n = 1
        while name in _filenames:
            n += 1
            name = f"{stem}-{n}>"
        _filenames.add(name)
    return name


def compile_classes(classes: list[type]) -> dict[type, CompiledClass]:
    """Generate, exec and link the codecs of ``classes`` (one exec per class). A codec an
    earlier process compiled from the same plans comes from the cache (:mod:`.cache`) instead:
    neither generated nor compiled again."""
    compiled = {}
    use_cache = cache.directory() is not None  # else no fingerprint is needed
    for cls in classes:
        cc = None
        if use_cache:
            text, objects = fingerprint(cls)
            made_from = f"accelerated={accel.speedups is not None}\n{text}".encode()
            cc = _cached(cls, made_from, objects)
        if cc is None:
            cc = generate(cls)
            code = compile(cc.source, cc.filename, "exec")
            if use_cache:
                _keep(cc, code, made_from, objects)
            _run(cc, code)
        compiled[cls] = cc
    return compiled


def _run(cc: CompiledClass, code: CodeType) -> None:
    """Execute a class's compiled module, showing its source in tracebacks."""
    linecache.cache[cc.filename] = (len(cc.source), None, cc.source.splitlines(True), cc.filename)
    exec(code, cc.env)
    cc.encode = cc.env[cc.encode_name]
    cc.decode = cc.env[cc.decode_name]


# How a cached module's globals are made again, beyond base_env(): each name is a constant
# (kept as it is), one of the plan's objects (by its position in the fingerprint's list), the
# schema's MISSING, or one of the runtime's varint tables.
_CONSTANT_TYPES = (bool, int, float, str, bytes, type(None))


def _is_constant(value: object) -> bool:
    if type(value) in _CONSTANT_TYPES:
        return True
    return type(value) in (tuple, frozenset) and all(_is_constant(v) for v in value)  # type: ignore[attr-defined]


def _keep(cc: CompiledClass, code: CodeType, made_from: bytes, objects: list[object]) -> None:
    """Store a freshly compiled codec, when every global it needs can be made again."""
    base = base_env()
    position: dict[int, int] = {}
    for index, obj in enumerate(objects):
        position.setdefault(id(obj), index)
    recipe: list[tuple[str, str, Any]] = []
    for name, value in cc.env.items():
        existing = base.get(name, _NO_VALUE)
        if existing is value or (type(existing) is type(value) and existing == value):
            continue  # made again by base_env() (``b"".join`` is a new bound method each time)
        if value is MISSING:
            recipe.append((name, "missing", None))
        elif _is_constant(value):
            recipe.append((name, "constant", value))
        elif name in ("VARINT14", "VARINT14_LAST"):
            recipe.append((name, "varint table", name == "VARINT14_LAST"))
        elif name.startswith("SHIFTED"):
            recipe.append((name, "shifted bytes", int(name[len("SHIFTED"):])))
        elif id(value) in position:
            recipe.append((name, "object", position[id(value)]))
        else:  # a global only this process can make: compiled again next time
            return
    needs = []
    for name, (other, direction) in cc.needs.items():
        if id(other) not in position:
            return
        needs.append((name, position[id(other)], direction))
    cache.store("codec", made_from, (
        cc.source, code, tuple(recipe), tuple(needs), (cc.encode_name, cc.decode_name),
    ))


_NO_VALUE = object()


def _cached(cls: type, made_from: bytes, objects: list[object]) -> CompiledClass | None:
    """The codec of ``cls`` made from a cache entry, or None on a miss."""
    entry = cache.load("codec", made_from)
    if entry is None:
        return None
    try:
        source, code, recipe, needs, (encode_name, decode_name) = entry
        env = base_env()
        for name, how, data in recipe:
            if how == "missing":
                env[name] = MISSING
            elif how == "constant":
                env[name] = data
            elif how == "varint table":
                env[name] = accel.varint_tables()[1 if data else 0]
            elif how == "shifted bytes":
                env[name] = runtime.shifted_bytes()[data]
            else:
                env[name] = objects[data]
        wanted = {name: (objects[index], direction) for name, index, direction in needs}
        if not isinstance(code, CodeType) or not isinstance(source, str):
            return None
    except (TypeError, ValueError, IndexError):  # an entry of another shape: a miss
        return None
    filename = _filename(cls)
    cc = CompiledClass(cls, source, filename, env, encode_name, decode_name, needs=wanted)
    try:
        _run(cc, _renamed(code, filename))
    except Exception:  # code that does not run here after all (it was checked; still a miss)
        return None
    return cc


def _renamed(code: CodeType, filename: str) -> CodeType:
    """``code`` and the functions it defines, as if compiled under ``filename`` (each process
    gives a class's source a linecache name of its own)."""
    consts = tuple(
        _renamed(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


def closure(cls: type, done: Callable[[type], bool]) -> list[type]:
    """Every declared class whose codec ``cls``'s codec calls, ``cls`` first, but those
    ``done`` says are compiled already."""
    order: list[type] = []
    seen: set[type] = set()
    stack = [cls]
    while stack:
        c = stack.pop()
        if c in seen or done(c):
            continue
        seen.add(c)
        order.append(c)
        stack.extend(r for r in references(plan_of(c)) if info_of(r) is not None)
    return order

