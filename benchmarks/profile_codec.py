"""Where savestate's codec spends its time on the benchmark workloads.

    python -m benchmarks.profile_codec [--workload small|large] [--op encode|decode] [--lines]

Prints a cProfile summary of repeated encodes or decodes; with ``--lines`` (needs the
``line-profiler`` package) the time of every line of the generated codec functions and of the
runtime helpers they call.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from typing import Any

from . import workloads
from .peers import savestate_peer as peer


def _functions() -> list[Any]:
    """The generated encode/decode functions of every compiled class (and the helpers their
    modules define) and the runtime helpers."""
    from savestate.codec import runtime, wire
    from savestate.model.registry import declared, declared_info

    found: dict[int, Any] = {}
    for cls in declared():
        codec = declared_info(cls).codec
        if codec is None:
            continue
        for fn in (codec._encode, codec._decode):
            found[id(fn)] = fn
            for value in fn.__globals__.values():
                if callable(value) and getattr(value, "__name__", "").startswith(
                        ("decode_", "encode_")):
                    found[id(value)] = value
    for fn in (runtime.write_varint, runtime.read_varint_at, wire.read_varint):
        found[id(fn)] = fn
    return list(found.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_codec")
    parser.add_argument("--workload", choices=("small", "large"), default="small")
    parser.add_argument("--op", choices=("encode", "decode"), default="encode")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--lines", action="store_true", help="line-level (line-profiler)")
    args = parser.parse_args(argv)
    wl = next(w for w in workloads.workloads() if w.name == args.workload)
    obj = peer.build(wl.kind, workloads.make(wl))
    payload = peer.encode(obj)
    peer.decode(wl.kind, payload)  # compile the codec
    rounds = args.rounds or (20_000 if wl.name == "small" else 100)
    if args.op == "encode":
        def run() -> None:
            for _ in range(rounds):
                obj.encode()
    else:
        def run() -> None:
            for _ in range(rounds):
                peer.read_all(wl.kind, peer.decode(wl.kind, payload))
    if args.lines:
        from line_profiler import LineProfiler

        lp = LineProfiler()
        for fn in _functions():
            lp.add_function(fn)
        lp.runcall(run)
        lp.print_stats(stream=sys.stdout, stripzeros=True)
        return 0
    prof = cProfile.Profile()
    prof.runcall(run)
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
