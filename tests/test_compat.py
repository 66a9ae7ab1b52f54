"""The compatibility checker, proven by bytes.

Each case has an old schema (savestate classes, and the same schema as a hand-written ``.proto``
baseline under ``tests/compat_baselines/``, in the Rust reference's style, annotated with
``// u16`` or ``// length 4`` only where a rule needs it), a new schema, and the rule ids the
checker must report (``direction="both"``). Then the bytes decide:

- values of the old schema are encoded and decoded with the new one: when the checker calls the
  change backward compatible they must decode to the expected values, and when it reports a
  backward break at least one must fail to decode or decode to something else;
- when a case reports a forward rule, values of the new schema fail or change in the old one.

Every baseline is first checked against its own old classes: no finding, so the hand-written
text describes those classes exactly.
"""

from __future__ import annotations

import datetime
import enum
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from savestate import (
    DecodeError,
    Oneof,
    Protobuf,
    SavedStateBlob,
    SchemaError,
    f32,
    f64,
    field,
    i8,
    i32,
    i64,
    int32,
    int64,
    savedstate,
    u8,
    u16,
    u32,
    u64,
    write_proto,
)
from savestate.schemaio.compat import RULES, Report, check_compatible
from savestate.testing import redeclaring


@pytest.fixture(autouse=True)
def _two_versions() -> Iterator[None]:
    """These tests declare old and new versions of one type (``compat.State``) side by side."""
    with redeclaring():
        yield

BASELINES = Path(__file__).parent / "compat_baselines"


def baseline(name: str) -> Path:
    return BASELINES / name


# ---------------------------------------------------------------------------------------------
# Schemas: each function returns the root class of one schema (a fresh class per call).


def s_one_u32() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)

    return State


def s_two_u32() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        b: u32 = field(2, default=0)

    return State


def s_two_u32_reordered() -> type:
    class State(Protobuf, package="compat"):
        b: u32 = field(2, default=0)
        a: u32 = field(1, default=0)

    return State


def s_renamed() -> type:
    class State(Protobuf, package="compat"):
        count: u32 = field(1, default=0)

    return State


def s_reserved_2() -> type:
    class State(Protobuf, package="compat", reserved=(2,)):
        a: u32 = field(1, default=0)

    return State


def s_reuse_2_as_str() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        b: str = field(2, default="")

    return State


def s_optional_b() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        b: u32 | None = field(2, default=None)

    return State


def s_optional_a() -> type:
    class State(Protobuf, package="compat"):
        a: u32 | None = field(1, default=None)

    return State


def s_scalar(annotation: Any, default: Any = 0) -> Callable[[], type]:
    """A state of one field ``a``; a list or dict annotation gets an empty one as default."""

    def make() -> type:
        origin = getattr(annotation, "__origin__", None)
        options = {"default_factory": origin} if origin in (list, dict) else {"default": default}
        ns: dict[str, Any] = {
            "__annotations__": {"a": annotation},
            "a": field(1, **options),
        }
        return type(Protobuf)("State", (Protobuf,), ns, package="compat")

    return make


def _stage(
    extra: bool = False, run_number: int = 2, with_run: bool = True, run_name: str = "Run"
) -> type:
    class Stage(Oneof, package="compat"):
        pass

    class Idle(Stage, variant=1):
        pass

    if with_run:
        ns: dict[str, Any] = {
            "__annotations__": {"x": u32}, "x": field(1, default=0), "__module__": __name__
        }
        type(Protobuf)(run_name, (Stage,), ns, variant=run_number)

    if extra:
        class Stop(Stage, variant=3):
            pass

    return Stage


def s_stage(**kw: Any) -> Callable[[], type]:
    def make() -> type:
        return _state_of("stage", _stage(**kw))

    return make


def _state_of(name: str, t: Any, **options: Any) -> type:
    ns: dict[str, Any] = {"__annotations__": {name: t}, name: field(1, **options)}
    return type(Protobuf)("State", (Protobuf,), ns, package="compat")


def s_stage_or_none() -> type:
    return _state_of("stage", _stage() | None)


def s_stage_removed() -> type:
    class State(Protobuf, package="compat", reserved=(1,)):
        pass

    return State


def s_unit_to_struct() -> type:
    class Stage(Oneof, package="compat"):
        pass

    class Idle(Stage, variant=1):
        since: u32 = field(1, default=0)

    class Run(Stage, variant=2):
        x: u32 = field(1, default=0)

    return _state_of("stage", Stage)


def s_reg(name: str = "Reg", second: Any = u32, package: str = "compat") -> Callable[[], type]:
    def make() -> type:
        ns: dict[str, Any] = {
            "__annotations__": {"x": u32, "y": second},
            "x": field(1, default=0),
            "y": field(2, default=second() if isinstance(second, type) else 0),
        }
        reg = type(Protobuf)(name, (Protobuf,), ns, package=package)
        return _state_of("reg", reg, default_factory=reg)

    return make


def s_reg_or_none() -> type:
    class Reg(Protobuf, package="compat"):
        x: u32 = field(1, default=0)
        y: u32 = field(2, default=0)

    return _state_of("reg", Reg | None, default=None)


def s_stage_with_default() -> type:
    stage = _stage()
    return _state_of("stage", stage, default_factory=getattr_variant(stage, "Idle"))


