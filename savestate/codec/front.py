"""The codec front end: compiles a class's codec on first use and reports errors precisely.

The compiled functions are the fast path. When one of them rejects a value or bytes, the same
input goes through the interpreting codec, which raises the ``EncodeError`` / ``DecodeError``
with the field path (or, for a value the fast path merely does not handle, returns the bytes).
"""

from __future__ import annotations

import gc
import os
import struct
import threading
from typing import Any

from ..errors import DecodeError, EncodeError
from ..limits import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_SIZE,
    MAX_ALLOWED_DEPTH,
    MEMORY_FLOOR,
    MEMORY_PER_INPUT_BYTE,
)
from ..model.plan import check_recursion
from ..model.registry import ClassInfo, declared, declared_info, info_of
from . import interp, native
from .compiler import closure, compile_classes
from .runtime import Mismatch, record_charges

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE", "MEMORY_PER_INPUT_BYTE", "Codec", "codec_of",
    "warm_up",
]


_compile_lock = threading.RLock()

# What the compiled functions raise for input they do not accept: their own signal, and what
# indexing past the end of the bytes, an enum look-up, a string's UTF-8, an out-of-range pack
# or a too deep value raise on the way. The interpreter then says precisely what is wrong.
SIGNALS = (Mismatch, IndexError, KeyError, UnicodeError, struct.error, OverflowError,
           RecursionError, ValueError)
# With SAVESTATE_STRICT=1 (the test suite sets it) anything else the compiled code raises is a
# bug in the compiler and fails loudly, instead of falling back to the interpreter silently.
STRICT = os.environ.get("SAVESTATE_STRICT") == "1"
# From this many bytes of input on, the compiled decoder runs with the cyclic garbage collector
# paused (see Codec.decode); below it, a decode builds too few objects to start a collection.
GC_PAUSE_SIZE = 16 << 10


