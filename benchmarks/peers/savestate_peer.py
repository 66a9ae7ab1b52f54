"""savestate's declaration of the workload schema (mirrors ``schema/bench.proto``)."""

from __future__ import annotations

from typing import Any

from savestate import Protobuf, field, i64, savedstate, u32, u64


class Register(Protobuf, package="bench"):
    index: u32 = field(1)
    value: u64 = field(2)


class VirtioQueue(Protobuf, package="bench"):
    size: u32 = field(1)
    ready: bool = field(2)
    desc_addr: u64 = field(3)
    avail_addr: u64 = field(4)
    used_addr: u64 = field(5)
    next_avail: u32 = field(6)


@savedstate(package="bench")
class DeviceState(Protobuf, package="bench"):
    name: str = field(1)
    version: u32 = field(2)
    registers: list[Register] = field(3)
    queues: list[VirtioQueue] = field(4)
    config: bytes = field(5)
    interrupts: list[u64] = field(6)
    timestamp: i64 | None = field(7)
    features: dict[str, u32] = field(8)


@savedstate(package="bench")
class Blob(Protobuf, package="bench"):
    data: bytes = field(1)


def build(kind: str, d: dict[str, Any]) -> Any:
    if kind == "blob":
        return Blob(data=d["data"])
    return DeviceState(
        name=d["name"],
        version=d["version"],
        registers=[Register(index=i, value=v) for i, v in d["registers"]],
        queues=[VirtioQueue(**q) for q in d["queues"]],
        config=d["config"],
        interrupts=list(d["interrupts"]),
        timestamp=d["timestamp"],
        features=dict(d["features"]),
    )


def encode(obj: Any) -> bytes:
    return obj.encode()


def decode(kind: str, payload: bytes) -> Any:
    if kind == "blob":
        # Past the 64 MiB that decode accepts by default: say so, as a user would.
        return Blob.decode(payload, max_size=len(payload))
    return DeviceState.decode(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    n = len(m.name) + m.version
    for r in m.registers:
        n += r.index + r.value
    for q in m.queues:
        n += q.size + q.ready + q.desc_addr + q.avail_addr + q.used_addr + q.next_avail
    n += len(m.config) + sum(m.interrupts)
    if m.timestamp is not None:
        n += m.timestamp
    for k, v in m.features.items():
        n += len(k) + v
    return n