def s_stage_to_message() -> type:
    class Reg(Protobuf, package="compat"):
        x: u32 = field(3, default=0)  # no number shared with a variant

    return _state_of("stage", Reg, default_factory=Reg)


def s_reg_pkg(package: str) -> Callable[[], type]:
    def make() -> type:
        ns: dict[str, Any] = {
            "__annotations__": {"x": u32}, "x": field(1, default=0), "__module__": __name__
        }
        reg = type(Protobuf)("Reg", (Protobuf,), ns, package=package)
        return _state_of("reg", reg, default_factory=reg)

    return make


def s_add_message() -> type:
    class Regs(Protobuf, package="compat"):
        x: u32 = field(1, default=0)

    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        regs: Regs = field(2, default_factory=Regs)

    return State


def s_map_entries() -> type:
    class Entry(Protobuf, package="compat"):
        key: str = field(1, default="")
        value: u32 = field(2, default=0)

    return _state_of("a", list[Entry], default_factory=list)


class Mode2(enum.IntEnum):
    A = 0
    B = 1


class Mode3(enum.IntEnum):
    A = 0
    B = 1
    C = 2


class ModeRenumbered(enum.IntEnum):
    A = 0
    B = 2


def s_mode(cls: type[enum.IntEnum]) -> Callable[[], type]:
    def make() -> type:
        named = enum.IntEnum("Mode", {m.name: m.value for m in cls})  # type: ignore[misc]
        return _state_of("mode", named, default=named(0))

    return make


def s_mode_no_zero() -> type:
    named = enum.IntEnum("Mode", {"B": 1})  # type: ignore[misc]  # no zero member
    return _state_of("mode", named)


def s_mode_no_zero_or_none() -> type:
    named = enum.IntEnum("Mode", {"B": 1})  # type: ignore[misc]
    return _state_of("mode", named | None, default=None)


def s_mode_no_zero_default() -> type:
    named = enum.IntEnum("Mode", {"B": 1})  # type: ignore[misc]
    return _state_of("mode", named, default=named.B)


def s_a_and_mode_no_zero() -> type:
    named = enum.IntEnum("Mode", {"B": 1})  # type: ignore[misc]
    ns: dict[str, Any] = {
        "__annotations__": {"a": u32, "mode": named},
        "a": field(1, default=0),
        "mode": field(2),
    }
    return type(Protobuf)("State", (Protobuf,), ns, package="compat")


def s_array_n(length: int) -> Callable[[], type]:
    def make() -> type:
        ns: dict[str, Any] = {
            "__annotations__": {"a": u32, "regs": bytes},
            "a": field(1, default=0),
            "regs": field(2, length=length),  # no default: required, as in the reference
        }
        return type(Protobuf)("State", (Protobuf,), ns, package="compat")

    return make


def s_array_removed() -> type:
    class State(Protobuf, package="compat", reserved=(2,)):
        a: u32 = field(1, default=0)

    return State


def s_added_array() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        regs: bytes = field(2, length=4)  # no default: required, as in the reference

    return State


def s_added_array_with_default() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        regs: bytes = field(2, length=4, default=b"\x01\x02\x03\x04")

    return State


def s_added_oneof_with_default() -> type:
    stage = _stage()
    idle = getattr_variant(stage, "Idle")
    ns: dict[str, Any] = {
        "__annotations__": {"a": u32, "stage": stage},
        "a": field(1, default=0),
        "stage": field(2, default_factory=idle),
    }
    return type(Protobuf)("State", (Protobuf,), ns, package="compat")


def s_added_optional_array() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        regs: bytes | None = field(2, length=4, default=None)

    return State


def s_optional_packed_array() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=0)
        regs: list[u32] | None = field(2, length=2, default=None)

    return State


def s_added_oneof() -> type:
    stage = _stage()
    ns: dict[str, Any] = {
        "__annotations__": {"a": u32, "stage": stage},
        "a": field(1, default=0),
        "stage": field(2),
    }
    return type(Protobuf)("State", (Protobuf,), ns, package="compat")


def s_list_array(length: int) -> Callable[[], type]:
    def make() -> type:
        return _state_of("a", list[u32], length=length, default_factory=lambda: [0] * length)

    return make


def s_into_oneof() -> type:
    class State(Oneof, package="compat"):
        pass

    class A(State, variant=1, transparent=True):
        value: u32 = field(1, default=0)

    class B(State, variant=2, transparent=True):
        value: u32 = field(1, default=0)

    return State


# Roots (registered: blobs need them), for the rules about type URLs.


class RootState(Protobuf, package="compat.roots", name="State"):
    a: u32 = field(1, default=0)


savedstate(package="compat.roots")(RootState)


@savedstate(package="compat.roots")
class Saved:
    a: u32 = field(1, default=0)


class OldPkgState(Protobuf, package="compat.pkg_old", name="State"):
    a: u32 = field(1, default=0)


class NewPkgState(Protobuf, package="compat.pkg_new", name="State"):
    a: u32 = field(1, default=0)


savedstate(package="compat.pkg_old")(OldPkgState)
savedstate(package="compat.pkg_new")(NewPkgState)


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    name: str
    base: str  # the baseline directory (the old schema, written by hand)
    old: Callable[[], type]
    new: Callable[[], type]
    rules: set[str]
    # (old value kwargs, new value kwargs it should mean); new None: no faithful value
    backward: list[tuple[dict[str, Any], dict[str, Any] | None]]
    forward: list[tuple[dict[str, Any], dict[str, Any] | None]] | None = None
    proof: Callable[[type, type], None] | None = None  # a custom proof of a break


