"""Run the benchmark: check every library's bytes, time every library side by side in
interleaved rounds, measure the blob's peak memory in fresh processes, optionally count
instructions with callgrind, and write the tables and the chart.

    python -m benchmarks.run [--fast] [--callgrind] [--out DIR] [--lib NAME ...]

How the timing is interleaved: the libraries live in two long-lived worker processes, because
two settings are fixed when a library is imported. The *native* worker (upb, the accelerator)
hosts savestate, google-upb, pure-protobuf, betterproto and betterproto2; the *pure* worker
(``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, ``SAVESTATE_PURE=1``) hosts savestate-pure
and google-python. Each worker first warms every operation up and chooses its calls per sample
(about ``--sample`` seconds). Then, in each round and for each workload in turn, the runner has
one worker take one sample of every operation of each of its libraries, then the other worker
the same; even rounds go native then pure with the libraries in order, odd rounds pure then
native with the libraries reversed. A sample is the process's CPU time by default (``--clock``),
so time spent waiting for a core on a busy machine is not counted. A cell's figure is the
median of its rounds' samples, and a ratio between two libraries is the median of their
per-round ratios, so load that drifts during the run falls on every library alike. Each
worker also times a fixed pure-Python loop (the anchor) once per round: equal anchors say the
two processes ran at the same speed, and savestate (in both) ties each process's libraries to
savestate's figures.

``--callgrind`` then counts instructions (``valgrind --tool=callgrind``), one process per
library: each cell's operation runs n and then 2n times between markers, and the difference
over n is the count per call, so start-up and warm-up cancel. These figures do not move with
the machine's load.

``--fast`` uses tiny workloads and two rounds (the test suite runs it so that it cannot rot).
Libraries that are not installed are left out with a note, unless named with ``--lib``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from . import report, workloads
from .check import check
from .peers import LIBRARIES, PROCESSES, available, process_env, process_of
from .peers.generated import GENERATED_ENV
from .worker import CLOCKS, MARKER, OPS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"

# Native seconds of calls in each callgrind run of a cell (n calls, then 2n).
CALLGRIND_SECONDS = 0.004


def _env(process: str, generated: Path) -> dict[str, str]:
    env = process_env(process)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env[GENERATED_ENV] = str(generated)
    return env


class Worker:
    """A long-lived ``benchmarks.worker serve`` process: one JSON line per request and reply."""

    def __init__(self, process: str, generated: Path) -> None:
        self.process = process
        # Closed by close(), after the process.
        self._log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", "serve", "--process", process],
            env=_env(process, generated), cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )

    def send(self, **request: Any) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()

    def receive(self) -> Any:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._log.seek(0)
            raise RuntimeError(f"the {self.process} worker stopped "
                               f"(exit {self._proc.returncode}):\n{self._log.read()}")
        return json.loads(line)

    def ask(self, **request: Any) -> Any:
        self.send(**request)
        return self.receive()

    def close(self) -> None:
        if self._proc.poll() is None:
            self.send(cmd="quit")
            self._proc.wait()
        self._log.close()


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
    }


def revision() -> str | None:
    """The commit the package was measured at (and whether its files had changed since)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "savestate"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" with uncommitted changes to savestate/" if changed else "")


def time_interleaved(
    workers: list[Worker], cells: dict[str, list[tuple[str, str, str]]],
    wls: list[workloads.Workload], *, rounds: int, target: float, clock: str,
) -> tuple[dict[tuple[str, str, str], dict[str, Any]], dict[str, list[float]]]:
    """The interleaved rounds (see the module docstring): each cell's samples and number, and
    each worker's anchor samples."""
    numbers: dict[tuple[str, str, str], int] = {}
    anchor_numbers: dict[str, int] = {}
    for w in workers:
        reply = w.ask(cmd="calibrate", cells=[list(c) for c in cells[w.process]],
                      target=target)
        numbers.update(zip(cells[w.process], reply["numbers"], strict=True))
        anchor_numbers[w.process] = reply["anchor"]
    samples: dict[tuple[str, str, str], list[float]] = {c: [] for c in numbers}
    anchors: dict[str, list[float]] = {w.process: [] for w in workers}
    for r in range(rounds):
        order = workers if r % 2 == 0 else workers[::-1]
        for i, wl in enumerate(wls):
            for w in order:
                libs = list(dict.fromkeys(lib for lib, _, _ in cells[w.process]))
                if r % 2:
                    libs.reverse()
                batch = [c for lib in libs for c in cells[w.process]
                         if c[0] == lib and c[1] == wl.name]
                request: dict[str, Any] = {"cells": [[*c, numbers[c]] for c in batch],
                                           "clock": clock}
                if i == 0:
                    request["anchor"] = anchor_numbers[w.process]
                reply = w.ask(cmd="sample", **request)
                for c, s in zip(batch, reply["seconds"], strict=True):
                    samples[c].append(s)
                if i == 0:
                    anchors[w.process].append(reply["anchor"])
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    out = {
        c: {"seconds": statistics.median(s), "number": numbers[c], "samples": s}
        for c, s in samples.items()
    }
    return out, anchors


