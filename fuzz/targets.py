"""Fuzz targets: each takes one byte string and either returns or raises ``AssertionError``.

The contract checked on every input (see "Decoding" in the design notes):

- the only exception that may escape the library is one of its own error family
  (``SavestateError``: ``DecodeError``, ``RestoreError`` and their kinds); anything else
  (``IndexError``, ``RecursionError``, ``MemoryError``, ...) is a finding;
- whatever decodes re-encodes, and the re-encoding decodes to an equal value (compared by
  ``==``, or by ``repr`` and bytes when a float is NaN) with the same encoding;
- the compiled fast path and the interpreting codec agree on what they accept;
- restoring is all or nothing: after a failed restore every unit saves exactly what it saved
  before.

The targets are plain functions so that the fuzz driver (``python -m fuzz.run``, atheris), the
bounded replay in the test suite (``tests/test_fuzz_bounded.py``) and the regression tests run
the same checks. A target's first byte often selects among several classes (``_pick``).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

import savestate
from savestate import SavedStateBlob, SavestateError, snapshot
from savestate.codec import interp
from savestate.codec.jsonmap import JsonError
from savestate.model.registry import root_for_url
from savestate.state.blob import type_url_of
from savestate.state.saverestore import restore_blob
from savestate.state.units import SavedStateUnits

__all__ = ["ROOTS", "TARGETS", "Finding", "check_round_trip", "roots"]


class Finding(AssertionError):
    """An input broke the contract; the message says how."""


def roots() -> list[type]:
    """The example device roots (and the library's own), in a stable order."""
    import examples.quickstart
    import examples.vm.machine  # registers every device root of the example VM

    del examples
    return [
        r for r in savestate.roots()
        if r.__module__.startswith(("examples.", "savestate."))
    ]


ROOTS: list[type] = roots()


def _pick(data: bytes, choices: list[Any]) -> tuple[Any, bytes]:
    if not data:
        return choices[0], b""
    return choices[data[0] % len(choices)], data[1:]


def _same(a: Any, b: Any) -> bool:
    # NaN != NaN: fall back to the text of the values (``nan`` prints the same).
    return bool(a == b) or repr(a) == repr(b)


def check_round_trip(cls: type, value: Any, data: bytes) -> None:
    """``value`` was decoded from ``data`` as ``cls``: it must re-encode and decode equal, and
    the interpreting codec must accept ``data`` and give the same value."""
    decode: Any = cls.decode  # type: ignore[attr-defined]
    try:
        encoded = value.encode()
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: decoded value does not re-encode: {exc!r}") from exc
    try:
        again = decode(encoded)
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: re-encoding does not decode: {exc!r}") from exc
    if not _same(again, value):
        raise Finding(f"{cls.__name__}: round trip changed the value: {value!r} -> {again!r}")
    if again.encode() != encoded:
        raise Finding(f"{cls.__name__}: re-encoding is not stable")
    try:
        slow = interp.decode(cls, data, 100)
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: fast path accepted what the interpreter rejects: "
                      f"{exc!r}") from exc
    if not _same(slow, value):
        raise Finding(f"{cls.__name__}: fast path and interpreter differ: {value!r} / {slow!r}")


def _decode(cls: type, data: bytes) -> Any:
    try:
        value = cls.decode(data)  # type: ignore[attr-defined]
    except SavestateError:
        return None
    check_round_trip(cls, value, data)
    return value


# -- targets --------------------------------------------------------------------------------


def decode_root(data: bytes) -> None:
    """Decode the rest of the input as the example root its first byte selects."""
    cls, payload = _pick(data, ROOTS)
    _decode(cls, payload)


def blob_parse(data: bytes) -> None:
    """Decode a ``SavedStateBlob`` and parse it, both as the root its type URL names and as the
    root the first byte selects (a mismatch must be ``BlobTypeMismatch``); blobs of blobs are
    unwrapped (iteratively) up to 64 levels."""
    cls, payload = _pick(data, ROOTS)
    blob = _decode(SavedStateBlob, payload)
    for _ in range(64):
        if blob is None:
            return
        try:
            value = blob.parse(cls)
        except SavestateError:
            pass
        else:
            check_round_trip(cls, value, blob.value)
        named = root_for_url(blob.type_url)
        if named is None:
            return
        try:
            value = blob.parse(named)
        except SavestateError:
            return
        check_round_trip(named, value, blob.value)
        blob = value if isinstance(value, SavedStateBlob) else None


_machine: Any = None
_baseline: Any = None