class ModeRenamed(enum.IntEnum):
    A = 0
    BEE = 1  # was B: the same number, another name


def s_default_5_and_b() -> type:
    class State(Protobuf, package="compat"):
        a: u32 = field(1, default=5)
        b: u32 = field(2, default=0)

    return State


def proof_json_breaks(old: type, new: type) -> None:
    """JSON written by the old release (a non-zero value, so the key is written) does not
    load in the new one."""
    value = old.from_dict({k: 1 for k in _json_keys(old)})  # type: ignore[attr-defined]
    with pytest.raises(DecodeError):
        new.from_json(value.to_json())  # type: ignore[attr-defined]


def proof_json_shape_breaks(old: type, new: type) -> None:
    """The old release's JSON of the tuple (a bare value, or an object) does not load in the
    new one, which reads the other shape."""
    text = old(a=(1,)).to_json()
    with pytest.raises(DecodeError):
        new.from_json(text)  # type: ignore[attr-defined]


def _json_keys(cls: type) -> list[str]:
    from savestate.model.plan import plan_of

    return [f.json_name for f in plan_of(cls).fields]


def proof_variant_json_breaks(old: type, new: type) -> None:
    run = getattr_variant(old.__annotations__["stage"], "Run")  # type: ignore[index]
    text = old(stage=run(x=3)).to_json()  # type: ignore[attr-defined]
    assert new.decode(old(stage=run(x=3)).encode()).stage.x == 3  # type: ignore[attr-defined]
    with pytest.raises(DecodeError, match="unknown variant 'run'"):
        new.from_json(text)  # type: ignore[attr-defined]


def proof_default_changed(old: type, new: type) -> None:
    """State that does not carry the field (here: from a writer without it, b"") decodes to
    the old default in the old code and to the new one in the new code."""
    assert old.decode(b"").a == 5  # type: ignore[attr-defined]
    assert new.decode(b"").a == 7  # type: ignore[attr-defined]


def proof_number_reusable(old: type, new: type) -> None:
    """The number is free in the new schema: a later field there misreads old state."""
    later = type(Protobuf)(
        "State",
        (Protobuf,),
        {
            "__annotations__": {"a": u32, "b": str},
            "a": field(1, default=0),
            "b": field(2, default=""),
        },
        package="compat",
    )
    older = s_two_u32()
    with pytest.raises(DecodeError):
        later.decode(older(a=1, b=7).encode())


def proof_reserved_reused(old: type, new: type) -> None:
    older = s_two_u32()  # the release before field 2 was deleted and reserved
    with pytest.raises(DecodeError):
        new.decode(older(a=1, b=7).encode())


def proof_deleted_reserved_is_safe(old: type, new: type) -> None:
    with pytest.raises(SchemaError, match="reserved"):
        type(Protobuf)(
            "State",
            (Protobuf,),
            {"__annotations__": {"b": str}, "b": field(2, default="")},
            package="compat",
            reserved=(2,),
        )


def proof_variant_lost(old: type, new: type) -> None:
    """Old state decodes, but which variant it held is lost: Idle and Run read the same."""
    idle, run = (getattr_variant(old.__annotations__["stage"], n) for n in ("Idle", "Run"))
    first = new.decode(old(stage=idle()).encode())  # type: ignore[attr-defined]
    assert first == new.decode(old(stage=run(x=3)).encode())  # type: ignore[attr-defined]


def proof_type_url(old: type, new: type) -> None:
    from savestate.errors import SavestateError

    blob = SavedStateBlob.new(old(a=5))
    with pytest.raises(SavestateError, match="type"):
        blob.parse(new)


