"""The typed form of a saved-state root, blobs, SaveRestore and the JSON methods."""

from __future__ import annotations

import datetime
from typing import Any

from typing_extensions import reveal_type

from savestate import Oneof, Protobuf, SavedStateBlob, SaveRestore, field, savedstate, u8


@savedstate
class SavedState(Protobuf, package="typing.pic"):
    primary: SavedPic = field(1)
    imr: u8 = field(2, default=0)
    ticks: list[int] = field(3, default_factory=list)
    since: datetime.timedelta | None = field(4, default=None)


@savedstate(package="typing.pic")
class Other(Protobuf, package="typing.pic"):
    name: str = field(1, default="")


class SavedPic(Protobuf, package="typing.pic"):
    init: Stage = field(1)
    icw2: u8 = field(2, default=0)


class Stage(Oneof, package="typing.pic"):
    pass


class Ready(Stage, variant=1):
    pass


class Waiting(Stage, variant=2):
    count: u8 = field(1, default=0)


class Pic(SaveRestore[SavedState]):
    def save(self) -> SavedState:
        return SavedState(primary=SavedPic(init=Ready()))

    def restore(self, state: SavedState) -> None:
        pass


state = SavedState(primary=SavedPic(init=Waiting(count=2)), imr=3)
reveal_type(state.imr)  # revealed: int
reveal_type(state.primary.init)  # revealed: Stage
reveal_type(state.since)  # revealed: datetime.timedelta | None
reveal_type(state.encode())  # revealed: bytes
reveal_type(bytes(state))  # revealed: bytes
reveal_type(SavedState.decode(b""))  # revealed: SavedState
reveal_type(Other.decode(b""))  # revealed: Other
blob = SavedStateBlob.new(Pic().save())
reveal_type(blob.parse(SavedState))  # revealed: SavedState
reveal_type(Pic().save())  # revealed: SavedState
reveal_type(state.to_json())  # revealed: str
reveal_type(SavedState.from_json("{}"))  # revealed: SavedState
reveal_type(Waiting.from_dict({"waiting": {}}))  # revealed: Waiting
as_dict: dict[str, Any] = state.to_dict()
