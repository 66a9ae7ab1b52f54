"""Mistakes a type checker reports."""

from __future__ import annotations

from savestate import Protobuf, SavedStateBlob, SaveRestore, field, savedstate, u8


@savedstate
class SavedState(Protobuf, package="typing.errors"):
    imr: u8 = field(1, default=0)
    name: str = field(2, default="")


SavedState(imr="high")  # error: arg-type
SavedState(3)  # error: call-arg
SavedState(imr=1, nope=2)  # error: call-arg
SavedState.decode("text")  # error: arg-type


class WrongRestore(SaveRestore[SavedState]):
    def save(self) -> SavedState:
        return SavedState()

    def restore(self, state: int) -> None:  # error: override
        pass


class WrongSave(SaveRestore[SavedState]):
    def save(self) -> int:  # error: override
        return 0


blob = SavedStateBlob.new(SavedState())
parsed = blob.parse(SavedState)
_ = parsed.missing  # error: attr-defined
text: int = SavedState().to_json()  # error: assignment
