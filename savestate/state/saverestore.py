"""Save and restore of stateful objects: ``SaveRestore``, the blob helpers and the error kinds.

This is the Python form of the reference monitor's ``save_restore`` module. An object with saved
state subclasses ``SaveRestore[S]`` (``S`` a ``@savedstate`` root) and implements ``save()`` and
``restore(state)``; ``save_blob`` / ``restore_blob`` move its state through an opaque
``SavedStateBlob``. Failures are ``SaveError`` / ``RestoreError`` subclasses with ``__cause__`` set;
``str()`` of a nested failure shows the whole path::

    failed to restore child device chipset/pic: failed to decode protobuf:
    SavedState.primary.imr: value 300 out of range for u8 (0..255)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import math
import typing
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

# Saving and restoring is encoding and decoding: the codec is loaded with this module, at a
# program's start, and not by its first save (a servicing VM's blackout).
from ..codec import front  # noqa: F401
from ..declare import Protobuf, savedstate
from ..errors import DecodeError, SavestateError
from ..limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, MAX_ALLOWED_DEPTH
from ..model.registry import info_of, root_for_url
from .blob import SavedStateBlob, type_url_of

__all__ = [
    "AsyncSaveRestore",
    "AsyncSaveRestoreWith",
    "NoSavedState",
    "RestoreError",
    "SaveError",
    "SaveRestore",
    "SaveRestoreWith",
    "SavedStateNotSupported",
    "check_limits",
    "current_limits",
    "decoded_state",
    "restore_blob",
    "restore_blob_async",
    "save_blob",
    "save_blob_async",
    "state_type",
]

S = TypeVar("S")
C = TypeVar("C")
T = TypeVar("T")


class SaveRestore(Generic[S]):
    """Base of objects with saved state: ``class Pic(SaveRestore[SavedState])``.

    ``save()`` returns the state (raise ``SaveError`` on failure); ``restore(state)`` puts it
    back (raise ``RestoreError``, e.g. ``RestoreError.InvalidSavedState("bad icw2")``). The
    state type ``S`` is read from the class declaration by ``state_type`` so that a blob can be
    checked and decoded before ``restore`` is called.
    """

    __slots__ = ()

    def save(self) -> S:
        """Return the object's saved state, a new ``S`` (raise ``SaveError`` when it cannot be
        saved now, e.g. ``SaveError.NotSupported`` or ``SaveError.ChildError``)."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    def restore(self, state: S) -> None:
        """Put the object back into ``state``, decoded and type-checked already (raise
        ``RestoreError``, e.g. ``RestoreError.InvalidSavedState("count is above reload")``, for a
        state that decodes but cannot be right)."""
        raise NotImplementedError(f"{type(self).__name__}.restore")


class AsyncSaveRestore(Generic[S]):
    """The async counterpart of ``SaveRestore[S]``: ``async def save() -> S`` and
    ``async def restore(state: S) -> None``, with the same error kinds.

    For a device written with asyncio whose save has to wait (a queue that drains first, a
    backend that flushes): ``save_blob_async`` / ``restore_blob_async`` move its state, and
    ``StateUnits.save_async`` saves such units concurrently.
    """

    __slots__ = ()

    async def save(self) -> S:
        """Return the object's saved state once it can be taken (raise ``SaveError``)."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    async def restore(self, state: S) -> None:
        """Put the object back into ``state`` (raise ``RestoreError``)."""
        raise NotImplementedError(f"{type(self).__name__}.restore")


class SaveRestoreWith(Generic[S, C]):
    """``SaveRestore[S]`` for a device whose save and restore need a context ``C`` (a channel,
    a memory map, a clock): ``save(context: C) -> S`` and ``restore(state: S, context: C)``.

    The pattern is the plain one with one more argument; ``StateUnits.add_with(name, device,
    context)`` keeps the context and passes it to each call, and a type checker checks that
    the context given has the device's ``C``.
    """

    __slots__ = ()

    def save(self, context: C) -> S:
        """Return the object's saved state, using ``context`` (raise ``SaveError``)."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    def restore(self, state: S, context: C) -> None:
        """Put the object back into ``state``, using ``context`` (raise ``RestoreError``)."""
        raise NotImplementedError(f"{type(self).__name__}.restore")


