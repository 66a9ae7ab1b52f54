"""Transparent newtypes and nested containers: bytes as the Rust derive writes them.

Each row is a value and the bytes the reference writes for it, worked out from the derive's
encoders (``mesh_protobuf``: ``OptionField``, ``VecField``, ``MapField``, ``ArrayField``,
``TransparentEncoding`` and their ``wrap_in_sequence``); the hex of the derive's own test
vectors is reused where there is one (``vec![vec![1,2,3], vec![4,5,6]]``, transparent variants
holding ``Option<u32>`` and ``Vec<u32>``). Every row is checked for both codecs, both ways, and
against Google's runtime reading the golden ``.proto`` (which protoc must accept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from savestate import DecodeError, EncodeError, Protobuf, SchemaError, field, proto_files, u8, u32
from savestate.codec import interp

from . import wire_constructs as w
from .proto_support import import_generated, pb_class, run_protoc

GOLDEN = Path(__file__).parent / "golden" / "tests.wire_constructs"

EMPTY: dict[str, Any] = {
    "opt_vec": None, "vec_opt": [], "opt_arr": None, "times": [], "vec_vec": [], "vec_map": [],
    "map_vec": {}, "map_opt": {}, "opt_pair": None, "opt_bytes": None,
    "time": w.VmTime(ticks=0), "opt_time": None, "time_map": {}, "regs": w.Regs(values=[]),
    "regs_list": [], "opt_items": None, "items_opt": [], "opt_fixed": None, "vec_strs": [],
}


def extras(**fields: Any) -> w.Extras:
    return w.Extras(**{**EMPTY, **fields})


T = w.VmTime
# (field, value, hex the reference writes)
ROWS: list[tuple[str, Any, str]] = [
    ("opt_vec", None, ""),
    ("opt_vec", [], "0a00"),  # Some(vec![]): an empty wrapper record
    ("opt_vec", [1, 2], "0a04" "0a020102"),
    ("vec_opt", [None, 5, 0], "1200" "12020805" "12020800"),  # Some(0) is written
    ("opt_arr", b"\0\1\2\3", "1a0400010203"),
    ("opt_arr", b"\0\0\0\0", "1a0400000000"),
    ("times", [T(ticks=1), T(ticks=0), T(ticks=300)], "2001" "2000" "20ac02"),  # not packed
    ("vec_vec", [[1, 2, 3], [4, 5, 6]], "2a050a03010203" "2a050a03040506"),
    ("vec_vec", [[]], "2a00"),
    ("vec_map", [{1: 2}], "3206" "0a0408011002"),
    ("vec_map", [{}], "3200"),
    ("map_vec", {1: [2, 3]}, "3a06" "0801" "12020203"),
    ("map_vec", {0: []}, "3a00"),
    ("map_opt", {1: 0}, "4204" "0801" "1000"),  # an optional value is written when zero
    ("map_opt", {2: None}, "4202" "0802"),
    ("opt_pair", (0, 0), "4a00"),
    ("opt_pair", (1, 2), "4a04" "08011002"),
    ("opt_bytes", [], "5200"),  # Option<Vec<u8>> is optional bytes: no wrapper
    ("opt_bytes", [1, 255], "5202" "01ff"),
    ("time", T(ticks=0), ""),
    ("time", T(ticks=5), "5805"),
    ("opt_time", T(ticks=0), "6000"),
    ("time_map", {"a": T(ticks=1)}, "6a05" "0a0161" "1001"),
    ("regs", w.Regs(values=[1, 2]), "7202" "0102"),
    ("regs_list", [w.Regs(values=[1]), w.Regs(values=[])], "7a03" "0a0101" "7a00"),
    ("opt_items", [], "820100"),
    ("opt_items", [w.Item(id=1), w.Item(id=0)], "8201" "06" "0a020801" "0a00"),
    ("items_opt", [None, w.Item(id=0), w.Item(id=2)],
     "8a0100" "8a0102" "0a00" "8a0104" "0a020802"),
    ("opt_fixed", [0, 0], "920102" "0000"),  # a fixed array is never wrapped
    ("vec_strs", [["a", ""]], "9a01" "05" "0a0161" "0a00"),
]
EVENTS: list[tuple[Any, str]] = [
    (w.Maybe(value=None), "0a02" "0a00"),
    (w.Maybe(value=5), "0a04" "0a020805"),
    (w.Many(values=[]), "0a02" "1200"),
    (w.Many(values=[5]), "0a05" "12030a0105"),
    (w.At(time=T(ticks=0)), "0a02" "1800"),
]
# Google writes repeated numbers packed: savestate reads that form too.
GOOGLE_PACKS = {"times"}


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The golden file compiled by protoc, imported."""
    out = tmp_path_factory.mktemp("wire_constructs")
    status, messages = run_protoc(GOLDEN, out)
    assert (status, messages) == (0, "")
    import_generated(out, ["wire.constructs.proto"])
    return pb_class


