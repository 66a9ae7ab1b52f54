"""The proto3 JSON mapping, checked against ``google.protobuf.json_format`` on the same schemas.

savestate's bytes are parsed by the classes ``protoc`` generates from the emitted ``.proto``; then
``MessageToDict`` of that must equal savestate's ``to_dict``, and Google's JSON text must parse
with savestate's ``from_json`` back to the value. Hand-written cases pin the details (names,
64-bit strings, base64, enums, Duration, Any, special floats, unknown fields) and the errors.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2, json_format
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from savestate import (
    DecodeError,
    EncodeError,
    Oneof,
    Protobuf,
    SavedStateBlob,
    field,
    savedstate,
    u8,
    u32,
    u64,
    write_proto,
)
from savestate.codec.jsonmap import JsonError, from_dict, strict_blobs, to_dict
from savestate.errors import UnknownFieldsDropped
from savestate.model.names import json_name
from savestate.state.blob import type_url_of
from savestate.state.units import SavedStateUnit, SavedStateUnits

from . import proto_constructs as pc
from .proto_support import import_generated, pb_class, run_protoc
from .strategies import instances


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("jsonmap")
    paths = write_proto(base / "proto", [pc.Everything, pc.OtherRoot])
    status, messages = run_protoc(base / "proto", base / "py")
    assert (status, messages) == (0, "")
    import_generated(base / "py", [p.name for p in paths])


def google_dict(value: Any) -> Any:
    pb = pb_class("constructs.main.Everything").FromString(bytes(value))
    return json_format.MessageToDict(pb)


def _real_blobs(value: Any, draw_root: Any) -> Any:
    """Blobs holding registered roots (Google cannot print an Any of an unknown type)."""
    value.blob = draw_root
    value.blobs = [SavedStateBlob.new(pc.OtherRoot(where=pc.Point(x=1), level=pc.Level.low))]
    return value


ROOT_BLOBS = st.sampled_from(
    [
        SavedStateBlob(),
        SavedStateBlob.new(pc.OtherRoot(where=pc.Point(x=-3, y=4))),
        SavedStateBlob.new(SavedStateBlob.new(pc.OtherRoot(where=pc.Point()))),
    ]
)


@settings(
    max_examples=60,
    # Shrinking a value of this schema takes minutes: report the example as drawn.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_to_dict_matches_google(generated: None, data: st.DataObject) -> None:
    value = _real_blobs(data.draw(instances(pc.Everything)), data.draw(ROOT_BLOBS))
    ours = to_dict(value)
    assert ours == google_dict(value)
    # Google's JSON text reads back as the same value, and savestate's own JSON too.
    pb = pb_class("constructs.main.Everything").FromString(bytes(value))
    assert pc.Everything.from_json(json_format.MessageToJson(pb)) == value
    assert pc.Everything.from_json(value.to_json(indent=2)) == value
    # Google parses savestate's JSON to the same bytes' meaning.
    try:
        parsed = json_format.Parse(value.to_json(), pb_class("constructs.main.Everything")())
    except json_format.ParseError as exc:
        # Google prints the largest floats as their shortest decimal (3.4028235e+38), then
        # refuses that text as over FLT_MAX: its own output does not parse either.
        assert "Float value too" in str(exc)
        return
    assert pc.Everything.decode(parsed.SerializeToString()) == value


def test_default_value(generated: None) -> None:
    value = pc.Everything(scalars=pc.Scalars.decode(b""))
    assert pc.Everything.from_dict(to_dict(value)) == value
    assert to_dict(value) == google_dict(value)
    assert to_dict(value)["scalars"] == {"aLevel": "LEVEL_HIGH", "ticks": 100}


def test_details() -> None:
    s = pc.Scalars.decode(b"")
    s = replace(
        s, a_u64=1 << 63, a_i64=-5, a_int32=-1, a_f32=0.1, a_f64=-0.0, a_bytes=b"\xff\x00",
        a_mode=pc.Mode.IRQ_DRIVEN, a_level=pc.Level.low, a_duration=datetime.timedelta(
            seconds=1, microseconds=10), a_float=math.inf, ticks=0,
    )
    d = to_dict(s)
    assert d["aU64"] == str(1 << 63) and d["aI64"] == "-5" and d["aInt32"] == -1
    assert d["aF32"] == 0.1 and math.copysign(1, d["aF64"]) == -1
    assert d["aBytes"] == "/wA=" and d["aMode"] == "MODE_IRQ_DRIVEN"
    assert d["aLevel"] == "LEVEL_LOW" and d["aDuration"] == "1.000010s"
    assert d["aFloat"] == "Infinity" and d["ticks"] == 0
    assert "aU8" not in d
    nan = replace(s, a_f64=math.nan)
    assert to_dict(nan)["aF64"] == "NaN"
    assert math.isnan(from_dict(pc.Scalars, {"aF64": "NaN"}).a_f64)
    # Both name forms are accepted, and enums by Python member name or number.
    assert from_dict(pc.Scalars, {"a_u8": 3, "aMode": 1, "a_level": "HIGH"}) == replace(
        pc.Scalars.decode(b""), a_u8=3, a_mode=pc.Mode.POLLED, a_level=pc.Level.HIGH
    )
    assert from_dict(pc.Scalars, {"aDuration": "-1.5s"}).a_duration == datetime.timedelta(
        seconds=-1.5
    )
    assert json_name("line_low_latch") == "lineLowLatch"


def test_oneof_and_any() -> None:
    assert to_dict(pc.Idle()) == {"idle": {}}
    assert to_dict(pc.Count(n=5)) == {"count": 5}
    assert to_dict(pc.Pair(first=1, second="x")) == {"pair": {"field1": 1, "field2": "x"}}
    assert pc.Stage.from_dict({"count": 5}) == pc.Count(n=5)
    assert pc.Count.from_dict({"count": 5}) == pc.Count(n=5)
    with pytest.raises(JsonError, match="expected variant Count, got Idle"):
        pc.Count.from_dict({"idle": {}})
    blob = SavedStateBlob.new(pc.OtherRoot(where=pc.Point(x=2)))
    d = blob.to_dict()
    assert d == {
        "@type": "type.googleapis.com/constructs.other.OtherRoot",
        "where": {"x": 2},
        "level": "LEVEL_HIGH",
    }
    assert SavedStateBlob.from_dict(d) == blob
    unknown = SavedStateBlob(type_url="type.googleapis.com/nowhere.Thing", value=b"\x08\x01")
    assert unknown.to_dict() == {"@type": unknown.type_url, "@value": "CAE="}
    assert SavedStateBlob.from_dict(unknown.to_dict()) == unknown
    with pytest.raises(JsonError, match="names no registered saved-state root"):
        SavedStateBlob.from_dict({"@type": unknown.type_url})


def test_one_element_tuples() -> None:
    """A one-element tuple is the bare value where the .proto says google.protobuf.*Value (a
    transparent class too: its inner value), and ``{"field1": ...}`` where it is a nested
    message (a ``// u8`` width)."""

    class Ticks(Protobuf, transparent=True):
        n: u32 = field(1)

    class Event(Oneof, package="json.tuples"):
        pass

    class At(Event, variant=1, tuple=True):
        ticks: Ticks = field(1)

    class Holder(Protobuf, package="json.tuples"):
        wrapped: tuple[Ticks] = field(1)
        narrow: tuple[u8] = field(2)
        event: Event = field(3)

    value = Holder(wrapped=(Ticks(n=5),), narrow=(7,), event=At(ticks=Ticks(n=0)))
    d = to_dict(value)
    assert d == {"wrapped": 5, "narrow": {"field1": 7}, "event": {"at": 0}}
    assert from_dict(Holder, d) == value
    with pytest.raises(EncodeError, match=r"Holder.wrapped\[0\]: expected Ticks, got int"):
        to_dict(replace(value, wrapped=(5,)))


def test_bare_tuple_variant_json_says_it_drops_unknown_fields() -> None:
    """A one-field tuple variant keeps unknown fields in its bytes, but its JSON is a bare
    value, which cannot hold them: they are dropped with a warning, never silently."""

    class Signal(Oneof, package="json.bare"):
        pass

    class Amount(Signal, variant=1, tuple=True):
        n: u32 = field(1)

    class Line(Protobuf, package="json.bare"):
        signal: Signal = field(1)

    data = bytes.fromhex("0a060a0408053807")  # Amount(5), with field 7 = 7 in its record
    value = Line.decode(data)
    assert bytes(value) == data
    with pytest.warns(UnknownFieldsDropped,
                      match=r"^Line\.signal\.Amount: 2 bytes of unknown fields dropped") as warned:
        assert value.to_dict() == {"signal": {"amount": 5}}
    # Reported at the caller's line, not inside the library.
    assert [w.filename for w in warned] == [__file__]


def test_unknown_fields_round_trip() -> None:
    data = bytes(pc.OtherRoot(where=pc.Point(x=1))) + b"\x98\x06\x07" + b"\xa2\x06\x02hi"
    value = pc.OtherRoot.decode(data)
    d = value.to_dict()
    assert d["@unknown"] == "mAYHogYCaGk="
    again = pc.OtherRoot.from_json(json.dumps(d))
    assert bytes(again) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nope": 1}, "OtherRoot: unknown field 'nope' of OtherRoot"),
        ({"where": {"x": "a"}}, "OtherRoot.where.x: expected an integer for i32, got str"),
        ({"where": {"x": 1 << 40}}, "OtherRoot.where.x: value 1099511627776 out of range"),
        ({"where": []}, "OtherRoot.where: expected a JSON object, got list []"),
        ({"level": "LOUD"}, "OtherRoot.level: unknown value 'LOUD' for enum Level"),
        ([], "OtherRoot: expected a JSON object"),
        ({"where": {"x": 1}, "level": True}, "OtherRoot.level: expected an enum name"),
    ],
)
def test_errors_name_the_path(data: Any, message: str) -> None:
    with pytest.raises(JsonError) as info:
        pc.OtherRoot.from_dict(data)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, DecodeError)


