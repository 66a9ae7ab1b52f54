"""Dual 8259 PIC: initialisation sequence, mask, in-service and edge/level requests."""

from __future__ import annotations

from savestate import Oneof, Protobuf, RestoreError, SaveRestore, field, savedstate, u8

PACKAGE = "chipset.pic"


@savedstate(package=PACKAGE)
class SavedState:
    primary: SavedPic = field(1)
    secondary: SavedPic = field(2)


class SavedPic(Protobuf, package=PACKAGE):
    init: SavedInitStage = field(1, doc="Our current stage of the initialization process")
    icw2: u8 = field(2, doc="The Interrupt Vector base address, passed in ICW2. The least "
                     "significant 3 bits must be 0")
    imr: u8 = field(3, doc="Interrupt Mask Register, also called OCW1")
    ocw3: u8 = field(4, doc="The most recently received OCW3")
    isr: u8 = field(5, doc="Interrupt Service Register")
    elcr: u8 = field(6, doc="Edge/Level Control Register")
    line_low_latch: u8 = field(
        7, doc="Whether the line has been low since the last interrupt injection"
    )


class SavedInitStage(Oneof, package=PACKAGE):
    pass


class Uninitialized(SavedInitStage, variant=1):
    pass


class ExpectingIcw2(SavedInitStage, variant=2):
    pass


class ExpectingIcw3(SavedInitStage, variant=3):
    pass


class ExpectingIcw4(SavedInitStage, variant=4):
    pass


class Initialized(SavedInitStage, variant=5):
    pass


# The runtime keeps the stage as a number; the saved state as a Oneof variant.
STAGES: list[type[SavedInitStage]] = [
    Uninitialized, ExpectingIcw2, ExpectingIcw3, ExpectingIcw4, Initialized
]


class Pic:
    """One 8259."""

    def __init__(self) -> None:
        self.stage = 0
        self.icw2 = self.imr = self.ocw3 = self.isr = self.elcr = self.line_low_latch = 0
        self.lines = 0  # current input levels: driven by devices, not saved

    def irr(self) -> int:
        return self.lines & (self.line_low_latch | self.elcr)

    def pending(self) -> int | None:
        """The IRQ the PIC would deliver now, if any."""
        if self.stage != 4:
            return None
        requests = self.irr() & ~self.imr
        for irq in range(8):
            if self.isr & (1 << irq):
                return None  # an equal or higher priority interrupt is in service
            if requests & (1 << irq):
                return irq
        return None

    def acknowledge(self, irq: int) -> int:
        bit = 1 << irq
        self.isr |= bit
        self.line_low_latch &= ~bit
        return self.icw2 + irq

    def set_irq(self, irq: int, high: bool) -> None:
        bit = 1 << irq
        if high:
            self.lines |= bit
        else:
            self.lines &= ~bit
            self.line_low_latch |= bit

    def write_command(self, value: int) -> None:
        if value & 0x10:  # ICW1
            self.stage, self.imr, self.isr = 1, 0, 0
            self.line_low_latch = 0xFF
        elif value & 0x08:  # OCW3
            self.ocw3 = value
        elif value & 0x20:  # OCW2: EOI
            if value & 0x40:
                self.isr &= ~(1 << (value & 7))
            elif self.isr:
                self.isr &= self.isr - 1  # clear the highest-priority (lowest) bit

    def read_command(self) -> int:
        return self.isr if self.ocw3 & 3 == 3 else self.irr()

    def write_data(self, value: int) -> None:
        if self.stage == 1:
            self.icw2, self.stage = value & 0xF8, 2
        elif self.stage == 2:
            self.stage = 3
        elif self.stage == 3:
            self.stage = 4
        else:
            self.imr = value

    def save(self) -> SavedPic:
        return SavedPic(
            init=STAGES[self.stage](), icw2=self.icw2, imr=self.imr, ocw3=self.ocw3,
            isr=self.isr, elcr=self.elcr, line_low_latch=self.line_low_latch,
        )

    def restore(self, state: SavedPic) -> None:
        if state.icw2 & 7:
            raise RestoreError.InvalidSavedState(f"invalid icw2 value {state.icw2:#x}")
        self.stage = STAGES.index(type(state.init))
        self.icw2, self.imr, self.ocw3 = state.icw2, state.imr, state.ocw3
        self.isr, self.elcr, self.line_low_latch = state.isr, state.elcr, state.line_low_latch


class DualPic(SaveRestore[SavedState]):
    """The primary and secondary 8259s, the secondary cascaded on the primary's IRQ 2."""

    def __init__(self) -> None:
        self.primary = Pic()
        self.secondary = Pic()

    def set_irq(self, irq: int, high: bool) -> None:
        if irq >= 8:
            self.secondary.set_irq(irq - 8, high)
        else:
            self.primary.set_irq(irq, high)
        self._sync_cascade()

    def _sync_cascade(self) -> None:
        want = self.secondary.pending() is not None
        if want != bool(self.primary.lines & 4):
            self.primary.set_irq(2, want)

    def pending(self) -> bool:
        return self.primary.pending() is not None

    def acknowledge(self) -> int:
        """The vector of the highest-priority request (the CPU's INTA cycle)."""
        irq = self.primary.pending()
        assert irq is not None
        vector = self.primary.acknowledge(irq)
        if irq == 2:
            sirq = self.secondary.pending()
            assert sirq is not None
            vector = self.secondary.acknowledge(sirq)
        self._sync_cascade()
        return vector

    def io_write(self, port: int, value: int) -> None:
        pic = self.primary if port < 0xA0 else self.secondary
        if port & 1:
            pic.write_data(value)
        else:
            pic.write_command(value)
        self._sync_cascade()

    def io_read(self, port: int) -> int:
        pic = self.primary if port < 0xA0 else self.secondary
        return pic.imr if port & 1 else pic.read_command()

    def save(self) -> SavedState:
        return SavedState(primary=self.primary.save(), secondary=self.secondary.save())

    def restore(self, state: SavedState) -> None:
        primary, secondary = Pic(), Pic()
        primary.restore(state.primary)  # validate both before changing anything
        secondary.restore(state.secondary)
        primary.lines, secondary.lines = self.primary.lines, self.secondary.lines
        self.primary, self.secondary = primary, secondary