class AsyncSaveRestoreWith(Generic[S, C]):
    """The async counterpart of ``SaveRestoreWith[S, C]``: ``async def save(context: C) -> S``
    and ``async def restore(state: S, context: C) -> None``."""

    __slots__ = ()

    async def save(self, context: C) -> S:
        """Return the object's saved state, using ``context`` (raise ``SaveError``)."""
        raise NotImplementedError(f"{type(self).__name__}.save")

    async def restore(self, state: S, context: C) -> None:
        """Put the object back into ``state``, using ``context`` (raise ``RestoreError``)."""
        raise NotImplementedError(f"{type(self).__name__}.restore")


# The generic bases whose first argument is the state type (``state_type`` reads it).
_STATE_BASES = (SaveRestore, AsyncSaveRestore, SaveRestoreWith, AsyncSaveRestoreWith)


@savedstate(package="save_restore")
class NoSavedState(Protobuf, package="save_restore"):
    """Convenience type for objects that have no saved state."""


class SavedStateNotSupported:
    """The state type of objects that cannot be saved: it has no values.

    ``save_blob`` of a ``SaveRestore[SavedStateNotSupported]`` raises ``SaveError.NotSupported``
    without calling ``save``; ``restore_blob`` into one raises
    ``RestoreError.SavedStateNotSupported``.
    """

    __slots__ = ()

    def __new__(cls) -> NoReturn:
        raise TypeError("SavedStateNotSupported has no values")


def _describe(cause: BaseException | str) -> str:
    return cause if isinstance(cause, str) else (str(cause) or type(cause).__name__)


# -- errors -----------------------------------------------------------------------------------


class SaveError(SavestateError):
    """Saving failed. Kinds: ``NotSupported``, ``ChildError``, ``InvalidChildSavedState``,
    ``Other``."""

    NotSupported: ClassVar[type[SaveNotSupported]]
    ChildError: ClassVar[type[SaveChildError]]
    InvalidChildSavedState: ClassVar[type[SaveInvalidChildSavedState]]
    Other: ClassVar[type[SaveOther]]

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.__dict__))


class RestoreError(SavestateError):
    """Restoring failed. Kinds: ``UnknownEntryId``, ``ChildError``, ``ProtobufDecode``,
    ``SavedStateNotSupported``, ``InvalidSavedState``, ``Other``."""

    UnknownEntryId: ClassVar[type[RestoreUnknownEntryId]]
    ChildError: ClassVar[type[RestoreChildError]]
    ProtobufDecode: ClassVar[type[RestoreProtobufDecode]]
    SavedStateNotSupported: ClassVar[type[RestoreSavedStateNotSupported]]
    InvalidSavedState: ClassVar[type[RestoreInvalidSavedState]]
    Other: ClassVar[type[RestoreOther]]

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[SavestateError], state: dict[str, Any]) -> SavestateError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, state.get("reason", ""))
    return err


def _set_cause(err: BaseException, cause: BaseException | str) -> None:
    """Keep ``cause`` (an exception or a message) on ``err``, chained as ``__cause__``."""
    setattr(err, "cause", cause)  # noqa: B010 -- declared on each kind that has a cause
    if isinstance(cause, BaseException):
        err.__cause__ = cause


class SaveNotSupported(SaveError):
    """The object cannot be saved."""

    def __init__(self) -> None:
        super().__init__("save state not supported")


class SaveChildError(SaveError):
    """Saving the named child failed; nested child names are joined with ``/``."""

    cause: BaseException | str

    def __init__(self, name: str, cause: BaseException | str) -> None:
        self.name = name
        _set_cause(self, cause)
        names, inner = _child_chain(self, SaveChildError)
        super().__init__(f"failed to save child device {'/'.join(names)}: {_describe(inner)}")

    @property
    def names(self) -> list[str]:
        """The child path, outermost first (``["chipset", "pic"]``)."""
        return _child_chain(self, SaveChildError)[0]


class SaveInvalidChildSavedState(SaveError):
    """A child's saved state could not be used (e.g. it did not encode)."""

    cause: BaseException | str

    def __init__(self, cause: BaseException | str) -> None:
        _set_cause(self, cause)
        super().__init__(f"child saved state is invalid: {_describe(cause)}")


class SaveOther(SaveError):
    """Any other failure; ``str()`` is the cause's."""

    cause: BaseException | str

    def __init__(self, cause: BaseException | str) -> None:
        _set_cause(self, cause)
        super().__init__(_describe(cause))


class RestoreUnknownEntryId(RestoreError):
    """A saved entry (a unit or child name) matches nothing in the object being restored."""

    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(f"unknown entry id: {id}")