def test_deep_errors() -> None:
    with pytest.raises(JsonError, match=r"Everything.list_stage\[0\].Busy.since: expected a "):
        pc.Everything.from_dict({"scalars": {}, "listStage": [{"busy": {"since": 3}}]})
    with pytest.raises(JsonError, match=r"Everything.fixed_bytes: invalid base64"):
        pc.Everything.from_dict({"scalars": {}, "fixedBytes": "!!"})
    with pytest.raises(JsonError, match=r"Everything.fixed_u32: expected 2 elements, got 1"):
        pc.Everything.from_dict({"scalars": {}, "fixedU32": [1]})
    with pytest.raises(JsonError, match="invalid JSON"):
        pc.Everything.from_json("{")


def test_write_proto_dir_is_independent(tmp_path: Path) -> None:
    # The JSON names are derived from the same declared names the .proto uses.
    files = write_proto(tmp_path, [pc.OtherRoot])
    assert any("Level level = 2" in p.read_text() for p in files)


class Hostile(Protobuf, package="jsonmap.hostile"):
    number: float = field(1)
    count: u8 = field(2)
    big: u64 = field(3)
    wait: datetime.timedelta = field(4)
    level: pc.Level = field(5, default=pc.Level.low)
    text: str = field(6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Numbers past every width: the error names them by size, never by a 4,300-digit text.
        ('{"number": %s}' % ("1" * 400), "Hostile.number: value int of 1326 bits out of range"),
        ('{"number": 1e400}', "Hostile.number: value float inf out of range for f64"),
        # Past the digits Python converts: not its advice to raise that limit.
        ('{"count": %s}' % ("9" * 4301), "Hostile: invalid JSON: an integer of 4301 digits, "
                                         "longer than any field holds"),
        ('{"big": -%s}' % ("9" * 5000), "Hostile: invalid JSON: an integer of 5000 digits"),
        ('{"count": "%s"}' % ("9" * 41), 'Hostile.count: value str "999999999999999999999999999'
                                         '999999999... out of range for u8 (0..255)'),
        ('{"wait": "%ss"}' % ("9" * 5000), "Hostile.wait: duration seconds str"),
        ('{"big": " 7"}', 'Hostile.big: expected an integer for u64, got str " 7"'),
        ('{"number": NaN}', 'Hostile: invalid JSON: NaN is not JSON (write the string "NaN")'),
        ('{"number": -Infinity}', "Hostile: invalid JSON: -Infinity is not JSON"),
        ('{"text": "\\ud800"}', "Hostile.text: string is not valid UTF-8"),
        ('{"count": 1, "count": 2}', "Hostile: key 'count' given twice in one object"),
        # Known field numbers in "@unknown" would decode as the field, and change it.
        ('{"count": 5, "@unknown": "EAk="}', "Hostile.@unknown: holds field 2, which is "
                                             "Hostile.count"),
        # Field numbers past 2**29 - 1 would encode to bytes that no decode reads back (the
        # second is 2**32 + 2, which a decoder truncating tags to 32 bits reads as field 2).
        ('{"@unknown": "gICAgBAB"}', "Hostile.@unknown: not protobuf records: field number "
                                     "536870912 is out of range"),
        ('{"@unknown": "kICAgIABAQ=="}', "Hostile.@unknown: not protobuf records: field "
                                         "number 4294967298 is out of range"),
    ],
)
def test_hostile_json_is_a_json_error(text: str, message: str) -> None:
    with pytest.raises(JsonError) as info:
        Hostile.from_json(text)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": 10**5000}, "Hostile.count: value int of 16610 bits out of range for u8"),
        ({"big": -(10**5000)}, "Hostile.big: value int of 16610 bits out of range for u64"),
        ({"level": 10**5000}, "Hostile.level: unknown value int of 16610 bits for enum Level"),
        ({"number": 10**400}, "Hostile.number: value int of 1329 bits out of range for f64"),
        ({"number": math.inf}, "Hostile.number: value float inf out of range for f64"),
    ],
)
def test_huge_python_numbers_are_a_json_error(data: Any, message: str) -> None:
    with pytest.raises(JsonError) as info:
        Hostile.from_dict(data)
    assert str(info.value).startswith(message), str(info.value)


