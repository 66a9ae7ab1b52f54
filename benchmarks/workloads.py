"""The benchmark workloads, all made by one seeded generator as plain Python values.

Every library builds its own objects from these values (that is the "build" the benchmark
times), so each workload is a plain dict of ints, strings, bytes, lists and dicts:

- ``device``-shaped workloads (``small``, ``large``): a device state with a name, a version,
  registers (index/value messages), virtio queues (6 fields each), config space bytes, packed
  u64 interrupts, an optional i64 timestamp and a string -> u32 feature map;
- ``blob``: one large ``bytes`` field (64 MiB in the full run);
- ``vm`` and ``vm-tree``: the example VM's saved state after a number of steps derived from the
  seed: its top-level record with the blobs opaque, and its full tree (see ``benchmarks/vm.py``).

A device workload also comes with one field alone (``small.registers``: the small workload's
registers, every other field empty; ``small.none``: every field empty), for profiles that say
what each field costs (``python -m benchmarks.profile_codec --fields``).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_SEED", "DEVICE_FIELDS", "MIB", "Workload", "field_alone", "make", "named",
           "workloads"]

DEFAULT_SEED = 20240601
MIB = 1 << 20

#: A device state's fields in the schema's order, and the value each has when it is empty.
_DEVICE_EMPTY: dict[str, Any] = {
    "name": "", "version": 0, "registers": [], "queues": [], "config": b"", "interrupts": [],
    "timestamp": None, "features": {},
}
DEVICE_FIELDS = tuple(_DEVICE_EMPTY)


@dataclass(frozen=True)
class Workload:
    """A named workload: which schema it uses and the sizes its generator is given."""

    name: str
    kind: str  # "device", "blob", "vm" or "vm-tree"
    sizes: dict[str, int]
    #: For a device workload made by ``field_alone``: the one field it keeps ("none": no field).
    alone: str | None = None

    @property
    def values_of(self) -> str:
        """The workload whose generated values this one has (itself, unless it is one field
        of another)."""
        return self.name.partition(".")[0]


def workloads(
    *, fast: bool = False, blob_size: int | None = None, seed: int = DEFAULT_SEED
) -> list[Workload]:
    """The workloads of a run. ``fast`` shrinks "large", "blob" and the VM's run to a tiny size."""
    from .vm import steps_for

    small = {"registers": 8, "queues": 2, "config": 256, "interrupts": 4, "features": 3}
    if fast:
        large = {"registers": 50, "queues": 4, "config": 1024, "interrupts": 200, "features": 10}
        blob = 64 * 1024
    else:
        large = {
            "registers": 2000, "queues": 64, "config": 64 * 1024, "interrupts": 10_000,
            "features": 50,
        }
        blob = 64 * MIB
    if blob_size is not None:
        blob = blob_size
    return [
        Workload("small", "device", small),
        Workload("large", "device", large),
        Workload("blob", "blob", {"size": blob}),
        Workload("vm", "vm", {"steps": steps_for(seed, fast=fast)}),
        Workload("vm-tree", "vm-tree", {"steps": steps_for(seed, fast=fast)}),
    ]


def field_alone(workload: Workload, field: str) -> Workload:
    """The device workload ``workload`` with every field but ``field`` empty ("none": all of
    them), named ``<workload>.<field>``; the field kept has ``workload``'s very values."""
    if workload.kind != "device":
        raise ValueError(f"{workload.name} is not a device workload")
    if field != "none" and field not in DEVICE_FIELDS:
        raise ValueError(f"a device state has no field {field!r}")
    return Workload(f"{workload.name}.{field}", workload.kind, workload.sizes, alone=field)


def named(name: str, **options: Any) -> Workload:
    """The workload called ``name`` among ``workloads(**options)``, or one field of one
    (``small.registers``)."""
    base, _, field = name.partition(".")
    for wl in workloads(**options):
        if wl.name == base:
            return field_alone(wl, field) if field else wl
    raise ValueError(f"no workload {base!r}")


def _u64(rng: random.Random) -> int:
    """A u64 whose varint length varies from 1 to 10 bytes."""
    return rng.getrandbits(rng.randint(1, 64))


def make(workload: Workload, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The plain values of ``workload``; the same ``seed`` gives the same values in any process."""
    rng = random.Random(f"{seed}:{workload.values_of}")
    sizes = workload.sizes
    if workload.kind == "blob":
        return {"data": rng.randbytes(sizes["size"])}
    if workload.kind in ("vm", "vm-tree"):
        from . import vm

        if workload.kind == "vm":
            return vm.opaque_plain(sizes["steps"])
        return vm.tree_plain(sizes["steps"])
    queues = []
    for q in range(sizes["queues"]):
        base = rng.getrandbits(40) & ~0xFFF
        queues.append({
            "size": rng.choice((128, 256, 1024)),
            "ready": q % 3 != 2,
            "desc_addr": base,
            "avail_addr": base + 0x1000,
            "used_addr": base + 0x2000,
            "next_avail": rng.getrandbits(16),
        })
    values = {
        "name": f"virtio-device-{rng.getrandbits(32):08x}",
        "version": rng.randint(1, 1 << 20),
        "registers": [(i, _u64(rng)) for i in range(sizes["registers"])],
        "queues": queues,
        "config": rng.randbytes(sizes["config"]),
        "interrupts": [_u64(rng) for _ in range(sizes["interrupts"])],
        "timestamp": rng.randint(-(1 << 62), 1 << 62),
        "features": {f"feature_{i}": rng.getrandbits(32) for i in range(sizes["features"])},
    }
    if workload.alone is not None:
        values = {f: values[f] if f == workload.alone else copy.copy(empty)
                  for f, empty in _DEVICE_EMPTY.items()}
    return values


def read_device(m: Any, timestamp: int | None, features: Any) -> int:
    """Read every field of a decoded small/large device state, the same way for every library
    (``timestamp`` is None when absent; ``features`` yields (key, value) pairs)."""
    n = len(m.name) + m.version
    for r in m.registers:
        n += r.index + r.value
    for q in m.queues:
        n += q.size + q.ready + q.desc_addr + q.avail_addr + q.used_addr + q.next_avail
    n += len(m.config) + sum(m.interrupts)
    if timestamp is not None:
        n += timestamp
    for k, v in features:
        n += len(k) + v
    return n


def read_units(m: Any) -> int:
    """Read the vm workload's top-level record: each unit's name, type URL and blob size."""
    n = 0
    for u in m.units:
        n += len(u.name) + len(u.state.type_url) + len(u.state.value)
    return n
