"""The benchmark's fast mode (tiny workloads, one round), so that the suite cannot rot.

The benchmark runs in a subprocess, as a user runs it: its classes (and its saved-state roots)
stay out of this process. The peers it needs beyond the test extra are skipped when absent;
the savestate part always runs, and the Google part whenever protobuf is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_fast(out: Path, *libs: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--fast", "--out", str(out)]
    for lib in libs:
        cmd += ["--lib", lib]
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "encodings agree" in proc.stderr
    results = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    for lib in results["libraries"]:
        assert f"| {lib} |" in table
        for workload in ("small", "large", "blob", "vm", "vm-tree"):
            cells = results["timings"][lib]["results"][workload]
            if "na" in cells:  # a library that cannot run it says why, and the table shows it
                assert lib != "savestate" and workload.startswith("vm")
                assert f"n/a for {lib}: {cells['na']}" in table
                continue
            assert all(cells[op]["seconds"] > 0 for op in
                       ("encode", "build_encode", "decode", "decode_read"))
        assert set(results["memory"][lib]) == {"encode", "decode"}
    return results


def test_savestate_alone(tmp_path: Path) -> None:
    results = run_fast(tmp_path, "savestate")
    assert results["libraries"] == ["savestate"]


def test_savestate_and_google(tmp_path: Path) -> None:
    pytest.importorskip("google.protobuf")
    pytest.importorskip("grpc_tools")
    results = run_fast(tmp_path, "savestate", "google-upb", "google-python")
    assert results["timings"]["google-python"]["backend"] == "python"
    assert results["timings"]["google-upb"]["backend"] == "upb"
    assert "## The issue's targets" in (tmp_path / "results.md").read_text()


def test_every_peer(tmp_path: Path) -> None:
    pytest.importorskip("google.protobuf")
    pytest.importorskip("grpc_tools")
    pytest.importorskip("betterproto")
    pytest.importorskip("pure_protobuf")
    results = run_fast(tmp_path)
    assert set(results["libraries"]) == {
        "savestate", "google-upb", "google-python", "pure-protobuf", "betterproto"
    }
    timings = results["timings"]
    assert "na" in timings["pure-protobuf"]["results"]["vm-tree"]
    assert "na" not in timings["google-upb"]["results"]["vm-tree"]
    assert "na" not in timings["betterproto"]["results"]["vm-tree"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "results.png").stat().st_size > 0
