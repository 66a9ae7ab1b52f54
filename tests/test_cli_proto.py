"""The ``savestate proto`` command: writing, rewriting, and its errors (exit 2 and 1)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from savestate.cli import main
from savestate.model import registry

from .test_proto_golden import GOLDEN, golden_files

_ids = itertools.count()


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory for throw-away modules; the roots they register are forgotten after."""
    directory = tmp_path / "modules"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    saved = registry.roots()
    yield directory
    registry.forget_roots(keep=saved)


def _module(directory: Path, source: str) -> str:
    name = f"cli_proto_mod{next(_ids)}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


GOOD = """
    from savestate import field, savedstate, u8

    @savedstate(package="cli.good{n}")
    class State:
        \"\"\"A state.\"\"\"

        x: u8 = field(1)
"""


def test_writes_one_file_per_package_and_prints_it(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = next(_ids)
    name = _module(module_dir, GOOD.format(n=n))
    out = tmp_path / "out"
    assert main(["proto", name, "-o", str(out)]) == 0
    written = out / f"cli.good{n}.proto"
    assert capsys.readouterr().out == f"{written}\n"
    assert "message State {\n  uint32 x = 1; // u8\n}" in written.read_text()
    assert sorted(p.name for p in out.iterdir()) == [written.name]


def test_rewriting_gives_identical_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["proto", "examples.quickstart", "-o", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["proto", "examples.quickstart", "-o", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    expected = golden_files("examples.quickstart")
    assert {k: v.decode() for k, v in first.items()} == expected
    lines = capsys.readouterr().out.splitlines()
    assert lines == [str(out / "quickstart.pic.proto")] * 2


def test_default_directory_is_proto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["proto", "examples.quickstart"]) == 0
    assert capsys.readouterr().out == "proto/quickstart.pic.proto\n"
    assert (tmp_path / "proto" / "quickstart.pic.proto").is_file()


def test_several_modules_and_a_file_path(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = next(_ids)
    name = _module(module_dir, GOOD.format(n=n))
    out = tmp_path / "out"
    assert main(["proto", str(module_dir / f"{name}.py"), "tests.proto_constructs", "-o",
                 str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        f"cli.good{n}.proto", "constructs.main.proto", "constructs.other.proto"
    ]
    for file_name, text in golden_files("tests.proto_constructs").items():
        assert (out / file_name).read_text() == text


def test_bad_module_name_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proto", "no_such_module_anywhere", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot import no_such_module_anywhere" in err
    assert not list(tmp_path.iterdir())


def test_module_failing_on_import_is_exit_2(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(module_dir, "raise RuntimeError('boom')\n")
    assert main(["proto", name, "-o", str(tmp_path / "out")]) == 2
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_module_without_roots_is_exit_2(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(module_dir, "X = 1\n")
    assert main(["proto", name, "-o", str(tmp_path / "out")]) == 2
    assert f"{name} defines no saved-state roots" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            from savestate import field, savedstate

            @savedstate(package="cli.bad")
            class State:
                x: complex = field(1)
            """,
            "State.x: cannot encode a field of type complex",
        ),
        (
            """
            from __future__ import annotations
            from savestate import field, savedstate

            @savedstate(package="cli.badref")
            class State:
                x: Undefined = field(1)
            """,
            "State.x: cannot resolve the annotation 'Undefined': name 'Undefined' is not defined",
        ),
        (
            """
            from savestate import field, savedstate, u8

            @savedstate(package="cli.badnumber")
            class State:
                x: u8 = field(19000)
            """,
            "State.x: field number 19000 is in 19000..19999",
        ),
    ],
)
def test_schema_error_is_exit_1(
    module_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: str,
    message: str,
) -> None:
    name = _module(module_dir, source)
    assert main(["proto", name, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("savestate proto: schema error: ")
    assert message in err


def test_an_output_directory_that_cannot_be_made_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One line naming the path, not a traceback.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, blocker / "below"):
        assert main(["proto", "examples.quickstart", "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"savestate proto: error: {out}: "), err
        assert err.count("\n") == 1


def test_check_shows_a_file_that_is_not_utf8_as_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["proto", "examples.quickstart", "-o", str(out)]) == 0
    written = out / "quickstart.pic.proto"
    written.write_bytes(written.read_bytes() + b"// caf\xe9\n")  # Latin-1, as an editor saved it
    capsys.readouterr()
    assert main(["proto", "examples.quickstart", "-o", str(out), "--check"]) == 1
    captured = capsys.readouterr()
    assert "-// caf\ufffd" in captured.out
    assert "are not what the code writes" in captured.err


def test_check_corpus_that_is_a_file_is_exit_2(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(module_dir, GOOD.format(n=next(_ids)))
    base = tmp_path / "base"
    assert main(["proto", name, "-o", str(base)]) == 0
    state = tmp_path / "state.snapshot"  # a file of the corpus, not its directory
    state.write_bytes(b"")
    capsys.readouterr()
    assert main(["check", name, "--against", str(base), "--corpus", str(state)]) == 2
    assert capsys.readouterr().err == (
        f"savestate check: error: corpus {state} is not a directory (give the directory that "
        "holds the snapshot files and state blobs)\n")
    assert main(["check", name, "--against", str(base), "--corpus", str(tmp_path / "no")]) == 2
    assert "does not exist" in capsys.readouterr().err


_WIDE = """
    from savestate import field, savedstate, {kind}

    @savedstate(package="cli.gitdir")
    class State:
        x: {kind} = field(1)
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_baseline_directory_is_read_as_git_show_reads_it(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # module_dir: the class `check` declares is forgotten after
    # git show REF:DIR reads DIR from the root of the repository, REF:./DIR and REF:../DIR
    # from the current directory: git:REF:DIR reads the same files, from a subdirectory too.
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    modules = {}
    for kind in ("u32", "u8"):
        modules[kind] = tmp_path / f"cli_gitdir_{kind}.py"
        modules[kind].write_text(textwrap.dedent(_WIDE.format(kind=kind)), encoding="utf-8")
    new = str(modules["u8"])
    # Each baseline by a process of its own: one process cannot declare both classes.
    for kind, baseline in (("u32", repo / "proto"), ("u8", repo / "sub" / "proto")):
        subprocess.run(
            [sys.executable, "-m", "savestate", "proto", str(modules[kind]), "-o", str(baseline)],
            cwd=Path(__file__).resolve().parent.parent, check=True, capture_output=True,
        )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "release 1"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    monkeypatch.chdir(repo / "sub")
    capsys.readouterr()
    for against, status, file in [
        ("git:HEAD:proto", 1, "proto/cli.gitdir.proto"),
        ("git:HEAD:../proto", 1, "proto/cli.gitdir.proto"),
        ("git:HEAD:./proto", 0, None),
        ("git:HEAD:sub/proto", 0, None),
    ]:
        assert main(["check", new, "--against", against, "--format", "json"]) == status, against
        findings = json.loads(capsys.readouterr().out)["findings"]
        assert [f["file"] for f in findings] == ([file] if file else []), against
    assert main(["check", new, "--against", "git:HEAD:../.."]) == 2
    assert capsys.readouterr().err == (
        "savestate check: error: baseline git:HEAD:../..: ../.. is outside the repository\n")


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["proto"])
    assert exc.value.code == 2


def test_python_dash_m(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "savestate", "proto", "examples.quickstart", "-o", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'quickstart.pic.proto'}\n"
    expected = (GOLDEN / "examples.quickstart" / "quickstart.pic.proto").read_text()
    assert (tmp_path / "quickstart.pic.proto").read_text() == expected
