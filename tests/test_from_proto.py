"""``savestate from-proto``: declarations generated from ``.proto`` files.

- Text round trip: for savestate's own annotated output (the golden files, hypothesis schemas),
  from-proto followed by ``proto_files`` gives back the same text.
- Descriptor round trip: for files in the Rust reference writer's style
  (tests/from_proto_cases/rust, and every device of the example VM written with ``--plain``),
  the regenerated ``.proto`` compiles to the same descriptors.
- Bytes: the generated classes read and write what Google's runtime reads and writes for the
  source schema, on hypothesis values.
- The generated code is ruff-clean; constructs without a savestate form are clear errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib
import itertools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import HealthCheck, given, settings

from savestate import Oneof, Protobuf, f64, field, proto_files, savedstate, u8, u32
from savestate.cli import main
from savestate.model.registry import (
    UnknownTypeName,
    forget_roots,
    redeclaring,
    register_root,
    register_type,
    roots,
    type_by_name,
)
from savestate.schemaio import discover
from savestate.schemaio.compat import run_protoc as protoc_descriptors
from savestate.schemaio.from_proto import (
    FromProtoError,
    Generated,
    ProtoInputError,
    generate,
    write,
)

from .proto_support import check_meaning, import_generated, run_protoc
from .strategies import instances, messages

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
RUST_CASES = HERE / "from_proto_cases" / "rust"
GOLDEN_DIRS = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
# The golden files' own classes are declared first: ``ported`` puts them back in the registry
# after each import of their generated twins.
for _module in ("examples.quickstart", "examples.vm", "tests.proto_constructs",
                "tests.wire_constructs"):
    importlib.import_module(_module)
_prefixes = itertools.count()
_packages = itertools.count()


def _write(generated: Generated, out: Path) -> None:
    for name, text in generated.files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def ported(generated: Generated, out: Path) -> Iterator[dict[str, ModuleType]]:
    """Import the generated modules (by package). The registry is put back afterwards: the
    generated classes have the full names of classes other tests declare."""
    previous: dict[str, type] = {}
    for name in generated.types:
        with contextlib.suppress(UnknownTypeName):
            previous[name] = type_by_name(name)
    saved_roots = roots()
    top = next(iter(generated.modules.values())).split(".")[0]
    _write(generated, out)
    sys.path.insert(0, str(out))
    try:
        with redeclaring():
            yield {p: importlib.import_module(m) for p, m in generated.modules.items()}
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        with redeclaring():
            for cls in previous.values():
                register_type(cls)
            for cls in saved_roots:
                register_root(cls)
        forget_roots(keep=saved_roots)


def _generate(src: Path | list[Path], **kwargs: Any) -> Generated:
    return generate(src if isinstance(src, list) else [src],
                    prefix=f"ported{next(_prefixes)}", **kwargs)


def _root_classes(generated: Generated) -> list[type]:
    return [type_by_name(name) for name in generated.roots]


# ---------------------------------------------------------------------------------------------
# Text round trip


@pytest.mark.parametrize("case", GOLDEN_DIRS)
def test_golden_text_round_trip(case: str, tmp_path: Path) -> None:
    src = GOLDEN / case
    generated = _generate(src)
    with ported(generated, tmp_path):
        files = proto_files(_root_classes(generated))
    expected = {p.name: p.read_text(encoding="utf-8") for p in src.glob("*.proto")}
    # A `has default` note records that a default exists, not its value: the generated class
    # has none, and a comment over the field asks for it. Everything else comes back.
    marked = sum(text.count(HAS_DEFAULT) for text in expected.values())
    assert sum(module.count(ASK_FOR_DEFAULT) for module in generated.files.values()) == marked
    assert files == {name: strip_has_default(text) for name, text in expected.items()}


HAS_DEFAULT = "has default"
ASK_FOR_DEFAULT = "The baseline declares a default here"


def strip_has_default(text: str) -> str:
    return text.replace("; has default\n", "\n").replace(" // has default\n", "\n")


def _declare_root(message: type) -> type:
    """A root holding ``message`` (hypothesis classes have no package)."""
    n = next(_packages)
    namespace = {"__annotations__": {"m": message}, "m": field(1), "__module__": __name__}
    root = type(Protobuf)(f"Root{n}", (Protobuf,), namespace, package=f"hyp.p{n}")
    return savedstate(root)


def _text_round_trip(message: type, tmp: Any) -> dict[str, str]:
    """The ``.proto`` text of a root holding ``message``, checked to come back from from-proto."""
    saved = roots()
    root = _declare_root(message)
    try:
        source = proto_files([root])
        src = tmp.mktemp("src")
        for name, text in source.items():
            (src / name).write_text(text, encoding="utf-8")
        generated = _generate(src)
        assert generated.roots == (f"{root.__savestate__.package}.{root.__name__}",)
        with ported(generated, tmp.mktemp("out")):
            again = proto_files(_root_classes(generated))
        assert again == source
    finally:
        forget_roots(keep=saved)
    return source


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow], deadline=None)
@given(message=messages(depth=2))
def test_hypothesis_text_round_trip(message: type, tmp_path_factory: Any) -> None:
    _text_round_trip(message, tmp_path_factory)


class _Item(Protobuf):
    id: u32 = field(1)


class _Tiny(Oneof):
    pass


class _TinyUnit(_Tiny, variant=1):
    pass


@pytest.mark.parametrize(
    "annotation",
    [
        dict[u32, _Item | None],  # an entry message, not map<K, V>
        dict[u32, _Item],
        dict[str, list[u32] | None],
        list[tuple[_Item, u32]],
        tuple[list[u32]] | None,
        list[list[_Item] | None],
        dict[u32, tuple[u32] | None],
        _Tiny,
        # Each one's text differs from the one below it only by `// nullable`.
        _Tiny | None,
        tuple[_Item],
        tuple[dict[str, u32]],
        dict[str, u32] | None,
        tuple[datetime.timedelta],
        list[datetime.timedelta | None],
        dict[f64, _Item],
        dict[f64, _Item | None],
        dict[str, datetime.timedelta | None],
    ],
)
def test_nested_shapes_text_round_trip(annotation: Any, tmp_path_factory: Any) -> None:
    namespace = {"__annotations__": {"f": annotation}, "f": field(3), "__module__": __name__}
    _text_round_trip(type(Protobuf)(f"Shape{next(_packages)}", (Protobuf,), namespace),
                     tmp_path_factory)


class _Byte(Protobuf, transparent=True):
    value: u8 = field(1)


class _Count(Protobuf, transparent=True):
    value: u32 = field(1)


_NARROW_TUPLE = "  message F {\n    uint32 field1 = 1; // u8\n  }\n\n  F f = 1;\n"


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (tuple[u8], _NARROW_TUPLE),
        (tuple[_Byte], _NARROW_TUPLE),
        (tuple[_Count], "  .google.protobuf.UInt32Value f = 1;\n"),
    ],
    ids=["u8", "transparent-u8", "transparent-u32"],
)
def test_one_element_tuple_text_round_trip(
    annotation: Any, expected: str, tmp_path_factory: Any
) -> None:
    """A one-element tuple of a u8 is a nested message that says `// u8` (a
    google.protobuf.UInt32Value has no line for the width), and a transparent class is its
    inner type: from-proto reads either text back as a tuple written the same way again."""
    namespace = {"__annotations__": {"f": annotation}, "f": field(1), "__module__": __name__}
    source = _text_round_trip(
        type(Protobuf)(f"Single{next(_packages)}", (Protobuf,), namespace), tmp_path_factory
    )
    assert expected in "".join(source.values())


# ---------------------------------------------------------------------------------------------
# Descriptor round trip


def _descriptors(directory: Path) -> dict[str, Any]:
    """Every message and enum of the files in ``directory``: names, numbers, types, labels,
    oneofs, map entries (order-free)."""
    files = sorted(directory.glob("*.proto"))
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(protoc_descriptors([directory], files, what="test input"))
    out: dict[str, Any] = {}

    def walk(md: Any, scope: str) -> None:
        full = f"{scope}.{md.name}"
        real = [o.name for i, o in enumerate(md.oneof_decl)
                if any(f.HasField("oneof_index") and f.oneof_index == i and not f.proto3_optional
                       for f in md.field)]
        out[full] = {
            "fields": sorted(
                (f.name, f.number, f.type, f.type_name, f.label, f.proto3_optional,
                 md.oneof_decl[f.oneof_index].name
                 if f.HasField("oneof_index") and not f.proto3_optional else None)
                for f in md.field
            ),
            "oneofs": sorted(real),
            "map_entry": md.options.map_entry,
            "nested": sorted(n.name for n in md.nested_type),
        }
        for n in md.nested_type:
            walk(n, full)

    for fd in fds.file:
        if fd.name.startswith("google/"):
            continue
        for md in fd.message_type:
            walk(md, fd.package)
        for ed in fd.enum_type:
            out[f"{fd.package}.{ed.name}"] = sorted((v.name, v.number) for v in ed.value)
    return out


def _regenerate_plain(src: Path, out: Path) -> Path:
    generated = _generate(src)
    again = out / "again"
    again.mkdir()
    with ported(generated, out / "py"):
        for name, text in proto_files(_root_classes(generated), annotate=False).items():
            (again / name).write_text(text, encoding="utf-8")
    return again


def test_rust_style_descriptor_round_trip(tmp_path: Path) -> None:
    again = _regenerate_plain(RUST_CASES, tmp_path)
    assert _descriptors(again) == _descriptors(RUST_CASES)


def test_example_vm_devices_descriptor_round_trip(tmp_path: Path) -> None:
    """Every device of the example VM, as the Rust reference writer describes it."""
    vm = importlib.import_module("examples.vm")
    src = tmp_path / "plain"
    src.mkdir()
    vm_roots = discover.load_roots([vm.__name__])
    for name, text in proto_files(vm_roots, annotate=False).items():
        (src / name).write_text(text, encoding="utf-8")
    again = _regenerate_plain(src, tmp_path)
    assert _descriptors(again) == _descriptors(src)


def test_rust_style_shapes(tmp_path: Path) -> None:
    """What the Rust writer's file turns into, read as a person reviewing it would."""
    generated = _generate(RUST_CASES)
    text = next(t for p, t in generated.files.items() if p.endswith("mesh/examples.py"))
    for line in [
        "class Unit(Choice, variant=1):",
        "class Pair(Choice, variant=2, tuple=True):",
        "class Named(Choice, variant=3):",
        "    opt_vec: list[u32] | None = field(9)",
        "    vec_opt: list[u32 | None] = field(10)",
        "    triple: tuple[u32, str, bool] | None = field(11)",
        "    vec_pair: list[tuple[str, u32]] = field(12)",
        "    opt_arr: bytes | None = field(13)",
        "    time: timedelta = field(7)",
        "    choice: Choice | None = field(8)",
        "    items: list[Item] | None = field(17)",
        "    counters: dict[str, u64] = field(18)",
        "    # five: u8 or u16 would write the same bytes",
        "    # regs: a fixed-length array in the source (packed repr only): declare it with "
        "length=N",
        '    data: bytes = field(2, doc="its payload")',
    ]:
        assert line in text.splitlines() or line in generated.files[
            next(p for p in generated.files if p.endswith("mesh/common.py"))].splitlines(), line
    assert f"from {generated.modules['mesh.common']} import Item" in text
    assert generated.roots == ("mesh.examples.Everything", "rust.pit.SavedState")


