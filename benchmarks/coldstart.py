"""Cold start: what declaring the example machine's classes and its first save and restore
cost in a new process, counted in instructions with callgrind (the machine's load cannot move
them), with the code cache off, empty (a program's first run) and warm (every later run).

    python -m benchmarks.coldstart [--source DIR]

``--source`` measures the package and examples in another directory (an export of an older
commit, say), so that two versions can be compared on the same machine.

Each figure is the difference between two processes that differ only in the phase measured:
importing savestate; then also importing the machine's modules (declaring its classes) and
building one machine; then also saving it and restoring the state into a second machine. A run
of each script before the counted ones writes the ``.pyc`` files, so compiling the library's
own modules is never counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_IMPORT = "import savestate, savestate.state.units\n"
_DECLARE = (
    "from examples.vm.machine import Machine\n"
    "from savestate.state.units import SavedStateUnits\n"
    "machine = Machine()\n"
)
_FIRST = (
    "data = bytes(machine.save())\n"
    "Machine().restore(SavedStateUnits.decode(data))\n"
)
_WARM_UP = "getattr(savestate, \"warm_up\", lambda: None)()\n"  # older versions have none
SCRIPTS = {
    "import": _IMPORT,
    "declare": _IMPORT + _DECLARE,
    "first save and restore": _IMPORT + _DECLARE + _FIRST,
    "warm_up()": _IMPORT + _DECLARE + _WARM_UP,
}


SOURCE = REPO


def _env(cache_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every process: repeatable counts
    env["SAVESTATE_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    return env


def instructions(script: str, cache_dir: str) -> int:
    """Instructions that one process running ``script`` executes, by callgrind."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-c", script],
            env=_env(cache_dir), cwd=SOURCE, capture_output=True, text=True, check=True,
        )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{proc.stderr}")
    return int(found.group(1))


def measure() -> dict[str, dict[str, int]]:
    """Instructions of each script in each cache mode: "off", "empty", "warm"."""
    results: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        warm = os.path.join(scratch, "warm")
        for script in SCRIPTS.values():  # the .pyc files, and the warm cache
            subprocess.run([sys.executable, "-c", script], env=_env(warm), cwd=SOURCE, check=True)
        for mode in ("off", "empty", "warm"):
            counts = {}
            for name, script in SCRIPTS.items():
                if mode == "empty":
                    folder = os.path.join(scratch, "empty")
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    folder = "" if mode == "off" else warm
                counts[name] = instructions(script, folder)
            results[mode] = counts
    return results


def report(results: dict[str, dict[str, int]]) -> str:
    """The table: each phase's instructions (millions) in each cache mode."""
    lines = [
        "| cache | declare | first save + restore | both | warm_up() instead of the first save |",
        "|---|---|---|---|---|",
    ]
    for mode, counts in results.items():
        declare = counts["declare"] - counts["import"]
        first = counts["first save and restore"] - counts["declare"]
        warm_up = counts["warm_up()"] - counts["declare"]
        lines.append(
            f"| {mode} | {declare / 1e6:.1f}M | {first / 1e6:.1f}M | "
            f"{(declare + first) / 1e6:.1f}M | {warm_up / 1e6:.1f}M |"
        )
    imports = results["warm"]["import"]
    lines.append(f"\n`import savestate, savestate.state.units` itself: {imports / 1e6:.1f}M.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart", description=__doc__)
    parser.add_argument("--source", type=Path, default=REPO,
                        help="the directory holding savestate/ and examples/ (default: here)")
    args = parser.parse_args(argv)
    global SOURCE
    SOURCE = args.source.resolve()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    print(report(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
