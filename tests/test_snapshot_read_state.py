"""``snapshot.read_state``: a state read from a snapshot file with its large ``bytes`` field
read straight into its own ``bytes``, and in every other respect what ``read`` then ``parse``
give: the same values, unknown fields and errors (field paths included), on every layout."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from savestate import SavedStateBlob, SaveRestore, field, savedstate, snapshot, u32
from savestate.codec.wire import varint_bytes
from savestate.errors import SchemaError
from savestate.state.blob import BlobTypeMismatch, type_url_of
from savestate.state.saverestore import RestoreError, restore_blob
from savestate.state.snapshot import HEADER_FIELDS, HEADER_SIZE, LARGE_FIELD

from .measure import peak

LIMIT = 64 << 20
BIG = 256 << 10  # past the first read of the payload, and large enough to be read on its own


@savedstate(package="t.read_state")
class Guest:
    generation: u32 = field(1, default=0)
    data: bytes = field(2)
    text: str = field(3, default="")
    extra: bytes | None = field(4, default=None)
    items: list[u32] = field(5, default_factory=list)


@savedstate(package="t.read_state")
class Other:
    data: bytes = field(2)


class NotARoot:
    pass


# -- building files by hand --------------------------------------------------------------------


def varint_record(number: int, value: int) -> bytes:
    return varint_bytes(number << 3) + varint_bytes(value)


def len_record(number: int, content: bytes) -> bytes:
    return varint_bytes(number << 3 | 2) + varint_bytes(len(content)) + content


def file_of(payload: bytes) -> bytes:
    """A well-formed snapshot file around any payload."""
    fields = HEADER_FIELDS.pack(snapshot.MAGIC, 1, 0, len(payload),
                                hashlib.sha256(payload).digest())
    return fields + struct.pack("<I", zlib.crc32(fields)) + payload


def blob_payload(state: bytes, url: str = type_url_of(Guest), before: bytes = b"",
                 after: bytes = b"") -> bytes:
    """The encoding of an ``Any`` holding ``state``, with more records around its value."""
    return len_record(1, url.encode()) + before + len_record(2, state) + after


def pattern(size: int, seed: int) -> bytes:
    block = hashlib.sha256(bytes([seed])).digest()
    return (block * (size // len(block) + 1))[:size]


DATA = pattern(BIG, 1)
OTHER_DATA = pattern(BIG + 7, 2)
TEXT = "é" * (BIG // 2)

# Layouts of a Guest's records: ``fast`` when the large field is read on its own.
LAYOUTS: dict[str, tuple[bytes, bool]] = {
    "the field first": (len_record(2, DATA) + varint_record(1, 5), True),
    "the field last": (varint_record(1, 5) + len_record(3, b"t") + len_record(2, DATA),
                       True),
    "the field between": (varint_record(1, 5) + len_record(2, DATA)
                          + len_record(3, TEXT.encode()), True),
    "the field absent": (varint_record(1, 5) + len_record(3, TEXT.encode()), False),
    "the field empty": (len_record(2, b"") + len_record(3, TEXT.encode()), False),
    "a small value": (varint_record(1, 5) + len_record(2, b"s" * 1000)
                      + len_record(3, TEXT.encode()), False),
    "just below the threshold": (len_record(2, b"s" * (LARGE_FIELD - 1))
                                 + len_record(3, TEXT.encode()), False),
    "the threshold": (varint_record(1, 1) + len_record(2, DATA[:LARGE_FIELD])
                      + len_record(3, TEXT.encode()), True),
    "twice, large then small": (len_record(2, DATA) + len_record(2, b"last"), False),
    "twice, small then large": (len_record(2, b"first") + len_record(2, DATA), False),
    "twice, both large": (len_record(2, OTHER_DATA) + len_record(2, DATA), False),
    "twice, large then empty": (len_record(2, DATA) + len_record(2, b""), False),
    "the optional field": (varint_record(1, 2) + len_record(4, DATA), True),
    "both bytes fields large": (len_record(4, OTHER_DATA) + len_record(2, DATA), True),
    "a large text first": (len_record(3, TEXT.encode()) + len_record(2, DATA), True),
    "unknown fields before and after": (
        varint_record(99, 7) + len_record(100, b"u" * 300) + b"\x3d" + b"\x01\x02\x03\x04"
        + len_record(2, DATA) + b"\x39" + bytes(8) + varint_record(101, 1), True),
    "a large unknown field first": (len_record(100, OTHER_DATA) + len_record(2, DATA), True),
    "many small records first": (b"".join(varint_record(5, i) for i in range(40_000))
                                 + len_record(2, DATA), True),
    "the field as a varint after": (len_record(2, DATA) + varint_record(2, 1), False),
    "the field as a varint before": (varint_record(2, 1) + len_record(2, DATA), False),
    "a bad value after": (len_record(2, DATA) + varint_record(1, 1 << 40), False),
    "a bad value before": (varint_record(1, 1 << 40) + len_record(2, DATA), False),
    "bad UTF-8 after": (len_record(2, DATA) + len_record(3, b"\xff\xfe"), False),
    "not records after": (len_record(2, DATA) + b"\x0f", False),
    "not records before": (b"\x0f" + len_record(2, DATA), False),
    "a truncated record after": (len_record(2, DATA) + b"\x18", False),
}


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call gives, comparable: the value (its type, fields, unknown fields and bytes),
    or the error (its type, message, field path and cause)."""
    try:
        value = fn()
    except Exception as exc:
        cause = exc.__cause__
        return ("error", type(exc), str(exc), getattr(exc, "reason", None),
                type(cause), str(cause))
    return ("value", type(value), value, value._pb_unknown, bytes(value),
            type(getattr(value, "data", b"")))