def _the_machine() -> tuple[Any, Any]:
    """The example machine and the state it is put back into before every input (so that an
    input's outcome never depends on the inputs before it)."""
    global _machine, _baseline
    if _machine is None:
        from examples.vm.machine import Machine

        _machine = Machine()
        _machine.run(300)
        _baseline = _machine.save()
    return _machine, _baseline


def restore_units(data: bytes) -> None:
    """Restore the example machine (its state units, chipset children as named blobs) from the
    input as a ``SavedStateUnits`` blob, starting each time from the same consistent state; a
    failure must leave every unit as it was."""
    machine, baseline = _the_machine()
    machine.restore(baseline)
    blob = SavedStateBlob(type_url=type_url_of(SavedStateUnits), value=data)
    try:
        restore_blob(machine, blob)
    except SavestateError as exc:
        if machine.save() != baseline:
            raise Finding(f"a failed restore changed the machine ({exc!r})") from exc
        return
    state = machine.save()
    try:
        SavedStateUnits.decode(bytes(state))
    except SavestateError as exc:
        raise Finding(f"the restored machine saves an undecodable state: {exc!r}") from exc


_HEADER = struct.Struct("<8sHHQ32s")


def _fix_checksums(data: bytes) -> bytes:
    """Make the header's checksums right for whatever the rest holds (so that mutations reach
    the payload decoder instead of dying on SHA-256)."""
    if len(data) < snapshot.HEADER_SIZE:
        return data
    magic, version, reserved, _length, _digest = _HEADER.unpack_from(data)
    payload = data[snapshot.HEADER_SIZE:]
    fields = _HEADER.pack(magic, version, reserved, len(payload),
                          hashlib.sha256(payload).digest())
    return fields + struct.pack("<I", zlib.crc32(fields)) + payload


_snapshot_dir: str | None = None


def read_snapshot(data: bytes) -> None:
    """Read the input as a snapshot file (``snapshot.read`` from a real file). With the low bit
    of the first byte set, the header's length and checksums are fixed up first."""
    global _snapshot_dir
    if not data:
        return
    body = _fix_checksums(data[1:]) if data[0] & 1 else data[1:]
    if _snapshot_dir is None:
        _snapshot_dir = tempfile.mkdtemp(prefix="savestate-fuzz-")
    path = os.path.join(_snapshot_dir, "input.snapshot")
    with open(path, "wb") as f:
        f.write(body)
    try:
        blob = snapshot.read(path)
    except SavestateError:
        return
    check_round_trip(SavedStateBlob, blob, body[snapshot.HEADER_SIZE:])
    # (The payload may be a non-canonical encoding, so compare values, not bytes.)
    try:
        again = snapshot.unpack(snapshot.pack(blob))
    except SavestateError as exc:
        raise Finding(f"a snapshot that reads does not pack and unpack: {exc!r}") from exc
    if again != blob:
        raise Finding("a snapshot that reads packs and unpacks to a different blob")
    named = root_for_url(blob.type_url)
    if named is not None:
        try:
            parsed: Any = blob.parse(named)
        except SavestateError:
            return
        check_round_trip(named, parsed, blob.value)


def json_to(data: bytes) -> None:
    """Decode the rest of the input as the root the first byte selects, print it as proto3
    JSON and parse that back: the JSON mapping must give the same value (or refuse with the
    library's error, e.g. blobs nested past the depth limit)."""
    cls, payload = _pick(data, ROOTS)
    value = _decode(cls, payload)
    if value is None:
        return
    try:
        text = value.to_json()
    except SavestateError:
        return
    try:
        again = cls.from_json(text)
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: to_json output does not parse back: {exc!r}") from exc
    if not _same(again, value):
        raise Finding(f"{cls.__name__}: JSON round trip changed the value: {value!r} -> "
                      f"{again!r}")


def json_from(data: bytes) -> None:
    """Parse the rest of the input as proto3 JSON text for the root the first byte selects:
    only ``JsonError`` may come out; what parses must encode, decode equal, and print back to
    JSON that parses to the same value."""
    cls, text = _pick(data, ROOTS)
    try:
        value = cls.from_json(text)  # type: ignore[attr-defined]
    except JsonError:
        return
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: from_json raised {type(exc).__name__}, not JsonError: "
                      f"{exc!r}") from exc
    try:
        encoded = value.encode()
    except SavestateError:
        return  # a value JSON can express but the wire cannot (too deep to encode): refused
    try:
        decoded = cls.decode(encoded)  # type: ignore[attr-defined]
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: a value parsed from JSON encodes to bytes that do not "
                      f"decode: {exc!r}") from exc
    if not _same(decoded, value):
        raise Finding(f"{cls.__name__}: JSON value changed through the wire: {value!r} -> "
                      f"{decoded!r}")
    try:
        again = cls.from_json(value.to_json())  # type: ignore[attr-defined]
    except SavestateError as exc:
        raise Finding(f"{cls.__name__}: a parsed value does not print and parse back: "
                      f"{exc!r}") from exc
    if not _same(again, value):
        raise Finding(f"{cls.__name__}: JSON printed and parsed changed the value")


