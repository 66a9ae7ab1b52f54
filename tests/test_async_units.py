"""Async units and units with a context: ``AsyncSaveRestore``, ``SaveRestoreWith``,
``StateUnits.save_async`` / ``restore_async`` (concurrent saves, time limits, all-or-nothing
restore rolled back on any failure, cancellation included).

Concurrency is shown with events, never with timing: a unit's save waits for an event that only
another unit's save sets. The time limits that run out wait on events nobody sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from savestate import (
    AsyncSaveRestore,
    AsyncSaveRestoreWith,
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SaveError,
    SaveRestore,
    SaveRestoreWith,
    StateUnits,
    field,
    restore_blob_async,
    save_blob_async,
    savedstate,
    u32,
)
from savestate.state.units import SavedStateUnits

T = TypeVar("T")
# Long enough never to run out on a loaded machine: it only turns a hang into a failure.
NO_HANG = 30.0


@savedstate(package="tests.async_units")
class Counter(Protobuf, package="tests.async_units"):
    value: u32 = field(1)
    values: list[u32] = field(2, default_factory=list)


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class SyncDevice(SaveRestore[Counter]):
    def __init__(self, value: int = 0, fail: str = "") -> None:
        self.value, self.fail, self.calls = value, fail, 0

    def save(self) -> Counter:
        if self.fail == "save":
            raise ValueError("sync save broke")
        return Counter(value=self.value)

    def restore(self, state: Counter) -> None:
        self.calls += 1
        if self.fail == "restore":
            raise ValueError("sync restore broke")
        self.value = state.value


class AsyncDevice(AsyncSaveRestore[Counter]):
    """An async device; ``before_save`` / ``before_restore`` run inside the awaited calls."""

    def __init__(self, value: int = 0) -> None:
        self.value, self.calls = value, 0
        self.before_save: Callable[[], Awaitable[None]] | None = None
        self.before_restore: Callable[[], Awaitable[None]] | None = None
        self.fail = ""

    async def save(self) -> Counter:
        if self.before_save is not None:
            await self.before_save()
        if self.fail == "save":
            raise ValueError("async save broke")
        return Counter(value=self.value)

    async def restore(self, state: Counter) -> None:
        self.calls += 1
        self.value = state.value  # changed before the wait: a rollback must undo it
        if self.before_restore is not None:
            await self.before_restore()
        if self.fail == "restore":
            raise RestoreError.InvalidSavedState("async restore refused")


class Bus:
    """A context: what a device needs to save (here: an offset its value is stored under)."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.seen: list[str] = []


class BusDevice(SaveRestoreWith[Counter, Bus]):
    def __init__(self, value: int = 0) -> None:
        self.value = value

    def save(self, context: Bus) -> Counter:
        context.seen.append("save")
        return Counter(value=self.value + context.offset)

    def restore(self, state: Counter, context: Bus) -> None:
        context.seen.append("restore")
        if state.value < context.offset:
            raise RestoreError.InvalidSavedState(f"{state.value} is below the bus offset")
        self.value = state.value - context.offset


class AsyncBusDevice(AsyncSaveRestoreWith[Counter, Bus]):
    def __init__(self, value: int = 0) -> None:
        self.value = value

    async def save(self, context: Bus) -> Counter:
        await asyncio.sleep(0)
        return Counter(value=self.value * context.offset)

    async def restore(self, state: Counter, context: Bus) -> None:
        await asyncio.sleep(0)
        self.value = state.value // context.offset


def mixed() -> tuple[StateUnits, SyncDevice, AsyncDevice, BusDevice, AsyncBusDevice, Bus]:
    sync, aio, bus_dev, abus_dev, bus = SyncDevice(1), AsyncDevice(2), BusDevice(3), \
        AsyncBusDevice(4), Bus(100)
    units = StateUnits({"sync": sync, "aio": aio})
    units.add_with("bus", bus_dev, bus)
    units.add_with("abus", abus_dev, bus)
    return units, sync, aio, bus_dev, abus_dev, bus


def values(units: StateUnits) -> list[int]:
    return [units[name].value for name in units]  # type: ignore[union-attr]


# -- concurrency ------------------------------------------------------------------------------


