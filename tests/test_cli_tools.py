"""The decode, encode, show and diff commands, and the schema-less raw decoder."""

from __future__ import annotations

import contextlib
import json
import random
import warnings
from pathlib import Path

import pytest

from savestate import DecodeError, SavedStateBlob, snapshot
from savestate.cli import main
from savestate.codec.raw import decode_raw, format_raw
from savestate.state.units import SavedStateUnit, SavedStateUnits

from . import proto_constructs as pc

MOD = "tests.proto_constructs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    root = pc.OtherRoot(where=pc.Point(x=1, y=-2), level=pc.Level.low)
    units = SavedStateUnits(units=[
        SavedStateUnit(name="a", state=SavedStateBlob.new(root)),
        SavedStateUnit(name="b", state=SavedStateBlob(type_url="type.googleapis.com/x.Y",
                                                     value=b"\x08\x07")),
    ])
    path = tmp_path / "s.snapshot"
    snapshot.write(path, units)
    return path


def test_decode_encode_snapshot_round_trip(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    status, out, _ = run(capsys, "decode", str(snap), "--module", MOD)
    assert status == 0
    data = json.loads(out)
    assert data["units"][0]["state"]["where"] == {"x": 1, "y": -2}
    assert data["units"][1]["state"] == {"@type": "type.googleapis.com/x.Y", "@value": "CAc="}
    (tmp_path / "s.json").write_text(out)
    again = tmp_path / "again.snapshot"
    assert run(capsys, "encode", "--snapshot", str(tmp_path / "s.json"), "-o", str(again),
               "-m", MOD)[0] == 0
    assert again.read_bytes() == snap.read_bytes()


def test_encode_snapshot_of_a_state_of_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # With --type, the JSON may be a state of that type (as decode --type prints a snapshot's)
    # or the blob decode prints; either way a snapshot of that state is written.
    root = pc.OtherRoot(where=pc.Point(x=3, y=4), level=pc.Level.low)
    snap = tmp_path / "s.snapshot"
    snap.write_bytes(snapshot.pack(SavedStateBlob.new(root)))
    kind = "constructs.other.OtherRoot"
    for typed in (["--type", kind], []):
        status, out, err = run(capsys, "decode", str(snap), "-m", MOD, *typed)
        assert status == 0, err
        (tmp_path / "s.json").write_text(out)
        again = tmp_path / "again.snapshot"
        status, _, err = run(capsys, "encode", "--snapshot", "--type", kind, "-m", MOD,
                             str(tmp_path / "s.json"), "-o", str(again))
        assert status == 0, err
        assert again.read_bytes() == snap.read_bytes()
    # A blob of another type is not a state of --type.
    (tmp_path / "other.json").write_text('{"@type": "type.googleapis.com/x.Y", "@value": "CAc="}')
    status, _, err = run(capsys, "encode", "--snapshot", "--type", kind, "-m", MOD,
                         str(tmp_path / "other.json"), "-o", str(tmp_path / "no.snapshot"))
    assert status == 1 and "expected type.googleapis.com/constructs.other.OtherRoot" in err
    assert not (tmp_path / "no.snapshot").exists()


def test_encode_snapshot_of_a_state_without_type_asks_for_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # JSON that is a state (as decode --type prints it), not a blob with its "@type"
    state = tmp_path / "state.json"
    state.write_text('{"where": {"x": 1}}')
    status, out, err = run(capsys, "encode", "--snapshot", str(state), "-o",
                           str(tmp_path / "s.snapshot"))
    assert (status, out) == (1, "")
    assert err == (f'savestate encode: error: {state}: SavedStateBlob: a blob needs "@type" '
                   "(its type URL), got NoneType null; for a state of a declared type, give "
                   "the type with --type PKG.NAME (and its module with -m)\n")
    assert not (tmp_path / "s.snapshot").exists()
    # which is the remedy
    assert run(capsys, "encode", "--snapshot", str(state), "-o", str(tmp_path / "s.snapshot"),
               "--type", "constructs.other.OtherRoot", "-m", MOD)[:2] == (0, "")
    # JSON that is no object gets no such hint: it is neither
    state.write_text("[1]")
    status, _, err = run(capsys, "encode", "--snapshot", str(state), "-o", str(tmp_path / "t"))
    assert status == 1 and "--type" not in err


def test_encode_snapshot_refuses_what_restore_could_not_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A unit's state given as raw bytes ("@value") that its registered type cannot decode: a
    # snapshot of it would fail every restore, so it is refused as snapshot.write refuses it.
    source = tmp_path / "bad.json"
    source.write_text(json.dumps({
        "@type": "type.googleapis.com/state_units.SavedStateUnits",
        "units": [{"name": "a", "state": {
            "@type": "type.googleapis.com/constructs.other.OtherRoot", "@value": "/w=="}}],
    }))
    out = tmp_path / "bad.snapshot"
    status, _, err = run(capsys, "encode", "--snapshot", "-m", MOD, str(source), "-o", str(out))
    assert status == 1
    assert "refusing to write a snapshot that could not be read back" in err
    assert "OtherRoot" in err
    assert not out.exists()


def test_decode_encode_typed_with_unknown_fields(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = bytes(pc.OtherRoot(where=pc.Point(x=5))) + b"\xf8\x01\x01"
    (tmp_path / "s.bin").write_bytes(data)
    status, out, _ = run(capsys, "decode", str(tmp_path / "s.bin"), "--type",
                         "constructs.other.OtherRoot", "-m", MOD, "--compact")
    assert status == 0 and "\n" not in out.strip() and "@unknown" in out
    (tmp_path / "s.json").write_text(out)
    out_path = tmp_path / "out.bin"
    assert run(capsys, "encode", str(tmp_path / "s.json"), "--type",
               "constructs.other.OtherRoot", "-m", MOD, "-o", str(out_path))[0] == 0
    assert out_path.read_bytes() == data


def test_show(capsys: pytest.CaptureFixture[str], snap: Path) -> None:
    status, out, _ = run(capsys, "show", str(snap), "-m", MOD)
    assert status == 0
    assert "format version 1" in out
    assert "state_units.SavedStateUnits" in out and "2 units" in out
    assert "unit [0] 'a': type.googleapis.com/constructs.other.OtherRoot" in out
    assert "      where:\n        x: 1\n        y: -2" in out
    assert "unit [1] 'b'" in out and "type not known here" in out and "1: 7" in out


def test_show_prints_the_unknown_fields_a_state_keeps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Fields of a newer release (or of a deleted field) are kept by the decode and written
    # back by encode, but show left them out: the tree read as if the state had none.
    where = bytes(pc.Point(x=1)) + b"\xf8\x07\x05"  # Point field 127 = 5
    value = b"\x0a" + bytes([len(where)]) + where + b"\x18\x09"  # OtherRoot field 3 = 9
    blob = SavedStateBlob(type_url=SavedStateBlob.new(pc.OtherRoot(where=pc.Point())).type_url,
                          value=value)
    path = tmp_path / "u.snapshot"
    snapshot.write(path, blob)
    status, out, _ = run(capsys, "show", str(path), "-m", MOD)
    assert status == 0
    assert out.endswith(
        "    where:\n"
        "      x: 1\n"
        "      y: 0\n"
        "      (unknown fields, 3 bytes)\n"
        "        127: 5\n"
        "    level: HIGH (2)\n"
        "    (unknown fields, 2 bytes)\n"
        "      3: 9\n"
    ), out


def test_diff(capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path) -> None:
    other = tmp_path / "o.snapshot"
    root = pc.OtherRoot(where=pc.Point(x=1, y=3), level=pc.Level.low)
    snapshot.write(other, SavedStateUnits(units=[
        SavedStateUnit(name="a", state=SavedStateBlob.new(root))]))
    status, out, _ = run(capsys, "diff", str(snap), str(other), "-m", MOD)
    assert status == 1
    assert "units['a'].state.where.y: -2 -> 3" in out
    assert "units['b']: {" in out and "-> (absent)" in out
    assert run(capsys, "diff", str(snap), str(snap), "-m", MOD)[:2] == (0, "")


def test_diff_reports_trouble_as_2_not_as_a_difference(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    # 1 means "the states differ": an input that cannot be compared is 2, as with diff(1).
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x0a\x05\x08")
    status, out, err = run(capsys, "diff", str(bad), str(bad), "--type",
                           "constructs.other.OtherRoot", "-m", MOD)
    assert (status, out) == (2, "") and "as constructs.other.OtherRoot: OtherRoot.where" in err
    status, out, err = run(capsys, "diff", str(snap), str(tmp_path), "-m", MOD)
    assert (status, out) == (2, "") and "Is a directory" in err
    broken = tmp_path / "broken.snapshot"
    broken.write_bytes(snap.read_bytes()[:-3])
    status, out, err = run(capsys, "diff", str(snap), str(broken), "-m", MOD)
    assert (status, out) == (2, "") and err.count("\n") == 1


def test_a_truncated_snapshot_is_reported_as_truncated(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    # The file's own length was taken as the payload's limit: a file cut short was "more
    # than max_size (its length)", as if --max-size had refused it.
    cut = tmp_path / "cut.snapshot"
    data = snap.read_bytes()
    cut.write_bytes(data[: snapshot.HEADER_SIZE + 4])  # the payload is longer than the file
    payload = len(data) - snapshot.HEADER_SIZE
    assert payload > snapshot.HEADER_SIZE + 4
    reason = f"{cut}: truncated: the payload is {payload} bytes, the file holds 4\n"
    for argv in (["decode", str(cut)], ["decode", "--raw", str(cut)], ["show", str(cut)],
                 ["show", "--sizes", str(cut)]):
        status, out, err = run(capsys, *argv, "-m", MOD)
        assert (status, out, err) == (1, "", f"savestate {argv[0]}: error: {reason}"), argv
    status, out, err = run(capsys, "diff", str(snap), str(cut), "-m", MOD)
    assert (status, out) == (2, "") and err.endswith(f": {reason}")


def test_a_unit_state_that_does_not_decode_is_an_error_not_its_bytes(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    # decode printed such a state as its bytes ("@value", as for a type it does not know)
    # and exited 0, and diff called it a difference (1); show, restore and encode refuse it.
    url = SavedStateBlob.new(pc.OtherRoot(where=pc.Point())).type_url
    units = SavedStateUnits(units=[
        SavedStateUnit(name="a", state=SavedStateBlob(type_url=url, value=b"\x10\x09")),
    ])
    bad = tmp_path / "bad.snapshot"
    bad.write_bytes(snapshot.pack(SavedStateBlob.new(units)))  # write() refuses it
    where = "SavedStateBlob.SavedStateUnits.units[0].state.OtherRoot.level"
    status, out, err = run(capsys, "decode", str(bad), "-m", MOD)
    assert (status, out) == (1, "")
    assert err == f"savestate decode: error: {bad}: {where}: unknown value 9 for enum Level\n"
    status, out, err = run(capsys, "diff", str(snap), str(bad), "-m", MOD)
    assert (status, out) == (2, "") and err.endswith(f"{where}: unknown value 9 for enum Level\n")
    status, _, err = run(capsys, "show", str(bad), "-m", MOD)
    assert status == 1 and "unknown value 9 for enum Level" in err


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x0a\x05\x08")
    status, out, err = run(capsys, "decode", str(bad), "--type",
                           "constructs.other.OtherRoot", "-m", MOD)
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "bad.bin: as constructs.other.OtherRoot: OtherRoot.where" in err
    status, _, err = run(capsys, "decode", str(bad), "--type", "no.Such", "-m", MOD)
    assert status == 2 and "unknown type 'no.Such'" in err
    status, _, err = run(capsys, "decode", str(bad))
    assert (status, err) == (2, f"savestate decode: error: {bad}: not a snapshot file: give its "
                                "type with --type (or use --raw)\n")
    # diff has no --raw: it is not suggested
    status, _, err = run(capsys, "diff", str(bad), str(bad))
    assert (status, err) == (2, f"savestate diff: error: {bad}: not a snapshot file: give its "
                                "type with --type\n")
    js = tmp_path / "bad.json"
    js.write_text('{"where": {"x": "a"}}')
    status, _, err = run(capsys, "encode", str(js), "--type", "constructs.other.OtherRoot",
                         "-m", MOD)
    assert status == 1 and "OtherRoot.where.x: expected an integer" in err
    with pytest.raises(DecodeError):
        main(["decode", str(bad), "--type", "constructs.other.OtherRoot", "-m", MOD, "--debug"])


@pytest.mark.parametrize("command", ["decode", "encode", "show", "diff"])
def test_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: savestate " + command in capsys.readouterr().out


def test_usage_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["diff", "only-one"])
    assert info.value.code == 2


def test_raw(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = bytes(pc.OtherRoot(where=pc.Point(x=-3, y=4))) + b"\x22\x02hi\x2d\x00\x00\x80\x3f"
    assert format_raw(decode_raw(data)) == (
        '1 {\n  1: 5\n  2: 8\n}\n2: 2\n4 {\n  13: 105\n}\n5: 0x3f800000\n'
    )
    # Quoted as protoc quotes: C escapes for tab, CR, quotes and backslash; octal otherwise.
    assert format_raw(decode_raw(b"\x0a\x0aa\tb\rc'\"\\\x00\xff")) == (
        '1: "a\\tb\\rc\\\'\\"\\\\\\000\\377"\n'
    )
    # Groups (proto2, wire types 3 and 4) are shown as messages, as protoc shows them, at the
    # top and inside a length-delimited value; an end without its start is an error.
    assert format_raw(decode_raw(bytes.fromhex("0b130818140c0a020b0c"))) == (
        "1 {\n  2 {\n    1: 24\n  }\n}\n1 {\n  1 {\n  }\n}\n"
    )
    with pytest.raises(DecodeError, match="at byte 1: field 3: end of a group that was not"):
        decode_raw(bytes.fromhex("0b1c0c"))
    with pytest.raises(DecodeError, match="at byte 1: field 1: group not ended"):
        decode_raw(b"\x0b")
    (tmp_path / "r.bin").write_bytes(data)
    status, out, _ = run(capsys, "decode", "--raw", "--json", "--compact", str(tmp_path / "r.bin"))
    assert status == 0
    assert json.loads(out)[1] == {"field": 2, "wire": "varint", "value": 2}
    # Without --raw, --json would be ignored: said at once, before anything is read.
    status, out, err = run(capsys, "decode", "--json", str(tmp_path / "missing.bin"))
    assert (status, out) == (2, "")
    assert err == "savestate decode: error: --json goes with --raw (without it, decode prints " \
                  "the state's JSON)\n"


def test_raw_never_raises_anything_else() -> None:
    rng = random.Random(8)
    for _ in range(5000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(16)))
        with contextlib.suppress(DecodeError):
            decode_raw(data)
    with pytest.raises(DecodeError, match="at byte 0: invalid field number 0"):
        decode_raw(b"\x00")
    deep = b""
    for _ in range(1000):
        deep = b"\x0a" + bytes([len(deep)]) + deep if len(deep) < 128 else b"\x0a\x00"
    decode_raw(deep)


def test_type_names_any_declared_message_not_only_roots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--type`` finds a class by its full proto name (``savestate.type_by_name``): a message
    that is not a root, under its ``name=`` (here ``TreeNode``), and by type URL."""
    node = pc.Node(label="leaf")
    (tmp_path / "n.bin").write_bytes(bytes(node))
    for name in ("constructs.other.TreeNode", "type.googleapis.com/constructs.other.TreeNode"):
        status, out, _ = run(capsys, "decode", str(tmp_path / "n.bin"), "--type", name,
                             "-m", MOD, "--compact")
        assert status == 0 and json.loads(out) == node.to_dict()
    status, _, err = run(capsys, "decode", str(tmp_path / "n.bin"), "--type",
                         "constructs.other.Node", "-m", MOD)
    assert status == 2 and "unknown type 'constructs.other.Node'" in err


def test_an_output_that_fails_part_way_leaves_the_earlier_file(tmp_path: Path) -> None:
    # A write cut off part way (here by a file size limit, as by a full disk) must leave the
    # file it was to replace as it was, and no temporary file beside it.
    resource = pytest.importorskip("resource")
    import signal
    import subprocess
    import sys

    blob = SavedStateBlob(type_url="type.googleapis.com/x.Y", value=bytes(range(256)) * 1000)
    (tmp_path / "blob.json").write_text(blob.to_json())
    out = tmp_path / "out.snapshot"
    snapshot.write(out, blob)
    before = out.read_bytes()

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    for argv in (["encode", "--snapshot", str(tmp_path / "blob.json"), "-o", str(out)],
                 ["decode", str(out), "-o", str(out)]):
        done = subprocess.run([sys.executable, "-m", "savestate", *argv], capture_output=True,
                              text=True, preexec_fn=small_files, check=False)
        assert done.returncode == 1, done.stderr
        assert done.stderr == f"savestate {argv[0]}: error: cannot write {out}: File too large\n"
        assert out.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.json", "out.snapshot"]


def test_an_output_file_keeps_its_mode_and_a_new_one_gets_the_umask(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    import os

    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(kept)
    assert run(capsys, "decode", str(snap), "-o", str(link))[0] == 0
    assert link.is_symlink() and json.loads(kept.read_text())["@type"]
    assert kept.stat().st_mode & 0o777 == 0o640
    mask = os.umask(0o027)
    try:
        assert run(capsys, "decode", str(snap), "-o", str(tmp_path / "new.json"))[0] == 0
    finally:
        os.umask(mask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640
    assert run(capsys, "decode", str(snap), "-o", os.devnull)[0] == 0  # written, not replaced
    assert Path(os.devnull).is_char_device()


def test_a_full_standard_output_is_named_not_the_input(snap: Path, tmp_path: Path) -> None:
    # Behind `> file` on a full disk, the failure is the output's: naming the input file read
    # (`s.snapshot: No space left on device`) sent the user looking at the wrong file.
    import os
    import subprocess
    import sys

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    other = tmp_path / "other.snapshot"
    snapshot.write(other, SavedStateBlob(type_url="type.googleapis.com/x.Y", value=b"\x08\x02"))
    json_path = tmp_path / "s.json"
    json_path.write_text(SavedStateBlob(type_url="type.googleapis.com/x.Y",
                                        value=b"\x08\x02").to_json())
    for argv in (["decode", str(snap)], ["decode", "--raw", str(snap)], ["show", str(snap)],
                 ["show", "--sizes", str(snap)], ["diff", str(snap), str(other)],
                 ["encode", "--snapshot", str(json_path)]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "savestate", *argv], stdout=full,
                                  stderr=subprocess.PIPE, text=True, check=False)
        # diff's 1 says "they differ": its trouble is 2, as diff(1)'s
        assert done.returncode == (2 if argv[0] == "diff" else 1), argv
        assert done.stderr == (
            f"savestate {argv[0]}: error: cannot write standard output: No space left on device\n"
        ), argv


def test_show_escapes_control_characters_of_a_type_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A type URL is bytes from the file: an escape sequence in it (here: clear the screen)
    # must reach the terminal as text, as a unit's name does.
    url = "type.googleapis.com/x.\x1b[2JY"
    units = SavedStateUnits(units=[
        SavedStateUnit(name="a\x1b[2J", state=SavedStateBlob(type_url=url, value=b"\x08\x07")),
    ])
    path = tmp_path / "c.snapshot"
    snapshot.write(path, units)
    status, out, _ = run(capsys, "show", str(path))
    assert status == 0 and "\x1b" not in out
    assert "unit [0] 'a\\x1b[2J': 'type.googleapis.com/x.\\x1b[2JY' (2 bytes)" in out
    bare = tmp_path / "b.snapshot"
    snapshot.write(bare, SavedStateBlob(type_url=url, value=b"\x08\x07"))
    for argv in (["show", str(bare)], ["show", "--sizes", str(bare)]):
        status, out, _ = run(capsys, *argv)
        assert status == 0 and "\x1b" not in out and "\\x1b[2JY" in out, argv
    # An error quoting it (the blob holds another type than the one asked for) escapes it too.
    status, _, err = run(capsys, "decode", str(bare), "--type", "constructs.other.OtherRoot",
                         "-m", MOD)
    assert status == 1 and "\x1b" not in err
    assert err.endswith("got type.googleapis.com/x.\\x1b[2JY\n"), err
    # diff: a path names the keys of a map, strings of the state.
    from savestate import Protobuf, field, u32

    class Named(Protobuf, package="cli.escapes"):
        by_name: dict[str, u32] = field(1)

    for name, key in (("a.bin", "k\x1b[2J"), ("b.bin", "k")):
        (tmp_path / name).write_bytes(bytes(Named(by_name={key: 1})))
    status, out, _ = run(capsys, "diff", str(tmp_path / "a.bin"), str(tmp_path / "b.bin"),
                         "--type", "cli.escapes.Named")
    assert status == 1 and "\x1b" not in out and "byName.k\\x1b[2J: 1 -> (absent)" in out


def test_a_closed_standard_input_is_a_one_line_error() -> None:
    import subprocess
    import sys

    for argv in (["decode", "--raw"], ["encode", "--type", "constructs.other.OtherRoot",
                                        "-m", MOD]):
        done = subprocess.run([sys.executable, "-c",
                               "import os, sys; os.close(0); sys.stdin = None; "
                               "from savestate.cli import main; sys.exit(main(sys.argv[1:]))",
                               *argv], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parent.parent)
        assert done.returncode == 1, done.stderr
        assert done.stderr == (
            f"savestate {argv[0]}: error: cannot read standard input: it is closed\n"
        )


def test_an_unwritable_output_is_named_not_the_input(
    capsys: pytest.CaptureFixture[str], snap: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    (tmp_path / "s.json").write_text("{}")
    for argv in (["decode", str(snap), "-o", str(missing / "out.json")],
                 ["show", str(snap), "--svg", str(missing / "t.svg")],
                 ["encode", str(tmp_path / "s.json"), "--type", "constructs.other.OtherRoot",
                  "-m", MOD, "-o", str(missing / "out.bin")]):
        status, _, err = run(capsys, *argv)
        assert status == 1, argv
        assert err.startswith(f"savestate {argv[0]}: error: cannot write {missing}/"), err
        assert str(snap) not in err and "s.json" not in err


def test_a_library_warning_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Python's form of a warning names a file and a source line inside savestate; the
    # command line's names the command and says only the message (which names the field).
    module = tmp_path / "cli_warned.py"
    module.write_text(
        "from savestate import field, savedstate, u32\n\n"
        "@savedstate(package='cli.warned')\nclass T:\n    pair: tuple[u32, u32] = field(1)\n",
        encoding="utf-8",
    )
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x0a\x06\x08\x01\x10\x02\x18\x05")  # the tuple holds a field 3
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as a command run by hand, whatever pytest's filters
        status, out, err = run(capsys, "decode", "--type", "cli.warned.T", "-m", str(module),
                               str(data), "--compact")
    assert (status, out) == (0, '{"pair":{"field1":1,"field2":2}}\n')
    assert err == "savestate decode: warning: T.pair: 2 bytes of unknown fields dropped: a " \
                  "tuple has nowhere to keep them\n"
