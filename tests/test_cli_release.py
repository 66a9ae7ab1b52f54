"""The command line as users expect it: library types without -m, typed `show` values (numbers,
hex dumps), `decode -o`, a quiet end on a closed pipe (with each command's own exit status),
`--raw` as protoc prints it, and the size tree and treemap of `show --sizes` / `--svg`."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import savestate
from savestate import NoSavedState, SavedStateBlob
from savestate.cli import main
from savestate.cli.sizes import format_sizes, size_tree, treemap_svg
from savestate.state import snapshot
from savestate.state.units import SavedStateUnit, SavedStateUnits

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def vm_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vm")
    subprocess.run(
        [sys.executable, "-m", "examples.vm", "--steps", "200", "--out", str(out)],
        cwd=ROOT, env=ENV, check=True, capture_output=True, timeout=300,
    )
    return out / "vm.snapshot"


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "savestate", *args], cwd=cwd, env=ENV, capture_output=True,
        text=True, check=False, timeout=300,
    )


def test_library_types_are_known_without_module(vm_snapshot: Path) -> None:
    shown = _cli("show", str(vm_snapshot))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"SavedStateUnits \(\d+ bytes, \d+ units\)", shown.stdout), shown.stdout
    assert "unit [0] 'cpu'" in shown.stdout
    decoded = _cli("decode", str(vm_snapshot))
    assert '"name": "storage"' in decoded.stdout


def test_diff_knows_library_types_without_module(vm_snapshot: Path, tmp_path: Path) -> None:
    # The new state: the cpu unit's state replaced by a NoSavedState, the storage unit gone.
    units = snapshot.read(vm_snapshot).parse(SavedStateUnits)
    assert {"cpu", "storage"} <= {u.name for u in units.units}
    changed = SavedStateUnits(units=[
        SavedStateUnit(
            name=u.name,
            state=SavedStateBlob.new(NoSavedState()) if u.name == "cpu" else u.state,
        )
        for u in units.units
        if u.name != "storage"
    ])
    new_snapshot = tmp_path / "new.snapshot"
    snapshot.write(new_snapshot, changed)
    # The same states as a bare blob (google.protobuf.Any) and a bare container.
    old_blob, new_blob = tmp_path / "old.any", tmp_path / "new.any"
    old_blob.write_bytes(bytes(snapshot.read(vm_snapshot)))
    new_blob.write_bytes(bytes(SavedStateBlob.new(changed)))
    old_units, new_units = tmp_path / "old.units", tmp_path / "new.units"
    old_units.write_bytes(bytes(units))
    new_units.write_bytes(bytes(changed))

    cpu_url = next(u.state.type_url for u in units.units if u.name == "cpu")
    expected = [
        f'units[\'cpu\'].state.@type: "{cpu_url}" -> '
        '"type.googleapis.com/save_restore.NoSavedState"',
        # Without -m the example's own types are not known: their bytes are compared.
        "units['cpu'].state.@value: ",
        "units['storage']: {",
    ]
    for args in (
        [str(vm_snapshot), str(new_snapshot)],
        ["--type", "google.protobuf.Any", str(old_blob), str(new_blob)],
        ["--type", "state_units.SavedStateUnits", str(old_units), str(new_units)],
    ):
        done = _cli("diff", *args)
        assert done.returncode == 1, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 3, done.stdout
        assert lines[0] == expected[0]
        assert lines[1].startswith(expected[1]) and lines[1].endswith(" -> (absent)")
        assert lines[2].startswith(expected[2]) and lines[2].endswith(" -> (absent)")
    same = _cli("diff", "--type", "state_units.SavedStateUnits", str(new_units), str(new_snapshot))
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")


def test_show_prints_numbers_and_hex_dumps(vm_snapshot: Path) -> None:
    out = _cli("show", str(vm_snapshot), "-m", "examples.vm").stdout
    assert "      now: 2000000" in out  # a u64, not the JSON string "2000000"
    assert '"2000000"' not in out
    # The RTC's 256-byte CMOS memory: a dump with offsets, 16 bytes a line.
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "cmos: 256 bytes")
    dump = lines[start + 1 : start + 17]
    assert [line.split()[0] for line in dump] == [f"{16 * i:08x}" for i in range(16)]
    assert all(line.rstrip().endswith("|") for line in dump)


def test_decode_output_file(vm_snapshot: Path, tmp_path: Path) -> None:
    done = _cli("decode", str(vm_snapshot), "-o", str(tmp_path / "state.json"))
    assert done.returncode == 0 and done.stdout == ""
    assert (tmp_path / "state.json").read_text().startswith("{\n")
    raw = _cli("decode", "--raw", str(vm_snapshot), "-o", str(tmp_path / "raw.txt"))
    assert raw.returncode == 0
    assert (tmp_path / "raw.txt").read_text() == _cli("decode", "--raw", str(vm_snapshot)).stdout


def test_closed_pipe_ends_quietly(vm_snapshot: Path) -> None:
    show = subprocess.Popen(
        [sys.executable, "-m", "savestate", "show", str(vm_snapshot), "-m", "examples.vm"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert show.stdout is not None and show.stderr is not None
    show.stdout.readline()
    show.stdout.close()  # as `head -1` does
    status = show.wait(timeout=300)
    assert status == 0
    assert show.stderr.read() == b""


def _closed_stdout(*args: str, cwd: Path = ROOT) -> tuple[int, str]:
    """Run the command line with a standard output whose reader is gone before it starts (as
    `| head -1` once it has its line): (exit status, standard error)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "savestate", *args], cwd=cwd, env=ENV, stdout=write_end,
            stderr=subprocess.PIPE, text=True, check=False, timeout=300,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


