"""The example machine's async device (a block queue that drains before it saves) and its
context device (a synthetic input device on a vmbus-like channel)."""

from __future__ import annotations

import asyncio

import pytest

from examples.vm import AsyncMachine
from examples.vm.blkqueue import BlockQueue, BlockQueueSavedState
from examples.vm.vmbus import SynthInput, SynthInputSavedState, VmbusChannel
from savestate import RestoreError, SaveError, restore_blob_async, save_blob_async
from savestate.state.units import SavedStateUnits


def running(steps: int) -> AsyncMachine:
    machine = AsyncMachine()
    asyncio.run(machine.run_async(steps))
    return machine


def test_the_new_devices_save_and_restore_byte_identically() -> None:
    # 645 ms: a request is still queued (served every 25 steps) and the ring holds a packet.
    machine = running(645)
    assert machine.blkq.pending and machine.channel.ring
    state = asyncio.run(machine.save_async())
    assert not machine.blkq.pending  # the save drained the queue
    records = {u.name: u.state for u in state.units}
    queue = records["blkq"].parse(BlockQueueSavedState)
    assert queue.completed == 645 // 30 and b"block at 630 ms" in queue.disk  # the drained one
    synth = records["vmbus/input"].parse(SynthInputSavedState)
    assert synth.ring.channel_id == 3 and synth.ring.packets == list(machine.channel.ring)

    fresh = AsyncMachine()
    asyncio.run(fresh.restore_async(SavedStateUnits.decode(bytes(state))))
    assert bytes(asyncio.run(fresh.save_async())) == bytes(state)
    for name in ("blkq", "vmbus/input"):
        assert bytes(asyncio.run(fresh.save_async())).count(bytes(records[name].value)) == 1
    # Both machines go on identically.
    asyncio.run(machine.run_async(500))
    asyncio.run(fresh.run_async(500))
    assert bytes(asyncio.run(fresh.save_async())) == bytes(asyncio.run(machine.save_async()))


def test_each_device_alone_through_its_blob() -> None:
    queue = BlockQueue()
    queue.submit(2, b"two")
    blob = asyncio.run(save_blob_async(queue))
    again = BlockQueue()
    asyncio.run(restore_blob_async(again, blob))
    assert bytes(asyncio.run(save_blob_async(again)).value) == bytes(blob.value)
    assert again.backend.disk[128:131] == b"two"

    channel, device = VmbusChannel(5), SynthInput()
    device.tick(channel, 42)
    state = device.save(channel)
    other_channel, other = VmbusChannel(5), SynthInput()
    other.restore(SynthInputSavedState.decode(bytes(state)), other_channel)
    assert bytes(other.save(other_channel)) == bytes(state)
    with pytest.raises(RestoreError.InvalidSavedState, match="offered on 6"):
        other.restore(state, VmbusChannel(6))


def test_the_machine_names_its_async_unit_in_the_sync_api() -> None:
    machine = AsyncMachine()
    with pytest.raises(SaveError) as info:
        machine.save()
    assert isinstance(info.value, SaveError.ChildError) and info.value.names == ["blkq"]


def test_a_state_for_another_channel_is_refused_and_the_machine_rolled_back() -> None:
    machine = running(300)
    before = bytes(asyncio.run(machine.save_async()))
    other = running(450)
    other.channel.channel_id = 9  # the input device was offered on another channel there
    state = asyncio.run(other.save_async())
    with pytest.raises(RestoreError) as info:
        asyncio.run(machine.restore_async(state))
    assert isinstance(info.value, RestoreError.ChildError)
    assert info.value.names == ["vmbus/input"]
    assert "saved for channel 9, offered on 3" in str(info.value)
    assert bytes(asyncio.run(machine.save_async())) == before  # cpu, ..., blkq all put back
