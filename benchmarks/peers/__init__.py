"""One module per library, each with the same functions over the workload schema
(``benchmarks/schema/bench.proto``):

- ``build(kind, data)``: that library's objects made from a workload's plain values;
- ``encode(obj)``: the wire bytes;
- ``decode(kind, payload)``: objects decoded from wire bytes;
- ``read_all(kind, obj)``: read every field and every element, returning a checksum that is
  the same for every library (so the check can tell that each reader really read everything).

A peer that cannot run a workload kind names it in ``UNSUPPORTED`` (kind -> reason); the
report shows "n/a" with the reason.

Two settings are read once, when a library is first imported, and so belong to a process:
Google's backend (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION``) and savestate's path
(``SAVESTATE_PURE=1`` turns the C accelerator off). The libraries therefore live in two
processes (``PROCESSES``): one with upb and the accelerator, which every library that does not
care shares, and one with both pure-Python paths. savestate is in both.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

__all__ = [
    "LIBRARIES",
    "PROCESSES",
    "PURE_PYTHON",
    "available",
    "load",
    "process_env",
    "process_of",
    "unsupported",
]

# Library name -> (module under benchmarks.peers, modules it needs).
LIBRARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "savestate": ("savestate_peer", ()),
    "savestate-pure": ("savestate_peer", ()),
    "google-upb": ("google_peer", ("google.protobuf", "grpc_tools")),
    "google-python": ("google_peer", ("google.protobuf", "grpc_tools")),
    "pure-protobuf": ("pure_protobuf_peer", ("pure_protobuf",)),
    "betterproto": ("betterproto_peer", ("betterproto",)),
    "betterproto2": ("betterproto2_peer", ("betterproto2", "betterproto2_compiler",
                                           "grpc_tools")),
}

# The peers written in pure Python (the pure-Python targets compare savestate-pure with these).
PURE_PYTHON = ("google-python", "pure-protobuf", "betterproto", "betterproto2")

# The settings that are fixed when a library is imported, and each one's default.
_SETTINGS = {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "upb", "SAVESTATE_PURE": "0"}

# The benchmark's processes: the settings each runs with and the libraries it hosts.
PROCESSES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "native": (
        {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "upb", "SAVESTATE_PURE": "0"},
        ("savestate", "google-upb", "pure-protobuf", "betterproto", "betterproto2"),
    ),
    "pure": (
        {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "SAVESTATE_PURE": "1"},
        ("savestate-pure", "google-python"),
    ),
}

# What a library needs of its process's settings (a library not named here needs nothing).
_NEEDS = {
    "savestate": {"SAVESTATE_PURE": "0"},
    "savestate-pure": {"SAVESTATE_PURE": "1"},
    "google-upb": {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "upb"},
    "google-python": {"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
}


def process_of(name: str) -> str:
    """The process that hosts library ``name``."""
    return next(p for p, (_, libs) in PROCESSES.items() if name in libs)


def process_env(process: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``process``'s settings."""
    env = dict(os.environ if base is None else base)
    env.update(PROCESSES[process][0])
    if env["SAVESTATE_PURE"] == "0":
        del env["SAVESTATE_PURE"]  # unset, as a user has it
    return env


def available(name: str) -> bool:
    """Whether the modules ``name`` needs are installed."""
    return all(importlib.util.find_spec(m) is not None for m in LIBRARIES[name][1])


def unsupported(peer: ModuleType, kind: str) -> str | None:
    """Why ``peer`` cannot run workloads of ``kind``, or None."""
    reasons: dict[str, str] = getattr(peer, "UNSUPPORTED", {})
    return reasons.get(kind)


def load(name: str) -> ModuleType:
    """The peer module of ``name``; this process's settings must be the ones it needs."""
    for var, want in _NEEDS.get(name, {}).items():
        if os.environ.get(var, _SETTINGS[var]) != want:
            raise RuntimeError(f"{name} needs {var}={want}")
    return importlib.import_module(f"benchmarks.peers.{LIBRARIES[name][0]}")
