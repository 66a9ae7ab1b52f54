"""Workload (d): the example VM's full saved state (``examples/vm``), for every library.

The machine runs deterministically for a number of 1 ms steps derived from the seed (with a
line typed at its serial console half-way, as the demo does), and its saved state, the
``SavedStateUnits`` root that ``Machine.save()`` returns, is the workload. Two workloads are
made from it:

- ``vm``: the top-level record alone, with its blobs opaque: ``{"units": [{"name", "type_url",
  "value"}]}``, each ``value`` being the encoded state of that unit (its child blobs inside it).
  Encoding this is what writing an already-saved state costs; it is one level only.
- ``vm-tree``: the full tree, as plain values in the terms of the emitted ``.proto`` files:
  every message a dict of its ``.proto`` field names (a oneof as ``{member: body}``, a tuple as
  ``{"field1": ..., "field2": ...}``, an unset optional left out), and every blob
  (``google.protobuf.Any``) as ``{"@type": url, ...its message's fields}``. Each library builds
  it as a :class:`Tree`: its own message for the root, its own message for every blob's
  contents, and the ``Any`` slots that will hold them.

Every library's tree code is the same walk over that library's own schema information
(savestate's schema model, Google's descriptors, betterproto's field metadata), compiled once
per message class, so that no library is favoured by hand-tuning:

- *encode* (from ready objects): bottom-up, encode each blob's message, put the bytes into its
  ``Any`` slot in the parent, encode the parent, up to the ``SavedStateUnits`` record (what
  ``Machine.save()`` then ``encode()`` does, minus asking the devices for their state);
- *build + encode*: make every message from the plain values, then the above;
- *decode*: decode the record, then parse every blob (and the blobs inside those) as the type
  its URL names;
- *decode + read all*: that, then read every present field and element of every message
  (``Any`` slots: their type URL; their contents are read as the child message).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "Tree",
    "build_tree",
    "decode_tree",
    "encode_tree",
    "machine_state",
    "opaque_plain",
    "read_tree",
    "same_tree",
    "steps_for",
    "to_plain",
    "tree_plain",
    "write_protos",
]

TYPE_KEY = "@type"


def steps_for(seed: int, *, fast: bool) -> int:
    """How many 1 ms steps the machine runs: a few hundred in fast mode, ~3 s of VM time else."""
    rng = random.Random(f"{seed}:vm")
    return 60 + rng.randrange(20) if fast else 2000 + rng.randrange(2000)


@functools.cache
def machine_state(steps: int) -> Any:
    """The machine's ``SavedStateUnits`` after ``steps`` steps (deterministic)."""
    from examples.vm import Machine

    machine = Machine()
    machine.run(steps // 2)
    machine.uart.receive(b"hello, vm\r\n")  # typed at the serial console, as in the demo
    machine.run(steps - steps // 2)
    return machine.save()


def vm_roots() -> list[type]:
    """The saved-state roots of the example VM (what its ``.proto`` files describe)."""
    import examples.vm  # noqa: F401 -- registers the VM's roots
    import savestate
    from savestate.state.saverestore import NoSavedState
    from savestate.state.units import SavedStateUnits

    return [
        cls for cls in savestate.roots()
        if cls.__module__.startswith("examples.vm.") or cls in (SavedStateUnits, NoSavedState)
    ]


def write_protos(directory: Path) -> list[Path]:
    """The VM's ``.proto`` files, as ``python -m examples.vm --out DIR`` writes them."""
    import savestate

    return savestate.write_proto(directory, vm_roots())


def protoc_include() -> str:
    """The directory of the well-known ``.proto`` files shipped with grpcio-tools."""
    import grpc_tools

    return str(Path(grpc_tools.__file__).resolve().parent / "_proto")


# ---------------------------------------------------------------------------------------------
# savestate objects -> plain values (the workload generator; also the savestate judge's view)


def to_plain(obj: Any) -> dict[str, Any]:
    """The plain values of a savestate root or message, blobs parsed and expanded."""
    from savestate.model.introspect import message_schema

    return _message_plain(message_schema(type(obj)), obj)


def _message_plain(schema: Any, obj: Any) -> dict[str, Any]:
    from savestate.model.introspect import message_schema
    from savestate.model.registry import root_for_url
    from savestate.state.blob import SavedStateBlob

    if schema.cls is SavedStateBlob:
        root = root_for_url(obj.type_url)
        if root is None:
            raise ValueError(f"no registered root for {obj.type_url}")
        inner = obj.parse(root)
        return {TYPE_KEY: obj.type_url, **_message_plain(message_schema(root), inner)}
    out: dict[str, Any] = {}
    for f in sorted(schema.fields, key=lambda f: f.number):
        value = _value_plain(f.type, getattr(obj, f.name), f.always)
        if value is not _OMIT:
            out[f.name] = value
    return out


_OMIT: Any = object()


def _value_plain(t: Any, value: Any, always: bool = False) -> Any:
    """The plain value of a field; ``_OMIT`` for what the wire leaves out (a zero scalar, an
    empty list, an empty message), unless ``always`` (an optional's value, a list element)."""
    from savestate.model import schema as s
    from savestate.model.introspect import message_schema, oneof_schema
    from savestate.model.names import snake_case

    if isinstance(t, s.OptionalType):
        return _OMIT if value is None else _value_plain(t.inner, value, True)
    if isinstance(t, (s.ScalarType, s.EnumType)):
        if not value and not always:
            return _OMIT
        return value if isinstance(t, s.ScalarType) else int(value)
    if isinstance(t, s.RepeatedType):
        if not value and not always:
            return _OMIT
        if t.as_bytes:
            return bytes(value)
        return [_value_plain(t.elem, v, True) for v in value]
    if isinstance(t, s.FixedArrayType):
        if t.python_bytes or t.as_bytes:
            return bytes(value)
        items = [_value_plain(t.elem, v, True) for v in value]
        return items if t.packed else {"field1": items}
    if isinstance(t, s.TupleType):
        body = {f"field{i + 1}": _value_plain(et, v)
                for i, (et, v) in enumerate(zip(t.elems, value, strict=True))}
        body = {k: v for k, v in body.items() if v is not _OMIT}
        return body if body or always else _OMIT
    if isinstance(t, s.MessageType):
        # An empty message is left off the wire, so it is left out here too (else a peer
        # building from these values would write it: same values, two more bytes).
        body = _message_plain(message_schema(t.cls), value)
        return body if body or always else _OMIT
    if isinstance(t, s.OneofType):
        schema = oneof_schema(t.cls)
        variant = next(v for v in schema.variants if type(value) is v.cls)
        if variant.kind not in ("unit", "tuple", "struct"):
            raise NotImplementedError(f"{variant.kind} variant {variant.name}")
        fields = sorted(variant.message.fields, key=lambda f: f.number)
        body = {(f"field{f.number}" if variant.kind == "tuple" else f.name):
                _value_plain(f.type, getattr(value, f.name), f.always) for f in fields}
        return {snake_case(variant.name): {k: v for k, v in body.items() if v is not _OMIT}}
    raise NotImplementedError(f"the VM workload does not use {t}")


def tree_plain(steps: int) -> dict[str, Any]:
    """The ``vm-tree`` workload: the whole saved state as plain values."""
    from savestate.state.blob import type_url_of
    from savestate.state.units import SavedStateUnits

    return {TYPE_KEY: type_url_of(SavedStateUnits), **to_plain(machine_state(steps))}


def opaque_plain(steps: int) -> dict[str, Any]:
    """The ``vm`` workload: the top-level record with every unit's blob kept opaque."""
    state = machine_state(steps)
    return {"units": [
        {"name": u.name, "type_url": u.state.type_url, "value": u.state.value}
        for u in state.units
    ]}


# ---------------------------------------------------------------------------------------------
# The tree, the same for every library (each peer supplies an adapter with the operations)


class AnySlots:
    """How every library's ``google.protobuf.Any`` message is read and filled: the peers'
    adapters share it."""

    @staticmethod
    def set_value(slot: Any, value: bytes) -> None:
        slot.value = value

    @staticmethod
    def value_of(slot: Any) -> bytes:
        return slot.value  # type: ignore[no-any-return]

    @staticmethod
    def url_of(slot: Any) -> str:
        return slot.type_url  # type: ignore[no-any-return]


class Tree:
    """A library's message and, in the order of its ``Any`` slots, the slot and the tree of
    the message that goes into it."""

    __slots__ = ("msg", "slots")

    def __init__(self, msg: Any, slots: list[tuple[Any, Tree]]) -> None:
        self.msg = msg
        self.slots = slots


def build_tree(lib: Any, plain: dict[str, Any]) -> Tree:
    """Build the library's tree from plain values: ``lib.build(cls, plain, children)`` makes
    the message (each blob it meets becomes an empty ``Any`` with its URL, its contents a child
    tree appended to ``children``); ``lib.slots(msg)`` finds the ``Any`` slots, in that order."""
    children: list[Tree] = []
    msg = lib.build(lib.class_for(plain[TYPE_KEY]), plain, children)
    slots = lib.slots(msg)
    if len(slots) != len(children):
        raise AssertionError(f"{len(slots)} Any slots, {len(children)} children")
    return Tree(msg, list(zip(slots, children, strict=True)))


def encode_tree(lib: Any, tree: Tree) -> bytes:
    """Encode bottom-up: each child into its slot, then the message."""
    set_value, encode = lib.set_value, lib.encode_msg
    for slot, child in tree.slots:
        set_value(slot, encode_tree(lib, child))
    return encode(tree.msg)


def decode_tree(lib: Any, cls: Any, payload: bytes) -> Tree:
    """Decode the message, then every blob in it as the type its URL names (recursively)."""
    msg = lib.decode_msg(cls, payload)
    return Tree(msg, [
        (slot, decode_tree(lib, lib.class_for(lib.url_of(slot)), lib.value_of(slot)))
        for slot in lib.slots(msg)
    ])


def read_tree(lib: Any, tree: Tree) -> int:
    """Read every field of every message in the tree: the checksum every library agrees on."""
    n = lib.read(tree.msg)
    for _, child in tree.slots:
        n += read_tree(lib, child)
    return n


def same_tree(lib: Any, a: Tree, b: Tree) -> bool:
    """Whether two trees hold the same values level by level (the slots' bytes left out: a
    peer may encode a child differently and still mean the same values)."""
    if len(a.slots) != len(b.slots):
        return False
    slots = [s for s, _ in a.slots] + [s for s, _ in b.slots]
    values = [lib.value_of(s) for s in slots]
    for s in slots:
        lib.set_value(s, b"")
    try:
        if a.msg != b.msg:
            return False
    finally:
        for s, v in zip(slots, values, strict=True):
            lib.set_value(s, v)
    return all(same_tree(lib, ca, cb) for (_, ca), (_, cb) in zip(a.slots, b.slots, strict=True))


def cached(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Memoise a per-class compile step (keyed by the class)."""
    return functools.cache(fn)
