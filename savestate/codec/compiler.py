"""The codec compiler: specialised Python source for each declared class.

For every message (and Oneof) it writes one encode function and one decode function, with the
tag bytes of each field known in advance, a fast path for one-byte varints, every value checked
against its declared type, and no per-call look-up of the schema. The source is compiled with one
``exec`` per class and registered in ``linecache`` so that tracebacks and ``inspect.getsource``
show it.

Generated code does not build error messages: on anything unexpected it raises ``Mismatch`` (or
lets a builtin exception escape), and the front end re-runs the interpreting codec, which names
the field path and the reason.
"""

from __future__ import annotations

import linecache
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model import foreign
from ..model.introspect import schema_of, zero_value
from ..model.scalars import WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, ScalarKind
from ..model.schema import (
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
    TupleType,
    TypeSchema,
    is_packable,
)
from . import runtime
from .wire import varint_bytes

__all__ = ["CompiledClass", "compile_classes"]

M64 = (1 << 64) - 1
# A bytes or str field larger than this, at the top level, is joined into the result instead of
# being copied into the encode buffer first: one copy instead of two.
LARGE_PAYLOAD = 1 << 16


def _tag(number: int, wire: int) -> int:
    return (number << 3) | wire


@dataclass
class CompiledClass:
    """The generated functions of one class, and the names it needs from other classes."""

    cls: type
    source: str
    filename: str
    env: dict[str, Any]
    encode: Any = None
    decode: Any = None
    needs: dict[str, type] = field(default_factory=dict)


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


