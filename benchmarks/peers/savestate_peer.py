"""savestate's declaration of the workload schema (mirrors ``schema/bench.proto``), and the
example VM's own classes for the ``vm`` and ``vm-tree`` workloads (see ``benchmarks/vm.py``)."""

from __future__ import annotations

import functools
from typing import Any

from savestate import Protobuf, SavedStateBlob, field, i64, savedstate, u32, u64
from savestate.state.units import SavedStateUnit, SavedStateUnits

from .. import vm, workloads


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
    if kind == "vm":
        return SavedStateUnits(units=[
            SavedStateUnit(name=u["name"], state=SavedStateBlob(
                type_url=u["type_url"], value=u["value"]))
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
    return obj.encode()


def decode(kind: str, payload: bytes) -> Any:
    if kind == "vm":
        return SavedStateUnits.decode(payload)
    if kind == "vm-tree":
        return vm.decode_tree(VM, SavedStateUnits, payload)
    if kind == "blob":
        # Past the 64 MiB that decode accepts by default: say so, as a user would.
        return Blob.decode(payload, max_size=len(payload))
    return DeviceState.decode(payload)


def read_all(kind: str, m: Any) -> int:
    if kind == "blob":
        return len(m.data)
    if kind == "vm":
        return workloads.read_units(m)
    if kind == "vm-tree":
        return vm.read_tree(VM, m)
    return workloads.read_device(m, m.timestamp, m.features.items())


# -- the vm-tree workload: the tree operations over savestate's schema model ------------------


class _VmLib(vm.AnySlots):
    """The operations ``benchmarks.vm`` asks of a library, compiled per class from savestate's
    schema model (``savestate.model.introspect``)."""

    def __init__(self) -> None:
        self._roots: dict[str, Any] = {}

    def class_for(self, url: str) -> Any:
        cls = self._roots.get(url)
        if cls is None:
            from savestate.model.registry import root_for_url

            cls = self._roots[url] = root_for_url(url)
            if cls is None:
                raise LookupError(url)
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
        return msg.encode()  # type: ignore[no-any-return]

    @staticmethod
    def decode_msg(cls: Any, payload: bytes) -> Any:
        return cls.decode(payload)

    def read(self, msg: Any) -> int:
        return _reader(type(msg))(msg)


VM = _VmLib()


def _fields(cls: Any) -> list[Any]:
    from savestate.model.introspect import message_schema

    return sorted(message_schema(cls).fields, key=lambda f: f.number)


@functools.cache
def _builder(cls: Any) -> Any:
    if cls is SavedStateBlob:
        def blob(d: dict[str, Any], children: list[Any]) -> Any:
            children.append(vm.build_tree(VM, d))
            return SavedStateBlob(type_url=d[vm.TYPE_KEY])
        return blob
    parts = [(f.name, _converter(f.type), _zero(f)) for f in _fields(cls)]

    def build(d: dict[str, Any], children: list[Any]) -> Any:
        kw = {}
        for name, conv, zero in parts:
            if name in d:
                kw[name] = d[name] if conv is None else conv(d[name], children)
            elif zero is not _HAS_DEFAULT:
                kw[name] = zero() if callable(zero) else zero
        return cls(**kw)
    return build


_HAS_DEFAULT: Any = object()


def _zero(f: Any) -> Any:
    """What a field left out of the plain values gets: its declared default (the constructor
    fills it), else its type's zero value (a factory when that is mutable)."""
    if f.has_default:
        return _HAS_DEFAULT
    return _zero_of(f.type)


def _zero_of(t: Any) -> Any:
    from savestate.model import schema as s
    from savestate.model.introspect import zero_value

    if isinstance(t, s.RepeatedType):
        return list
    if isinstance(t, s.MapType):
        return dict
    if isinstance(t, s.MessageType):
        return lambda: _builder(t.cls)({}, [])
    if isinstance(t, s.TupleType):
        zeros = [_zero_of(e) for e in t.elems]
        return lambda: tuple(z() if callable(z) else z for z in zeros)
    z = zero_value(t)
    if z is None or isinstance(z, (int, float, str, bytes)):
        return z

    def missing() -> Any:  # a oneof is always on the wire, so never left out
        raise NotImplementedError(f"no zero value for {t} in the VM workload")
    return missing


def _converter(t: Any) -> Any:
    """None when the plain value is the field's value, else ``conv(value, children)``."""
    from savestate.model import schema as s
    from savestate.model.introspect import oneof_schema
    from savestate.model.names import snake_case

    if isinstance(t, s.OptionalType):
        return _converter(t.inner)
    if isinstance(t, s.ScalarType):
        return None
    if isinstance(t, s.EnumType):
        return lambda v, c: t.cls(v)
    if isinstance(t, (s.RepeatedType, s.FixedArrayType)):
        if isinstance(t, s.FixedArrayType) and t.python_bytes:
            return None
        if t.as_bytes or t.packed or _converter(t.elem) is None:
            return lambda v, c: list(v)
        conv = _converter(t.elem)
        if isinstance(t, s.FixedArrayType):
            return lambda v, c: [conv(x, c) for x in v["field1"]]
        return lambda v, c: [conv(x, c) for x in v]
    if isinstance(t, s.TupleType):
        convs = [(f"field{i + 1}", _converter(e), _zero_of(e)) for i, e in enumerate(t.elems)]
        return lambda v, c: tuple(
            (v[k] if cv is None else cv(v[k], c)) if k in v else (z() if callable(z) else z)
            for k, cv, z in convs
        )
    if isinstance(t, s.MessageType):
        return _builder(t.cls)
    if isinstance(t, s.OneofType):
        members: dict[str, Any] = {}
        for variant in oneof_schema(t.cls).variants:
            tuple_like = variant.kind == "tuple"
            members[snake_case(variant.name)] = (variant.cls, [
                (f"field{f.number}" if tuple_like else f.name, f.name, _converter(f.type),
                 _zero(f))
                for f in variant.message.fields
            ])

        def oneof(v: dict[str, Any], c: list[Any]) -> Any:
            ((member, body),) = v.items()
            vcls, fields = members[member]
            kw = {}
            for key, name, conv, zero in fields:
                if key in body:
                    kw[name] = body[key] if conv is None else conv(body[key], c)
                elif zero is not _HAS_DEFAULT:
                    kw[name] = zero() if callable(zero) else zero
            return vcls(**kw)
        return oneof
    raise NotImplementedError(f"the VM workload does not use {t}")


@functools.cache
def _slot_finder(cls: Any) -> Any:
    """``find(msg, out)`` appending the blobs in ``msg`` in field order, or None if none can be."""
    if cls is SavedStateBlob:
        return lambda m, out: out.append(m)
    parts = [(f.name, g) for f in _fields(cls) if (g := _type_slots(f.type)) is not None]
    if not parts:
        return None

    def find(m: Any, out: list[Any]) -> None:
        for name, g in parts:
            g(getattr(m, name), out)
    return find


def _type_slots(t: Any) -> Any:
    from savestate.model import schema as s
    from savestate.model.introspect import oneof_schema

    if isinstance(t, s.OptionalType):
        g = _type_slots(t.inner)
        return None if g is None else (lambda v, out: v is not None and g(v, out))
    if isinstance(t, s.MessageType):
        return _slot_finder(t.cls)
    if isinstance(t, (s.RepeatedType, s.FixedArrayType)):
        g = _type_slots(t.elem)
        if g is None:
            return None

        def each(v: Any, out: list[Any]) -> None:
            for x in v:
                g(x, out)
        return each
    if isinstance(t, s.TupleType):
        gs = [(i, g) for i, e in enumerate(t.elems) if (g := _type_slots(e)) is not None]
        if not gs:
            return None

        def items(v: Any, out: list[Any]) -> None:
            for i, g in gs:
                g(v[i], out)
        return items
    if isinstance(t, s.OneofType):
        by_cls = {}
        for variant in oneof_schema(t.cls).variants:
            parts = [(f.name, g) for f in variant.message.fields
                     if (g := _type_slots(f.type)) is not None]
            if parts:
                by_cls[variant.cls] = parts
        if not by_cls:
            return None

        def oneof(v: Any, out: list[Any]) -> None:
            for name, g in by_cls.get(type(v), ()):
                g(getattr(v, name), out)
        return oneof
    return None


@functools.cache
def _reader(cls: Any) -> Any:
    if cls is SavedStateBlob:
        return lambda m: len(m.type_url)  # its contents are read as the child tree
    parts = [(f.name, _type_reader(f.type)) for f in _fields(cls)]

    def read(m: Any) -> int:
        n = 0
        for name, r in parts:
            v = getattr(m, name)
            n += v if r is None else r(v)
        return n
    return read


def _type_reader(t: Any) -> Any:
    """None when the value itself is added to the checksum, else ``r(value) -> int``."""
    from savestate.model import schema as s
    from savestate.model.introspect import oneof_schema

    if isinstance(t, s.OptionalType):
        r = _type_reader(t.inner)
        if r is None:
            return lambda v: 0 if v is None else v
        return lambda v: 0 if v is None else r(v)
    if isinstance(t, s.ScalarType):
        return len if t.kind.python in (str, bytes) else None
    if isinstance(t, s.EnumType):
        return None
    if isinstance(t, (s.RepeatedType, s.FixedArrayType)):
        if (isinstance(t, s.FixedArrayType) and t.python_bytes) or t.as_bytes:
            return len
        r = _type_reader(t.elem)
        if r is None:
            return sum
        return lambda v: sum(map(r, v))
    if isinstance(t, s.TupleType):
        rs = list(enumerate(map(_type_reader, t.elems)))
        return lambda v: sum(v[i] if r is None else r(v[i]) for i, r in rs)
    if isinstance(t, s.MessageType):
        return _reader(t.cls)
    if isinstance(t, s.OneofType):
        by_cls = {variant.cls: _reader_fields(variant.message.fields)
                  for variant in oneof_schema(t.cls).variants}
        return lambda v: by_cls[type(v)](v)
    raise NotImplementedError(f"the VM workload does not use {t}")


def _reader_fields(fields: Any) -> Any:
    parts = [(f.name, _type_reader(f.type)) for f in fields]

    def read(m: Any) -> int:
        n = 0
        for name, r in parts:
            v = getattr(m, name)
            n += v if r is None else r(v)
        return n
    return read
