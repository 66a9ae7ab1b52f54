"""Type checkers understand savestate: the samples in tests/typing/ are checked by mypy (and by
pyright when it is installed), and what they report must be exactly what the samples expect
(``# revealed: T`` and ``# error: CODE`` comments)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "typing"
SAMPLES = sorted(p.name for p in HERE.glob("*.py"))
_EXPECT = re.compile(r"#\s*(revealed|error):\s*(.+?)\s*$")


def _normalise(type_text: str) -> str:
    """Drop module prefixes (``tests.typing.typed_ok.State`` -> ``State``) and ``builtins.``."""
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", type_text).replace(" ", "")


def expectations(name: str) -> tuple[dict[int, str], dict[int, str]]:
    revealed: dict[int, str] = {}
    errors: dict[int, str] = {}
    for number, line in enumerate((HERE / name).read_text().splitlines(), 1):
        m = _EXPECT.search(line)
        if m:
            (revealed if m.group(1) == "revealed" else errors)[number] = m.group(2)
    return revealed, errors


@pytest.mark.parametrize("name", SAMPLES)
def test_mypy(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--show-error-codes",
         "--follow-imports=silent", "--no-error-summary", name],
        cwd=HERE, capture_output=True, text=True, check=False,
    )
    revealed: dict[int, str] = {}
    errors: dict[int, str] = {}
    for line in result.stdout.splitlines():
        m = re.match(rf"{re.escape(name)}:(\d+): (error|note): (.*)", line)
        if not m:
            continue
        number, kind, text = int(m.group(1)), m.group(2), m.group(3)
        shown = re.match(r'Revealed type is "(.*)"', text)
        if kind == "note" and shown:
            revealed[number] = shown.group(1)
        elif kind == "error":
            code = re.search(r"\[([\w-]+)\]$", text)
            errors[number] = code.group(1) if code else text
    want_revealed, want_errors = expectations(name)
    assert {n: _normalise(t) for n, t in revealed.items()} == {
        n: _normalise(t) for n, t in want_revealed.items()
    }, result.stdout
    assert errors == want_errors, result.stdout


_PYRIGHT = shutil.which("pyright") or (
    str(Path(sys.executable).with_name("pyright"))
    if Path(sys.executable).with_name("pyright").exists() else None
)


@pytest.mark.skipif(_PYRIGHT is None, reason="pyright is not installed")
@pytest.mark.parametrize("name", SAMPLES)
def test_pyright(name: str) -> None:
    assert _PYRIGHT is not None
    result = subprocess.run(
        [_PYRIGHT, "--outputjson", name], cwd=HERE, capture_output=True, text=True, check=False
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.skip(f"pyright did not run here: {result.stderr.strip()[:200]}")
    revealed: dict[int, str] = {}
    error_lines: set[int] = set()
    for d in report["generalDiagnostics"]:
        number = d["range"]["start"]["line"] + 1
        shown = re.match(r'Type of ".*" is "(.*)"$', d["message"], re.S)
        if d["severity"] == "information" and shown:
            revealed[number] = shown.group(1)
        elif d["severity"] == "error":
            error_lines.add(number)
    want_revealed, want_errors = expectations(name)
    assert {n: _normalise(t) for n, t in revealed.items()} == {
        n: _normalise(t) for n, t in want_revealed.items()
    }
    # pyright names its rules differently: the lines must match.
    assert error_lines == set(want_errors)