def plain(path: Path, cls: type, max_size: int = LIMIT, max_depth: int = 100) -> Any:
    return snapshot.read(path, max_size=max_size, max_depth=max_depth).parse(
        cls, max_size=max_size, max_depth=max_depth)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the parses of a whole blob's value (the plain way's copy of the field)."""
    calls: list[int] = []
    original = SavedStateBlob.parse

    def counted(self: SavedStateBlob, cls: Any, **kw: Any) -> Any:
        calls.append(len(self.value))
        return original(self, cls, **kw)

    monkeypatch.setattr(SavedStateBlob, "parse", counted)
    yield calls


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_reads_as_read_then_parse(tmp_path: Path, name: str,
                                               parses: list[int]) -> None:
    state, fast = LAYOUTS[name]
    path = tmp_path / "s.snapshot"
    path.write_bytes(file_of(blob_payload(state)))
    expected = outcome(lambda: plain(path, Guest))
    parses.clear()
    got = outcome(lambda: snapshot.read_state(path, Guest, max_size=LIMIT))
    assert got == expected
    assert (parses == []) is fast, "the large field was read on its own" if parses else "not"


BLOB_LAYOUTS: dict[str, bytes] = {
    "the type URL after the value": len_record(2, len_record(2, DATA)) + len_record(
        1, type_url_of(Guest).encode()),
    "unknown records in the blob": blob_payload(len_record(2, DATA), before=varint_record(9, 1),
                                                after=len_record(10, b"x")),
    "the blob's value twice": blob_payload(len_record(2, OTHER_DATA),
                                           after=len_record(2, len_record(2, DATA))),
    "a bad record after the blob's value": blob_payload(len_record(2, DATA), after=b"\x0f"),
    "another type": blob_payload(len_record(2, DATA), url=type_url_of(Other)),
    "an https type URL": blob_payload(len_record(2, DATA), url="https://" + type_url_of(Guest)),
    "a type URL of no root": blob_payload(len_record(2, DATA), url="type.googleapis.com/x.Y"),
}


@pytest.mark.parametrize("name", BLOB_LAYOUTS)
@pytest.mark.parametrize("cls", [Guest, Other, NotARoot, SavedStateBlob])
def test_every_blob_and_class_reads_as_read_then_parse(tmp_path: Path, name: str,
                                                       cls: type) -> None:
    path = tmp_path / "s.snapshot"
    path.write_bytes(file_of(BLOB_LAYOUTS[name]))
    assert outcome(lambda: snapshot.read_state(path, cls, max_size=LIMIT)) == outcome(
        lambda: plain(path, cls))


def test_a_wrong_class_is_refused_as_parse_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(data=DATA), max_size=LIMIT)
    with pytest.raises(BlobTypeMismatch, match=r"t\.read_state\.Other"):
        snapshot.read_state(path, Other, max_size=LIMIT)
    with pytest.raises(SchemaError):
        snapshot.read_state(path, NotARoot, max_size=LIMIT)


def damaged(data: bytes) -> dict[str, bytes]:
    """The file ``data`` damaged in each way a read reports."""
    flip = bytearray(data)
    flip[HEADER_SIZE + len(data) // 2] ^= 1
    header = bytearray(data)
    header[20] ^= 1
    return {
        "a payload byte flipped": bytes(flip),
        "a header byte flipped": bytes(header),
        "truncated in the field": data[: len(data) // 2],
        "truncated after the field": data[:-1],
        "truncated in the header": data[:30],
        "trailing bytes": data + b"\0",
        "no magic": b"x" + data[1:],
        "empty": b"",
    }


@pytest.mark.parametrize("kind", list(damaged(b"x" * 1000)))
def test_damage_gives_the_errors_of_read(tmp_path: Path, kind: str) -> None:
    good = tmp_path / "good.snapshot"
    snapshot.write(good, Guest(generation=1, data=DATA, text="t"), max_size=LIMIT)
    path = tmp_path / "s.snapshot"
    path.write_bytes(damaged(good.read_bytes())[kind])
    expected = outcome(lambda: plain(path, Guest))
    assert expected[0] == "error"
    assert outcome(lambda: snapshot.read_state(path, Guest, max_size=LIMIT)) == expected


def test_the_limits_are_those_of_read_and_parse(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(generation=1, data=DATA), max_size=LIMIT)
    for max_size in (BIG - 1, BIG + 100, path.stat().st_size - HEADER_SIZE):
        assert outcome(lambda m=max_size: snapshot.read_state(path, Guest, max_size=m)) == (
            outcome(lambda m=max_size: plain(path, Guest, max_size=m)))
    with pytest.raises(snapshot.TooLarge):
        snapshot.read_state(path, Guest, max_size=BIG // 2)
    with pytest.raises(ValueError):
        snapshot.read_state(path, Guest, max_depth=0)


def test_a_written_state_reads_back_with_its_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    value = Guest.decode(varint_record(77, 3) + len_record(2, DATA) + len_record(3, b"hi"))
    snapshot.write(path, value, max_size=LIMIT)
    got = snapshot.read_state(path, Guest, max_size=LIMIT)
    assert got == value and got._pb_unknown == value._pb_unknown == varint_record(77, 3)
    assert bytes(got) == bytes(value) and type(got.data) is bytes


def test_a_fifo_is_read_the_plain_way(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    import subprocess
    import sys

    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(generation=4, data=DATA), max_size=LIMIT)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c",
                               f"import pathlib; pathlib.Path({str(fifo)!r}).write_bytes("
                               f"pathlib.Path({str(path)!r}).read_bytes())"])
    seen: list[tuple[int, int]] = []
    got = snapshot.read_state(fifo, Guest, max_size=LIMIT, progress=lambda d, t: seen.append(
        (d, t)))
    writer.wait()
    assert got == Guest(generation=4, data=DATA)
    assert seen == [(path.stat().st_size,) * 2]


# -- what it copies ----------------------------------------------------------------------------


def test_the_large_field_is_read_into_its_own_bytes_and_not_copied(tmp_path: Path) -> None:
    size = 32 << 20
    state = Guest(generation=9, data=os.urandom(size), text="small")
    path = tmp_path / "s.snapshot"
    snapshot.write(path, state, max_size=LIMIT)
    top, got = peak(lambda: snapshot.read_state(path, Guest, max_size=LIMIT))
    assert got == state
    assert top < 1.5 * size  # read then parse holds the field twice
    top_plain, _ = peak(lambda: plain(path, Guest))
    assert top_plain > 1.9 * size


# -- progress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["the field first", "the field absent",
                                    "twice, small then large"])
def test_progress(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.snapshot"
    path.write_bytes(file_of(blob_payload(LAYOUTS[layout][0] + len_record(3, TEXT.encode())
                                          + len_record(50, pattern(3 << 20, 3)))))
    total = path.stat().st_size
    calls: list[tuple[int, int]] = []
    snapshot.read_state(path, Guest, max_size=LIMIT,
                        progress=lambda done, size: calls.append((done, size)))
    dones = [done for done, _ in calls]
    assert all(size == total for _, size in calls)
    assert dones == sorted(dones) and dones[-1] == total and dones.count(total) == 1
    assert len(calls) > 2  # chunk by chunk


def test_progress_is_not_finished_when_the_parse_fails(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(data=DATA), max_size=LIMIT)
    calls: list[tuple[int, int]] = []
    with pytest.raises(BlobTypeMismatch):
        snapshot.read_state(path, Other, max_size=LIMIT,
                            progress=lambda done, size: calls.append((done, size)))
    assert all(done < size for done, size in calls)


def test_an_exception_in_progress_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(data=pattern(4 << 20, 4)), max_size=LIMIT)

    def stop(done: int, size: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        snapshot.read_state(path, Guest, max_size=LIMIT, progress=stop)


# -- restore -----------------------------------------------------------------------------------


class GuestDevice(SaveRestore[Guest]):
    def __init__(self) -> None:
        self.state: Guest | None = None

    def save(self) -> Guest:
        assert self.state is not None
        return self.state

    def restore(self, state: Guest) -> None:
        if state.generation == 13:
            raise RestoreError.InvalidSavedState("generation 13")
        self.state = state


class AnyDevice(SaveRestore[SavedStateBlob]):
    def save(self) -> SavedStateBlob:
        raise NotImplementedError

    def restore(self, state: SavedStateBlob) -> None:
        self.state = state


def restored_outcome(path: Path, make: Callable[[], Any], plain_way: bool) -> tuple[Any, ...]:
    device = make()

    def run() -> Any:
        if plain_way:
            restore_blob(device, snapshot.read(path, max_size=LIMIT), max_size=LIMIT)
        else:
            snapshot.restore(path, device, max_size=LIMIT)
        return device.state

    return outcome(run)


@pytest.mark.parametrize("name", [*LAYOUTS, *(f"damaged: {k}" for k in damaged(b"x" * 1000)),
                                  *(f"blob: {k}" for k in BLOB_LAYOUTS), "its own refusal"])
@pytest.mark.parametrize("make", [GuestDevice, AnyDevice])
def test_restore_gives_what_read_then_restore_gives(tmp_path: Path, name: str,
                                                    make: Callable[[], Any]) -> None:
    path = tmp_path / "s.snapshot"
    if name.startswith("damaged: "):
        good = tmp_path / "good.snapshot"
        snapshot.write(good, Guest(generation=1, data=DATA, text="t"), max_size=LIMIT)
        path.write_bytes(damaged(good.read_bytes())[name.removeprefix("damaged: ")])
    elif name.startswith("blob: "):
        path.write_bytes(file_of(BLOB_LAYOUTS[name.removeprefix("blob: ")]))
    elif name == "its own refusal":
        snapshot.write(path, Guest(generation=13, data=DATA), max_size=LIMIT)
    else:
        path.write_bytes(file_of(blob_payload(LAYOUTS[name][0])))
    expected = restored_outcome(path, make, plain_way=True)
    assert restored_outcome(path, make, plain_way=False) == expected


def test_restore_holds_the_large_field_once(tmp_path: Path) -> None:
    size = 32 << 20
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(generation=9, data=os.urandom(size)), max_size=LIMIT)
    device = GuestDevice()
    top, _ = peak(lambda: snapshot.restore(path, device, max_size=LIMIT))
    assert device.state is not None and len(device.state.data) == size
    assert top < 1.5 * size
    top_plain, _ = peak(lambda: restore_blob(device, snapshot.read(path, max_size=LIMIT),
                                             max_size=LIMIT))
    assert top_plain > 1.9 * size  # read, then restore_blob's parse, holds it twice


class UntypedDevice(SaveRestore):  # type: ignore[type-arg]
    """Names no state type: its state is decoded as the file's type URL says."""

    state: Any = None

    def save(self) -> Any:
        raise NotImplementedError

    def restore(self, state: Any) -> None:
        self.state = state


