"""Hostile input: the classic malformed table, the depth limit through every kind of nesting,
the size limit, and the memory and time bounds of decoding.

The bounds (also in the README):

- depth: ``max_depth`` (default 100) counts every nested message, map entry, tuple, Oneof and
  Duration; going past it is ``DecodeError("nesting deeper than the limit")``, never a
  ``RecursionError``, however deep the input and however deep the caller's stack;
- size: ``max_size`` (default 64 MiB) bounds the input of ``decode`` and the payload of
  ``snapshot.read``, checked before the input is copied or read;
- memory: decoding ``n`` bytes allocates at most ``MEMORY_PER_BYTE * n + MEMORY_CONSTANT`` at
  its peak (tracemalloc), whatever the bytes are;
- time: decoding is linear: time per byte at 10x the size is within a generous factor of time
  per byte at 1x, for every pattern below.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from savestate import (
    DecodeError,
    Oneof,
    Protobuf,
    SavedStateBlob,
    field,
    savedstate,
    snapshot,
    u8,
    u32,
    u64,
)
from savestate.codec import interp
from savestate.codec.front import codec_of

# -- helpers -----------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def rec(number: int, payload: bytes) -> bytes:
    """A length-delimited record."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def both(cls: type, data: bytes, max_depth: int = 100) -> Any:
    """Decode with the front end and with the interpreter alone: same value or same error."""
    try:
        fast: Any = cls.decode(data, max_depth=max_depth)  # type: ignore[attr-defined]
    except DecodeError as exc:
        fast = exc
    try:
        slow: Any = interp.decode(cls, data, max_depth)
    except DecodeError as exc:
        slow = exc
    if isinstance(fast, DecodeError) or isinstance(slow, DecodeError):
        assert str(fast) == str(slow)
    else:
        assert fast == slow
    return fast


# -- schemas -----------------------------------------------------------------------------------


class Inner(Protobuf):
    imr: u8 = field(3)
    name: str = field(4)


class Root(Protobuf):
    a: u32 = field(1)
    inner: Inner = field(2)
    items: list[u32] = field(3)
    kids: list[Inner] = field(4)
    table: dict[str, Inner] = field(7)
    data: bytes = field(8)


VALID = bytes(Root(
    a=300, inner=Inner(imr=7, name="pic"), items=[1, 2, 300],
    kids=[Inner(imr=1, name="a"), Inner(imr=2, name="")],
    table={"x": Inner(imr=3, name="y")}, data=b"\x00\x01",
))


# -- the classic malformed table ---------------------------------------------------------------


def test_valid_message_round_trips() -> None:
    assert bytes(both(Root, VALID)) == VALID


def _truncation_cases() -> list[tuple[int, str]]:
    return [(i, str(both_error(Root, VALID[:i]))) for i in range(1, len(VALID))
            if isinstance(both(Root, VALID[:i]), DecodeError)]


def both_error(cls: type, data: bytes) -> DecodeError:
    result = both(cls, data)
    assert isinstance(result, DecodeError)
    return result


@pytest.mark.parametrize("cut", range(1, len(VALID)))
def test_truncation_at_every_byte(cut: int) -> None:
    """Cutting the message anywhere is either a truncation error naming where, or (when the
    cut falls between two fields) a valid shorter message: never anything else."""
    result = both(Root, VALID[:cut])
    boundaries = _field_boundaries(VALID)
    if cut in boundaries:
        assert isinstance(result, Root)
    else:
        assert isinstance(result, DecodeError)
        assert any(word in result.reason for word in ("truncated", "runs past the end")), \
            result


def _field_boundaries(data: bytes) -> set[int]:
    """Offsets at which a top-level field of ``data`` ends."""
    out, pos = set(), 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag & 7 == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        else:
            length = 0
            shift = 0
            while True:
                b = data[pos]
                pos += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            pos += length
        out.add(pos)
    return out


