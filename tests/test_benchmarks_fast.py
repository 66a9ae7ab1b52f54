"""The benchmark's fast mode (tiny workloads, two interleaved rounds), so that it cannot rot.

The benchmark runs in a subprocess, as a user runs it: its classes (and its saved-state roots)
stay out of this process. Every installed peer is run; the savestate part always runs. The
callgrind mode is exercised on one cell when valgrind is installed. No test here looks at how
long anything took.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.peers import LIBRARIES, available

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("small", "large", "blob", "vm", "vm-tree")
OPS = ("encode", "build_encode", "decode", "decode_read")


def run_fast(out: Path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--fast", "--out", str(out), *args]
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "encodings agree" in proc.stderr
    results = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    assert "## Targets" in table
    for lib in results["libraries"]:
        assert f"| {lib} |" in table
        for workload in WORKLOADS:
            cells = results["timings"][lib]["results"][workload]
            if "na" in cells:  # a library that cannot run it says why, and the table shows it
                assert not lib.startswith("savestate") and workload.startswith("vm")
                assert f"n/a for {lib}: {cells['na']}" in table
                continue
            for op in OPS:
                assert cells[op]["seconds"] > 0
                assert len(cells[op]["samples"]) == results["rounds"] == 2
        assert set(results["memory"][lib]) == {"encode", "decode"}
    return results


def test_savestate_alone(tmp_path: Path) -> None:
    results = run_fast(tmp_path, "--lib", "savestate", "--no-chart")
    assert results["libraries"] == ["savestate"]
    assert list(results["processes"]) == ["native"]  # no second worker when nothing needs it
    built = importlib.util.find_spec("savestate.codec._speedups") is not None
    assert results["timings"]["savestate"]["accelerated"] is built
    # Every target that needs a missing library says so instead of a figure.
    assert all(row["time"] is None for row in report.targets(results))


def test_every_installed_peer(tmp_path: Path) -> None:
    results = run_fast(tmp_path)
    installed = [lib for lib in LIBRARIES if available(lib)]
    assert results["libraries"] == installed
    timings = results["timings"]
    # savestate is in both workers: with the accelerator (when built) and forced pure.
    assert timings["savestate"]["process"] == "native"
    assert timings["savestate-pure"]["process"] == "pure"
    assert timings["savestate-pure"]["accelerated"] is False
    assert set(results["anchor"]) == set(results["processes"]) == {"native", "pure"}
    if "google-upb" in installed:
        assert timings["google-upb"]["backend"] == "upb"
        assert timings["google-python"]["backend"] == "python"
        assert timings["google-upb"]["process"] == "native"
        assert timings["google-python"]["process"] == "pure"
        assert "na" not in timings["google-upb"]["results"]["vm-tree"]
    if "pure-protobuf" in installed:
        assert "na" in timings["pure-protobuf"]["results"]["vm-tree"]
    for lib in ("betterproto", "betterproto2"):
        if lib in installed:
            assert "na" not in timings[lib]["results"]["vm-tree"]
    rows = report.targets(results)
    assert len(rows) == len(report.TARGETS)
    if installed == list(LIBRARIES):
        assert all(row["time"] is not None for row in rows)
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "results.png").stat().st_size > 0


def test_targets_pick_the_fastest_pure_python_peer() -> None:
    def cell(seconds: float) -> dict:
        return {op: {"seconds": seconds, "samples": [seconds]} for op in OPS}

    times = {"savestate": 1.0, "savestate-pure": 2.0, "google-upb": 1.0,
             "google-python": 8.0, "betterproto": 50.0}
    results = {
        "libraries": list(times),
        "timings": {lib: {"results": {wl: cell(s) for wl in WORKLOADS}}
                    for lib, s in times.items()},
        "instructions": {lib: {wl: {op: {"instructions": 1000 * s} for op in OPS}
                               for wl in WORKLOADS} for lib, s in times.items()},
    }
    rows = {(r["workload"], r["op"], r["savestate"], r["peer"]): r
            for r in report.targets(results)}
    fastest = rows["large", "decode_read", "savestate-pure", report.FASTEST_PURE]
    assert fastest["time"] == {"peer": "google-python", "ratio": 4.0, "met": True}
    assert fastest["instructions"]["peer"] == "google-python"
    within = rows["small", "build_encode", "savestate-pure", "google-upb"]
    assert within["time"] == {"peer": "google-upb", "ratio": 2.0, "met": True}
    bp = rows["large", "build_encode", "savestate-pure", "betterproto"]
    assert bp["time"]["ratio"] == 25.0 and bp["time"]["met"]
    upb = rows["small", "decode_read", "savestate", "google-upb"]
    assert upb["time"]["met"]  # 1.0x, at most 1.5x


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(os.environ.get("SAVESTATE_PURE") == "1",
                    reason="the counted process sets its own path, so the suite's pass with "
                           "the accelerator runs this test for both passes")
def test_callgrind_counts_one_cell(tmp_path: Path) -> None:
    from benchmarks.run import count_instructions

    counts = count_instructions("savestate", [["small", "encode", 4]], fast=True, seed=1,
                                generated=tmp_path / "generated", work=tmp_path / "work")
    n = counts["small"]["encode"]["instructions"]
    # A small state's encode is thousands of instructions, far from the millions of start-up.
    assert 1_000 < n < 5_000_000
    assert not (tmp_path / "work").exists()


def test_a_field_alone_keeps_that_fields_values_and_empties_the_rest() -> None:
    from benchmarks import workloads

    small = workloads.named("small", fast=True)
    full = workloads.make(small, seed=3)
    for field in workloads.DEVICE_FIELDS:
        alone = workloads.named(f"small.{field}", fast=True)
        assert alone.name == f"small.{field}" and alone.alone == field
        values = workloads.make(alone, seed=3)
        assert values[field] == full[field]
        assert all(values[f] != full[f] and not values[f] for f in workloads.DEVICE_FIELDS
                   if f != field)
    empty = workloads.make(workloads.named("small.none", fast=True), seed=3)
    assert not any(empty.values())
    with pytest.raises(ValueError, match="no field"):
        workloads.named("small.nonesuch")
    with pytest.raises(ValueError, match="not a device workload"):
        workloads.named("blob.data")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(os.environ.get("SAVESTATE_PURE") == "1",
                    reason="the counted process sets its own path, so the suite's pass with "
                           "the accelerator runs this test for both passes")
def test_field_profile_counts_each_field_against_the_empty_state() -> None:
    from benchmarks import profile_codec, workloads

    counts = profile_codec.field_counts(["savestate-pure"], "small", "encode", 2, fast=True,
                                        seed=1)
    pure = counts["savestate-pure"]
    assert set(pure) == {"none", "all", *workloads.DEVICE_FIELDS}
    # Every field of the small state holds something, so each costs more than none at all,
    # and the whole state more than any one field.
    assert all(pure["none"] < pure[f] < pure["all"] for f in workloads.DEVICE_FIELDS)
    table = profile_codec.field_table(counts)
    assert "| + registers |" in table and "| whole workload |" in table


def test_field_profile_refuses_a_library_it_does_not_know(
        capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import profile_codec

    with pytest.raises(SystemExit) as exc:
        profile_codec.main(["--fields", "--lib", "pure_protobuf"])
    assert exc.value.code == 2
    assert "invalid choice: 'pure_protobuf'" in capsys.readouterr().err
