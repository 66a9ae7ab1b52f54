"""The code cache (savestate.codec.cache) and the warm-up call: compiled codecs and generated
``__init__`` methods come back from disk only for the very plans and sources they were made
from, with the objects of the classes asking, and the cache is never in the way."""

from __future__ import annotations

import enum
import inspect
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from savestate import DecodeError, EncodeError, Oneof, Protobuf, field, u8, u32
from savestate.codec import cache, compiler, interp
from savestate.codec.front import codec_of

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache directory for this test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def no_generation(monkeypatch: pytest.MonkeyPatch) -> list[type]:
    """Record every class whose codec is generated (not loaded from the cache)."""
    generated: list[type] = []
    real = compiler.generate

    def spy(cls: type) -> Any:
        generated.append(cls)
        return real(cls)

    monkeypatch.setattr(compiler, "generate", spy)
    return generated


class Colour(enum.IntEnum):
    RED = 0
    GREEN = 1


def _declare(width: Any = u32) -> type:
    """A class of one shape, declared anew on each call (the same qualified name each time)."""

    class Shape(Protobuf):
        count: width = field(1)  # type: ignore[valid-type]
        name: str = field(2)
        colour: Colour = field(3)
        items: list[u32] = field(4, default_factory=list)

    return Shape


def test_a_class_declared_again_reuses_its_compiled_codec(
    cache_dir: Path, no_generation: list[type]
) -> None:
    first = _declare()
    value = first(count=300, name="a", colour=Colour.GREEN, items=[1, 2, 1 << 20])
    data = bytes(value)
    assert no_generation == [first]
    assert any(p.name.startswith("codec-") for p in cache_dir.iterdir())

    second = _declare()
    again = second(count=300, name="a", colour=Colour.GREEN, items=[1, 2, 1 << 20])
    assert bytes(again) == data
    decoded = second.decode(data)
    assert no_generation == [first]  # the second came from the cache
    assert type(decoded) is second and decoded == again
    assert decoded.colour is Colour.GREEN
    # The cached codec refuses what the generated one refuses, with the same errors.
    with pytest.raises(EncodeError) as cached_error:
        bytes(second(count=-1, name="", colour=Colour.RED))
    with pytest.raises(EncodeError) as fresh_error:
        bytes(first(count=-1, name="", colour=Colour.RED))
    assert str(cached_error.value) == str(fresh_error.value)
    with pytest.raises(DecodeError) as cached_decode:
        second.decode(data[:-1])
    with pytest.raises(DecodeError) as fresh_decode:
        first.decode(data[:-1])
    assert str(cached_decode.value) == str(fresh_decode.value)


def test_a_cached_codec_shows_its_source_under_a_name_of_its_own(
    cache_dir: Path, no_generation: list[type]
) -> None:
    first, second = _declare(), _declare()
    bytes(first(count=1, name="", colour=Colour.RED))
    bytes(second(count=1, name="", colour=Colour.RED))
    assert no_generation == [first]
    a, b = codec_of(first), codec_of(second)
    assert a.filename != b.filename
    assert b._encode.__code__.co_filename == b.filename
    assert inspect.getsource(b._encode) == inspect.getsource(a._encode)


def test_a_different_plan_is_a_different_entry(
    cache_dir: Path, no_generation: list[type]
) -> None:
    narrow, wide = _declare(u8), _declare(u32)
    with pytest.raises(EncodeError):
        bytes(narrow(count=300, name="", colour=Colour.RED))
    assert wide.decode(bytes(wide(count=300, name="", colour=Colour.RED))).count == 300
    assert no_generation == [narrow, wide]


def _declare_with_local_enum() -> tuple[type, type]:
    class Mode(enum.IntEnum):
        OFF = 0
        ON = 1

    class Holder(Protobuf):
        mode: Mode = field(1)
        modes: list[Mode] = field(2, default_factory=list)

    return Holder, Mode