_NARROWED = """
from savestate import field, savedstate, {kind}

@savedstate(package="pipe.check")
class State:
    a: {kind} = field(1)
"""


def test_a_closed_pipe_keeps_each_commands_own_status(tmp_path: Path) -> None:
    # `check` says by its status whether a change breaks: a reader gone (`| head -1` in CI)
    # must not turn a breaking result into a usage error (2), nor into a success.
    for kind in ("u32", "u8"):
        (tmp_path / f"pipe_{kind}.py").write_text(_NARROWED.format(kind=kind), encoding="utf-8")
    base = tmp_path / "base"
    assert _cli("proto", "pipe_u32.py", "-o", str(base), cwd=tmp_path).returncode == 0
    assert _closed_stdout("check", "pipe_u8.py", "--against", str(base), cwd=tmp_path) == (1, "")
    assert _closed_stdout("check", "pipe_u32.py", "--against", str(base), cwd=tmp_path) == (0, "")
    assert _closed_stdout("proto", "pipe_u8.py", "-o", str(base), "--check", cwd=tmp_path) == (
        1, f"savestate proto --check: 1 file(s) in {base} are not what the code writes: run "
        f"`savestate proto ... -o {base}` and commit the result\n")
    # Commands that write files write them all, though only the first path was wanted.
    proto = tmp_path / "proto"
    assert _closed_stdout("proto", "examples.vm", "-o", str(proto)) == (0, "")
    written = sorted(p.name for p in proto.iterdir())
    assert len(written) > 1 and written == sorted(
        Path(line).name for line in _cli("proto", "examples.vm", "-o", str(proto)).stdout.split())
    ported = tmp_path / "ported"
    assert _closed_stdout("from-proto", str(proto), "-o", str(ported)) == (0, "")
    modules = _cli("from-proto", str(proto), "-o", str(tmp_path / "again")).stdout.split()
    assert modules and all((ported / Path(m).relative_to(tmp_path / "again")).is_file()
                           for m in modules)


def test_a_closed_pipe_keeps_the_status_of_diff(vm_snapshot: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.snapshot"
    other.write_bytes(snapshot.pack(SavedStateBlob.new(NoSavedState())))
    assert _closed_stdout("diff", str(vm_snapshot), str(other)) == (1, "")
    assert _closed_stdout("diff", str(vm_snapshot), str(vm_snapshot)) == (0, "")
    assert _closed_stdout("decode", str(vm_snapshot)) == (0, "")


def test_terminal_stdin_gets_a_hint() -> None:
    import pty

    leader, follower = pty.openpty()
    done = subprocess.Popen(
        [sys.executable, "-m", "savestate", "decode", "--raw"], cwd=ROOT, env=ENV,
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    os.write(leader, b"\x04")  # Ctrl-D: the end of input on a terminal
    _out, err = done.communicate(timeout=120)
    os.close(leader)
    os.close(follower)
    assert err.decode().splitlines()[0].startswith("reading standard input (end it with Ctrl-D")


def test_encode_refuses_to_write_binary_to_a_terminal(tmp_path: Path) -> None:
    import pty

    state = tmp_path / "state.json"
    state.write_text("{}")
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "savestate", "encode", "--type", "save_restore.NoSavedState",
             str(state)], cwd=ROOT, env=ENV, stdout=follower, stderr=subprocess.PIPE,
            text=True, check=False, timeout=120,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert (done.returncode, done.stderr) == (2, "savestate encode: error: not writing binary "
                                              "to a terminal: give an output file with -o "
                                              "FILE, or redirect standard output\n")
    # Standard output redirected (here to a pipe) is written as before.
    piped = subprocess.run(
        [sys.executable, "-m", "savestate", "encode", "--snapshot", str(state), "--type",
         "save_restore.NoSavedState"], cwd=ROOT, env=ENV, capture_output=True, check=False,
        timeout=120,
    )
    assert piped.returncode == 0 and piped.stdout.startswith(snapshot.MAGIC), piped.stderr


def _protoc_decode_raw(data: bytes) -> str:
    pytest.importorskip("grpc_tools")
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "--decode_raw"], input=data,
        capture_output=True, check=True, timeout=120,
    )
    return done.stdout.decode()


