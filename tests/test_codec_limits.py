"""The codec's limits hold for any schema: a decode's memory budget, one depth limit both ways,
unknown fields that cannot be kept are never dropped silently, and a user value that raises is
an EncodeError.

Memory is measured with tracemalloc (allocations, not time); "linear" is shown by the ratio of
peaks over doublings of the input.
"""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from savestate import (
    DecodeError,
    EncodeError,
    JsonError,
    Protobuf,
    SavedStateBlob,
    field,
    savedstate,
    u32,
)
from savestate.codec import interp, runtime
from savestate.codec.front import SIGNALS, Codec, codec_of
from savestate.declare import ProtobufMeta
from savestate.errors import UnknownFieldsDropped
from savestate.limits import INTRINSIC_PER_INPUT_BYTE, MEMORY_FLOOR, MEMORY_PER_INPUT_BYTE
from savestate.model.plan import plan_of

from .strategies import instances, messages


def _wide(width: int) -> type:
    """A root holding a list of elements with ``width`` list fields: each empty element record
    (2 bytes) builds an object and ``width`` empty lists."""
    ns: dict[str, Any] = {"__annotations__": {}, "__module__": __name__}
    for i in range(width):
        ns["__annotations__"][f"l{i}"] = list[u32]
        ns[f"l{i}"] = field(i + 1)
    elem = ProtobufMeta(f"Wide{width}", (Protobuf,), ns)
    return ProtobufMeta(
        f"WideRoot{width}", (Protobuf,),
        {"__annotations__": {"items": list[elem]}, "items": field(1),  # type: ignore[valid-type]
         "__module__": __name__},
    )