CLASSIC: list[tuple[str, bytes, str]] = [
    # (what, input, the error's full text)
    ("field number 0", b"\x00", "Root: field number 0 is invalid"),
    ("field number 0, wire type 2", b"\x02\x00", "Root: field number 0 is invalid"),
    ("wire type 3 (start group)", b"\x0b", "Root: invalid wire type 3 (field 1)"),
    ("wire type 4 (end group)", b"\x0c", "Root: invalid wire type 4 (field 1)"),
    ("wire type 6", b"\x0e", "Root: invalid wire type 6 (field 1)"),
    ("wire type 7", b"\x0f", "Root: invalid wire type 7 (field 1)"),
    ("field number 2^29", b"\x80\x80\x80\x80\x10\x00",
     "Root: field number 536870912 is out of range"),
    ("tag varint over 10 bytes", b"\x80" * 10 + b"\x01",
     "Root: bad tag: varint longer than 10 bytes"),
    ("truncated tag", b"\x80", "Root: bad tag: truncated varint"),
    ("wrong wire type for a known field", b"\x0d\x00\x00\x00\x00",
     "Root.a: wrong wire type: expected varint, got fixed32"),
    ("value varint over 10 bytes", b"\x08" + b"\xff" * 10 + b"\x01",
     "Root.a: varint longer than 10 bytes"),
    ("value varint over 64 bits", b"\x08" + b"\xff" * 9 + b"\x7f",
     "Root.a: varint longer than 64 bits"),
    ("value out of range for u32", b"\x08\xff\xff\xff\xff\x1f",
     "Root.a: value 8589934591 out of range for u32"),
    ("length 2^63", b"\x42" + varint(1 << 63) + b"xyz",
     "Root.data: length 9223372036854775808 runs past the end of the input"),
    ("length 2^64-1", b"\x42" + varint((1 << 64) - 1),
     "Root.data: length 18446744073709551615 runs past the end of the input"),
    ("length 2^63 of a message", b"\x12" + varint(1 << 63),
     "Root.inner: length 9223372036854775808 runs past the end of the input"),
    ("length 2^63 of an unknown field", b"\x7a" + varint(1 << 63),
     "Root: unknown field 15: length 9223372036854775808 runs past the end of the input"),
    ("invalid UTF-8: a lone continuation byte", rec(2, rec(4, b"\x80")),
     "Root.inner.name: invalid UTF-8 in string: invalid start byte"),
    ("invalid UTF-8: a surrogate", rec(2, rec(4, b"\xed\xa0\x80")),
     "Root.inner.name: invalid UTF-8 in string: invalid continuation byte"),
    ("invalid UTF-8: an overlong encoding", rec(2, rec(4, b"\xc0\xaf")),
     "Root.inner.name: invalid UTF-8 in string: invalid start byte"),
    ("invalid UTF-8: cut in the middle", rec(2, rec(4, b"\xe2\x82")),
     "Root.inner.name: invalid UTF-8 in string: unexpected end of data"),
    ("invalid UTF-8 in a map key", rec(7, rec(1, b"\xff")),
     "Root.table[0].key: invalid UTF-8 in string: invalid start byte"),
    ("truncated fixed64 unknown field", b"\x79\x00\x00", "Root: unknown field 15: truncated "
     "value"),
]


@pytest.mark.parametrize("case", CLASSIC, ids=[c[0] for c in CLASSIC])
def test_classic_malformed(case: tuple[str, bytes, str]) -> None:
    _, data, text = case
    error = both_error(Root, data)
    assert str(error) == text


# -- depth: 100 levels decode, 101 do not, 100000 do not either, through every route --------------


class Node(Protobuf):
    child: Node | None = field(1, default=None)


class ListNode(Protobuf):
    kids: list[ListNode] = field(1)


class MapNode(Protobuf):
    kids: dict[u32, MapNode] = field(1)


class TupleNode(Protobuf):
    pairs: list[tuple[u32, TupleNode]] = field(1)


class Tree(Oneof):
    pass


class Branch(Tree, variant=1):
    child: Tree = field(1)


class Leaf(Tree, variant=2):
    pass


class Timed(Protobuf):
    after: datetime.timedelta = field(1)
    next: Timed | None = field(2, default=None)


class BlobNode(Protobuf):
    blob: SavedStateBlob | None = field(1, default=None)
    next: BlobNode | None = field(2, default=None)


# For each route: (class, one level as (bytes before, field number) records from the outside in,
# message levels one such level adds, the innermost bytes). One level is
# ``before1 + rec(field1, before2 + rec(field2, ... inner))``.
Level = list[tuple[bytes, int]]
ROUTES: dict[str, tuple[type, Level, int, bytes]] = {
    "optional message": (Node, [(b"", 1)], 1, b""),
    "list of messages": (ListNode, [(b"", 1)], 1, b""),
    "map value": (MapNode, [(b"", 1), (b"\x08\x01", 2)], 2, b""),
    "tuple element": (TupleNode, [(b"", 1), (b"\x08\x01", 2)], 2, b""),
    "oneof variant": (Tree, [(b"", 1), (b"", 1)], 2, rec(2, b"")),
    "duration beside message": (Timed, [(rec(1, b"\x08\x01"), 2)], 1, b""),
    "blob beside message": (BlobNode, [(rec(1, b"\x0a\x01x"), 2)], 1, b""),
}


