"""What one library's process does for the runner (``python -m benchmarks.worker ...``).

Each library is timed in a process of its own, so that Google's two backends (chosen by an
environment variable when ``google.protobuf`` is first imported) never meet, and so that one
library's garbage does not slow the next. Commands:

- ``time``: median seconds of each operation on each workload, as JSON on stdout;
- ``dump``: write the library's encoding of each workload into a directory (for the check);
- ``mem``: peak memory of one blob operation, measured in this fresh process.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from . import workloads
from .peers import load, unsupported

__all__ = ["OPS", "measure", "time_library"]

# The operations timed for every library and workload, in table order.
OPS = ("encode", "build_encode", "decode", "decode_read")

_DISTRIBUTIONS = {
    "savestate": "savestate",
    "google-upb": "protobuf",
    "google-python": "protobuf",
    "pure-protobuf": "pure-protobuf",
    "betterproto": "betterproto",
}


def version_of(lib: str) -> str:
    try:
        return metadata.version(_DISTRIBUTIONS[lib])
    except metadata.PackageNotFoundError:
        return "?"


def measure(
    fn: Callable[[], Any], *, target: float, repeats: int, budget: float
) -> tuple[float, int, int]:
    """Median seconds per call of ``fn``: ``repeats`` samples (fewer once ``budget`` seconds
    are spent, but at least 3 unless ``repeats`` is lower), each a loop of calls long enough
    to take ``target`` seconds. The garbage collector stays on (users run with it on); each
    sample starts after a collection. Returns (median, calls per sample, samples)."""
    perf = time.perf_counter
    t0 = perf()
    fn()  # warm-up (and a first estimate)
    once = perf() - t0
    number = max(1, int(target / once)) if once > 0 else 1000
    samples: list[float] = []
    started = perf()
    for _ in range(repeats):
        gc.collect()
        t0 = perf()
        for _ in range(number):
            fn()
        samples.append((perf() - t0) / number)
        if len(samples) >= min(3, repeats) and perf() - started > budget:
            break
    return statistics.median(samples), number, len(samples)


def _operations(peer: Any, kind: str, data: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    build, encode, decode, read_all = peer.build, peer.encode, peer.decode, peer.read_all
    obj = build(kind, data)
    payload = encode(obj)
    return {
        "encode": lambda: encode(obj),
        "build_encode": lambda: encode(build(kind, data)),
        "decode": lambda: decode(kind, payload),
        "decode_read": lambda: read_all(kind, decode(kind, payload)),
    }


def time_library(
    lib: str, *, fast: bool, seed: int, blob_size: int | None, only: list[str] | None = None
) -> dict[str, Any]:
    peer = load(lib)
    target, repeats, budget = (0.0, 1, 0.0) if fast else (0.05, 9, 6.0)
    out: dict[str, Any] = {"lib": lib, "version": version_of(lib), "results": {}, "sizes": {}}
    if hasattr(peer, "backend"):
        out["backend"] = peer.backend()
    for wl in workloads.workloads(fast=fast, blob_size=blob_size, seed=seed):
        if only and wl.name not in only:
            continue
        reason = unsupported(peer, wl.kind)
        if reason is not None:
            out["results"][wl.name] = {"na": reason}
            continue
        data = workloads.make(wl, seed)
        ops = _operations(peer, wl.kind, data)
        cells: dict[str, Any] = {}
        for op in OPS:
            median, number, samples = measure(
                ops[op], target=target, repeats=repeats, budget=budget
            )
            cells[op] = {"seconds": median, "number": number, "samples": samples}
        if wl.kind == "blob":
            # One plain copy of the payload, made in this same process, as the yardstick.
            view = memoryview(data["data"])
            median, number, samples = measure(
                view.tobytes, target=target, repeats=repeats, budget=budget
            )
            cells["copy"] = {"seconds": median, "number": number, "samples": samples}
        out["results"][wl.name] = cells
        out["sizes"][wl.name] = len(peer.encode(peer.build(wl.kind, data)))
        del ops, data
        gc.collect()
    return out


def dump_library(lib: str, out_dir: Path, *, fast: bool, seed: int,
                 blob_size: int | None) -> None:
    peer = load(lib)
    for wl in workloads.workloads(fast=fast, blob_size=blob_size, seed=seed):
        if unsupported(peer, wl.kind) is not None:
            continue
        data = workloads.make(wl, seed)
        (out_dir / f"{lib}.{wl.name}.bin").write_bytes(peer.encode(peer.build(wl.kind, data)))


def _peak_rss_bytes() -> int:
    """The process's resident-set high-water mark. Linux's ``VmHWM`` belongs to this program
    image; ``ru_maxrss`` would carry over the parent's mark across fork and exec, hiding
    everything below the runner's own peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def blob_memory(lib: str, op: str, source: Path) -> dict[str, Any]:
    """Peak memory that one blob ``op`` adds, in this fresh process. ``source`` holds the raw
    payload (for encode) or its encoding (for decode); reading it is one allocation, so the
    high-water mark before the operation is the baseline."""
    peer = load(lib)
    # Warm up: imports, codec compilation, first-call caches.
    tiny = peer.build("blob", {"data": b"warm-up"})
    peer.read_all("blob", peer.decode("blob", peer.encode(tiny)))
    payload = source.read_bytes()
    if op == "encode":
        obj = peer.build("blob", {"data": payload})
        gc.collect()
        before = _peak_rss_bytes()
        result: Any = peer.encode(obj)
    elif op == "decode":
        gc.collect()
        before = _peak_rss_bytes()
        result = peer.decode("blob", payload)
        peer.read_all("blob", result)
    else:
        raise ValueError(op)
    after = _peak_rss_bytes()
    return {"lib": lib, "op": op, "payload": len(payload), "peak_extra": after - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("time", "dump"):
        p = sub.add_parser(name)
        p.add_argument("--lib", required=True)
        p.add_argument("--fast", action="store_true")
        p.add_argument("--seed", type=int, default=workloads.DEFAULT_SEED)
        p.add_argument("--blob-size", type=int, default=None)
        if name == "dump":
            p.add_argument("--dir", type=Path, required=True)
        else:
            p.add_argument("--only", action="append", default=None)
    p = sub.add_parser("mem")
    p.add_argument("--lib", required=True)
    p.add_argument("--op", choices=("encode", "decode"), required=True)
    p.add_argument("--source", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "time":
        result = time_library(
            args.lib, fast=args.fast, seed=args.seed, blob_size=args.blob_size, only=args.only
        )
        json.dump(result, sys.stdout)
    elif args.command == "dump":
        dump_library(args.lib, args.dir, fast=args.fast, seed=args.seed,
                     blob_size=args.blob_size)
    else:
        json.dump(blob_memory(args.lib, args.op, args.source), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