def test_golden_text() -> None:
    emitted = proto_files([w.Extras, w.Holder])
    assert emitted == {
        "wire.constructs.proto": (GOLDEN / "wire.constructs.proto").read_text(encoding="utf-8")
    }


@pytest.mark.parametrize(("name", "value", "hexed"), ROWS, ids=[f"{r[0]}-{r[2]}" for r in ROWS])
def test_bytes(name: str, value: Any, hexed: str, google: Any) -> None:
    obj = extras(**{name: value})
    data = bytes.fromhex(hexed)
    assert bytes(obj).hex() == hexed
    assert interp.encode(w.Extras, obj).hex() == hexed
    assert w.Extras.decode(data) == obj
    assert interp.decode(w.Extras, data, 100) == obj
    # Google's runtime reads the same bytes through the .proto, knowing every field.
    pb = google("wire.constructs.Extras").FromString(data)
    pb.DiscardUnknownFields()
    again = pb.SerializeToString()
    if name in GOOGLE_PACKS:
        assert w.Extras.decode(again) == obj
    else:
        assert again == data


@pytest.mark.parametrize(("event", "hexed"), EVENTS, ids=[e[1] for e in EVENTS])
def test_event_bytes(event: Any, hexed: str, google: Any) -> None:
    holder = w.Holder(event=event)
    data = bytes.fromhex(hexed)
    assert bytes(holder).hex() == hexed
    assert interp.encode(w.Holder, holder).hex() == hexed
    assert w.Holder.decode(data) == holder
    assert interp.decode(w.Holder, data, 100) == holder
    pb = google("wire.constructs.Holder").FromString(data)
    pb.DiscardUnknownFields()
    assert pb.SerializeToString() == data


def test_google_sees_the_values(google: Any) -> None:
    """The wrappers mean in Google's classes what they mean in savestate's."""
    obj = extras(opt_vec=[1, 2], vec_opt=[None, 0], map_opt={7: None}, opt_time=T(ticks=0),
                 items_opt=[None, w.Item(id=3)], time_map={"x": T(ticks=9)})
    pb = google("wire.constructs.Extras").FromString(bytes(obj))
    assert list(pb.opt_vec.field1) == [1, 2]
    assert [e.HasField("field1") for e in pb.vec_opt] == [False, True]
    assert [(e.key, e.HasField("value")) for e in pb.map_opt] == [(7, False)]
    assert pb.HasField("opt_time") and pb.opt_time == 0
    assert [e.HasField("field1") for e in pb.items_opt] == [False, True]
    assert pb.items_opt[1].field1.id == 3
    assert dict(pb.time_map) == {"x": 9}
    # And savestate reads what Google writes.
    pb2 = google("wire.constructs.Extras")()
    pb2.opt_vec.SetInParent()
    pb2.vec_vec.add().field1.extend([4, 5])
    pb2.times.extend([1, 2])
    got = w.Extras.decode(pb2.SerializeToString())
    assert got == extras(opt_vec=[], vec_vec=[[4, 5]], times=[T(ticks=1), T(ticks=2)])


@pytest.mark.parametrize(
    ("hexed", "expected"),
    [
        # A transparent u64 list also accepts the packed form (the reference does not).
        ("2202" "0105", {"times": [T(ticks=1), T(ticks=5)]}),
        # A fixed array given twice takes its last record, as the reference does.
        ("920102" "0102" "920102" "0304", {"opt_fixed": [3, 4]}),
        ("1a0400000000" "1a0401020304", {"opt_arr": b"\1\2\3\4"}),
        # Repeated copies of a wrapper merge, as any message does.
        ("0a03" "0a0101" "0a03" "0a0102", {"opt_vec": [1, 2]}),
    ],
)
def test_decoding_rules(hexed: str, expected: dict[str, Any]) -> None:
    data = bytes.fromhex(hexed)
    assert w.Extras.decode(data) == extras(**expected)
    assert interp.decode(w.Extras, data, 100) == extras(**expected)


@pytest.mark.parametrize(
    ("hexed", "message"),
    [
        ("1a03000000", "Extras.opt_arr: expected 4 elements, got 3"),
        ("920103" "000000", "Extras.opt_fixed: expected 2 elements, got 3"),
        ("0a05" "0d00000000", "Extras.opt_vec: wrong wire type: expected varint, got fixed32"),
        ("1204" "0a020801", "Extras.vec_opt[0]: wrong wire type: expected varint, got "
         "length-delimited"),
    ],
)
def test_decode_errors(hexed: str, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        w.Extras.decode(bytes.fromhex(hexed))
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"time": 5}, "Extras.time: expected VmTime, got int 5"),
        ({"times": [T(ticks=1), 2]}, "Extras.times[1]: expected VmTime, got int 2"),
        ({"opt_arr": b"\0"}, "Extras.opt_arr: expected 4 bytes, got 1"),
        ({"vec_opt": [1, "x"]}, "Extras.vec_opt[1]: expected int for u32, got str 'x'"),
        ({"map_vec": {1: [2**32]}},
         "Extras.map_vec[1].value[0]: value 4294967296 out of range for u32 (0..4294967295)"),
        ({"regs": w.Regs(values=[-1])},
         "Extras.regs.values[0]: value -1 out of range for u32 (0..4294967295)"),
    ],
)
def test_encode_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError) as info:
        bytes(extras(**fields))
    assert str(info.value) == message


