"""The benchmark's outputs: a markdown table and a bar chart (log scale) of the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .peers import PURE_PYTHON

__all__ = ["chart", "markdown", "targets"]

OP_TITLES = {
    "encode": "encode",
    "build_encode": "build + encode",
    "decode": "decode",
    "decode_read": "decode + read all",
}


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def _seconds(results: dict[str, Any], lib: str, workload: str, op: str) -> float:
    return float(results["timings"][lib]["results"][workload][op]["seconds"])


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
        "classes compiled from them by protoc, betterproto's by its protoc plugin, both during "
        "the run). *encode* starts from every level's message ready and encodes bottom-up, each "
        "blob's message into its `Any` slot in the parent, up to the record (what "
        "`Machine.save()` then `encode()` costs, minus asking the devices for their state); "
        "*build + encode* first makes every message from plain values; *decode* decodes the "
        "record and parses every blob, nested ones too, as the type its URL names; *decode + "
        "read all* then reads every present field of every message. Every library's builder, "
        "blob finder and reader is the same generic walk, compiled once per message class over "
        "that library's own schema information (savestate's schema model, Google's "
        "descriptors, betterproto's field metadata), so the walk's cost is in every library's "
        "figures alike."
    ),
}


def _label(results: dict[str, Any], lib: str) -> str:
    t = results["timings"][lib]
    return f"{lib} {t['version']}"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """The issue's targets: (what, measured, goal, met), from the savestate side."""
    libs = results["libraries"]
    rows: list[tuple[str, str, str, bool | None]] = []
    pure = [lib for lib in PURE_PYTHON if lib in libs]
    for wl in ("small", "large"):
        for op in ("encode", "decode_read"):
            ss = _seconds(results, "savestate", wl, op)
            if pure:
                best = min(pure, key=lambda lib: _seconds(results, lib, wl, op))
                x = _seconds(results, best, wl, op) / ss
                rows.append((f"{wl} {OP_TITLES[op]}: fastest pure-Python peer ({best}) / "
                             "savestate", fmt_ratio(x), ">= 3x", x >= 3))
            if "betterproto" in libs:
                x = _seconds(results, "betterproto", wl, op) / ss
                rows.append((f"{wl} {OP_TITLES[op]}: betterproto / savestate", fmt_ratio(x),
                             ">= 20x", x >= 20))
    if "google-upb" in libs:
        for op, goal in (("build_encode", 2.0), ("decode_read", 3.0)):
            x = _seconds(results, "savestate", "small", op) / _seconds(
                results, "google-upb", "small", op)
            rows.append((f"small {OP_TITLES[op]}: savestate / google-upb", fmt_ratio(x),
                         f"<= {goal:g}x", x <= goal))
    copy = _seconds(results, "savestate", "blob", "copy")
    for op in ("encode", "decode"):
        x = _seconds(results, "savestate", "blob", op) / copy
        rows.append((f"blob {op}: savestate / one plain copy", fmt_ratio(x), "<= 1.2x",
                     x <= 1.2))
    mem = results["memory"].get("savestate", {})
    for op in ("encode", "decode"):
        if op in mem:
            x = mem[op]["peak_extra"] / mem[op]["payload"]
            rows.append((f"blob {op}: savestate peak extra memory / payload", f"{x:.2f}",
                         "<= 1 copy", x <= 1.05))
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    libs = results["libraries"]
    out = [
        "# savestate benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; {m['python']}.  ",
        f"Command: `{results['command']}` (seed {results['seed']}, "
        f"{results['seconds']} s in all).  ",
        "Libraries: " + ", ".join(
            _label(results, lib)
            + (f" ({results['timings'][lib]['backend']} backend)"
               if "backend" in results["timings"][lib] else "")
            for lib in libs
        ) + ".",
        "",
        "Each cell: median time per call, then the time relative to savestate's in the same "
        "run (above 1x: savestate is faster). *build + encode* makes the library's objects "
        "from plain Python values and encodes them; *decode + read all* decodes and then "
        "reads every field and element (Google's upb backend materialises lazily, so compare "
        "on that column).",
        "",
    ]
    for name, spec in results["workloads"].items():
        size = results["timings"]["savestate"]["sizes"][name]
        desc = ", ".join(f"{k} {v}" for k, v in spec.items() if k != "kind")
        out += [f"## {name} ({desc}; {size:,} bytes encoded)", ""]
        blob = spec["kind"] == "blob"
        if name in VM_NOTES:
            out += [VM_NOTES[name], ""]
        header = "| library | " + " | ".join(OP_TITLES[op] for op in OP_TITLES) + " |"
        out += [header, "|---" * (len(OP_TITLES) + 1) + "|"]
        left_out: list[tuple[str, str]] = []
        for lib in libs:
            reason = _na(results, lib, name)
            if reason is not None:
                left_out.append((lib, reason))
                out.append(f"| {lib} | " + " | ".join(["n/a"] * len(OP_TITLES)) + " |")
                continue
            cells = []
            for op in OP_TITLES:
                s = _seconds(results, lib, name, op)
                ratio = s / _seconds(results, "savestate", name, op)
                cell = f"{fmt_time(s)} ({fmt_ratio(ratio)})"
                if blob:
                    copy = _seconds(results, lib, name, "copy")
                    cell += f", {fmt_ratio(s / copy)} copy"
                cells.append(cell)
            out.append(f"| {lib} | " + " | ".join(cells) + " |")
        out.append("")
        for lib, reason in left_out:
            out += [f"n/a for {lib}: {reason}.", ""]
        if blob:
            copies = ", ".join(
                f"{lib} {fmt_time(_seconds(results, lib, name, 'copy'))}" for lib in libs
            )
            out += [
                "One plain copy of the payload (`memoryview(payload).tobytes()`) in each "
                f"library's process: {copies}; *x copy* is the time over that process's copy.",
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
    rows = targets(results)
    if rows:
        out += ["## The issue's targets", "", "| target | measured | goal | met |",
                "|---|---|---|---|"]
        for what, measured, goal, met in rows:
            out.append(f"| {what} | {measured} | {goal} | {'yes' if met else 'no'} |")
        out.append("")
        if results["fast"]:
            out += ["(Fast mode: tiny workloads and one round; these figures mean little.)", ""]
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
    fig.suptitle(f"savestate vs Python protobuf libraries: {m['python']}, {m['cpu']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
