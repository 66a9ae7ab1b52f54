"""Run the example machine, save it to a snapshot file, restore it into a fresh machine, check.

    python -m examples.vm [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import savestate
from savestate import snapshot
from savestate.state.units import SavedStateUnits

from .aio import AsyncMachine
from .machine import ChipsetSavedState
from .pit import pit_clock


def sizes(state: SavedStateUnits) -> list[tuple[str, str, int]]:
    """(unit or child name, proto type, encoded bytes) for every unit and chipset child."""
    rows: list[tuple[str, str, int]] = []
    for unit in state.units:
        rows.append((unit.name, unit.state.type_name, len(unit.state.value)))
        if unit.name == "chipset":
            chipset = unit.state.parse(ChipsetSavedState)
            for name, blob in chipset.devices:
                rows.append((f"  {unit.name}/{name}", blob.type_name, len(blob.value)))
    return rows


def steps(text: str) -> int:
    """A ``--steps`` value: a whole number of steps, none or more (argparse words the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.vm",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=steps, default=3000, metavar="N",
                        help="simulated 1 ms steps (3000)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="directory for the files")
    args = parser.parse_args(argv)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="savestate-vm-"))
    # A usage error, as argparse reports one (a line, status 2), not a traceback.
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        parser.error(f"argument --out: {out} exists and is not a directory")
    except OSError as exc:
        parser.error(f"argument --out: cannot create {out}: {exc.strerror or exc}")

    return asyncio.run(run(args.steps, out))


async def run(steps: int, out: Path) -> int:
    """The demo on an event loop: the machine has an async unit (its block queue drains before
    it saves), so its units are saved concurrently and restored with ``restore_async``."""
    machine = AsyncMachine()
    await machine.run_async(steps // 2)
    machine.uart.receive(b"hello, vm\r\n")  # typed at the serial console
    await machine.run_async(steps - steps // 2)

    clocks = pit_clock(machine.cpu.now)
    path = out / "vm.snapshot"
    state = await machine.save_async(timeout=10.0)
    size = snapshot.write(path, state)

    proto_dir = out / "proto"
    write_proto = getattr(savestate, "write_proto", None)
    proto_files = write_proto(proto_dir) if write_proto is not None else None

    fresh = AsyncMachine()
    await fresh.restore_async(snapshot.read(path).parse(SavedStateUnits), timeout=10.0)
    same = bytes(await fresh.save_async()) == bytes(state)
    # Run both for another simulated second: they must stay identical.
    before = len(machine.uart.output)
    await machine.run_async(1000)
    await fresh.run_async(1000)
    same_after = bytes(await fresh.save_async()) == bytes(await machine.save_async()) and (
        fresh.uart.output == machine.uart.output[before:]
    )

    print(f"ran {steps} steps ({steps} ms of VM time, "
          f"{clocks} PIT clocks); serial console so far:")
    for line in machine.uart.output[:before].decode(errors="replace").splitlines():
        print(f"  | {line}")
    print(f"\nsaved {len(state.units)} state units to {path} ({size} bytes):")
    for name, type_name, nbytes in sizes(state):
        print(f"  {name:<18} {type_name:<42} {nbytes:>6} bytes")
    if proto_files is not None:
        print(f"\nwrote {len(proto_files)} .proto files to {proto_dir}")
    else:
        print("\n(.proto output skipped: savestate.write_proto is not available)")
    print(f"\nrestored into a fresh machine: state equal: {same}; "
          f"equal after 1000 more steps: {same_after}")
    return 0 if same and same_after else 1


if __name__ == "__main__":
    sys.exit(main())