class _ClassGen:
    """Generates the source of one class's codec."""

    def __init__(self, cls: type, ident: str) -> None:
        self.cls = cls
        self.ident = ident
        self.w = _Writer()
        self.env: dict[str, Any] = {
            "_Mismatch": runtime.Mismatch,
            "_wv": runtime.write_varint,
            "_vb": varint_bytes,
            "_rv": runtime.read_varint_at,
            "_skip": runtime.skip_unknown,
            "_as_int": runtime.as_int,
            "_as_float": runtime.as_float,
            "_as_bytes": runtime.as_bytes,
            "_enc_duration": runtime.encode_duration,
            "_enc_foreign": foreign.encode_into,
            "_dec_foreign": foreign.decode_span,
            "_dec_duration": runtime.decode_duration,
            "_new": object.__new__,
            "_join": b"".join,
            "_MISSING": MISSING,
            "_cs": math.copysign,
            "_unpack_many": struct.unpack_from,
            "_pack_f": runtime.pack_f,
            "_pack_d": runtime.pack_d,
            "_unpack_f": runtime.unpack_f,
            "_unpack_d": runtime.unpack_d,
            "_pack_fixed32": runtime.pack_u32,
            "_pack_sfixed32": runtime.pack_i32,
            "_pack_fixed64": runtime.pack_u64,
            "_pack_sfixed64": runtime.pack_i64,
            "_unpack_fixed32": runtime.unpack_u32,
            "_unpack_sfixed32": runtime.unpack_i32,
            "_unpack_fixed64": runtime.unpack_u64,
            "_unpack_sfixed64": runtime.unpack_i64,
        }
        self.needs: dict[str, type] = {}
        self.counter = 0
        self.helpers: list[list[str]] = []
        # Message classes whose encoding is being written inline (outermost first).
        self.inlining: list[type] = []

    # -- naming -----------------------------------------------------------------------------

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def const(self, stem: str, value: Any) -> str:
        for name, existing in self.env.items():
            if name.startswith(f"_{stem}") and existing is value and not callable(existing):
                return name
        name = self.fresh(f"_{stem}")
        self.env[name] = value
        return name

    def bytes_const(self, value: bytes) -> str:
        for name, existing in self.env.items():
            if type(existing) is bytes and existing == value:
                return name
        name = self.fresh("_B")
        self.env[name] = value
        return name

    def func_of(self, direction: str, cls: type) -> str:
        """The name the source uses for another class's encode/decode function."""
        name = f"_{direction}_{class_ident(cls)}"
        if cls is not self.cls:
            self.needs[name] = cls
        return name

    # -- encoding ---------------------------------------------------------------------------
    #
    # Every encode function appends to one bytearray, ``buf``, through ``ap = buf.append``:
    # length-delimited bodies (nested messages, packed numbers, map entries) are written in
    # place after a one-byte length placeholder that is patched afterwards.

    def emit_varint(self, w: _Writer, var: str, wide: bool = False) -> None:
        """Append local ``var`` (0 <= var < 2**64) as a varint; ``var`` is consumed. ``wide``
        values (64-bit kinds) go 14 bits at a time through tables of ready-made byte pairs."""
        if wide:
            self.env["_V14"], self.env["_V14L"] = runtime.varint_tables()
            w(f"if {var} < 128:")
            with w.indent():
                w(f"ap({var})")
            w("else:")
            with w.indent():
                w(f"while {var} > 16383:")
                with w.indent():
                    w(f"buf += _V14[{var} & 16383]")
                    w(f"{var} >>= 14")
                w(f"buf += _V14L[{var}]")
            return
        w(f"while {var} > 127:")
        with w.indent():
            w(f"ap({var} & 127 | 128)")
            w(f"{var} >>= 7")
        w(f"ap({var})")

    def emit_len_block(
        self, w: _Writer, number: int, omit_empty: bool, body: Callable[[], None]
    ) -> None:
        """Write field ``number`` as a length-delimited record whose body ``body`` emits."""
        tag = varint_bytes(_tag(number, WIRE_LEN))
        w(f"buf += {self.bytes_const(tag + bytes(1))}")
        p, n = self.fresh("p"), self.fresh("n")
        w(f"{p} = len(buf)")
        body()
        w(f"{n} = len(buf) - {p}")
        w(f"if {n} >= 128:")
        with w.indent():
            w(f"buf[{p} - 1:{p}] = _vb({n})")
        if omit_empty:
            w(f"elif {n}:")
            with w.indent():
                w(f"buf[{p} - 1] = {n}")
            w("else:")
            with w.indent():
                w(f"del buf[{p} - {len(tag) + 1}:]")
        else:
            w("else:")
            with w.indent():
                w(f"buf[{p} - 1] = {n}")

    def emit_check_scalar(self, w: _Writer, kind: ScalarKind, v: str) -> None:
        """Make ``v`` a value of ``kind``'s Python type, or mismatch."""
        if kind.python is int:
            w(f"if {v}.__class__ is not int:")
            with w.indent():
                w(f"{v} = _as_int({v})")
        elif kind.python is float:
            w(f"if {v}.__class__ is not float:")
            with w.indent():
                w(f"{v} = _as_float({v})")
        elif kind.python is bool or kind.python is str:
            w(f"if {v}.__class__ is not {kind.python.__name__}:")
            with w.indent():
                w("raise _Mismatch")
        else:
            w(f"if {v}.__class__ is not bytes:")
            with w.indent():
                w(f"{v} = _as_bytes({v})")

    def emit_range(self, w: _Writer, kind: ScalarKind, v: str) -> None:
        if kind.python is not int:
            return
        w(f"if {v} < {kind.lo} or {v} > {kind.hi}:")
        with w.indent():
            w("raise _Mismatch")

    def emit_scalar_payload(
        self, w: _Writer, kind: ScalarKind, v: str, top: bool = False
    ) -> None:
        """Append the value ``v`` (checked, and consumed) without its tag. ``top``: a field of
        the message being encoded at the top level, where a large payload is not copied into
        ``buf`` but handed over in ``parts`` (joined once by the caller)."""
        enc = kind.encoding
        wide = kind.hi > 0xFFFFFFFF or kind.lo < 0
        if enc == "varint":
            if kind.lo < 0:
                w(f"if {v} < 0:")
                with w.indent():
                    w(f"{v} &= {M64}")
            self.emit_varint(w, v, wide)
        elif enc == "zigzag":
            w(f"{v} = ({v} << 1) ^ ({v} >> 63)")
            self.emit_varint(w, v, kind.hi > 0xFFFFFFFF)
        elif enc == "bool":
            w(f"ap(1 if {v} else 0)")
        elif enc in ("float", "double", "fixed32", "sfixed32", "fixed64", "sfixed64"):
            packer = {"float": "_pack_f", "double": "_pack_d"}.get(enc, f"_pack_{enc}")
            w(f"buf += {packer}({v})")
        else:  # string or bytes
            if enc == "string":
                w(f"{v} = {v}.encode()")
            n = self.fresh("n")
            w(f"{n} = len({v})")
            self.emit_varint(w, n)
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

    def emit_encode(
        self, w: _Writer, t: TypeSchema, v: str, number: int, always: bool, top: bool = False
    ) -> None:
        """Write field ``number`` holding local ``v`` of type ``t`` (a zero is skipped unless
        ``always``; ``top`` as for emit_scalar_payload)."""
        if isinstance(t, OptionalType):
            w(f"if {v} is not None:")
            with w.indent():
                self.emit_encode(w, t.inner, v, number, always=True, top=top)
            return
        if isinstance(t, ScalarType):
            kind = t.kind
            self.emit_check_scalar(w, kind, v)
            tag = varint_bytes(_tag(number, kind.wire))
            if kind.encoding == "bool" and not always:
                w(f"if {v}:")
                with w.indent():
                    w(f"buf += {self.bytes_const(tag + bytes([1]))}")
                return
            if not always:
                cond = f"{v} or _cs(1.0, {v}) < 0" if kind.python is float else v
                w(f"if {cond}:")
                w.depth += 1
            self.emit_range(w, kind, v)
            w(f"buf += {self.bytes_const(tag)}")
            self.emit_scalar_payload(w, kind, v, top)
            if not always:
                w.depth -= 1
            return
        if isinstance(t, EnumType):
            self.emit_check_enum(w, t, v)
            if not always:
                w(f"if {v}:")
                w.depth += 1
            w(f"buf += {self.bytes_const(varint_bytes(_tag(number, WIRE_VARINT)))}")
            self.emit_enum_payload(w, v)
            if not always:
                w.depth -= 1
            return
        if isinstance(t, RepeatedType):
            w(f"if {v}.__class__ is not list:")
            with w.indent():
                w("raise _Mismatch")
            if not always:
                w(f"if {v}:")
                w.depth += 1
            self.emit_sequence(w, t.elem, v, number)
            if not always:
                w.depth -= 1
            return
        if isinstance(t, FixedArrayType):
            self.emit_fixed_array(w, t, v, number, top)
            return
        if isinstance(t, MapType):
            w(f"if {v}.__class__ is not dict:")
            with w.indent():
                w("raise _Mismatch")
            k, x = self.fresh("k"), self.fresh("x")
            w(f"for {k}, {x} in {v}.items():")
            with w.indent():
                def entry() -> None:
                    self.emit_encode(w, t.key, k, 1, always=False)
                    self.emit_encode(w, t.value, x, 2, always=False)
                self.emit_len_block(w, number, omit_empty=False, body=entry)
            return
        if isinstance(t, MessageType):
            w(f"if {v}.__class__ is not {self.const('C', t.cls)}:")
            with w.indent():
                w("raise _Mismatch")
        omit_empty = not (always or isinstance(t, OneofType))
        self.emit_len_block(w, number, omit_empty, lambda: self.emit_message_body(w, t, v))

    def emit_check_enum(self, w: _Writer, t: EnumType, v: str) -> None:
        w(f"if {v}.__class__ is not {self.const('E', t.cls)}:")
        with w.indent():
            w("raise _Mismatch")

    def emit_enum_payload(self, w: _Writer, v: str) -> None:
        w(f"if {v} < 0:")
        with w.indent():
            w(f"{v} &= {M64}")
        w("else:")
        with w.indent():
            w(f"{v} = int({v})")
        self.emit_varint(w, v)

    def emit_message_body(self, w: _Writer, t: TypeSchema, v: str) -> None:
        """Append the fields of a message-like value (no tag, no length)."""
        if isinstance(t, MessageType) and self.can_inline(t.cls):
            # A small message's fields are written right here: no call per element.
            schema = schema_of(t.cls)
            assert isinstance(schema, MessageSchema)
            self.inlining.append(t.cls)
            w(f"# {t.cls.__name__}, inline")
            self.emit_encode_fields(w, schema.fields, v, top=False)
            u = self.fresh("u")
            w(f"{u} = {v}._pb_unknown")
            w(f"if {u}:")
            with w.indent():
                w(f"buf += {u}")
            self.inlining.pop()
        elif isinstance(t, (MessageType, OneofType)):
            w(f"{self.func_of('enc', t.cls)}({v}, buf)")
        elif isinstance(t, TupleType):
            w(f"if {v}.__class__ is not tuple or len({v}) != {len(t.elems)}:")
            with w.indent():
                w("raise _Mismatch")
            for i, et in enumerate(t.elems):
                e = self.fresh("t")
                w(f"{e} = {v}[{i}]")
                self.emit_encode(w, et, e, i + 1, always=False)
        elif isinstance(t, DurationType):
            w(f"_enc_duration({v}, buf)")
        elif isinstance(t, ForeignMessageType):
            w(f"_enc_foreign({self.const('F', t)}, {v}, buf)")
        else:  # pragma: no cover
            raise AssertionError(t)

    def emit_packed_body(self, w: _Writer, elem: TypeSchema, v: str) -> None:
        x = self.fresh("x")
        if isinstance(elem, ScalarType) and elem.kind.name == "u8":
            w(f"for {x} in {v}:")
            with w.indent():
                w(f"if {x}.__class__ is not int:")
                with w.indent():
                    w("raise _Mismatch")
            w(f"buf += bytes({v})")
            return
        w(f"for {x} in {v}:")
        with w.indent():
            if isinstance(elem, EnumType):
                self.emit_check_enum(w, elem, x)
                self.emit_enum_payload(w, x)
            else:
                assert isinstance(elem, ScalarType)
                self.emit_check_scalar(w, elem.kind, x)
                self.emit_range(w, elem.kind, x)
                self.emit_scalar_payload(w, elem.kind, x)

    def emit_sequence(self, w: _Writer, elem: TypeSchema, v: str, number: int) -> None:
        """Write the elements of list ``v`` as field ``number`` (packed when numeric)."""
        if is_packable(elem):
            self.emit_len_block(
                w, number, omit_empty=False, body=lambda: self.emit_packed_body(w, elem, v)
            )
            return
        x = self.fresh("x")
        w(f"for {x} in {v}:")
        with w.indent():
            self.emit_encode(w, elem, x, number, always=True)

    def emit_fixed_array(
        self, w: _Writer, t: FixedArrayType, v: str, number: int, top: bool = False
    ) -> None:
        if t.python_bytes:
            w(f"if {v}.__class__ is not bytes:")
            with w.indent():
                w(f"{v} = _as_bytes({v})")
            w(f"if len({v}) != {t.length}:")
            with w.indent():
                w("raise _Mismatch")
            prefix = varint_bytes(_tag(number, WIRE_LEN)) + varint_bytes(t.length)
            w(f"buf += {self.bytes_const(prefix)}")
            self.emit_payload_bytes(w, v, top)
            return
        w(f"if {v}.__class__ is not list or len({v}) != {t.length}:")
        with w.indent():
            w("raise _Mismatch")
        if t.packed:
            self.emit_sequence(w, t.elem, v, number)
            return
        self.emit_len_block(
            w, number, omit_empty=False, body=lambda: self.emit_sequence(w, t.elem, v, 1)
        )

    def emit_encode_fields(
        self, w: _Writer, fields: tuple[FieldSchema, ...], obj: str, top: bool = True
    ) -> None:
        for f in fields:
            v = self.fresh("v")
            w(f"{v} = {obj}.{f.name}")
            self.emit_encode(w, f.type, v, f.number, always=f.always, top=top)

    def can_inline(self, cls: type) -> bool:
        """Inline a nested message's encoding when it is small, made only of scalars, and not
        already being inlined (recursion) or too deep."""
        if cls is self.cls or cls in self.inlining or len(self.inlining) >= 2:
            return False
        schema = schema_of(cls)
        if not isinstance(schema, MessageSchema) or len(schema.fields) > 12:
            return False
        return all(isinstance(f.type, (ScalarType, EnumType)) for f in schema.fields)

    # -- decoding ---------------------------------------------------------------------------

    def emit_read_varint(self, w: _Writer, v: str, end: str) -> None:
        """Read a varint at ``pos`` into ``v``, inline. A read past ``end`` is caught by the
        position check that follows every loop; at most 10 bytes and 64 bits are accepted."""
        w(f"{v} = data[pos]")
        w("pos += 1")
        w(f"if {v} > 127:")
        with w.indent():
            # The second and third bytes unrolled, then a loop.
            w("b = data[pos]")
            w("pos += 1")
            w(f"{v} = ({v} & 127) | (b & 127) << 7")
            w("if b > 127:")
            with w.indent():
                w("b = data[pos]")
                w("pos += 1")
                w(f"{v} |= (b & 127) << 14")
                w("if b > 127:")
                with w.indent():
                    w("sh = 21")
                    w("while True:")
                    with w.indent():
                        w("b = data[pos]")
                        w("pos += 1")
                        w(f"{v} |= (b & 127) << sh")
                        w("if b < 128:")
                        with w.indent():
                            w("break")
                        w("sh += 7")
                        w("if sh > 63:")
                        with w.indent():
                            w("raise _Mismatch")
                    w(f"if {v} >> 64:")
                    with w.indent():
                        w("raise _Mismatch")

    def emit_read_len(self, w: _Writer, e: str, end: str) -> None:
        n = self.fresh("n")
        self.emit_read_varint(w, n, end)
        w(f"{e} = pos + {n}")
        w(f"if {e} > {end}:")
        with w.indent():
            w("raise _Mismatch")

    def emit_read_scalar(self, w: _Writer, t: ScalarType | EnumType, v: str, end: str) -> None:
        """Read one non-length-delimited value of ``t`` at ``pos`` into ``v``."""
        if isinstance(t, EnumType):
            self.emit_read_varint(w, v, end)
            w(f"if {v} >> 63:")
            with w.indent():
                w(f"{v} -= {1 << 64}")
            members = {int(m): m for m in t.cls}
            w(f"{v} = {self.const('EV', members)}[{v}]")
            return
        kind = t.kind
        enc = kind.encoding
        if kind.wire == WIRE_VARINT:
            self.emit_read_varint(w, v, end)
            if enc == "bool":
                w(f"if {v} > 1:")
                with w.indent():
                    w("raise _Mismatch")
                w(f"{v} = {v} == 1")
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
                w(f"if {v} > {kind.hi}:")
                with w.indent():
                    w("raise _Mismatch")
            return
        size = 4 if kind.wire == WIRE_I32 else 8
        unpacker = {"float": "_unpack_f", "double": "_unpack_d"}.get(enc, f"_unpack_{enc}")
        w(f"{v} = {unpacker}(data, pos)[0]")
        w(f"pos += {size}")

    def emit_decode_len_value(self, w: _Writer, t: TypeSchema, v: str, e: str) -> None:
        """Decode the record ``data[pos:e]`` as one value of ``t`` (an element)."""
        if isinstance(t, ScalarType):
            if t.kind.encoding == "string":
                w(f"{v} = data[pos:{e}].decode()")
            else:
                w(f"{v} = data[pos:{e}]")
            return
        w(f"{v} = {self.decoder_call(t, 'data', 'pos', e)}")

    def decoder_call(
        self, t: TypeSchema, data: str, start: str, end: str, more: str | None = None
    ) -> str:
        """A call decoding ``t`` from ``data[start:end]`` and, merged into it, the further
        records whose bounds are ``more[2:]`` (see emit_decode_body)."""
        tail = f", {more}" if more else ""
        if isinstance(t, (MessageType, OneofType)):
            return f"{self.func_of('dec', t.cls)}({data}, {start}, {end}, depth - 1{tail})"
        if isinstance(t, TupleType):
            name = self.anon_decoder(
                tuple(FieldSchema(f"e{i}", i + 1, et) for i, et in enumerate(t.elems))
            )
            return f"{name}({data}, {start}, {end}, depth - 1{tail})"
        if isinstance(t, DurationType):
            return f"_dec_duration({data}, {start}, {end}, depth - 1{tail})"
        if isinstance(t, ForeignMessageType):
            return f"_dec_foreign({self.const('F', t)}, {data}, {start}, {end})"
        raise AssertionError(t)

    def anon_decoder(self, fields: tuple[FieldSchema, ...]) -> str:
        """A helper that decodes a positional message (tuple, map entry) into a tuple."""
        name = self.fresh("_dec_anon")
        w = _Writer()
        self.emit_decoder(w, name, fields, construct=None, keep_unknown=False)
        self.helpers.append(w.lines)
        return name

    def emit_decoder(
        self,
        w: _Writer,
        name: str,
        fields: tuple[FieldSchema, ...],
        construct: type | None,
        keep_unknown: bool,
    ) -> None:
        """A decode function over ``fields``: builds ``construct`` or returns a tuple."""
        w(f"def {name}(data, pos, end, depth, more=None):")
        with w.indent():
            w("if depth <= 0:")
            with w.indent():
                w("raise _Mismatch")
            self.emit_decode_body(
                w, fields, construct, keep_unknown, "end", "return ", merging=True
            )

    def emit_decode_body(
        self,
        w: _Writer,
        fields: tuple[FieldSchema, ...],
        construct: type | None,
        keep_unknown: bool,
        end: str,
        result: str,
        merging: bool = False,
    ) -> None:
        """Read fields from ``pos`` to ``end``, then ``result`` (a statement prefix such as
        ``return `` or ``items.append(``... ``)``) the object built (or the tuple).

        ``merging``: repeated records of a singular message merge. Their bounds come in
        ``more`` (``[s1, e1, s2, e2, ...]``, the first pair being ``pos, end``), and each record
        is read in turn into the same locals: no record is copied or joined, so nested merges
        cost memory in proportion to the number of records, not to the depth times the input.
        """
        plans = [_FieldPlan(self, f) for f in fields]
        for p in plans:
            p.emit_init(w)
        unk = self.fresh("unk")
        if keep_unknown:
            w(f"{unk} = None")
        known = self.const("KN", frozenset(f.number for f in fields))
        if merging:
            w("mi = 2")
            w("while True:")
            w.depth += 1
        w(f"while pos < {end}:")
        with w.indent():
            if keep_unknown:
                w("st = pos")
            self.emit_read_tag(w, end)
            first = True
            for p in plans:
                for tag, body in p.branches():
                    w(f"{'if' if first else 'elif'} tag == {tag}:")
                    first = False
                    with w.indent():
                        body(w)
            w("else:" if not first else "if True:")
            with w.indent():
                w(f"pos = _skip(data, pos, {end}, tag, {known})")
                if keep_unknown:
                    w(f"if {unk} is None:")
                    with w.indent():
                        w(f"{unk} = []")
                    w(f"{unk}.append(data[st:pos])")
        w(f"if pos != {end}:")
        with w.indent():
            w("raise _Mismatch")
        if merging:
            self.emit_next_record(w)
            w.depth -= 1
        for p in plans:
            p.emit_finish(w)
        close = ")" if result.endswith("(") else ""
        if construct is None:
            w(f"{result}({''.join(p.var + ', ' for p in plans)}){close}")
            return
        o = self.fresh("o")
        w(f"{o} = _new({self.const('C', construct)})")
        for p in plans:
            w(f"{o}.{p.field.name} = {p.var}")
        w(f"{o}._pb_unknown = _join({unk}) if {unk} else None")
        w(f"{result}{o}{close}")

    def emit_read_tag(self, w: _Writer, end: str) -> None:
        """Read the tag at ``pos`` into ``tag``: one byte on the fast path."""
        w("tag = data[pos]")
        w("if tag < 128:")
        with w.indent():
            w("pos += 1")
        w("else:")
        with w.indent():
            w(f"tag, pos = _rv(data, pos, {end})")

    def emit_next_record(self, w: _Writer) -> None:
        """Inside ``while True``: go on with the next record in ``more``, or stop."""
        w("if more is None or mi >= len(more):")
        with w.indent():
            w("break")
        w("pos = more[mi]")
        w("end = more[mi + 1]")
        w("mi += 2")

    def can_inline_decode(self, cls: type) -> bool:
        """Decode a list element inline when it is a small message of numbers (whose reads
        never look at ``end`` or ``e``) and not recursive."""
        if cls is self.cls:
            return False
        schema = schema_of(cls)
        if not isinstance(schema, MessageSchema) or len(schema.fields) > 12:
            return False
        return all(
            isinstance(f.type, EnumType)
            or (isinstance(f.type, ScalarType) and f.type.wire != WIRE_LEN)
            for f in schema.fields
        )

    def wrapper_decoder(self, elem: TypeSchema) -> str:
        """A helper that reads the fixed-array wrapper message: repeated elements under field 1."""
        name = self.fresh("_dec_wrap")
        w = _Writer()
        w(f"def {name}(data, pos, end, depth, out):")
        with w.indent():
            w("if depth <= 0:")
            with w.indent():
                w("raise _Mismatch")
            w("while pos < end:")
            with w.indent():
                self.emit_read_tag(w, "end")
                w(f"if tag == {_tag(1, WIRE_LEN)}:")
                with w.indent():
                    self.emit_read_len(w, "e", "end")
                    self.emit_decode_len_value(w, elem, "x", "e")
                    w("out.append(x)")
                    w("pos = e")
                w("else:")
                with w.indent():
                    w(f"pos = _skip(data, pos, end, tag, {self.const('KN', frozenset((1,)))})")
            w("if pos != end:")
            with w.indent():
                w("raise _Mismatch")
        self.helpers.append(w.lines)
        return name

    # -- whole classes ----------------------------------------------------------------------

    def generate_message(self, schema: MessageSchema) -> None:
        w = self.w
        enc = self.func_of("enc", self.cls)
        w(f"def {enc}(obj, buf, parts=None):")
        with w.indent():
            w("ap = buf.append")
            self.emit_encode_fields(w, schema.fields, "obj")
            w("unk = obj._pb_unknown")
            w("if unk:")
            with w.indent():
                w("buf += unk")
        w("")
        self.emit_decoder(w, self.func_of("dec", self.cls), schema.fields, self.cls, True)

    def generate_oneof(self, schema: OneofSchema) -> None:
        w = self.w
        enc = self.func_of("enc", self.cls)
        w(f"def {enc}(obj, buf, parts=None):")
        with w.indent():
            w("ap = buf.append")
            w("c = obj.__class__")
            first = True
            for variant in schema.variants:
                w(f"{'if' if first else 'elif'} c is {self.const('C', variant.cls)}:")
                first = False
                with w.indent():
                    if variant.kind == "transparent":
                        f = variant.transparent_field
                        w(f"v = obj.{f.name}")
                        self.emit_encode(w, f.type, "v", variant.number, always=True)
                    else:
                        self.emit_encode(w, MessageType(variant.cls), "obj", variant.number, True)
            w("else:")
            with w.indent():
                w("raise _Mismatch")
        w("")
        self.emit_oneof_decoder(w, schema)

    def emit_oneof_decoder(self, w: _Writer, schema: OneofSchema) -> None:
        w(f"def {self.func_of('dec', self.cls)}(data, pos, end, depth, more=None):")
        with w.indent():
            w("if depth <= 0:")
            with w.indent():
                w("raise _Mismatch")
            w("cur = 0")
            w("mi = 2")
            plans: dict[int, _FieldPlan] = {}
            for variant in schema.variants:
                if variant.kind == "transparent":
                    f = variant.transparent_field
                    plans[variant.number] = _FieldPlan(
                        self, FieldSchema(f.name, variant.number, f.type)
                    )
                else:
                    plans[variant.number] = _FieldPlan(
                        self, FieldSchema("payload", variant.number, MessageType(variant.cls))
                    )
            w("while True:")
            w.depth += 1
            w("while pos < end:")
            with w.indent():
                self.emit_read_tag(w, "end")
                first = True
                for number, plan in plans.items():
                    for tag, body in plan.branches():
                        w(f"{'if' if first else 'elif'} tag == {tag}:")
                        first = False
                        with w.indent():
                            w(f"if cur != {number}:")
                            with w.indent():
                                w(f"cur = {number}")
                                plan.emit_init(w)
                            body(w)
                w("else:")
                with w.indent():
                    w("raise _Mismatch")
            w("if pos != end:")
            with w.indent():
                w("raise _Mismatch")
            self.emit_next_record(w)
            w.depth -= 1
            for variant in schema.variants:
                plan = plans[variant.number]
                w(f"if cur == {variant.number}:")
                with w.indent():
                    plan.emit_finish(w)
                    if variant.kind == "transparent":
                        w(f"o = _new({self.const('C', variant.cls)})")
                        w(f"o.{variant.transparent_field.name} = {plan.var}")
                        w("o._pb_unknown = None")
                        w("return o")
                    else:
                        w(f"return {plan.var}")
            w("raise _Mismatch")

    def source(self) -> str:
        lines = list(self.w.lines)
        for helper in self.helpers:
            lines.append("")
            lines.extend(helper)
        return "\n".join(lines) + "\n"


