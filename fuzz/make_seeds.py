"""Write the seed corpora from real encoded states of the example VM: ``python -m fuzz.make_seeds``.

Each target's directory ``fuzz/corpus/<target>/`` gets one file per seed, named after what it
holds. The states come from the example machine run for a few step counts (so devices are in
different phases: booting, serving interrupts, doing disk I/O) and from the quickstart. A seed
larger than ``MAX_SEED`` bytes is skipped, one larger than ``BIG_SEED`` is kept for the last
step count only, and a repeat of an earlier seed is skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from savestate import SavedStateBlob, snapshot

from .targets import ROOTS

CORPUS = Path(__file__).parent / "corpus"
MAX_SEED = 10_000
BIG_SEED = 2_000
STEPS = (0, 12, 40, 400)


def _states() -> list[tuple[str, object]]:
    """(label, root value) pairs: every device root and the whole machine, at a few times."""
    from examples.quickstart import ExpectIcw3, Ready, SavedPic, SavedState
    from examples.vm.machine import Machine

    out: list[tuple[str, object]] = [(
        "quickstart",
        SavedState(
            primary=SavedPic(init=Ready(), icw2=0x08, imr=0xFB),
            secondary=SavedPic(init=ExpectIcw3(icw4_needed=True), icw2=0x70, imr=0xFF),
            ticks=1000, pending=[0, 8],
        ),
    )]
    for steps in STEPS:
        machine = Machine()
        machine.run(steps)
        if steps == STEPS[-1]:
            machine.uart.receive(b"hi\r\n")
            machine.run(20)
        whole = machine.save()
        out.append((f"machine-{steps}", whole))
        for unit in whole.units:
            named = _parse_any(unit.state)
            out.append((f"{unit.name}-{steps}", named))
            children = getattr(named, "devices", None) or getattr(named, "backends", None)
            for name, blob in children or []:
                out.append((f"{name}-{steps}", _parse_any(blob)))
            controller = getattr(named, "controller", None)
            if controller is not None:
                out.append((f"controller-{steps}", controller))
    return out


def _parse_any(blob: SavedStateBlob) -> object:
    from savestate.model.registry import root_for_url

    cls = root_for_url(blob.type_url)
    assert cls is not None, blob.type_url
    return blob.parse(cls)


def seeds() -> dict[str, dict[str, bytes]]:
    """target -> {file name: bytes}."""
    corpora: dict[str, dict[str, bytes]] = {
        "decode_root": {}, "blob_parse": {}, "restore_units": {}, "read_snapshot": {},
        "raw_decode": {}, "json_to": {}, "json_from": {}, "cli_read": {},
    }
    seen: set[bytes] = set()
    for label, value in _states():
        cls = type(value)
        data = value.encode()  # type: ignore[attr-defined]
        if data in seen or len(data) > MAX_SEED:
            continue
        if label.startswith("machine-"):
            corpora["restore_units"][label] = data
        if len(data) > BIG_SEED and not label.endswith(f"-{STEPS[-1]}"):
            continue  # big states (the RAM disk) once: they mutate slowly
        seen.add(data)
        selector = bytes([ROOTS.index(cls)])
        blob = SavedStateBlob.new(value)
        corpora["decode_root"][label] = selector + data
        corpora["blob_parse"][label] = selector + bytes(blob)
        corpora["raw_decode"][label] = data
        corpora["read_snapshot"][label] = b"\x01" + snapshot.pack(blob)
        corpora["json_to"][label] = selector + data
        corpora["json_from"][label] = selector + value.to_json().encode()  # type: ignore[attr-defined]
        # (reader mode: file, standard input, FIFO; max_size 64 * 255 bytes)
        corpora["cli_read"][label] = bytes([len(data) % 3, 255]) + snapshot.pack(blob)
    # A blob of a blob of a blob, and an empty snapshot.
    inner = SavedStateBlob.new(SavedStateBlob.new(SavedStateBlob()))
    corpora["blob_parse"]["blob-of-blob"] = bytes([ROOTS.index(SavedStateBlob)
                                                  if SavedStateBlob in ROOTS else 0]) + \
        bytes(inner)
    corpora["read_snapshot"]["empty-blob"] = b"\x00" + snapshot.pack(SavedStateBlob())
    return corpora


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    total = 0
    for target, files in seeds().items():
        directory = args.out / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(files.items()):
            (directory / f"seed-{name}").write_bytes(data)
            total += 1
    print(f"wrote {total} seed files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