CASES: list[Case] = [
    # -- compatible changes
    Case("add a field", "one_u32", s_one_u32, s_two_u32, set(),
         [({"a": 5}, {"a": 5, "b": 0})], [({"a": 5, "b": 3}, {"a": 5})]),
    Case("add an optional field", "one_u32", s_one_u32, s_optional_b, set(),
         [({"a": 5}, {"a": 5, "b": None})]),
    Case("rename a field", "one_u32", s_one_u32, s_renamed, {"FIELD_JSON_NAME_CHANGED"},
         [({"a": 5}, {"count": 5})], [({"count": 5}, {"a": 5})], proof=proof_json_breaks),
    Case("rename an enum value", "mode2", s_mode(Mode2), s_mode(ModeRenamed),
         {"ENUM_VALUE_NAME_CHANGED"}, [({"mode": 1}, {"mode": 1})],
         [({"mode": 1}, {"mode": 1})], proof=proof_json_breaks),
    Case("rename a Oneof variant", "stage", s_stage(), s_stage(run_name="Go"),
         {"ONEOF_VARIANT_NAME_CHANGED"}, [], [], proof=proof_variant_json_breaks),
    Case("change a default from zero", "one_u32_annotated", s_scalar(u32, 0), s_scalar(u32, 5),
         {"FIELD_SAME_DEFAULT", "FIELD_PRESENCE_CHANGED"}, [({"a": 0}, {"a": 0})],
         [({"a": 0}, {"a": 0})]),
    Case("change a non-zero default", "default_5", s_scalar(u32, 5), s_scalar(u32, 7),
         {"FIELD_SAME_DEFAULT"}, [({"a": 9}, {"a": 9})], proof=proof_default_changed),
    Case("change a default to zero", "default_5", s_scalar(u32, 5), s_scalar(u32, 0),
         {"FIELD_SAME_DEFAULT", "FIELD_PRESENCE_CHANGED"},
         [({"a": 0}, {"a": 0}), ({"a": 5}, {"a": 5})], [({"a": 0}, {"a": 0})]),
    Case("keep a non-zero default, add a field", "default_5", s_scalar(u32, 5),
         s_default_5_and_b, set(), [({"a": 0}, {"a": 0, "b": 0}), ({"a": 5}, {"a": 5, "b": 0})],
         [({"a": 3, "b": 0}, {"a": 3})]),
    Case("reorder declarations", "two_u32", s_two_u32, s_two_u32_reordered, set(),
         [({"a": 1, "b": 2}, {"a": 1, "b": 2})], [({"a": 1, "b": 2}, {"a": 1, "b": 2})]),
    Case("delete a field, reserving its number", "two_u32", s_two_u32, s_reserved_2, set(),
         [({"a": 1, "b": 5}, {"a": 1})], proof=proof_deleted_reserved_is_safe),
    Case("add a message", "one_u32", s_one_u32, s_add_message, set(),
         [({"a": 5}, {"a": 5})]),
    Case("add a Oneof variant", "stage", s_stage(), s_stage(extra=True),
         {"ONEOF_VARIANT_ADDED"},
         [({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})],
         [({"stage": ("Stop", {})}, None)]),
    Case("unit variant gains a field", "stage", s_stage(), s_unit_to_struct, set(),
         [({"stage": ("Idle", {})}, {"stage": ("Idle", {"since": 0})})]),
    Case("u8 -> u16", "u8_field", s_scalar(u8), s_scalar(u16), {"FIELD_INTEGER_WIDENED"},
         [({"a": 255}, {"a": 255})], [({"a": 300}, None)]),
    Case("u32 -> u64", "u32_plain", s_scalar(u32), s_scalar(u64), {"FIELD_INTEGER_WIDENED"},
         [({"a": 2**32 - 1}, {"a": 2**32 - 1})], [({"a": 2**40}, None)]),
    Case("i8 -> i64", "i8_field", s_scalar(i8), s_scalar(i64), {"FIELD_INTEGER_WIDENED"},
         [({"a": -128}, {"a": -128})], [({"a": -129}, None)]),
    Case("bool -> u32", "bool_field", s_scalar(bool, False), s_scalar(u32),
         {"FIELD_INTEGER_WIDENED"}, [({"a": True}, {"a": 1})], [({"a": 2}, {"a": 2})]),
    Case("list[u8] -> bytes", "bytes_field", s_scalar(list[u8]), s_scalar(bytes, b""),
         set(), [({"a": [1, 2, 255]}, {"a": b"\x01\x02\xff"})]),
    Case("rename a message", "reg", s_reg(), s_reg("Register"), set(),
         [({"reg": ("Reg", {"x": 1, "y": 2})}, {"reg": ("Register", {"x": 1, "y": 2})})]),
    Case("map -> list of entry messages", "map_str_u32", s_scalar(dict[str, u32]),
         s_map_entries, set(),
         [({"a": {"x": 1, "y": 2}}, {"a": [("Entry", {"key": "x", "value": 1}),
                                           ("Entry", {"key": "y", "value": 2})]})]),
    Case("add an enum value", "mode2", s_mode(Mode2), s_mode(Mode3), {"ENUM_VALUE_ADDED"},
         [({"mode": 1}, {"mode": 1})], [({"mode": 2}, None)]),
    Case("optional added (a warning)", "one_u32", s_one_u32, s_optional_a,
         {"FIELD_PRESENCE_CHANGED"}, [({"a": 5}, {"a": 5}), ({"a": 0}, {"a": None})]),
    Case("a non-root message changes package (a warning)", "reg_pkg",
         s_reg_pkg("compat.regs"), s_reg_pkg("compat.hw"), {"MESSAGE_PACKAGE_CHANGED"},
         [({"reg": ("Reg", {"x": 4})}, {"reg": ("Reg", {"x": 4})})]),
    Case("a fixed array is removed, reserved", "array_4", s_array_n(4), s_array_removed,
         {"FIELD_REMOVED_REQUIRED"}, [({"a": 1, "regs": b"abcd"}, {"a": 1})],
         [({"a": 1}, None)]),
    # -- breaking changes
    Case("delete a field", "two_u32", s_two_u32, s_one_u32, {"FIELD_NO_DELETE"},
         [({"a": 1, "b": 7}, {"a": 1})], proof=proof_number_reusable),
    Case("remove a reservation", "reserved_2", s_reserved_2, s_one_u32, {"RESERVED_NO_DELETE"},
         [({"a": 1}, {"a": 1})], proof=proof_number_reusable),
    Case("reuse a reserved number", "reserved_2", s_reserved_2, s_reuse_2_as_str,
         {"RESERVED_REUSED"}, [({"a": 1}, {"a": 1, "b": ""})], proof=proof_reserved_reused),
    Case("uint32 -> sint32", "u32_plain", s_scalar(u32), s_scalar(i32),
         {"FIELD_WIRE_COMPATIBLE_TYPE"}, [({"a": 3}, {"a": 3})], [({"a": 3}, {"a": 3})]),
    Case("u32 -> str", "one_u32", s_one_u32, s_scalar(str, ""),
         {"FIELD_WIRE_COMPATIBLE_TYPE"}, [({"a": 3}, None)], [({"a": "x"}, None)]),
    Case("f32 -> f64", "f32_field", s_scalar(f32, 0.0), s_scalar(f64, 0.0),
         {"FIELD_WIRE_COMPATIBLE_TYPE"}, [({"a": 1.5}, None)], [({"a": 1.5}, None)]),
    Case("message type changed", "reg", s_reg(), s_reg("Other", str),
         {"FIELD_SAME_MESSAGE_TYPE"}, [({"reg": ("Reg", {"x": 1, "y": 2})}, None)],
         [({"reg": ("Other", {"x": 1, "y": "hi"})}, None)]),
    Case("tuple[u32] -> tuple[u8]", "tuple_u32", s_scalar(tuple[u32], (0,)),
         s_scalar(tuple[u8], (0,)), {"FIELD_INTEGER_NARROWED", "FIELD_JSON_SHAPE_CHANGED"},
         [({"a": (300,)}, None), ({"a": (200,)}, {"a": (200,)})],
         [({"a": (200,)}, {"a": (200,)})], proof=proof_json_shape_breaks),
    Case("tuple[u8] -> tuple[u32]", "tuple_u8", s_scalar(tuple[u8], (0,)),
         s_scalar(tuple[u32], (0,)), {"FIELD_INTEGER_WIDENED", "FIELD_JSON_SHAPE_CHANGED"},
         [({"a": (255,)}, {"a": (255,)})], [({"a": (300,)}, None)],
         proof=proof_json_shape_breaks),
    # A tuple's (or a message's) default has no value in the .proto, only `// has default`:
    # gained or lost, it changes what a writer without one leaves out (the empty value).
    Case("a tuple field gains a default", "pair_u8", s_scalar(tuple[u8, u8], (0, 0)),
         s_scalar(tuple[u8, u8], (1, 2)), {"FIELD_SAME_DEFAULT"},
         [({"a": (0, 0)}, {"a": (0, 0)})],
         [({"a": (0, 0)}, {"a": (0, 0)}), ({"a": (1, 2)}, {"a": (1, 2)})]),
    Case("a tuple field loses its default", "pair_u8_default", s_scalar(tuple[u8, u8], (1, 2)),
         s_scalar(tuple[u8, u8], (0, 0)), {"FIELD_SAME_DEFAULT"},
         [({"a": (0, 0)}, {"a": (0, 0)}), ({"a": (1, 2)}, {"a": (1, 2)})],
         [({"a": (0, 0)}, {"a": (0, 0)})]),
    # The Rust writer's text has a UInt32Value for a tuple of any width: nothing to report.
    Case("tuple[u8], a Rust-style baseline", "tuple_u8_plain", s_scalar(tuple[u8], (0,)),
         s_scalar(tuple[u8], (0,)), set(), [({"a": (7,)}, {"a": (7,)})]),
    Case("u16 -> u8", "u16_field", s_scalar(u16), s_scalar(u8), {"FIELD_INTEGER_NARROWED"},
         [({"a": 300}, {"a": 300})], [({"a": 200}, {"a": 200})]),
    Case("int64 -> u64", "int_field", s_scalar(int), s_scalar(u64),
         {"FIELD_INTEGER_NARROWED", "FIELD_INTEGER_WIDENED"},
         [({"a": -1}, {"a": -1})], [({"a": 2**63}, {"a": 2**63})]),
    Case("u64 -> u32, a Rust-style baseline", "u64_field", s_scalar(u64), s_scalar(u32),
         {"FIELD_INTEGER_NARROWED"}, [({"a": 2**40}, {"a": 2**40})]),
    Case("singular -> list", "one_u32", s_one_u32, s_scalar(list[u32]),
         {"FIELD_SAME_CARDINALITY"}, [({"a": 5}, {"a": [5]}), ({"a": 0}, {"a": [0]})],
         [({"a": [5, 6]}, None)]),
    Case("map -> list of numbers", "map_u32_u32", s_scalar(dict[u32, u32]),
         s_scalar(list[u32]), {"FIELD_SAME_CARDINALITY"},
         [({"a": {1: 2}}, {"a": [1, 2]})], [({"a": [1, 2]}, None)]),
    Case("a field moves into a oneof", "one_u32", s_one_u32, s_into_oneof,
         {"FIELD_SAME_ONEOF", "ONEOF_VARIANT_ADDED"}, [({"a": 0}, None)],
         [({"a": ("B", {"value": 7})}, {"a": 7})]),
    Case("remove a Oneof variant", "stage", s_stage(), s_stage(with_run=False),
         {"ONEOF_VARIANT_NO_DELETE"}, [({"stage": ("Run", {"x": 1})}, None)]),
    Case("renumber a Oneof variant", "stage", s_stage(), s_stage(run_number=3),
         {"ONEOF_VARIANT_NO_DELETE", "ONEOF_VARIANT_ADDED"},
         [({"stage": ("Run", {"x": 1})}, {"stage": ("Run", {"x": 1})})],
         [({"stage": ("Run", {"x": 1})}, {"stage": ("Run", {"x": 1})})]),
    Case("add a fixed array", "one_u32", s_one_u32, s_added_array, {"FIELD_ADDED_REQUIRED"},
         [({"a": 1}, None)]),
    Case("add a Oneof field", "one_u32", s_one_u32, s_added_oneof, {"FIELD_ADDED_REQUIRED"},
         [({"a": 1}, None)]),
    Case("array length 4 -> 6", "array_4", s_array_n(4), s_array_n(6),
         {"ARRAY_LENGTH_CHANGED"}, [({"a": 1, "regs": b"abcd"}, None)],
         [({"a": 1, "regs": b"abcdef"}, None)]),
    Case("list -> fixed array", "list_u32", s_scalar(list[u32]),
         s_list_array(3),
         {"ARRAY_LENGTH_CHANGED"}, [({"a": [1, 2]}, {"a": [1, 2]})]),
    Case("remove an enum value", "mode3", s_mode(Mode3), s_mode(Mode2),
         {"ENUM_VALUE_NO_DELETE"}, [({"mode": 2}, None)]),
    Case("renumber an enum value", "mode2", s_mode(Mode2), s_mode(ModeRenumbered),
         {"ENUM_VALUE_NO_DELETE", "ENUM_VALUE_ADDED"}, [({"mode": 1}, {"mode": 2})],
         [({"mode": 2}, {"mode": 1})]),
    Case("an enum loses its zero member", "mode2_annotated", s_mode(Mode2), s_mode_no_zero,
         {"ENUM_VALUE_NO_DELETE"}, [({"mode": 0}, None), ({"mode": 1}, {"mode": 1})],
         [({"mode": 1}, {"mode": 1})]),
    Case("an enum gains a zero member", "mode_no_zero", s_mode_no_zero, s_mode(Mode2),
         {"ENUM_VALUE_ADDED"}, [({"mode": 1}, {"mode": 1})], [({"mode": 0}, None)]),
    Case("a field of an enum without zero gains `| None`", "mode_no_zero", s_mode_no_zero,
         s_mode_no_zero_or_none, {"FIELD_NULLABLE_CHANGED"}, [({"mode": 1}, {"mode": 1})],
         [({"mode": None}, None), ({"mode": 1}, {"mode": 1})]),
    Case("a field of an enum without zero loses `| None`", "mode_no_zero_or_none",
         s_mode_no_zero_or_none, s_mode_no_zero, {"FIELD_NULLABLE_CHANGED"},
         [({"mode": None}, None), ({"mode": 1}, {"mode": 1})], [({"mode": 1}, {"mode": 1})]),
    # A default is read only where the field is left out, which no state of a writer that
    # requires the field does: the one without a default refuses such state. (The label
    # moves between implicit and `optional`: the presence warning.)
    Case("an enum without zero gains a default", "mode_no_zero", s_mode_no_zero,
         s_mode_no_zero_default, {"FIELD_PRESENCE_CHANGED"}, [({"mode": 1}, {"mode": 1})],
         [({"mode": 1}, {"mode": 1})]),
    Case("an enum without zero loses its default", "mode_no_zero_default",
         s_mode_no_zero_default, s_mode_no_zero, {"FIELD_PRESENCE_CHANGED"},
         [({"mode": 1}, {"mode": 1})], [({"mode": 1}, {"mode": 1})]),
    Case("a field of an enum without zero is removed, reserved", "mode_no_zero_and_a",
         s_a_and_mode_no_zero, s_array_removed, {"FIELD_REMOVED_REQUIRED"},
         [({"a": 1, "mode": 1}, {"a": 1})], [({"a": 1}, None)]),
    Case("a Oneof field loses `| None`", "stage_or_none", s_stage_or_none, s_stage(),
         {"FIELD_NULLABLE_CHANGED"},
         [({"stage": None}, None), ({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})],
         [({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})]),
    Case("a Oneof field gains `| None`", "stage_annotated", s_stage(), s_stage_or_none,
         {"FIELD_NULLABLE_CHANGED"},
         [({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})],
         [({"stage": None}, None), ({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})]),
    Case("a `Oneof | None` field is removed, reserved", "stage_or_none", s_stage_or_none,
         s_stage_removed, set(), [({"stage": ("Run", {"x": 3})}, {})],
         [({}, {"stage": None})]),
    # A fixed array or a Oneof declared with a default is not required: old state lacking it
    # decodes to the default, and the baseline's `// has default` says so for the way back.
    Case("add a fixed array with a default", "one_u32", s_one_u32, s_added_array_with_default,
         set(), [({"a": 1}, {"a": 1, "regs": b"\x01\x02\x03\x04"})],
         [({"a": 1, "regs": b"abcd"}, {"a": 1})]),
    Case("add a Oneof field with a default", "one_u32", s_one_u32, s_added_oneof_with_default,
         set(), [({"a": 1}, {"a": 1, "stage": ("Idle", {})})],
         [({"a": 1, "stage": ("Run", {"x": 3})}, {"a": 1})]),
    Case("a fixed array with a default is removed, reserved", "array_4_default",
         s_added_array_with_default, s_array_removed, set(),
         [({"a": 1, "regs": b"abcd"}, {"a": 1})],
         [({"a": 1}, {"a": 1, "regs": b"\x01\x02\x03\x04"})]),
    Case("a Oneof field with a default is removed, reserved", "stage_default",
         s_added_oneof_with_default, s_array_removed, set(),
         [({"a": 1, "stage": ("Run", {"x": 3})}, {"a": 1})],
         [({"a": 1}, {"a": 1, "stage": ("Idle", {})})]),
    Case("add an optional fixed array", "one_u32", s_one_u32, s_added_optional_array, set(),
         [({"a": 1}, {"a": 1, "regs": None})], [({"a": 1, "regs": b"abcd"}, {"a": 1})]),
    Case("a fixed array gains `| None`", "array_4", s_array_n(4), s_added_optional_array,
         {"FIELD_NULLABLE_CHANGED"}, [({"a": 1, "regs": b"abcd"}, {"a": 1, "regs": b"abcd"})],
         [({"a": 1, "regs": None}, None)]),
    Case("an optional packed fixed array is removed, reserved", "opt_packed_array",
         s_optional_packed_array, s_array_removed, set(),
         [({"a": 1, "regs": [1, 2]}, {"a": 1})], [({"a": 1}, {"a": 1, "regs": None})]),
    # `| None` on a field that is not required: None is written as no field, which the side
    # without it reads as its default (or an empty message), and the empty message as None.
    Case("a message field gains `| None` (a warning)", "reg_annotated", s_reg(), s_reg_or_none,
         {"FIELD_PRESENCE_CHANGED"},
         [({"reg": ("Reg", {"x": 1, "y": 2})}, {"reg": ("Reg", {"x": 1, "y": 2})}),
          ({"reg": ("Reg", {})}, {"reg": None})],
         [({"reg": None}, {"reg": ("Reg", {})})]),
    Case("a fixed array with a default gains `| None` (a warning)", "array_4_default",
         s_added_array_with_default, s_added_optional_array, {"FIELD_PRESENCE_CHANGED"},
         [({"a": 1, "regs": b"abcd"}, {"a": 1, "regs": b"abcd"})],
         [({"a": 1, "regs": None}, {"a": 1, "regs": b"\x01\x02\x03\x04"})]),
    Case("a Oneof field with a default loses `| None` (a warning)", "stage_or_none",
         s_stage_or_none, s_stage_with_default, {"FIELD_PRESENCE_CHANGED"},
         [({"stage": None}, {"stage": ("Idle", {})}),
          ({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})],
         [({"stage": ("Run", {"x": 3})}, {"stage": ("Run", {"x": 3})})]),
    # A Oneof requires a variant, which a plain message never writes, whatever its numbers.
    Case("a Oneof field becomes a message", "stage", s_stage(), s_stage_to_message,
         {"FIELD_SAME_MESSAGE_TYPE"}, [({"stage": ("Run", {"x": 3})}, {"stage": ("Reg", {})})],
         [({"stage": ("Reg", {"x": 5})}, None), ({"stage": ("Reg", {})}, None)],
         proof=proof_variant_lost),
    # A forward-only break inside a renamed message stays forward-only (a warning by default).
    Case("rename a message and widen a field in it", "reg", s_reg(), s_reg("Register", u64),
         {"FIELD_SAME_MESSAGE_TYPE"},
         [({"reg": ("Reg", {"x": 1, "y": 2})}, {"reg": ("Register", {"x": 1, "y": 2})})],
         [({"reg": ("Register", {"x": 1, "y": 2**40})}, None)]),
    # A timedelta reads whole microseconds only: (1, 5) is 1 s and 5 ns.
    Case("tuple[int64, int32] -> timedelta", "tuple_i64_i32",
         s_scalar(tuple[int64, int32], (0, 0)), s_scalar(datetime.timedelta, datetime.timedelta()),
         {"FIELD_SAME_MESSAGE_TYPE", "FIELD_JSON_NAME_CHANGED"},
         [({"a": (1, 5)}, None),
          ({"a": (1, 2000)}, {"a": datetime.timedelta(seconds=1, microseconds=2)})],
         [({"a": datetime.timedelta(seconds=1)}, {"a": (1, 0)})]),
    Case("timedelta -> tuple[int64, int32]", "duration_field",
         s_scalar(datetime.timedelta, datetime.timedelta()), s_scalar(tuple[int64, int32], (0, 0)),
         {"FIELD_SAME_MESSAGE_TYPE", "FIELD_JSON_NAME_CHANGED"},
         [({"a": datetime.timedelta(seconds=1)}, {"a": (1, 0)})], [({"a": (1, 5)}, None)]),
    Case("rename a root", "root_state", lambda: RootState, lambda: Saved, {"ROOT_RENAMED"},
         [({"a": 5}, {"a": 5})], proof=proof_type_url),
    Case("move a root to another package", "pkg_old", lambda: OldPkgState, lambda: NewPkgState,
         {"PACKAGE_CHANGED"}, [({"a": 5}, {"a": 5})], proof=proof_type_url),
]