class _FieldPlan:
    """How one field is accumulated while decoding: locals, tag branches, final value."""

    def __init__(self, gen: _ClassGen, f: FieldSchema) -> None:
        self.gen = gen
        self.field = f
        self.var = gen.fresh("f")
        t = f.type
        self.optional = isinstance(t, OptionalType)
        self.t: TypeSchema = t.inner if isinstance(t, OptionalType) else t
        # Set when the field starts out _MISSING: absence is then checked at the end.
        self.may_be_missing = False

    @property
    def spans(self) -> bool:
        """Message-like singular values keep their record spans so duplicates can merge."""
        return isinstance(
            self.t, (MessageType, OneofType, TupleType, DurationType, ForeignMessageType)
        )

    def emit_init(self, w: _Writer) -> None:
        f, t = self.field, self.t
        if self.optional:
            w(f"{self.var} = None")
        elif isinstance(t, RepeatedType):
            w(f"{self.var} = []")
        elif isinstance(t, MapType):
            w(f"{self.var} = {{}}")
        elif isinstance(t, (ScalarType, EnumType)):
            zero = MISSING if f.always else zero_value(t)
            if zero is not MISSING:
                w(f"{self.var} = {self.literal(zero)}")
            elif f.has_default:
                w(f"{self.var} = {self.default_expr()}")
            else:
                self.may_be_missing = True
                w(f"{self.var} = _MISSING")
        else:
            w(f"{self.var} = _MISSING")
        if self.spans:
            w(f"{self.var}_d = None")

    def literal(self, value: Any) -> str:
        """Source for an immutable value: its repr when that reads back, else a constant."""
        if type(value) in (int, float, str, bytes, bool) and not (
            type(value) is float and (math.isnan(value) or math.isinf(value))
        ):
            return repr(value)
        return self.gen.const("D", value)

    def default_expr(self) -> str:
        """Source for the field's declared default: a factory is called on every decode, so
        that decoded objects never share a mutable default."""
        f = self.field
        if f.default_factory is not MISSING:
            return f"{self.gen.const('DF', f.default_factory)}()"
        return self.literal(f.default)

    def branches(self) -> Iterator[tuple[int, Any]]:
        """(tag, emitter of the branch body) for each tag this field accepts."""
        t, number = self.t, self.field.number
        if isinstance(t, (ScalarType, EnumType)):
            yield _tag(number, t.wire), self.emit_scalar_branch
        elif isinstance(t, (RepeatedType, FixedArrayType)):
            yield from self.sequence_branches(t)
        elif isinstance(t, MapType):
            yield _tag(number, WIRE_LEN), self.emit_map_branch
        else:
            yield _tag(number, WIRE_LEN), self.emit_span_branch

    def emit_scalar_branch(self, w: _Writer) -> None:
        t, gen = self.t, self.gen
        assert isinstance(t, (ScalarType, EnumType))
        if t.wire == WIRE_LEN:
            gen.emit_read_len(w, "e", "end")
            gen.emit_decode_len_value(w, t, self.var, "e")
            w("pos = e")
        else:
            gen.emit_read_scalar(w, t, self.var, "end")

    def emit_map_branch(self, w: _Writer) -> None:
        t, gen = self.t, self.gen
        assert isinstance(t, MapType)
        gen.emit_read_len(w, "e", "end")
        entry = gen.anon_decoder((FieldSchema("key", 1, t.key), FieldSchema("value", 2, t.value)))
        k, x = gen.fresh("k"), gen.fresh("x")
        w(f"{k}, {x} = {entry}(data, pos, e, depth - 1)")
        w(f"{self.var}[{k}] = {x}")
        w("pos = e")

    def emit_span_branch(self, w: _Writer) -> None:
        """A message-like value: remember where its record is; duplicates merge at the end."""
        var = self.var
        self.gen.emit_read_len(w, "e", "end")
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

    def sequence_branches(self, t: RepeatedType | FixedArrayType) -> Iterator[tuple[int, Any]]:
        gen, var, number, elem = self.gen, self.var, self.field.number, t.elem
        fixed = isinstance(t, FixedArrayType)

        def ensure_list(w: _Writer) -> None:
            if fixed:
                w(f"if {var} is _MISSING:")
                with w.indent():
                    w(f"{var} = []")

        if t.as_bytes:
            def body(w: _Writer) -> None:
                gen.emit_read_len(w, "e", "end")
                if fixed and t.python_bytes:  # type: ignore[union-attr]
                    w(f"{var} = data[pos:e]")
                else:
                    w(f"{var} = list(data[pos:e])")
                w("pos = e")
            yield _tag(number, WIRE_LEN), body
            return
        if t.packed:
            assert isinstance(elem, (ScalarType, EnumType))

            def packed(w: _Writer) -> None:
                gen.emit_read_len(w, "e", "end")
                ensure_list(w)
                size = {WIRE_I32: 4, WIRE_I64: 8}.get(elem.wire)
                if size is not None and isinstance(elem, ScalarType):
                    code = {"float": "f", "double": "d", "fixed32": "I", "sfixed32": "i",
                            "fixed64": "Q", "sfixed64": "q"}[elem.kind.encoding]
                    c, r = gen.fresh("c"), gen.fresh("r")
                    w(f"{c}, {r} = divmod(e - pos, {size})")
                    w(f"if {r}:")
                    with w.indent():
                        w("raise _Mismatch")
                    w(f"{var}.extend(_unpack_many('<%d{code}' % {c}, data, pos))")
                    w("pos = e")
                    return
                x = gen.fresh("x")
                append = gen.fresh("ap")
                w(f"{append} = {var}.append")
                w("while pos < e:")
                with w.indent():
                    gen.emit_read_scalar(w, elem, x, "e")
                    w(f"{append}({x})")
                w("if pos != e:")
                with w.indent():
                    w("raise _Mismatch")
            yield _tag(number, WIRE_LEN), packed

            def unpacked(w: _Writer) -> None:
                ensure_list(w)
                x = gen.fresh("x")
                gen.emit_read_scalar(w, elem, x, "end")
                w(f"{var}.append({x})")
            yield _tag(number, elem.wire), unpacked
            return
        if fixed:
            wrapper = gen.wrapper_decoder(elem)

            def wrapped(w: _Writer) -> None:
                gen.emit_read_len(w, "e", "end")
                ensure_list(w)
                w(f"{wrapper}(data, pos, e, depth - 1, {var})")
                w("pos = e")
            yield _tag(number, WIRE_LEN), wrapped
            return

        def element(w: _Writer) -> None:
            gen.emit_read_len(w, "e", "end")
            if isinstance(elem, MessageType) and gen.can_inline_decode(elem.cls):
                schema = schema_of(elem.cls)
                assert isinstance(schema, MessageSchema)
                w(f"# {elem.cls.__name__}, inline")
                w("if depth <= 1:")
                with w.indent():
                    w("raise _Mismatch")
                gen.emit_decode_body(w, schema.fields, elem.cls, True, "e", f"{var}.append(")
                return
            x = gen.fresh("x")
            gen.emit_decode_len_value(w, elem, x, "e")
            w(f"{var}.append({x})")
            w("pos = e")
        yield _tag(number, WIRE_LEN), element

    def emit_finish(self, w: _Writer) -> None:
        f, t, var, gen = self.field, self.t, self.var, self.gen
        if self.spans:
            w(f"if {var}_d:")
            with w.indent():
                if isinstance(t, ForeignMessageType):
                    # Parsed by its own library: hand it the records joined.
                    j = gen.fresh("j")
                    w(f"{j} = _join([data[{var}_d[i]:{var}_d[i + 1]] "
                      f"for i in range(0, len({var}_d), 2)])")
                    w(f"{var} = {gen.decoder_call(t, j, '0', f'len({j})')}")
                else:
                    call = gen.decoder_call(t, "data", f"{var}_d[0]", f"{var}_d[1]", f"{var}_d")
                    w(f"{var} = {call}")
            w(f"elif {var}_d is not None:")
            with w.indent():
                w(f"{var} = {gen.decoder_call(t, 'data', f'{var}_s', f'{var}_e')}")
            if self.optional:
                return
            if isinstance(t, (MessageType, TupleType, ForeignMessageType)):
                empty = gen.decoder_call(t, "b''", "0", "0")
                w(f"elif {var} is _MISSING:")
                with w.indent():
                    w(f"{var} = {empty}")
            elif isinstance(t, DurationType):
                w(f"elif {var} is _MISSING:")
                with w.indent():
                    w(f"{var} = {gen.const('D', zero_value(t))}")
            else:  # a Oneof: absent is an error unless the field has a default
                w(f"elif {var} is _MISSING:")
                with w.indent():
                    if f.has_default:
                        w(f"{var} = {self.default_expr()}")
                    else:
                        w("raise _Mismatch")
            return
        if isinstance(t, FixedArrayType):
            w(f"if {var} is _MISSING or len({var}) != {t.length}:")
            with w.indent():
                w("raise _Mismatch")
            return
        if isinstance(t, (ScalarType, EnumType)) and not self.optional and self.may_be_missing:
            w(f"if {var} is _MISSING:")
            with w.indent():
                w("raise _Mismatch")




