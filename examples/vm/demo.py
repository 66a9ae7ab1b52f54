"""Run the example machine, save it to a snapshot file, restore it into a fresh machine, check.

    python -m examples.vm [--steps N] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import savestate
from savestate import snapshot
from savestate.state.units import SavedStateUnits

from .machine import ChipsetSavedState, Machine
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="simulated 1 ms steps (3000)")
    parser.add_argument("--out", type=Path, default=None, help="directory for the files")
    args = parser.parse_args(argv)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="savestate-vm-"))
    out.mkdir(parents=True, exist_ok=True)

    machine = Machine()
    machine.run(args.steps // 2)
    machine.uart.receive(b"hello, vm\r\n")  # typed at the serial console
    machine.run(args.steps - args.steps // 2)

    clocks = pit_clock(machine.cpu.now)
    path = out / "vm.snapshot"
    size = snapshot.write(path, machine)
    state = machine.save()

    proto_dir = out / "proto"
    write_proto = getattr(savestate, "write_proto", None)
    proto_files = write_proto(proto_dir) if write_proto is not None else None

    fresh = Machine()
    snapshot.restore(path, fresh)
    same = fresh.save() == state
    # Run both for another simulated second: they must stay identical.
    before = len(machine.uart.output)
    machine.run(1000)
    fresh.run(1000)
    same_after = fresh.save() == machine.save() and (
        fresh.uart.output == machine.uart.output[before:]
    )

    print(f"ran {args.steps} steps ({args.steps} ms of VM time, "
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
