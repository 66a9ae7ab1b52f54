"""Run the benchmark: check every library's bytes, time each library in its own process,
measure the blob's peak memory in fresh processes, and write the table and the chart.

    python -m benchmarks.run [--fast] [--out DIR] [--lib NAME ...]

``--fast`` uses tiny workloads and one round (the test suite runs it so that it cannot rot).
Libraries that are not installed are left out with a note, unless named with ``--lib``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report, workloads
from .check import check
from .peers import BACKEND_ENV, LIBRARIES, available, load, unsupported

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _env(lib: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    env.update(BACKEND_ENV.get(lib, {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _worker(lib: str, *args: str) -> str:
    cmd = [sys.executable, "-m", "benchmarks.worker", *args]
    proc = subprocess.run(cmd, env=_env(lib), cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return proc.stdout


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="tiny workloads, one round")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results go")
    parser.add_argument("--lib", action="append", choices=list(LIBRARIES),
                        help="only these libraries (repeatable); default: every installed one")
    parser.add_argument("--seed", type=int, default=workloads.DEFAULT_SEED)
    parser.add_argument("--blob-size", type=int, default=None,
                        help="bytes in the blob workload (default 64 MiB, 64 KiB with --fast)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)

    libs = args.lib or list(LIBRARIES)
    if "savestate" not in libs:
        libs.insert(0, "savestate")
    missing = [lib for lib in libs if not available(lib)]
    if args.lib and missing:
        parser.error(
            f"not installed: {', '.join(missing)} (pip install -r benchmarks/requirements.txt)"
        )
    for lib in missing:
        print(f"note: {lib} is not installed; left out", file=sys.stderr)
    libs = [lib for lib in libs if lib not in missing]
    wls = workloads.workloads(fast=args.fast, blob_size=args.blob_size, seed=args.seed)
    common = ["--seed", str(args.seed)]
    if args.fast:
        common.append("--fast")
    if args.blob_size is not None:
        common += ["--blob-size", str(args.blob_size)]
    started = time.perf_counter()

    # 1. The check: every library's bytes for every workload, judged before any timing.
    google = available("google-upb")
    with tempfile.TemporaryDirectory(prefix="savestate-bench-") as tmp:
        encodings: dict[str, dict[str, bytes]] = {}
        for lib in libs:
            if lib == "google-python" or (lib == "google-upb" and _backend_mismatch()):
                _worker(lib, "dump", "--lib", lib, "--dir", tmp, *common)
                encodings[lib] = {
                    wl.name: path.read_bytes() for wl in wls
                    if (path := Path(tmp) / f"{lib}.{wl.name}.bin").exists()
                }
            else:
                peer = _peer(lib)
                encodings[lib] = {
                    wl.name: peer.encode(peer.build(wl.kind, workloads.make(wl, args.seed)))
                    for wl in wls if unsupported(peer, wl.kind) is None
                }
        checked = check(encodings, wls, args.seed, google=google)
        print(f"check: {len(checked)} encodings agree "
              f"({'judged by Google and savestate' if google else 'judged by savestate'})",
              file=sys.stderr)

        # 2. Timing, one process per library.
        timings: dict[str, Any] = {}
        for lib in libs:
            print(f"timing {lib} ...", file=sys.stderr)
            timings[lib] = json.loads(_worker(lib, "time", "--lib", lib, *common))

        # 3. Blob peak memory, one fresh process per library and operation.
        blob = next(wl for wl in wls if wl.kind == "blob")
        raw = Path(tmp) / "blob.raw"
        raw.write_bytes(workloads.make(blob, args.seed)["data"])
        encoded = Path(tmp) / "blob.pb"
        encoded.write_bytes(encodings["savestate"]["blob"])
        del encodings
        memory: dict[str, dict[str, Any]] = {}
        for lib in libs:
            print(f"blob memory {lib} ...", file=sys.stderr)
            memory[lib] = {
                op: json.loads(_worker(lib, "mem", "--lib", lib, "--op", op,
                                       "--source", str(src)))
                for op, src in (("encode", raw), ("decode", encoded))
            }

    results = {
        "machine": machine(),
        "command": "python -m benchmarks.run" + (" --fast" if args.fast else ""),
        "fast": args.fast,
        "seed": args.seed,
        "workloads": {wl.name: {"kind": wl.kind, **wl.sizes} for wl in wls},
        "libraries": libs,
        "timings": timings,
        "memory": memory,
        "seconds": round(time.perf_counter() - started, 1),
    }
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


def _backend_mismatch() -> bool:
    """Whether this process's Google backend is not upb (then upb runs in a worker too)."""
    return os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "upb") != "upb"


def _peer(lib: str) -> Any:
    if lib == "google-upb":
        from .peers import google_peer

        return google_peer
    return load(lib)


if __name__ == "__main__":
    sys.exit(main())