def _peak(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        with contextlib.suppress(DecodeError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bound(size: int) -> int:
    """The documented bound of a decode of ``size`` bytes with ``max_size=size``: the budget,
    what numbers and strings may take, and the input itself (the interpreter copies it once)."""
    budget = MEMORY_PER_INPUT_BYTE * size + MEMORY_FLOOR
    return budget + (INTRINSIC_PER_INPUT_BYTE + 2) * size + MEMORY_FLOOR


@pytest.mark.parametrize("width", [1, 11, 30, 60])
def test_decode_memory_is_bounded_whatever_the_schema(width: int) -> None:
    root = _wide(width)
    root.decode(b"")
    peaks = []
    for records in (4_000, 8_000, 16_000):
        data = b"\x0a\x00" * records
        peak = _peak(lambda d=data: root.decode(d, max_size=len(d)))
        assert peak <= _bound(len(data)), f"width {width}: {peak} B for {len(data)} B"
        peaks.append(peak)
    # The interpreter, which reports the error, holds to the same bound.
    data = b"\x0a\x00" * 4_000
    budget = MEMORY_PER_INPUT_BYTE * len(data) + MEMORY_FLOOR
    peak = _peak(lambda: interp.decode(root, data, 100, budget))
    assert peak <= _bound(len(data)), f"interpreter, width {width}: {peak} B"
    # Linear: doubling the input at most doubles the peak (with room for the fixed part).
    assert peaks[2] <= 2.5 * peaks[1] and peaks[1] <= 2.5 * peaks[0], peaks


def test_the_budget_is_a_decode_error_with_a_path() -> None:
    root = _wide(30)
    data = b"\x0a\x00" * 1000
    with pytest.raises(DecodeError) as info:
        root.decode(data, max_memory=100_000)
    assert info.value.path == ["WideRoot30", "items", "[50]"]
    assert info.value.reason == "the decoded value would take more than max_memory (100000 bytes)"
    with pytest.raises(DecodeError) as slow:
        interp.decode(root, data, 100, 100_000)
    assert str(slow.value) == str(info.value)


def test_legitimate_large_states_decode_under_the_default_budget() -> None:
    root = _wide(3)
    data = (b"\x0a\x06" b"\x0a\x01\x05" b"\x12\x01\x07") * 100_000
    value = root.decode(data)
    assert len(value.items) == 100_000
    assert value.items[-1].l0 == [5] and value.items[-1].l1 == [7]


class Leaf(Protobuf, package="tests.codec_limits"):
    a: u32 = field(1)
    b: list[u32] = field(2)
    c: dict[str, u32] = field(3)
    d: list[u32] = field(4)


class Middle(Protobuf, package="tests.codec_limits"):
    leaf: Leaf = field(1)  # absent: the empty Leaf is decoded, and charged
    pair: tuple[Leaf, u32] = field(2)  # and the empty tuple with the Leaf inside it


class Outer(Protobuf, package="tests.codec_limits"):
    items: list[Middle] = field(1)


def _uncounted_capable(cls: type, budgets: list[Any]) -> Codec:
    """``cls``'s codec without the C decoder: the generated decoder, and the front end's choice
    of whether to count the budget, whatever the accelerator. ``budgets`` gets each budget the
    front end hands the generated decoder."""
    c = codec_of(cls)

    def decode(data: bytes, pos: int, end: int, depth: int, budget: Any) -> Any:
        budgets.append(budget)
        return c._decode(data, pos, end, depth, budget)

    return Codec(cls, c._encode, decode, c.source, c.filename, None, None, c.record_charge)


def _spent(cls: type, data: bytes) -> int:
    """What the generated decoder charges the budget for ``data``."""
    budget = [1 << 62]
    codec_of(cls)._decode(data, 0, len(data), 100, budget)
    return (1 << 62) - budget[0]


def test_the_budget_is_counted_whenever_the_input_could_exhaust_it() -> None:
    """The compiled decoder skips counting only when no input of that size could spend
    max_memory; the empty messages built for absent fields count in that bound."""
    per_record = (
        runtime.built_cost(plan_of(Middle)) + runtime.built_cost(plan_of(Leaf)) * 2
        + runtime.built_cost(plan_of(Middle).fields[1].value.message)  # type: ignore[union-attr]
    )
    assert codec_of(Outer).record_charge >= per_record
    budgets: list[Any] = []
    codec = _uncounted_capable(Outer, budgets)
    for records in (1, 2, 10, 1000):
        data = b"\x0a\x00" * records
        spent = _spent(Outer, data)
        assert spent == runtime.built_cost(plan_of(Outer)) + records * per_record
        assert spent <= (len(data) // 2 + 1) * codec.record_charge
        assert len(codec.decode(data, max_memory=spent).items) == records
        with pytest.raises(DecodeError, match="more than max_memory"):
            codec.decode(data, max_memory=spent - 1)
        assert budgets[-1] == [-1]  # counted, and refused when it ran out
        assert len(codec.decode(data).items) == records
        assert budgets[-1] is None  # the default budget: far past what these bytes can spend


@st.composite
def _schema_and_value(draw: st.DrawFn) -> tuple[type, Any]:
    cls = draw(messages())
    return cls, draw(instances(cls))


@given(_schema_and_value(), st.integers(1, 50))
def test_no_decode_is_charged_past_its_bound(case: tuple[type, Any], copies: int) -> None:
    """Any schema, any value, its records repeated: the budget a decode is charged stays within
    what the front end assumes when it does not count it."""
    cls, value = case
    data = codec_of(cls).encode(value)
    for payload in (data, data * copies):
        try:
            spent = _spent(cls, payload)
        except SIGNALS:  # repeated records this decoder refuses (say, a Oneof's): not charged
            continue
        assert spent <= (len(payload) // 2 + 1) * codec_of(cls).record_charge


class Link(Protobuf):
    next: Link | None = field(1)
    n: u32 = field(2)


class Holds(Protobuf):
    pairs: list[tuple[u32, u32]] = field(1)
    link: Link | None = field(2)


def _chain(levels: int) -> Link:
    value = Link(next=None, n=1)
    for _ in range(levels - 1):
        value = Link(next=value, n=1)
    return value


def test_encode_refuses_what_decode_would() -> None:
    """One depth limit both ways: a value encodes exactly when its bytes decode."""
    for limit in (1, 5, 100):
        fits = _chain(limit)
        data = fits.encode(max_depth=limit)
        assert Link.decode(data, max_depth=limit) == fits
        assert interp.encode(Link, fits, limit) == data
        too_deep = Link(next=fits, n=1)
        with pytest.raises(EncodeError) as info:
            too_deep.encode(max_depth=limit)
        assert info.value.reason == "nesting deeper than the limit (max_depth)"
        assert info.value.path == ["Link", *["next"] * limit]
        with pytest.raises(DecodeError):
            Link.decode(too_deep.encode(max_depth=limit + 1), max_depth=limit)
    with pytest.raises(EncodeError):
        bytes(_chain(101))  # the default limit, 100, as for decode
    # A message inside a wrapper or a tuple counts as a level too, as it does on decode.
    holds = Holds(pairs=[(1, 2)], link=None)
    assert Holds.decode(holds.encode(max_depth=2), max_depth=2) == holds
    with pytest.raises(EncodeError):
        holds.encode(max_depth=1)
    with pytest.raises(DecodeError):
        Holds.decode(bytes(holds), max_depth=1)


def test_unknown_fields_that_cannot_be_kept_are_reported() -> None:
    # pairs[0] is (1, 2) with an unknown field 3 inside the tuple's message.
    data = bytes.fromhex("0a06" "0801" "1002" "1801")
    with pytest.warns(UnknownFieldsDropped,
                      match=r"Holds\.pairs\[0\]: 2 bytes of unknown fields") as warned:
        value = Holds.decode(data)
    assert value.pairs == [(1, 2)]
    # Reported at the line that called decode, not deep in the library's decoder.
    assert [(w.filename, w.lineno) for w in warned] == [(__file__, _line_of("Holds.decode(data)"))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Holds.decode(bytes(value)) == value  # nothing to report on clean bytes
        Link.decode(bytes.fromhex("1001" "7801"))  # a message keeps its unknown fields


def _line_of(text: str) -> int:
    """The line of this file that holds ``text`` (the first)."""
    with open(__file__, encoding="utf-8") as f:
        return next(n for n, line in enumerate(f, 1) if text in line)


class Weird(int):
    def __int__(self) -> int:
        raise RuntimeError("no int for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Num(Protobuf):
    n: u32 = field(1)


def test_a_value_that_raises_is_an_encode_error() -> None:
    with pytest.raises(EncodeError) as info:
        bytes(Num(n=Weird(5)))
    assert info.value.path == ["Num", "n"]
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(EncodeError):
        Num(n=Weird(5)).to_json()


def test_json_has_the_same_depth_limit_both_ways() -> None:
    fits = _chain(100)
    assert Link.from_json(fits.to_json()) == fits
    deeper = Link(next=fits, n=1)
    with pytest.raises(EncodeError, match="nesting deeper than the limit"):
        deeper.to_json()
    text = deeper.to_json(max_depth=101)
    with pytest.raises(JsonError, match="nesting deeper than the limit"):
        Link.from_json(text)  # 101 levels: decode would refuse the bytes too
    assert Link.from_json(text, max_depth=101) == deeper


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"next":' * 50_000 + "{}" + "}" * 50_000,
     '{"n": "' + "9" * 5000 + '"}', '{"n": ' + "9" * 5000 + "}", "\ud800", b"\xff\xfe"],
    ids=["deep arrays", "deep objects", "long digit string", "long number", "surrogate",
         "bad bytes"],
)
def test_from_json_raises_only_json_errors(text: str | bytes) -> None:
    with pytest.raises(JsonError):
        Link.from_json(text)


@savedstate
class Nest(Protobuf, package="tests.codec_limits"):
    inner: SavedStateBlob = field(1)


def test_blobs_in_blobs_count_in_the_json_limit() -> None:
    blob = SavedStateBlob.new(Nest(inner=SavedStateBlob()))
    for levels in range(1, 120):
        blob = SavedStateBlob.new(Nest(inner=blob))
        if levels == 10:
            assert Nest.from_json(Nest(inner=blob).to_json()) == Nest(inner=blob)
    with pytest.raises(EncodeError, match="nesting deeper than the limit"):
        Nest(inner=blob).to_json()


class Keys(Protobuf):
    names: dict[str, u32] = field(1)


class Text(Protobuf):
    s: str = field(1)


def test_to_json_checks_what_encode_checks() -> None:
    for bad in (Keys(names={"a": 1, 2: 3}), Text(s="\ud800")):  # type: ignore[dict-item]
        with pytest.raises(EncodeError):
            bytes(bad)
        with pytest.raises(EncodeError):
            bad.to_json()


def test_unknown_fields_in_json_must_be_whole_records() -> None:
    with pytest.raises(JsonError) as info:
        Link.from_json('{"n": 1, "@unknown": "QA=="}')  # 0x40: field 8, wire type 0, no value
    assert info.value.path == ["Link", "@unknown"]
    assert Link.from_json('{"n": 1, "@unknown": "eAE="}')._pb_unknown == b"\x78\x01"


def _record(number: int, payload: bytes) -> bytes:
    size, head = len(payload), bytearray([number << 3 | 2])
    while size > 127:
        head.append(size & 127 | 128)
        size >>= 7
    head.append(size)
    return bytes(head) + payload


def test_raw_decoder_memory_is_linear_in_the_input() -> None:
    """Records keep offsets into one buffer: nesting 99 deep does not copy the input per level."""
    from savestate.codec.raw import decode_raw

    peaks = []
    for size in (250_000, 500_000, 1_000_000):
        data = b"\x01" * size  # not records: the innermost payload stays bytes
        for _ in range(99):
            data = _record(1, data)
        peak = _peak(lambda d=data: decode_raw(d))
        assert peak <= len(data) // 4 + MEMORY_FLOOR, f"{peak} B for {len(data)} B"
        peaks.append(peak)
    assert peaks[2] <= 2.5 * peaks[1] + MEMORY_FLOOR, peaks


def test_raw_json_of_deep_input_is_linear_in_the_input() -> None:
    """``decode --raw --json`` gives each nested message as its records only: with the bytes
    beside them, every level repeated the levels inside, 99 deep making 99 base64 copies."""
    import json

    from savestate.codec.raw import decode_raw, raw_to_json

    leaf = _record(2, b"\x01" * 40_000)  # not records: printed once, in base64
    data = leaf
    for _ in range(98):
        data = _record(1, data)
    text = json.dumps(raw_to_json(decode_raw(data)), separators=(",", ":"))
    assert len(text) <= 4 * len(data) // 3 + 100 * 98, len(text)
    assert text.count(base64_of(b"\x01" * 40_000)) == 1


def base64_of(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def test_json_of_a_blob_chain_stops_at_the_limit_in_linear_memory() -> None:
    peaks = []
    for links in (1_000, 2_000, 4_000):
        blob = SavedStateBlob.new(Nest(inner=SavedStateBlob()))
        for _ in range(links):
            blob = SavedStateBlob.new(Nest(inner=blob))
        top = Nest(inner=blob)
        size = len(bytes(top))

        def to_json(value: Nest = top) -> None:
            with pytest.raises(EncodeError, match="nesting deeper than the limit"):
                value.to_json()

        peak = _peak(to_json)
        # At most one copy of what is left of the input per level expanded (max_depth, 100),
        # never a copy per blob of the chain.
        assert peak <= 100 * size + MEMORY_FLOOR, f"{peak} B for {links} links"
        peaks.append(peak)
    assert peaks[2] <= 2.5 * peaks[1] + MEMORY_FLOOR, peaks


@savedstate
class Pairs(Protobuf, package="tests.codec_limits"):
    pairs: list[tuple[u32, u32]] = field(1)


def test_cli_decode_says_when_unknown_fields_are_dropped(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "pairs.bin"
    path.write_bytes(bytes.fromhex("0a06" "0801" "1002" "1801"))
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "savestate", "decode", "-m", "tests.test_codec_limits",
         "--type", "tests.codec_limits.Pairs", str(path)],
        cwd=repo, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"pairs"' in proc.stdout
    assert "Pairs.pairs[0]: 2 bytes of unknown fields dropped" in proc.stderr


class Chain(Protobuf):
    value: u32 = field(1)
    next: Chain | None = field(2, default=None)


def test_deep_nesting_encodes_every_length_inline() -> None:
    """Each level of a deep value puts its length in front of its body; from 128 bytes on that
    length is two bytes, made inline: a call per level made deep encoding superlinear."""
    from savestate.codec.front import codec_of

    chain: Chain | None = None
    for i in range(180):
        chain = Chain(value=i, next=chain)
    assert chain is not None
    codec = codec_of(Chain)
    env = codec._encode.__globals__
    calls: list[int] = []
    real = env["varint_bytes"]

    def counting(value: int) -> bytes:
        calls.append(value)
        return real(value)

    env["varint_bytes"] = counting
    try:
        data = chain.encode(max_depth=200)
    finally:
        env["varint_bytes"] = real
    assert data == interp.encode(Chain, chain, 200)
    assert len(data) > 5 * 128  # most levels long enough to need a two-byte length
    assert calls == []
    assert Chain.decode(data, max_depth=200) == chain


class Register(Protobuf):
    index: u32 = field(1)
    value: u32 = field(2)


class RegisterFile(Protobuf):
    registers: list[Register] = field(1)


def _collections_during(run: Callable[[], object]) -> int:
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(count)
    try:
        run()
    finally:
        gc.callbacks.remove(count)
    return len(started)


def test_a_large_decode_runs_with_the_collector_paused() -> None:
    """The decoded objects are all new and kept: collecting among them finds nothing, and it
    cost a third of the time of a list of a million messages."""
    from savestate.codec import front

    data = bytes(RegisterFile(registers=[Register(index=i, value=i) for i in range(20_000)]))
    assert len(data) >= front.GC_PAUSE_SIZE
    assert gc.isenabled()
    assert _collections_during(lambda: RegisterFile.decode(data)) == 0
    assert gc.isenabled()
    # A decode that fails (and so runs the interpreter after) enables it again too.
    with pytest.raises(DecodeError):
        RegisterFile.decode(data + b"\x0a")
    assert gc.isenabled()
    # Left off when the program had turned it off.
    gc.disable()
    try:
        RegisterFile.decode(data)
        assert not gc.isenabled()
    finally:
        gc.enable()
    # The same list built by hand starts collections: the count above can tell.
    assert _collections_during(
        lambda: [Register(index=i, value=i) for i in range(20_000)]
    ) > 0