_idents: dict[type, str] = {}


def class_ident(cls: type) -> str:
    ident = _idents.get(cls)
    if ident is None:
        ident = f"{cls.__name__}_{len(_idents)}"
        _idents[cls] = ident
    return ident


def _references(schema: MessageSchema | OneofSchema) -> Iterator[type]:
    """The declared classes a schema's codec calls into."""
    if isinstance(schema, OneofSchema):
        for v in schema.variants:
            if v.kind == "transparent":
                yield from _type_refs(v.transparent_field.type)
            else:
                yield v.cls
        return
    for f in schema.fields:
        yield from _type_refs(f.type)


def _type_refs(t: TypeSchema) -> Iterator[type]:
    if isinstance(t, (MessageType, OneofType)):
        yield t.cls
    elif isinstance(t, OptionalType):
        yield from _type_refs(t.inner)
    elif isinstance(t, (RepeatedType, FixedArrayType)):
        yield from _type_refs(t.elem)
    elif isinstance(t, MapType):
        yield from _type_refs(t.key)
        yield from _type_refs(t.value)
    elif isinstance(t, TupleType):
        for e in t.elems:
            yield from _type_refs(e)


def closure(cls: type, done: set[type]) -> list[type]:
    """Every class reachable from ``cls`` that is not in ``done``, ``cls`` first."""
    order: list[type] = []
    seen: set[type] = set()
    stack = [cls]
    while stack:
        c = stack.pop()
        if c in seen or c in done:
            continue
        seen.add(c)
        order.append(c)
        stack.extend(_references(schema_of(c)))
    return order


