"""betterproto 2.0.0b7's declaration of the workload schema (mirrors ``schema/bench.proto``).

For the ``vm`` and ``vm-tree`` workloads, the example VM's ``.proto`` files (written by
``savestate.write_proto``) are compiled by betterproto's own protoc plugin
(``protoc-gen-python_betterproto``) into a package generated for the run (see ``generated``). If
that fails, those workloads are left out for betterproto, with the reason in ``UNSUPPORTED``.
betterproto writes an empty singular message only when it is marked as set
(``_serialized_on_wire``, which its parser sets); the builder marks the messages the values
set, as proto3's field presence asks.
"""

# ruff: noqa: RUF009 -- betterproto declares every field with a call in the dataclass default

from __future__ import annotations

import functools
import importlib
import typing
from dataclasses import dataclass
from typing import Any

import betterproto

from .. import vm, workloads
from .generated import generate


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
    if kind == "vm":
        Units, Unit, AnyMsg = _vm_top()
        return Units(units=[
            Unit(name=u["name"], state=AnyMsg(type_url=u["type_url"], value=u["value"]))
            for u in d["units"]
        ])
    if kind == "vm-tree":
        return vm.build_tree(VM, d)
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
    if type(obj) is vm.Tree:
        return vm.encode_tree(VM, obj)
    return bytes(obj)


def decode(kind: str, payload: bytes) -> Any:
    if kind == "vm":
        return _vm_top()[0]().parse(payload)
    if kind == "vm-tree":
        return vm.decode_tree(VM, _vm_top()[0], payload)
    return (Blob if kind == "blob" else DeviceState)().parse(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    if kind == "vm":
        return workloads.read_units(m)
    if kind == "vm-tree":
        return vm.read_tree(VM, m)
    return workloads.read_device(m, m.timestamp, m.features.items())


# -- the vm workloads: classes from betterproto's protoc plugin -------------------------------

_PACKAGE = "_savestate_bench_vm_betterproto"
UNSUPPORTED: dict[str, str] = {}

try:
    generate(_PACKAGE, "python_betterproto", vm.write_protos)
except Exception as exc:  # the plugin or its output: say why, leave the workloads out
    UNSUPPORTED["vm"] = UNSUPPORTED["vm-tree"] = (
        f"betterproto's protoc plugin could not compile the VM's .proto files ({exc})")


def _class(full_name: str) -> Any:
    package, _, name = full_name.rpartition(".")
    if package == "google.protobuf":
        module = importlib.import_module("betterproto.lib.google.protobuf")
    else:
        module = importlib.import_module(f"{_PACKAGE}.{package}")
    return getattr(module, name)


@functools.cache
def _vm_top() -> tuple[Any, Any, Any]:
    return (_class("state_units.SavedStateUnits"), _class("state_unit.SavedStateUnit"),
            _class("google.protobuf.Any"))


class _VmLib(vm.AnySlots):
    """The operations ``benchmarks.vm`` asks of a library, compiled per class from
    betterproto's field metadata."""

    def __init__(self) -> None:
        self._classes: dict[str, Any] = {}

    def class_for(self, url: str) -> Any:
        cls = self._classes.get(url)
        if cls is None:
            cls = self._classes[url] = _class(url.rpartition("/")[2])
        return cls

    def build(self, cls: Any, d: dict[str, Any], children: list[Any]) -> Any:
        return _builder(cls)(d, children)

    def slots(self, msg: Any) -> list[Any]:
        out: list[Any] = []
        finder = _slot_finder(type(msg))
        if finder is not None:
            finder(msg, out)
        return out

    @staticmethod
    def encode_msg(msg: Any) -> bytes:
        return bytes(msg)

    @staticmethod
    def decode_msg(cls: Any, payload: bytes) -> Any:
        return cls().parse(payload)

    def read(self, msg: Any) -> int:
        return _reader(type(msg))(msg)


VM = _VmLib()


def _is_any(cls: Any) -> bool:
    return cls is _vm_top()[2]


def _fields(cls: Any) -> list[tuple[str, Any, Any, bool]]:
    """(name, metadata, message class or None, repeated) in field-number order."""
    meta = cls._betterproto
    out = []
    for name, m in sorted(meta.meta_by_field_name.items(), key=lambda kv: kv[1].number):
        sub = meta.cls_by_field.get(name) if m.proto_type == betterproto.TYPE_MESSAGE else None
        repeated = typing.get_origin(cls._type_hint(name)) is list
        out.append((name, m, sub, repeated))
    return out


@functools.cache
def _builder(cls: Any) -> Any:
    if _is_any(cls):
        def blob(d: dict[str, Any], children: list[Any]) -> Any:
            children.append(vm.build_tree(VM, d))
            return cls(type_url=d[vm.TYPE_KEY])
        return blob
    parts = []
    for name, _, sub, repeated in _fields(cls):
        conv = None
        if sub is not None:
            conv = _each(_builder(sub)) if repeated else _marked(_builder(sub))
        elif repeated:
            conv = lambda v, c: list(v)  # noqa: E731
        parts.append((name, conv))

    def build(d: dict[str, Any], children: list[Any]) -> Any:
        kw = {}
        for name, conv in parts:
            if name in d:
                kw[name] = d[name] if conv is None else conv(d[name], children)
        return cls(**kw)
    return build


def _each(build: Any) -> Any:
    return lambda v, c: [build(x, c) for x in v]


def _marked(build: Any) -> Any:
    return lambda v, c: _present(build(v, c))


def _present(msg: Any) -> Any:
    """Mark a singular message field's value as set: betterproto leaves an empty message off
    the wire unless it is marked (as its parser marks what it decodes); proto3 keeps it."""
    msg.__dict__["_serialized_on_wire"] = True
    return msg


@functools.cache
def _slot_finder(cls: Any) -> Any:
    if _is_any(cls):
        return lambda m, out: out.append(m)
    parts = []
    for name, meta, sub, repeated in _fields(cls):
        if sub is None or sub is cls:
            continue
        g = _slot_finder(sub)
        if g is not None:
            parts.append((name, meta.group, repeated, g))
    if not parts:
        return None

    def find(m: Any, out: list[Any]) -> None:
        for name, group, repeated, g in parts:
            if group is not None:
                which, v = betterproto.which_one_of(m, group)
                if which == name:
                    g(v, out)
            elif repeated:
                for x in getattr(m, name):
                    g(x, out)
            else:
                v = getattr(m, name)
                if v is not None:
                    g(v, out)
    return find


@functools.cache
def _reader(cls: Any) -> Any:
    if _is_any(cls):
        return lambda m: len(m.type_url)  # its contents are read as the child tree
    plain = []
    groups: dict[str, dict[str, Any]] = {}
    for name, meta, sub, repeated in _fields(cls):
        if sub is not None:
            r = _sum_of(_reader(sub)) if repeated else _reader(sub)
        elif meta.proto_type in (betterproto.TYPE_STRING, betterproto.TYPE_BYTES):
            r = (lambda v: sum(map(len, v))) if repeated else len
        else:
            r = sum if repeated else None
        if meta.group is not None and not meta.optional:
            groups.setdefault(meta.group, {})[name] = r
        else:
            plain.append((name, r))

    def read(m: Any) -> int:
        n = 0
        for name, r in plain:
            v = getattr(m, name)
            if v is None:
                continue  # an unset optional
            n += v if r is None else r(v)
        for group, members in groups.items():
            which, v = betterproto.which_one_of(m, group)
            if which:
                r = members[which]
                n += v if r is None else r(v)
        return n
    return read


def _sum_of(read: Any) -> Any:
    return lambda v: sum(map(read, v))
