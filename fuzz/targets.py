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


TARGETS: dict[str, Callable[[bytes], None]] = {
    "decode_root": decode_root,
    "blob_parse": blob_parse,
    "restore_units": restore_units,
    "read_snapshot": read_snapshot,
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
