"""8254 PIT: three counters (a fixed array of three), latches, gates and output pins."""

from __future__ import annotations

from collections.abc import Callable

from savestate import Oneof, Protobuf, RestoreError, SaveRestore, field, savedstate, u8, u16, u64

PACKAGE = "chipset.pit"
PIT_HZ = 1_193_182
VMTIME_HZ = 10_000_000  # VmTime counts 100 ns units


@savedstate(package=PACKAGE)
class SavedState:
    timers: list[SavedTimerState] = field(1, length=3)
    last: u64 = field(2)  # VmTime, a transparent u64


class SavedTimerState(Protobuf, package=PACKAGE):
    ce: u16 = field(1)
    cr: u16 = field(2)
    ol: u16 | None = field(3, default=None)
    sl: u8 | None = field(4, default=None)
    state: SavedCountState = field(5)
    control: u8 = field(6)
    out: bool = field(7)
    gate: bool = field(8)
    null: bool = field(9)
    read_high: bool = field(10)
    cr_low: u8 | None = field(11, default=None)


class SavedCountState(Oneof, package=PACKAGE):
    pass


class Inactive(SavedCountState, variant=1):
    pass


class WaitingForGate(SavedCountState, variant=2):
    pass


class Reloading(SavedCountState, variant=3):
    pass


class Active(SavedCountState, variant=4):
    pass


class Counting(SavedCountState, variant=5):
    pass


COUNT_STATES: list[type[SavedCountState]] = [
    Inactive, WaitingForGate, Reloading, Active, Counting
]
INACTIVE, WAITING, RELOADING, ACTIVE, COUNTING = range(5)


def pit_clock(vmtime: int) -> int:
    return vmtime * PIT_HZ // VMTIME_HZ


class Timer:
    def __init__(self, gate: bool) -> None:
        self.ce = self.cr = self.control = 0
        self.ol: int | None = None
        self.sl: int | None = None
        self.cr_low: int | None = None
        self.state = INACTIVE
        self.out = False
        self.gate = gate
        self.null = True
        self.read_high = False

    @property
    def mode(self) -> int:
        mode = (self.control >> 1) & 7
        return mode & 3 if mode >= 6 else mode

    @property
    def access(self) -> int:
        return (self.control >> 4) & 3

    def write_control(self, value: int) -> None:
        self.control = value & 0x3F
        self.state, self.null, self.read_high = INACTIVE, True, False
        self.ol = self.sl = self.cr_low = None
        self.out = self.mode != 0

    def latch_count(self) -> None:
        if self.ol is None:
            self.ol = self.ce

    def latch_status(self) -> None:
        if self.sl is None:
            self.sl = (0x80 if self.out else 0) | (0x40 if self.null else 0) | self.control

    def write_count(self, value: int) -> None:
        if self.access == 3:
            if self.cr_low is None:
                self.cr_low = value
                return
            self.cr, self.cr_low = self.cr_low | (value << 8), None
        elif self.access == 1:
            self.cr = value
        else:
            self.cr = value << 8
        self.null = True
        if self.mode == 0:
            self.out = False
        self.state = RELOADING if self.gate else WAITING

    def read_count(self) -> int:
        if self.sl is not None:
            value, self.sl = self.sl, None
            return value
        source = self.ol if self.ol is not None else self.ce
        if self.access == 3 and not self.read_high:
            self.read_high = True
            return source & 0xFF
        self.read_high = False
        self.ol = None
        return source >> 8 if self.access == 2 or self.access == 3 else source & 0xFF

    def run(self, ticks: int) -> int:
        """Advance ``ticks`` input clocks; returns the number of rising edges of ``out``."""
        if ticks <= 0 or self.state in (INACTIVE, WAITING):
            return 0
        if self.state == RELOADING:
            self.ce, self.null, ticks = self.cr, False, ticks - 1
            self.state = ACTIVE if self.mode == 0 else COUNTING
        period = self.cr or 0x10000
        if self.mode == 3:
            period = max(period // 2, 1)
        remaining = self.ce or 0x10000
        if self.state == ACTIVE:  # mode 0: one shot, out rises at terminal count
            if ticks >= remaining and not self.out:
                self.out = True
                self.ce = (remaining - ticks) & 0xFFFF
                return 1
            self.ce = (remaining - ticks) & 0xFFFF
            return 0
        if ticks < remaining:
            self.ce = remaining - ticks
            return 0
        ticks -= remaining
        events = 1 + ticks // period
        self.ce = (period - ticks % period) & 0xFFFF
        if self.mode == 3:  # square wave: out toggles at each half period
            rises = (events + (0 if self.out else 1)) // 2
            self.out = self.out ^ bool(events & 1)
            return rises
        self.out = True  # rate generator: a one-clock low pulse, then high again
        return events

    def save(self) -> SavedTimerState:
        return SavedTimerState(
            ce=self.ce, cr=self.cr, ol=self.ol, sl=self.sl, state=COUNT_STATES[self.state](),
            control=self.control, out=self.out, gate=self.gate, null=self.null,
            read_high=self.read_high, cr_low=self.cr_low,
        )

    def restore(self, s: SavedTimerState) -> None:
        self.ce, self.cr, self.ol, self.sl, self.cr_low = s.ce, s.cr, s.ol, s.sl, s.cr_low
        self.state = COUNT_STATES.index(type(s.state))
        self.control, self.out, self.gate, self.null = s.control, s.out, s.gate, s.null
        self.read_high = s.read_high


class PitDevice(SaveRestore[SavedState]):
    """Ports 0x40-0x43. Timer 0 drives IRQ 0; timer 2's gate is the speaker enable."""

    def __init__(self, now: Callable[[], int]) -> None:
        self.now = now
        self.timers = [Timer(gate=True), Timer(gate=True), Timer(gate=False)]
        self.last = 0

    def io_write(self, port: int, value: int) -> None:
        if port == 0x43:
            select = value >> 6
            if select == 3:  # read-back command
                for i in range(3):
                    if value & (2 << i):
                        if not value & 0x20:
                            self.timers[i].latch_count()
                        if not value & 0x10:
                            self.timers[i].latch_status()
            elif value & 0x30 == 0:
                self.timers[select].latch_count()
            else:
                self.timers[select].write_control(value)
        else:
            self.timers[port - 0x40].write_count(value)

    def io_read(self, port: int) -> int:
        return self.timers[port - 0x40].read_count() if port != 0x43 else 0xFF

    def advance(self) -> int:
        """Catch up with the clock; returns timer 0's rising edges (IRQ 0 requests)."""
        now = self.now()
        ticks = pit_clock(now) - pit_clock(self.last)
        self.last = now
        edges = [timer.run(ticks) for timer in self.timers]
        return edges[0]

    def save(self) -> SavedState:
        return SavedState(timers=[t.save() for t in self.timers], last=self.last)

    def restore(self, state: SavedState) -> None:
        if state.last > self.now():
            raise RestoreError.InvalidSavedState("last tick time is after current time")
        for timer, saved in zip(self.timers, state.timers, strict=True):
            timer.restore(saved)
        self.last = state.last
