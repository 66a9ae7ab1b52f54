"""The typed form of AsyncSaveRestore, SaveRestoreWith[S, C] and the async state units."""

from __future__ import annotations

from typing_extensions import reveal_type

from savestate import (
    AsyncSaveRestore,
    AsyncSaveRestoreWith,
    Protobuf,
    SavedStateBlob,
    SaveRestoreWith,
    StateUnits,
    field,
    restore_blob_async,
    save_blob_async,
    savedstate,
    u32,
)
from savestate.state.units import SavedStateUnits


@savedstate
class QueueState(Protobuf, package="typing.aio"):
    pending: list[u32] = field(1, default_factory=list)


class Channel:
    def __init__(self, ring: int) -> None:
        self.ring = ring


class Queue(AsyncSaveRestore[QueueState]):
    async def save(self) -> QueueState:
        return QueueState()

    async def restore(self, state: QueueState) -> None:
        pass


class VmbusDevice(SaveRestoreWith[QueueState, Channel]):
    def save(self, context: Channel) -> QueueState:
        reveal_type(context)  # revealed: Channel
        return QueueState(pending=[context.ring])

    def restore(self, state: QueueState, context: Channel) -> None:
        pass


class AsyncVmbusDevice(AsyncSaveRestoreWith[QueueState, Channel]):
    async def save(self, context: Channel) -> QueueState:
        return QueueState()

    async def restore(self, state: QueueState, context: Channel) -> None:
        pass


async def main() -> None:
    queue = Queue()
    reveal_type(await queue.save())  # revealed: QueueState
    reveal_type(VmbusDevice().save(Channel(1)))  # revealed: QueueState
    reveal_type(await AsyncVmbusDevice().save(Channel(1)))  # revealed: QueueState
    blob = await save_blob_async(queue)
    reveal_type(blob)  # revealed: SavedStateBlob
    await restore_blob_async(queue, blob, timeout=1.5)
    units = StateUnits({"queue": queue})
    units.add_with("vmbus", VmbusDevice(), Channel(2))
    units.add_with("avmbus", AsyncVmbusDevice(), Channel(3))
    state = await units.save_async(timeout=2.0)
    reveal_type(state)  # revealed: SavedStateUnits
    await units.restore_async(state, timeout=2.0)
    reveal_type(units.save())  # revealed: SavedStateUnits
    assert isinstance(blob, SavedStateBlob) and isinstance(state, SavedStateUnits)