def test_reference_vectors(tmp_path: Path) -> None:
    """The public test vectors of the reference's own tests, on the generated classes."""
    generated = _generate(RUST_CASES)
    with ported(generated, tmp_path) as modules:
        ex = modules["mesh.examples"]
        empty = ex.Everything.decode(b"")

        def hex_of(**changes: Any) -> str:
            return bytes(dataclasses.replace(empty, **changes)).hex()

        assert hex_of(five=5) == "0805"
        assert hex_of(flag=True) == "1001"
        assert hex_of(text="hi") == "1a026869"
        assert hex_of(tuple=(1, 2)) == "220408021004"  # (1i32, 2i32), zigzag
        assert hex_of(maybe=0) == "2800"  # Some(0) is written
        assert hex_of(maybe=5) == "280a"
        assert hex_of(list=[1, 2, 3]) == "3203020406"  # packed, zigzag
        assert hex_of(time=datetime.timedelta(seconds=1, microseconds=10)) == "3a05080110904e"
        # The enum: unit variant 1, tuple variant 2 holding (6, "hi"), struct variant 3 empty.
        assert hex_of(choice=ex.Unit()) == "42020a00"
        assert hex_of(choice=ex.Pair(field1=6, field2="hi")) == "4208" + "1206080c12026869"
        assert hex_of(choice=ex.Named(a=0, b="")) == "42021a00"
        assert hex_of(opt_vec=[]) == "4a00"  # Some(vec![]) is an empty wrapper record
        assert hex_of(vec_opt=[0, None]) == "52020800" + "5200"


