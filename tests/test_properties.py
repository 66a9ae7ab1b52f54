"""Property tests over generated schemas: round trips, the compiled codec against the
interpreting one (bytes and errors), and arbitrary bytes giving only DecodeError."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from savestate import DecodeError
from savestate.codec.front import codec_of
from savestate.codec.interp import decode as interp_decode
from savestate.codec.interp import encode as interp_encode
from savestate.errors import UnknownFieldsDropped

from .strategies import instances, messages


@st.composite
def schema_and_value(draw: st.DrawFn) -> tuple[type, Any]:
    cls = draw(messages())
    return cls, draw(instances(cls))


def _fast_encode(cls: type, value: Any) -> bytes:
    buf = bytearray()
    codec_of(cls)._encode(value, buf, 100)
    return bytes(buf)


def _fast_decode(cls: type, data: bytes) -> Any:
    return codec_of(cls)._decode(data, 0, len(data), 100, [1 << 62])


@given(schema_and_value())
def test_round_trip_and_codecs_agree(case: tuple[type, Any]) -> None:
    cls, value = case
    note(codec_of(cls).source)
    data = interp_encode(cls, value)
    assert _fast_encode(cls, value) == data
    assert bytes(value) == data
    assert _fast_decode(cls, data) == value
    assert interp_decode(cls, data, 100) == value
    assert cls.decode(data) == value
    # Re-encoding what was decoded is byte-identical (canonical input).
    assert bytes(cls.decode(data)) == data


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except DecodeError as exc:
        return "error", exc
    except Exception as exc:  # the fast path signals rejection with any exception
        return "error", exc


@given(st.data())
def test_arbitrary_bytes_decode_or_raise_decode_error(data: st.DataObject) -> None:
    cls, value = data.draw(schema_and_value())
    valid = bytes(value)
    raw = data.draw(
        st.one_of(
            st.binary(max_size=64),
            st.builds(_mutate, st.just(valid), st.lists(st.tuples(
                st.integers(0, max(len(valid) - 1, 0)), st.integers(0, 255)), max_size=4)),
            st.builds(lambda n: valid[:n], st.integers(0, len(valid))),
        )
    )
    fast = _outcome(lambda: _fast_decode(cls, raw))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        slow = _outcome(lambda: interp_decode(cls, raw, 100))
    dropped = any(issubclass(w.category, UnknownFieldsDropped) for w in warned)
    # Unknown fields where a value has nowhere to keep them (a map entry, a timedelta) are
    # the interpreter's to drop, with its warning: the compiled code refuses such input.
    if not (fast[0] == "error" and slow[0] == "ok" and dropped):
        assert fast[0] == slow[0], (fast, slow)
    if slow[0] == "ok":
        if fast[0] == "ok":
            # repr, not ==: a decoded NaN is not equal to itself.
            assert repr(fast[1]) == repr(slow[1])
            assert bytes(fast[1]) == bytes(slow[1]) == _fast_encode(cls, fast[1])
        # Whatever decodes re-encodes and decodes to an equal value.
        assert repr(cls.decode(bytes(slow[1]))) == repr(slow[1])
    else:
        assert isinstance(slow[1], DecodeError)
    with contextlib.suppress(DecodeError):
        cls.decode(raw)


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, byte in edits:
        if pos < len(out):
            out[pos] = byte
    return bytes(out)
