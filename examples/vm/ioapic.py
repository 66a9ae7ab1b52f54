"""I/O APIC: 24 redirection entries programmed through an index and a data register."""

from __future__ import annotations

from savestate import RestoreError, SaveRestore, field, savedstate, u8, u64


@savedstate(package="chipset.ioapic")
class SavedState:
    id: u8 = field(1)
    index: u8 = field(2)
    redirection_entries: list[u64] = field(3)


MASKED = 1 << 16
LEVEL = 1 << 15
REMOTE_IRR = 1 << 14
VERSION = 0x00170011  # 24 entries, version 0x11


class IoApicDevice(SaveRestore[SavedState]):
    """Level-triggered entries set remote IRR when they deliver and wait for an EOI."""

    def __init__(self, num_entries: int = 24) -> None:
        self.id = 0
        self.index = 0
        self.entries = [MASKED] * num_entries
        self.lines = 0  # input levels, driven by devices; not saved

    def write_index(self, value: int) -> None:
        self.index = value & 0xFF

    def write_data(self, value: int) -> None:
        if self.index == 0:
            self.id = (value >> 24) & 0x0F
        elif 0x10 <= self.index < 0x10 + 2 * len(self.entries):
            n, high = divmod(self.index - 0x10, 2)
            entry = self.entries[n]
            if high:
                entry = (entry & 0xFFFFFFFF) | (value << 32)
            else:  # delivery status and remote IRR are read-only
                keep = entry & (REMOTE_IRR | 1 << 12)
                entry = (entry & ~0xFFFFFFFF) | (value & ~(REMOTE_IRR | 1 << 12)) | keep
            self.entries[n] = entry & 0xFFFFFFFFFFFFFFFF
            self._evaluate(n)

    def read_data(self) -> int:
        if self.index == 0:
            return self.id << 24
        if self.index == 1:
            return VERSION
        n, high = divmod(self.index - 0x10, 2)
        entry = self.entries[n]
        return entry >> 32 if high else entry & 0xFFFFFFFF

    def set_irq(self, n: int, high: bool) -> None:
        self.lines = self.lines | (1 << n) if high else self.lines & ~(1 << n)
        self._evaluate(n)

    def _evaluate(self, n: int) -> None:
        entry = self.entries[n]
        if self.lines >> n & 1 and not entry & MASKED and entry & LEVEL and not entry & REMOTE_IRR:
            self.entries[n] = entry | REMOTE_IRR  # delivered to the CPU

    def delivered(self) -> list[int]:
        """Vectors delivered and not yet EOIed."""
        return [e & 0xFF for e in self.entries if e & REMOTE_IRR]

    def eoi(self, vector: int) -> None:
        for n, entry in enumerate(self.entries):
            if entry & REMOTE_IRR and entry & 0xFF == vector:
                self.entries[n] = entry & ~REMOTE_IRR
                self._evaluate(n)

    def save(self) -> SavedState:
        return SavedState(id=self.id, index=self.index, redirection_entries=list(self.entries))

    def restore(self, state: SavedState) -> None:
        if len(state.redirection_entries) != len(self.entries):
            raise RestoreError.InvalidSavedState("wrong number of redirection entries")
        self.id, self.index = state.id, state.index
        self.entries = list(state.redirection_entries)
