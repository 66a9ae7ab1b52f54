"""Snapshot files: round trip, every corruption, truncation at every offset, crash mid-write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from savestate import (
    AsyncSaveRestore,
    RestoreError,
    SavedStateBlob,
    SaveRestore,
    field,
    savedstate,
    snapshot,
    u32,
)
from savestate.state.snapshot import (
    HEADER_SIZE,
    BadMagic,
    ChecksumMismatch,
    SnapshotError,
    TrailingData,
    Truncated,
    UnsupportedVersion,
)


@savedstate(package="test.snapshot")
class Small:
    counter: u32 = field(1)
    note: str = field(2)


def _write(tmp_path: Path, value: int = 7) -> Path:
    path = tmp_path / "state.snap"
    snapshot.write(path, Small(counter=value, note="hello"))
    return path


def test_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path)
    blob = snapshot.read(path)
    assert blob.parse(Small) == Small(counter=7, note="hello")
    assert path.read_bytes()[:8] == snapshot.MAGIC
    # A blob and a SaveRestore object are accepted too; the file is replaced.
    snapshot.write(path, SavedStateBlob.new(Small(counter=8, note="")))
    assert snapshot.read(path).parse(Small) == Small(counter=8, note="")
    assert [p.name for p in tmp_path.iterdir()] == ["state.snap"]


def test_machine_round_trip_through_a_file(tmp_path: Path) -> None:
    from examples.vm import Machine

    machine = Machine()
    machine.run(300)
    path = tmp_path / "vm.snap"
    snapshot.write(path, machine)
    fresh = Machine()
    snapshot.restore(path, fresh)
    assert fresh.save() == machine.save()


def _expect(data: bytes, kind: type[SnapshotError]) -> SnapshotError:
    with pytest.raises(kind) as info:
        snapshot.unpack(data, "f")
    assert isinstance(info.value, RestoreError)
    return info.value


def test_each_header_and_payload_byte_flip_is_reported(tmp_path: Path) -> None:
    good = _write(tmp_path).read_bytes()
    for offset in range(len(good)):
        bad = bytearray(good)
        bad[offset] ^= 0x40
        if offset < 8:
            err = _expect(bytes(bad), BadMagic)
            assert "bad magic" in str(err)
        elif offset < 10:
            err = _expect(bytes(bad), UnsupportedVersion)
            assert "unsupported snapshot format version" in str(err)
        elif offset < HEADER_SIZE:  # reserved, length, digest, header CRC
            err = _expect(bytes(bad), ChecksumMismatch)
            assert "checksum mismatch in the header" in str(err)
        else:
            err = _expect(bytes(bad), ChecksumMismatch)
            assert "checksum mismatch in the payload" in str(err)


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    good = _write(tmp_path).read_bytes()
    path = tmp_path / "cut.snap"
    for size in range(len(good)):
        path.write_bytes(good[:size])
        with pytest.raises(Truncated) as info:
            snapshot.read(path)
        assert "truncated" in str(info.value) and str(path) in str(info.value)


def test_trailing_bytes(tmp_path: Path) -> None:
    good = _write(tmp_path).read_bytes()
    err = _expect(good + b"\x00", TrailingData)
    assert "1 unexpected bytes" in str(err)


def test_foreign_files(tmp_path: Path) -> None:
    _expect(b"\x89PNG\r\n\x1a\n" + bytes(100), BadMagic)
    _expect(b"hello world, this is a text file that is not a snapshot\n", BadMagic)
    _expect(b"\x00", BadMagic)


def test_future_version(tmp_path: Path) -> None:
    good = bytearray(_write(tmp_path).read_bytes())
    good[8:10] = (2).to_bytes(2, "little")
    err = _expect(bytes(good), UnsupportedVersion)
    assert "version 2" in str(err)


def test_intact_container_with_a_bad_payload(tmp_path: Path) -> None:
    blob = SavedStateBlob(type_url="x", value=b"")
    payload = b"\x0a\x05ab"  # a string field longer than the payload
    fields = bytearray(snapshot.pack(blob)[: HEADER_SIZE - 4])
    import hashlib
    import struct
    import zlib

    fields[12:20] = struct.pack("<Q", len(payload))
    fields[20:52] = hashlib.sha256(payload).digest()
    data = bytes(fields) + struct.pack("<I", zlib.crc32(bytes(fields))) + payload
    with pytest.raises(RestoreError.ProtobufDecode):
        snapshot.unpack(data)


def test_crash_before_rename_leaves_the_old_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, 1)
    old = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated power loss before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated power loss"):
        snapshot.write(path, Small(counter=2, note="new"))
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert snapshot.read(path).parse(Small) == Small(counter=1, note="hello")
    assert [p.name for p in tmp_path.iterdir()] == ["state.snap"]  # the temporary is gone


def test_crash_during_fsync_leaves_the_old_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, 1)
    old = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("simulated I/O error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        snapshot.write(path, Small(counter=2, note="new"))
    monkeypatch.undo()
    assert path.read_bytes() == old


def test_a_leftover_temporary_file_does_not_matter(tmp_path: Path) -> None:
    path = _write(tmp_path, 1)
    (tmp_path / ".state.snap.abc.tmp").write_bytes(b"half written")
    assert snapshot.read(path).parse(Small).counter == 1
    snapshot.write(path, Small(counter=3, note=""))
    assert snapshot.read(path).parse(Small).counter == 3


def test_a_failed_write_names_the_path_given_not_the_temporary_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "x.snap"
    with pytest.raises(FileNotFoundError) as info:
        snapshot.write(missing, Small(counter=1, note=""))
    assert info.value.filename == str(missing)
    assert str(info.value) == f"[Errno 2] No such file or directory: '{missing}'"
    (tmp_path / "dir.snap").mkdir()  # the rename over it fails
    with pytest.raises(IsADirectoryError) as dinfo:
        snapshot.write(tmp_path / "dir.snap", Small(counter=1, note=""))
    assert dinfo.value.filename == str(tmp_path / "dir.snap")
    assert ".tmp" not in str(dinfo.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.snap"]


class SmallDev(SaveRestore[Small]):
    def __init__(self) -> None:
        self.counter = 0

    def save(self) -> Small:
        return Small(counter=self.counter, note="")

    def restore(self, state: Small) -> None:
        self.counter = state.counter


class AsyncSmallDev(AsyncSaveRestore[Small]):
    def __init__(self) -> None:
        self.counter = 0

    async def save(self) -> Small:
        return Small(counter=self.counter, note="")

    async def restore(self, state: Small) -> None:
        self.counter = state.counter


def test_restore_refuses_what_it_cannot_restore(tmp_path: Path) -> None:
    path = _write(tmp_path)
    dev = SmallDev()
    snapshot.restore(path, dev)
    assert dev.counter == 7
    # An async device: its restore made a coroutine that nobody ran, and restore returned
    # as if the device had been restored.
    adev = AsyncSmallDev()
    with pytest.raises(TypeError) as info:
        snapshot.restore(path, adev)  # type: ignore[arg-type]
    assert str(info.value) == (
        "snapshot.restore() cannot restore AsyncSmallDev, an async device: use "
        "`await restore_blob_async(device, snapshot.read(path))`"
    )
    assert adev.counter == 0
    # A state given in place of its device: a TypeError, as restore_blob gives, not a
    # RestoreError.Other wrapping an AttributeError once the file was read.
    with pytest.raises(TypeError) as info:
        snapshot.restore(path, Small(counter=1, note=""))  # type: ignore[arg-type]
    assert str(info.value) == (
        "snapshot.restore() takes a device with restore() (a SaveRestore), got Small, a saved "
        "state, not the device that saves and restores it"
    )


def test_write_rejects_other_values(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        snapshot.write(tmp_path / "x", object())
    assert not list(tmp_path.iterdir())