class RestoreChildError(RestoreError):
    """Restoring the named child failed; nested child names are joined with ``/``."""

    cause: BaseException | str

    def __init__(self, name: str, cause: BaseException | str) -> None:
        self.name = name
        _set_cause(self, cause)
        names, inner = _child_chain(self, RestoreChildError)
        super().__init__(
            f"failed to restore child device {'/'.join(names)}: {_describe(inner)}"
        )

    @property
    def names(self) -> list[str]:
        """The child path, outermost first (``["chipset", "pic"]``)."""
        return _child_chain(self, RestoreChildError)[0]


class RestoreProtobufDecode(RestoreError):
    """The saved bytes did not decode (the cause is a ``DecodeError`` with the field path)."""

    cause: BaseException | str

    def __init__(self, cause: BaseException | str) -> None:
        _set_cause(self, cause)
        super().__init__(f"failed to decode protobuf: {_describe(cause)}")


class RestoreSavedStateNotSupported(RestoreError):
    """A saved state was given to an object that cannot be restored."""

    def __init__(self) -> None:
        super().__init__("unexpected saved state")


class RestoreInvalidSavedState(RestoreError):
    """The saved state decoded but its values are not acceptable."""

    cause: BaseException | str

    def __init__(self, cause: BaseException | str) -> None:
        _set_cause(self, cause)
        super().__init__(f"saved state is invalid: {_describe(cause)}")


class RestoreOther(RestoreError):
    """Any other failure; ``str()`` is the cause's."""

    cause: BaseException | str

    def __init__(self, cause: BaseException | str) -> None:
        _set_cause(self, cause)
        super().__init__(_describe(cause))


def _child_chain(err: Any, kind: type) -> tuple[list[str], BaseException | str]:
    names: list[str] = []
    while isinstance(err, kind):
        names.append(err.name)  # type: ignore[attr-defined]
        err = err.cause  # type: ignore[attr-defined]
    return names, err


SaveError.NotSupported = SaveNotSupported
SaveError.ChildError = SaveChildError
SaveError.InvalidChildSavedState = SaveInvalidChildSavedState
SaveError.Other = SaveOther
RestoreError.UnknownEntryId = RestoreUnknownEntryId
RestoreError.ChildError = RestoreChildError
RestoreError.ProtobufDecode = RestoreProtobufDecode
RestoreError.SavedStateNotSupported = RestoreSavedStateNotSupported
RestoreError.InvalidSavedState = RestoreInvalidSavedState
RestoreError.Other = RestoreOther
for _outer in (SaveError, RestoreError):
    for _attr, _kind in list(vars(_outer).items()):
        if isinstance(_kind, type) and issubclass(_kind, _outer):
            _kind.__qualname__ = f"{_outer.__name__}.{_attr}"


def as_save_error(exc: BaseException) -> SaveError:
    """``exc`` as a ``SaveError`` (wrapped in ``SaveError.Other`` unless it is one)."""
    return exc if isinstance(exc, SaveError) else SaveError.Other(exc)


def as_restore_error(exc: BaseException) -> RestoreError:
    """``exc`` as a ``RestoreError``: a ``DecodeError`` becomes ``ProtobufDecode``, anything
    else that is not a ``RestoreError`` becomes ``Other``."""
    if isinstance(exc, RestoreError):
        return exc
    if isinstance(exc, DecodeError):
        return RestoreError.ProtobufDecode(exc)
    return RestoreError.Other(exc)


# -- the state type of an object --------------------------------------------------------------


def state_type(obj: object) -> type | None:
    """The ``S`` of ``SaveRestore[S]`` (or ``AsyncSaveRestore[S]``, ``SaveRestoreWith[S, C]``,
    ``AsyncSaveRestoreWith[S, C]``) in the declaration of ``obj``'s class (or of the class
    itself), or None when the class does not name one."""
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) in _STATE_BASES:
                arg = typing.get_args(base)[0]
                return arg if isinstance(arg, type) else None
    return None


