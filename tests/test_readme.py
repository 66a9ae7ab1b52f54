"""Every Python code block of README.md runs, in order, in one namespace."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 3


def test_readme_code_blocks_run() -> None:
    # A real module, so that the dataclasses and forward references in the blocks resolve.
    module = types.ModuleType("readme_examples")
    sys.modules[module.__name__] = module
    try:
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_commands_are_what_ci_runs() -> None:
    setup, tests = _blocks("sh")[:2]
    assert "python -m examples.vm" in setup
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.strip() in ci


def test_readme_console_sessions(tmp_path: Path) -> None:
    """Each console block runs in a fresh directory, as written, by the shell of a user who ran
    the set-up commands (the virtualenv active: its ``bin`` first on PATH, no PYTHONPATH):
    ``$ savestate ...`` (the installed console script) and ``$ python ...`` commands, whose
    output must be the lines that follow; a ``...`` line stands for any number of lines."""
    import os
    import shlex
    import subprocess

    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    for index, block in enumerate(_blocks("console")):
        cwd = tmp_path / str(index)
        cwd.mkdir()
        for command, expected in _sessions(block):
            words = shlex.split(command)
            assert words[0] in ("savestate", "python"), command
            done = subprocess.run(
                ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                check=False, timeout=300,
            )
            # `diff` exits 1 when the states differ, as diff(1) does.
            allowed = (0, 1) if words[1:2] == ["diff"] else (0,)
            assert done.returncode in allowed, (command, done.stderr)
            if ">" in words:
                continue
            assert _matches(done.stdout.splitlines(), expected), (command, done.stdout)


def _sessions(block: str) -> list[tuple[str, list[str]]]:
    sessions: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        else:
            sessions[-1][1].append(line)
    return sessions


def _matches(lines: list[str], expected: list[str]) -> bool:
    if not expected:
        return not lines
    if expected[0] == "...":
        return any(_matches(lines[i:], expected[1:]) for i in range(len(lines) + 1))
    return bool(lines) and lines[0] == expected[0] and _matches(lines[1:], expected[1:])


def test_readme_proto_is_what_the_quickstart_emits() -> None:
    import importlib

    import savestate

    quickstart = importlib.import_module("examples.quickstart")
    files = savestate.proto_files([quickstart.SavedState])
    (shown,) = _blocks("proto")
    assert files["quickstart.pic.proto"] == shown
