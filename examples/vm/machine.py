"""The machine: a CPU running a tiny guest program, the chipset, COM1, a debug port, storage.

State units (saved and restored in this order): ``cpu``, ``chipset`` (children ``pic``, ``pit``,
``rtc``, ``ioapic`` as named blobs), ``com1``, ``debugcon``, ``storage``. Each step is 1 ms of VM
time.
"""

from __future__ import annotations

from typing import Any

from savestate import (
    NoSavedState,
    SavedStateBlob,
    SaveRestore,
    StateUnits,
    field,
    savedstate,
    u32,
    u64,
)
from savestate.state.units import SavedStateUnits, restore_children, save_children

from .ioapic import IoApicDevice
from .pic import DualPic
from .pit import PitDevice
from .rtc import Rtc
from .storvsp import OP_READ10, OP_REQUEST_SENSE, OP_TEST_UNIT_READY, OP_WRITE10, StorageController
from .uart import LSR, LSR_DR, LSR_THRE, RBR_THR, Serial16550

STEP = 10_000  # VmTime units (100 ns) per step: 1 ms
COM1, STORAGE_VECTOR = 0x3F8, 0x3B


@savedstate(package="examples.vm.cpu")
class CpuSavedState:
    """The CPU's clock and the guest program's variables."""

    now: u64 = field(1, doc="VmTime, 100 ns units")
    boot_step: u32 = field(2)
    timer_ticks: u64 = field(3)
    console: bytes = field(4, doc="Bytes waiting for the UART's transmitter")
    next_transaction: u64 = field(5)
    completions: u64 = field(6)
    io_checksum: u32 = field(7)


@savedstate(package="examples.vm.chipset")
class ChipsetSavedState:
    """The chipset devices, each as a named blob."""

    devices: list[tuple[str, SavedStateBlob]] = field(1)


class Chipset(SaveRestore[ChipsetSavedState]):
    def __init__(self, devices: dict[str, SaveRestore[Any]]) -> None:
        self.devices = devices

    def save(self) -> ChipsetSavedState:
        return ChipsetSavedState(devices=save_children(self.devices))

    def restore(self, state: ChipsetSavedState) -> None:
        restore_children(self.devices, state.devices)


class DebugCon(SaveRestore[NoSavedState]):
    """Port 0xE9: bytes written go straight to the host. Nothing to save."""

    def __init__(self) -> None:
        self.output = bytearray()

    def io_write(self, value: int) -> None:
        self.output.append(value)

    def save(self) -> NoSavedState:
        return NoSavedState()

    def restore(self, state: NoSavedState) -> None:
        pass


class Machine(SaveRestore[SavedStateUnits]):
    def __init__(self) -> None:
        self.cpu = Cpu(self)
        self.pic = DualPic()
        self.pit = PitDevice(now=lambda: self.cpu.now)
        self.rtc = Rtc()
        self.ioapic = IoApicDevice(24)
        self.uart = Serial16550()
        self.debugcon = DebugCon()
        self.storage = StorageController(now=lambda: self.cpu.now)
        self.chipset = Chipset(
            {"pic": self.pic, "pit": self.pit, "rtc": self.rtc, "ioapic": self.ioapic}
        )
        self.units = StateUnits({
            "cpu": self.cpu, "chipset": self.chipset, "com1": self.uart,
            "debugcon": self.debugcon, "storage": self.storage,
        })
        # The lines are driven from power-on, as ``restore`` drives them: a machine saved
        # before its first step then restores to the very state it saved.
        self.sync_lines()

    def step(self) -> None:
        before = self.cpu.now
        self.cpu.now += STEP
        for _ in range(self.pit.advance()):
            self.pic.set_irq(0, False)  # an edge on IRQ 0
            self.pic.set_irq(0, True)
        self.rtc.advance(before, self.cpu.now)
        self.uart.step()
        self.storage.step(before, self.cpu.complete)
        self.sync_lines()
        self.cpu.run()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def sync_lines(self) -> None:
        """Drive the interrupt lines from the devices' outputs."""
        self.pic.set_irq(0, self.pit.timers[0].out)
        self.pic.set_irq(4, self.uart.irq_level())
        self.pic.set_irq(8, self.rtc.irq_level())
        self.ioapic.set_irq(11, self.storage.irq)

    def save(self) -> SavedStateUnits:
        return self.units.save()

    def restore(self, state: SavedStateUnits) -> None:
        self.units.restore(state)
        self.sync_lines()

    # -- the guest's I/O -------------------------------------------------------------------------

    def outb(self, port: int, value: int) -> None:
        if port in (0x20, 0x21, 0xA0, 0xA1):
            self.pic.io_write(port, value)
        elif 0x40 <= port <= 0x43:
            self.pit.io_write(port, value)
        elif port in (0x70, 0x71):
            self.rtc.io_write(port, value)
        elif COM1 <= port < COM1 + 8:
            self.uart.io_write(port - COM1, value)
        elif port == 0xE9:
            self.debugcon.io_write(value)
        self.sync_lines()

    def inb(self, port: int) -> int:
        if port in (0x20, 0x21, 0xA0, 0xA1):
            value = self.pic.io_read(port)
        elif 0x40 <= port <= 0x43:
            value = self.pit.io_read(port)
        elif port in (0x70, 0x71):
            value = self.rtc.io_read(port)
        elif COM1 <= port < COM1 + 8:
            value = self.uart.io_read(port - COM1)
        else:
            value = 0xFF
        self.sync_lines()
        return value

    def ioapic_write(self, index: int, value: int) -> None:
        self.ioapic.write_index(index)
        self.ioapic.write_data(value)


