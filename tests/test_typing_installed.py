"""Type checkers see the installed package from outside the checkout (for an editable install
too: it is a plain path entry, not an import hook that checkers cannot follow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "typing" / "typed_match.py"
_PYRIGHT = shutil.which("pyright") or (
    str(Path(sys.executable).with_name("pyright"))
    if Path(sys.executable).with_name("pyright").exists() else None
)


def _outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    shutil.copy(SAMPLE, tmp_path / "sample.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return tmp_path / "sample.py", env


def test_mypy_sees_the_installed_package(tmp_path: Path) -> None:
    sample, env = _outside(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--no-error-summary",
         "--python-executable", sys.executable, sample.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    assert "error" not in done.stdout, done.stdout
    assert 'Revealed type is "sample.Dot | sample.Pair | sample.Named"' in done.stdout


@pytest.mark.skipif(_PYRIGHT is None, reason="pyright is not installed")
def test_pyright_sees_the_installed_package(tmp_path: Path) -> None:
    assert _PYRIGHT is not None
    sample, env = _outside(tmp_path)
    done = subprocess.run(
        [_PYRIGHT, "--outputjson", "--pythonpath", sys.executable, sample.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.skip(f"pyright did not run here: {done.stderr.strip()[:200]}")
    errors = [d["message"] for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert errors == []
    shown = [d["message"] for d in report["generalDiagnostics"] if "drawing.shape" in d["message"]]
    assert shown == ['Type of "drawing.shape" is "Dot | Pair | Named"']