def generate(cls: type) -> CompiledClass:
    schema = schema_of(cls)
    gen = _ClassGen(cls, class_ident(cls))
    if isinstance(schema, OneofSchema):
        gen.generate_oneof(schema)
    else:
        gen.generate_message(schema)
    source = gen.source()
    filename = f"<savestate codec {cls.__module__}.{cls.__qualname__}>"
    return CompiledClass(cls, source, filename, gen.env, needs=gen.needs)


def compile_classes(classes: list[type]) -> dict[type, CompiledClass]:
    """Generate, exec and link the codecs of ``classes`` (one exec per class)."""
    compiled = {c: generate(c) for c in classes}
    for cc in compiled.values():
        code = compile(cc.source, cc.filename, "exec")
        linecache.cache[cc.filename] = (
            len(cc.source), None, cc.source.splitlines(True), cc.filename
        )
        exec(code, cc.env)
        ident = class_ident(cc.cls)
        cc.encode = cc.env[f"_enc_{ident}"]
        cc.decode = cc.env[f"_dec_{ident}"]
    return compiled


def recursion_check(cls: type) -> None:
    """A message that contains itself through required (non-optional, non-repeated) message
    fields could never be decoded: absence would recurse forever."""
    from ..errors import SchemaError

    def required_refs(c: type) -> Iterator[tuple[str, type]]:
        schema = schema_of(c)
        if isinstance(schema, OneofSchema):
            return
        for f in schema.fields:
            types = [f.type]
            while types:  # a message, or one inside (nested) tuples: all always present
                t = types.pop()
                if isinstance(t, MessageType):
                    yield f.name, t.cls
                elif isinstance(t, TupleType):
                    types.extend(t.elems)

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

