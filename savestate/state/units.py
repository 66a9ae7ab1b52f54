"""State units: a named collection of objects saved as ``{1: name, 2: Any}`` records.

``StateUnits`` saves every unit into a ``SavedStateUnit`` record (package ``state_unit``, as in the
reference) and restores by name, all or nothing: every record is checked (unknown or duplicate
names) and decoded before any unit's ``restore`` runs, and so is every blob nested in a decoded
state whose type URL names a registered root (a chipset's child devices, a child's children, ...),
so that a corrupt record anywhere means no ``restore`` is called. If a ``restore`` still fails
(an invalid state, a child blob of an unexpected type), the units already restored, and the one
that failed, are put back as they were: from their states saved and encoded before the first
``restore`` ran (bytes, which no ``restore`` can mutate), also when the failure is a
``BaseException`` such as ``KeyboardInterrupt`` (re-raised after the roll-back). Units are
restored, and put back, in the order they were added whatever the order of the records, so that
a unit whose restore depends on an earlier one (such as a clock) sees that one's state. A unit
with no record keeps its current state.

The same logic serves child devices kept as ``list[tuple[str, SavedStateBlob]]`` inside another
saved state (``save_children`` / ``restore_children``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..codec.front import DEFAULT_MAX_SIZE, MAX_ALLOWED_DEPTH
from ..declare import Protobuf, field, savedstate
from ..errors import DecodeError
from ..model.registry import root_for_url
from .blob import SavedStateBlob
from .saverestore import (
    RestoreError,
    SaveError,
    SaveRestore,
    call_restore,
    current_limits,
    parse_for,
    restore_limits,
    save_blob,
)

__all__ = [
    "SavedStateUnit",
    "SavedStateUnits",
    "StateUnits",
    "restore_children",
    "save_children",
]


class SavedStateUnit(Protobuf, package="state_unit"):
    """The saved state for an individual unit."""

    name: str = field(1, default="", doc="The name of the state unit.")
    state: SavedStateBlob = field(
        2, default_factory=SavedStateBlob, doc="The opaque saved state blob."
    )


# Not `savestate.units`: a package named like the import name makes protoc's and betterproto's
# generated modules (`savestate/units/...`) shadow this library on sys.path.
@savedstate(package="state_units")
class SavedStateUnits(Protobuf, package="state_units"):
    """The saved state of a collection of state units (the shape of a VM's saved state)."""

    units: list[SavedStateUnit] = field(1, default_factory=list, doc="One record per unit.")


def _save_entries(
    objects: Iterable[tuple[str, SaveRestore[Any]]],
) -> list[tuple[str, SavedStateBlob]]:
    entries: list[tuple[str, SavedStateBlob]] = []
    for name, obj in objects:
        try:
            entries.append((name, save_blob(obj)))
        except SaveError as exc:
            raise SaveError.ChildError(name, exc) from exc
    return entries


def _restore_entries(
    objects: Mapping[str, SaveRestore[Any]],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int | None = None,
    max_depth: int | None = None,
) -> None:
    with restore_limits(max_size, max_depth) as (size, depth):
        _restore_entries_within(objects, entries, size, depth)


def _restore_entries_within(
    objects: Mapping[str, SaveRestore[Any]],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int,
    max_depth: int,
) -> None:
    """Check names, decode every entry, then restore (rolling back on a failure)."""
    seen: set[str] = set()
    decoded: list[tuple[str, SaveRestore[Any], Any]] = []
    for name, blob in entries:
        obj = objects.get(name)
        if obj is None:
            raise RestoreError.UnknownEntryId(name)
        if name in seen:
            raise RestoreError.InvalidSavedState(f"duplicate entry id: {name}")
        seen.add(name)
        try:
            state = parse_for(obj, blob, max_size, max_depth)
            check_nested_blobs(state, max_size=max_size, max_depth=max_depth)
        except RestoreError as exc:
            raise RestoreError.ChildError(name, exc) from exc
        decoded.append((name, obj, state))
    # Restore in the order the objects were added (as documented, and as they were saved),
    # whatever the order of the records: a unit may depend on an earlier one (a clock).
    order = {name: i for i, name in enumerate(objects)}
    decoded.sort(key=lambda entry: order[entry[0]])
    # Everything decoded: save and encode each unit's current state so that a failed restore
    # can be undone. Encoded, because a ``restore`` may mutate in place the very objects a
    # ``save`` returned (its live state), which would leave nothing to roll back to.
    backups: list[tuple[str, SaveRestore[Any], SavedStateBlob]] = []
    for name, obj, _ in decoded:
        try:
            backups.append((name, obj, save_blob(obj)))
        except SaveError as exc:
            raise RestoreError.ChildError(name, RestoreError.Other(exc)) from exc
    for i, (name, obj, state) in enumerate(decoded):
        try:
            call_restore(obj, state)
        except RestoreError as exc:
            err = RestoreError.ChildError(name, exc)
            _roll_back(backups[: i + 1], err)
            raise err from exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: undo, then let it go on
            _roll_back(backups[: i + 1], exc)
            raise


# Blobs nested in blobs: a parse's own ``max_depth`` bounds the nesting inside one blob; this
# bounds the nesting of blobs (each parse of a blob inside a blob counts one level).
MAX_BLOB_NESTING = 100


def check_nested_blobs(
    state: Any,
    max_nesting: int = MAX_BLOB_NESTING,
    *,
    max_size: int | None = None,
    max_depth: int | None = None,
) -> None:
    """Decode every ``SavedStateBlob`` reachable from ``state`` whose type URL names a
    registered root (blobs inside those too), so that corrupt bytes are found before any
    ``restore`` runs. Iterative (no recursion); raises ``RestoreError.ProtobufDecode``.
    Each parse has ``max_size`` and ``max_depth`` (default: ``current_limits()``).

    A blob of an unregistered type is left alone: no parse of it could succeed, so the
    ``restore`` that asks for it fails, and the restore is rolled back.
    """
    max_size, max_depth = current_limits(max_size, max_depth)
    # (value, blob nesting, names of the children it is inside: ``(name, blob)`` entries)
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(state, 0, ())]
    while stack:
        value, level, names = stack.pop()
        if isinstance(value, SavedStateBlob):
            cls = root_for_url(value.type_url)
            if cls is None:
                continue
            if level >= max_nesting:
                raise _child_error(names, DecodeError(
                    f"saved-state blobs nested deeper than the limit ({max_nesting})",
                    [cls.__name__]))
            try:
                inner: Any = value.parse(cls, max_depth=max_depth, max_size=max_size)
            except DecodeError as exc:
                raise _child_error(names, exc) from exc
            stack.append((inner, level + 1, names))
        elif isinstance(value, Protobuf):
            for f in dataclasses.fields(value):
                item = getattr(value, f.name)
                if isinstance(item, _CONTAINERS):
                    stack.append((item, level, names))
        elif isinstance(value, dict):
            stack.extend((v, level, names) for v in value.values() if isinstance(v, _CONTAINERS))
        elif (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
              and isinstance(value[1], SavedStateBlob)):
            stack.append((value[1], level, (*names, value[0])))  # a named child's entry
        elif isinstance(value, (list, tuple)):
            stack.extend((v, level, names) for v in value if isinstance(v, _CONTAINERS))


