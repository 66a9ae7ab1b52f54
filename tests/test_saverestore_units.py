"""State units and the example machine: round trips, differing device sets, all-or-nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from examples.vm import Machine
from examples.vm import pic as pic_mod
from examples.vm import pit as pit_mod
from examples.vm import storvsp as storvsp_mod
from examples.vm.ioapic import IoApicDevice
from examples.vm.rtc import Rtc
from examples.vm.uart import Serial16550
from savestate import (
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SavedStateNotSupported,
    SavedStateUnit,
    SaveError,
    SaveRestore,
    StateUnits,
    field,
    restore_blob,
    save_blob,
    savedstate,
    snapshot,
    u32,
)
from savestate.state.units import SavedStateUnits, restore_children, save_children

STEPS = 1200


@pytest.fixture(scope="module")
def running() -> Machine:
    machine = Machine()
    machine.run(STEPS // 2)
    machine.uart.receive(b"abc\r")
    machine.run(STEPS // 2)
    return machine


def test_whole_machine_round_trip(running: Machine) -> None:
    state = running.save()
    data = bytes(state)
    fresh = Machine()
    fresh.restore(SavedStateUnits.decode(data))
    assert fresh.save() == state
    assert bytes(fresh.save()) == data
    # Both keep running identically.
    twin = Machine()
    twin.restore(state)
    out = len(running.uart.output)
    copy = Machine()
    copy.restore(state)
    copy.run(800)
    twin.run(800)
    assert copy.save() == twin.save()
    assert bytes(copy.uart.output) == bytes(twin.uart.output)
    assert out > 0


def test_a_snapshot_read_by_hand_restores_as_the_readme_says(
    running: Machine, tmp_path: Path
) -> None:
    # `units.restore(snapshot.read(path).parse(SavedStateUnits))`, with the name from where
    # the README and StateUnits.restore's TypeError take it: `savestate` itself.
    import savestate

    path = tmp_path / "vm.snapshot"
    snapshot.write(path, running)
    fresh = Machine()
    fresh.restore(snapshot.read(path).parse(savestate.SavedStateUnits))
    assert fresh.save() == running.save()
    assert savestate.SavedStateUnits is SavedStateUnits
    assert "SavedStateUnits" in savestate.__all__


def _devices(m: Machine) -> dict[str, SaveRestore[Any]]:
    return {"pic": m.pic, "pit": m.pit, "rtc": m.rtc, "ioapic": m.ioapic, "uart": m.uart,
            "storage": m.storage, "cpu": m.cpu, "debugcon": m.debugcon}


@pytest.mark.parametrize("name", ["pic", "pit", "rtc", "ioapic", "uart", "storage", "cpu",
                                  "debugcon"])
def test_each_device_round_trips(running: Machine, name: str) -> None:
    device = _devices(running)[name]
    blob = save_blob(device)
    fresh_machine = Machine()
    fresh_machine.cpu.now = running.cpu.now  # the PIT refuses a tick time in the future
    fresh = _devices(fresh_machine)[name]
    restore_blob(fresh, SavedStateBlob.decode(bytes(blob)))
    assert save_blob(fresh) == blob
    assert fresh.save() == device.save()


def test_device_states_have_the_reference_identity(running: Machine) -> None:
    urls = {name: save_blob(dev).type_url for name, dev in _devices(running).items()}
    assert urls["pic"] == "type.googleapis.com/chipset.pic.SavedState"
    assert urls["pit"] == "type.googleapis.com/chipset.pit.SavedState"
    assert urls["rtc"] == "type.googleapis.com/chipset.cmos_rtc.SavedState"
    assert urls["ioapic"] == "type.googleapis.com/chipset.ioapic.SavedState"
    assert urls["uart"] == "type.googleapis.com/serial.uart16550.SavedState"
    assert urls["debugcon"] == "type.googleapis.com/save_restore.NoSavedState"
    controller = running.storage.save_controller()
    assert save_blob(running.storage).parse(storvsp_mod.StorageSavedState).controller == controller
    assert SavedStateBlob.new(controller).type_url == (
        "type.googleapis.com/storage.storvsp.SavedState"
    )


def test_saved_states_hold_what_the_devices_did(running: Machine) -> None:
    pit = running.pit.save()
    assert len(pit.timers) == 3
    assert isinstance(pit.timers[0].state, pit_mod.Counting)
    assert isinstance(pit.timers[2].state, pit_mod.WaitingForGate)
    pic = running.pic.save()
    assert isinstance(pic.primary.init, pic_mod.Initialized) and pic.primary.icw2 == 0x20
    assert running.rtc.save().cmos[0x0B] == 0x12
    assert len(running.ioapic.save().redirection_entries) == 24
    assert isinstance(running.storage.save_controller().protocol_state, storvsp_mod.Ready)
    assert b"ABC" in bytes(running.uart.output) + bytes(running.cpu.console)


def test_boot_stages_and_in_flight_requests_round_trip() -> None:
    machine = Machine()
    seen_stage = seen_requests = seen_init = False
    for _ in range(1300):
        machine.step()
        state = machine.save()
        pic = machine.pic.save().primary.init
        proto = machine.storage.save_controller().protocol_state
        seen_stage |= isinstance(pic, pic_mod.ExpectingIcw3)
        seen_init |= isinstance(proto, storvsp_mod.Init) and isinstance(
            proto.state, storvsp_mod.EndInitialization)
        busy = bool(machine.storage.requests)
        if isinstance(pic, pic_mod.ExpectingIcw3) or busy or isinstance(proto, storvsp_mod.Init):
            fresh = Machine()
            fresh.restore(SavedStateUnits.decode(bytes(state)))
            assert fresh.save() == state
            seen_requests |= busy
    assert seen_stage and seen_requests and seen_init


def test_missing_unit_keeps_its_defaults(running: Machine) -> None:
    records = [r for r in running.save().units if r.name != "com1"]
    fresh = Machine()
    fresh.units.restore_records(records)
    assert fresh.uart.save() == Serial16550().save()
    assert fresh.cpu.save() == running.cpu.save()


def test_unknown_unit(running: Machine) -> None:
    floppy = SavedStateUnit(name="floppy", state=SavedStateBlob.new(Rtc().save()))
    records = [*running.save().units, floppy]
    fresh = Machine()
    before = fresh.save()
    with pytest.raises(RestoreError.UnknownEntryId) as info:
        fresh.units.restore_records(records)
    assert str(info.value) == "unknown entry id: floppy"
    assert fresh.save() == before


def test_duplicate_unit(running: Machine) -> None:
    records = running.save().units
    fresh = Machine()
    before = fresh.save()
    with pytest.raises(RestoreError.InvalidSavedState) as info:
        fresh.units.restore_records([*records, records[0]])
    assert str(info.value) == "saved state is invalid: duplicate entry id: cpu"
    assert fresh.save() == before
    with pytest.raises(ValueError, match="duplicate unit name"):
        fresh.units.add("cpu", fresh.cpu)


def test_what_is_not_units_or_a_device_is_a_type_error_at_the_call(
    running: Machine, tmp_path: Path
) -> None:
    path = tmp_path / "vm.snapshot"
    snapshot.write(path, running.units)
    fresh = Machine()
    before = fresh.save()
    hint = ("StateUnits.restore() takes a SavedStateUnits (what `units.save()` gives), got "
            "SavedStateBlob: decode it first, `units.restore(blob.parse(SavedStateUnits))`, "
            "or restore a snapshot file with `snapshot.restore(path, units)`")
    with pytest.raises(TypeError) as info:
        fresh.units.restore(snapshot.read(path))  # type: ignore[arg-type]
    assert str(info.value) == hint
    with pytest.raises(TypeError, match=r"^StateUnits\.restore_async\(\) takes .*restore_async"):
        asyncio.run(fresh.units.restore_async(snapshot.read(path)))  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        fresh.units.restore(running.rtc.save())  # type: ignore[arg-type]
    assert str(info.value) == (
        "StateUnits.restore() takes a SavedStateUnits (what `units.save()` gives), got SavedState"
    )
    with pytest.raises(TypeError, match="takes SavedStateUnit records, got a SavedStateBlob"):
        fresh.units.restore_records([snapshot.read(path)])  # type: ignore[list-item]
    assert fresh.save() == before
    fresh.units.restore(snapshot.read(path).parse(SavedStateUnits))  # what the hint says
    assert fresh.save() == running.save()

    with pytest.raises(TypeError) as info:
        StateUnits({"x": object()})  # type: ignore[dict-item]
    assert str(info.value) == (
        "StateUnits (unit 'x') takes a device with save() and restore() (a SaveRestore), "
        "got object"
    )
    units = StateUnits()
    with pytest.raises(TypeError, match="got SavedState, a saved state, not the device"):
        units.add("rtc", running.rtc.save())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unit 'ch'"):
        units.add_with("ch", object(), None)  # type: ignore[arg-type]
    assert len(units) == 0


def _with_child(state: SavedStateUnits, unit: str, child: str, blob: SavedStateBlob) -> None:
    for record in state.units:
        if record.name == unit:
            from examples.vm.machine import ChipsetSavedState

            chipset = record.state.parse(ChipsetSavedState)
            chipset.devices = [(n, blob if n == child else b) for n, b in chipset.devices]
            record.state = SavedStateBlob.new(chipset)


def test_nested_decode_error_names_the_path_and_restores_nothing(running: Machine) -> None:
    state = running.save()
    # chipset.pic.SavedState with primary.imr = 300 on the wire (primary: Initialized, imr).
    bad = SavedStateBlob(
        type_url="type.googleapis.com/chipset.pic.SavedState",
        value=bytes.fromhex("0a07" "0a022a00" "18ac02" "1204" "0a022a00"),
    )
    _with_child(state, "chipset", "pic", bad)
    fresh = Machine()
    before = fresh.save()
    with pytest.raises(RestoreError.ChildError) as info:
        fresh.restore(state)
    assert str(info.value) == (
        "failed to restore child device chipset/pic: failed to decode protobuf: "
        "SavedState.primary.imr: value 300 out of range for u8"
    )
    assert info.value.names == ["chipset", "pic"]
    assert isinstance(info.value.__cause__, RestoreError.ChildError)
    assert fresh.save() == before  # the cpu unit (restored first in order) was not touched


def test_restore_failure_rolls_back_the_units_already_restored(running: Machine) -> None:
    state = running.save()
    pic = running.pic.save()
    pic.secondary.icw2 = 0x29  # decodes, but the PIC rejects it
    _with_child(state, "chipset", "pic", SavedStateBlob.new(pic))
    fresh = Machine()
    fresh.run(5)
    before = fresh.save()
    with pytest.raises(RestoreError.ChildError) as info:
        fresh.restore(state)
    assert str(info.value) == (
        "failed to restore child device chipset/pic: saved state is invalid: "
        "invalid icw2 value 0x29"
    )
    assert fresh.save() == before


def test_pit_rejects_a_tick_time_in_the_future(running: Machine) -> None:
    fresh = Machine()
    with pytest.raises(RestoreError.InvalidSavedState, match="last tick time is after current"):
        restore_blob(fresh.pit, save_blob(running.pit))


def test_ioapic_rejects_a_wrong_entry_count(running: Machine) -> None:
    with pytest.raises(RestoreError.InvalidSavedState, match="wrong number of redirection"):
        restore_blob(IoApicDevice(16), save_blob(running.ioapic))


def test_wrong_blob_type_for_a_unit(running: Machine) -> None:
    state = running.save()
    state.units[2].state = SavedStateBlob.new(Rtc().save())  # com1 gets an RTC state
    with pytest.raises(RestoreError.ChildError) as info:
        Machine().restore(state)
    assert str(info.value) == (
        "failed to restore child device com1: failed to decode protobuf: protobuf type "
        "mismatch, expected type.googleapis.com/serial.uart16550.SavedState, got "
        "type.googleapis.com/chipset.cmos_rtc.SavedState"
    )


class Unsavable(SaveRestore[SavedStateNotSupported]):
    def save(self) -> SavedStateNotSupported:
        raise AssertionError

    def restore(self, state: SavedStateNotSupported) -> None:
        raise AssertionError


def test_units_with_unsupported_and_failing_members() -> None:
    units = StateUnits({"rtc": Rtc(), "nvme": Unsavable()})
    with pytest.raises(SaveError.ChildError) as info:
        units.save()
    assert str(info.value) == "failed to save child device nvme: save state not supported"
    rtc_only = StateUnits({"rtc": Rtc()})
    record = rtc_only.save_records()[0]
    target = StateUnits({"rtc": Unsavable()})
    with pytest.raises(RestoreError.ChildError) as rinfo:
        target.restore_records([record])
    assert str(rinfo.value) == "failed to restore child device rtc: unexpected saved state"

    uart = Serial16550()
    uart.scratch = 300  # out of range for u8: caught when encoding
    outer = StateUnits({"inner": StateUnits({"com1": uart})})
    with pytest.raises(SaveError.ChildError) as sinfo:
        outer.save()
    assert str(sinfo.value) == (
        "failed to save child device inner/com1: SavedState.scratch: value 300 out of range "
        "for u8 (0..255)"
    )


@savedstate(package="tests.units_rollback")
class Blob(Protobuf, package="tests.units_rollback"):
    data: bytes = field(1, default=b"")
    depth: u32 = field(2, default=0)
    below: Chain | None = field(3, default=None)


class Chain(Protobuf, package="tests.units_rollback"):
    below: Chain | None = field(1, default=None)


def _chain(depth: int) -> Chain | None:
    chain: Chain | None = None
    for _ in range(depth):
        chain = Chain(below=chain)
    return chain


class BlobDevice(SaveRestore[Blob]):
    def __init__(self, data: bytes = b"", depth: int = 0, refuse: int = -1) -> None:
        self.data, self.depth, self.refuse = data, depth, refuse

    def save(self) -> Blob:
        return Blob(data=self.data, depth=self.depth, below=_chain(self.depth))

    def restore(self, state: Blob) -> None:
        if state.depth == self.refuse:
            raise RestoreError.InvalidSavedState("refused")
        self.data, self.depth = state.data, state.depth


@savedstate(package="tests.units_rollback")
class Parent(Protobuf, package="tests.units_rollback"):
    children: list[tuple[str, SavedStateBlob]] = field(1, default_factory=list)


class ParentDevice(SaveRestore[Parent]):
    """A device keeping its children as blobs, restored with ``restore_children``."""

    def __init__(self, children: dict[str, SaveRestore[Any]]) -> None:
        self.children = children

    def save(self) -> Parent:
        return Parent(children=save_children(self.children))

    def restore(self, state: Parent) -> None:
        restore_children(self.children, state.children)


def _inners(kind: str, device: BlobDevice) -> SaveRestore[Any]:
    return StateUnits({"dev": device}) if kind == "units" else ParentDevice({"dev": device})


@pytest.mark.parametrize("kind", ["units", "children"])
@pytest.mark.parametrize("limit", ["max_size", "max_depth"])
def test_rollback_puts_nested_units_back_under_wide_limits(kind: str, limit: str) -> None:
    # The current state is bigger (or deeper) than the caller's limits allow, the incoming one
    # is small: when a later unit fails, the nested unit must still be put back.
    dev = BlobDevice(data=b"A" * 200_000, depth=0) if limit == "max_size" else BlobDevice(
        depth=20)
    machine = StateUnits({"inner": _inners(kind, dev), "bad": BlobDevice(refuse=5)})
    incoming = StateUnits({"inner": _inners(kind, BlobDevice(data=b"new", depth=1)),
                           "bad": BlobDevice(depth=5)}).save()
    before = (dev.data, dev.depth)
    limits = {"max_size": 64 << 10} if limit == "max_size" else {"max_depth": 10}
    with pytest.raises(RestoreError.ChildError) as info:
        machine.restore(incoming, **limits)
    assert str(info.value) == "failed to restore child device bad: saved state is invalid: refused"
    assert getattr(info.value, "rollback_failures", []) == []
    assert (dev.data, dev.depth) == before


def _nested(levels: int, leaf: SaveRestore[Any]) -> StateUnits:
    units = StateUnits({"leaf": leaf})
    for _ in range(levels - 1):
        units = StateUnits({"u": units})
    return units


def test_units_nested_in_units_decode_each_blob_twice_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each level checked every blob below it again: ~levels²/2 decodes, each copying the
    # bytes below. Now the blobs are checked once, by the outermost restore, and each level
    # decodes its own entries.
    levels = 30
    state = _nested(levels, BlobDevice(data=b"x" * 1000, depth=3)).save()
    target = _nested(levels, BlobDevice())
    parses = 0
    real = SavedStateBlob.parse

    def counting(self: SavedStateBlob, cls: type[Any], **limits: int) -> Any:
        nonlocal parses
        parses += 1
        return real(self, cls, **limits)

    monkeypatch.setattr(SavedStateBlob, "parse", counting)
    target.restore(state)
    assert parses <= 2 * levels
    leaf = target
    for _ in range(levels - 1):
        leaf = leaf["u"]  # type: ignore[assignment]
    assert (leaf["leaf"].data, leaf["leaf"].depth) == (b"x" * 1000, 3)  # type: ignore[union-attr]


def _corrupt_blob() -> SavedStateBlob:
    # tests.units_rollback.Blob with depth = 2**35 - 1: out of range for its u32.
    return SavedStateBlob(type_url=SavedStateBlob.new(Blob()).type_url,
                          value=bytes.fromhex("10ffffffff7f"))


def test_a_corrupt_blob_deep_in_nested_units_restores_nothing() -> None:
    levels = 6
    state = _nested(levels, BlobDevice(depth=1)).save()
    inner = state
    for _ in range(levels - 1):
        inner = inner.units[0].state.parse(SavedStateUnits)
    inner.units[0].state = _corrupt_blob()
    for _ in range(levels - 1):  # encode the levels again, the corrupt blob at the bottom
        inner = SavedStateUnits(units=[SavedStateUnit(name="u", state=SavedStateBlob.new(inner))])
    calls: list[int] = []

    class Watched(BlobDevice):
        def restore(self, state: Blob) -> None:
            calls.append(state.depth)

    target = _nested(levels, Watched())
    with pytest.raises(RestoreError.ChildError) as info:
        target.restore(inner)
    assert info.value.names == ["u"]
    assert "Blob.depth: value 34359738367 out of range for u32" in str(info.value)
    assert calls == []


def test_a_blob_changed_by_a_restore_is_checked_again() -> None:
    # A device that gives a checked blob another value before restoring its children: that
    # value was never checked, so the blobs nested in it are checked before any child's
    # restore runs (else "a" would be restored, then rolled back when "b" meets the bad leaf).
    restored: list[int] = []

    class Leaf(BlobDevice):
        def restore(self, state: Blob) -> None:
            restored.append(state.depth)

    def inner() -> ParentDevice:
        return ParentDevice({"a": Leaf(), "b": ParentDevice({"leaf": Leaf()})})

    bad = Parent(children=[
        ("a", SavedStateBlob.new(Blob(depth=1))),
        ("b", SavedStateBlob.new(Parent(children=[("leaf", _corrupt_blob())]))),
    ])

    class Changing(ParentDevice):
        def restore(self, state: Parent) -> None:
            state.children[0][1].value = SavedStateBlob.new(bad).value
            restore_children(self.children, state.children)

    state = Changing({"inner": inner()}).save()
    with pytest.raises(RestoreError.ChildError) as info:
        StateUnits({"dev": Changing({"inner": inner()})}).restore(SavedStateUnits(units=[
            SavedStateUnit(name="dev", state=SavedStateBlob.new(state))]))
    assert info.value.names == ["dev", "inner", "b", "leaf"]
    assert restored == []
