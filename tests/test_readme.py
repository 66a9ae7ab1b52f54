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