def test_raw_matches_protoc_line_by_line(vm_snapshot: Path, tmp_path: Path) -> None:
    payload = snapshot.unpack(vm_snapshot.read_bytes(), str(vm_snapshot)).value
    (tmp_path / "payload.bin").write_bytes(payload)
    ours = _cli("decode", "--raw", str(tmp_path / "payload.bin")).stdout.splitlines()
    theirs = _protoc_decode_raw(payload).splitlines()
    assert len(ours) > 100
    # Every NoSavedState blob (an Any holding only its type URL) is a message, as protoc has it.
    assert any("save_restore.NoSavedState" in line for line in ours)
    for number, (mine, protoc) in enumerate(zip(ours, theirs, strict=True), 1):
        assert mine == protoc, (number, mine, protoc)


def test_size_tree_adds_up(vm_snapshot: Path) -> None:
    blob = snapshot.unpack(vm_snapshot.read_bytes(), str(vm_snapshot))
    tree = size_tree(blob.value, blob.type_url)
    assert tree.size == len(blob.value)

    def check(node: object) -> None:
        children = node.children  # type: ignore[attr-defined]
        if children:
            assert sum(c.size for c in children) <= node.size  # type: ignore[attr-defined]
            for child in children:
                check(child)

    check(tree)
    (units,) = tree.children
    assert sum(c.size for c in units.children) == units.size == tree.size
    assert {c.label.split(" ", 1)[1] for c in units.children} >= {
        "'cpu'", "'chipset'", "'com1'", "'debugcon'", "'storage'"
    }
    lines = format_sizes(tree)
    assert lines[0].split()[:2] == [str(len(blob.value)), "100.0%"]


def test_show_sizes_and_svg(vm_snapshot: Path, tmp_path: Path) -> None:
    svg = tmp_path / "sizes.svg"
    done = _cli("show", "--sizes", str(vm_snapshot), "-m", "examples.vm", "--svg", str(svg))
    assert done.returncode == 0, done.stderr
    assert "] 'storage'" in done.stdout and "%" in done.stdout
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("width") and root.get("height")
    rects = root.findall(f".//{ns}rect")
    assert len(rects) > 20
    top = rects[0]
    assert float(top.get("width", 0)) == float(root.get("width", 0))
    for rect in rects:
        assert rect.find(f"{ns}title") is not None
        x, y = float(rect.get("x", -1)), float(rect.get("y", -1))
        w, h = float(rect.get("width", -1)), float(rect.get("height", -1))
        assert x >= 0 and y >= 0 and w >= 0 and h >= 0
        assert x + w <= float(top.get("width", 0)) + 0.01
        assert y + h <= float(top.get("height", 0)) + 0.01


def test_treemap_areas_follow_the_bytes() -> None:
    from savestate.cli.sizes import SizeNode

    tree = SizeNode("all", 100, [SizeNode("a", 75), SizeNode("b", 25)])
    root = ET.fromstring(treemap_svg(tree, width=400, height=200))
    ns = "{http://www.w3.org/2000/svg}"
    _top, a, b = root.findall(f".//{ns}rect")
    assert float(a.get("width", 0)) == pytest.approx(3 * float(b.get("width", 0)))
    assert a.get("data-bytes") == "75"


def test_version_flag() -> None:
    with pytest.raises(SystemExit):
        main(["--version"])


