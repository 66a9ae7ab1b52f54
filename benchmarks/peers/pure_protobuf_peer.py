"""pure-protobuf 3.x's declaration of the workload schema (mirrors ``schema/bench.proto``).

pure-protobuf 3 has no ``map`` type; a map is on the wire a repeated message of
``{1: key, 2: value}``, which is how it is declared here (``FeatureEntry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pure_protobuf.annotations import Field, ZigZagInt, uint
from pure_protobuf.message import BaseMessage

from .. import workloads

# pure-protobuf has no code generator: the VM's ~30 messages would have to be declared by hand.
UNSUPPORTED = {
    kind: "pure-protobuf has no .proto code generator; declaring the VM's ~30 messages by hand "
          "is out of scope"
    for kind in ("vm", "vm-tree")
}


@dataclass
class Register(BaseMessage):
    index: Annotated[uint, Field(1)] = 0
    value: Annotated[uint, Field(2)] = 0


@dataclass
class VirtioQueue(BaseMessage):
    size: Annotated[uint, Field(1)] = 0
    ready: Annotated[bool, Field(2)] = False
    desc_addr: Annotated[uint, Field(3)] = 0
    avail_addr: Annotated[uint, Field(4)] = 0
    used_addr: Annotated[uint, Field(5)] = 0
    next_avail: Annotated[uint, Field(6)] = 0


@dataclass
class FeatureEntry(BaseMessage):
    key: Annotated[str, Field(1)] = ""
    value: Annotated[uint, Field(2)] = 0


@dataclass
class DeviceState(BaseMessage):
    name: Annotated[str, Field(1)] = ""
    version: Annotated[uint, Field(2)] = 0
    registers: Annotated[list[Register], Field(3)] = field(default_factory=list)
    queues: Annotated[list[VirtioQueue], Field(4)] = field(default_factory=list)
    config: Annotated[bytes, Field(5)] = b""
    interrupts: Annotated[list[uint], Field(6, packed=True)] = field(default_factory=list)
    timestamp: Annotated[ZigZagInt | None, Field(7)] = None
    features: Annotated[list[FeatureEntry], Field(8)] = field(default_factory=list)


@dataclass
class Blob(BaseMessage):
    data: Annotated[bytes, Field(1)] = b""


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
        features=[FeatureEntry(key=k, value=v) for k, v in d["features"].items()],
    )


def encode(obj: Any) -> bytes:
    return bytes(obj)


def decode(kind: str, payload: bytes) -> Any:
    return (Blob if kind == "blob" else DeviceState).loads(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    return workloads.read_device(m, m.timestamp, ((e.key, e.value) for e in m.features))
