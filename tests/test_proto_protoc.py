"""protoc accepts every emitted set, and the text means what savestate's bytes mean.

Each golden case is written, compiled by ``grpc_tools.protoc`` to Python (with the well-known
types' include path) and imported. Then, for hand-picked and hypothesis-generated values of
each root, savestate's bytes parse in Google's runtime to the same values, and Google's bytes
decode in savestate to equal values (see ``proto_support.check_meaning``).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import savestate
from savestate import SavedStateBlob, proto_files, write_proto
from savestate.model.schema import ScalarType
from savestate.schemaio.discover import load_roots

from . import proto_constructs as pc
from .proto_support import check_meaning, import_generated, run_protoc
from .strategies import instances
from .test_proto_golden import CASES

_compiled: dict[str, list[type]] = {}


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[type]]:
    """Every golden case written, compiled and imported once: case -> its roots."""
    for case in CASES:
        if case in _compiled:
            continue
        roots = load_roots([case])
        base = tmp_path_factory.mktemp(case)
        paths = write_proto(base / "proto", roots)
        status, messages = run_protoc(base / "proto", base / "py")
        assert status == 0, messages
        assert messages == ""
        import_generated(base / "py", [p.name for p in paths])
        _compiled[case] = roots
    return _compiled


@pytest.mark.parametrize("case", CASES)
def test_protoc_accepts_without_warnings(case: str, tmp_path: Path) -> None:
    write_proto(tmp_path / "proto", load_roots([case]))
    status, messages = run_protoc(tmp_path / "proto", tmp_path / "py")
    assert (status, messages) == (0, "")


def test_protoc_accepts_every_registered_root(tmp_path: Path) -> None:
    files = proto_files()
    assert "constructs.main.proto" in files  # this session's roots are registered too
    write_proto(tmp_path / "proto")
    assert (run_protoc(tmp_path / "proto", tmp_path / "py")) == (0, "")


ROOTS = [(case, i) for case in CASES for i in range(len(load_roots([case])))]


@pytest.mark.parametrize(("case", "index"), ROOTS)
@given(data=st.data())
def test_meaning_of_generated_values(
    compiled: dict[str, list[type]], case: str, index: int, data: st.DataObject
) -> None:
    cls = compiled[case][index]
    check_meaning(cls, data.draw(instances(cls), label=cls.__name__))


def _scalars(**changes: Any) -> pc.Scalars:
    """A Scalars value: every field zero, except ``changes``."""
    values: dict[str, Any] = {}
    for f in savestate.schema_of(pc.Scalars).fields:  # type: ignore[union-attr]
        if isinstance(f.type, ScalarType):
            values[f.name] = f.type.kind.python()
    values.update(a_mode=pc.Mode.OFF, a_duration=datetime.timedelta(0))
    values.update(changes)
    return pc.Scalars(**values)


def _everything(**changes: Any) -> pc.Everything:
    return pc.Everything(scalars=changes.pop("scalars", _scalars()), **changes)


HAND_PICKED = [
    _everything(),
    _everything(
        scalars=_scalars(
            a_u8=255, a_u16=65535, a_u32=2**32 - 1, a_u64=2**64 - 1, a_i8=-128, a_i16=-32768,
            a_i32=-(2**31), a_i64=-(2**63), a_int32=-1, a_int64=-(2**63), a_uint32=2**32 - 1,
            a_uint64=2**64 - 1, a_sint32=2**31 - 1, a_sint64=2**63 - 1, a_fixed32=2**32 - 1,
            a_fixed64=2**64 - 1, a_sfixed32=-(2**31), a_sfixed64=-(2**63), a_f32=-0.0,
            a_f64=1e300, a_int=-5, a_float=-0.0, a_bool=True, a_str="é\u20ac\U0001f600",
            a_bytes=b"\x00\xff", a_mode=pc.Mode.IRQ_DRIVEN, a_level=pc.Level.low,
            a_duration=-datetime.timedelta(seconds=1, microseconds=10), ticks=0,
        ),
        opt_u32=0, opt_str="", opt_mode=pc.Level.LEVEL_MAX, opt_reg=pc.Register(),
        opt_pair=(0,), opt_duration=datetime.timedelta(0),
        list_u8=[0, 255], list_u32=[0, 1, 2**32 - 1], list_i16=[-1, 0, 1], list_f32=[-0.0, 1.5],
        list_bool=[False, True], list_mode=[pc.Mode.OFF, pc.Mode.POLLED], list_str=["", "a"],
        list_bytes=[b"", b"x"], list_reg=[pc.Register(), pc.Register(value=1)],
        list_tuple=[(0, ""), (1, "b")], list_wrapped=[(0,), (7,)],
        list_stage=[pc.Idle(), pc.Raw(code=0), pc.Count(n=0)],
        list_duration=[datetime.timedelta(0), datetime.timedelta(days=-1)],
        fixed_bytes=b"\x00\x01\x02\x03", fixed_u8_list=[1, 2, 3], fixed_u32=[0, 5],
        fixed_i32=[-1, 1], fixed_fixed32=[7], fixed_f64=[-0.0, 2.5],
        fixed_mode=[pc.Mode.POLLED, pc.Mode.OFF], fixed_str=["", "z"],
        fixed_reg=[pc.Register(), pc.Register(mask=3)], fixed_tuple=[(0, True)],
        fixed_stage=[pc.Busy(since=datetime.timedelta(0), corner=(0, 0))],
        pair=(0, "p"), wrapped_u32=(9,), wrapped_str=("s",), single_sint=(-3,),
        nested_tuple=((1, 0), pc.Register(value=2), pc.Mode.POLLED),
        map_str_u32={"": 0, "a": 1}, map_u64_reg={0: pc.Register(), 2**64 - 1: pc.Register(mask=1)},
        map_bool_tuple={False: (0, 0), True: (1, 2)}, map_i32_wrapped={-1: (0,), 0: (3,)},
        map_int_stage={0: pc.Idle(), 1: pc.Names(names=["", "n"]), 2: pc.Blob(data=b"")},
        map_fixed_mode={0: pc.Mode.OFF, 5: pc.Mode.IRQ_DRIVEN},
        map_bytes_str={b"": "", b"k": "v"}, map_mode_u32={pc.Mode.OFF: 0, pc.Mode.POLLED: 4},
        map_tuple_str={(0, ""): "", (1, "k"): "v"}, map_double={-0.5: pc.Point(x=1)},
        map_duration={datetime.timedelta(0): False, datetime.timedelta(seconds=-2): True},
        stage=pc.Busy(since=datetime.timedelta(hours=1), corner=(3, 4), level=pc.Level.HIGH),
        shape=pc.Segment(start=pc.Point(), end=pc.Point(x=-1, y=1)),
        point=pc.Point(x=2**31 - 1, y=-(2**31)),
        tree=pc.Node(
            label="root",
            children=[pc.Node(label=""), pc.Node(label="c", shape=pc.Segment(
                start=pc.Point(), end=pc.Point()))],
            parent=pc.Node(label=""),
        ),
        blob=SavedStateBlob(type_url="type.googleapis.com/a.B", value=b"\x08\x01"),
        blobs=[SavedStateBlob(), SavedStateBlob(type_url="x")],
    ),
    *(_everything(stage=s) for s in (
        pc.Idle(), pc.Count(n=0), pc.Count(n=7), pc.Offset(delta=-1), pc.Pair(first=0, second=""),
        pc.Wrapped(reg=pc.Register()), pc.Busy(since=datetime.timedelta(0), corner=(0, 0)),
        pc.Raw(code=0), pc.Where(at=pc.Point()), pc.Span(bounds=(0, -1)), pc.Blob(data=b""),
        pc.Names(names=["", ""]), pc.Inner(shape=pc.Dot()),
    )),
]


@pytest.mark.parametrize("value", HAND_PICKED, ids=range(len(HAND_PICKED)))
def test_meaning_of_hand_picked_values(compiled: dict[str, list[type]], value: Any) -> None:
    check_meaning(pc.Everything, value)


def test_meaning_of_the_quickstart_state(compiled: dict[str, list[type]]) -> None:
    from examples import quickstart as q

    state = q.SavedState(
        primary=q.SavedPic(init=q.Ready(), icw2=0x08, imr=0xFB),
        secondary=q.SavedPic(init=q.ExpectIcw3(icw4_needed=True), icw2=0x70, imr=0xFF),
        ticks=1000,
        pending=[0, 8],
    )
    check_meaning(q.SavedState, state)


def test_other_root_hosts_package_less_types(compiled: dict[str, list[type]]) -> None:
    check_meaning(pc.OtherRoot, pc.OtherRoot(where=pc.Point(x=-7)))
    check_meaning(pc.OtherRoot, pc.OtherRoot(where=pc.Point(), level=pc.Level.low))
    assert savestate.schema_of(pc.Point).package is None
