"""A vmbus-like channel and a device whose save and restore take it as a context.

The channel (its id and its ring of packets) belongs to the bus, not to the device: the device
cannot save its state without it, and a restored state must be given back to the channel the
device is offered on. Such a device is a ``SaveRestoreWith[S, VmbusChannel]``, added to the
state units with ``units.add_with("vmbus/input", device, channel)``: the same pattern as the
plain ``SaveRestore[S]``, with one more argument.
"""

from __future__ import annotations

from collections import deque

from savestate import Protobuf, RestoreError, SaveRestoreWith, field, savedstate, u32, u64


class VmbusChannel:
    """A channel offered by the bus: an id and a ring of packets from the device to the guest."""

    def __init__(self, channel_id: int, ring_size: int = 8) -> None:
        self.channel_id = channel_id
        self.ring_size = ring_size
        self.ring: deque[bytes] = deque()
        self.sent = 0

    def send(self, packet: bytes) -> bool:
        """Queue a packet for the guest; False when the ring is full."""
        if len(self.ring) >= self.ring_size:
            return False
        self.ring.append(packet)
        self.sent += 1
        return True

    def receive(self) -> bytes | None:
        """The guest reads the oldest packet."""
        return self.ring.popleft() if self.ring else None


class SavedRing(Protobuf, package="examples.vm.vmbus"):
    """What the channel holds for the device: the packets the guest has not read yet."""

    channel_id: u32 = field(1)
    packets: list[bytes] = field(2)
    sent: u64 = field(3)


@savedstate(package="examples.vm.vmbus")
class SynthInputSavedState(Protobuf, package="examples.vm.vmbus"):
    """A synthetic input device: its own counters and its channel's ring."""

    ring: SavedRing = field(1)
    events: u64 = field(2, doc="Input events generated")
    dropped: u64 = field(3, doc="Events lost to a full ring")


class SynthInput(SaveRestoreWith[SynthInputSavedState, VmbusChannel]):
    """Sends an input event on its channel every few milliseconds."""

    def __init__(self) -> None:
        self.events = 0
        self.dropped = 0

    def tick(self, channel: VmbusChannel, now: int) -> None:
        self.events += 1
        if not channel.send(b"key:" + now.to_bytes(8, "little")):
            self.dropped += 1

    def save(self, context: VmbusChannel) -> SynthInputSavedState:
        ring = SavedRing(channel_id=context.channel_id, packets=list(context.ring),
                         sent=context.sent)
        return SynthInputSavedState(ring=ring, events=self.events, dropped=self.dropped)

    def restore(self, state: SynthInputSavedState, context: VmbusChannel) -> None:
        if state.ring.channel_id != context.channel_id:
            raise RestoreError.InvalidSavedState(
                f"saved for channel {state.ring.channel_id}, offered on {context.channel_id}"
            )
        if len(state.ring.packets) > context.ring_size:
            raise RestoreError.InvalidSavedState(
                f"{len(state.ring.packets)} packets do not fit a ring of {context.ring_size}"
            )
        context.ring = deque(state.ring.packets)
        context.sent = state.ring.sent
        self.events, self.dropped = state.events, state.dropped
