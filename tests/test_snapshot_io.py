"""Snapshot files at disk speed: streamed writes and reads (no copy of the payload), the same
bytes and errors as before, the read-back check, progress callbacks and the CLI's bar."""

from __future__ import annotations

import hashlib
import io
import os
import pty
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from savestate import (
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SaveRestore,
    field,
    savedstate,
    snapshot,
    u32,
)
from savestate.codec.compiler import LARGE_PAYLOAD
from savestate.codec.wire import varint_bytes
from savestate.errors import DecodeError, EncodeError
from savestate.state.blob import decode_blob, type_url_of
from savestate.state.snapshot import HEADER_FIELDS, HEADER_SIZE
from savestate.state.units import (
    SavedStateUnit,
    SavedStateUnits,
    StateUnits,
    encoded_units_parts,
)

from .measure import peak

ROOT = Path(__file__).resolve().parent.parent
BIG = 4 << 20  # large enough for every streamed path, small enough for a test


@savedstate(package="t.snapshot_io")
class Memory:
    generation: u32 = field(1)
    data: bytes = field(2)
    text: str = field(3)


class Empty(Protobuf, package="t.snapshot_io"):
    a: list[u32] = field(1, default_factory=list)
    b: list[u32] = field(2, default_factory=list)
    c: list[u32] = field(3, default_factory=list)


@savedstate(package="t.snapshot_io")
class Many:
    items: list[Empty] = field(1)
    data: bytes = field(2)


@savedstate(package="t.snapshot_io")
class Chain:
    next: Chain | None = field(1, default=None)


@savedstate(package="t.snapshot_io")
class Holder:
    data: bytes = field(1)
    inner: SavedStateBlob = field(2, default_factory=SavedStateBlob)


@savedstate(package="t.snapshot_io")
class Fixed:
    data: bytes = field(1, length=100_000)


def chain_bytes(levels: int) -> bytes:
    data = b""
    for _ in range(levels - 1):
        data = b"\x0a" + varint_bytes(len(data)) + data
    return data


def old_pack(blob: SavedStateBlob) -> bytes:
    """The file layout, written out by hand: header, CRC, payload."""
    payload = bytes(blob)
    fields = HEADER_FIELDS.pack(snapshot.MAGIC, 1, 0, len(payload),
                                hashlib.sha256(payload).digest())
    return fields + struct.pack("<I", zlib.crc32(fields)) + payload


def file_of(payload: bytes) -> bytes:
    """A well-formed snapshot file around any payload."""
    fields = HEADER_FIELDS.pack(snapshot.MAGIC, 1, 0, len(payload),
                                hashlib.sha256(payload).digest())
    return fields + struct.pack("<I", zlib.crc32(fields)) + payload