def test_saves_run_concurrently_a_waits_on_an_event_that_b_sets() -> None:
    async def scenario() -> SavedStateUnits:
        released = asyncio.Event()
        a, b = AsyncDevice(1), AsyncDevice(2)

        async def wait_for_b() -> None:
            await asyncio.wait_for(released.wait(), NO_HANG)  # saved one after another: stuck

        async def release_a() -> None:
            released.set()

        a.before_save, b.before_save = wait_for_b, release_a
        return await StateUnits({"a": a, "b": b}).save_async()

    state = run(scenario())
    assert [u.name for u in state.units] == ["a", "b"]  # records in unit order, not finish order
    assert [u.state.parse(Counter).value for u in state.units] == [1, 2]


def test_a_failed_save_cancels_the_saves_still_running() -> None:
    async def scenario() -> tuple[SaveError, bool]:
        stuck, broken = AsyncDevice(), AsyncDevice()
        started = asyncio.Event()
        cancelled = False

        async def wait_forever() -> None:
            nonlocal cancelled
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled = True
                raise

        async def fail_once_started() -> None:
            await started.wait()

        stuck.before_save, broken.before_save = wait_forever, fail_once_started
        broken.fail = "save"
        with pytest.raises(SaveError) as info:
            await StateUnits({"stuck": stuck, "broken": broken}).save_async()
        return info.value, cancelled

    err, cancelled = run(scenario())
    assert isinstance(err, SaveError.ChildError) and err.names == ["broken"]
    assert "async save broke" in str(err)
    assert cancelled


# -- time limits ------------------------------------------------------------------------------


def test_a_save_that_runs_out_of_time_is_a_save_error_naming_the_unit() -> None:
    slow = AsyncDevice()

    async def never() -> None:
        await asyncio.Event().wait()

    slow.before_save = never
    units = StateUnits({"fast": SyncDevice(1), "slow": slow})
    with pytest.raises(SaveError) as info:
        run(units.save_async(timeout=0.01))
    err = info.value
    assert isinstance(err, SaveError.ChildError) and err.names == ["slow"]
    assert isinstance(err.cause, SaveError.Other) and isinstance(err.cause.cause, TimeoutError)
    assert str(err) == "failed to save child device slow: save did not finish within 0.01 s"


def test_a_restore_that_runs_out_of_time_is_rolled_back() -> None:
    first, slow = SyncDevice(1), AsyncDevice(2)
    units = StateUnits({"first": first, "slow": slow})
    state = run(StateUnits({"first": SyncDevice(10), "slow": AsyncDevice(20)}).save_async())
    calls = 0

    async def never_the_first_time() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()

    slow.before_restore = never_the_first_time
    with pytest.raises(RestoreError) as info:
        run(units.restore_async(state, timeout=0.01))
    err = info.value
    assert isinstance(err, RestoreError.ChildError) and err.names == ["slow"]
    assert isinstance(err.cause, RestoreError.Other) and isinstance(err.cause.cause, TimeoutError)
    assert "restore did not finish within 0.01 s" in str(err)
    assert (first.value, slow.value) == (1, 2)  # both put back (slow had set 20 before waiting)
    assert first.calls == 2 and slow.calls == 2


class Values(SaveRestore[Counter]):
    def __init__(self, values: list[int]) -> None:
        self.values = values

    def save(self) -> Counter:
        return Counter(value=0, values=self.values)

    def restore(self, state: Counter) -> None:
        self.values = state.values


def test_an_async_rollback_puts_nested_units_back_under_wide_limits() -> None:
    # The nested units' current state is over the caller's max_size, the incoming one is not:
    # the rollback's inner restore (run after an async unit fails) must not be held to the
    # caller's limit.
    big = Values(list(range(1000, 3000)))
    failing = AsyncDevice(1)

    async def refuse_the_new_state() -> None:
        if failing.value == 2:
            raise RestoreError.InvalidSavedState("refused")

    failing.before_restore = refuse_the_new_state
    units = StateUnits({"inner": StateUnits({"big": big}), "failing": failing})
    state = run(StateUnits({"inner": StateUnits({"big": Values([7])}),
                            "failing": AsyncDevice(2)}).save_async())
    with pytest.raises(RestoreError) as info:
        run(units.restore_async(state, max_size=1024))
    assert str(info.value) == (
        "failed to restore child device failing: saved state is invalid: refused")
    assert getattr(info.value, "rollback_failures", []) == []
    assert (big.values, failing.value) == (list(range(1000, 3000)), 1)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1", True])
def test_a_time_limit_must_be_a_positive_number(bad: Any) -> None:
    units = StateUnits({"a": AsyncDevice()})
    with pytest.raises(ValueError, match="timeout"):
        run(units.save_async(timeout=bad))
    with pytest.raises(ValueError, match="timeout"):
        run(units.restore_async(SavedStateUnits(), timeout=bad))


