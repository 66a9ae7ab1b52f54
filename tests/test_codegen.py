"""The generated codec: readable source that inspect and tracebacks can show, compiled once."""

from __future__ import annotations

import inspect
import linecache
import threading
import traceback

import pytest

from savestate import Oneof, Protobuf, field, u8, u32
from savestate.codec import accel
from savestate.codec.front import codec_of


class Leaf(Protobuf):
    x: u8 = field(1)


class Tree(Protobuf):
    leaves: list[Leaf] = field(1)
    name: str = field(2)


def test_generated_source_is_inspectable() -> None:
    codec = codec_of(Tree)
    source = inspect.getsource(codec._encode)
    assert source.startswith("def encode_Tree")
    assert "obj.leaves" in source
    assert inspect.getsource(codec._decode).startswith("def decode_Tree")
    assert codec.filename.startswith("<savestate codec")


def test_tracebacks_show_generated_lines() -> None:
    codec = codec_of(Tree)
    buf = bytearray()
    try:
        # (a list of all-number messages may be the C accelerator's: the refused value is
        # a field the generated code checks itself)
        codec._encode(Tree(leaves=[Leaf(x=3)], name=5), buf, 100)  # type: ignore[arg-type]
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
    else:  # pragma: no cover
        raise AssertionError("the fast path accepted a value of the wrong type")
    assert "<savestate codec" in text
    assert "raise Mismatch" in text


def test_compiled_once_and_shared() -> None:
    assert codec_of(Tree) is codec_of(Tree)
    assert codec_of(Leaf)._encode is codec_of(Leaf)._encode


def test_variant_classes_encode_and_decode_their_enum() -> None:
    class Op(Oneof):
        pass

    class Nop(Op, variant=1):
        pass

    class Add(Op, variant=2):
        n: u32 = field(1)

    assert bytes(Add(n=1)).hex() == "12020801"
    assert Op.decode(bytes.fromhex("12020801")) == Add(n=1)
    assert Add.decode(bytes.fromhex("12020801")) == Add(n=1)
    import pytest

    from savestate import DecodeError

    with pytest.raises(DecodeError) as info:
        Nop.decode(bytes.fromhex("12020801"))
    assert str(info.value) == "Op: expected variant Nop, got Add"


