"""The benchmark's outputs: markdown tables (times, instruction counts, the targets) and a bar
chart (log scale) of the results."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .peers import PURE_PYTHON

__all__ = ["TARGETS", "chart", "markdown", "targets"]

OP_TITLES = {
    "encode": "encode",
    "build_encode": "build + encode",
    "decode": "decode",
    "decode_read": "decode + read all",
}

FASTEST_PURE = "the fastest pure-Python peer"

# The targets: (workload, operation, savestate's path, compared with, goal, factor).
# "at most" and "within": savestate's figure / the peer's <= factor;
# "at least": the peer's figure / savestate's >= factor (savestate that many times faster).
TARGETS: list[tuple[str, str, str, str, str, float]] = [
    ("large", "decode_read", "savestate", "google-upb", "at most", 1.0),
    ("large", "decode_read", "savestate-pure", FASTEST_PURE, "at least", 3.0),
    ("large", "build_encode", "savestate", "google-upb", "at most", 1.0),
    ("large", "build_encode", "savestate-pure", FASTEST_PURE, "at least", 3.0),
    ("large", "build_encode", "savestate-pure", "betterproto", "at least", 20.0),
    ("small", "build_encode", "savestate", "google-upb", "at most", 1.0),
    ("small", "build_encode", "savestate-pure", "google-upb", "within", 2.0),
    ("small", "decode_read", "savestate", "google-upb", "at most", 1.5),
    ("small", "decode_read", "savestate-pure", "google-upb", "within", 3.0),
    ("vm-tree", "encode", "savestate", "google-upb", "at most", 1.0),
    ("vm-tree", "decode", "savestate", "google-upb", "at most", 1.0),
    ("vm-tree", "encode", "savestate-pure", "google-python", "at least", 5.0),
    ("vm-tree", "decode", "savestate-pure", "google-python", "at least", 5.0),
]


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size * 0.9995:  # 999.6k shows as 1M, not 1e+03k
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def _seconds(results: dict[str, Any], lib: str, workload: str, op: str) -> float:
    return float(results["timings"][lib]["results"][workload][op]["seconds"])


def _time_ratio(results: dict[str, Any], a: str, b: str, workload: str, op: str,
                op_b: str | None = None) -> float:
    """``a``'s time over ``b``'s: the median of the per-round ratios of their samples (taken in
    the same round, so a slow moment weighs on both), else the ratio of the medians."""
    sa = results["timings"][a]["results"][workload][op].get("samples", [])
    sb = results["timings"][b]["results"][workload][op_b or op].get("samples", [])
    if sa and len(sa) == len(sb) and all(x > 0 for x in sb):
        return float(statistics.median(x / y for x, y in zip(sa, sb, strict=True)))
    return _seconds(results, a, workload, op) / _seconds(results, b, workload, op_b or op)


def _spread(results: dict[str, Any], lib: str, workload: str, op: str) -> float:
    """The interquartile range of a cell's samples over their median."""
    s = results["timings"][lib]["results"][workload][op]["samples"]
    if len(s) < 4:
        return 0.0
    q = statistics.quantiles(s, n=4)
    return (q[2] - q[0]) / statistics.median(s)


def _instructions(results: dict[str, Any], lib: str, workload: str, op: str) -> float | None:
    cell = results.get("instructions", {}).get(lib, {}).get(workload, {}).get(op)
    return None if cell is None else float(cell["instructions"])


def _na(results: dict[str, Any], lib: str, workload: str) -> str | None:
    """Why ``lib`` has no figures for ``workload`` (shown as n/a), or None."""
    cells = results["timings"][lib]["results"].get(workload)
    if cells is None:
        return "not run"
    reason: str | None = cells.get("na")
    return reason


