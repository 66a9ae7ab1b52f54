"""What the runner's worker processes do (``python -m benchmarks.worker ...``).

Two settings are fixed per process when a library is imported (Google's backend and savestate's
pure path, see ``benchmarks.peers``), so the runner starts one long-lived worker per process
kind and has it time its libraries in rounds that it interleaves with the other worker's.
Commands:

- ``serve --process NAME``: host that process's libraries and answer requests, one JSON line
  each way: ``setup`` (import the libraries, make the workloads, build each library's objects
  and bytes), ``dump`` (write each library's bytes for the check and return its reader's
  checksums), ``calibrate`` (warm every operation up and choose its calls per sample),
  ``sample`` (one timed sample of each cell asked for) and ``quit``;
- ``mem``: peak memory of blob operations, in this fresh process;
- ``count``: run each cell's operation N and then 2N times between markers, under callgrind
  (the runner starts it under valgrind and reads the counts between the markers).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from . import workloads
from .peers import PROCESSES, load, unsupported

__all__ = ["CLOCKS", "MARKER", "OPS", "anchor", "calibrate", "sample"]

# The operations timed for every library and workload, in table order.
OPS = ("encode", "build_encode", "decode", "decode_read")

_DISTRIBUTIONS = {
    "google-upb": "protobuf",
    "google-python": "protobuf",
    "pure-protobuf": "pure-protobuf",
    "betterproto": "betterproto",
    "betterproto2": "betterproto2",
}


def version_of(lib: str) -> str:
    if lib.startswith("savestate"):
        import savestate

        return savestate.__version__
    try:
        return metadata.version(_DISTRIBUTIONS[lib])
    except metadata.PackageNotFoundError:
        return "?"


def anchor() -> int:
    """A fixed pure-Python loop, timed in every process each round: equal figures say that the
    processes ran at the same speed."""
    n = 0
    for i in range(1000):
        n += i * i
    return n


def calibrate(fn: Callable[[], Any], target: float) -> int:
    """Calls per sample so that a sample takes about ``target`` seconds (at least one), after
    a warm-up call (first-call compilation and caches)."""
    fn()
    if target <= 0:
        return 1
    perf = time.perf_counter
    number = 1
    while True:
        t0 = perf()
        for _ in range(number):
            fn()
        spent = perf() - t0
        if spent >= target / 4 or number >= 1 << 20:
            return max(1, round(target * number / spent)) if spent > 0 else number
        number *= 4


def _freeze() -> None:
    """Move everything made so far (the modules, the workloads' objects and bytes) out of the
    collector's view, so that the collection before each sample is cheap and the same whatever
    else the process hosts. The collector stays on for what the operations make."""
    gc.collect()
    gc.freeze()


#: The clocks a sample can be taken with: the process's CPU time (the default: time spent
#: waiting for a core on a busy machine is not counted), or the wall clock.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def sample(fn: Callable[[], Any], number: int, clock: str = "cpu") -> float:
    """Seconds per call over ``number`` calls, after a collection. The garbage collector stays
    on, as users run with it."""
    gc.collect()
    now = CLOCKS[clock]
    t0 = now()
    for _ in range(number):
        fn()
    return (now() - t0) / number


def _operations(peer: Any, kind: str, data: dict[str, Any],
                obj: Any, payload: bytes) -> dict[str, Callable[[], Any]]:
    build, encode, decode, read_all = peer.build, peer.encode, peer.decode, peer.read_all
    return {
        "encode": lambda: encode(obj),
        "build_encode": lambda: encode(build(kind, data)),
        "decode": lambda: decode(kind, payload),
        "decode_read": lambda: read_all(kind, decode(kind, payload)),
    }


class Host:
    """One process's libraries, their workloads' objects and bytes, and the timed operations."""

    def __init__(self, libs: list[str], *, fast: bool, seed: int, blob_size: int | None,
                 only: list[str] | None = None) -> None:
        self.libs = libs
        self.peers = {lib: load(lib) for lib in libs}
        options: dict[str, Any] = {"fast": fast, "blob_size": blob_size, "seed": seed}
        self.wls = (workloads.workloads(**options) if only is None
                    else [workloads.named(name, **options) for name in only])
        self.ops: dict[tuple[str, str, str], Callable[[], Any]] = {}
        self.payloads: dict[tuple[str, str], bytes] = {}
        self.info: dict[str, Any] = {}
        for lib, peer in self.peers.items():
            info: dict[str, Any] = {"version": version_of(lib), "na": {}, "sizes": {}}
            if hasattr(peer, "backend"):
                info["backend"] = peer.backend()
            if lib.startswith("savestate"):
                import savestate

                info["accelerated"] = savestate.ACCELERATED
            self.info[lib] = info
        for wl in self.wls:
            data = workloads.make(wl, seed)
            for lib, peer in self.peers.items():
                reason = unsupported(peer, wl.kind)
                if reason is not None:
                    self.info[lib]["na"][wl.name] = reason
                    continue
                obj = peer.build(wl.kind, data)
                payload = peer.encode(obj)
                self.payloads[lib, wl.name] = payload
                self.info[lib]["sizes"][wl.name] = len(payload)
                for op, fn in _operations(peer, wl.kind, data, obj, payload).items():
                    self.ops[lib, wl.name, op] = fn
                if wl.kind == "blob":
                    # One plain copy of the payload, timed beside the library's operations.
                    self.ops[lib, wl.name, "copy"] = memoryview(data["data"]).tobytes
            del data
        gc.collect()

    def dump(self, out_dir: Path) -> dict[str, dict[str, int]]:
        """Write each library's bytes as ``lib.workload.bin``; each reader's checksums."""
        sums: dict[str, dict[str, int]] = {lib: {} for lib in self.libs}
        for (lib, name), payload in self.payloads.items():
            (out_dir / f"{lib}.{name}.bin").write_bytes(payload)
            kind = next(wl.kind for wl in self.wls if wl.name == name)
            peer = self.peers[lib]
            sums[lib][name] = peer.read_all(kind, peer.decode(kind, payload))
        return sums

    def cells(self) -> list[list[str]]:
        return [list(key) for key in self.ops]


def serve(process: str, reply: TextIO) -> None:
    """Answer the runner's requests (one JSON line each) until ``quit``."""
    host: Host | None = None
    libs = list(PROCESSES[process][1])
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        out: Any
        if cmd == "setup":
            host = Host([lib for lib in libs if lib in req["libs"]], fast=req["fast"],
                        seed=req["seed"], blob_size=req["blob_size"])
            out = {"info": host.info, "cells": host.cells()}
        elif cmd == "quit":
            break
        else:
            assert host is not None, "setup comes first"
            if cmd == "dump":
                out = {"sums": host.dump(Path(req["dir"]))}
            elif cmd == "calibrate":
                out = {"numbers": [calibrate(host.ops[lib, wl, op], req["target"])
                                   for lib, wl, op in req["cells"]],
                       "anchor": calibrate(anchor, req["target"])}
                _freeze()
            elif cmd == "sample":
                clock = req["clock"]
                out = {"seconds": [sample(host.ops[lib, wl, op], number, clock)
                                   for lib, wl, op, number in req["cells"]]}
                if "anchor" in req:
                    out["anchor"] = sample(anchor, req["anchor"], clock)
            else:
                raise ValueError(f"unknown request {cmd!r}")
        reply.write(json.dumps(out) + "\n")
        reply.flush()


# -- peak memory ------------------------------------------------------------------------------


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


def _reset_peak() -> bool:
    """Reset the high-water mark to the current resident set (Linux's ``clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def blob_memory(lib: str, ops: list[str], raw: Path, encoded: Path) -> dict[str, Any]:
    """Peak memory that each blob operation in ``ops`` adds, in this fresh process. ``raw``
    holds the payload (encode starts from an object holding it), ``encoded`` its encoding
    (decode starts from those bytes); reading a file is one allocation, so the high-water mark
    before the operation is the baseline. Between operations the mark is reset; where it cannot
    be, the operations not measured are returned in ``left`` (for a fresh process each)."""
    peer = load(lib)
    # Warm up: imports, codec compilation, first-call caches.
    tiny = peer.build("blob", {"data": b"warm-up"})
    peer.read_all("blob", peer.decode("blob", peer.encode(tiny)))
    out: dict[str, Any] = {"lib": lib, "results": {}, "left": []}
    for i, op in enumerate(ops):
        if i and not _reset_peak():
            out["left"] = ops[i:]
            break
        result: Any = None
        if op == "encode":
            payload = raw.read_bytes()
            obj = peer.build("blob", {"data": payload})
            gc.collect()
            before = _peak_rss_bytes()
            result = peer.encode(obj)
        elif op == "decode":
            payload = encoded.read_bytes()
            gc.collect()
            before = _peak_rss_bytes()
            result = peer.decode("blob", payload)
            peer.read_all("blob", result)
        else:
            raise ValueError(op)
        after = _peak_rss_bytes()
        out["results"][op] = {"payload": len(payload), "peak_extra": after - before}
        del result, payload
        obj = None
        gc.collect()
    return out


# -- instruction counts -----------------------------------------------------------------------

#: The call at which the runner's callgrind dumps its counters (``--dump-before``): nothing in
#: the libraries calls it, so the counts between two markers are exactly the code between them.
MARKER = "os_getppid"


def count(lib: str, plan: list[list[Any]], *, fast: bool, seed: int) -> list[Any]:
    """Run each planned cell ``[workload, op, n]`` n times and then 2n times, each run between
    markers, and a collection between markers after each run; the labels of the segments
    between markers, in order (the first is the set-up)."""
    host = Host([lib], fast=fast, seed=seed, blob_size=None,
                only=sorted({name for name, _, _ in plan}))
    fns = [host.ops[lib, name, op] for name, op, _ in plan]
    for fn in fns:  # warm up (first-call compilation and caches), twice
        fn()
        fn()
    _freeze()
    marker = os.getppid
    labels: list[Any] = ["setup"]
    for (name, op, n), fn in zip(plan, fns, strict=True):
        for calls in (n, 2 * n):
            marker()
            for _ in range(calls):
                fn()
            labels.append([name, op, calls])
            marker()
            gc.collect()
            labels.append("collect")
    marker()
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--process", choices=list(PROCESSES), required=True)
    p = sub.add_parser("mem")
    p.add_argument("--lib", required=True)
    p.add_argument("--op", action="append", choices=("encode", "decode"), required=True)
    p.add_argument("--raw", type=Path, required=True)
    p.add_argument("--encoded", type=Path, required=True)
    p = sub.add_parser("count")
    p.add_argument("--lib", required=True)
    p.add_argument("--plan", type=Path, required=True, help="JSON: [[workload, op, n], ...]")
    p.add_argument("--labels", type=Path, required=True, help="where the labels go (JSON)")
    p.add_argument("--fast", action="store_true")
    p.add_argument("--seed", type=int, default=workloads.DEFAULT_SEED)
    args = parser.parse_args(argv)
    # Replies go to the original stdout; anything a library prints goes to stderr.
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if args.command == "serve":
        serve(args.process, reply)
    elif args.command == "mem":
        json.dump(blob_memory(args.lib, args.op, args.raw, args.encoded), reply)
    else:
        labels = count(args.lib, json.loads(args.plan.read_text()), fast=args.fast,
                       seed=args.seed)
        args.labels.write_text(json.dumps(labels))
    reply.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