def test_a_cached_codec_uses_the_objects_of_the_class_that_asks(
    cache_dir: Path, no_generation: list[type]
) -> None:
    first, first_mode = _declare_with_local_enum()
    data = bytes(first(mode=first_mode.ON, modes=[first_mode.ON, first_mode.OFF]))
    second, second_mode = _declare_with_local_enum()
    decoded = second.decode(data)
    assert no_generation == [first]
    assert type(decoded) is second
    assert decoded.mode is second_mode.ON and decoded.modes == [second_mode.ON, second_mode.OFF]
    assert all(type(m) is second_mode for m in decoded.modes)
    with pytest.raises(EncodeError):  # the first class's enum is not the second's
        bytes(second(mode=first_mode.ON))


def _declare_oneof() -> tuple[type, type]:
    class Stage(Oneof):
        pass

    class Idle(Stage, variant=1):
        pass

    class Busy(Stage, variant=2):
        left: u32 = field(1)

    class Machine(Protobuf):
        stage: Stage = field(1)

    return Machine, Busy


def test_oneofs_and_nested_classes_come_back_linked(
    cache_dir: Path, no_generation: list[type]
) -> None:
    first, first_busy = _declare_oneof()
    data = bytes(first(stage=first_busy(left=7)))
    generated = list(no_generation)
    assert len(generated) == 2  # the machine and its Oneof
    second, second_busy = _declare_oneof()
    decoded = second.decode(data)
    assert no_generation == generated  # nothing generated for the second declaration
    assert type(decoded.stage) is second_busy and decoded.stage.left == 7
    assert decoded == interp.decode(second, data, 100)
    assert bytes(decoded) == data


def test_damaged_or_foreign_entries_are_misses(
    cache_dir: Path, no_generation: list[type]
) -> None:
    first = _declare()
    bytes(first(count=1, name="", colour=Colour.RED))
    entries = [p for p in cache_dir.iterdir() if p.name.startswith("codec-")]
    assert entries
    for entry in entries:  # one flipped byte in the body
        data = bytearray(entry.read_bytes())
        data[-1] ^= 0xFF
        entry.write_bytes(bytes(data))
    second = _declare()
    assert second.decode(bytes(second(count=5, name="x", colour=Colour.RED))).count == 5
    assert no_generation == [first, second]

    if hasattr(os, "geteuid"):  # an entry others may write is not loaded
        for entry in cache_dir.iterdir():
            if entry.name.startswith("codec-"):
                entry.chmod(entry.stat().st_mode | stat.S_IWOTH)
        third = _declare()
        bytes(third(count=1, name="", colour=Colour.RED))
        assert no_generation == [first, second, third]


def test_no_cache_when_the_variable_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_generation: list[type]
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, "")
    monkeypatch.chdir(tmp_path)
    assert cache.directory() is None
    first, second = _declare(), _declare()
    bytes(first(count=1, name="", colour=Colour.RED))
    bytes(second(count=1, name="", colour=Colour.RED))
    assert no_generation == [first, second]
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_directory_is_no_obstacle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))
    shape = _declare()
    assert shape.decode(bytes(shape(count=2, name="", colour=Colour.RED))).count == 2


def test_the_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert cache.directory() == os.path.join("/somewhere", "savestate")


def test_compiled_keys_on_source_and_name(cache_dir: Path) -> None:
    one = cache.compiled("x = 1\n", "<one>")
    again = cache.compiled("x = 1\n", "<one>")
    other = cache.compiled("x = 2\n", "<one>")
    renamed = cache.compiled("x = 1\n", "<two>")
    assert again.co_consts == one.co_consts and again is not one  # loaded, not the same object
    assert 2 in other.co_consts and renamed.co_filename == "<two>"


def _run(script: str, cache_folder: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, cache.CACHE_ENV: str(cache_folder), **extra_env}
    env.pop("SAVESTATE_STRICT", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, env=env,
        capture_output=True, text=True, check=True,
    )


