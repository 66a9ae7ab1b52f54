"""The machine with its async and context devices: saved and restored with asyncio.

``AsyncMachine`` is the ``Machine`` plus two units: ``blkq``, an async block queue whose save
drains it (``AsyncSaveRestore``), and ``vmbus/input``, a synthetic input device on a vmbus-like
channel whose save takes the channel (``SaveRestoreWith``). Its units are saved concurrently
(``await machine.save_async()``) and restored all or nothing (``await
machine.restore_async(state)``); the synchronous ``save()`` names the async unit it cannot run.
"""

from __future__ import annotations

from savestate.state.units import SavedStateUnits

from .blkqueue import BlockQueue
from .machine import Machine
from .vmbus import SynthInput, VmbusChannel

INPUT_EVERY, INPUT_READ_EVERY, BLOCK_EVERY, SERVE_EVERY = 7, 20, 30, 25


class AsyncMachine(Machine):
    def __init__(self) -> None:
        super().__init__()
        self.blkq = BlockQueue()
        self.channel = VmbusChannel(channel_id=3)
        self.synth_input = SynthInput()
        self.units.add("blkq", self.blkq)
        self.units.add_with("vmbus/input", self.synth_input, self.channel)

    def step(self) -> None:
        super().step()
        ms = self.cpu.now // 10_000
        if ms % INPUT_EVERY == 0:
            self.synth_input.tick(self.channel, self.cpu.now)
        if ms % INPUT_READ_EVERY == 0:  # the guest's driver empties the ring
            while self.channel.receive() is not None:
                pass
        if ms % BLOCK_EVERY == 0:
            self.blkq.submit(ms // BLOCK_EVERY, f"block at {ms} ms".encode())

    async def run_async(self, steps: int) -> None:
        """Run ``steps`` steps, the block queue's backend serving on the event loop."""
        for i in range(steps):
            self.step()
            if i % SERVE_EVERY == 0:
                await self.blkq.serve()

    async def save_async(self, timeout: float | None = None) -> SavedStateUnits:
        """Every unit's state, saved concurrently (``timeout``: seconds per unit)."""
        return await self.units.save_async(timeout=timeout)

    async def restore_async(self, state: SavedStateUnits, timeout: float | None = None) -> None:
        """Restore every unit, all or nothing."""
        await self.units.restore_async(state, timeout=timeout)
        self.sync_lines()