def test_json_round_trip() -> None:
    obj = extras(**{name: value for name, value, _ in ROWS[::-1]})
    assert w.Extras.from_json(obj.to_json()) == obj


class MaybeCount(Protobuf, transparent=True):
    """A transparent class holding an optional: absence decodes to the class around None."""

    count: u32 | None = field(1)


class Pair(Protobuf, transparent=True):
    values: list[u32] = field(1, length=2)


class Holds(Protobuf, package="wire.holds"):
    one: MaybeCount = field(1)
    many: list[MaybeCount] = field(2)
    by_name: dict[str, MaybeCount] = field(3)
    maybe: MaybeCount | None = field(4)
    pairs: dict[str, Pair] = field(5)


def test_transparent_optional_and_transparent_array_in_a_map() -> None:
    none = MaybeCount(count=None)
    value = Holds(one=none, many=[none], by_name={"k": none}, maybe=none, pairs={})
    data = bytes(value)
    assert data.hex() == "1200" "1a03" "0a016b" "2200"
    assert Holds.decode(data) == value
    assert interp.decode(Holds, data, 100) == value
    assert Holds.decode(b"") == Holds(one=none, many=[], by_name={}, maybe=None, pairs={})
    # A map whose value is a packed array is an entry message, never map<K, V>.
    text = proto_files([Holds])["wire.holds.proto"]
    assert "repeated Pairs pairs = 5;" in text
    assert "repeated uint32 value = 2; // packed repr only; length 2" in text
    with_pair = Holds(one=none, many=[], by_name={}, maybe=None,
                      pairs={"a": Pair(values=[1, 2])})
    assert bytes(with_pair).hex() == "2a07" "0a0161" "12020102"
    assert Holds.decode(bytes(with_pair)) == with_pair


class PackedPair(Protobuf, transparent=True):
    values: list[u32] = field(1, length=2)


class ArrayOfByteLists(Protobuf):
    rows: list[list[u8]] = field(1, length=2)


class ArrayOfPackedArrays(Protobuf):
    pairs: list[PackedPair] = field(1, length=1)


class ListOfPackedArrays(Protobuf):
    pairs: list[PackedPair] = field(1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # [Vec<u8>; 2]: each row is a bytes record, not a wrapped element; it was accepted and
        # then failed to encode any value, and decoded rows as bytes objects.
        (ArrayOfByteLists(rows=[[1], []]),
         "ArrayOfByteLists.rows: cannot encode a fixed-length array of list[u8]: declare its "
         "elements as bytes"),
        # [[u32; 2]; 1]: the derive writes each element as a packed record, which no .proto
        # describes; it was accepted, then valid bytes failed to decode.
        (ArrayOfPackedArrays(pairs=[PackedPair(values=[1, 2])]),
         "ArrayOfPackedArrays.pairs: cannot encode a fixed-length array of PackedPair: its "
         "elements are fixed-length arrays of numbers, each written as one packed record, "
         "which no .proto can describe (declare a message holding the array as the element)"),
        # Vec<[u32; 2]>: the same, and the error told to declare the elements as bytes.
        (ListOfPackedArrays(pairs=[PackedPair(values=[1, 2])]),
         "ListOfPackedArrays.pairs: cannot encode a list of PackedPair: its elements are "
         "fixed-length arrays of numbers, each written as one packed record, which no .proto "
         "can describe (declare a message holding the array as the element)"),
    ],
)
def test_array_or_list_of_unwrapped_sequences_is_a_schema_error(value: Any, message: str) -> None:
    for use in (bytes, lambda v: type(v).decode(b""), lambda v: interp.encode(type(v), v)):
        with pytest.raises(SchemaError) as info:
            use(value)
        assert str(info.value) == message


class TransparentPoint(Protobuf, package="t.wire.transparent_alone"):
    x: u32 = field(1)


class TransparentWrapper(Protobuf, package="t.wire.transparent_alone", transparent=True):
    inner: TransparentPoint = field(1)


class TransparentHolder(Protobuf, package="t.wire.transparent_alone"):
    wrapped: TransparentWrapper = field(2)


def test_a_transparent_class_by_itself_is_a_message_of_one_field() -> None:
    # As a field it is exactly its field (the reference's bytes); encoded by itself it is a
    # message of one field, where the reference writes the value inside (README: "Where
    # savestate differs from the Rust reference").
    value = TransparentWrapper(inner=TransparentPoint(x=3))
    assert bytes(TransparentHolder(wrapped=value)).hex() == "12020803"
    assert bytes(value).hex() == "0a020803"
    assert TransparentWrapper.decode(bytes.fromhex("0a020803")) == value
