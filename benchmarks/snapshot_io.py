"""Snapshot file speed and memory against the raw file operations they are made of.

    python benchmarks/snapshot_io.py [--size 1G] [--rounds 5] [--dir DIR]

The state is a root holding one large ``bytes`` field (a guest's memory, say) and a counter. In
one process, round after round, each operation is timed next to its baseline:

- write: ``snapshot.write`` against a raw write of the same bytes, ``fsync``, and the SHA-256
  of them (what any checked, durable file costs). Both replace the file the previous round
  wrote, and both free its blocks and pages on the way: the raw write when ``open(..., "wb")``
  truncates it, the snapshot when its new file is renamed over it (each step measured on its
  own takes the same time, about 0.27 s for 1 GiB on ext4);
- read: ``snapshot.read`` against a raw read of the file and its SHA-256; and "read + parse",
  the state read from the file into the root the way a program reads it
  (``snapshot.read_state``, which reads the large field straight into its own ``bytes``),
  against the same baseline.

The medians are reported, with their ratios. Reads come from the page cache, as the file was
just written. Peak memory is measured in a fresh process for each operation: the growth of
the peak resident memory (``VmHWM``) over what the process held before it, less what the
operation returns.
Files are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from savestate import field, savedstate, snapshot, u64  # noqa: E402 -- after the path set-up

OPERATIONS = ("raw write", "snapshot.write", "raw read", "snapshot.read", "read + parse")


@savedstate(package="bench.snapshot_io")
class GuestMemory:
    generation: u64 = field(1)
    data: bytes = field(2)


def parse_size(text: str) -> int:
    """``"1G"`` → 1073741824 (binary ``K``, ``M``, ``G`` suffixes)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def make_data(size: int) -> bytes:
    """``size`` bytes of random-looking content (1 MiB of random bytes repeated)."""
    block = os.urandom(min(size, 1 << 20))
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def raw_write(path: Path, data: bytes) -> None:
    """A raw write of ``data``, its fsync and its SHA-256: the baseline of a write."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    hashlib.sha256(data).digest()


def raw_read(path: Path) -> bytes:
    """A raw read of the whole file and its SHA-256: the baseline of a read."""
    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).digest()
    return data


def operations(directory: Path, state: GuestMemory, size: int) -> dict[str, Callable[[], Any]]:
    raw_path = directory / "raw.bin"
    snap_path = directory / "state.snapshot"
    limit = size + (1 << 20)
    return {
        "raw write": lambda: raw_write(raw_path, state.data),
        "snapshot.write": lambda: snapshot.write(snap_path, state, max_size=limit),
        "raw read": lambda: raw_read(raw_path),
        "snapshot.read": lambda: snapshot.read(snap_path, max_size=limit),
        "read + parse": lambda: snapshot.read_state(snap_path, GuestMemory, max_size=limit),
    }


def time_rounds(directory: Path, size: int, rounds: int) -> dict[str, list[float]]:
    state = GuestMemory(generation=1, data=make_data(size))
    ops = operations(directory, state, size)
    ops["raw write"]()  # the files the reads read
    ops["snapshot.write"]()
    times: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    for r in range(rounds):
        # Each operation next to its baseline; the order flips every round against drift.
        pairs = [("raw write", "snapshot.write"), ("raw read", "snapshot.read"),
                 ("raw read", "read + parse")]
        for first, second in pairs:
            for name in (first, second) if r % 2 == 0 else (second, first):
                start = time.perf_counter()
                result = ops[name]()
                times[name].append(time.perf_counter() - start)
                del result
    return times


def _peak_rss() -> int:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited
    from the parent across ``exec``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


def measure_memory(directory: Path, size: int, name: str) -> dict[str, int]:
    """In this (fresh) process: the growth of the peak RSS during ``name``, in bytes. A read
    reads the files the timing rounds left; a write first builds its state."""
    writes = name in ("raw write", "snapshot.write")
    state = GuestMemory(generation=1, data=make_data(size) if writes else b"")
    ops = operations(directory, state, size)
    before = _peak_rss()
    result = ops[name]()
    peak = _peak_rss()
    kept = 0 if writes else size
    del result
    return {"growth": peak - before, "beyond_result": peak - before - kept}


def memory_rounds(directory: Path, size: int) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name in OPERATIONS:
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", name, "--size", str(size),
             "--dir", str(directory)],
            check=True, capture_output=True, text=True)
        out[name] = json.loads(proc.stdout)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30,
                        help="the size of the state's bytes field (default 1G)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the files go (default: a temporary directory)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(measure_memory(args.dir, args.size, args.memory_child)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="snapshot-io-") as tmp:
        directory = Path(tmp)
        times = time_rounds(directory, args.size, args.rounds)
        medians = {name: statistics.median(values) for name, values in times.items()}
        memory = {} if args.no_memory else memory_rounds(directory, args.size)
    ratios = {
        "write / (raw write + fsync + sha256)": medians["snapshot.write"] / medians["raw write"],
        "read / (raw read + sha256)": medians["snapshot.read"] / medians["raw read"],
        "read + parse / (raw read + sha256)": medians["read + parse"] / medians["raw read"],
    }
    if args.json:
        print(json.dumps({"size": args.size, "rounds": args.rounds, "median_s": medians,
                          "ratios": ratios, "memory": memory}, indent=2))
        return 0
    mib = 1 << 20
    print(f"{args.size / mib:.0f} MiB, {args.rounds} rounds, medians")
    for name in OPERATIONS:
        line = f"  {name:<16} {medians[name]:8.3f} s"
        if name in memory:
            m = memory[name]
            line += (f"   peak memory +{m['growth'] / mib:7.0f} MiB "
                     f"({m['beyond_result'] / mib:+.0f} MiB beyond what it returns)")
        print(line)
    for label, ratio in ratios.items():
        print(f"  {label:<40} {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
