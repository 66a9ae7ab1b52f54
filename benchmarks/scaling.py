"""Scaling: decode time per element of a list of small messages, from a hundred to a million
elements, with the garbage collector paused during the decode (savestate's default from
``GC_PAUSE_SIZE`` bytes) and with it left running, in interleaved rounds.

    python -m benchmarks.scaling [--rounds N] [--largest N]

Times are CPU time (``time.process_time``) per element, the median of the rounds: a decode
that scales linearly shows the same figure on every row.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

from savestate import Protobuf, field, u32, u64
from savestate.codec import front


class Register(Protobuf):
    """One element: two numbers, as a device's register file holds them."""

    index: u32 = field(1)
    value: u64 = field(2)


class RegisterFile(Protobuf):
    """The list decoded."""

    registers: list[Register] = field(1)


def _decode_seconds(data: bytes, pause: bool) -> float:
    saved = front.GC_PAUSE_SIZE
    front.GC_PAUSE_SIZE = saved if pause else sys.maxsize
    try:
        start = time.process_time()
        value = RegisterFile.decode(data, max_size=len(data))
        elapsed = time.process_time() - start
    finally:
        front.GC_PAUSE_SIZE = saved
    del value
    return elapsed


def measure(rounds: int, largest: int) -> list[tuple[int, float, float]]:
    """(elements, ns per element with the collector paused, ns per element with it running)."""
    rows = []
    count = 100
    while count <= largest:
        state = RegisterFile(registers=[Register(index=i, value=i * 7919) for i in range(count)])
        data = bytes(state)
        del state
        gc.collect()
        repeat = max(1, 100_000 // count)
        paused: list[float] = []
        running: list[float] = []
        for r in range(rounds):  # interleaved, the order alternating
            for pause in ((True, False) if r % 2 == 0 else (False, True)):
                total = sum(_decode_seconds(data, pause) for _ in range(repeat))
                (paused if pause else running).append(total / repeat / count * 1e9)
        rows.append((count, statistics.median(paused), statistics.median(running)))
        count *= 10
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--largest", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print("| elements | collector paused | collector running |")
    print("|---|---|---|")
    for count, paused, running in measure(args.rounds, args.largest):
        print(f"| {count:,} | {paused:.0f} ns | {running:.0f} ns |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
