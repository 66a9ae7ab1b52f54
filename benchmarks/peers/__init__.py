"""One module per library, each with the same functions over the workload schema
(``benchmarks/schema/bench.proto``):

- ``build(kind, data)``: that library's objects made from a workload's plain values;
- ``encode(obj)``: the wire bytes;
- ``decode(kind, payload)``: objects decoded from wire bytes;
- ``read_all(kind, obj)``: read every field and every element, returning a checksum that is
  the same for every library (so the check can tell that each reader really read everything).

A peer that cannot run a workload kind names it in ``UNSUPPORTED`` (kind -> reason); the
report shows "n/a" with the reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

__all__ = ["LIBRARIES", "PURE_PYTHON", "available", "load", "unsupported"]

# Library name -> (module under benchmarks.peers, modules it needs).
LIBRARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "savestate": ("savestate_peer", ()),
    "google-upb": ("google_peer", ("google.protobuf", "grpc_tools")),
    "google-python": ("google_peer", ("google.protobuf", "grpc_tools")),
    "pure-protobuf": ("pure_protobuf_peer", ("pure_protobuf",)),
    "betterproto": ("betterproto_peer", ("betterproto",)),
}

# The peers written in pure Python (the targets compare savestate with these).
PURE_PYTHON = ("google-python", "pure-protobuf", "betterproto")

# The environment a library's worker process runs in.
BACKEND_ENV = {
    "google-upb": {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "upb"},
    "google-python": {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
}


def available(name: str) -> bool:
    """Whether the modules ``name`` needs are installed."""
    return all(importlib.util.find_spec(m) is not None for m in LIBRARIES[name][1])


def unsupported(peer: ModuleType, kind: str) -> str | None:
    """Why ``peer`` cannot run workloads of ``kind``, or None."""
    reasons: dict[str, str] = getattr(peer, "UNSUPPORTED", {})
    return reasons.get(kind)


def load(name: str) -> ModuleType:
    """The peer module of ``name``; a Google backend must match this process's environment."""
    want = BACKEND_ENV.get(name, {}).get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION")
    if want is not None and os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "upb") != want:
        raise RuntimeError(f"{name} needs PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION={want}")
    return importlib.import_module(f"benchmarks.peers.{LIBRARIES[name][0]}")