def test_a_second_process_compiles_nothing(tmp_path: Path) -> None:
    """The example machine's second run loads every codec and __init__ from the cache: with
    compile() refused, it still saves and restores to the same bytes."""
    script = """
        import builtins, sys
        refuse = len(sys.argv) > 1
        if refuse:
            real_compile = builtins.compile
            def compile(source, filename, *args, **kwargs):
                if str(filename).startswith("<savestate"):
                    raise AssertionError(f"compiled {filename}")
                return real_compile(source, filename, *args, **kwargs)
            builtins.compile = compile
        from examples.vm.machine import Machine
        from savestate.state.units import SavedStateUnits
        machine = Machine()
        machine.run(20)
        data = bytes(machine.save())
        fresh = Machine()
        fresh.restore(SavedStateUnits.decode(data))
        assert bytes(fresh.save()) == data
        print(data.hex())
    """
    folder = tmp_path / "cache"
    first = _run(script, folder)
    assert any(p.name.startswith("codec-") for p in folder.iterdir())
    assert any(p.name.startswith("code-") for p in folder.iterdir())
    env = {**os.environ, cache.CACHE_ENV: str(folder)}
    env.pop("SAVESTATE_STRICT", None)
    second = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), "refuse"], cwd=REPO, env=env,
        capture_output=True, text=True,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    # Without the cache the same refusal fails: the check above can tell.
    third = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), "refuse"], cwd=REPO,
        env={**env, cache.CACHE_ENV: ""}, capture_output=True, text=True,
    )
    assert third.returncode != 0 and "compiled <savestate" in third.stderr


