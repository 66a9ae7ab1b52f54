"""betterproto 2.0.0b7's declaration of the workload schema (mirrors ``schema/bench.proto``)."""

# ruff: noqa: RUF009 -- betterproto declares every field with a call in the dataclass default

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import betterproto


@dataclass(eq=False, repr=False)
class Register(betterproto.Message):
    index: int = betterproto.uint32_field(1)
    value: int = betterproto.uint64_field(2)


@dataclass(eq=False, repr=False)
class VirtioQueue(betterproto.Message):
    size: int = betterproto.uint32_field(1)
    ready: bool = betterproto.bool_field(2)
    desc_addr: int = betterproto.uint64_field(3)
    avail_addr: int = betterproto.uint64_field(4)
    used_addr: int = betterproto.uint64_field(5)
    next_avail: int = betterproto.uint32_field(6)


@dataclass(eq=False, repr=False)
class DeviceState(betterproto.Message):
    name: str = betterproto.string_field(1)
    version: int = betterproto.uint32_field(2)
    registers: list[Register] = betterproto.message_field(3)
    queues: list[VirtioQueue] = betterproto.message_field(4)
    config: bytes = betterproto.bytes_field(5)
    interrupts: list[int] = betterproto.uint64_field(6)
    timestamp: int | None = betterproto.sint64_field(7, optional=True)
    features: dict[str, int] = betterproto.map_field(
        8, betterproto.TYPE_STRING, betterproto.TYPE_UINT32
    )


@dataclass(eq=False, repr=False)
class Blob(betterproto.Message):
    data: bytes = betterproto.bytes_field(1)


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
    return bytes(obj)


def decode(kind: str, payload: bytes) -> Any:
    return (Blob if kind == "blob" else DeviceState)().parse(payload)


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
