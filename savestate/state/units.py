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
saved state (``save_children`` / ``restore_children``), and the async API: ``save_async`` saves
the units concurrently, ``restore_async`` runs the very same all-or-nothing restore, awaiting
the async units (and rolling back on a cancellation too), each call within an optional time
limit. The synchronous API drives that one coroutine to its end without an event loop, which
it can because it refuses async units first.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

from ..codec.compiler import LARGE_PAYLOAD
from ..codec.wire import varint_bytes
from ..declare import Protobuf, field, savedstate
from ..errors import DecodeError, EncodeError
from ..limits import DEFAULT_MAX_SIZE, MAX_ALLOWED_DEPTH
from ..model.registry import root_for_url
from .blob import SavedStateBlob, encoded_blob_parts
from .saverestore import (
    AsyncSaveRestore,
    AsyncSaveRestoreWith,
    RestoreError,
    SaveError,
    SaveRestore,
    SaveRestoreWith,
    check_device,
    check_timeout,
    current_limits,
    is_async_device,
    parse_for,
    restore_limits,
    restored,
    restored_async,
    saved_blob,
    saved_blob_async,
)

C = TypeVar("C")
T = TypeVar("T")

# What a unit may be: a plain or an async object (``add``), or either with a context
# (``add_with``).
Unit: TypeAlias = (
    "SaveRestore[Any] | AsyncSaveRestore[Any] | SaveRestoreWith[Any, Any] "
    "| AsyncSaveRestoreWith[Any, Any]"
)

