"""The examples run as they would from a shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_vm_demo(tmp_path: Path) -> None:
    out = _run("-m", "examples.vm", "--steps", "2200", "--out", str(tmp_path))
    assert "state equal: True; equal after 1000 more steps: True" in out
    assert "HELLO, VM" in out
    for name in ("chipset/pic", "chipset/pit", "chipset/rtc", "chipset/ioapic", "com1",
                 "storage", "debugcon"):
        assert name in out
    assert (tmp_path / "vm.snapshot").is_file()
    if "wrote" in out:
        assert (tmp_path / "proto" / "storage.storvsp.proto").is_file()


def test_vm_demo_refuses_bad_arguments_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for args, error in [
        (["--out", str(a_file)], f"argument --out: {a_file} exists and is not a directory"),
        (["--out", str(a_file / "sub")], f"argument --out: cannot create {a_file / 'sub'}: "),
        (["--steps", "-5"], "argument --steps: must be 0 or more, got -5"),
        (["--steps", "many"], "argument --steps: not a whole number: 'many'"),
    ]:
        result = subprocess.run([sys.executable, "-m", "examples.vm", *args], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        last = result.stderr.splitlines()[-1]
        assert last.startswith(f"python -m examples.vm: error: {error}"), result.stderr
        assert result.stdout == ""  # refused before the machine ran


def test_quickstart() -> None:
    out = _run(str(ROOT / "examples" / "quickstart.py"))
    assert out.strip()
