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
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(README.parent))
    for block in _blocks("console"):
        lines = block.strip().splitlines()
        command, expected = lines[0], lines[1:]
        assert command.startswith("$ savestate ")
        args = command[len("$ savestate "):].split()
        done = subprocess.run(
            [sys.executable, "-m", "savestate", *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, check=False, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == expected


def test_readme_proto_is_what_the_quickstart_emits() -> None:
    import importlib

    import savestate

    quickstart = importlib.import_module("examples.quickstart")
    files = savestate.proto_files([quickstart.SavedState])
    (shown,) = _blocks("proto")
    assert files["quickstart.pic.proto"] == shown