def callgrind_plan(results: dict[str, Any]) -> list[list[Any]]:
    """One library's cells to count, ``[workload, op, n]``, from its timings: n calls take
    about ``CALLGRIND_SECONDS`` natively (at least 1, at most 200). The blob is left out."""
    plan = []
    for name, cells in results.items():
        if "na" in cells or name == "blob":
            continue
        for op in OPS:
            n = math.ceil(CALLGRIND_SECONDS / max(cells[op]["seconds"], 1e-9))
            plan.append([name, op, max(1, min(200, n))])
    return plan


def count_instructions(
    lib: str, plan: list[list[Any]], *, fast: bool, seed: int, generated: Path, work: Path,
) -> dict[str, Any]:
    """Instructions per call of each planned cell of ``lib``, in one valgrind process: the
    count of 2n calls minus the count of n calls, over n."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)")
    work.mkdir(parents=True)
    (work / "plan.json").write_text(json.dumps(plan))
    out = work / "cg.out"
    env = _env(process_of(lib), generated)
    env["PYTHONHASHSEED"] = "0"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           f"--dump-before={MARKER}", "--dump-instr=no", "--dump-line=no",
           sys.executable, "-m", "benchmarks.worker", "count", "--lib", lib,
           "--plan", str(work / "plan.json"), "--labels", str(work / "labels.json"),
           "--seed", str(seed), *(["--fast"] if fast else [])]
    print(f"callgrind {lib} ...", file=sys.stderr)
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    labels = json.loads((work / "labels.json").read_text())
    totals = [_total(Path(f"{out}.{i}")) for i in range(1, len(labels) + 1)]
    if Path(f"{out}.{len(labels) + 1}").exists() or any(t is None for t in totals):
        raise RuntimeError(f"callgrind's dumps do not match the {MARKER} markers (it needs "
                           "the interpreter's symbols)")
    runs = {(lab[0], lab[1], lab[2]): t for lab, t in zip(labels, totals, strict=True)
            if isinstance(lab, list)}
    counts: dict[str, Any] = {}
    for name, op, n in plan:
        per_call = (runs[name, op, 2 * n] - runs[name, op, n]) / n
        counts.setdefault(name, {})[op] = {"instructions": round(per_call), "n": n}
    shutil.rmtree(work)
    return counts


def callgrind(
    libs: list[str], timings: dict[str, Any], *, fast: bool, seed: int, generated: Path,
    tmp: Path, jobs: int,
) -> dict[str, Any]:
    """Instructions per call of every (library, workload, operation) but the blob's, one
    valgrind process per library (``jobs`` at a time)."""
    def one(lib: str) -> tuple[str, dict[str, Any]]:
        plan = callgrind_plan(timings[lib]["results"])
        return lib, count_instructions(lib, plan, fast=fast, seed=seed, generated=generated,
                                       work=tmp / f"callgrind-{lib}")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(pool.map(one, libs))


def blob_memory(lib: str, raw: Path, encoded: Path, generated: Path) -> dict[str, Any]:
    """The blob's peak memory for ``lib``: both operations in one fresh process when it can
    reset its high-water mark in between, else one process each."""
    print(f"blob memory {lib} ...", file=sys.stderr)
    memory: dict[str, Any] = {}
    left = ["encode", "decode"]
    while left:
        cmd = [sys.executable, "-m", "benchmarks.worker", "mem", "--lib", lib,
               *(a for op in left for a in ("--op", op)),
               "--raw", str(raw), "--encoded", str(encoded)]
        proc = subprocess.run(cmd, env=_env(process_of(lib), generated), cwd=REPO,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
        reply = json.loads(proc.stdout)
        memory.update(reply["results"])
        left = reply["left"]
    return memory


def _total(path: Path) -> int | None:
    """The instruction count of one callgrind dump."""
    if not path.exists():
        return None
    with path.open() as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny workloads, two rounds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    parser.add_argument("--lib", action="append", choices=list(LIBRARIES),
                        help="only these libraries (repeatable; savestate is always in); "
                             "default: every installed one")
    parser.add_argument("--seed", type=int, default=workloads.DEFAULT_SEED)
    parser.add_argument("--blob-size", type=int, default=None,
                        help="bytes in the blob workload (default 64 MiB, 64 KiB with --fast)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 15, 2 with --fast)")
    parser.add_argument("--sample", type=float, default=None,
                        help="seconds per sample (default 0.02, one call with --fast)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu",
                        help="what a sample measures: the process's CPU time (default; time "
                             "spent waiting for a core is not counted) or the wall clock")
    parser.add_argument("--callgrind", action="store_true",
                        help="also count instructions per call with valgrind's callgrind")
    parser.add_argument("--jobs", type=int, default=2,
                        help="callgrind processes at a time (default 2)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)

    libs = args.lib or list(LIBRARIES)
    if "savestate" not in libs:
        libs.insert(0, "savestate")
    libs = list(dict.fromkeys(libs))
    missing = [lib for lib in libs if not available(lib)]
    if args.lib and missing:
        parser.error(
            f"not installed: {', '.join(missing)} (pip install -r benchmarks/requirements.txt)"
        )
    for lib in missing:
        print(f"note: {lib} is not installed; left out", file=sys.stderr)
    libs = [lib for lib in libs if lib not in missing]
    rounds = args.rounds or (2 if args.fast else 15)
    target = args.sample if args.sample is not None else (0.0 if args.fast else 0.02)
    wls = workloads.workloads(fast=args.fast, blob_size=args.blob_size, seed=args.seed)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="savestate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        generated = tmp / "generated"
        workers = [Worker(p, generated) for p, (_, hosted) in PROCESSES.items()
                   if any(lib in hosted for lib in libs)]
        try:
            # 1. Set up the workers, side by side (nothing is timed yet).
            info: dict[str, Any] = {}
            cells: dict[str, list[tuple[str, str, str]]] = {}
            for w in workers:
                w.send(cmd="setup", libs=libs, fast=args.fast, seed=args.seed,
                       blob_size=args.blob_size)
            for w in workers:
                reply = w.receive()
                for lib, lib_info in reply["info"].items():
                    info[lib] = {**lib_info, "process": w.process}
                cells[w.process] = [tuple(c) for c in reply["cells"]]
            libs = [lib for lib in libs if lib in info]

            # 2. The check: every library's bytes for every workload, judged before any timing.
            dump_dir = tmp / "dump"
            dump_dir.mkdir()
            sums: dict[str, dict[str, int]] = {}
            for w in workers:
                sums.update(w.ask(cmd="dump", dir=str(dump_dir))["sums"])
            encodings = {
                lib: {wl.name: path.read_bytes() for wl in wls
                      if (path := dump_dir / f"{lib}.{wl.name}.bin").exists()}
                for lib in libs
            }
            google = available("google-upb")
            checked = check(encodings, sums, wls, args.seed, google=google)
            print(f"check: {len(checked)} encodings agree "
                  f"({'judged by Google and savestate' if google else 'judged by savestate'})",
                  file=sys.stderr)
            blob = next(wl for wl in wls if wl.kind == "blob")
            raw, encoded = tmp / "blob.raw", tmp / "blob.pb"
            raw.write_bytes(workloads.make(blob, args.seed)["data"])
            encoded.write_bytes(encodings["savestate"][blob.name])
            del encodings
            shutil.rmtree(dump_dir)

            # 3. Timing, interleaved.
            measured, anchors = time_interleaved(workers, cells, wls, rounds=rounds,
                                                 target=target, clock=args.clock)
        finally:
            for w in workers:
                w.close()
        timings: dict[str, Any] = {}
        for lib in libs:
            lib_info = info[lib]
            results: dict[str, Any] = {}
            for wl in wls:
                if wl.name in lib_info["na"]:
                    results[wl.name] = {"na": lib_info["na"][wl.name]}
                    continue
                results[wl.name] = {
                    op: measured[lib, wl.name, op] for op in (*OPS, "copy")
                    if (lib, wl.name, op) in measured
                }
            timings[lib] = {
                "lib": lib, "version": lib_info["version"], "process": lib_info["process"],
                "results": results, "sizes": lib_info["sizes"],
                **{k: lib_info[k] for k in ("backend", "accelerated") if k in lib_info},
            }

        # 4. Blob peak memory, in fresh processes (two at a time: each one's peak is its own).
        with ThreadPoolExecutor(max_workers=2) as pool:
            memory = dict(pool.map(lambda lib: (lib, blob_memory(lib, raw, encoded, generated)),
                                   libs))

        # 5. Instruction counts.
        counts = None
        if args.callgrind:
            counts = callgrind(libs, timings, fast=args.fast, seed=args.seed,
                               generated=generated, tmp=tmp, jobs=args.jobs)

    command = "python -m benchmarks.run" + (" --fast" if args.fast else "") + (
        " --callgrind" if args.callgrind else "")
    results = {
        "machine": machine(),
        "revision": revision(),
        "command": command,
        "fast": args.fast,
        "seed": args.seed,
        "rounds": rounds,
        "sample_seconds": target,
        "clock": args.clock,
        "workloads": {wl.name: {"kind": wl.kind, **wl.sizes} for wl in wls},
        "libraries": libs,
        "processes": {p: {"settings": PROCESSES[p][0],
                          "libraries": [lib for lib in libs if process_of(lib) == p]}
                      for p in anchors},
        "anchor": {p: {"seconds": statistics.median(s), "samples": s}
                   for p, s in anchors.items()},
        "timings": timings,
        "memory": memory,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if counts is not None:
        results["instructions"] = counts
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    table = report.markdown(results)
    (args.out / "results.md").write_text(table)
    if not args.no_chart:
        chart = report.chart(results, args.out / "results.png")
        if chart is None:
            print("note: matplotlib is not installed; no chart", file=sys.stderr)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