def nested(route: str, levels: int) -> bytes:
    """``levels`` levels of ``route`` around its innermost bytes, built in linear time."""
    _cls, level, _per, leaf = ROUTES[route]
    heads: list[bytes] = []
    total = len(leaf)
    for _ in range(levels):
        for before, number in reversed(level):
            head = before + varint(number << 3 | 2) + varint(total)
            heads.append(head)
            total += len(head)
    heads.reverse()
    return b"".join(heads) + leaf


def _limit_levels(route: str, max_depth: int) -> int:
    """The most wrappers of ``route`` that decode within ``max_depth``: found by search,
    checking that both codecs agree at every step."""
    cls = ROUTES[route][0]
    ok = 0
    for levels in range(0, max_depth + 2):
        if isinstance(both(cls, nested(route, levels), max_depth), DecodeError):
            break
        ok = levels
    return ok


@pytest.mark.parametrize("route", ROUTES)
def test_depth_limit_through_every_route(route: str) -> None:
    cls, _level, per_level, _leaf = ROUTES[route]
    levels = _limit_levels(route, 100)
    # The root counts as 1: 99 more message levels fit, whatever a level is made of.
    assert 99 // per_level - 1 <= levels <= 99 // per_level
    over = both_error(cls, nested(route, levels + 1))
    assert over.reason == "nesting deeper than the limit"
    assert over.path[0] == cls.__name__


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("levels", [101, 1000, 100_000])
def test_absurd_depth_is_a_decode_error(route: str, levels: int) -> None:
    cls = ROUTES[route][0]
    error = both_error(cls, nested(route, levels))
    assert error.reason == "nesting deeper than the limit"


def test_depth_101_and_100000_of_plain_messages() -> None:
    assert isinstance(both(Node, nested("optional message", 99)), Node)  # 100 with the root
    assert both_error(Node, nested("optional message", 100)).reason == \
        "nesting deeper than the limit"
    assert both_error(Node, nested("optional message", 99_999)).reason == \
        "nesting deeper than the limit"


def test_depth_limit_with_little_stack_left() -> None:
    """A caller already deep in its own recursion still gets a value or a DecodeError."""
    data = nested("map value", 49)  # 99 levels: within the limit
    results: list[object] = []

    def descend(n: int) -> None:
        if n > 0:
            descend(n - 1)
            return
        for cls in (MapNode,):
            try:
                results.append(cls.decode(data))
            except DecodeError as exc:
                results.append(exc)

    limit = sys.getrecursionlimit()
    frames = len(_stack())
    for spare in (40, 120, 250, 400):
        results.clear()
        descend(limit - frames - spare)
        assert len(results) == 1
        assert isinstance(results[0], (MapNode, DecodeError)), results[0]


def _stack() -> list[object]:
    import inspect

    return inspect.stack(0)


def test_merged_copies_count_depth_too() -> None:
    """Repeated copies of a singular message merge; the merged value is held to the limit."""
    data = nested("optional message", 98)
    merged = rec(1, data) + rec(1, b"")
    assert isinstance(both(Node, merged), Node)
    deeper = rec(1, nested("optional message", 99)) + rec(1, b"")
    assert both_error(Node, deeper).reason == "nesting deeper than the limit"


def test_blob_in_blob_each_parse_has_its_own_limit() -> None:
    """A blob's payload is not decoded with its container: each ``parse`` has its own
    ``max_depth``. A blob nested 1000 deep unwraps iteratively without recursion."""
    blob = SavedStateBlob.new(_DeepRoot(level=0))
    for _ in range(1000):
        blob = SavedStateBlob.new(blob)
    levels = 0
    value: object = blob
    while isinstance(value, SavedStateBlob):
        assert value.is_a(SavedStateBlob) or value.is_a(_DeepRoot)
        value = value.parse(SavedStateBlob if value.is_a(SavedStateBlob) else _DeepRoot)
        levels += 1
    assert levels == 1001
    assert value == _DeepRoot(level=0)


@savedstate(package="tests.hostile")
class _DeepRoot:
    level: u32 = field(1)


def test_nested_blobs_in_unit_restore_are_bounded() -> None:
    from savestate import RestoreError
    from savestate.state.units import check_nested_blobs

    blob = SavedStateBlob.new(_DeepRoot(level=0))
    for _ in range(150):
        blob = SavedStateBlob.new(blob)
    with pytest.raises(RestoreError) as info:
        check_nested_blobs(blob)
    assert "nested deeper than the limit" in str(info.value)
    check_nested_blobs(blob, max_nesting=200)