# -- cancellation -----------------------------------------------------------------------------


def test_cancelling_a_restore_rolls_every_unit_back() -> None:
    async def scenario() -> tuple[StateUnits, list[int]]:
        units, *_ = mixed()
        before = values(units)
        new = await StateUnits({"sync": SyncDevice(11), "aio": AsyncDevice(22)}).save_async()
        bus = Bus(100)
        other_bus = StateUnits()
        other_bus.add_with("bus", BusDevice(33), bus)
        other_bus.add_with("abus", AsyncBusDevice(44), bus)
        new.units += (await other_bus.save_async()).units
        # Stop inside the last unit's restore, once the others have been restored.
        reached = asyncio.Event()
        abus: AsyncBusDevice = units["abus"]  # type: ignore[assignment]
        original_restore = abus.restore
        rolled_back = False

        async def restore_then_wait(state: Counter, context: Bus) -> None:
            nonlocal rolled_back
            await original_restore(state, context)
            if reached.is_set():
                rolled_back = True
                return
            reached.set()
            await asyncio.Event().wait()

        abus.restore = restore_then_wait  # type: ignore[method-assign]
        task = asyncio.ensure_future(units.restore_async(new))
        await reached.wait()
        assert values(units) == [11, 22, 33, 44]  # all four restored, the last one waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rolled_back
        return units, before

    units, before = run(scenario())
    assert values(units) == before == [1, 2, 3, 4]


def test_a_keyboard_interrupt_in_an_async_restore_rolls_back_then_goes_on() -> None:
    first, second = AsyncDevice(1), AsyncDevice(2)
    units = StateUnits({"first": first, "second": second})
    state = run(StateUnits({"first": AsyncDevice(10), "second": AsyncDevice(20)}).save_async())
    calls = 0

    async def interrupt_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt

    second.before_restore = interrupt_once
    with pytest.raises(KeyboardInterrupt):
        run(units.restore_async(state))
    assert (first.value, second.value) == (1, 2)


# -- a mix of kinds ---------------------------------------------------------------------------


def test_a_mix_of_sync_async_and_context_units_round_trips() -> None:
    units, *_, bus = mixed()
    state = run(units.save_async())
    assert [u.name for u in state.units] == ["sync", "aio", "bus", "abus"]
    assert [u.state.parse(Counter).value for u in state.units] == [1, 2, 103, 400]
    assert bus.seen == ["save"]

    fresh, f_sync, f_aio, f_bus, f_abus, fresh_bus = mixed()
    f_sync.value = f_aio.value = f_bus.value = f_abus.value = 0
    run(fresh.restore_async(state, timeout=NO_HANG))
    assert values(fresh) == [1, 2, 3, 4]
    assert bytes(run(fresh.save_async())) == bytes(state)
    assert fresh_bus.seen == ["save", "restore", "save"]  # restore saved a backup first


def test_the_sync_api_runs_sync_and_context_units() -> None:
    sync, bus_dev, bus = SyncDevice(5), BusDevice(6), Bus(10)
    units = StateUnits({"sync": sync})
    units.add_with("bus", bus_dev, bus)
    state = units.save()
    assert [u.state.parse(Counter).value for u in state.units] == [5, 16]
    sync.value = bus_dev.value = 0
    units.restore(state)
    assert (sync.value, bus_dev.value) == (5, 6)
    assert bytes(run(units.save_async())) == bytes(state)


def test_the_sync_api_names_the_async_unit_it_cannot_run() -> None:
    units, sync, *_ = mixed()
    with pytest.raises(SaveError) as saved:
        units.save()
    assert isinstance(saved.value, SaveError.ChildError) and saved.value.names == ["aio"]
    assert "AsyncDevice is an async unit: use `await units.save_async()`" in str(saved.value)
    state = run(units.save_async())
    with pytest.raises(RestoreError) as restored:
        units.restore(state)
    assert isinstance(restored.value, RestoreError.ChildError) and restored.value.names == ["aio"]
    assert "use `await units.restore_async()`" in str(restored.value)
    assert sync.calls == 0  # refused before anything ran