def test_first_use_from_many_threads_compiles_once() -> None:
    classes = []
    for i in range(4):
        classes.append(
            type(Protobuf)(f"T{i}", (Protobuf,), {"__annotations__": {"v": "list[Leaf]"},
                                                  "v": field(1), "__module__": __name__})
        )
    results: list[object] = []
    barrier = threading.Barrier(8)

    def work(cls: type) -> None:
        barrier.wait()
        value = cls(v=[Leaf(x=1), Leaf(x=2)])
        results.append(cls.decode(bytes(value)) == value)
        results.append(codec_of(cls))

    threads = [threading.Thread(target=work, args=(classes[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 8
    codecs = [r for r in results if r is not True]
    assert len({id(c) for c in codecs}) == 4


def test_import_loads_only_the_declaring_modules() -> None:
    import subprocess
    import sys

    code = (
        "import savestate, sys; "
        "print(sorted(m for m in sys.modules if m.startswith('savestate')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['savestate', 'savestate.declare', 'savestate.errors', " \
        "'savestate.limits', 'savestate.model', 'savestate.model.registry', " \
        "'savestate.model.scalars']"


def test_declaring_compiles_no_codec_until_first_use() -> None:
    class Lazy(Protobuf):
        x: u8 = field(1)

    assert Lazy.__savestate__.codec is None
    assert Lazy.decode(bytes(Lazy(x=1))) == Lazy(x=1)
    assert Lazy.__savestate__.codec is not None


def _same_name(kind: str) -> type:
    if kind == "number":

        class Same(Protobuf):
            count: u32 = field(1)

    else:

        class Same(Protobuf):  # type: ignore[no-redef]
            label: str = field(1)

    return Same


def test_each_class_has_its_own_linecache_entry() -> None:
    """Two classes of one qualified name keep their own source (tracebacks, getsource)."""
    first, second = _same_name("number"), _same_name("text")
    assert first.__qualname__ == second.__qualname__
    a, b = codec_of(first), codec_of(second)
    assert a.filename != b.filename
    assert "obj.count" in inspect.getsource(a._encode)
    assert "obj.label" in inspect.getsource(b._encode)
    assert "obj.count" in "".join(linecache.getlines(a.filename))


def test_generated_names_come_from_the_fields() -> None:
    source = codec_of(Tree).source
    assert "leaves = obj.leaves" in source
    assert ("buf += LEAVES_TAG" in source
            or "encode_messages(buf, leaves, depth, LEAVES_TAG" in source)
    assert "if tag == 10:  # leaves = 1" in source
    assert "f1" not in source and "_KN" not in source


def test_strict_mode_fails_on_a_compiler_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under SAVESTATE_STRICT=1 an exception from a compiled codec that is not one of its
    mismatch signals is an error; without it the interpreter answers instead."""
    from savestate.codec import front

    class Broken(Protobuf):
        n: u32 = field(1)

    codec = codec_of(Broken)

    def buggy(*args: object) -> None:
        raise TypeError("a bug in generated code")

    monkeypatch.setattr(codec, "_encode", buggy)
    monkeypatch.setattr(codec, "_decode", buggy)
    monkeypatch.setattr(codec, "native", None)  # the generated code's turn
    monkeypatch.setattr(front, "STRICT", True)
    with pytest.raises(AssertionError, match="compiled encoder failed"):
        bytes(Broken(n=1))
    with pytest.raises(AssertionError, match="compiled decoder failed"):
        Broken.decode(b"\x08\x01")
    monkeypatch.setattr(front, "STRICT", False)
    assert bytes(Broken(n=1)) == b"\x08\x01"
    assert Broken.decode(b"\x08\x01") == Broken(n=1)


def test_the_test_suite_runs_strict() -> None:
    from savestate.codec import front

    assert front.STRICT


class Register(Protobuf):
    index: u32 = field(1)
    value: u32 = field(2)


class Device(Protobuf):
    registers: list[Register] = field(1)
    name: str = field(2)


def test_inline_elements_keep_their_own_unknown_fields() -> None:
    """A list element decoded inline, in its parent's function, has unknown fields of its own."""
    data = bytes.fromhex("7807" "0a04" "0801" "7005" "1201" "61")
    device = Device.decode(data)
    assert device._pb_unknown == bytes.fromhex("7807")
    assert device.registers[0]._pb_unknown == bytes.fromhex("7005")
    assert bytes(device) == bytes.fromhex("0a04" "0801" "7005" "1201" "61" "7807")
    source = codec_of(Device).source
    # (with the C accelerator the whole list is one call of its helper instead)
    assert "# Register, inline" in source or (
        accel.ACCELERATED and "decode_messages(" in source)


def test_unknown_fields_keep_their_tags_as_written() -> None:
    """The compiled decoder finds where an unknown field's record began without noting it for
    every field: tags of one byte, of two, and an overlong one (field 15 in two bytes, whose
    last byte is 0) are all kept as they came, between known fields, in the generated code."""
    tags = ["78", "a006", "f800", "c00c", "8801"]  # fields 15, 100, 15 overlong, 200, 17
    for tag in tags:
        record = tag + "05"
        data = bytes.fromhex("0a02" "0801" + record + "1201" "61" + record)
        fast = codec_of(Device)._decode(data, 0, len(data), 100, None)
        assert fast._pb_unknown == bytes.fromhex(record * 2), tag
        assert fast == Device.decode(data)
        body = bytes.fromhex("0801" + record)
        inner = bytes((0x0A, len(body))) + body  # an element: inline in the parent's function
        element = codec_of(Device)._decode(inner, 0, len(inner), 100, None).registers[0]
        assert element._pb_unknown == bytes.fromhex(record), tag


def test_numbers_are_read_to_the_tenth_byte() -> None:
    """Every number field, and every element of a packed list, is read with each byte
    unrolled: each length from 1 to 10 bytes, overlong ones included, reads as the interpreter
    reads it, for each kind, and a tenth byte above 1, an eleventh byte, a number past its
    kind's range and a number cut short are refused, by the generated code and by the codec
    as a whole."""
    from savestate import DecodeError, i32, i64, sint64, u64
    from savestate.codec import interp

    class Wide(Protobuf):
        unsigned: list[u64] = field(1)
        signed: list[i64] = field(2)
        one: u64 = field(3)
        small: u32 = field(4)
        negative: i32 = field(5)
        zigzag: sint64 = field(6)
        flag: bool = field(7)

    codec = codec_of(Wide)
    assert "(byte << 35)) << 28)" in codec.source  # the singular fields' tenth byte
    values = [0, 1, 127, 128, (1 << 63) - 1, 1 << 63, (1 << 64) - 1] + [1 << k for k in range(64)]
    value = Wide(unsigned=values, signed=[-1, -(1 << 63), 5, (1 << 63) - 1], one=1 << 63,
                 small=(1 << 32) - 1, negative=-5, zigzag=-(1 << 62), flag=True)
    data = value.encode()
    got = codec._decode(data, 0, len(data), 100, [1 << 40])
    assert got == value == interp.decode(Wide, data, 100, 1 << 40)

    def overlong(number: int, length: int) -> bytes:
        groups = [(number >> (7 * i)) & 127 for i in range(length)]
        return bytes(g | 128 for g in groups[:-1]) + bytes(groups[-1:])

    records = []
    for tag in (0x18, 0x20, 0x28, 0x30, 0x38):  # fields 3 to 7, as varints
        for number in (0, 1, 300, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 64) - 1):
            for length in range(max(1, (number.bit_length() + 6) // 7), 11):
                records.append(bytes([tag]) + overlong(number, length))
        records += [bytes([tag]) + b"\xff" * 9 + b"\x02", bytes([tag]) + b"\xff" * 10 + b"\x01",
                    bytes([tag]) + b"\xff" * 9]
    for bad in (b"\xff" * 9 + b"\x02", b"\xff" * 10 + b"\x01", b"\xff" * 9):
        records.append(b"\x0a" + bytes([len(bad)]) + bad)
    for record in records:
        try:
            expected = interp.decode(Wide, record, 100, 1 << 40)
        except DecodeError:
            with pytest.raises(DecodeError):
                Wide.decode(record)
            with pytest.raises(Exception) as raised:
                codec._decode(record, 0, len(record), 100, [1 << 40])
            assert not isinstance(raised.value, AssertionError)
        else:
            assert codec._decode(record, 0, len(record), 100, [1 << 40]) == expected, record
            assert Wide.decode(record) == expected


def test_a_packed_run_of_one_byte_numbers_is_read_in_one_step() -> None:
    """A packed record whose numbers are all under 128 (a byte each) becomes the list in one
    step, for every kind read as a plain varint; a record with one larger number, or of another
    encoding (zigzag, bool, enum), is read number by number. Values are the interpreter's."""
    import sys

    from savestate import i64, int32, u16, u64
    from savestate.codec import interp

    class Small(Protobuf):
        a: list[u8] = field(1)
        b: list[u16] = field(2)
        c: list[u32] = field(3)
        d: list[u64] = field(4)
        e: list[int32] = field(5)
        zigzag: list[i64] = field(6)
        flags: list[bool] = field(7)

    codec = codec_of(Small)
    assert (".isascii()" in codec.source) is not accel.ACCELERATED  # C helpers read it there

    def lines_run(data: bytes) -> int:
        """How many lines of generated code a decode of ``data`` runs."""
        count = 0

        def trace(frame, event, arg):  # type: ignore[no-untyped-def]
            nonlocal count
            if frame.f_code.co_filename == codec.filename and event == "line":
                count += 1
            return trace

        sys.settrace(trace)
        try:
            got = codec._decode(data, 0, len(data), 100, [1 << 40])
        finally:
            sys.settrace(None)
        assert got == interp.decode(Small, data, 100, 1 << 40)
        return count

    def value(n: int, top: int = 127) -> Small:
        run = [i % (top + 1) for i in range(n)]
        return Small(a=run, b=run, c=run, d=run, e=run, zigzag=[], flags=[])

    for top in (0, 1, 127):
        data = value(50, top).encode()
        assert codec._decode(data, 0, len(data), 100, [1 << 40]) == value(50, top)
    if accel.ACCELERATED:
        return
    # Lines run do not grow with the list when every number is one byte ...
    assert lines_run(value(200).encode()) == lines_run(value(2000).encode())
    # ... and do when one number is not, or for another encoding.
    wider = value(200)
    wider.d = [*wider.d, 128]
    longer = value(2000)
    longer.d = [*longer.d, 128]
    assert lines_run(longer.encode()) > lines_run(wider.encode()) + 1000
    few, many = (Small(a=[], b=[], c=[], d=[], e=[], zigzag=[1] * n, flags=[True] * n)
                 for n in (200, 2000))
    assert lines_run(many.encode()) > lines_run(few.encode()) + 1000
    data = many.encode()
    decoded = codec._decode(data, 0, len(data), 100, [1 << 40])
    assert [type(x) for x in decoded.flags] == [bool] * 2000


def test_a_made_up_enum_member_is_refused_everywhere() -> None:
    """An enum whose ``_missing_`` makes up pseudo-members: such a value is not one the plan
    can write (the bytes would not decode), and every path refuses it with the interpreter's
    error, alone, in a packed list and in a list of small messages."""
    from savestate import EncodeError
    from savestate.codec import interp

    from .open_enum import Open

    class Item(Protobuf):
        o: Open = field(1)

    class Holder(Protobuf):
        one: Open = field(1)
        many: list[Open] = field(2)
        items: list[Item] = field(3)

    good = Holder(one=Open.ONE, many=[Open.ONE], items=[Item(o=Open.ONE)])
    assert Holder.decode(good.encode()) == good
    for bad in (Holder(one=Open(7), many=[], items=[]),
                Holder(one=Open.ONE, many=[Open(7)], items=[]),
                Holder(one=Open.ONE, many=[], items=[Item(o=Open(7))])):
        with pytest.raises(EncodeError) as expected:
            interp.encode(Holder, bad, 100)
        with pytest.raises(EncodeError) as got:
            bad.encode()
        assert str(got.value) == str(expected.value)


def test_unsigned_numbers_are_range_checked_as_they_are_written() -> None:
    """An unsigned number is compared with its kind's range only when it takes two bytes or
    more (a negative one is refused by the one-byte append): singular, packed, a map's value
    and an inline element's field refuse every value out of range, and write every value in
    range as the interpreter does."""
    from savestate import EncodeError, u16, u64
    from savestate.codec import interp
    from savestate.codec.front import SIGNALS

    class Pair(Protobuf):
        small: u16 = field(1)
        wide: u64 = field(2)

    class Numbers(Protobuf):
        one: u32 = field(1)
        many: list[u32] = field(2)
        named: dict[str, u32] = field(3)
        pairs: list[Pair] = field(4)
        wide: u64 = field(5)

    codec = codec_of(Numbers)
    for name in ("one", "many_item", "named_item", "small", "wide"):
        assert f"{name} < 0" not in codec.source  # no separate comparison with zero

    def shapes(value: int, hi: int) -> list[tuple[Numbers, str]]:
        return [
            (Numbers(one=value if hi == U32 else 0, many=[], named={}, pairs=[], wide=0), "one"),
            (Numbers(one=0, many=[5, value], named={}, pairs=[], wide=0), "many"),
            (Numbers(one=0, many=[], named={"k": value}, pairs=[], wide=0), "named"),
            (Numbers(one=0, many=[], named={}, pairs=[Pair(small=1, wide=value)], wide=0),
             "pairs"),
            (Numbers(one=0, many=[], named={}, pairs=[], wide=value), "wide"),
        ]

    U32, U64 = (1 << 32) - 1, (1 << 64) - 1
    for value in (0, 1, 127, 128, 16383, 16384, U32, U32 + 1, U64, U64 + 1, -1, -127, -128,
                  -(1 << 40), -(1 << 70)):
        for obj, where in shapes(value, U32):
            hi = U64 if where in ("pairs", "wide") else U32
            buf = bytearray()
            if 0 <= value <= hi:
                codec._encode(obj, buf, 100)
                assert bytes(buf) == interp.encode(Numbers, obj) == obj.encode()
            else:
                with pytest.raises(SIGNALS):
                    codec._encode(obj, buf, 100)
                with pytest.raises(EncodeError, match=where):
                    obj.encode()


def test_the_depth_of_list_and_map_elements_is_checked_once_before_the_loop() -> None:
    """A list of inline messages and a map check their elements' depth once, before the loop,
    and only when they hold an element: at the deepest level allowed an empty one encodes,
    a full one is refused as the interpreter refuses it, and a list of strings is not a list
    of messages."""
    from savestate import EncodeError

    class Entry(Protobuf):
        x: u32 = field(1)

    class Holder(Protobuf):
        entries: list[Entry] = field(1)
        named: dict[str, u32] = field(2)
        words: list[str] = field(3)

    source = codec_of(Holder).source
    source = source[: source.index("\ndef decode_")]  # the encoder
    # The map's, and the list's unless the accelerator writes the list in one call.
    native_list = "encode_messages(" in source
    assert source.count("if depth <= 1") == (1 if native_list else 2)
    assert source.index("if depth <= 1 and named:") < source.index("for named_key, named_item")
    if not native_list:
        loop = source.index("for entries_item in entries:")
        assert source.index("if entries:") < source.rindex("if depth <= 1:", 0, loop)
    full = Holder(entries=[Entry(x=1), Entry(x=2)], named={"a": 1}, words=["w"])
    assert Holder.decode(full.encode(max_depth=2), max_depth=2) == full
    for obj in (Holder(entries=[Entry(x=1)], named={}, words=[]),
                Holder(entries=[], named={"a": 1}, words=[])):
        with pytest.raises(EncodeError, match="depth"):
            obj.encode(max_depth=1)
    words = Holder(entries=[], named={}, words=["a", "b"])
    assert Holder.decode(words.encode(max_depth=1), max_depth=1) == words
