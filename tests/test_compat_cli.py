"""The checker's command line, library entry points, pytest helper, baselines and reserved=."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import savestate
from savestate import Protobuf, SchemaError, field, u8, u16, u32
from savestate.cli import main
from savestate.schemaio.compat import RULES, BaselineError, check_compatible, load_baseline
from savestate.testing import assert_compatible, redeclaring


@pytest.fixture(autouse=True)
def _two_versions() -> Iterator[None]:
    """These tests declare old and new versions of one type (``compat.State``) side by side."""
    with redeclaring():
        yield

BASELINES = Path(__file__).parent / "compat_baselines"
MODULE = """
from savestate import field, savedstate, {width}

@savedstate(package="compat")
class State:
    a: {width} = field(1, default=0)
"""


def _module(tmp_path: Path, width: str) -> str:
    path = tmp_path / f"compat_cli_{width}.py"
    path.write_text(MODULE.format(width=width), encoding="utf-8")
    return str(path)


def test_cli_clean_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", _module(tmp_path, "u16"), "--against", str(BASELINES / "u16_field")])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[-1] == "compatible (backward): 0 error(s), 0 warning(s)"


def test_cli_breaking_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", _module(tmp_path, "u8"), "--against", str(BASELINES / "u16_field")])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[0] == (  # the baseline file and line first, as a compiler reports
        f"{BASELINES / 'u16_field' / 'compat.proto'}:8: "
        "error  compat.State.a (1): type uint32 (u16) -> uint32 (u8) [FIELD_INTEGER_NARROWED] "
        "old values over 255 fail to decode (u16 holds up to 65535)"
    )
    assert out[-1] == "breaking (backward): 1 error(s), 0 warning(s)"


def test_cli_forward_findings_are_warnings_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _module(tmp_path, "u16")
    against = str(BASELINES / "u8_field")
    assert main(["check", module, "--against", against]) == 0
    assert capsys.readouterr().out.startswith(
        f"{BASELINES / 'u8_field' / 'compat.proto'}:8: warning  compat.State.a (1): "
    )
    assert main(["check", module, "--against", against, "--direction", "both"]) == 1
    assert "[FIELD_INTEGER_WIDENED]" in capsys.readouterr().out
    assert main(["check", module, "--against", against, "--direction", "forward"]) == 1


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["check", _module(tmp_path, "u8"), "--against", str(BASELINES / "u16_field"),
         "--format", "json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert status == 1
    assert data["version"] == 1
    assert data["compatible"] is False
    assert data["json"] is False
    assert data["errors"] == 1
    assert data["direction"] == "backward"
    assert data["warnings"] == 0
    assert len(data["notes"]) == 1  # written by hand: no roots marked
    (finding,) = data["findings"]
    assert finding == {
        "level": "error",
        "rule": "FIELD_INTEGER_NARROWED",
        "category": "wire",
        "direction": "backward",
        "path": "compat.State.a",
        "number": 1,
        "change": "type uint32 (u16) -> uint32 (u8)",
        "reason": "old values over 255 fail to decode (u16 holds up to 65535)",
        "file": str(BASELINES / "u16_field" / "compat.proto"),
        "line": 8,
    }


def test_cli_missing_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", _module(tmp_path, "u8"), "--against", str(tmp_path / "nowhere")])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_unparsable_baseline_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["check", _module(tmp_path, "u8"), "--against", str(BASELINES / "bad_syntax")])
    err = capsys.readouterr().err
    assert status == 2
    assert "compat.proto:8:3:" in err  # the line after the missing ';'
    assert str(BASELINES) + "/" not in err.split("\n", 1)[1]


def test_cli_empty_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["check", _module(tmp_path, "u8"), "--against", str(tmp_path / "empty")]) == 2
    assert "no .proto files" in capsys.readouterr().err


_HOSTILE_NOTE = """// savestate: widths and lengths in trailing comments.
syntax = "proto3";
package compat;
message State {{
  {field} // {note}
}}
"""


@pytest.mark.parametrize(
    ("field", "note", "message"),
    [
        ("bytes a = 1;", "length \u00b2", "length"),  # a digit to isdigit(), not to int()
        ("bytes a = 1;", "length " + "9" * 5000, "length"),
        ("uint32 a = 1;", "default " + "[" * 100_000, "nested too deep"),
    ],
    ids=["superscript", "huge", "deep"],
)
def test_cli_hostile_note_is_a_baseline_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, note: str, message: str
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "compat.proto").write_text(_HOSTILE_NOTE.format(field=field, note=note), "utf-8")
    status = main(["check", _module(tmp_path, "u8"), "--against", str(base)])
    err = capsys.readouterr().err
    assert status == 2
    assert "compat.proto:5:" in err and message in err
    with pytest.raises(BaselineError, match=message):
        load_baseline(base)


def test_library_and_pytest_helper() -> None:
    class State(Protobuf, package="compat"):
        a: u8 = field(1, default=0)

    report = savestate.check_compatible([State], against=BASELINES / "u16_field")
    assert not report.ok
    assert report.rule_ids == {"FIELD_INTEGER_NARROWED"}
    with pytest.raises(AssertionError, match=r"\[FIELD_INTEGER_NARROWED\]"):
        assert_compatible(State, against=BASELINES / "u16_field")
    ok = assert_compatible(State, against=BASELINES / "u8_field", direction="both")
    assert ok.findings == ()
    with pytest.raises(ValueError, match="direction"):
        check_compatible(State, against=BASELINES / "u8_field", direction="sideways")
    with pytest.raises(BaselineError, match="cannot parse"):
        check_compatible(State, against=BASELINES / "bad_syntax")


def test_baseline_parse_is_cached() -> None:
    first = load_baseline(BASELINES / "stage")
    assert load_baseline(BASELINES / "stage") is first


def test_rule_table_is_complete() -> None:
    for rule in RULES.values():
        assert rule.direction in ("backward", "forward", "both")
        assert rule.level in ("error", "warning")
        assert rule.id == rule.id.upper()


def test_examples_against_their_emitted_baselines(tmp_path: Path) -> None:
    """Every example checked against itself (plain and annotated): nothing to report."""
    from savestate.schemaio.discover import load_roots

    for case in ("examples.vm", "tests.proto_constructs"):
        roots = load_roots([case])
        for annotate in (False, True):
            out = tmp_path / f"{case}-{annotate}"
            savestate.write_proto(out, roots, annotate=annotate)
            report = check_compatible(roots, against=out, direction="both")
            assert report.findings == (), report.text()
            assert bool(report.notes) is not annotate


def test_rust_style_baseline_skips_widths() -> None:
    """A plain `uint32` may be a Rust u8, u16 or u32: no width rule fires against it."""

    class State(Protobuf, package="compat"):
        a: u8 = field(1, default=0)

    report = check_compatible(State, against=BASELINES / "one_u32", direction="both")
    assert report.findings == ()
    assert report.notes and "without savestate annotations" in report.notes[0]


# -- annotated emitter output


def test_annotated_output() -> None:
    class Regs(Protobuf, package="compat.annotated"):
        small: u8 = field(1, default=0)
        medium: u16 | None = field(2, default=None)
        wide: u32 = field(3, default=0)
        table: list[u16] = field(4, length=3, default_factory=lambda: [0, 0, 0])
        raw: bytes = field(5, length=2, default=b"\0\0")
        by_key: dict[u8, u16] = field(6, default_factory=dict)

    text = savestate.proto_files([Regs], annotate=True)["compat.annotated.proto"]
    assert text.startswith(
        "// Autogenerated, do not edit.\n// savestate: widths and lengths in trailing comments."
        "\n\nsyntax"
    )
    assert "  uint32 small = 1; // u8\n" in text
    assert "  optional uint32 medium = 2; // u16\n" in text
    assert "  uint32 wide = 3;\n" in text
    assert "  repeated uint32 table = 4; // packed repr only; length 3; u16; has default\n" in text
    assert "  bytes raw = 5; // length 2; has default\n" in text
    assert "  map<uint32, uint32> by_key = 6; // key u8; value u16\n" in text
    plain = savestate.proto_files([Regs], annotate=False)["compat.annotated.proto"]
    assert "// u8" not in plain and "savestate:" not in plain


# -- reserved=


def test_reserved_numbers_cannot_be_reused() -> None:
    with pytest.raises(SchemaError, match="field number 3 is reserved"):

        class Bad(Protobuf, package="compat", reserved=(3, range(7, 9))):
            a: u32 = field(3, default=0)

    with pytest.raises(SchemaError, match="field number 8 is reserved"):

        class AlsoBad(Protobuf, package="compat", reserved=(3, range(7, 9))):
            a: u32 = field(8, default=0)

    class Good(Protobuf, package="compat", reserved=(3, range(7, 10))):
        a: u32 = field(1, default=0)

    text = savestate.proto_files([Good])["compat.proto"]
    assert "  reserved 3, 7 to 9;\n" in text
