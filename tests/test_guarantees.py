"""The guarantees of the restore and read paths (issue 12): limits reach every decode, rollback
is from encoded backups, snapshot files are written safely, the command line reads with bounds.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from savestate import (
    DecodeError,
    EncodeError,
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SaveRestore,
    StateUnits,
    field,
    restore_blob,
    save_blob,
    savedstate,
    snapshot,
    u32,
)
from savestate.cli import main
from savestate.cli.inputs import InputTooLarge, parse_size, read_input
from savestate.state.blob import type_url_of
from savestate.state.units import restore_children, save_children

ROOT = Path(__file__).parent.parent


@savedstate
class Chain(Protobuf, package="t.guarantees"):
    """A message holding itself: ``depth`` levels make a value ``depth`` deep."""

    value: u32 = field(1, default=0)
    next: Chain | None = field(2, default=None)


def chain(depth: int) -> Chain:
    node = Chain(value=depth)
    for i in range(depth - 1):
        node = Chain(value=i, next=node)
    return node


def chain_bytes(depth: int) -> bytes:
    """The encoding of a ``depth``-deep ``Chain``, built by hand (the encoder refuses to write
    one deeper than its limit)."""
    data = b""
    for _ in range(depth - 1):
        data = b"\x12" + _varint(len(data)) + data
    return data


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@savedstate
class Counter(Protobuf, package="t.guarantees"):
    values: list[u32] = field(1, default_factory=list)


class ChainDevice(SaveRestore[Chain]):
    def __init__(self, depth: int = 1) -> None:
        self.state = chain(depth)

    def save(self) -> Chain:
        return self.state

    def restore(self, state: Chain) -> None:
        self.state = state


class MutatingDevice(SaveRestore[Counter]):
    """Saves its live list (no copy) and restores by mutating it in place: a backup that is the
    object ``save`` returned would be corrupted by the very restore it is meant to undo."""

    def __init__(self, values: list[int]) -> None:
        self.values = values

    def save(self) -> Counter:
        return Counter(values=self.values)  # the live list itself

    def restore(self, state: Counter) -> None:
        self.values.clear()
        self.values.extend(state.values)


class FailingDevice(SaveRestore[Counter]):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.values: list[int] = [5]

    def save(self) -> Counter:
        return Counter(values=list(self.values))

    def restore(self, state: Counter) -> None:
        self.values = list(state.values)
        raise self.exc


# -- max_depth and max_size reach every restore and read entry point ---------------------------


def test_restore_blob_takes_max_depth_and_max_size() -> None:
    blob = save_blob(ChainDevice(30))
    device = ChainDevice()
    with pytest.raises(RestoreError.ProtobufDecode, match="deeper"):
        restore_blob(device, blob, max_depth=20)
    with pytest.raises(RestoreError.ProtobufDecode, match="max_size"):
        restore_blob(device, blob, max_size=len(blob.value) - 1)
    restore_blob(device, blob, max_depth=30, max_size=len(blob.value))
    assert device.state == chain(30)


def test_state_units_restore_passes_its_limits_to_each_unit() -> None:
    source = StateUnits({"a": ChainDevice(30)})
    state = source.save()
    target = StateUnits({"a": ChainDevice()})
    with pytest.raises(RestoreError.ChildError, match="deeper"):
        target.restore(state, max_depth=20)
    with pytest.raises(RestoreError.ChildError, match="max_size"):
        target.restore(state, max_size=10)
    target.restore(state, max_depth=30)
    assert target.save() == state


def test_nested_restores_inherit_the_limits_of_the_outer_one() -> None:
    """A device restoring its children from inside ``restore`` decodes them under the limits
    its caller gave, without being handed them."""

    @savedstate
    class Parent(Protobuf, package="t.guarantees.nested"):
        children: list[tuple[str, SavedStateBlob]] = field(1, default_factory=list)

    class ParentDevice(SaveRestore[Parent]):
        def __init__(self) -> None:
            self.children = {"c": ChainDevice(30)}

        def save(self) -> Parent:
            return Parent(children=save_children(self.children))

        def restore(self, state: Parent) -> None:
            restore_children(self.children, state.children)

    blob = save_blob(ParentDevice())
    with pytest.raises(RestoreError, match="deeper"):
        restore_blob(ParentDevice(), blob, max_depth=20)
    restore_blob(ParentDevice(), blob)  # the default (100) holds 30 levels


def test_snapshot_read_and_restore_take_max_depth(tmp_path: Path) -> None:
    path = tmp_path / "deep.snapshot"
    snapshot.write(path, ChainDevice(30))
    assert snapshot.read(path, max_depth=30).parse(Chain, max_depth=30) == chain(30)
    with pytest.raises(RestoreError.ProtobufDecode, match="deeper"):
        snapshot.restore(path, ChainDevice(), max_depth=20)
    device = ChainDevice()
    snapshot.restore(path, device, max_depth=30)
    assert device.state == chain(30)
    with pytest.raises(snapshot.TooLarge):
        snapshot.restore(path, device, max_size=10)


def test_limits_are_checked() -> None:
    for bad in ({"max_depth": 0}, {"max_depth": 10_000}, {"max_size": -1}, {"max_size": 1.5}):
        with pytest.raises(ValueError):
            restore_blob(ChainDevice(), save_blob(ChainDevice()), **bad)  # type: ignore[arg-type]


def test_write_refuses_a_state_its_read_could_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"old"))
    with pytest.raises(snapshot.UnreadableState, match="deeper") as info:
        snapshot.write(path, ChainDevice(101))
    assert isinstance(info.value.__cause__, (EncodeError, DecodeError))  # with its path
    assert snapshot.read(path).value == b"old"  # nothing was written
    with pytest.raises(snapshot.UnreadableState, match="deeper"):
        snapshot.write(path, ChainDevice(40), max_depth=30)
    with pytest.raises(snapshot.UnreadableState, match="max_size"):
        snapshot.write(path, Counter(values=list(range(1000))), max_size=100)
    # Written with wider limits, it is read back with the same ones.
    snapshot.write(path, ChainDevice(150), max_depth=150)
    device = ChainDevice()
    snapshot.restore(path, device, max_depth=150)
    assert device.state == chain(150)


def test_write_refuses_a_blob_nested_too_deep_inside_the_state(tmp_path: Path) -> None:
    """The depth check reaches blobs inside the state, as ``restore`` does."""

    @savedstate
    class Holder(Protobuf, package="t.guarantees.holder"):
        inner: SavedStateBlob = field(1, default_factory=SavedStateBlob)

    value = Holder(inner=SavedStateBlob(type_url=type_url_of(Chain), value=chain_bytes(101)))
    with pytest.raises(snapshot.UnreadableState, match="deeper"):
        snapshot.write(tmp_path / "h.snapshot", value)


# -- rollback from encoded backups, also on BaseException -------------------------------------


def test_rollback_survives_a_restore_that_mutates_what_save_returned() -> None:
    live = [1, 2, 3]
    units = StateUnits({"m": MutatingDevice(live), "f": FailingDevice(RestoreError.Other("no"))})
    incoming = StateUnits({"m": MutatingDevice([7, 8]), "f": FailingDevice(ValueError())}).save()
    with pytest.raises(RestoreError.ChildError, match="f"):
        units.restore(incoming)
    assert live == [1, 2, 3]
    assert units["f"].values == [5]  # type: ignore[attr-defined]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_rollback_runs_on_base_exceptions_then_re_raises(interrupt: type) -> None:
    live = [1, 2, 3]
    failing = FailingDevice(interrupt())
    units = StateUnits({"m": MutatingDevice(live), "f": failing})
    incoming = StateUnits({"m": MutatingDevice([7, 8]), "f": FailingDevice(ValueError())})
    with pytest.raises(interrupt):
        units.restore(incoming.save())
    assert live == [1, 2, 3]
    assert failing.values == [5]


# -- snapshot files: bounded reads -------------------------------------------------------------


def test_read_with_a_huge_max_size_allocates_nothing_for_it(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Counter(values=[1, 2, 3]))
    assert snapshot.read(path, max_size=1 << 40).parse(Counter) == Counter(values=[1, 2, 3])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_read_from_a_fifo_stops_past_max_size(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sent: list[int] = []

    # A snapshot's header, then more than it states: read on to the limit, not to the end
    # (bytes that are no header are refused at once: see test_snapshot_io).
    header = snapshot.pack(SavedStateBlob(type_url="type.googleapis.com/x.Y"))

    def feed() -> None:
        try:
            with open(fifo, "wb") as w:
                w.write(header)
                for _ in range(64):  # 64 MiB, far more than the limit
                    w.write(b"\0" * (1 << 20))
                    sent.append(1)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    with pytest.raises(snapshot.TooLarge):
        snapshot.read(fifo, max_size=1 << 20)
    writer.join()
    assert len(sent) < 64  # the reader stopped; the writer saw the pipe close


def test_read_bounded_reads_at_most_limit_plus_one() -> None:
    import io

    assert snapshot.read_bounded(io.BytesIO(b"x" * 100), 10) == b"x" * 11
    assert snapshot.read_bounded(io.BytesIO(b"x" * 5), 10) == b"x" * 5
    assert len(snapshot.read_bounded(io.BytesIO(b"x" * (3 << 20)), 1 << 40)) == 3 << 20


# -- snapshot files: writes --------------------------------------------------------------------


def _killed_writer_leftover(path: Path) -> Path:
    """Run a writer in a child process that is SIGKILLed while its data is being fsynced;
    returns the temporary file it left behind."""
    code = (
        "import os, signal, sys\n"
        "from savestate import SavedStateBlob, snapshot\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"snapshot.write({str(path)!r}, SavedStateBlob(type_url='x', value=b'n' * 1000))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False)
    assert proc.returncode == -9
    (leftover,) = path.parent.glob(f".{path.name}.*.tmp")
    return leftover


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks and signals")
def test_write_removes_temporary_files_of_killed_writers(tmp_path: Path) -> None:
    path = tmp_path / "vm.snapshot"
    leftover = _killed_writer_leftover(path)
    unrelated = tmp_path / ".vm.snapshot.notours.tmp"  # not the naming of write: kept
    unrelated.write_bytes(b"keep")
    # A fresh leftover may belong to a writer that has not locked it yet: kept for a while.
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"1"))
    assert leftover.exists()
    old = time.time() - snapshot.STALE_AFTER_SECONDS - 1
    os.utime(leftover, (old, old))
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"2"))
    assert not leftover.exists()
    assert unrelated.exists()
    assert snapshot.read(path).value == b"2"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX locks")
def test_a_live_writers_temporary_file_is_never_removed(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "vm.snapshot"
    live = tmp_path / ".vm.snapshot.abcd1234.tmp"
    with open(live, "wb") as f:
        # Another process's lock (flock locks of one open file description are shared by
        # this process, so take it in a child that holds it while the write runs).
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import fcntl, sys, time; f = open(sys.argv[1], 'rb'); "
             "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)",
             str(live)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            old = time.time() - snapshot.STALE_AFTER_SECONDS - 1
            os.utime(live, (old, old))
            snapshot.write(path, SavedStateBlob(type_url="x", value=b"1"))
            assert live.exists()
        finally:
            holder.kill()
            holder.wait()
        del f, fcntl


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "vm.snapshot"
    snapshot.write(target, SavedStateBlob(type_url="x", value=b"old"))
    link = tmp_path / "current.snapshot"
    link.symlink_to(target)
    snapshot.write(link, SavedStateBlob(type_url="x", value=b"new"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert snapshot.read(target).value == b"new"
    assert not list(tmp_path.glob(".*.tmp")) and not list(real_dir.glob(".*.tmp"))
    # A dangling link: the file is created where it points.
    dangling = tmp_path / "next.snapshot"
    dangling.symlink_to(real_dir / "later.snapshot")
    snapshot.write(dangling, SavedStateBlob(type_url="x", value=b"first"))
    assert dangling.is_symlink() and snapshot.read(real_dir / "later.snapshot").value == b"first"


def test_a_failed_directory_fsync_says_the_new_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vm.snapshot"
    snapshot.write(path, SavedStateBlob(type_url="x", value=b"old"))
    real_open = os.open

    def failing_open(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & getattr(os, "O_DIRECTORY", 0):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(snapshot.DurabilityUnconfirmed, match=r"in place.*durability") as info:
        snapshot.write(path, SavedStateBlob(type_url="x", value=b"new"))
    monkeypatch.undo()
    assert isinstance(info.value, OSError) and info.value.errno == errno.EIO
    assert isinstance(info.value.__cause__, OSError)
    assert snapshot.read(path).value == b"new"


# -- the command line reads with bounds --------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("1048576") == 1 << 20
    assert parse_size("512K") == 512 << 10
    assert parse_size("64M") == parse_size("64MiB") == 64 << 20
    assert parse_size("1g") == 1 << 30
    with pytest.raises(ValueError):
        parse_size("lots")


def _cli(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "savestate", *argv], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=120, check=False)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_decode_raw_dev_zero_ends_with_a_clear_error() -> None:
    proc = _cli("decode", "--raw", "/dev/zero", "--max-size", "1M")
    assert proc.returncode == 1
    assert b"--max-size" in proc.stderr and b"Traceback" not in proc.stderr


def test_every_reading_command_refuses_a_too_large_file_before_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.snapshot"
    snapshot.write(big, SavedStateBlob(type_url="x", value=b"v" * 5000))
    json_file = tmp_path / "state.json"
    json_file.write_text('{"values": [' + ",".join(["1"] * 3000) + "]}")
    reads: list[Any] = []
    real_read = snapshot.read_bounded

    def spy(stream: Any, limit: int) -> bytes:
        reads.append(limit)
        return real_read(stream, limit)

    monkeypatch.setattr("savestate.cli.inputs.read_bounded", spy)
    for argv in (["decode", str(big)], ["decode", "--raw", str(big)], ["show", str(big)],
                 ["diff", str(big), str(big)],
                 ["encode", "--type", "t.guarantees.Counter", "-m", "tests.test_guarantees",
                  str(json_file)]):
        # diff's trouble is 2, as diff(1)'s: 1 would say the states differ
        assert main([*argv, "--max-size", "1K"]) == (2 if argv[0] == "diff" else 1), argv
        err = capsys.readouterr().err
        assert "--max-size" in err and "bytes" in err, (argv, err)
    assert reads == []  # refused from the file's size: nothing was read


def test_standard_input_is_read_with_a_bound() -> None:
    proc = _cli("decode", "--raw", "-", "--max-size", "100", stdin=b"\x08\x01" * 1000)
    assert proc.returncode == 1 and b"standard input" in proc.stderr
    proc = _cli("decode", "--raw", "-", "--max-size", "100", stdin=b"\x08\x01" * 10)
    assert proc.returncode == 0, proc.stderr


def test_a_larger_max_size_reads_a_larger_input(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    snapshot.write(path, Counter(values=list(range(20_000))))
    assert main(["show", str(path), "-m", "tests.test_guarantees", "--max-size", "1K"]) == 1
    assert main(["show", str(path), "-m", "tests.test_guarantees", "--max-size", "1G"]) == 0


def test_read_input_bounds_a_snapshot_by_its_state(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * (100 + snapshot.HEADER_SIZE))
    assert len(read_input(str(path), 100, snapshot_header=True)) == 100 + snapshot.HEADER_SIZE
    with pytest.raises(InputTooLarge):
        read_input(str(path), 100)


# -- the example machine -----------------------------------------------------------------------


def test_example_machine_with_zero_steps(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.vm", "--steps", "0", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "state equal: True" in proc.stdout