# ---------------------------------------------------------------------------------------------
# Running a case


def getattr_variant(oneof: type, name: str) -> type:
    for v in oneof.__savestate__.variants:  # type: ignore[attr-defined]
        if v.__name__ == name:
            return v  # type: ignore[no-any-return]
    raise KeyError(name)


def build(cls: type, kwargs: dict[str, Any]) -> Any:
    """A value of ``cls`` from kwargs; a nested value is ``(class or variant name, kwargs)``."""
    from savestate import schema_of
    from savestate.model.schema import EnumType, MessageType, OneofType, OptionalType, RepeatedType

    schema = schema_of(cls)
    if not hasattr(schema, "fields"):  # a Oneof root: kwargs hold its single variant
        ((_, (variant, kw)),) = kwargs.items()
        return build(getattr_variant(cls, variant), kw)
    types = {f.name: f.type for f in schema.fields}
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        t = types[name]
        if isinstance(t, OptionalType):
            t = t.inner
        if isinstance(t, RepeatedType) and isinstance(value, list):
            elem = t.elem
            if isinstance(elem, MessageType):
                value = [build(elem.cls, kw) for _, kw in value]
        elif isinstance(t, OneofType) and isinstance(value, tuple):
            value = build(getattr_variant(t.cls, value[0]), value[1])
        elif isinstance(t, MessageType) and isinstance(value, tuple):
            value = build(t.cls, value[1])
        elif isinstance(t, EnumType) and value is not None:
            value = t.cls(value)
        out[name] = value
    return cls(**out)