def test_any_mapping_is_a_json_object() -> None:
    from types import MappingProxyType

    value = Hostile.from_dict(MappingProxyType({"count": 3, "text": "x"}))
    assert (value.count, value.text) == (3, "x")


class WithGoogleDuration(Protobuf, package="jsonmap.foreign"):
    wait: duration_pb2.Duration | None = field(1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # seconds = 10**12, past Duration's range
        (bytes.fromhex("0a070880a094a58d1d"), "Seconds 1000000000000 must be in range"),
        # seconds = 1, nanos = -5
        (bytes.fromhex("0a0d080110fbffffffffffffffff01"), "Sign mismatch"),
    ],
)
def test_foreign_json_refusal_is_an_encode_error(data: bytes, reason: str) -> None:
    # Bytes that Google's runtime decodes, but whose JSON it refuses to write: the error is
    # savestate's, at the field, so that `savestate decode` reports it instead of crashing.
    value = WithGoogleDuration.decode(data)
    with pytest.raises(EncodeError) as info:
        value.to_json()
    assert info.value.path == ["WithGoogleDuration", "wait"]
    assert reason in str(info.value), str(info.value)


@savedstate(package="json.blob_keeps")
class WithTuple(Protobuf, package="json.blob_keeps"):
    pair: tuple[u32, u32] = field(1)