def test_a_change_to_the_generators_is_a_new_entry(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.store("codec", b"same plan", "generated by one compiler")
    cache.store("code", b"same source", "compiled by this interpreter")
    assert cache.load("codec", b"same plan") == "generated by one compiler"
    monkeypatch.setattr(cache, "_salt", b"another compiler")
    assert cache.load("codec", b"same plan") is None
    assert cache.load("code", b"same source") == "compiled by this interpreter"
    assert cache.load("code", b"another source") is None


def test_a_warm_first_save_and_restore_imports_nothing(tmp_path: Path) -> None:
    # The codec's modules are loaded with the state machinery, at start-up: a servicing VM's
    # first save (its blackout) neither imports nor compiles.
    script = """
        import sys
        import savestate.state.units
        from examples.vm.machine import Machine
        from savestate.state.units import SavedStateUnits

        machine = Machine()
        before = set(sys.modules)
        Machine().restore(SavedStateUnits.decode(bytes(machine.save())))
        print(sorted(set(sys.modules) - before))
    """
    _run(script, tmp_path / "cache")  # fills the cache
    assert _run(script, tmp_path / "cache").stdout.split() == ["[]"]


def test_warm_up_compiles_every_declared_class(tmp_path: Path) -> None:
    # In a process of its own: the test run's other modules declare classes of their own.
    out = _run("""
        import savestate
        from savestate import Oneof, Protobuf, field, u32

        class Lone(Protobuf):
            x: u32 = field(1)

        class Choice(Oneof):
            pass

        class Left(Choice, variant=1):
            pass

        class Holder(Protobuf):
            choice: Choice = field(1)

        classes = (Lone, Choice, Left, Holder)
        before = [c.__savestate__.codec is None for c in classes]
        ready = savestate.warm_up()
        after = [c.__savestate__.codec is not None for c in classes]
        print(before, ready >= len(classes), after)
    """, tmp_path / "cache")
    assert out.stdout.split() == ["[True,", "True,", "True,", "True]", "True",
                                  "[True,", "True,", "True,", "True]"]


def test_warm_up_reports_a_class_that_cannot_compile(tmp_path: Path) -> None:
    out = _run("""
        import savestate
        from savestate import Protobuf, SchemaError, field

        class Dangling(Protobuf):
            other: "NeverDeclared" = field(1)

        try:
            savestate.warm_up()
        except SchemaError as exc:
            print(exc)
    """, tmp_path / "cache")
    assert "Dangling.other: cannot resolve the annotation 'NeverDeclared'" in out.stdout


def test_the_varint_tables_are_the_same_however_they_are_made(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from savestate.codec import accel, runtime
    from savestate.codec.wire import varint_bytes

    expected = (
        [varint_bytes(i | 1 << 14)[:2] for i in range(1 << 14)],
        [varint_bytes(i) for i in range(1 << 14)],
    )
    monkeypatch.setattr(runtime, "_tables", None)
    built = runtime.varint_tables()  # built in Python, and stored
    assert built == expected
    monkeypatch.setattr(runtime, "_tables", None)
    assert runtime.varint_tables() == expected  # loaded from the cache
    assert any(p.name.startswith("tables-") for p in cache_dir.iterdir())
    if accel.speedups is not None:
        assert accel.speedups.varint_tables() == expected


def test_the_c_varint_tables_leak_nothing() -> None:
    import gc
    import tracemalloc

    from savestate.codec import accel

    if accel.speedups is None:
        pytest.skip("the C helpers are not loaded")
    make = accel.speedups.varint_tables
    make()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(30):
            tables = make()
            del tables
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 << 10  # one leaked pair of tables would be about 1.2 MB


def test_an_entry_whose_code_fails_to_run_is_a_miss(
    cache_dir: Path, no_generation: list[type], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _declare()
    bytes(first(count=1, name="", colour=Colour.RED))
    real_load = cache.load

    def broken(kind: str, made_from: bytes) -> Any:
        entry = real_load(kind, made_from)
        if kind != "codec" or entry is None:
            return entry
        source, _code, recipe, needs, names = entry
        failing = compile("raise RuntimeError('stale')\n", "<stale>", "exec")
        return source, failing, recipe, needs, names

    monkeypatch.setattr(cache, "load", broken)
    second = _declare()
    assert second.decode(bytes(second(count=3, name="", colour=Colour.RED))).count == 3
    assert no_generation == [first, second]


# -- the bound ---------------------------------------------------------------------------------

DAY = 24 * 60 * 60


def _store_aged(folder: Path, name: str, days: float, size: int = 4000) -> Path:
    """Store an entry of about ``size`` bytes, last used ``days`` ago; its file."""
    def entries() -> set[Path]:
        return {p for p in folder.iterdir() if p.name.startswith("code-")}

    before = entries() if folder.exists() else set()
    cache.store("code", name.encode(), "." * size)
    (path,) = entries() - before
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def test_prune_removes_the_least_recently_used_past_the_bound(cache_dir: Path) -> None:
    order = [_store_aged(cache_dir, f"entry {i}", days=10 - i) for i in range(10)]  # oldest first
    sizes = {p: p.stat().st_size for p in order}
    total = sum(sizes.values())
    # Foreign files, a symlink named like an entry, and temporary files: a fresh one is a
    # writer at work, an old one a writer that died.
    (cache_dir / "notes.txt").write_bytes(b"x" * 100_000)
    link = cache_dir / "code-00000000-1"
    os.symlink(order[0], link)
    fresh_tmp = cache_dir / f"{order[0].name}.123-0123abcd.tmp"
    old_tmp = cache_dir / f"{order[1].name}.456-89abcdef.tmp"
    fresh_tmp.write_bytes(b"partial")
    old_tmp.write_bytes(b"partial")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(old_tmp, (two_hours_ago, two_hours_ago))

    assert cache.prune(str(cache_dir), max_bytes=total) == 1  # within the bound: old_tmp only
    assert not old_tmp.exists() and fresh_tmp.exists()
    assert all(p.exists() for p in order)

    bound = total // 2
    removed = cache.prune(str(cache_dir), max_bytes=bound)
    kept = [p for p in order if p.exists()]
    assert removed == len(order) - len(kept) > 0
    assert kept == order[len(order) - len(kept):]  # the most recently used stay
    assert sum(sizes[p] for p in kept) <= bound * 3 // 4
    assert sum(sizes[p] for p in kept) + sizes[order[len(order) - len(kept) - 1]] > bound * 3 // 4
    assert (cache_dir / "notes.txt").exists() and link.is_symlink() and fresh_tmp.exists()
    for i, path in enumerate(order):  # what is left still loads
        assert (cache.load("code", f"entry {i}".encode()) is not None) is path.exists()


def test_a_load_marks_an_entry_used(cache_dir: Path) -> None:
    old = _store_aged(cache_dir, "old", days=3)
    recent = _store_aged(cache_dir, "recent", days=0.5)
    recent_time = recent.stat().st_mtime
    assert cache.load("code", b"old") is not None and cache.load("code", b"recent") is not None
    assert time.time() - old.stat().st_mtime < 60  # refreshed
    assert recent.stat().st_mtime == recent_time  # used within the day: left as it is
    cache.prune(str(cache_dir), max_bytes=old.stat().st_size + recent.stat().st_size // 2)
    assert old.exists() and not recent.exists()


def test_storing_prunes_every_so_often(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Many schemas (a fuzzer, a property test) never fill the disk: past the bound, stores prune.
    monkeypatch.setattr(cache, "MAX_BYTES", 40_000)
    monkeypatch.setattr(cache, "PRUNE_EVERY", 4)
    for i in range(40):
        cache.store("code", f"schema {i}".encode(), "." * 4000)
        size = sum(p.stat().st_size for p in cache_dir.iterdir())
        assert size <= 40_000 + 4 * 4100
    assert cache.load("code", b"schema 39") is not None


def test_a_process_prunes_on_its_first_store_once_a_day(cache_dir: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from savestate.codec import cache
        cache.MAX_BYTES = 20_000
        cache.store("code", sys.argv[1].encode(), "." * 4000)
    """)
    env = {**os.environ, cache.CACHE_ENV: str(cache_dir)}

    def store_in_a_new_process(name: str) -> None:
        subprocess.run([sys.executable, "-c", script, name], env=env, check=True, cwd=REPO)

    def entries() -> list[Path]:
        return sorted(p for p in cache_dir.iterdir() if p.name.startswith("code-"))

    old = [_store_aged(cache_dir, f"old {i}", days=20 - i) for i in range(8)]  # oldest first
    (cache_dir / "last-prune").unlink(missing_ok=True)  # never pruned
    store_in_a_new_process("first")  # prunes
    left = entries()
    assert len(left) < 9 and old[-1] in left and old[0] not in left
    for i in range(4):
        _store_aged(cache_dir, f"new {i}", days=0)
    store_in_a_new_process("second")  # pruned an instant ago: does not
    assert len(entries()) == len(left) + 5


def test_prune_touches_only_its_own_files(cache_dir: Path) -> None:
    # A cache directory that others can write to, or a folder that is not only the cache:
    # prune follows no link, waits on no FIFO, and removes no file of the user's own that
    # merely has an entry's name.
    entry = _store_aged(cache_dir, "entry", days=30)
    victim = cache_dir.parent / "victim.txt"
    victim.write_bytes(b"keep me")
    (cache_dir / "last-prune").unlink(missing_ok=True)
    os.symlink(victim, cache_dir / "last-prune")
    lookalike = cache_dir / "code-20240115-2"
    lookalike.write_bytes(b"my notes " * 1000)
    os.utime(lookalike, (0, 0))
    assert cache.prune(str(cache_dir), max_bytes=100) == 1
    assert not entry.exists() and lookalike.exists() and victim.read_bytes() == b"keep me"
    (cache_dir / "last-prune").unlink()
    if hasattr(os, "mkfifo"):
        os.mkfifo(cache_dir / "last-prune")
        cache.prune(str(cache_dir), max_bytes=100)  # returns: the FIFO is not opened to wait
    with pytest.raises(ValueError):
        cache.store("nonsense", b"x", "body")


def test_prunes_at_once_go_down_to_the_bound_once(cache_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process pruning the same directory removes an entry first: it counts as gone.
    order = [_store_aged(cache_dir, f"entry {i}", days=10 - i, size=1000) for i in range(20)]
    total = sum(p.stat().st_size for p in order)
    real_unlink = os.unlink

    def raced(path: Any, *args: Any, **kwargs: Any) -> None:
        real_unlink(path)
        if Path(path) in order[:10]:
            raise FileNotFoundError(path)  # as if the other prune had been first

    monkeypatch.setattr(os, "unlink", raced)
    cache.prune(str(cache_dir), max_bytes=total)  # within the bound: nothing goes
    cache.prune(str(cache_dir), max_bytes=total * 4 // 5)
    kept = sum(p.stat().st_size for p in order if p.exists())
    assert total * 3 // 5 - 1100 < kept <= total * 3 // 5