# -- size ----------------------------------------------------------------------------------------


def test_max_size_is_checked_before_anything() -> None:
    data = bytes(Root(a=1, inner=Inner(imr=1, name="x" * 100), items=[], kids=[], table={},
                      data=b""))
    assert Root.decode(data, max_size=len(data)).a == 1
    for too_small in (0, len(data) - 1):
        with pytest.raises(DecodeError) as info:
            Root.decode(data, max_size=too_small)
        assert str(info.value) == \
            f"Root: input of {len(data)} bytes is larger than max_size ({too_small})"
    # Counted in bytes for any buffer, and before a bytearray or memoryview is copied.
    view = memoryview(bytearray(data)).cast("I") if len(data) % 4 == 0 else memoryview(data)
    with pytest.raises(DecodeError):
        Root.decode(view, max_size=len(data) - 1)
    with pytest.raises(ValueError):
        Root.decode(data, max_size=-1)


def test_default_max_size_is_64_mib() -> None:
    from savestate.limits import DEFAULT_MAX_SIZE

    assert DEFAULT_MAX_SIZE == snapshot.DEFAULT_MAX_SIZE == 64 << 20
    big = b"\x42" + varint(64 << 20) + bytes(64 << 20)  # one bytes field of 64 MiB
    with pytest.raises(DecodeError, match="larger than max_size"):
        Root.decode(big)
    assert len(Root.decode(big, max_size=len(big)).data) == 64 << 20


def test_snapshot_max_size(tmp_path: Any) -> None:
    path = tmp_path / "s.snapshot"
    blob = SavedStateBlob(type_url="t", value=bytes(1000))
    snapshot.write(path, blob)
    assert snapshot.read(path, max_size=2000) == blob
    with pytest.raises(snapshot.TooLarge, match="more than max_size"):
        snapshot.read(path, max_size=500)
    # A header that declares a huge payload is refused before the checksums are computed.
    data = bytearray(path.read_bytes())
    with pytest.raises(snapshot.TooLarge):
        snapshot.unpack(bytes(data), max_size=500)


def test_snapshot_read_does_not_read_a_huge_file(tmp_path: Any) -> None:
    """A sparse file of 1 TiB is refused from its size: nothing is read."""
    path = tmp_path / "huge.snapshot"
    with open(path, "wb") as f:
        f.truncate(1 << 40)
    tracemalloc.start()
    try:
        with pytest.raises(snapshot.TooLarge):
            snapshot.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# -- memory --------------------------------------------------------------------------------------


class MemLeaf(Protobuf):
    x: u32 = field(1)


class MemNode(Protobuf):
    child: MemNode | None = field(1, default=None)


class MemRoot(Protobuf):
    kids: list[MemLeaf] = field(1)
    nums: list[u64] = field(2)
    table: dict[u32, MemLeaf] = field(3)
    one: MemLeaf = field(4)
    name: str = field(5)
    node: MemNode = field(6)
    blobs: list[SavedStateBlob] = field(7)


# The documented bound: peak allocation <= MEMORY_PER_BYTE * n + MEMORY_CONSTANT. The worst
# patterns are objects per byte (an empty message is 2 bytes and a Python object of ~60) and
# repeated copies of a singular message nested in each other, whose merge copies their bytes
# once per level of nesting (see nested_merges below).
MEMORY_PER_BYTE = 160
MEMORY_CONSTANT = 1 << 20
N = 40_000


def _nested_merges(levels: int, payload: int) -> bytes:
    data = rec(15, b"x" * payload)
    for _ in range(levels):
        data = rec(1, data) + rec(1, b"")
    return rec(6, data)


