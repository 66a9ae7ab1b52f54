"""The benchmark workloads, all made by one seeded generator as plain Python values.

Every library builds its own objects from these values (that is the "build" the benchmark
times), so each workload is a plain dict of ints, strings, bytes, lists and dicts:

- ``device``-shaped workloads (``small``, ``large``): a device state with a name, a version,
  registers (index/value messages), virtio queues (6 fields each), config space bytes, packed
  u64 interrupts, an optional i64 timestamp and a string -> u32 feature map;
- ``blob``: one large ``bytes`` field (64 MiB in the full run);
- ``vm`` and ``vm-tree``: the example VM's saved state after a number of steps derived from the
  seed: its top-level record with the blobs opaque, and its full tree (see ``benchmarks/vm.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_SEED", "MIB", "Workload", "make", "workloads"]

DEFAULT_SEED = 20240601
MIB = 1 << 20


@dataclass(frozen=True)
class Workload:
    """A named workload: which schema it uses and the sizes its generator is given."""

    name: str
    kind: str  # "device", "blob", "vm" or "vm-tree"
    sizes: dict[str, int]


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


def _u64(rng: random.Random) -> int:
    """A u64 whose varint length varies from 1 to 10 bytes."""
    return rng.getrandbits(rng.randint(1, 64))


def make(workload: Workload, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The plain values of ``workload``; the same ``seed`` gives the same values in any process."""
    rng = random.Random(f"{seed}:{workload.name}")
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
    return {
        "name": f"virtio-device-{rng.getrandbits(32):08x}",
        "version": rng.randint(1, 1 << 20),
        "registers": [(i, _u64(rng)) for i in range(sizes["registers"])],
        "queues": queues,
        "config": rng.randbytes(sizes["config"]),
        "interrupts": [_u64(rng) for _ in range(sizes["interrupts"])],
        "timestamp": rng.randint(-(1 << 62), 1 << 62),
        "features": {f"feature_{i}": rng.getrandbits(32) for i in range(sizes["features"])},
    }


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