def test_an_object_whose_save_is_a_coroutine_function_counts_as_async() -> None:
    class Duck:
        async def save(self) -> Counter:
            return Counter(value=7)

        async def restore(self, state: Counter) -> None:
            self.value = state.value

    duck = Duck()
    units = StateUnits({"duck": duck})  # type: ignore[dict-item]
    with pytest.raises(SaveError, match="async unit"):
        units.save()
    state = run(units.save_async())
    run(units.restore_async(state))
    assert duck.value == 7


# -- errors from each kind, with the unit's path ----------------------------------------------


def test_save_errors_from_each_kind_name_the_unit() -> None:
    broken_sync = StateUnits({"ok": AsyncDevice(), "sync": SyncDevice(fail="save")})
    with pytest.raises(SaveError, match=r"^failed to save child device sync: sync save broke$"):
        run(broken_sync.save_async())
    aio = AsyncDevice()
    aio.fail = "save"
    with pytest.raises(SaveError, match=r"^failed to save child device aio: async save broke$"):
        run(StateUnits({"aio": aio}).save_async())

    class BadBus(SaveRestoreWith[Counter, Bus]):
        def save(self, context: Bus) -> Counter:
            return Counter(value=-1)  # out of range for u32: an EncodeError with the field

    units = StateUnits()
    units.add_with("bus", BadBus(), Bus(0))
    with pytest.raises(SaveError, match=r"^failed to save child device bus: .*Counter\.value"):
        units.save()
    with pytest.raises(SaveError, match=r"^failed to save child device bus: .*Counter\.value"):
        run(units.save_async())


def test_restore_errors_from_each_kind_name_the_unit_and_roll_back() -> None:
    for failing in ("sync", "aio", "bus"):
        units, sync, aio, bus_dev, _, bus = mixed()
        new = run(units.save_async())
        for device in (sync, aio, bus_dev):
            device.value += 1
        before = values(units)
        if failing == "sync":
            sync.fail = "restore"
        elif failing == "aio":
            aio.fail = "restore"
        else:
            bus.offset = 1000  # the saved 103 is now below the offset
        with pytest.raises(RestoreError) as info:
            run(units.restore_async(new))
        err = info.value
        assert isinstance(err, RestoreError.ChildError) and err.names == [failing], failing
        assert values(units) == before, failing


def test_a_corrupt_record_means_no_restore_runs() -> None:
    units, sync, aio, *_ = mixed()
    state = run(units.save_async())
    state.units[3].state = SavedStateBlob(type_url=state.units[3].state.type_url, value=b"\x08")
    with pytest.raises(RestoreError) as info:
        run(units.restore_async(state))
    assert isinstance(info.value, RestoreError.ChildError) and info.value.names == ["abus"]
    assert isinstance(info.value.cause, RestoreError.ProtobufDecode)
    assert sync.calls == aio.calls == 0


def test_a_restore_that_mutates_what_save_returned_is_still_rolled_back() -> None:
    class Aliasing(AsyncSaveRestore[Counter]):
        def __init__(self, values: list[int]) -> None:
            self.state = Counter(value=1, values=values)

        async def save(self) -> Counter:
            return self.state  # the live object

        async def restore(self, state: Counter) -> None:
            self.state.values[:] = state.values  # mutates the very object save returned
            self.state.value = state.value

    aliasing, failing = Aliasing([1, 2]), AsyncDevice()
    failing.fail = "restore"
    units = StateUnits({"aliasing": aliasing, "failing": failing})
    state = run(StateUnits({"aliasing": Aliasing([5]), "failing": AsyncDevice()}).save_async())
    with pytest.raises(RestoreError):
        run(units.restore_async(state))
    assert aliasing.state.values == [1, 2]  # a backup that was the live object would say [5]


# -- the blob helpers -------------------------------------------------------------------------


def test_save_and_restore_blob_async() -> None:
    device = AsyncDevice(9)
    blob = run(save_blob_async(device))
    assert blob.parse(Counter).value == 9
    fresh = AsyncDevice()
    run(restore_blob_async(fresh, blob, timeout=NO_HANG))
    assert fresh.value == 9
    with pytest.raises(RestoreError.ProtobufDecode):
        run(restore_blob_async(fresh, SavedStateBlob.new(SavedStateUnits())))
    device.fail = "save"
    with pytest.raises(SaveError.Other, match="async save broke"):
        run(save_blob_async(device))

    async def never() -> None:
        await asyncio.Event().wait()

    fresh.before_restore = never
    with pytest.raises(RestoreError.Other, match="did not finish within"):
        run(restore_blob_async(fresh, blob, timeout=0.01))