def _child_error(names: tuple[str, ...], exc: DecodeError) -> RestoreError:
    """The error ``restore_children`` would raise for a child that does not decode."""
    err: RestoreError = RestoreError.ProtobufDecode(exc)
    for name in reversed(names):
        err = RestoreError.ChildError(name, err)
    return err


_CONTAINERS = (Protobuf, list, tuple, dict)


def _roll_back(
    backups: list[tuple[str, SaveRestore[Any], SavedStateBlob]], err: BaseException
) -> None:
    """Put each unit back from its encoded backup, in order; a unit that cannot be put back
    is noted on ``err`` (``rollback_failures``, and a note) and the others still are."""
    for name, obj, backup in backups:
        try:
            # The backup is what this process just encoded: decode it under the widest limits,
            # not the caller's (which bound untrusted input).
            state = parse_for(obj, backup, max(len(backup.value), DEFAULT_MAX_SIZE),
                              MAX_ALLOWED_DEPTH)
            call_restore(obj, state)
        except RestoreError as exc:
            # Python 3.11+ shows notes under the traceback; older versions keep the list only.
            note = f"rolling back {name} failed too: {exc}"
            failures: list[str] = err.__dict__.setdefault("rollback_failures", [])
            failures.append(note)
            add_note = getattr(err, "add_note", None)
            if add_note is not None:
                add_note(note)


