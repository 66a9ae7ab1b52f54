"""16550 UART: registers, 16-byte transmit and receive FIFOs, an interrupt line."""

from __future__ import annotations

from collections import deque

from savestate import SaveRestore, field, savedstate, u8


@savedstate(package="serial.uart16550")
class SavedState:
    ier: u8 = field(1)
    lcr: u8 = field(2)
    mcr: u8 = field(3)
    msr: u8 = field(4)
    fcr: u8 = field(5)
    dll: u8 = field(6)
    dlm: u8 = field(7)
    scratch: u8 = field(8)
    thr_empty_acknowledged: bool = field(9)
    rx_overrun: bool = field(10)
    tx_buffer: bytes = field(11)
    rx_buffer: bytes = field(12)


FIFO_SIZE = 16
# Register offsets from the base port.
RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)
LCR_DLAB = 0x80
LSR_DR, LSR_OE, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x20, 0x40
IER_RDA, IER_THRE, IER_RLS = 0x01, 0x02, 0x04
MCR_OUT2 = 0x08


class Serial16550(SaveRestore[SavedState]):
    """COM1. ``output`` collects what the guest transmitted (the host side, not saved)."""

    def __init__(self) -> None:
        self.ier = self.lcr = self.mcr = self.fcr = self.dll = self.dlm = self.scratch = 0
        self.msr = 0xB0  # CTS, DSR, DCD asserted by the host side
        self.thr_empty_acknowledged = False
        self.rx_overrun = False
        self.tx: deque[int] = deque()
        self.rx: deque[int] = deque()
        self.output = bytearray()

    # -- I/O ports ----------------------------------------------------------------------------

    def io_read(self, offset: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR:
            return self.dll if dlab else (self.rx.popleft() if self.rx else 0)
        if offset == IER:
            return self.dlm if dlab else self.ier
        if offset == IIR_FCR:
            iir = self._iir()
            if iir == 0x02:
                self.thr_empty_acknowledged = True
            return iir | (0xC0 if self.fcr & 1 else 0)
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            lsr = (LSR_DR if self.rx else 0) | (LSR_OE if self.rx_overrun else 0)
            lsr |= (LSR_THRE | LSR_TEMT) if not self.tx else 0
            self.rx_overrun = False
            return lsr
        if offset == MSR:
            return self.msr
        return self.scratch

    def io_write(self, offset: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR:
            if dlab:
                self.dll = value
            elif len(self.tx) < FIFO_SIZE:
                self.tx.append(value)
                self.thr_empty_acknowledged = False
        elif offset == IER:
            if dlab:
                self.dlm = value
            else:
                self.ier = value & 0x0F
        elif offset == IIR_FCR:
            self.fcr = value & 0xC9
            if value & 0x02:
                self.rx.clear()
            if value & 0x04:
                self.tx.clear()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self.mcr = value & 0x1F
        elif offset == SCR:
            self.scratch = value

    def _iir(self) -> int:
        if self.ier & IER_RLS and self.rx_overrun:
            return 0x06
        if self.ier & IER_RDA and self.rx:
            return 0x04
        if self.ier & IER_THRE and not self.tx and not self.thr_empty_acknowledged:
            return 0x02
        return 0x01

    def irq_level(self) -> bool:
        return bool(self.mcr & MCR_OUT2) and self._iir() != 0x01

    # -- the line -------------------------------------------------------------------------------

    def step(self) -> None:
        """One character time: the transmitter sends one byte to the host."""
        if self.tx:
            self.output.append(self.tx.popleft())

    def receive(self, data: bytes) -> None:
        """Bytes arriving from the host; a full FIFO overruns."""
        for byte in data:
            if len(self.rx) < FIFO_SIZE:
                self.rx.append(byte)
            else:
                self.rx_overrun = True

    # -- save/restore -----------------------------------------------------------------------------

    def save(self) -> SavedState:
        return SavedState(
            ier=self.ier, lcr=self.lcr, mcr=self.mcr, msr=self.msr, fcr=self.fcr,
            dll=self.dll, dlm=self.dlm, scratch=self.scratch,
            thr_empty_acknowledged=self.thr_empty_acknowledged, rx_overrun=self.rx_overrun,
            tx_buffer=bytes(self.tx), rx_buffer=bytes(self.rx),
        )

    def restore(self, state: SavedState) -> None:
        self.ier, self.lcr, self.mcr, self.msr = state.ier, state.lcr, state.mcr, state.msr
        self.fcr, self.dll, self.dlm, self.scratch = state.fcr, state.dll, state.dlm, state.scratch
        self.thr_empty_acknowledged = state.thr_empty_acknowledged
        self.rx_overrun = state.rx_overrun
        self.tx = deque(state.tx_buffer)
        self.rx = deque(state.rx_buffer)
