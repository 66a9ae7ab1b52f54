"""Where savestate's codec spends its time on the benchmark workloads.

    python -m benchmarks.profile_codec [--workload small|large] [--op encode|decode] [--lines]
    python -m benchmarks.profile_codec --fields [--workload small|large]
                                       [--op encode|build_encode|decode|decode_read]
                                       [--lib NAME ...] [--calls N]

Prints a cProfile summary of repeated encodes or decodes; with ``--lines`` (needs the
``line-profiler`` package) the time of every line of the generated codec functions and of the
runtime helpers they call.

With ``--fields`` it counts instructions instead (callgrind, as ``benchmarks.run --callgrind``
does, one process per library): the operation on the workload with every field empty, then
with each field alone (``workloads.field_alone``), for savestate on both paths and upb by
default. A field's row is what it adds to the empty state's count, so the rows show where a
library's instructions go and how each field compares across libraries.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import workloads
from .peers import LIBRARIES, available
from .peers import savestate_peer as peer

# The libraries a field profile compares unless told: savestate's two paths and upb.
FIELD_LIBS = ("savestate-pure", "savestate", "google-upb")


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


def field_counts(
    libs: list[str], workload: str, op: str, calls: int, *, fast: bool = False,
    seed: int = workloads.DEFAULT_SEED,
) -> dict[str, dict[str, int]]:
    """Instructions per call of ``op`` for each library, keyed ``"none"`` (every field empty),
    each field of ``workloads.DEVICE_FIELDS`` alone, and ``"all"`` (the workload itself)."""
    from .run import count_instructions

    names = {f"{workload}.{f}": f for f in ("none", *workloads.DEVICE_FIELDS)}
    names[workload] = "all"
    plan: list[list[Any]] = [[name, op, calls] for name in names]
    out: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="savestate-fields-") as tmp_name:
        tmp = Path(tmp_name)
        for lib in libs:
            counts = count_instructions(lib, plan, fast=fast, seed=seed,
                                        generated=tmp / "generated", work=tmp / lib)
            out[lib] = {names[name]: cells[op]["instructions"] for name, cells in counts.items()}
    return out


def field_table(counts: dict[str, dict[str, int]]) -> str:
    """``field_counts``'s figures as a Markdown table: the empty state, what each field adds to
    it, their sum, and the whole workload. The sum is over the whole by the costs that each field
    pays when it is alone and the whole pays once (growing the output, say), so the rows compare
    fields rather than add up exactly."""
    libs = list(counts)
    rows = ["| field | " + " | ".join(libs) + " |", "|---|" + "---:|" * len(libs)]

    def row(label: str, values: list[int]) -> None:
        rows.append(f"| {label} | " + " | ".join(f"{v:,}" for v in values) + " |")

    row("(empty state)", [counts[lib]["none"] for lib in libs])
    for f in workloads.DEVICE_FIELDS:
        row(f"+ {f}", [counts[lib][f] - counts[lib]["none"] for lib in libs])
    row("sum", [counts[lib]["none"] + sum(counts[lib][f] - counts[lib]["none"]
                                          for f in workloads.DEVICE_FIELDS) for lib in libs])
    row("whole workload", [counts[lib]["all"] for lib in libs])
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_codec")
    parser.add_argument("--workload", choices=("small", "large"), default="small")
    parser.add_argument("--op", choices=("encode", "build_encode", "decode", "decode_read"),
                        default="encode")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--lines", action="store_true", help="line-level (line-profiler)")
    parser.add_argument("--fields", action="store_true",
                        help="instructions (callgrind) of each field alone, per library")
    parser.add_argument("--lib", action="append", choices=tuple(LIBRARIES), metavar="NAME",
                        help="with --fields: a library to count (one of %(choices)s)")
    parser.add_argument("--calls", type=int, default=None,
                        help="with --fields: calls counted per cell")
    parser.add_argument("--fast", action="store_true", help="with --fields: tiny workloads")
    args = parser.parse_args(argv)
    if args.fields:
        libs = args.lib or [lib for lib in FIELD_LIBS if available(lib)]
        calls = args.calls or (20 if args.workload == "small" or args.fast else 2)
        counts = field_counts(libs, args.workload, args.op, calls, fast=args.fast)
        print(f"Instructions per call of {args.op} on the {args.workload} workload, with each "
              "field alone:\n")
        print(field_table(counts))
        return 0
    if args.op not in ("encode", "decode"):
        parser.error("--op build_encode and decode_read need --fields")
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