def save_children(
    children: Mapping[str, SaveRestore[Any]],
) -> list[tuple[str, SavedStateBlob]]:
    """Save named child objects as ``(name, blob)`` entries, in the mapping's order.

    A failure is ``SaveError.ChildError(name, ...)``.
    """
    return _save_entries(children.items())


def restore_children(
    children: Mapping[str, SaveRestore[Any]],
    entries: Iterable[tuple[str, SavedStateBlob]],
    *,
    max_size: int | None = None,
    max_depth: int | None = None,
) -> None:
    """Restore named children from ``(name, blob)`` entries, all or nothing.

    ``max_size`` and ``max_depth`` bound every decode; left out, they are those of the restore
    this call runs inside (a device restoring its children), else the defaults.

    An unknown name is ``RestoreError.UnknownEntryId``, a repeated one
    ``RestoreError.InvalidSavedState``; a child's failure is ``RestoreError.ChildError(name,
    ...)``. A child without an entry is left as it is.
    """
    _restore_entries(children, entries, max_size, max_depth)


class StateUnits(SaveRestore[SavedStateUnits]):
    """Named objects saved and restored together: ``units.add("pic", pic)``.

    ``save_records()`` / ``restore_records()`` work on ``SavedStateUnit`` records; ``save()`` /
    ``restore()`` on the ``SavedStateUnits`` root, so a ``StateUnits`` is itself a
    ``SaveRestore`` (and can be written with ``savestate.snapshot.write``).
    """

    def __init__(self, units: Mapping[str, SaveRestore[Any]] | None = None) -> None:
        self._units: dict[str, SaveRestore[Any]] = {}
        for name, obj in (units or {}).items():
            self.add(name, obj)

    def add(self, name: str, obj: SaveRestore[Any]) -> None:
        """Add a unit; units are saved and restored in the order they were added."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a unit name must be a non-empty string, got {name!r}")
        if name in self._units:
            raise ValueError(f"duplicate unit name: {name}")
        self._units[name] = obj

    def __getitem__(self, name: str) -> SaveRestore[Any]:
        return self._units[name]

    def __contains__(self, name: object) -> bool:
        return name in self._units

    def __iter__(self) -> Iterator[str]:
        return iter(self._units)

    def __len__(self) -> int:
        return len(self._units)

    def save_records(self) -> list[SavedStateUnit]:
        """One record per unit (raises ``SaveError.ChildError(name, ...)``)."""
        return [
            SavedStateUnit(name=name, state=blob)
            for name, blob in _save_entries(self._units.items())
        ]

    def restore_records(
        self,
        records: Iterable[SavedStateUnit],
        *,
        max_size: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        """Restore from records, all or nothing (see the module documentation); the limits
        bound every decode (left out: those of the enclosing restore, else the defaults)."""
        _restore_entries(self._units, ((r.name, r.state) for r in records), max_size, max_depth)

    def save(self) -> SavedStateUnits:
        """The state of every unit, one record each."""
        return SavedStateUnits(units=self.save_records())

    def restore(
        self,
        state: SavedStateUnits,
        *,
        max_size: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        """Restore every unit from ``state``, all or nothing; ``max_size`` and ``max_depth``
        bound each unit's decode and the blobs nested in it (left out: those of the restore
        this runs inside, e.g. ``snapshot.restore(..., max_depth=...)``, else the defaults)."""
        self.restore_records(state.units, max_size=max_size, max_depth=max_depth)
