"""Google's ``protobuf`` runtime: classes generated from ``schema/bench.proto`` with
``grpc_tools.protoc`` into a temporary directory when this module is first imported.

The backend (upb, the C default, or pure Python) is chosen by the process's
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION``, so the two backends run in two processes.
Messages are built with Google's documented idioms (see ``build``).

For the ``vm`` and ``vm-tree`` workloads the example VM's ``.proto`` files are written by
``savestate.write_proto`` into a temporary directory and compiled by the same protoc, into a
descriptor set (``--include_imports``) from which the runtime makes the classes, which is
what a ``_pb2`` module does on import. The ``_pb2`` modules themselves are not imported: protoc
names them after the proto packages, and ``examples.vm.*`` is this repository's own package.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import vm, workloads

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


def _load_vm() -> dict[str, Any]:
    """The VM's message classes by full proto name."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from grpc_tools import protoc

    from .. import vm

    pool = descriptor_pool.Default()
    with tempfile.TemporaryDirectory(prefix="savestate-bench-vm-") as tmp:
        proto_dir = Path(tmp) / "proto"
        files = sorted(p.name for p in vm.write_protos(proto_dir))
        out = Path(tmp) / "vm.desc"
        args = ["protoc", f"-I{proto_dir}", f"-I{vm.protoc_include()}",
                f"--descriptor_set_out={out}", "--include_imports", *files]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on the VM's .proto files in {proto_dir}")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    classes: dict[str, Any] = {}
    for file in fds.file:
        try:
            pool.FindFileByName(file.name)  # the well-known types are there already
        except KeyError:
            pool.Add(file)
    for file in fds.file:
        for m in file.message_type:
            name = f"{file.package}.{m.name}" if file.package else m.name
            classes[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    return classes


vm_classes = _load_vm()
Units = vm_classes["state_units.SavedStateUnits"]
Unit = vm_classes["state_unit.SavedStateUnit"]
AnyMsg = vm_classes["google.protobuf.Any"]


def backend() -> str:
    from google.protobuf.internal import api_implementation

    return api_implementation.Type()


def build(kind: str, d: dict[str, Any]) -> Any:
    """Google's documented idioms: scalars assigned, repeated scalars extended, maps updated,
    each element of a repeated message made in place by ``add()`` and filled, and a singular
    sub-message filled through its parent (a sub-message made apart would be copied in)."""
    if kind == "blob":
        return pb.Blob(data=d["data"])
    if kind == "vm":
        m = Units()
        add = m.units.add
        for u in d["units"]:
            unit = add()
            unit.name = u["name"]
            state = unit.state
            state.type_url = u["type_url"]
            state.value = u["value"]
        return m
    if kind == "vm-tree":
        return vm.build_tree(VM, d)
    m = pb.DeviceState()
    m.name = d["name"]
    m.version = d["version"]
    add = m.registers.add
    for i, v in d["registers"]:
        r = add()
        r.index = i
        r.value = v
    add = m.queues.add
    for q in d["queues"]:
        x = add()
        x.size = q["size"]
        x.ready = q["ready"]
        x.desc_addr = q["desc_addr"]
        x.avail_addr = q["avail_addr"]
        x.used_addr = q["used_addr"]
        x.next_avail = q["next_avail"]
    m.config = d["config"]
    m.interrupts.extend(d["interrupts"])
    if d["timestamp"] is not None:  # else absent
        m.timestamp = d["timestamp"]
    m.features.update(d["features"])
    return m


def encode(obj: Any) -> bytes:
    if type(obj) is vm.Tree:
        return vm.encode_tree(VM, obj)
    return obj.SerializeToString()


def decode(kind: str, payload: bytes) -> Any:
    if kind == "vm":
        return Units.FromString(payload)
    if kind == "vm-tree":
        return vm.decode_tree(VM, Units, payload)
    return (pb.Blob if kind == "blob" else pb.DeviceState).FromString(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    if kind == "vm":
        return workloads.read_units(m)
    if kind == "vm-tree":
        return vm.read_tree(VM, m)
    timestamp = m.timestamp if m.HasField("timestamp") else None
    return workloads.read_device(m, timestamp, m.features.items())


# -- the vm-tree workload: the tree operations over Google's descriptors ----------------------

_ANY = "google.protobuf.Any"


class _VmLib(vm.AnySlots):
    """The operations ``benchmarks.vm`` asks of a library, compiled per message descriptor."""

    def __init__(self) -> None:
        self._classes: dict[str, Any] = {}

    def class_for(self, url: str) -> Any:
        cls = self._classes.get(url)
        if cls is None:
            cls = self._classes[url] = vm_classes[url.rpartition("/")[2]]
        return cls

    def build(self, cls: Any, d: dict[str, Any], children: list[Any]) -> Any:
        m = cls()
        _builder(cls.DESCRIPTOR)(m, d, children)
        return m

    def slots(self, msg: Any) -> list[Any]:
        out: list[Any] = []
        finder = _slot_finder(msg.DESCRIPTOR)
        if finder is not None:
            finder(msg, out)
        return out

    @staticmethod
    def encode_msg(msg: Any) -> bytes:
        return msg.SerializeToString()  # type: ignore[no-any-return]

    @staticmethod
    def decode_msg(cls: Any, payload: bytes) -> Any:
        return cls.FromString(payload)

    def read(self, msg: Any) -> int:
        return _reader(msg.DESCRIPTOR)(msg)


VM = _VmLib()


def _repeated(f: Any) -> bool:
    flag = getattr(f, "is_repeated", None)
    return bool(flag) if flag is not None else f.label == f.LABEL_REPEATED


@functools.cache
def _builder(desc: Any) -> Any:
    """``fill(msg, d, children)``: write the plain values ``d`` into ``msg`` in place, with the
    documented idioms (see ``build``); an empty sub-message is marked present by
    ``SetInParent``, as proto3 keeps a set one."""
    if desc.full_name == _ANY:
        def blob(m: Any, d: dict[str, Any], children: list[Any]) -> None:
            children.append(vm.build_tree(VM, d))
            m.type_url = d[vm.TYPE_KEY]
        return blob
    parts = []
    for f in sorted(desc.fields, key=lambda f: f.number):
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            raise NotImplementedError(f"{desc.full_name}.{f.name}: the VM workload has no maps")
        if f.message_type is None:
            how = _extend if _repeated(f) else None
        else:
            how = _add_each(_builder(f.message_type)) if _repeated(f) else _fill_in(
                _builder(f.message_type))
        parts.append((f.name, how))

    def fill(m: Any, d: dict[str, Any], children: list[Any]) -> None:
        for name, how in parts:
            if name in d:
                if how is None:
                    setattr(m, name, d[name])
                else:
                    how(getattr(m, name), d[name], children)
    return fill


def _extend(field: Any, v: Any, children: list[Any]) -> None:
    field.extend(v)


def _add_each(fill: Any) -> Any:
    def each(field: Any, v: Any, children: list[Any]) -> None:
        add = field.add
        for x in v:
            fill(add(), x, children)
    return each


def _fill_in(fill: Any) -> Any:
    def one(sub: Any, v: Any, children: list[Any]) -> None:
        sub.SetInParent()
        fill(sub, v, children)
    return one


_FINDING: set[str] = set()


@functools.cache
def _slot_finder(desc: Any) -> Any:
    """``find(msg, out)`` appending the Any slots in ``msg`` in field order, or None."""
    if desc.full_name == _ANY:
        return lambda m, out: out.append(m)
    if desc.full_name in _FINDING:
        return None  # a recursive type: this VM has none
    _FINDING.add(desc.full_name)
    parts = []
    for f in sorted(desc.fields, key=lambda f: f.number):
        if f.message_type is None:
            continue
        g = _slot_finder(f.message_type)
        if g is not None:
            parts.append((f.name, _repeated(f), g))
    _FINDING.discard(desc.full_name)
    if not parts:
        return None

    def find(m: Any, out: list[Any]) -> None:
        for name, repeated, g in parts:
            if repeated:
                for x in getattr(m, name):
                    g(x, out)
            elif m.HasField(name):
                g(getattr(m, name), out)
    return find


_LEN_TYPES = (9, 12)  # FieldDescriptor.TYPE_STRING, TYPE_BYTES


@functools.cache
def _reader(desc: Any) -> Any:
    if desc.full_name == _ANY:
        return lambda m: len(m.type_url)  # its contents are read as the child tree
    plain = []  # (name, None to add the value / len / sum ...)
    present = []  # singular messages: read when set
    oneofs = []  # real oneofs: read the member that is set
    oneof_fields = set()
    for o in desc.oneofs:
        if len(o.fields) == 1 and o.name == "_" + o.fields[0].name:
            continue  # proto3 ``optional``: an unset one reads as zero
        oneofs.append((o.name, {f.name: _field_reader(f) for f in o.fields}))
        oneof_fields.update(f.name for f in o.fields)
    for f in sorted(desc.fields, key=lambda f: f.number):
        if f.name in oneof_fields:
            continue
        if f.message_type is not None and not _repeated(f):
            present.append((f.name, _reader(f.message_type)))
        else:
            plain.append((f.name, _field_reader(f)))

    def read(m: Any) -> int:
        n = 0
        for name, r in plain:
            v = getattr(m, name)
            n += v if r is None else r(v)
        for name, r in present:
            if m.HasField(name):
                n += r(getattr(m, name))
        for oneof, members in oneofs:
            which = m.WhichOneof(oneof)
            if which is not None:
                r = members[which]
                v = getattr(m, which)
                n += v if r is None else r(v)
        return n
    return read


def _field_reader(f: Any) -> Any:
    if f.message_type is not None:
        r = _reader(f.message_type)
        return (lambda v: sum(map(r, v))) if _repeated(f) else r
    if f.type in _LEN_TYPES:
        return (lambda v: sum(map(len, v))) if _repeated(f) else len
    return sum if _repeated(f) else None