def faithful(writer: type, reader: type, value: dict[str, Any], expected: Any) -> bool:
    """Encode ``value`` with ``writer``, decode with ``reader``: True when it reads as
    ``expected``; False when it fails or reads as something else (``expected`` None: it must
    fail)."""
    data = build(writer, value).encode()
    try:
        decoded = reader.decode(data)
    except DecodeError:
        return False
    assert expected is not None, f"{value} decoded as {decoded}, expected a decode failure"
    return bool(decoded == build(reader, expected))


def breaks(report: Report, direction: str) -> bool:
    return any(
        RULES[f.rule].level == "error" and f.direction in (direction, "both")
        for f in report.findings
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rules_proven_by_bytes(case: Case) -> None:
    old, new = case.old(), case.new()
    own = check_compatible([old], against=baseline(case.base), direction="both")
    assert own.findings == (), f"the baseline does not describe the old classes: {own.text()}"
    report = check_compatible([new], against=baseline(case.base), direction="both")
    assert report.rule_ids == case.rules, report.text()

    backward = [faithful(old, new, v, e) for v, e in case.backward]
    if breaks(report, "backward"):
        assert case.proof is not None or not all(backward), "a reported break reads fine"
    else:
        assert all(backward), "a compatible change does not read as expected"
        assert check_compatible([new], against=baseline(case.base)).ok
    if case.forward is not None:
        forward = [faithful(new, old, v, e) for v, e in case.forward]
        if breaks(report, "forward"):
            assert case.proof is not None or not all(forward), "a forward break reads fine"
        else:
            assert all(forward), "old code does not read the new state as expected"
    else:
        assert case.proof is not None or not breaks(report, "forward"), "needs a forward proof"
    if case.proof is not None:
        case.proof(old, new)


def test_a_narrowed_integer_says_what_old_values_read_as() -> None:
    # Past the reader's top, a bool reads true and an int64 negative: no error, another value.
    for annotation, reason, value, read in (
        (bool, "old values over 1 read as true (u8 holds up to 255)", 255, True),
        (int64, "old values over 9223372036854775807 read as negative numbers", 2**64 - 1, -1),
        (u32, "old values over 4294967295 fail to decode", 2**40, None),
    ):
        base = "u8_field" if annotation is bool else "u64_field"
        old, new = (s_scalar(u8 if annotation is bool else u64)(),
                    s_scalar(annotation, False if annotation is bool else 0)())
        report = check_compatible([new], against=baseline(base))
        (finding,) = [f for f in report.findings if f.rule == "FIELD_INTEGER_NARROWED"]
        assert finding.reason.startswith(reason), finding.reason
        assert faithful(old, new, {"a": value}, None if read is None else {"a": read}) == (
            read is not None)


def test_a_nan_default_matches_itself(tmp_path: Path) -> None:
    # NaN != NaN: the baseline's `// default NaN`, written from these very classes, must read
    # as the default they declare, not as a changed one.
    @savedstate
    class State(Protobuf, package="compat"):
        a: f64 = field(1, default=math.nan)
        b: f32 = field(2, default=math.nan)

    write_proto(tmp_path, [State])
    assert "// default NaN" in next(tmp_path.glob("*.proto")).read_text()
    report = check_compatible([State], against=tmp_path, direction="both")
    assert report.findings == ()


def test_the_table_covers_every_rule() -> None:
    covered = set().union(*(c.rules for c in CASES))
    # ROOT_DELETED needs two roots on the old side: test_root_deleted_proven_by_bytes
    assert covered | {"ROOT_DELETED"} == set(RULES)
    assert len(CASES) >= 30
    compatible = [c for c in CASES if not any(RULES[r].direction != "forward"
                                              and RULES[r].level == "error" for r in c.rules)]
    assert len(compatible) >= 12


def test_findings_inside_a_well_known_message_point_at_the_baseline() -> None:
    # Duration's fields are declared in protobuf's own file, which is not in the baseline.
    report = check_compatible([s_scalar(tuple[int64, int32], (0, 0))()],
                              against=baseline("duration_field"), direction="both")
    assert len(report.findings) == 3
    assert {(Path(str(f.file)).parent.name, f.line) for f in report.findings} == {
        ("duration_field", 10)
    }