ADVERSARIAL: dict[str, bytes] = {
    "huge declared length": b"\x2a" + varint(1 << 63) + b"x" * N,
    "huge declared length of a message": b"\x22" + varint((1 << 64) - 1) + b"\x08\x01" * N,
    "deep nesting": rec(6, nested("optional message", 50_000)),
    "millions of empty messages": b"\x0a\x00" * (N // 2),
    "empty messages then an error": b"\x0a\x00" * (N // 2) + b"\x08",
    "long packed run of 1-byte varints": rec(2, b"\x01" * N),
    "long packed run of 10-byte varints": rec(2, b"\xff" * 9 + b"\x01") * (N // 12),
    "unpacked repeated numbers": b"\x10\x05" * (N // 2),
    "repeated merges of one message": rec(4, b"\x08\x01") * (N // 4),
    "duplicate map keys": rec(3, b"\x08\x01\x12\x02\x08\x01") * (N // 10),
    "many unknown fields": b"\x78\x00" * (N // 2),
    "nested merges": _nested_merges(95, N),
    "empty blobs": b"\x3a\x00" * (N // 2),
}


def _peak(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        with contextlib.suppress(DecodeError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_memory_is_proportional_to_the_input(name: str) -> None:
    data = ADVERSARIAL[name]
    MemRoot.decode(b"")  # compile first: the codec's one-time cost is not the input's
    bound = MEMORY_PER_BYTE * len(data) + MEMORY_CONSTANT
    for label, fn in (("front end", lambda: MemRoot.decode(data)),
                      ("interpreter", lambda: interp.decode(MemRoot, data, 100))):
        peak = _peak(fn)
        assert peak <= bound, f"{label}: {peak} bytes for {len(data)} bytes of input"


# -- time ----------------------------------------------------------------------------------------


def _per_byte(make: Callable[[int], bytes], n: int, decode: Callable[[bytes], object]) -> float:
    data = make(n)
    best = float("inf")
    gc.collect()
    gc.disable()  # the collector's own (amortised linear) cost is noise here
    try:
        for _ in range(5):
            started = time.perf_counter()
            with contextlib.suppress(DecodeError):
                decode(data)
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best / len(data)


PATTERNS: dict[str, Callable[[int], bytes]] = {
    "repeated merges of one message": lambda n: rec(4, b"\x08\x01") * (n // 4),
    "repeated merges of a nested message": lambda n: rec(6, rec(1, b"") * (n // 2)) * 2,
    "duplicate map keys": lambda n: rec(3, b"\x08\x01\x12\x02\x08\x01") * (n // 10),
    "distinct map keys": lambda n: b"".join(
        rec(3, b"\x08" + varint(i) + b"\x12\x00") for i in range(n // 6)),
    "many empty messages": lambda n: b"\x0a\x00" * (n // 2),
    "many unknown fields": lambda n: b"\x78\x00" * (n // 2),
    "long packed run": lambda n: rec(2, b"\x81\x01" * (n // 2)),
    "repeated strings, last wins": lambda n: rec(5, b"abcdef") * (n // 8),
    "nested merges at fixed depth": lambda n: _nested_merges(20, n),
    "deep nesting": lambda n: rec(6, nested("optional message", n // 2)),
    "blobs": lambda n: rec(7, rec(1, b"t") + rec(2, b"v")) * (n // 9),
}

SMALL, LARGE = 20_000, 200_000
SLACK = 4.0  # generous: the machine is shared; a quadratic pattern would show ~10x


@pytest.mark.parametrize("name", PATTERNS)
def test_no_input_pattern_is_quadratic(name: str) -> None:
    make = PATTERNS[name]
    MemRoot.decode(b"")
    for decode in (MemRoot.decode, lambda d: interp.decode(MemRoot, d, 100)):
        for _attempt in range(3):  # retries before failing: timing on a busy machine
            small = _per_byte(make, SMALL, decode)
            large = _per_byte(make, LARGE, decode)
            if large <= SLACK * small:
                break
        assert large <= SLACK * small, f"{name}: {small * 1e9:.0f} ns/B at {SMALL} bytes, " \
            f"{large * 1e9:.0f} ns/B at {LARGE}"


def test_fast_path_failure_does_not_keep_its_partial_work() -> None:
    """When the compiled path rejects the input after building much of a value, that partial
    value is freed before the interpreter decodes again (the peak is not twice the work)."""
    good = b"\x0a\x00" * (N // 2)
    bad = good + b"\x08"
    MemRoot.decode(b"")
    ok_peak = _peak(lambda: MemRoot.decode(good))
    bad_peak = _peak(lambda: MemRoot.decode(bad))
    assert bad_peak <= 1.5 * ok_peak, (ok_peak, bad_peak)


def test_codec_of_front_end_matches_interpreter_on_the_adversarial_corpus() -> None:
    for data in ADVERSARIAL.values():
        both(MemRoot, data)
    assert codec_of(MemRoot).cls is MemRoot


def test_nested_merges_within_the_bound_at_the_deepest_allowed_limit() -> None:
    # Repeated records of a message are read in turn, never joined: joining them once per
    # level of nesting would cost max_depth x n.
    data = _nested_merges(190, 100_000)
    MemRoot.decode(b"")
    peak = _peak(lambda: MemRoot.decode(data, max_depth=200))
    assert peak <= MEMORY_PER_BYTE * len(data) + MEMORY_CONSTANT, (peak, len(data))