# ---------------------------------------------------------------------------------------------
# Bytes, against Google's runtime


def _bytes_case(src: Path, tmp_path: Path, examples: int) -> None:
    status, messages_ = run_protoc(src, tmp_path / "pb")
    assert status == 0, messages_
    import_generated(tmp_path / "pb", sorted(p.name for p in src.glob("*.proto")))
    generated = _generate(src)
    with ported(generated, tmp_path / "py"):
        for root in _root_classes(generated):
            _meaning_checker(root, examples)()


def _meaning_checker(root: type, examples: int) -> Any:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(value=instances(root))
    def check(value: Any) -> None:
        check_meaning(root, value)

    return check


@pytest.mark.parametrize("case", ["tests.proto_constructs", "tests.wire_constructs",
                                  "examples.vm"])
def test_golden_bytes_match_google(case: str, tmp_path: Path) -> None:
    _bytes_case(GOLDEN / case, tmp_path, 15)


def test_rust_style_bytes_match_google(tmp_path: Path) -> None:
    _bytes_case(RUST_CASES, tmp_path, 30)


# ---------------------------------------------------------------------------------------------
# The output: ruff-clean, a package tree, the command line


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff")
                    .exists(), reason="ruff is not installed")
@pytest.mark.parametrize("case", [*GOLDEN_DIRS, "rust"])
def test_output_is_ruff_clean(case: str, tmp_path: Path) -> None:
    src = RUST_CASES if case == "rust" else GOLDEN / case
    write([src], tmp_path)
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff) if ruff.exists() else "ruff", "check", "--isolated", "--line-length", "100",
         "--target-version", "py310", "--select", "E,F,W,I,B,UP,SIM,RUF", "."],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_tree(tmp_path: Path) -> None:
    paths = write([GOLDEN / "examples.vm"], tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert "storage/scsi/common.py" in names
    assert "examples/vm/chipset.py" in names
    assert (tmp_path / "storage" / "__init__.py").exists()
    assert (tmp_path / "storage" / "scsi" / "__init__.py").exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["from-proto", str(RUST_CASES), "-o", str(out), "--root",
                 "mesh.examples.Everything"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(out / "mesh" / "examples.py") in printed
    text = (out / "rust" / "pit.py").read_text(encoding="utf-8")
    assert "@savedstate" not in text  # only the named root
    assert "@savedstate\nclass Everything(" in (out / "mesh" / "examples.py").read_text()
    assert main(["from-proto", str(tmp_path / "missing"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["from-proto", str(RUST_CASES), "-o", str(out), "--root", "mesh.Nope"]) == 1
    assert "mesh.Nope" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["from-proto", str(RUST_CASES), "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"savestate from-proto: error: {blocker}"), err
    assert err.count("\n") == 1


def test_include_paths(tmp_path: Path) -> None:
    """An input file importing another found on an -I path: both packages get a module."""
    generated = generate([RUST_CASES / "mesh.examples.proto"], includes=[RUST_CASES])
    assert set(generated.modules) == {"mesh.examples", "mesh.common"}


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "message", "path"),
    [
        ('syntax = "proto2"; package e; message A { required int32 x = 1; }',
         "`required`", "A.x"),
        ('syntax = "proto2"; package e; message A { optional group G = 1 { optional int32 y = 2;'
         " } }", "groups", "A.g"),
        ('syntax = "proto2"; package e; message A { extensions 100 to 199; }',
         "extensions", "A"),
        ('syntax = "proto2"; package e; message A { optional int32 x = 1 [default = 5]; }',
         "default (5)", "A.x"),
        ('edition = "2023"; package e; message A { int32 x = 1; }', "editions", ""),
        ('syntax = "proto3"; package e; message A { int32 x = 1; oneof k { int32 y = 2; } }',
         "oneof k beside other fields", "A.k"),
        ('syntax = "proto3"; package e; import "google/protobuf/timestamp.proto";'
         " message A { google.protobuf.Timestamp t = 1; }", "google.protobuf.Timestamp", "A.t"),
        ('syntax = "proto3"; package e; message A { int32 from = 1; }', "not a Python name",
         "A.from"),
    ],
)
def test_no_savestate_form(tmp_path: Path, text: str, message: str, path: str) -> None:
    (tmp_path / "e.proto").write_text(text, encoding="utf-8")
    with pytest.raises(FromProtoError) as info:
        generate([tmp_path])
    assert message in str(info.value)
    assert info.value.path_text == path
    assert not isinstance(info.value, ProtoInputError)


@pytest.mark.parametrize("note", ["length \u00b2", "default " + "[" * 100_000])
def test_unreadable_note(tmp_path: Path, note: str) -> None:
    (tmp_path / "e.proto").write_text(
        '// savestate: widths and lengths in trailing comments.\nsyntax = "proto3"; package e;'
        f" message A {{ bytes y = 2; // {note}\n}}",
        encoding="utf-8",
    )
    with pytest.raises(FromProtoError) as info:
        generate([tmp_path])
    assert info.value.path_text == "A.y"


@pytest.mark.parametrize(
    ("field_text", "message"),
    [
        ("bytes y = 2; // length 0", "needs length >= 1"),
        ("repeated uint32 y = 2; // length 0", "needs length >= 1"),
        ("uint32 y = 2; // length 4", "must be bytes, repeated or a wrapper message"),
        ("string y = 2; // length 4", "must be bytes, repeated or a wrapper message"),
    ],
)
def test_length_note_a_declaration_refuses(tmp_path: Path, field_text: str, message: str) -> None:
    # Refused when generating, as the declaration would be: else the module does not import.
    (tmp_path / "e.proto").write_text(
        '// savestate: widths and lengths in trailing comments.\nsyntax = "proto3"; package e;'
        f" message A {{ {field_text}\n}}",
        encoding="utf-8",
    )
    with pytest.raises(FromProtoError, match=message) as info:
        generate([tmp_path])
    assert info.value.path_text == "A.y"


_DEFAULT_FIELD = (
    '// savestate: widths and lengths in trailing comments.\nsyntax = "proto3"; package {pkg};'
    " message A {{ optional {proto} y = 1; // {note}\n}}"
)


@pytest.mark.parametrize(
    ("proto", "note", "message"),
    [
        ("uint32", "u8; default 300", "out of range for u8"),
        ("sint32", "default -2147483649", "out of range for i32"),
        ("string", "default true", "does not fit"),
        ("bool", "default 1", "does not fit"),
        ("uint64", "default 1.5", "does not fit"),
        ("bytes", 'default "not base64!"', "not base64"),
        # a lone surrogate, which no UTF-8 file (nor the wire) can hold
        ("string", 'default "a\\ud800"', r"not UTF-8 text \(surrogates not allowed\)"),
    ],
)
def test_default_that_does_not_fit(tmp_path: Path, proto: str, note: str, message: str) -> None:
    (tmp_path / "e.proto").write_text(
        _DEFAULT_FIELD.format(pkg="e", proto=proto, note=note), encoding="utf-8"
    )
    with pytest.raises(FromProtoError, match=message) as info:
        generate([tmp_path])
    assert info.value.path_text == "A.y"


@pytest.mark.parametrize(
    ("proto", "note", "expected"),
    [
        ("uint32", "u8; default 255", 255),
        ("double", "default NaN", "nan"),
        ("float", "default -Infinity", float("-inf")),
        ("double", "default 5", 5.0),
    ],
)
def test_default_that_fits_imports(
    tmp_path: Path, proto: str, note: str, expected: Any
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pkg = f"defaults{next(_packages)}"
    (src / "e.proto").write_text(
        _DEFAULT_FIELD.format(pkg=pkg, proto=proto, note=note), encoding="utf-8"
    )
    generated = _generate(src)
    with ported(generated, tmp_path / "out") as modules:
        value = modules[pkg].A().y
    assert repr(value) == expected if isinstance(expected, str) else value == expected


def test_proto2_zero_default_and_optional(tmp_path: Path) -> None:
    (tmp_path / "e.proto").write_text(
        'syntax = "proto2"; package e2; message A { optional int32 x = 1 [default = 0]; '
        "repeated uint32 r = 2; }",
        encoding="utf-8",
    )
    text = generate([tmp_path]).files["e2.py"]
    assert "    x: int32 | None = field(1)" in text
    assert "# r: written packed (readers accept both forms)" in text


def test_unparsable_input(tmp_path: Path) -> None:
    (tmp_path / "bad.proto").write_text('syntax = "proto3"; message {', encoding="utf-8")
    with pytest.raises(ProtoInputError, match="cannot parse"):
        generate([tmp_path])


def test_hand_written_nesting(tmp_path: Path) -> None:
    """Nested ordinary messages and enums become top-level classes; bytes are unchanged."""
    (tmp_path / "h.proto").write_text(
        'syntax = "proto3"; package hand.nest;\n'
        "message Outer {\n"
        "  enum Kind { KIND_A = 0; KIND_B = 1; }\n"
        "  message Inner { int32 v = 1; }\n"
        "  Inner a = 1; Inner b = 2; Kind kind = 3;\n"
        "}\n",
        encoding="utf-8",
    )
    generated = _generate(tmp_path)
    text = generated.files[f"{generated.modules['hand.nest'].replace('.', '/')}.py"]
    assert "class OuterInner(Protobuf, package=PACKAGE, name=\"OuterInner\"):" in text
    assert "class OuterKind(IntEnum):" in text
    assert "    a: OuterInner | None = field(1)" in text
    _bytes_case(tmp_path, tmp_path / "b", 20)


def test_a_reserved_range_to_max_comes_back_as_a_range(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "wide.proto").write_text(
        'syntax = "proto3";\npackage wide;\n'
        "message State {\n  uint32 a = 1;\n  reserved 2, 1000 to max;\n}\n",
        encoding="utf-8",
    )
    generated = _generate(src)
    source = "".join(generated.files.values())
    assert "reserved=(2, range(1000, 536870912))" in source
    with ported(generated, tmp_path):
        (state,) = _root_classes(generated)
        assert state.__savestate__.reserved == (range(2, 3), range(1000, 1 << 29))


def test_messages_named_like_the_builtins_the_code_uses(tmp_path: Path) -> None:
    # The generated module writes list[...], dict[...], reserved=(range(...),) and
    # float("nan"): classes by those names must not stand for them.
    src = tmp_path / "src"
    src.mkdir()
    (src / "names.proto").write_text(
        'syntax = "proto3";\npackage builtin.names;\n'
        "message list { uint32 x = 1; }\n"
        "message dict { uint32 y = 1; }\n"
        "message tuple { uint32 z = 1; }\n"
        "message range { uint32 w = 1; }\n"
        "message float { uint32 v = 1; }\n"
        "message State {\n"
        "  repeated list items = 1;\n"
        "  map<uint32, dict> by_id = 2;\n"
        "  tuple t = 3;\n"
        "  range r = 4;\n"
        "  .builtin.names.float f = 5;\n"
        "  optional double level = 6; // default NaN\n"
        "  reserved 10 to 20;\n"
        "}\n",
        encoding="utf-8",
    )
    generated = _generate(src)
    with ported(generated, tmp_path):
        (state,) = _root_classes(generated)
        value = state.decode(bytes.fromhex("0a0208051206080112020802"))
        assert [type(i).__name__ for i in value.items] == ["listMessage"]
        assert value.items[0].x == 5 and value.by_id[1].y == 2
        assert value.level != value.level  # NaN, the default
        assert state.__savestate__.reserved == (range(10, 21),)
