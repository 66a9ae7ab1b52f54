"""Declare a small saved state, encode it, decode it, and show the bytes and the value."""

from __future__ import annotations

import savestate
from savestate import Oneof, Protobuf, field, savedstate, u8, u16


class InitStage(Oneof, package="quickstart.pic"):
    """Where the controller is in its initialisation sequence."""


class Ready(InitStage, variant=1):
    """Initialised and serving interrupts."""


class ExpectIcw3(InitStage, variant=2):
    """Waiting for the third initialisation word."""

    icw4_needed: bool = field(1)


class SavedPic(Protobuf, package="quickstart.pic"):
    """One interrupt controller."""

    init: InitStage = field(1)
    icw2: u8 = field(2)
    imr: u8 = field(3, doc="interrupt mask register")


@savedstate
class SavedState(Protobuf, package="quickstart.pic"):
    """The saved state of a pair of interrupt controllers."""

    primary: SavedPic = field(1)
    secondary: SavedPic = field(2)
    ticks: u16 = field(3, default=0)
    pending: list[u8] = field(4, default_factory=list)


def main() -> None:
    state = SavedState(
        primary=SavedPic(init=Ready(), icw2=0x08, imr=0xFB),
        secondary=SavedPic(init=ExpectIcw3(icw4_needed=True), icw2=0x70, imr=0xFF),
        ticks=1000,
        pending=[0, 8],
    )
    data = bytes(state)
    print(f"encoded {len(data)} bytes: {data.hex(' ')}")
    again = SavedState.decode(data)
    print(f"decoded: {again}")
    assert again == state
    print(f"roots: {[f'{c.__module__}.{c.__qualname__}' for c in savestate.roots()]}")


if __name__ == "__main__":
    main()