class Codec:
    """The compiled encode/decode functions of one declared class."""

    __slots__ = (
        "_decode", "_encode", "_small", "cls", "filename", "native", "oneof", "record_charge",
        "source",
    )

    def __init__(
        self,
        cls: type,
        encode: Any,
        decode: Any,
        source: str,
        filename: str,
        oneof: type | None,
        native: Any,
        record_charge: int,
    ) -> None:
        self.cls = cls
        self._encode = encode
        self._decode = decode
        self.source = source
        self.filename = filename
        # For a Oneof variant: the Oneof whose message is encoded and decoded.
        self.oneof = oneof
        # The C accelerator's table of the whole message (savestate.codec.native), or None.
        self.native = native
        # The most a decode charges its memory budget per message record
        # (runtime.record_charges): a budget that no input of the size can exhaust is not kept.
        self.record_charge = record_charge
        # The largest input that ``decode`` hands straight to the decoder when the limits are
        # the defaults: one with no variant to check, too small to pause the collector and,
        # for the generated decoder (which counts the budget in Python), to exhaust the
        # default budget. -1: none.
        uncounted = 2 * (DEFAULT_MAX_MEMORY // max(record_charge, 1)) - 2
        if oneof is not None:
            self._small = -1
        elif native is not None:
            self._small = GC_PAUSE_SIZE - 1
        else:
            self._small = min(GC_PAUSE_SIZE - 1, uncounted)

    def encode(self, obj: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
        """The protobuf encoding of ``obj``, an instance of the class (or, for a Oneof
        variant's codec, of that variant).

        ``max_depth`` (1 to ``MAX_ALLOWED_DEPTH``) is how many levels of nested messages the value
        may have. The compiled encoder runs first; when it rejects the value, the interpreting
        codec encodes it again and raises the precise error.

        Raises ``ValueError`` for a ``max_depth`` that is not an int in range, and
        ``EncodeError`` (with the field path) for a value that does not fit the schema or is
        nested deeper than ``max_depth``.
        """
        if max_depth is not DEFAULT_MAX_DEPTH and (
                max_depth.__class__ is not int or not 1 <= max_depth <= MAX_ALLOWED_DEPTH):
            raise ValueError(f"max_depth must be an int in 1..{MAX_ALLOWED_DEPTH}")
        if self.native is not None:
            try:
                return self.native.encode(obj, max_depth)  # type: ignore[no-any-return]
            except Exception as exc:
                if STRICT and not isinstance(exc, SIGNALS):
                    raise AssertionError("the native encoder failed unexpectedly") from exc
        buf = bytearray()
        parts: list[bytes | bytearray] = []
        try:
            self._encode(obj, buf, max_depth, parts)
        except Exception as exc:
            if STRICT and not isinstance(exc, SIGNALS):
                raise AssertionError("the compiled encoder failed unexpectedly") from exc
            return _slow_encode(self.oneof or self.cls, obj, max_depth)
        if parts:  # large payloads, handed over uncopied
            parts.append(buf)
            return b"".join(parts)
        return bytes(buf)

    def encode_parts(
        self, obj: Any, max_depth: int = DEFAULT_MAX_DEPTH
    ) -> list[bytes | bytearray]:
        """The encoding of ``obj`` as ``encode`` gives it, in parts whose concatenation is
        those bytes, so that a caller streaming them (a snapshot file) copies nothing large.

        The parts alternate: encoded bytes at even positions; at odd positions the content of
        a large (over 64 KiB) bytes or string field of ``obj`` itself, handed over uncopied
        (a bytes value is the user's own object), each right after the part that ends with
        its length. Raises what ``encode`` raises.
        """
        if max_depth.__class__ is not int or not 1 <= max_depth <= MAX_ALLOWED_DEPTH:
            raise ValueError(f"max_depth must be an int in 1..{MAX_ALLOWED_DEPTH}")
        buf = bytearray()
        parts: list[bytes | bytearray] = []
        try:
            self._encode(obj, buf, max_depth, parts)
        except Exception as exc:
            if STRICT and not isinstance(exc, SIGNALS):
                raise AssertionError("the compiled encoder failed unexpectedly") from exc
            return [_slow_encode(self.oneof or self.cls, obj, max_depth)]
        parts.append(buf)
        return parts

    def decode(
        self,
        data: Any,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_size: int = DEFAULT_MAX_SIZE,
        max_memory: int | None = None,
    ) -> Any:
        """Decode ``data`` (bytes, bytearray or memoryview) into a new instance of the class.

        ``max_size`` bounds the input's length, checked before it is copied; ``max_memory``
        bounds what the decoded objects may cost (by default ``MEMORY_PER_INPUT_BYTE`` bytes per
        byte of ``max_size``, plus ``MEMORY_FLOOR``); ``max_depth`` (1 to ``MAX_ALLOWED_DEPTH``)
        bounds the nesting of messages. The compiled decoder runs first (with the cyclic garbage
        collector paused for inputs of ``GC_PAUSE_SIZE`` bytes or more, and enabled again
        after, unless it was off already); when it rejects the bytes, the interpreting codec
        decodes them again and raises the precise error.

        Raises ``ValueError`` for limits of the wrong type or out of range, and ``DecodeError``
        (with the field path) for input that is not bytes, is too large, is malformed, does not
        fit the schema, exceeds a limit, or, for a Oneof variant's codec, holds another variant.
        """
        if max_memory is None and max_size is DEFAULT_MAX_SIZE and max_depth is DEFAULT_MAX_DEPTH:
            max_memory = DEFAULT_MAX_MEMORY  # the usual call: limits known good
            if data.__class__ is bytes and len(data) <= self._small:
                # ...on a small input: none of the steps below has anything to do but call
                # the decoder.
                table = self.native
                try:
                    if table is not None:
                        return table.decode(data, max_depth, max_memory)
                    decode = self._decode
                    return decode(data, 0, len(data), max_depth, None)
                except Exception as exc:
                    if STRICT and not isinstance(exc, SIGNALS):
                        which = "compiled" if table is None else "native"
                        raise AssertionError(f"the {which} decoder failed unexpectedly") from exc
                if table is None:
                    return _slow_decode(self.cls, data, max_depth, max_memory)
                # The native decoder refused the bytes: the steps below try it again, then the
                # generated decoder, then the interpreter.
        else:
            max_memory = _checked_limits(max_depth, max_size, max_memory)
        if data.__class__ is not bytes or len(data) > max_size:
            data = self._checked_bytes(data, max_size)
        size = len(data)
        # The objects a decode builds are all new and all kept: the cyclic collector, which
        # runs every few hundred of them and looks at every one, finds no garbage among them
        # (a third of the time of a list of a million messages). Paused for large inputs.
        paused = size >= GC_PAUSE_SIZE and gc.isenabled()
        if paused:
            gc.disable()
        try:
            table = self.native
            if table is not None:
                try:
                    value = table.decode(data, max_depth, max_memory)
                except Exception as exc:
                    if STRICT and not isinstance(exc, SIGNALS):
                        raise AssertionError("the native decoder failed unexpectedly") from exc
                    value = _FAILED
            if table is None or value is _FAILED:
                # Each message but the outermost takes two bytes of input at least: when even
                # that many messages, each charged the most, fit in max_memory, the budget
                # cannot run out, and the compiled decoder is spared counting it (None).
                budget = (
                    None if (size // 2 + 1) * self.record_charge <= max_memory else [max_memory]
                )
                decode = self._decode  # a slot: loaded as an attribute, which is specialised
                value = decode(data, 0, size, max_depth, budget)
        except Exception as exc:
            if STRICT and not isinstance(exc, SIGNALS):
                raise AssertionError("the compiled decoder failed unexpectedly") from exc
            # Outside this block: the traceback holds the fast path's frames and so whatever
            # it had built, which would double the peak memory of the slow decode.
            value = _FAILED
        finally:
            if paused:
                gc.enable()
        if value is _FAILED:
            value = _slow_decode(self.oneof or self.cls, data, max_depth, max_memory)
        if self.oneof is not None and type(value) is not self.cls:
            raise DecodeError(
                f"expected variant {self.cls.__name__}, got {type(value).__name__}",
                [self.oneof.__name__],
            )
        return value


    def _checked_bytes(self, data: Any, max_size: int) -> bytes:
        """``data`` as bytes, once its type and size are checked (before any copy)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", [self.cls.__name__])
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > max_size:
            raise DecodeError(
                f"input of {size} bytes is larger than max_size ({max_size})",
                [(self.oneof or self.cls).__name__],
            )
        return bytes(data)


_FAILED: Any = object()


def _checked_limits(max_depth: int, max_size: int, max_memory: int | None) -> int:
    """The memory budget of a decode with these limits (``max_memory``, or the default for
    ``max_size``), once each limit is checked: ValueError for one of the wrong type or out of
    range."""
    if max_size.__class__ is not int or max_size < 0:
        raise ValueError("max_size must be a non-negative int")
    if max_memory is None:
        max_memory = MEMORY_PER_INPUT_BYTE * max_size + MEMORY_FLOOR
    elif max_memory.__class__ is not int or max_memory < 0:
        raise ValueError("max_memory must be a non-negative int")
    if max_depth.__class__ is not int or not 1 <= max_depth <= MAX_ALLOWED_DEPTH:
        raise ValueError(f"max_depth must be an int in 1..{MAX_ALLOWED_DEPTH}")
    return max_memory


def _slow_encode(cls: type, obj: Any, max_depth: int) -> bytes:
    try:
        return interp.encode(cls, obj, max_depth)
    except RecursionError:
        raise EncodeError("value nested too deeply to encode", [cls.__name__]) from None


def _slow_decode(cls: type, data: bytes, max_depth: int, max_memory: int) -> Any:
    return interp.decode(cls, data, max_depth, max_memory)


def codec_of(cls: type) -> Codec:
    """The codec of a declared class, compiled (with everything it reaches) on first use."""
    info = declared_info(cls)
    codec = info.codec
    if codec is not None:
        return codec
    with _compile_lock:
        if info.codec is None:
            _compile(cls, info)
        assert info.codec is not None
        return info.codec


def warm_up() -> int:
    """Compile the codec of every declared class now, instead of on each class's first use.

    Call it once the modules that declare the state are imported, before the time-critical part
    of the program (a virtual machine's first save is its servicing blackout): every message,
    Oneof and variant alive in the process is compiled, or loaded from the code cache when an
    earlier run compiled the same plans (:mod:`savestate.codec.cache`). Classes declared later
    compile on first use, as always. Returns how many classes are ready; raises the
    ``SchemaError`` of a class that cannot be compiled (say, an annotation that names a class
    never declared), as its first use would.
    """
    classes = declared()
    for cls in classes:
        codec_of(cls)
    return len(classes)


def _compile(cls: type, info: ClassInfo) -> None:
    if info.kind == "variant":
        parent = next(b for b in cls.__mro__[1:] if _is_oneof(b))
        pc = codec_of(parent)
        info.codec = Codec(cls, pc._encode, pc._decode, pc.source, pc.filename, oneof=parent,
                           native=pc.native, record_charge=pc.record_charge)
        return
    classes = closure(cls, lambda c: declared_info(c).codec is not None)
    for c in classes:
        check_recursion(c)
    compiled = compile_classes(classes)
    for cc in compiled.values():
        for name, (other, direction) in cc.needs.items():
            if direction == "table":
                continue  # linked below, once the tables are made
            done = compiled.get(other)
            if done is not None:
                cc.env[name] = done.encode if direction == "encode" else done.decode
            else:
                codec = declared_info(other).codec
                assert codec is not None
                cc.env[name] = codec._encode if direction == "encode" else codec._decode
    layouts = native.layouts(
        {c: (cc.encode, cc.decode) for c, cc in compiled.items()}, _earlier, STRICT
    )
    for cc in compiled.values():
        for name, (other, direction) in cc.needs.items():
            if direction == "table":
                cc.env[name] = native.table_of(other, layouts, _earlier)
    charges = record_charges(list(compiled), _record_charge)
    # Publish only once every function is linked.
    for c, cc in compiled.items():
        declared_info(c).codec = Codec(
            c, cc.encode, cc.decode, cc.source, cc.filename, None, layouts.get(c), charges[c]
        )


def _earlier(cls: type) -> tuple[Any, native.Functions] | None:
    """The native layout and generated functions of a class compiled before."""
    codec = declared_info(cls).codec
    return None if codec is None else (codec.native, (codec._encode, codec._decode))


def _record_charge(cls: type) -> int:
    """The record charge of a class compiled before."""
    codec = declared_info(cls).codec
    assert codec is not None
    return codec.record_charge


def _is_oneof(cls: type) -> bool:
    info = info_of(cls)
    return info is not None and info.kind == "oneof"