_cli_dir: str | None = None


def cli_read(data: bytes) -> None:
    """The command line's input path on the input: the bounded reader (from a file, standard
    input or a FIFO, with a ``--max-size`` taken from the first byte) must return the input or
    refuse it as too large, and ``decode --raw``, ``decode`` and ``show`` must exit 0 or 1 with
    a one-line error, never with an exception."""
    global _cli_dir
    import contextlib
    import io
    import sys
    import threading

    from savestate.cli import main
    from savestate.cli.inputs import InputTooLarge, read_input

    if len(data) < 2:
        return
    mode, max_size, body = data[0] % 3, data[1] * 64, data[2:]
    if _cli_dir is None:
        _cli_dir = tempfile.mkdtemp(prefix="savestate-fuzz-cli-")
    path = os.path.join(_cli_dir, "input")
    with open(path, "wb") as f:
        f.write(body)
    fits = len(body) <= max_size + snapshot.HEADER_SIZE
    writer: threading.Thread | None = None
    stdin = sys.stdin
    spec = path
    if mode == 1:
        sys.stdin = io.TextIOWrapper(io.BytesIO(body))
        spec = "-"
    elif mode == 2:
        fifo = os.path.join(_cli_dir, "fifo")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fifo)
        os.mkfifo(fifo)

        def feed() -> None:
            with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as w:
                w.write(body)

        writer = threading.Thread(target=feed)
        writer.start()
        spec = fifo
    try:
        try:
            got = read_input(spec, max_size, snapshot_header=True)
        except InputTooLarge:
            if fits:
                raise Finding(f"an input of {len(body)} bytes was refused under "
                              f"max_size {max_size}") from None
        else:
            if not fits or got != body:
                raise Finding(f"the reader returned {len(got)} bytes of a {len(body)}-byte "
                              f"input (max_size {max_size})")
    finally:
        sys.stdin = stdin
        if writer is not None:
            writer.join()
    if data[0] & 0b1100:
        return  # three inputs in four test the reader only: building the parser is slow
    argv = (["decode", "--raw", path], ["decode", "--raw", "--json", path],
            ["decode", path], ["show", path])[data[0] >> 4 & 3]
    # (text streams over bytes: a command may write bytes to ``sys.stdout.buffer``)
    out, err = io.TextIOWrapper(io.BytesIO()), io.TextIOWrapper(io.BytesIO())
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([*argv, "--max-size", str(max_size)])
        except SystemExit as exc:  # argparse: never expected with these arguments
            raise Finding(f"{argv}: exited through SystemExit({exc.code})") from exc
    if status not in (0, 1, 2):
        raise Finding(f"{argv}: exit status {status}")
    err.flush()
    message = err.buffer.getvalue().decode(errors="replace")  # type: ignore[attr-defined]
    if status and "(run with --debug for the traceback)" in message:
        raise Finding(f"{argv}: an unexpected exception: {message[-300:]}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode_root": decode_root,
    "blob_parse": blob_parse,
    "restore_units": restore_units,
    "read_snapshot": read_snapshot,
    "json_to": json_to,
    "json_from": json_from,
    "cli_read": cli_read,
}


def _add_raw_target() -> None:
    """The schema-less raw decoder (``savestate.codec.raw``), when this version has one."""
    try:
        import savestate.codec.raw as raw  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    decode_raw = getattr(raw, "decode", None) or getattr(raw, "decode_raw", None)
    if decode_raw is None:
        return

    def raw_decode(data: bytes) -> None:
        """Split the input into records without a schema, then print them as text and JSON."""
        try:
            fields = decode_raw(data)
        except SavestateError:
            return
        for show in ("format_raw", "raw_to_json"):
            function = getattr(raw, show, None)
            if function is not None:
                function(fields)

    TARGETS["raw_decode"] = raw_decode


_add_raw_target()


def run_one(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; anything but a clean return or a library error raised
    inside it is turned into a ``Finding`` naming the exception."""
    try:
        TARGETS[name](data)
    except Finding:
        raise
    except SavestateError as exc:
        raise Finding(f"{name}: a library error escaped the target's own handling: {exc!r}") \
            from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise Finding(f"{name}: {type(exc).__name__} escaped: {exc!r}") from exc