def check_device(obj: object, call: str, needs: tuple[str, ...] = ("save", "restore")) -> None:
    """Raise ``TypeError`` unless ``obj`` has the methods ``needs`` (a device: a
    ``SaveRestore`` or one of its kinds), naming ``call`` and what it was given, before
    anything runs: a state or a blob passed in place of the device is the usual mistake, and
    would fail later as a bare ``AttributeError``."""
    if all(callable(getattr(obj, name, None)) for name in needs):
        return
    given = type(obj).__name__
    if isinstance(obj, SavedStateBlob):
        given += ", a blob of saved state"
    elif isinstance(obj, Protobuf):
        given += ", a saved state, not the device that saves and restores it"
    methods = " and ".join(f"{name}()" for name in needs)
    raise TypeError(f"{call} takes a device with {methods} (a SaveRestore), got {given}")


def is_async_device(obj: object, action: str = "save") -> bool:
    """Whether ``obj`` must be awaited: an ``AsyncSaveRestore`` or ``AsyncSaveRestoreWith``, or
    an object whose ``action`` method (``save`` or ``restore``) is a coroutine function."""
    return isinstance(obj, (AsyncSaveRestore, AsyncSaveRestoreWith)) or (
        inspect.iscoroutinefunction(getattr(obj, action, None))
    )


def check_not_async(obj: object, call: str, instead: str, action: str = "restore") -> None:
    """Raise ``TypeError`` when ``obj`` is an async device (``is_async_device``), which the
    synchronous ``call`` cannot run: calling its ``action`` method would only make a
    coroutine, so a restore would return as if it had restored the device, and a save would
    have no state to write."""
    if is_async_device(obj, action):
        raise TypeError(
            f"{call} cannot {action} {type(obj).__name__}, an async device: use {instead}"
        )


def _check_savable(obj: object) -> type | None:
    st = state_type(obj)
    if st is SavedStateNotSupported:
        raise SaveError.NotSupported()
    return st


def save_blob(obj: SaveRestore[Any]) -> SavedStateBlob:
    """Save ``obj`` and encode its state (a root) as a blob.

    Raises ``SaveError``: ``NotSupported`` for a ``SaveRestore[SavedStateNotSupported]``, the
    object's own ``SaveError``, or ``Other`` wrapping whatever else failed (an ``EncodeError``
    naming the field, a state that is not a root). ``obj`` without a ``save`` method (a state
    given instead of its device), or an async device (``save_blob_async`` saves it), is a
    ``TypeError``.
    """
    check_device(obj, "save_blob()", ("save",))
    check_not_async(obj, "save_blob()", "`await save_blob_async(device)`", "save")
    return saved_blob(obj, obj.save)


def saved_blob(obj: object, save: Callable[[], Any]) -> SavedStateBlob:
    """``save()`` (the save method of ``obj``, bound to any arguments it takes), checked
    against ``obj``'s state type and encoded: what ``save_blob`` does for each protocol."""
    st = _check_savable(obj)
    try:
        state = save()
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc
    if inspect.isawaitable(state):
        _never_started(state)
        refused = TypeError(
            "save() returned an awaitable: an async device is saved with "
            "`await save_blob_async()` or `await units.save_async()`"
        )
        raise SaveError.Other(refused) from refused
    try:
        return _blob_of(obj, st, state)
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc


