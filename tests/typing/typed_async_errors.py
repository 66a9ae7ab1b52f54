"""Mistakes a type checker reports with the async and the context protocols."""

from __future__ import annotations

from savestate import (
    AsyncSaveRestore,
    Protobuf,
    SaveRestore,
    SaveRestoreWith,
    StateUnits,
    field,
    save_blob,
    save_blob_async,
    savedstate,
    u32,
)


@savedstate
class QueueState(Protobuf, package="typing.aio_errors"):
    pending: u32 = field(1, default=0)


class Channel:
    pass


class Clock:
    pass


class SyncSave(AsyncSaveRestore[QueueState]):
    def save(self) -> QueueState:  # error: override
        return QueueState()


class WrongContext(SaveRestoreWith[QueueState, Channel]):
    def save(self, context: Clock) -> QueueState:  # error: override
        return QueueState()


class Vmbus(SaveRestoreWith[QueueState, Channel]):
    def save(self, context: Channel) -> QueueState:
        return QueueState()

    def restore(self, state: QueueState, context: Channel) -> None:
        pass


class Plain(SaveRestore[QueueState]):
    def save(self) -> QueueState:
        return QueueState()


units = StateUnits()
# mypy says it cannot infer C (no C is both Channel and Clock); pyright reports the argument.
units.add_with("vmbus", Vmbus(), Clock())  # error: misc
units.add("vmbus", Vmbus())  # error: arg-type
units.add_with("plain", Plain(), Channel())  # error: arg-type


class Queue(AsyncSaveRestore[QueueState]):
    async def save(self) -> QueueState:
        return QueueState()


save_blob(Queue())  # error: arg-type


async def save_plain() -> None:
    await save_blob_async(Plain())  # error: arg-type
