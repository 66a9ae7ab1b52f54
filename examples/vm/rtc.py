"""CMOS RTC (MC146818 compatible): 256 bytes of CMOS, a clock that ticks, update interrupts."""

from __future__ import annotations

from savestate import SaveRestore, field, savedstate, u8

SECOND = 10_000_000  # in VmTime units (100 ns)


@savedstate(package="chipset.cmos_rtc")
class SavedState:
    """RTC saved state."""

    addr: u8 = field(1)
    cmos: bytes = field(2, length=256)


SEC, MIN, HOUR, DOW, DAY, MONTH, YEAR = 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09
REG_A, REG_B, REG_C, REG_D, CENTURY = 0x0A, 0x0B, 0x0C, 0x0D, 0x32
B_SET, B_UIE, B_DM = 0x80, 0x10, 0x04
C_IRQF, C_UF = 0x80, 0x10
DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class Rtc(SaveRestore[SavedState]):
    """Ports 0x70 (index) and 0x71 (data); drives IRQ 8 with reg C's IRQF bit."""

    def __init__(self) -> None:
        self.addr = 0
        self.cmos = bytearray(256)
        # 2024-02-28 23:59:57, BCD, 24-hour mode; a little NVRAM and its checksum.
        for reg, value in ((SEC, 0x57), (MIN, 0x59), (HOUR, 0x23), (DOW, 0x04), (DAY, 0x28),
                           (MONTH, 0x02), (YEAR, 0x24), (CENTURY, 0x20), (REG_A, 0x26),
                           (REG_B, 0x02), (REG_D, 0x80), (0x10, 0x40), (0x14, 0x0F)):
            self.cmos[reg] = value
        checksum = sum(self.cmos[0x10:0x2E])
        self.cmos[0x2E], self.cmos[0x2F] = checksum >> 8, checksum & 0xFF

    def io_write(self, port: int, value: int) -> None:
        if port == 0x70:
            self.addr = value & 0x7F
        elif self.addr not in (REG_C, REG_D):
            self.cmos[self.addr] = value

    def io_read(self, port: int) -> int:
        if port == 0x70:
            return 0xFF
        value = self.cmos[self.addr]
        if self.addr == REG_C:
            self.cmos[REG_C] = 0
        return value

    def irq_level(self) -> bool:
        return bool(self.cmos[REG_C] & C_IRQF)

    def advance(self, before: int, now: int) -> None:
        """Tick once for each second boundary between two VmTimes."""
        for _ in range(now // SECOND - before // SECOND):
            if not self.cmos[REG_B] & B_SET:
                self._tick()
                self.cmos[REG_C] |= C_UF
                if self.cmos[REG_B] & B_UIE:
                    self.cmos[REG_C] |= C_IRQF

    def _get(self, reg: int) -> int:
        v = self.cmos[reg]
        return v if self.cmos[REG_B] & B_DM else (v >> 4) * 10 + (v & 15)

    def _put(self, reg: int, v: int) -> None:
        self.cmos[reg] = v if self.cmos[REG_B] & B_DM else ((v // 10) << 4) | (v % 10)

    def _tick(self) -> None:
        for reg, limit in ((SEC, 60), (MIN, 60), (HOUR, 24)):
            value = (self._get(reg) + 1) % limit
            self._put(reg, value)
            if value:
                return
        self._put(DOW, self._get(DOW) % 7 + 1)
        month, year = self._get(MONTH), self._get(YEAR)
        days = DAYS[month - 1] - (1 if month == 2 and year % 4 else 0)
        day = self._get(DAY) % days + 1
        self._put(DAY, day)
        if day == 1:
            self._put(MONTH, month % 12 + 1)
            if month == 12:
                self._put(YEAR, (year + 1) % 100)

    def time_text(self) -> str:
        return (f"20{self._get(YEAR):02}-{self._get(MONTH):02}-{self._get(DAY):02} "
                f"{self._get(HOUR):02}:{self._get(MIN):02}:{self._get(SEC):02}")

    def save(self) -> SavedState:
        return SavedState(addr=self.addr, cmos=bytes(self.cmos))

    def restore(self, state: SavedState) -> None:
        self.addr = state.addr
        self.cmos = bytearray(state.cmos)