# What the VM workloads measure, printed under their headings.
VM_NOTES = {
    "vm": (
        "The example VM's saved state (`examples/vm`, run deterministically for the number of "
        "1 ms steps shown, derived from the seed): the top-level `SavedStateUnits` record only, "
        "its units' blobs (`google.protobuf.Any`) kept opaque. This is one level: *encode* "
        "writes a record whose blobs are already bytes, *decode + read all* reads each unit's "
        "name, type URL and blob length, and no blob is parsed. See *vm-tree* for the whole "
        "tree."
    ),
    "vm-tree": (
        "The same saved state as a full tree: the units record, every unit's state, and the "
        "chipset's and the storage unit's child blobs (11 blobs, `google.protobuf.Any`, so 12 "
        "encoded messages with the record), in the "
        "terms of the VM's `.proto` files (written by `savestate.write_proto`; Google's "
        "classes compiled from them by protoc, betterproto's and betterproto2's by their protoc "
        "plugins, all during the run). *encode* starts from every level's message ready and "
        "encodes bottom-up, each blob's message into its `Any` slot in the parent, up to the "
        "record (what `Machine.save()` then `encode()` costs, minus asking the devices for "
        "their state); *build + encode* first makes every message from plain values; *decode* "
        "decodes the record and parses every blob, nested ones too, as the type its URL names; "
        "*decode + read all* then reads every present field of every message. Every library's "
        "builder, blob finder and reader is the same generic walk, compiled once per message "
        "class over that library's own schema information (savestate's schema model, Google's "
        "descriptors, betterproto's and betterproto2's field metadata), so the walk's cost is "
        "in every library's figures alike; Google's builder fills each message in place "
        "through its parent, as Google documents."
    ),
}


def _label(results: dict[str, Any], lib: str) -> str:
    t = results["timings"][lib]
    extra = []
    if "backend" in t:
        extra.append(f"{t['backend']} backend")
    if lib == "savestate":
        extra.append("C accelerator" if t.get("accelerated") else
                     "accelerator not built: pure Python")
    if lib == "savestate-pure":
        extra.append("`SAVESTATE_PURE=1`")
    return f"{lib} {t['version']}" + (f" ({', '.join(extra)})" if extra else "")


