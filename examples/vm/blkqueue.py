"""An async block queue: requests are served by an asyncio backend, and a save drains the queue.

The device is an ``AsyncSaveRestore``: its ``save`` cannot answer until the requests already
submitted have completed (their data is in flight to the backend), so it awaits the backend
instead of blocking the event loop. While it drains, the other units of the machine save
concurrently (``StateUnits.save_async``).
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque

from savestate import AsyncSaveRestore, Protobuf, RestoreError, field, savedstate, u32, u64

SECTOR = 64
SECTORS = 16


@savedstate(package="examples.vm.blkqueue")
class BlockQueueSavedState(Protobuf, package="examples.vm.blkqueue"):
    """The queue after it drained: the disk, and what the guest has been told."""

    disk: bytes = field(1, doc=f"{SECTORS} sectors of {SECTOR} bytes")
    completed: u64 = field(2, doc="Requests completed since power-on")
    checksum: u32 = field(3, doc="CRC-32 over the completions, in order")


class RamBackend:
    """The backend: a RAM disk whose writes complete asynchronously (each yields to the event
    loop, as a real backend's I/O would)."""

    def __init__(self) -> None:
        self.disk = bytearray(SECTOR * SECTORS)

    async def write(self, sector: int, data: bytes) -> None:
        await asyncio.sleep(0)
        start = sector % SECTORS * SECTOR
        self.disk[start:start + SECTOR] = data[:SECTOR].ljust(SECTOR, b"\0")


class BlockQueue(AsyncSaveRestore[BlockQueueSavedState]):
    """Requests are queued synchronously (``submit``) and served by ``serve`` on the event
    loop; ``save`` serves every request still queued first."""

    def __init__(self) -> None:
        self.backend = RamBackend()
        self.pending: deque[tuple[int, bytes]] = deque()
        self.completed = 0
        self.checksum = 0

    def submit(self, sector: int, data: bytes) -> None:
        self.pending.append((sector, data))

    async def serve(self) -> None:
        """Serve the queued requests, oldest first."""
        while self.pending:
            sector, data = self.pending.popleft()
            await self.backend.write(sector, data)
            self.completed += 1
            self.checksum = zlib.crc32(sector.to_bytes(4, "little") + data, self.checksum)

    async def save(self) -> BlockQueueSavedState:
        await self.serve()  # drain: nothing may be in flight in a saved state
        return BlockQueueSavedState(
            disk=bytes(self.backend.disk), completed=self.completed, checksum=self.checksum
        )

    async def restore(self, state: BlockQueueSavedState) -> None:
        if len(state.disk) != SECTOR * SECTORS:
            raise RestoreError.InvalidSavedState(
                f"disk is {len(state.disk)} bytes, expected {SECTOR * SECTORS}"
            )
        self.pending.clear()  # requests of the machine being replaced
        self.backend.disk[:] = state.disk
        self.completed, self.checksum = state.completed, state.checksum