def _cdb(lun: int, op: int, lba: int = 0, blocks: int = 0) -> bytes:
    # This example's request packet: LUN, then a 10-byte CDB.
    return bytes([lun, op, 0]) + lba.to_bytes(4, "big") + bytes([0]) + blocks.to_bytes(2, "big")


class Cpu(SaveRestore[CpuSavedState]):
    """The clock and a small guest: boots the devices one I/O at a time, then serves
    interrupts, echoes serial input in upper case, prints the RTC time and does disk I/O."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.now = 0
        self.boot_step = 0
        self.timer_ticks = 0
        self.console = bytearray()
        self.next_transaction = 1
        self.completions = 0
        self.io_checksum = 0

    def boot_actions(self) -> list[tuple[str, int, int]]:
        return [
            ("out", 0xE9, ord("B")),
            ("out", 0x20, 0x11), ("out", 0x21, 0x20), ("out", 0x21, 0x04), ("out", 0x21, 0x01),
            ("out", 0xA0, 0x11), ("out", 0xA1, 0x28), ("out", 0xA1, 0x02), ("out", 0xA1, 0x01),
            ("out", 0x21, 0xEA), ("out", 0xA1, 0xFE),  # unmask IRQ 0, 2, 4 and 8
            ("out", 0x43, 0x34), ("out", 0x40, 11932 & 0xFF), ("out", 0x40, 11932 >> 8),
            ("out", 0x43, 0xB6), ("out", 0x42, 0xA9), ("out", 0x42, 0x04),  # speaker, gated
            ("out", 0x70, 0x0B), ("out", 0x71, 0x12),  # RTC: update interrupts, 24 h
            ("out", COM1 + 3, 0x80), ("out", COM1, 0x01), ("out", COM1 + 1, 0x00),
            ("out", COM1 + 3, 0x03), ("out", COM1 + 2, 0x07), ("out", COM1 + 1, 0x01),
            ("out", COM1 + 4, 0x0B),
            ("ioapic", 0x10 + 2 * 11, STORAGE_VECTOR | 1 << 15),  # level, unmasked
            ("storage", 0, 0), ("storage", 1, 0), ("storage", 2, 0), ("storage", 3, 0),
            ("out", 0xE9, ord("\n")),
        ]

    def run(self) -> None:
        actions = self.boot_actions()
        if self.boot_step < len(actions):
            kind, a, b = actions[self.boot_step]
            self.boot_step += 1
            if kind == "out":
                self.m.outb(a, b)
            elif kind == "ioapic":
                self.m.ioapic_write(a, b)
            else:
                packet = ("begin_init", "query_version", "query_properties", "end_init")[a]
                self.m.storage.send(packet, 0x0602)
            return
        while self.m.pic.pending():
            self.interrupt(self.m.pic.acknowledge())
        for vector in self.m.ioapic.delivered():
            self.m.storage.irq = False  # the driver acknowledges the controller
            self.m.ioapic.eoi(vector)
        self.m.sync_lines()
        if self.console and self.m.inb(COM1 + LSR) & LSR_THRE:
            chunk, self.console = self.console[:16], self.console[16:]
            for byte in chunk:
                self.m.outb(COM1 + RBR_THR, byte)

    def interrupt(self, vector: int) -> None:
        m = self.m
        if vector == 0x20:
            self.timer_ticks += 1
            if self.timer_ticks % 40 == 0 and m.storage.ready:
                self.disk_io()
        elif vector == 0x24:
            while m.inb(COM1 + LSR) & LSR_DR:
                self.console.append(ord(chr(m.inb(COM1 + RBR_THR)).upper()))
        elif vector == 0x28:
            m.outb(0x70, 0x0C)
            m.inb(0x71)
            self.console += f"[{m.rtc.time_text()}] ticks={self.timer_ticks}\r\n".encode()
        if vector >= 0x28:
            m.outb(0xA0, 0x20)
        m.outb(0x20, 0x20)

    def disk_io(self) -> None:
        storage = self.m.storage
        n = self.timer_ticks // 40
        lba = n % 16
        for cdb, gpns in (
            (_cdb(0, OP_WRITE10, lba, 2), [n, n + 1]),
            (_cdb(0, OP_READ10, lba, 2), []),
            (_cdb(1, OP_TEST_UNIT_READY), []),
            (_cdb(1, OP_REQUEST_SENSE), []),
        ):
            storage.submit(self.next_transaction, cdb, gpns)
            self.next_transaction += 1

    def complete(self, transaction_id: int, status: int, value: int) -> None:
        self.completions += 1
        self.io_checksum = (self.io_checksum * 31 + transaction_id + status + value) & 0xFFFFFFFF

    def save(self) -> CpuSavedState:
        return CpuSavedState(
            now=self.now, boot_step=self.boot_step, timer_ticks=self.timer_ticks,
            console=bytes(self.console), next_transaction=self.next_transaction,
            completions=self.completions, io_checksum=self.io_checksum,
        )

    def restore(self, state: CpuSavedState) -> None:
        self.now, self.boot_step, self.timer_ticks = state.now, state.boot_step, state.timer_ticks
        self.console = bytearray(state.console)
        self.next_transaction = state.next_transaction
        self.completions, self.io_checksum = state.completions, state.io_checksum