@pytest.mark.parametrize("make", [GuestDevice, UntypedDevice])
@pytest.mark.parametrize("size", [100, 3 << 20])
def test_restore_reports_progress_until_the_state_is_decoded(
        tmp_path: Path, make: Callable[[], Any], size: int) -> None:
    # Whichever way the state is read: every call as read makes them while the file is read
    # and checked, and the last, (size, size), once the state is decoded, before the restore.
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Guest(generation=3, data=pattern(size, 5)), max_size=LIMIT)
    total = path.stat().st_size
    calls: list[tuple[int, int]] = []
    device = make()
    restored_at: list[int] = []
    original = device.restore

    def restore(state: Any) -> None:
        restored_at.append(len(calls))
        original(state)

    device.restore = restore
    snapshot.restore(path, device, max_size=LIMIT, progress=lambda d, t: calls.append((d, t)))
    dones = [done for done, _ in calls]
    assert all(t == total for _, t in calls) and dones == sorted(dones)
    assert dones[-1] == total and dones.count(total) == 1 and restored_at == [len(calls)]
    if size > snapshot.CHUNK:
        assert len(calls) > 2

    # A state that does not decode: no last call.
    bad = tmp_path / "bad.snapshot"
    bad.write_bytes(file_of(blob_payload(b"\x0f" + pattern(size, 6))))
    calls.clear()
    with pytest.raises(RestoreError):
        snapshot.restore(bad, make(), max_size=LIMIT, progress=lambda d, t: calls.append((d, t)))
    assert all(done < t for done, t in calls)
