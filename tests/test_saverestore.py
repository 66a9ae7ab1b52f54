"""SavedStateBlob, SaveRestore helpers and every SaveError / RestoreError kind, with their text."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

from savestate import (
    AsyncSaveRestore,
    DecodeError,
    NoSavedState,
    Protobuf,
    RestoreError,
    SavedStateBlob,
    SavedStateNotSupported,
    SaveError,
    SaveRestore,
    SchemaError,
    StateUnits,
    field,
    restore_blob,
    restore_blob_async,
    save_blob,
    save_blob_async,
    savedstate,
    snapshot,
    u8,
    u32,
)
from savestate.state.blob import BlobTypeMismatch, type_url_of
from savestate.state.saverestore import saved_blob, state_type


@savedstate(package="test")
class Message:
    x: u32 = field(1)


@savedstate(package="test.other")
class Other:
    name: str = field(1)


class NotARoot(Protobuf, package="test"):
    x: u32 = field(1)


class Holder(Protobuf, package="test"):
    children: list[tuple[str, SavedStateBlob]] = field(1)
    maybe: SavedStateBlob | None = field(2, default=None)
    one: SavedStateBlob = field(3, default_factory=SavedStateBlob)


MESSAGE_URL = "type.googleapis.com/test.Message"


def test_blob_bytes_match_the_reference_vector() -> None:
    blob = SavedStateBlob.new(Message(x=5))
    assert blob.type_url == MESSAGE_URL
    assert bytes(blob) == bytes.fromhex("0a20") + MESSAGE_URL.encode() + bytes.fromhex("12020805")
    assert SavedStateBlob.decode(bytes(blob)) == blob
    assert blob.parse(Message) == Message(x=5)


def test_no_saved_state_blob() -> None:
    blob = SavedStateBlob.new(NoSavedState())
    assert bytes(blob) == bytes.fromhex("0a2d") + b"type.googleapis.com/save_restore.NoSavedState"
    assert blob.parse(NoSavedState) == NoSavedState()


def test_blob_type_mismatch_names_both_urls() -> None:
    blob = SavedStateBlob.new(Other(name="a"))
    with pytest.raises(BlobTypeMismatch) as info:
        blob.parse(Message)
    assert isinstance(info.value, DecodeError)
    assert str(info.value) == (
        "protobuf type mismatch, expected type.googleapis.com/test.Message, "
        "got type.googleapis.com/test.other.Other"
    )
    assert (info.value.expected, info.value.actual) == (MESSAGE_URL, blob.type_url)


def test_blob_url_with_https_prefix_is_accepted() -> None:
    blob = SavedStateBlob(type_url="https://" + MESSAGE_URL, value=bytes.fromhex("0807"))
    assert blob.parse(Message) == Message(x=7)
    assert blob.is_a(Message) and not blob.is_a(Other)


def test_blob_checks_url_before_decoding() -> None:
    blob = SavedStateBlob(type_url="type.googleapis.com/x.Y", value=b"\xff\xff")
    with pytest.raises(BlobTypeMismatch):
        blob.parse(Message)


def test_blob_payload_error_has_the_field_path() -> None:
    blob = SavedStateBlob(type_url=MESSAGE_URL, value=bytes.fromhex("08ffffffff1f"))
    with pytest.raises(DecodeError) as info:
        blob.parse(Message)
    assert "Message.x" in str(info.value)


def test_only_roots_make_blobs() -> None:
    with pytest.raises(SchemaError, match="not a saved-state root"):
        SavedStateBlob.new(NotARoot(x=1))
    with pytest.raises(SchemaError):
        SavedStateBlob(type_url="", value=b"").parse(NotARoot)


def test_blob_as_a_field() -> None:
    inner = SavedStateBlob.new(Message(x=1))
    holder = Holder(children=[("a", inner), ("b", SavedStateBlob.new(Other(name="")))],
                    maybe=inner, one=inner)
    again = Holder.decode(bytes(holder))
    assert again == holder
    assert again.children[0][1].parse(Message) == Message(x=1)
    assert Holder.decode(bytes(Holder(children=[]))) == Holder(children=[])


def test_blob_of_a_blob() -> None:
    inner = SavedStateBlob.new(Message(x=9))
    outer = SavedStateBlob.new(inner)
    assert outer.type_url == "type.googleapis.com/google.protobuf.Any"
    assert outer.value == bytes(inner)
    assert outer.parse(SavedStateBlob).parse(Message) == Message(x=9)
    with pytest.raises(BlobTypeMismatch):
        outer.parse(Message)


def test_blob_proto_identity() -> None:
    assert type_url_of(SavedStateBlob) == "type.googleapis.com/google.protobuf.Any"
    assert SavedStateBlob.__savestate_wellknown__ == "google.protobuf.Any"
    assert SavedStateBlob.__savestate_import__ == "google/protobuf/any.proto"


# -- SaveRestore objects --------------------------------------------------------------------------


@savedstate(package="test.dev")
class DevState:
    reg: u8 = field(1)


class Dev(SaveRestore[DevState]):
    def __init__(self, reg: int = 0) -> None:
        self.reg = reg

    def save(self) -> DevState:
        return DevState(reg=self.reg)

    def restore(self, state: DevState) -> None:
        if state.reg == 0xEE:
            raise RestoreError.InvalidSavedState("register value 0xee is reserved")
        if state.reg == 0xEF:
            raise KeyError("boom")
        self.reg = state.reg


class Unsavable(SaveRestore[SavedStateNotSupported]):
    def save(self) -> SavedStateNotSupported:
        raise AssertionError("never called")

    def restore(self, state: SavedStateNotSupported) -> None:
        raise AssertionError("never called")


def test_state_type_is_read_from_the_declaration() -> None:
    assert state_type(Dev()) is DevState
    assert state_type(Dev) is DevState
    assert state_type(Unsavable()) is SavedStateNotSupported
    assert state_type(object()) is None


def test_save_blob_and_restore_blob() -> None:
    blob = save_blob(Dev(7))
    dev = Dev()
    restore_blob(dev, blob)
    assert dev.reg == 7


def test_blob_helpers_refuse_what_is_not_a_device() -> None:
    with pytest.raises(TypeError) as info:
        save_blob(object())  # type: ignore[arg-type]
    assert str(info.value) == "save_blob() takes a device with save() (a SaveRestore), got object"
    with pytest.raises(TypeError) as info:
        save_blob(DevState(reg=7))  # type: ignore[arg-type]
    assert str(info.value) == (
        "save_blob() takes a device with save() (a SaveRestore), got DevState, a saved state, "
        "not the device that saves and restores it"
    )
    blob = save_blob(Dev(7))
    with pytest.raises(TypeError, match=r"^restore_blob\(\) takes a device with restore\(\)"):
        restore_blob(blob, blob)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^save_blob_async\(\) .* got object$"):
        asyncio.run(save_blob_async(object()))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got SavedStateBlob, a blob of saved state$"):
        asyncio.run(restore_blob_async(blob, blob))  # type: ignore[arg-type]


class AsyncDev(AsyncSaveRestore[DevState]):
    def __init__(self) -> None:
        self.reg = 0

    async def save(self) -> DevState:
        return DevState(reg=self.reg)

    async def restore(self, state: DevState) -> None:
        self.reg = state.reg


class AsyncRestoreDev(Dev):
    async def restore(self, state: DevState) -> None:  # type: ignore[override]
        self.reg = state.reg


def test_sync_restores_refuse_an_async_device() -> None:
    # Calling an async restore only makes a coroutine: the device kept its state while
    # restore_blob and StateUnits.restore returned as if they had restored it.
    blob = save_blob(Dev(7))
    dev = AsyncDev()
    with pytest.raises(TypeError) as info:
        restore_blob(dev, blob)  # type: ignore[arg-type]
    assert str(info.value) == (
        "restore_blob() cannot restore AsyncDev, an async device: use "
        "`await restore_blob_async(device, blob)`"
    )
    mixed = AsyncRestoreDev()
    with pytest.raises(TypeError, match=r"^restore_blob\(\) cannot restore AsyncRestoreDev"):
        restore_blob(mixed, blob)
    units = StateUnits({"dev": mixed})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed, never left unawaited
        with pytest.raises(RestoreError.ChildError) as child:
            units.restore(StateUnits({"dev": Dev(7)}).save())
    assert str(child.value) == (
        "failed to restore child device dev: restore() returned an awaitable: an async device "
        "is restored with `await restore_blob_async()` or `await units.restore_async()`"
    )
    assert (dev.reg, mixed.reg) == (0, 0)
    asyncio.run(restore_blob_async(dev, blob))
    assert dev.reg == 7


class AsyncSaveDev(Dev):
    async def save(self) -> DevState:  # type: ignore[override]
        return DevState(reg=self.reg)


def test_sync_saves_refuse_an_async_device(tmp_path: Path) -> None:
    # Calling an async save only makes a coroutine: there is no state to write, and the
    # coroutine must not be left unawaited.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError) as info:
            save_blob(AsyncDev())  # type: ignore[arg-type]
        assert str(info.value) == (
            "save_blob() cannot save AsyncDev, an async device: use "
            "`await save_blob_async(device)`"
        )
        with pytest.raises(TypeError, match=r"^save_blob\(\) cannot save AsyncSaveDev"):
            save_blob(AsyncSaveDev(3))
        with pytest.raises(TypeError, match=r"^snapshot\.write\(\) cannot save AsyncSaveDev"):
            snapshot.write(tmp_path / "x.snapshot", AsyncSaveDev(3))
        assert not (tmp_path / "x.snapshot").exists()
        units = StateUnits({"dev": AsyncSaveDev(3)})
        with pytest.raises(SaveError.ChildError) as child:
            units.save()
    assert str(child.value) == (
        "failed to save child device dev: AsyncSaveDev is an async unit: use "
        "`await units.save_async()`"
    )
    # A save function that only gives back an awaitable is refused too, its coroutine closed.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SaveError.Other, match=r"save\(\) returned an awaitable"):
            saved_blob(AsyncSaveDev(3), AsyncSaveDev(3).save)
    assert asyncio.run(save_blob_async(AsyncSaveDev(3))).parse(DevState) == DevState(reg=3)


def test_async_blob_helpers_run_a_synchronous_device() -> None:
    # The device's restore ran, then awaiting its None failed: the call said the restore
    # failed (RestoreError.Other) while the device held the new state.
    blob = save_blob(Dev(7))
    dev = Dev()
    asyncio.run(restore_blob_async(dev, blob))  # type: ignore[arg-type]
    assert dev.reg == 7
    assert asyncio.run(save_blob_async(dev)) == blob  # type: ignore[arg-type]
    with pytest.raises(RestoreError.InvalidSavedState):  # its own errors, as restore_blob's
        asyncio.run(restore_blob_async(dev, save_blob(Dev(0xEE))))  # type: ignore[arg-type]
    assert dev.reg == 7


def test_saved_state_not_supported() -> None:
    with pytest.raises(SaveError.NotSupported) as info:
        save_blob(Unsavable())
    assert str(info.value) == "save state not supported"
    with pytest.raises(RestoreError.SavedStateNotSupported) as rinfo:
        restore_blob(Unsavable(), save_blob(Dev(1)))
    assert str(rinfo.value) == "unexpected saved state"
    with pytest.raises(TypeError):
        SavedStateNotSupported()


def test_restore_error_kinds_and_text() -> None:
    dev = Dev(3)
    with pytest.raises(RestoreError.ProtobufDecode) as info:
        restore_blob(dev, SavedStateBlob.new(Message(x=1)))
    assert str(info.value) == (
        "failed to decode protobuf: protobuf type mismatch, expected "
        "type.googleapis.com/test.dev.DevState, got type.googleapis.com/test.Message"
    )
    assert isinstance(info.value.__cause__, BlobTypeMismatch)

    bad = SavedStateBlob(type_url=type_url_of(DevState), value=bytes.fromhex("08ac02"))
    with pytest.raises(RestoreError.ProtobufDecode) as info:
        restore_blob(dev, bad)
    assert str(info.value) == (
        "failed to decode protobuf: DevState.reg: value 300 out of range for u8"
    )
    assert isinstance(info.value.__cause__, DecodeError)

    with pytest.raises(RestoreError.InvalidSavedState) as vinfo:
        restore_blob(dev, save_blob(Dev(0xEE)))
    assert str(vinfo.value) == "saved state is invalid: register value 0xee is reserved"

    with pytest.raises(RestoreError.Other) as oinfo:
        restore_blob(dev, save_blob(Dev(0xEF)))
    assert str(oinfo.value) == "'boom'"
    assert isinstance(oinfo.value.__cause__, KeyError)
    assert dev.reg == 3

    assert str(RestoreError.UnknownEntryId("pic")) == "unknown entry id: pic"
    assert str(RestoreError.Other("plain text")) == "plain text"


def test_save_error_kinds_and_text() -> None:
    with pytest.raises(SaveError.Other) as info:
        save_blob(Dev(300))
    assert str(info.value) == "DevState.reg: value 300 out of range for u8 (0..255)"
    err = SaveError.InvalidChildSavedState(ValueError("bad child"))
    assert str(err) == "child saved state is invalid: bad child"
    assert isinstance(err.__cause__, ValueError)
    nested = SaveError.ChildError("chipset", SaveError.ChildError("pic", SaveError.NotSupported()))
    assert str(nested) == "failed to save child device chipset/pic: save state not supported"
    assert nested.names == ["chipset", "pic"]
    assert isinstance(nested.__cause__, SaveError.ChildError)


def test_nested_child_error_shows_the_whole_path() -> None:
    leaf = RestoreError.ProtobufDecode(
        DecodeError("value 300 out of range for u8 (0..255)", ["SavedPic", "imr"])
    )
    err = RestoreError.ChildError("chipset", RestoreError.ChildError("pic", leaf))
    assert str(err) == (
        "failed to restore child device chipset/pic: failed to decode protobuf: "
        "SavedPic.imr: value 300 out of range for u8 (0..255)"
    )
    assert err.names == ["chipset", "pic"]
    assert err.__cause__ is not None and err.__cause__.__cause__ is leaf


def test_error_kinds_are_nested_names() -> None:
    assert RestoreError.ChildError.__qualname__ == "RestoreError.ChildError"
    assert SaveError.NotSupported.__qualname__ == "SaveError.NotSupported"
    for kind in (RestoreError.UnknownEntryId, RestoreError.ChildError, RestoreError.ProtobufDecode,
                 RestoreError.SavedStateNotSupported, RestoreError.InvalidSavedState,
                 RestoreError.Other):
        assert issubclass(kind, RestoreError)
    for skind in (SaveError.NotSupported, SaveError.ChildError, SaveError.InvalidChildSavedState,
                  SaveError.Other):
        assert issubclass(skind, SaveError)