def _never_started(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that a synchronous call got and cannot run: nothing of it ran, and
    closing it spares the "never awaited" warning."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


async def saved_blob_async(
    obj: object, save: Callable[[], Awaitable[Any]], timeout: float | None = None
) -> SavedStateBlob:
    """``await save()`` within ``timeout`` seconds, checked and encoded as ``saved_blob``
    does; running out of time is ``SaveError.Other`` with a ``TimeoutError`` cause."""
    st = _check_savable(obj)
    try:
        return _blob_of(obj, st, await within(save(), timeout, "save"))
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc


def _blob_of(obj: object, st: type | None, state: Any) -> SavedStateBlob:
    """Check a state ``save`` returned against the state type ``st``, and encode it."""
    if st is not None and not isinstance(state, st):
        raise TypeError(
            f"{type(obj).__name__}.save() returned {type(state).__name__}, "
            f"expected {st.__name__}"
        )
    if not isinstance(state, Protobuf):
        raise TypeError(
            f"{type(obj).__name__}.save() returned {type(state).__name__}, "
            "which is not a saved-state root"
        )
    return SavedStateBlob.new(state)


async def within(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """``await awaitable``, cancelled after ``timeout`` seconds (None: no limit) with a
    ``TimeoutError`` saying that ``what`` did not finish in time."""
    if timeout is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError as exc:  # not the builtin TimeoutError before Python 3.11
        raise TimeoutError(f"{what} did not finish within {timeout:g} s") from exc


async def _done(value: T) -> T:
    return value


def as_awaitable(value: Awaitable[T] | T) -> Awaitable[T]:
    """``value`` when it is awaitable, else an awaitable of it: what the ``save`` or
    ``restore`` of a synchronous device gave, its work done already."""
    return value if inspect.isawaitable(value) else _done(value)


def check_timeout(timeout: float | None) -> None:
    """Raise ``ValueError`` unless ``timeout`` is None or a positive number of seconds."""
    if timeout is None:
        return
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or math.isnan(timeout) or timeout <= 0):
        raise ValueError(f"timeout must be None or a positive number of seconds, got {timeout!r}")


# -- limits -----------------------------------------------------------------------------------

# The ``(max_size, max_depth)`` of the restore running in this context: a nested restore (a
# device restoring its children from inside its own ``restore``) decodes under the limits its
# caller gave, without having to be handed them.
_LIMITS: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar(
    "savestate_restore_limits", default=(DEFAULT_MAX_SIZE, DEFAULT_MAX_DEPTH)
)


def check_limits(max_size: int, max_depth: int) -> None:
    """Raise ``ValueError`` unless ``max_size`` is a non-negative int and ``max_depth`` an int
    in ``1..MAX_ALLOWED_DEPTH`` (as ``Protobuf.decode`` requires)."""
    if max_size.__class__ is not int or max_size < 0:
        raise ValueError("max_size must be a non-negative int")
    if max_depth.__class__ is not int or not 1 <= max_depth <= MAX_ALLOWED_DEPTH:
        raise ValueError(f"max_depth must be an int in 1..{MAX_ALLOWED_DEPTH}")


def current_limits(
    max_size: int | None = None, max_depth: int | None = None
) -> tuple[int, int]:
    """``(max_size, max_depth)``: the ones given, else those of the restore this call runs
    inside, else the defaults (64 MiB, 100); checked with ``check_limits``."""
    size, depth = _LIMITS.get()
    size = size if max_size is None else max_size
    depth = depth if max_depth is None else max_depth
    check_limits(size, depth)
    return size, depth


@contextlib.contextmanager
def restore_limits(max_size: int | None, max_depth: int | None) -> Iterator[tuple[int, int]]:
    """Run the block with ``current_limits(max_size, max_depth)`` as the limits of every
    restore inside it; yields them."""
    limits = current_limits(max_size, max_depth)
    token = _LIMITS.set(limits)
    try:
        yield limits
    finally:
        _LIMITS.reset(token)


def parse_for(
    obj: object,
    blob: SavedStateBlob,
    max_size: int | None = None,
    max_depth: int | None = None,
) -> Any:
    """Decode ``blob`` as the state type of ``obj`` (or, when the class does not name one, as
    the registered root its type URL names). Raises ``RestoreError`` and calls nothing.
    The limits default to those of the restore this runs inside (``current_limits``)."""
    max_size, max_depth = current_limits(max_size, max_depth)
    st = state_type(obj)
    if st is SavedStateNotSupported:
        raise RestoreError.SavedStateNotSupported()
    if st is None:
        st = root_for_url(blob.type_url)
        if st is None:
            raise RestoreError.ProtobufDecode(
                DecodeError(f"no saved-state root is registered for {blob.type_url!r}")
            )
    elif info_of(st) is None:
        raise RestoreError.Other(TypeError(f"{st.__name__} is not a saved-state type"))
    state_cls = st

    def parse() -> Any:
        type_url_of(state_cls)
        return blob.parse(state_cls, max_depth=max_depth, max_size=max_size)

    return decoded_state(parse)


def decoded_state(decode: Callable[[], T]) -> T:
    """``decode()``, a state's decode, with its errors as a restore reports them: a
    ``DecodeError`` as ``RestoreError.ProtobufDecode``, any other of the library's errors
    (a class that is not a saved-state root, say) as ``RestoreError.Other``, and a
    ``RestoreError`` (a snapshot file's own) as it is."""
    try:
        return decode()
    except RestoreError:
        raise
    except DecodeError as exc:
        raise RestoreError.ProtobufDecode(exc) from exc
    except SavestateError as exc:
        raise RestoreError.Other(exc) from exc


def restore_blob(
    obj: SaveRestore[Any],
    blob: SavedStateBlob,
    *,
    max_size: int | None = None,
    max_depth: int | None = None,
) -> None:
    """Decode ``blob`` as ``obj``'s state type (checking the type URL first), then restore.

    ``max_size`` and ``max_depth`` bound this decode and every one made while ``obj``
    restores (blobs of child devices, state units); left out, they are those of the restore
    this call is inside, else the defaults (64 MiB, 100).

    Raises ``RestoreError``: ``SavedStateNotSupported``, ``ProtobufDecode`` (type mismatch or
    bad bytes, with the field path), the object's own ``RestoreError``, or ``Other``. ``obj``
    without a ``restore`` method, or an async device (``restore_blob_async`` restores it), is a
    ``TypeError``, before anything is decoded.
    """
    check_device(obj, "restore_blob()", ("restore",))
    check_not_async(obj, "restore_blob()", "`await restore_blob_async(device, blob)`")
    with restore_limits(max_size, max_depth) as (size, depth):
        state = parse_for(obj, blob, size, depth)
        call_restore(obj, state)


def call_restore(obj: SaveRestore[Any], state: Any) -> None:
    """``obj.restore(state)``, with any failure turned into a ``RestoreError``."""
    restored(lambda: obj.restore(state))


def call_save(obj: SaveRestore[Any]) -> Any:
    """``obj.save()``, with any failure turned into a ``SaveError``."""
    _check_savable(obj)
    try:
        return obj.save()
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc


def restored(restore: Callable[[], object]) -> None:
    """``restore()`` (a restore method bound to its state, and context if any), with any
    failure turned into a ``RestoreError``: what ``call_restore`` does for each protocol.
    A ``restore`` that gives back an awaitable (an async method where a synchronous one was
    expected) has restored nothing: that is ``RestoreError.Other`` too, never a success."""
    try:
        result = restore()
    except RestoreError:
        raise
    except Exception as exc:
        raise as_restore_error(exc) from exc
    if inspect.isawaitable(result):
        _never_started(result)
        refused = TypeError(
            "restore() returned an awaitable: an async device is restored with "
            "`await restore_blob_async()` or `await units.restore_async()`"
        )
        raise RestoreError.Other(refused) from refused


async def restored_async(
    restore: Callable[[], Awaitable[None]], timeout: float | None = None
) -> None:
    """``await restore()`` within ``timeout`` seconds, failures turned into a ``RestoreError``
    (running out of time: ``RestoreError.Other`` with a ``TimeoutError`` cause)."""
    try:
        await within(restore(), timeout, "restore")
    except RestoreError:
        raise
    except Exception as exc:
        raise as_restore_error(exc) from exc


# -- async objects ----------------------------------------------------------------------------


async def save_blob_async(
    obj: AsyncSaveRestore[Any], *, timeout: float | None = None
) -> SavedStateBlob:
    """``await obj.save()`` and encode the state as a blob: ``save_blob`` for an
    ``AsyncSaveRestore``, with the same error kinds.

    ``timeout`` (seconds; None: no limit) bounds the save; running out of time cancels it and
    raises ``SaveError.Other`` whose cause is a ``TimeoutError``. A synchronous device is saved
    too, as the state units' ``save_async`` saves one (its ``save`` runs to its end).
    """
    check_device(obj, "save_blob_async()", ("save",))
    check_timeout(timeout)
    return await saved_blob_async(obj, lambda: as_awaitable(obj.save()), timeout)


async def restore_blob_async(
    obj: AsyncSaveRestore[Any],
    blob: SavedStateBlob,
    *,
    max_size: int | None = None,
    max_depth: int | None = None,
    timeout: float | None = None,
) -> None:
    """``restore_blob`` for an ``AsyncSaveRestore``: decode ``blob`` as ``obj``'s state type
    (checking the type URL first, under ``max_size`` and ``max_depth``), then
    ``await obj.restore(state)``, with the same error kinds.

    ``timeout`` (seconds; None: no limit) bounds the restore; running out of time cancels it
    and raises ``RestoreError.Other`` whose cause is a ``TimeoutError``. Nothing is rolled
    back here (one object has nothing to roll back to): ``StateUnits.restore_async`` does.
    A synchronous device is restored too, as the state units' ``restore_async`` restores one
    (its ``restore`` runs to its end).
    """
    check_device(obj, "restore_blob_async()", ("restore",))
    check_timeout(timeout)
    with restore_limits(max_size, max_depth) as (size, depth):
        state = parse_for(obj, blob, size, depth)
        await restored_async(lambda: as_awaitable(obj.restore(state)), timeout)