class BlobSignal(Oneof, package="json.blob_keeps"):
    pass


class BlobAmount(BlobSignal, variant=1, tuple=True):
    n: u32 = field(1)


@savedstate(package="json.blob_keeps")
class WithBareVariant(Protobuf, package="json.blob_keeps"):
    signal: BlobSignal = field(1)


def test_strict_blobs_refuses_a_blob_whose_bytes_do_not_decode() -> None:
    # Outside strict_blobs, the JSON of such a blob holds its bytes (it stays lossless); within
    # it (savestate decode and diff), it is the decode's error, at the path under the blob's,
    # from however deep a blob it comes.
    bad = SavedStateBlob(type_url=type_url_of(WithTuple), value=b"\x0a\x02\x08")
    outer = SavedStateBlob.new(SavedStateUnits(units=[SavedStateUnit(name="u", state=bad)]))
    assert bad.to_dict() == {"@type": type_url_of(WithTuple), "@value": "CgII"}
    assert outer.to_dict()["units"][0]["state"] == bad.to_dict()
    with strict_blobs(), pytest.raises(DecodeError) as info:
        outer.to_dict()
    assert str(info.value) == (
        "SavedStateBlob.SavedStateUnits.units[0].state.WithTuple.pair: length 2 runs past the "
        "end of the input"
    )


def test_a_blob_that_its_json_would_lose_fields_of_is_kept_as_its_bytes() -> None:
    # A tuple cannot keep unknown fields (a decode drops them, warning), nor can the bare JSON
    # of a one-field tuple variant; a blob's JSON has the lossless form, its bytes ("@value"),
    # so a decode then encode of the blob gives back every byte, and nothing is said.
    cases = [
        (WithTuple, bytes.fromhex("0a06" "0801" "1002" "1803")),  # field 3 inside the tuple
        (WithBareVariant, bytes.fromhex("0a060a0408053807")),  # field 7 inside the variant
    ]
    for cls, data in cases:
        blob = SavedStateBlob(type_url=type_url_of(cls), value=data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            d = blob.to_dict()
        assert d == {"@type": type_url_of(cls), "@value": base64.b64encode(data).decode()}
        assert bytes(SavedStateBlob.from_dict(d)) == bytes(blob)
        with warnings.catch_warnings(), strict_blobs():  # kept as bytes, not refused
            warnings.simplefilter("error")
            assert blob.to_dict() == d
    # Without such fields the blob's contents are shown, as always.
    blob = SavedStateBlob.new(WithTuple(pair=(1, 2)))
    assert blob.to_dict() == {"@type": type_url_of(WithTuple), "pair": {"field1": 1, "field2": 2}}
    # Outside a blob there is no such form: the value's own JSON drops them, and says so.
    with pytest.warns(UnknownFieldsDropped):
        WithTuple.decode(cases[0][1])
