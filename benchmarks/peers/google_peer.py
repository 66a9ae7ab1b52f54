"""Google's ``protobuf`` runtime: classes generated from ``schema/bench.proto`` with
``grpc_tools.protoc`` into a temporary directory when this module is first imported.

The backend (upb, the C default, or pure Python) is chosen by the process's
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION``; the runner starts one process per backend.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
PROTO = SCHEMA_DIR / "bench.proto"


def generate(out_dir: Path) -> Path:
    """Run protoc (from grpcio-tools) on ``bench.proto``; the path of the generated module."""
    from grpc_tools import protoc

    args = ["protoc", f"-I{SCHEMA_DIR}", f"--python_out={out_dir}", str(PROTO)]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    return out_dir / "bench_pb2.py"


def _load() -> ModuleType:
    with tempfile.TemporaryDirectory(prefix="savestate-bench-") as tmp:
        path = generate(Path(tmp))
        spec = importlib.util.spec_from_file_location("bench_pb2", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_pb2"] = module
        spec.loader.exec_module(module)
    return module


pb = _load()


def backend() -> str:
    from google.protobuf.internal import api_implementation

    return api_implementation.Type()


def build(kind: str, d: dict[str, Any]) -> Any:
    if kind == "blob":
        return pb.Blob(data=d["data"])
    Register, VirtioQueue = pb.Register, pb.VirtioQueue
    return pb.DeviceState(
        name=d["name"],
        version=d["version"],
        registers=[Register(index=i, value=v) for i, v in d["registers"]],
        queues=[VirtioQueue(**q) for q in d["queues"]],
        config=d["config"],
        interrupts=d["interrupts"],
        timestamp=d["timestamp"],
        features=d["features"],
    )


def encode(obj: Any) -> bytes:
    return obj.SerializeToString()


def decode(kind: str, payload: bytes) -> Any:
    return (pb.Blob if kind == "blob" else pb.DeviceState).FromString(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    n = len(m.name) + m.version
    for r in m.registers:
        n += r.index + r.value
    for q in m.queues:
        n += q.size + q.ready + q.desc_addr + q.avail_addr + q.used_addr + q.next_avail
    n += len(m.config) + sum(m.interrupts)
    if m.HasField("timestamp"):
        n += m.timestamp
    for k, v in m.features.items():
        n += len(k) + v
    return n