def big_state() -> Memory:
    return Memory(generation=3, data=os.urandom(BIG), text="é" * (BIG // 4))


# -- the same bytes, the same values ----------------------------------------------------------


STATES = {
    "small": Memory(generation=1, data=b"abc", text="t"),
    "empty": Memory(generation=0, data=b"", text=""),
    "large fields": Memory(generation=2, data=b"\x01" * 200_000, text="x" * 70_000),
    "many messages": Many(items=[Empty()] * 10, data=b"d" * 100_000),
}


@pytest.mark.parametrize("name", STATES)
def test_write_gives_the_bytes_of_the_format(tmp_path: Path, name: str) -> None:
    state = STATES[name]
    path = tmp_path / "s.snapshot"
    size = snapshot.write(path, state)
    data = path.read_bytes()
    assert data == old_pack(SavedStateBlob.new(state)) == snapshot.pack(SavedStateBlob.new(state))
    assert size == len(data)
    blob = snapshot.read(path)
    assert type(blob.value) is bytes
    assert blob.parse(type(state)) == state


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_has_the_mode_of_the_umask_and_a_replaced_one_keeps_its_own(
    tmp_path: Path, mask: int
) -> None:
    state = STATES["small"]
    old = os.umask(mask)
    try:
        snapshot.write(tmp_path / "new.snapshot", state)
    finally:
        os.umask(old)
    assert (tmp_path / "new.snapshot").stat().st_mode & 0o777 == 0o666 & ~mask
    kept = tmp_path / "kept.snapshot"
    kept.write_bytes(b"")
    kept.chmod(0o640)
    snapshot.write(kept, state)
    assert kept.stat().st_mode & 0o777 == 0o640


def test_a_blob_is_written_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "b.snapshot"
    blob = SavedStateBlob.decode(bytes(SavedStateBlob(type_url="x", value=b"v" * 100_000))
                                 + b"\x18\x07")  # with an unknown field, kept
    snapshot.write(path, blob)
    assert path.read_bytes() == old_pack(blob)
    assert snapshot.read(path) == blob
    assert bytes(snapshot.read(path)) == bytes(blob)


# Payloads a writer other than this library may produce: each reads as its decode says.
LAYOUTS = {
    "value first": b"\x12" + varint_bytes(2 << 20) + b"v" * (2 << 20) + b"\x0a\x01x",
    "unknown fields after the value": bytes(SavedStateBlob(type_url="u", value=b"w" * (2 << 20)))
    + b"\x18\x05\x22\x02ab",
    "two values, the last wins": b"\x12\x03abc\x0a\x01t\x12" + varint_bytes(2 << 20)
    + b"z" * (2 << 20),
    "a value after the large one": b"\x0a\x01t\x12" + varint_bytes(2 << 20) + b"z" * (2 << 20)
    + b"\x12\x02ok",
    "a large unknown field": b"\x0a\x01t\x22" + varint_bytes(2 << 20) + b"u" * (2 << 20)
    + b"\x12\x02ok",
    "a long type URL": b"\x0a" + varint_bytes(100_000) + b"t" * 100_000 + b"\x12"
    + varint_bytes(2 << 20) + b"z" * (2 << 20),
    "small": b"\x0a\x01t\x12\x02ok",
    "no value": b"\x0a\x01t" + b"\x18\x01" * 1_000_000,
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_reads_as_its_decode(tmp_path: Path, name: str) -> None:
    payload = LAYOUTS[name]
    path = tmp_path / "l.snapshot"
    path.write_bytes(file_of(payload))
    expected = SavedStateBlob.decode(payload, max_size=len(payload))
    blob = snapshot.read(path, max_size=len(payload))
    assert blob == expected and type(blob.value) is bytes
    assert bytes(blob) == bytes(expected)  # unknown fields too, in order
    assert snapshot.unpack(memoryview(path.read_bytes()), max_size=len(payload)) == expected
    assert decode_blob(bytearray(payload), max_size=len(payload)) == expected


BAD_PAYLOADS = {
    "type URL not UTF-8": b"\x0a\x02\xff\xfe\x12" + varint_bytes(2 << 20) + b"z" * (2 << 20),
    "value in the wrong wire type": b"\x10\x01\x12" + varint_bytes(2 << 20) + b"z" * (2 << 20),
    "field number 0 after the value": b"\x12" + varint_bytes(2 << 20) + b"z" * (2 << 20)
    + b"\x00\x01",
    "cut record after the value": b"\x12" + varint_bytes(2 << 20) + b"z" * (2 << 20) + b"\x0a\x05",
}


@pytest.mark.parametrize("name", BAD_PAYLOADS)
def test_a_bad_payload_gives_the_error_of_its_decode(tmp_path: Path, name: str) -> None:
    payload = BAD_PAYLOADS[name]
    path = tmp_path / "bad.snapshot"
    path.write_bytes(file_of(payload))
    with pytest.raises(Exception) as expected:
        SavedStateBlob.decode(payload, max_size=len(payload))
    with pytest.raises(RestoreError.ProtobufDecode) as info:
        snapshot.read(path, max_size=len(payload))
    assert str(info.value.__cause__) == str(expected.value)
    with pytest.raises(RestoreError.ProtobufDecode):
        snapshot.unpack(path.read_bytes(), max_size=len(payload))


def test_large_files_report_corruption_truncation_and_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.snapshot"
    snapshot.write(path, big_state(), max_size=4 * BIG)
    good = path.read_bytes()
    for offset in (HEADER_SIZE + 3, HEADER_SIZE + 1000, len(good) // 2, len(good) - 1):
        bad = bytearray(good)
        bad[offset] ^= 1
        path.write_bytes(bad)
        with pytest.raises(snapshot.ChecksumMismatch, match="payload"):
            snapshot.read(path, max_size=4 * BIG)
    for size in (HEADER_SIZE + 10, len(good) // 2, len(good) - 1):
        path.write_bytes(good[:size])
        with pytest.raises(snapshot.Truncated, match="truncated"):
            snapshot.read(path, max_size=4 * BIG)
    path.write_bytes(good + b"\x00\x00")
    with pytest.raises(snapshot.TrailingData, match="2 unexpected bytes"):
        snapshot.read(path, max_size=4 * BIG)
    path.write_bytes(good)
    with pytest.raises(snapshot.TooLarge):
        snapshot.read(path, max_size=BIG)


# -- no copy of the payload ---------------------------------------------------------------------


def test_write_does_not_copy_the_payload(tmp_path: Path) -> None:
    state = big_state()
    text_size = len(state.text.encode())
    path = tmp_path / "w.snapshot"
    snapshot.write(path, state, max_size=4 * BIG)  # compiled, and the file exists
    used, _ = peak(lambda: snapshot.write(path, state, max_size=4 * BIG))
    # Only the UTF-8 of the string is made (str.encode); the bytes go to the file as they are.
    assert used < text_size + (1 << 20)
    blob = SavedStateBlob(type_url="x", value=state.data)
    used, _ = peak(lambda: snapshot.write(path, blob, max_size=4 * BIG))
    assert used < 1 << 20


def _units(*values: bytes) -> SavedStateUnits:
    return SavedStateUnits(units=[
        SavedStateUnit(name=f"unit{i}",
                       state=SavedStateBlob(type_url="type.googleapis.com/x.Opaque", value=value))
        for i, value in enumerate(values)
    ])


def test_state_units_are_written_without_copying_their_large_states(tmp_path: Path) -> None:
    # The VM's shape: each unit's state is a blob two messages below the root, which the
    # compiled encoder would copy into its buffer (and the read-back check copy again).
    path = tmp_path / "units.snapshot"
    units = _units(b"small", os.urandom(BIG), b"", os.urandom(BIG))
    snapshot.write(path, units, max_size=4 * BIG)
    used, _ = peak(lambda: snapshot.write(path, units, max_size=4 * BIG))
    assert used < 1 << 20
    assert snapshot.read(path, max_size=4 * BIG).parse(SavedStateUnits, max_size=4 * BIG) == units
    assert path.read_bytes()[HEADER_SIZE:] == bytes(SavedStateBlob.new(units))
    # A unit holding a registered state is decoded by the read-back check, and that decode
    # (the state it makes, for a moment) is all the write costs.
    state = big_state()
    blob = SavedStateBlob.new(state)
    units = SavedStateUnits(units=[SavedStateUnit(name="memory", state=blob)])
    decoding, _ = peak(lambda: blob.parse(Memory, max_size=4 * BIG))
    used, _ = peak(lambda: snapshot.write(path, units, max_size=4 * BIG))
    assert used < decoding + (1 << 20)
    restored = Memory(generation=0, data=b"", text="")

    class Device(SaveRestore[Memory]):
        def save(self) -> Memory:
            return restored

        def restore(self, value: Memory) -> None:
            nonlocal restored
            restored = value

    device = StateUnits({"memory": Device()})
    snapshot.restore(path, device, max_size=4 * BIG)
    assert restored == state


def test_encode_gives_the_file_write_writes_and_checks_it_alike(tmp_path: Path) -> None:
    path = tmp_path / "e.snapshot"
    for state in (big_state(), _units(b"a", os.urandom(BIG)), SavedStateBlob(type_url="x")):
        snapshot.write(path, state, max_size=4 * BIG)
        assert snapshot.encode(state, max_size=4 * BIG) == path.read_bytes()
    corrupt = SavedStateBlob(type_url=type_url_of(Memory), value=b"\xff")
    for check in (lambda: snapshot.write(path, corrupt), lambda: snapshot.encode(corrupt)):
        with pytest.raises(snapshot.UnreadableState, match="could not be read back"):
            check()
    with pytest.raises(snapshot.UnreadableState):
        snapshot.encode(big_state(), max_size=BIG)  # past max_size, as write refuses it


def test_state_units_parts_are_the_encoding() -> None:
    large = os.urandom(LARGE_PAYLOAD + 1)
    cases = [
        _units(large),
        _units(b"a", large, b"", large[:-1], large + b"z"),
        SavedStateUnits(units=[
            SavedStateUnit(name="", state=SavedStateBlob(type_url="", value=large)),
            SavedStateUnit(name="é" * 200, state=SavedStateBlob(type_url="t" * 300, value=large)),
            SavedStateUnit(),
        ]),
    ]
    for units in cases:
        parts = encoded_units_parts(units, 100)
        assert parts is not None
        assert b"".join(parts) == bytes(units)
        # Encoded bytes at even positions, each large value at an odd one, uncopied.
        assert [p for p in parts[1::2]] == [
            u.state.value for u in units.units if len(u.state.value) > LARGE_PAYLOAD]
        large_units = [u for u in units.units if len(u.state.value) > LARGE_PAYLOAD]
        assert all(a is u.state.value for a, u in zip(parts[1::2], large_units, strict=True))
        emptied = encoded_units_parts(units, 100, emptied=True)
        assert emptied is not None and len(emptied) == 1
        decoded = SavedStateUnits.decode(emptied[0])
        assert [u.name for u in decoded.units] == [u.name for u in units.units]
        assert [u.state.type_url for u in decoded.units] == [u.state.type_url for u in units.units]
        assert [u.state.value for u in decoded.units] == [
            b"" if len(u.state.value) > LARGE_PAYLOAD else u.state.value for u in units.units]
    # What the compiled encoder must write itself, or refuse with the precise error.
    assert encoded_units_parts(_units(b"small"), 100) is None
    assert encoded_units_parts(_units(large), 2) is None
    kept = SavedStateUnits.decode(bytes(_units(large)) + b"\x10\x01")  # unknown field 2
    assert encoded_units_parts(kept, 100) is None
    inner = SavedStateUnits.decode(bytes(SavedStateUnits(units=[SavedStateUnit.decode(
        bytes(_units(large).units[0]) + b"\x18\x01")])))
    assert encoded_units_parts(inner, 100) is None
    bad = _units(large)
    bad.units[0].name = 5  # type: ignore[assignment]
    assert encoded_units_parts(bad, 100) is None
    with pytest.raises(EncodeError, match=r"units\[0\]\.name"):
        snapshot.write("/nonexistent/never", bad)


_SIZES = st.sampled_from([0, 1, 200, LARGE_PAYLOAD, LARGE_PAYLOAD + 1, LARGE_PAYLOAD + 300])
_UNIT = st.tuples(
    st.text(max_size=20), st.text(max_size=40), _SIZES, st.integers(0, 255),
    st.sampled_from([None, b"\x18\x01", b"\xa2\x06\x02hi"]),  # unknown fields of the blob
)


@given(st.lists(_UNIT, max_size=5))
def test_state_units_parts_are_the_encoding_of_any_units(units: list[Any]) -> None:
    records = []
    for name, url, size, fill, unknown in units:
        blob = SavedStateBlob(type_url=url, value=bytes([fill]) * size)
        if unknown is not None:
            blob = SavedStateBlob.decode(bytes(blob) + unknown)
        records.append(SavedStateUnit(name=name, state=blob))
    value = SavedStateUnits(units=records)
    parts = encoded_units_parts(value, 100)
    large = any(len(u.state.value) > LARGE_PAYLOAD for u in records)
    unknowns = any(unknown is not None for *_, unknown in units)
    assert (parts is not None) == (large and not unknowns)
    if parts is not None:
        assert b"".join(parts) == bytes(value)
        emptied = encoded_units_parts(value, 100, emptied=True)
        assert emptied is not None
        decoded = SavedStateUnits.decode(emptied[0])
        assert [(u.name, u.state.type_url) for u in decoded.units] == [
            (u.name, u.state.type_url) for u in records]


def test_read_copies_nothing_but_the_value_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "r.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=os.urandom(BIG)))
    snapshot.read(path)
    used, blob = peak(lambda: snapshot.read(path))
    assert len(blob.value) == BIG and type(blob.value) is bytes
    assert used < BIG + (1 << 20)
    data = path.read_bytes()
    used, blob = peak(lambda: snapshot.unpack(data))
    assert used < BIG + (1 << 20)


class ShortReads(io.RawIOBase):
    """A file whose every read gives at most ``piece`` bytes, as a read of more than about
    2 GiB does on Linux."""

    def __init__(self, path: str | os.PathLike[str], piece: int) -> None:
        self.raw = io.FileIO(path, "rb")
        self.piece = piece

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self.raw.readinto(memoryview(buffer)[: self.piece])

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()
        super().close()


def test_short_reads_fill_one_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reads that each give a piece of the payload: the pieces were joined into the value, a
    # second copy of it. Now they fill the one ``bytes`` the value is, for read and read_state.
    path = tmp_path / "short.snapshot"
    value = os.urandom(BIG)
    snapshot.write(path, SavedStateBlob(type_url="x", value=value))
    state = Memory(generation=7, data=value, text="")
    state_path = tmp_path / "state.snapshot"
    snapshot.write(state_path, state)
    snapshot.read(path)
    snapshot.read_state(state_path, Memory)

    def short_open(file: Any, mode: str = "r", buffering: int = -1) -> ShortReads:
        assert (mode, buffering) == ("rb", 0)
        return ShortReads(file, BIG // 7)

    monkeypatch.setattr(snapshot, "open", short_open, raising=False)
    used, blob = peak(lambda: snapshot.read(path))
    assert type(blob.value) is bytes and blob.value == value
    assert used < BIG + (1 << 20)
    used, got = peak(lambda: snapshot.read_state(state_path, Memory))
    assert type(got.data) is bytes and got == state
    assert used < BIG + (1 << 20)


# -- the read-back check --------------------------------------------------------------------


def test_the_read_back_check_still_refuses_what_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "c.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"old"))
    large = b"m" * 200_000
    # Too large for max_size, known from the parts.
    with pytest.raises(snapshot.UnreadableState, match="max_size"):
        snapshot.write(path, Memory(generation=1, data=large, text=""), max_size=100_000)
    # Too deep: the encoder refuses it.
    deep: Chain = Chain()
    for _ in range(60):
        deep = Chain(next=deep)
    with pytest.raises(snapshot.UnreadableState, match="deeper"):
        snapshot.write(path, deep, max_depth=50)
    # A blob nested in a state with a large field: decoded, as restore would.
    holder = Holder(data=large, inner=SavedStateBlob(type_url=type_url_of(Chain),
                                                     value=chain_bytes(101)))
    with pytest.raises(snapshot.UnreadableState, match="deeper"):
        snapshot.write(path, holder)
    # Past the decode's memory budget (32 bytes per byte of max_size, plus 1 MiB): the state
    # is made of small messages that cost more than that to build.
    many = Many(items=[Empty() for _ in range(100_000)], data=large)
    size = len(SavedStateBlob.new(many).value) + 100
    with pytest.raises(snapshot.UnreadableState, match="max_memory"):
        snapshot.write(path, many, max_size=size)
    with pytest.raises(DecodeError, match="max_memory"):  # as a read would
        SavedStateBlob.new(many).parse(Many, max_size=size)
    assert snapshot.read(path).value == b"old"  # nothing was written
    assert [p.name for p in tmp_path.iterdir()] == ["c.snapshot"]


def test_the_read_back_check_accepts_what_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.snapshot"
    # A fixed-length field cannot be emptied in the check's stand-in: the whole is decoded.
    fixed = Fixed(data=b"f" * 100_000)
    snapshot.write(path, fixed)
    assert snapshot.read(path).parse(Fixed) == fixed
    holder = Holder(data=b"m" * 200_000,
                    inner=SavedStateBlob(type_url=type_url_of(Chain), value=chain_bytes(50)))
    snapshot.write(path, holder)
    assert snapshot.read(path).parse(Holder) == holder


# -- progress -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        assert self.calls, "never called"
        assert all(t == total for _, t in self.calls)
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones) and all(0 <= d <= total for d in dones)
        assert dones[-1] == total and dones.count(total) == 1


@pytest.mark.parametrize("state", [big_state(), Memory(generation=1, data=b"x", text="")],
                         ids=["large", "small"])
def test_progress_of_write_read_and_restore(tmp_path: Path, state: Memory) -> None:
    path = tmp_path / "p.snapshot"
    wrote = Recorder()
    size = snapshot.write(path, state, max_size=4 * BIG, progress=wrote)
    assert size == path.stat().st_size
    wrote.check(size)
    if len(state.data) > snapshot.CHUNK // 2:
        assert len(wrote.calls) > 2  # chunk by chunk
    read = Recorder()
    assert snapshot.read(path, max_size=4 * BIG, progress=read).parse(
        Memory, max_size=4 * BIG) == state
    read.check(size)

    from savestate import SaveRestore

    class Device(SaveRestore[Memory]):
        value: Memory | None = None

        def save(self) -> Memory:
            return state

        def restore(self, value: Memory) -> None:
            self.value = value

    device = Device()
    restored = Recorder()
    snapshot.write(path, device, max_size=4 * BIG)
    snapshot.restore(path, device, max_size=4 * BIG, progress=restored)
    restored.check(size)
    assert device.value == state


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_a_file_of_no_stated_size_is_read_to_its_end(tmp_path: Path) -> None:
    # /proc files state a size of 0 and hold text all the same: what they hold is not a
    # snapshot (it was refused as a truncated one, from its stated size). A file that is
    # empty is still truncated.
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(snapshot.BadMagic):
        snapshot.read("/proc/self/status")
    with pytest.raises(snapshot.BadMagic):
        snapshot.read_state("/proc/self/status", Memory)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(snapshot.Truncated, match="the file has 0"):
        snapshot.read(empty)
    with pytest.raises(snapshot.Truncated, match="the file has 0"):
        snapshot.read_state(empty, Memory)


def test_a_stream_that_is_no_snapshot_is_refused_by_its_first_bytes(tmp_path: Path) -> None:
    # A FIFO (or /dev/zero) holding more than max_size of something else is BadMagic from its
    # header, as a file is: it was read up to max_size first, then refused as TooLarge.
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c",
                               f"import contextlib\n"
                               f"with contextlib.suppress(BrokenPipeError):\n"
                               f"    open({str(fifo)!r}, 'wb').write(bytes(100_000))"])
    try:
        with pytest.raises(snapshot.BadMagic):
            snapshot.read(fifo, max_size=1000)
    finally:
        writer.wait()


def test_progress_of_a_fifo_read(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Memory(generation=1, data=b"fifo", text=""))
    data = path.read_bytes()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c",
                               f"open({str(fifo)!r}, 'wb').write({data!r})"])
    seen = Recorder()
    assert snapshot.read(fifo, progress=seen).parse(Memory).data == b"fifo"
    writer.wait()
    seen.check(len(data))


def test_a_failing_progress_callback_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"old"))

    def fail(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        snapshot.write(path, big_state(), max_size=4 * BIG, progress=fail)
    assert snapshot.read(path).value == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.snapshot"]


@pytest.mark.parametrize("state", [big_state(), Memory(generation=1, data=b"x", text="")],
                         ids=["large", "small"])
def test_a_progress_callback_failing_on_its_last_call_leaves_the_old_file(
    tmp_path: Path, state: Memory
) -> None:
    # The last call, (total, total), comes before the rename: an exception from it still
    # aborts the write, as the documentation promises.
    path = tmp_path / "f.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"old"))
    calls: list[tuple[int, int]] = []

    def fail_at_the_end(done: int, total: int) -> None:
        calls.append((done, total))
        if done == total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        snapshot.write(path, state, max_size=4 * BIG, progress=fail_at_the_end)
    assert calls[-1][0] == calls[-1][1]
    assert snapshot.read(path).value == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.snapshot"]


# -- the CLI's progress bar ----------------------------------------------------------------------


def _large_snapshot(tmp_path: Path) -> Path:
    from savestate.cli.progress import LARGE_INPUT

    path = tmp_path / "large.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"v" * LARGE_INPUT),
                   max_size=2 * LARGE_INPUT)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_the_cli_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    path = _large_snapshot(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "savestate", "show", str(path)],
                            stdout=subprocess.PIPE, stderr=slave, env=_env())
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the terminal's other end is closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out, _ = proc.communicate()
    assert proc.returncode == 0
    assert b"reading " + str(path).encode() in seen and b"100%" in seen and b"\r" in seen
    assert b"\x1b[K" in seen  # erased at the end
    assert b"state: x" in out and b"%" not in out


def test_the_cli_draws_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    path = _large_snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "savestate", "show", str(path)],
                          capture_output=True, env=_env())
    assert proc.returncode == 0 and proc.stderr == b""
    assert b"state: x" in proc.stdout


def test_the_bar_skips_small_inputs_and_redraws_only_on_change() -> None:
    import io

    from savestate.cli.progress import LARGE_INPUT, ProgressBar, progress_bar

    assert progress_bar(io.StringIO(), "x") is None  # not a terminal
    stream = io.StringIO()
    bar = ProgressBar(stream, "reading f")
    bar(10, 100)
    bar.close()
    assert stream.getvalue() == ""  # a small input: no bar
    for done in (0, 1, 2, LARGE_INPUT // 2, LARGE_INPUT):
        bar(done, LARGE_INPUT)
    assert stream.getvalue().count("\r") == 3  # 0 %, 50 %, 100 %
    bar.close()
    assert stream.getvalue().endswith("\r\x1b[K")