def _figure(results: dict[str, Any], metric: str, lib: str, wl: str, op: str) -> float | None:
    if lib not in results["libraries"] or _na(results, lib, wl) is not None:
        return None
    if metric == "time":
        return _seconds(results, lib, wl, op)
    return _instructions(results, lib, wl, op)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured ratios in time and in instructions (None where a
    library is missing or not counted) and whether each is met."""
    rows = []
    for wl, op, ours, theirs, goal, factor in TARGETS:
        row: dict[str, Any] = {"workload": wl, "op": op, "savestate": ours, "peer": theirs,
                               "goal": goal, "factor": factor}
        for metric in ("time", "instructions"):
            peer = theirs
            if theirs == FASTEST_PURE:
                figures = {lib: f for lib in PURE_PYTHON
                           if (f := _figure(results, metric, lib, wl, op)) is not None}
                peer = min(figures, key=figures.__getitem__) if figures else theirs
            mine = _figure(results, metric, ours, wl, op)
            other = _figure(results, metric, peer, wl, op)
            if mine is None or other is None or mine <= 0 or other <= 0:
                row[metric] = None
                continue
            if metric == "time":
                ratio = (_time_ratio(results, peer, ours, wl, op) if goal == "at least"
                         else _time_ratio(results, ours, peer, wl, op))
            else:
                ratio = other / mine if goal == "at least" else mine / other
            met = ratio >= factor if goal == "at least" else ratio <= factor
            row[metric] = {"peer": peer, "ratio": ratio, "met": met}
        rows.append(row)
    return rows


def _targets_table(results: dict[str, Any]) -> list[str]:
    out = [
        "| cell | savestate | target | measured in time | met | measured in instructions "
        "| met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in targets(results):
        cell = f"{row['workload']} {OP_TITLES[row['op']]}"
        target = f"{row['goal']} {row['factor']:g}x {row['peer']}"
        cells = []
        for metric in ("time", "instructions"):
            m = row[metric]
            if m is None:
                cells += ["-", "-"]
                continue
            peer = m["peer"]
            expr = (f"{peer} / {row['savestate']}" if row["goal"] == "at least"
                    else f"{row['savestate']} / {peer}")
            cells += [f"{fmt_ratio(m['ratio'])} ({expr})", "met" if m["met"] else "**missed**"]
        out.append(f"| {cell} | {row['savestate']} | {target} | " + " | ".join(cells) + " |")
    return out


_CLOCK_TEXT = {
    "cpu": "A sample is the worker's CPU time (`time.process_time`), so time spent waiting "
           "for a core while the machine is busy is not counted. ",
    "wall": "A sample is wall-clock time (`time.perf_counter`). ",
}


def _method(results: dict[str, Any]) -> list[str]:
    procs = results.get("processes", {})
    anchor = results.get("anchor", {})
    lines = [
        "How it was measured: every library is timed in the same run, in interleaved rounds. "
        "Two settings are fixed when a library is imported (Google's backend, and savestate's "
        "pure path), so the libraries share two long-lived worker processes:",
        "",
    ]
    for p, spec in procs.items():
        settings = ", ".join(f"`{k}={v}`" for k, v in spec["settings"].items())
        a = anchor.get(p)
        lines.append(f"- *{p}* ({settings}): {', '.join(spec['libraries'])}"
                     + (f"; anchor loop {fmt_time(a['seconds'])}" if a else "") + ".")
    lines += [
        "",
        f"Each worker first warms every operation up and chooses its calls per sample (about "
        f"{results.get('sample_seconds', 0):g} s a sample). Then, for {results['rounds']} "
        "rounds and for each workload in turn, one worker takes one sample of every operation "
        "of each of its libraries and then the other worker does the same: even rounds native "
        "then pure with the libraries in order, odd rounds pure then native with the libraries "
        "reversed. " + _CLOCK_TEXT.get(results.get("clock", "wall"), "") + "Each figure is the "
        "median of a cell's samples (one per round), and each ratio the median of the "
        "per-round ratios of the two cells' samples; each sample starts after a garbage "
        "collection and runs with the collector on. savestate runs in "
        "both workers, and each worker also times the same fixed pure-Python loop (the anchor) "
        "every round, so equal anchors show that the two processes ran at the same speed.",
        "",
    ]
    return lines


def _time_table(results: dict[str, Any], name: str, blob: bool) -> list[str]:
    libs = results["libraries"]
    out = ["| library | " + " | ".join(OP_TITLES.values()) + " |",
           "|---" * (len(OP_TITLES) + 1) + "|"]
    for lib in libs:
        if _na(results, lib, name) is not None:
            out.append(f"| {lib} | " + " | ".join(["n/a"] * len(OP_TITLES)) + " |")
            continue
        cells = []
        for op in OP_TITLES:
            s = _seconds(results, lib, name, op)
            cell = f"{fmt_time(s)} ({fmt_ratio(_time_ratio(results, lib, 'savestate', name, op))})"
            if blob:
                cell += f", {fmt_ratio(_time_ratio(results, lib, lib, name, op, 'copy'))} copy"
            cells.append(cell)
        out.append(f"| {lib} | " + " | ".join(cells) + " |")
    return out


def _count_table(results: dict[str, Any], name: str) -> list[str]:
    libs = results["libraries"]
    out = ["| library | " + " | ".join(OP_TITLES.values()) + " |",
           "|---" * (len(OP_TITLES) + 1) + "|"]
    for lib in libs:
        if _na(results, lib, name) is not None:
            out.append(f"| {lib} | " + " | ".join(["n/a"] * len(OP_TITLES)) + " |")
            continue
        cells = []
        for op in OP_TITLES:
            n = _instructions(results, lib, name, op)
            base = _instructions(results, "savestate", name, op)
            if n is None:
                cells.append("-")
            else:
                cells.append(fmt_count(n) + (f" ({fmt_ratio(n / base)})" if base else ""))
        out.append(f"| {lib} | " + " | ".join(cells) + " |")
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    libs = results["libraries"]
    out = [
        "# savestate benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; {m['python']}.  ",
        f"Command: `{results['command']}` (seed {results['seed']}, "
        f"{results['seconds']} s in all"
        + (f"; savestate at {results['revision']}" if results.get("revision") else "") + ").  ",
        "Libraries: " + ", ".join(_label(results, lib) for lib in libs) + ".",
        "",
        *_method(results),
        "Each cell: median time per call, then the time relative to savestate's (with its "
        "accelerator) in the same rounds (above 1x: savestate is faster). *build + encode* makes "
        "the library's objects from plain Python values and encodes them; *decode + read all* "
        "decodes and then reads every field and element (Google's upb backend materialises "
        "lazily, so compare on that column). Google's messages are built with its documented "
        "idioms: scalars assigned, repeated scalars extended, maps updated, and each element "
        "of a repeated message made in place with `add()`.",
        "",
    ]
    spreads = [
        _spread(results, lib, name, op)
        for name in results["workloads"] for lib in libs if _na(results, lib, name) is None
        for op in OP_TITLES
    ]
    if spreads and not results["fast"]:
        out += [f"Spread of the samples (interquartile range over the median): median "
                f"{statistics.median(spreads):.1%}, largest {max(spreads):.1%}.", ""]
    for name, spec in results["workloads"].items():
        size = results["timings"]["savestate"]["sizes"][name]
        desc = ", ".join(f"{k} {v}" for k, v in spec.items() if k != "kind")
        out += [f"## {name} ({desc}; {size:,} bytes encoded)", ""]
        blob = spec["kind"] == "blob"
        if name in VM_NOTES:
            out += [VM_NOTES[name], ""]
        out += _time_table(results, name, blob)
        out.append("")
        for lib in libs:
            reason = _na(results, lib, name)
            if reason is not None:
                out += [f"n/a for {lib}: {reason}.", ""]
        if blob:
            copies = ", ".join(
                f"{lib} {fmt_time(_seconds(results, lib, name, 'copy'))}" for lib in libs
            )
            out += [
                "One plain copy of the payload (`memoryview(payload).tobytes()`), timed beside "
                f"each library's operations: {copies}; *x copy* is the time over that copy.",
                "",
                "Peak memory a blob operation adds, in a fresh process (`VmHWM` after "
                "minus before; encode starts from a ready object, decode from the bytes):",
                "",
                "| library | encode | decode |",
                "|---|---|---|",
            ]
            for lib in libs:
                mem = results["memory"].get(lib, {})
                cells = []
                for op in ("encode", "decode"):
                    if op not in mem:
                        cells.append("-")
                        continue
                    extra, payload = mem[op]["peak_extra"], mem[op]["payload"]
                    cells.append(f"{extra / (1 << 20):.1f} MiB ({extra / payload:.2f} x payload)")
                out.append(f"| {lib} | " + " | ".join(cells) + " |")
            out.append("")
    if "instructions" in results:
        out += [
            "## Instructions per call (callgrind)",
            "",
            "Counted with `valgrind --tool=callgrind`, one process per library: each cell's "
            "operation runs n and then 2n times between two markers (after two warm-up calls), "
            "and the difference over n is the count per call, so start-up cancels. The "
            "machine's load cannot move these figures. In brackets: the count relative to "
            "savestate's (with its accelerator). The blob workload is left out (it is a copy of "
            "memory, whose cost the count does not show).",
            "",
        ]
        for name in results["workloads"]:
            if results["workloads"][name]["kind"] == "blob":
                continue
            out += [f"### {name}", "", *_count_table(results, name), ""]
    out += [
        "## Targets",
        "",
        "savestate with its accelerator against Google's C runtime (upb), and its pure-Python "
        "fallback (`SAVESTATE_PURE=1`, the savestate-pure row) against upb and the "
        "pure-Python peers. *at most* and *within*: savestate's figure over the peer's; *at "
        "least*: the peer's figure over savestate's. The fastest pure-Python peer is chosen "
        "per cell among " + ", ".join(PURE_PYTHON) + ", separately for time and for "
        "instructions.",
        "",
        *_targets_table(results),
        "",
    ]
    if results["fast"]:
        out += ["(Fast mode: tiny workloads and two rounds; these figures mean little.)", ""]
    return "\n".join(out)


def chart(results: dict[str, Any], path: Path) -> Path | None:
    """A grouped bar chart per workload (log scale); None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    libs = results["libraries"]
    names = list(results["workloads"])
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(6 * ncols, 5 * nrows), squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(names):]:
        ax.set_visible(False)
    width = 0.8 / len(libs)
    for ax, name in zip(axes, names, strict=False):
        for i, lib in enumerate(libs):
            if _na(results, lib, name) is not None:
                continue  # n/a: no bars (the table says why)
            values = [_seconds(results, lib, name, op) * 1e6 for op in OP_TITLES]
            xs = [j + (i - (len(libs) - 1) / 2) * width for j in range(len(OP_TITLES))]
            ax.bar(xs, values, width, label=lib, color=f"C{i}")  # same colour in every panel
        if results["workloads"][name]["kind"] == "blob":
            copy = _seconds(results, "savestate", name, "copy") * 1e6
            ax.axhline(copy, color="black", linestyle="--", linewidth=1, label="one plain copy")
        ax.set_yscale("log")
        ax.set_xticks(range(len(OP_TITLES)))
        ax.set_xticklabels(list(OP_TITLES.values()), fontsize=9)
        ax.set_title(f"{name} (µs per call, log scale)")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    m = results["machine"]
    fig.suptitle(f"savestate vs Python protobuf libraries, interleaved in one run: "
                 f"{m['python']}, {m['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