__all__ = [
    "SavedStateUnit",
    "SavedStateUnits",
    "StateUnits",
    "encoded_units_parts",
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


# The tags of ``SavedStateUnits.units`` (field 1) and ``SavedStateUnit.state`` (field 2), both
# length-delimited.
_UNITS_TAG = 0x0A
_STATE_TAG = 0x12
# The levels of messages a unit's blob sits at: the units, the unit, its blob.
_BLOB_LEVEL = 3


def _holds_unknown(record: Any) -> bool:
    """Whether ``record`` holds unknown fields that a decode kept (written after its own)."""
    return bool(record._pb_unknown)


def encoded_units_parts(
    units: SavedStateUnits, max_depth: int, *, emptied: bool = False
) -> list[bytes | bytearray] | None:
    """The encoding of ``units`` (the bytes ``units.encode(max_depth=max_depth)`` gives) in
    parts, for a writer that streams them: encoded bytes at even positions and, at odd
    positions, the value of each unit's blob of more than ``LARGE_PAYLOAD`` bytes, uncopied,
    each right after the part that ends with its length. The compiled encoder hands over only
    the large fields of the root itself, and a unit's state is two messages below it.

    With ``emptied``, one part: the same encoding with each of those values written as empty
    (the lengths around it follow), which decodes as the whole would, but for those values.

    None when no blob value is that large, or when the encoder must judge the value itself: a
    record of a subclass or holding unknown fields, a value of another type, a ``max_depth``
    below the blobs' level, or anything it would refuse (it then raises the precise error).
    """
    if type(units) is not SavedStateUnits or _holds_unknown(units) or max_depth < _BLOB_LEVEL:
        return None
    records = units.units
    if type(records) is not list:
        return None
    large = False
    for unit in records:
        blob = unit.state if type(unit) is SavedStateUnit else None
        if type(blob) is not SavedStateBlob or _holds_unknown(unit) or _holds_unknown(blob):
            return None
        value = blob.value
        large = large or (type(value) is bytes and len(value) > LARGE_PAYLOAD)
    if not large:  # the compiled encoder copies nothing large
        return None
    parts: list[bytes | bytearray] = []
    head = bytearray()
    try:
        for unit in records:
            blob = unit.state
            value = blob.value
            if type(value) is not bytes or len(value) <= LARGE_PAYLOAD:
                body = unit.encode(max_depth=max_depth - 1)
                head.append(_UNITS_TAG)
                head += varint_bytes(len(body))
                head += body
                continue
            kept = b"" if emptied else value
            blob_head = encoded_blob_parts(blob.type_url, [kept])[0]
            blob_size = len(blob_head) + len(kept)
            record = bytearray(SavedStateUnit(name=unit.name).encode())
            record.append(_STATE_TAG)
            record += varint_bytes(blob_size)
            record += blob_head
            head.append(_UNITS_TAG)
            head += varint_bytes(len(record) + len(kept))
            head += record
            if not emptied:
                parts.append(bytes(head))
                parts.append(value)
                head = bytearray()
    except EncodeError:
        return None
    parts.append(bytes(head))
    return parts


class _Member:
    """One unit as the state units call it: its name, the object, its context (if it was
    added with one), and whether it must be awaited."""

    __slots__ = ("context", "has_context", "is_async", "name", "obj")

    def __init__(self, name: str, obj: object, context: Any = None, has_context: bool = False):
        self.name, self.obj, self.context, self.has_context = name, obj, context, has_context
        self.is_async = is_async_device(obj)

    async def save_blob(self, timeout: float | None) -> SavedStateBlob:
        """The unit's state as a blob (``SaveError``; a sync unit never suspends here)."""
        obj: Any = self.obj
        args = (self.context,) if self.has_context else ()
        if self.is_async:
            return await saved_blob_async(obj, lambda: obj.save(*args), timeout)
        return saved_blob(obj, lambda: obj.save(*args))

    async def restore(self, state: Any, timeout: float | None) -> None:
        """Restore the unit from a decoded state (``RestoreError``; a sync unit never suspends
        here)."""
        obj: Any = self.obj
        args = (self.context,) if self.has_context else ()
        if self.is_async:
            await restored_async(lambda: obj.restore(state, *args), timeout)
        else:
            restored(lambda: obj.restore(state, *args))

    def refuse_if_async(self, kind: type[SaveError] | type[RestoreError], call: str) -> None:
        """The synchronous API cannot run an async unit: say which one, and what to call."""
        if self.is_async:
            raise kind.ChildError(self.name, kind.Other(TypeError(
                f"{type(self.obj).__name__} is an async unit: use `await units.{call}()`")))


def _members(objects: Mapping[str, SaveRestore[Any]]) -> list[_Member]:
    return [_Member(name, obj) for name, obj in objects.items()]


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run to its end, without an event loop, a coroutine that never suspends (every unit it
    calls is synchronous): the synchronous and the async APIs share one implementation of
    saving and of the all-or-nothing restore."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]  # StopIteration.value is Any
    coro.close()
    raise RuntimeError("a synchronous save or restore suspended")  # async units are refused


def _save_entries(members: Sequence[_Member]) -> list[tuple[str, SavedStateBlob]]:
    for member in members:
        member.refuse_if_async(SaveError, "save_async")
    return _run_sync(_save_members(members, None, concurrent=False))


async def _save_members(
    members: Sequence[_Member], timeout: float | None, *, concurrent: bool
) -> list[tuple[str, SavedStateBlob]]:
    """Each member's state as a named blob, in order; a failure is ``SaveError.ChildError``.

    ``concurrent``: every save runs in a task of its own (an async save waiting on its queue
    lets the others run); the first failure in unit order is raised once every save has ended,
    the saves still running being cancelled.
    """
    if not concurrent:
        entries: list[tuple[str, SavedStateBlob]] = []
        for member in members:
            try:
                entries.append((member.name, await member.save_blob(timeout)))
            except SaveError as exc:
                raise SaveError.ChildError(member.name, exc) from exc
        return entries
    tasks = [asyncio.ensure_future(member.save_blob(timeout)) for member in members]
    try:
        if tasks:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        # A failure, or this call cancelled: stop the saves still running, and let them end
        # before going on (no save may outlive the call that asked for it).
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for member, task in zip(members, tasks, strict=True):
        if task.cancelled():
            continue  # stopped because another unit failed
        failure = task.exception()
        if isinstance(failure, SaveError):
            raise SaveError.ChildError(member.name, failure) from failure
        if failure is not None:
            raise failure  # a BaseException (KeyboardInterrupt, SystemExit): not a save error
    return [(member.name, task.result()) for member, task in zip(members, tasks, strict=True)]


def _restore_entries(
    objects: Mapping[str, SaveRestore[Any]],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int | None = None,
    max_depth: int | None = None,
) -> None:
    _restore_members_sync(_members(objects), entries, max_size, max_depth)


def _restore_members_sync(
    members: Sequence[_Member],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int | None,
    max_depth: int | None,
) -> None:
    for member in members:
        member.refuse_if_async(RestoreError, "restore_async")
    with restore_limits(max_size, max_depth) as (size, depth):
        _run_sync(_restore_members(members, entries, size, depth, None, concurrent=False))


async def _restore_members(
    members: Sequence[_Member],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int,
    max_depth: int,
    timeout: float | None,
    *,
    concurrent: bool,
) -> None:
    """Check names, decode every entry, then restore in order, rolling back from encoded
    backups on any failure (``BaseException`` included: a ``KeyboardInterrupt``, a cancelled
    task). The one implementation behind the synchronous and the async restores."""
    decoded, below = _decode_entries(members, entries, max_size, max_depth)
    # The units restored here find the blobs of these states already checked, all the way
    # down: they check none of it again (for as long as this restore runs, no longer).
    token = _CHECKED.set(below)
    try:
        await _restore_decoded(decoded, timeout, concurrent=concurrent)
    finally:
        _CHECKED.reset(token)


async def _restore_decoded(
    decoded: list[tuple[_Member, Any]], timeout: float | None, *, concurrent: bool
) -> None:
    # Everything decoded: save and encode each unit's current state so that a failed restore
    # can be undone. Encoded, because a ``restore`` may mutate in place the very objects a
    # ``save`` returned (its live state), which would leave nothing to roll back to.
    try:
        saved = await _save_members([m for m, _ in decoded], timeout, concurrent=concurrent)
    except SaveError as exc:
        name, cause = (exc.name, exc.cause) if isinstance(exc, SaveError.ChildError) else ("", exc)
        raise RestoreError.ChildError(name, RestoreError.Other(cause)) from exc
    backups = [(member, blob) for (member, _), (_, blob) in zip(decoded, saved, strict=True)]
    for i, (member, state) in enumerate(decoded):
        try:
            await member.restore(state, timeout)
        except RestoreError as exc:
            err = RestoreError.ChildError(member.name, exc)
            await _roll_back(backups[: i + 1], err, timeout)
            raise err from exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit, cancellation: undo, go on
            await _roll_back(backups[: i + 1], exc, timeout)
            raise


# Blobs whose nested blobs have all been checked (decoded, under the limits noted), found
# in the states that the restore running decoded: the units it restores get them as their
# entries, and decode each (their own level) but check nothing below it again, which made
# units nested in units quadratic (each level checked every blob under it once more). Keyed
# by id; the blob and its value are kept to tell that it is the very blob checked, unchanged.
_Checked: TypeAlias = "dict[int, tuple[SavedStateBlob, bytes, str, int, int]]"
_CHECKED: contextvars.ContextVar[_Checked | None] = contextvars.ContextVar(
    "savestate_checked_blobs", default=None
)


def _decode_entries(
    members: Sequence[_Member],
    entries: Iterable[tuple[str, SavedStateBlob]],
    max_size: int,
    max_depth: int,
) -> tuple[list[tuple[_Member, Any]], _Checked]:
    """Check names and decode every entry (blobs nested in them too), calling nothing;
    the result is in the order the units were added, with the blobs of the decoded states
    (all checked) for the units restored next."""
    by_name = {member.name: member for member in members}
    seen: set[str] = set()
    decoded: list[tuple[_Member, Any]] = []
    checked = _CHECKED.get() or {}
    below: _Checked = {}
    for name, blob in entries:
        member = by_name.get(name)
        if member is None:
            raise RestoreError.UnknownEntryId(name)
        if name in seen:
            raise RestoreError.InvalidSavedState(f"duplicate entry id: {name}")
        seen.add(name)
        try:
            state = parse_for(member.obj, blob, max_size, max_depth)
            limits = _checked_under(checked, blob, max_size, max_depth)
            if limits is None:
                check_nested_blobs(state, max_size=max_size, max_depth=max_depth)
                limits = (max_size, max_depth)
        except RestoreError as exc:
            raise RestoreError.ChildError(name, exc) from exc
        for inner in _blobs_within(state):
            below[id(inner)] = (inner, inner.value, inner.type_url, *limits)
        decoded.append((member, state))
    # Restore in the order the objects were added (as documented, and as they were saved),
    # whatever the order of the records: a unit may depend on an earlier one (a clock).
    order = {member.name: i for i, member in enumerate(members)}
    decoded.sort(key=lambda entry: order[entry[0].name])
    return decoded, below


def _checked_under(
    checked: _Checked, blob: SavedStateBlob, max_size: int, max_depth: int
) -> tuple[int, int] | None:
    """The limits under which the blobs nested in ``blob`` were all checked, when they were
    and those limits are no wider than these (what passed narrower limits passes these);
    else None: they are to be checked now."""
    entry = checked.get(id(blob))
    if entry is None:
        return None
    same, value, url, size, depth = entry
    if same is not blob or value is not blob.value or url != blob.type_url:
        return None  # another blob, or this one given another value since
    if size > max_size or depth > max_depth:
        return None
    return size, depth


def _blobs_within(state: Any) -> Iterator[SavedStateBlob]:
    """The blobs of a registered type reachable from ``state`` without decoding one: those
    ``check_nested_blobs`` decodes first."""
    stack: list[Any] = [state]
    while stack:
        value = stack.pop()
        if isinstance(value, SavedStateBlob):
            if root_for_url(value.type_url) is not None:
                yield value
        elif isinstance(value, Protobuf):
            for f in dataclasses.fields(value):
                item = getattr(value, f.name)
                if isinstance(item, _WITH_BLOBS):
                    stack.append(item)
        elif isinstance(value, dict):
            stack.extend(v for v in value.values() if isinstance(v, _WITH_BLOBS))
        elif isinstance(value, (list, tuple)):
            stack.extend(v for v in value if isinstance(v, _WITH_BLOBS))


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
_WITH_BLOBS = (SavedStateBlob, *_CONTAINERS)


async def _roll_back(
    backups: list[tuple[_Member, SavedStateBlob]], err: BaseException, timeout: float | None
) -> None:
    """Put each unit back from its encoded backup, in order; a unit that cannot be put back
    is noted on ``err`` (``rollback_failures``, and a note) and the others still are. An
    interruption while putting one back (a second cancellation) does not stop the others:
    it is noted too, and raised once every unit has been tried."""
    interrupted: BaseException | None = None
    for member, backup in backups:
        try:
            # The backup is what this process just encoded: decode it under the widest limits,
            # not the caller's (which bound untrusted input). The unit's own restore runs under
            # them too: a unit that is itself a ``StateUnits`` (or a device calling
            # ``restore_children``) decodes its inner blobs with ``current_limits()``, and under
            # the caller's narrower limits a current state bigger or deeper than the incoming
            # one could not be put back. Every inner blob lies within this one, so its size
            # bounds theirs.
            with restore_limits(max(len(backup.value), DEFAULT_MAX_SIZE), MAX_ALLOWED_DEPTH) as (
                size, depth
            ):
                state = parse_for(member.obj, backup, size, depth)
                await member.restore(state, timeout)
        except BaseException as exc:
            if not isinstance(exc, RestoreError):
                interrupted = interrupted or exc
            # Python 3.11+ shows notes under the traceback; older versions keep the list only.
            note = f"rolling back {member.name} failed too: {exc or type(exc).__name__}"
            failures: list[str] = err.__dict__.setdefault("rollback_failures", [])
            failures.append(note)
            add_note = getattr(err, "add_note", None)
            if add_note is not None:
                add_note(note)
    if interrupted is not None and interrupted is not err:
        raise interrupted


def save_children(
    children: Mapping[str, SaveRestore[Any]],
) -> list[tuple[str, SavedStateBlob]]:
    """Save named child objects as ``(name, blob)`` entries, in the mapping's order.

    A failure is ``SaveError.ChildError(name, ...)``.
    """
    return _save_entries(_members(children))


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

    A unit is a ``SaveRestore`` or an ``AsyncSaveRestore`` (``add``), or either kind with a
    context passed to each of its calls (``add_with``: ``SaveRestoreWith[S, C]``,
    ``AsyncSaveRestoreWith[S, C]``). ``save_async`` / ``restore_async`` run every kind, the
    saves concurrently; the synchronous methods run the synchronous kinds, and name the first
    async unit when there is one.
    """

    def __init__(
        self, units: Mapping[str, SaveRestore[Any] | AsyncSaveRestore[Any]] | None = None
    ) -> None:
        self._members: dict[str, _Member] = {}
        for name, obj in (units or {}).items():
            self.add(name, obj)

    def add(self, name: str, obj: SaveRestore[Any] | AsyncSaveRestore[Any]) -> None:
        """Add a unit; units are saved and restored in the order they were added."""
        self._add(_Member(name, obj))

    def add_with(
        self,
        name: str,
        obj: SaveRestoreWith[Any, C] | AsyncSaveRestoreWith[Any, C],
        context: C,
    ) -> None:
        """Add a unit whose ``save`` and ``restore`` take a context: each call gets
        ``context`` (a channel, a memory map, a clock), of the type the unit declares."""
        self._add(_Member(name, obj, context, has_context=True))

    def _add(self, member: _Member) -> None:
        name = member.name
        if not isinstance(name, str) or not name:
            raise ValueError(f"a unit name must be a non-empty string, got {name!r}")
        if name in self._members:
            raise ValueError(f"duplicate unit name: {name}")
        check_device(member.obj, f"StateUnits (unit {name!r})")
        self._members[name] = member

    def __getitem__(self, name: str) -> Unit:
        obj: Unit = self._members[name].obj  # type: ignore[assignment]  # checked by add
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def save_records(self) -> list[SavedStateUnit]:
        """One record per unit (raises ``SaveError.ChildError(name, ...)``; an async unit is
        such an error too: use ``save_records_async``)."""
        return _records(_save_entries(list(self._members.values())))

    def restore_records(
        self,
        records: Iterable[SavedStateUnit],
        *,
        max_size: int | None = None,
        max_depth: int | None = None,
    ) -> None:
        """Restore from records, all or nothing (see the module documentation); the limits
        bound every decode (left out: those of the enclosing restore, else the defaults).
        An async unit is a ``RestoreError.ChildError`` naming it: use
        ``restore_records_async``."""
        _restore_members_sync(list(self._members.values()),
                              _entries_of(records, "restore_records()"), max_size, max_depth)

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
        this runs inside, e.g. ``snapshot.restore(..., max_depth=...)``, else the defaults).
        A ``state`` that is not a ``SavedStateUnits`` is a ``TypeError``."""
        self.restore_records(_units_of(state, "restore"), max_size=max_size,
                             max_depth=max_depth)

    async def save_records_async(self, *, timeout: float | None = None) -> list[SavedStateUnit]:
        """One record per unit, the units saved concurrently (each save in a task of its own,
        so that a unit waiting for its queue to drain lets the others run).

        ``timeout`` is the limit per unit, in seconds (None: no limit); a unit that runs out
        is cancelled and raises ``SaveError.ChildError(name, SaveError.Other(TimeoutError))``.
        On any unit's failure the saves still running are cancelled and the first failure in
        unit order is raised, as ``SaveError.ChildError(name, ...)``. A synchronous unit runs
        on the event loop's thread, to its end (a limit cannot interrupt it).
        """
        check_timeout(timeout)
        members = list(self._members.values())
        return _records(await _save_members(members, timeout, concurrent=True))

    async def restore_records_async(
        self,
        records: Iterable[SavedStateUnit],
        *,
        max_size: int | None = None,
        max_depth: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """``restore_records`` for every kind of unit, all or nothing: every record is checked
        and decoded before any unit's restore runs; the backups are saved concurrently, then
        the units are restored one after another, in the order they were added.

        ``timeout`` is the limit per unit and per call, in seconds (None: no limit); running out
        is ``RestoreError.ChildError(name, RestoreError.Other(TimeoutError))``. On any failure,
        a cancellation of this call included, every unit already restored, and the one that
        failed, is put back from its encoded backup, and the failure is raised.
        """
        check_timeout(timeout)
        members = list(self._members.values())
        with restore_limits(max_size, max_depth) as (size, depth):
            await _restore_members(members, _entries_of(records, "restore_records_async()"),
                                   size, depth, timeout, concurrent=True)

    async def save_async(self, *, timeout: float | None = None) -> SavedStateUnits:
        """The state of every unit, saved concurrently (see ``save_records_async``)."""
        return SavedStateUnits(units=await self.save_records_async(timeout=timeout))

    async def restore_async(
        self,
        state: SavedStateUnits,
        *,
        max_size: int | None = None,
        max_depth: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """Restore every unit from ``state``, all or nothing, rolled back on any failure or
        cancellation (see ``restore_records_async``). A ``state`` that is not a
        ``SavedStateUnits`` is a ``TypeError``."""
        await self.restore_records_async(_units_of(state, "restore_async"), max_size=max_size,
                                         max_depth=max_depth, timeout=timeout)


def _units_of(state: object, method: str) -> list[SavedStateUnit]:
    """The records of ``state``, which must be a ``SavedStateUnits``: a ``TypeError`` naming
    what was given instead (a blob, as ``snapshot.read`` returns, says how to decode it)."""
    if isinstance(state, SavedStateUnits):
        return state.units
    given = type(state).__name__
    if isinstance(state, SavedStateBlob):
        given += (f": decode it first, `units.{method}(blob.parse(SavedStateUnits))`, or"
                  " restore a snapshot file with `snapshot.restore(path, units)`")
    raise TypeError(
        f"StateUnits.{method}() takes a SavedStateUnits (what `units.save()` gives), "
        f"got {given}"
    )


def _entries_of(records: Iterable[SavedStateUnit], call: str) -> list[tuple[str, SavedStateBlob]]:
    """``(name, blob)`` of each record, each a ``SavedStateUnit`` (a ``TypeError`` else)."""
    entries: list[tuple[str, SavedStateBlob]] = []
    for record in records:
        if not isinstance(record, SavedStateUnit):
            raise TypeError(f"StateUnits.{call} takes SavedStateUnit records, "
                            f"got a {type(record).__name__}")
        entries.append((record.name, record.state))
    return entries


def _records(entries: list[tuple[str, SavedStateBlob]]) -> list[SavedStateUnit]:
    return [SavedStateUnit(name=name, state=blob) for name, blob in entries]