def _version(env_update: dict[str, str], hide_extension: bool = False) -> tuple[str, str]:
    """``savestate --version`` and ``savestate.ACCELERATED`` in a fresh interpreter."""
    env = {k: v for k, v in ENV.items() if k != "SAVESTATE_PURE"}
    env.update(env_update)
    # An entry of None in sys.modules makes the import of the extension fail, as when unbuilt.
    hide = "sys.modules['savestate.codec._speedups'] = None; " if hide_extension else ""
    code = (
        f"import sys; {hide}import savestate; from savestate.cli import main\n"
        "print(savestate.ACCELERATED, flush=True)\n"
        "main(['--version'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    accelerated, version = done.stdout.splitlines()
    return accelerated, version


def test_version_says_which_codec_path_is_active() -> None:
    prefix = f"savestate {savestate.__version__} (codec: "
    built = importlib.util.find_spec("savestate.codec._speedups") is not None
    if os.environ.get("SAVESTATE_EXPECT_ACCELERATED") == "1":
        assert built, "the C accelerator was expected to be built"
    accelerated, version = _version({})
    if built:
        assert (accelerated, version) == ("True", prefix + "C accelerator)")
    else:
        assert (accelerated, version) == (
            "False", prefix + "pure Python, the C accelerator is not available)"
        )
    accelerated, version = _version({"SAVESTATE_PURE": "1"})
    assert (accelerated, version) == ("False", prefix + "pure Python, SAVESTATE_PURE=1)")
    accelerated, version = _version({}, hide_extension=True)
    assert (accelerated, version) == (
        "False", prefix + "pure Python, the C accelerator is not available)"
    )
    # The console script prints the same line.
    script = subprocess.run(
        [sys.executable, "-m", "savestate", "--version"], cwd=ROOT,
        env=dict(ENV, SAVESTATE_PURE="1"), capture_output=True, text=True, check=False,
        timeout=120,
    )
    assert script.stdout == prefix + "pure Python, SAVESTATE_PURE=1)\n", script.stderr


def test_proto_writes_only_the_modules_own_roots(tmp_path: Path) -> None:
    module = tmp_path / "uses_library.py"
    module.write_text(
        "from savestate import *  # noqa: F403\n"
        "from savestate import NoSavedState, Protobuf, StateUnits, field, savedstate, u8\n\n"
        "@savedstate\nclass Mine(Protobuf, package='uses.library'):\n    a: u8 = field(1)\n",
        encoding="utf-8",
    )
    done = _cli("proto", str(module), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["uses.library.proto"]


def test_library_proto_packages_do_not_collide_with_the_import_name() -> None:
    import savestate
    from savestate.state.units import SavedStateUnits

    files = savestate.proto_files([SavedStateUnits, savestate.NoSavedState])
    assert sorted(files) == ["save_restore.proto", "state_unit.proto", "state_units.proto"]
    assert all(not name.startswith("savestate") for name in files)
    blob = savestate.SavedStateBlob.new(SavedStateUnits())
    assert blob.type_url == "type.googleapis.com/state_units.SavedStateUnits"


def _nested_units(tmp_path: Path, levels: int, leaf: bytes = b"") -> Path:
    """A snapshot of units nested in units ``levels`` deep, each level one blob in the last."""
    blob = SavedStateBlob(type_url="type.googleapis.com/x.Leaf", value=leaf)
    for _ in range(levels):
        blob = SavedStateBlob.new(SavedStateUnits(units=[SavedStateUnit(name="u", state=blob)]))
    path = tmp_path / f"nested{levels}.snapshot"
    path.write_bytes(snapshot.pack(blob))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


@pytest.mark.parametrize("levels", [33, 34, 400])
def test_show_refuses_nesting_as_decode_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, levels: int
) -> None:
    # The snapshot's blob is one level of the limit, and each level of units three more (the
    # units, the unit, its blob): 33 levels take exactly 100, 34 go past; 400 used to end in
    # a RecursionError.
    path = str(_nested_units(tmp_path, levels))
    status, err = _run(capsys, "decode", path)
    refused = err.removeprefix("savestate decode: ")
    assert status == (0 if levels <= 33 else 1)
    if status:
        assert refused.endswith(".state: nesting deeper than the limit (max_depth), blobs "
                                "expanded\n")
    for argv in (["show"], ["show", "--sizes"], ["show", "--svg", str(tmp_path / "t.svg")]):
        shown, err = _run(capsys, *argv, path)
        assert (shown, err.removeprefix("savestate show: ")) == (
            status, refused if status else ""), argv


def test_show_sizes_splits_the_bytes_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blobs nested in blobs: every level's records come from one split of the payload, so the
    # work is in proportion to the input, not to the input times the depth.
    import savestate.cli.sizes as sizes

    split: list[int] = []
    real = sizes.decode_raw

    def counting(data: bytes, max_depth: int = 100) -> list[Any]:
        split.append(len(data))
        return real(data, max_depth)

    monkeypatch.setattr(sizes, "decode_raw", counting)
    path = _nested_units(tmp_path, 30, leaf=b"\x08\x00" * 10_000)
    status, err = _run(capsys, "show", "--sizes", str(path))
    assert status == 0, err
    assert split == [len(snapshot.read(path).value)]
