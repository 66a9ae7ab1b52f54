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

import typing
from typing import Any, ClassVar, Generic, NoReturn, TypeVar

from ..declare import Protobuf, savedstate
from ..errors import DecodeError, SavestateError
from ..model.registry import info_of, root_for_url
from .blob import SavedStateBlob, type_url_of

__all__ = [
    "NoSavedState",
    "RestoreError",
    "SaveError",
    "SaveRestore",
    "SavedStateNotSupported",
    "restore_blob",
    "save_blob",
    "state_type",
]

S = TypeVar("S")


class SaveRestore(Generic[S]):
    """Base of objects with saved state: ``class Pic(SaveRestore[SavedState])``.

    ``save()`` returns the state (raise ``SaveError`` on failure); ``restore(state)`` puts it
    back (raise ``RestoreError``, e.g. ``RestoreError.InvalidSavedState("bad icw2")``). The
    state type ``S`` is read from the class declaration by ``state_type`` so that a blob can be
    checked and decoded before ``restore`` is called.
    """

    __slots__ = ()

    def save(self) -> S:
        raise NotImplementedError(f"{type(self).__name__}.save")

    def restore(self, state: S) -> None:
        raise NotImplementedError(f"{type(self).__name__}.restore")


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
    """The ``S`` of ``SaveRestore[S]`` in the declaration of ``obj``'s class (or of the class
    itself), or None when the class does not name one."""
    cls = obj if isinstance(obj, type) else type(obj)
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is SaveRestore:
                (arg,) = typing.get_args(base)
                return arg if isinstance(arg, type) else None
    return None


def _check_savable(obj: object) -> type | None:
    st = state_type(obj)
    if st is SavedStateNotSupported:
        raise SaveError.NotSupported()
    return st


def save_blob(obj: SaveRestore[Any]) -> SavedStateBlob:
    """Save ``obj`` and encode its state (a root) as a blob.

    Raises ``SaveError``: ``NotSupported`` for a ``SaveRestore[SavedStateNotSupported]``, the
    object's own ``SaveError``, or ``Other`` wrapping whatever else failed (an ``EncodeError``
    naming the field, a state that is not a root).
    """
    st = _check_savable(obj)
    try:
        state = obj.save()
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
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc


def parse_for(obj: object, blob: SavedStateBlob) -> Any:
    """Decode ``blob`` as the state type of ``obj`` (or, when the class does not name one, as
    the registered root its type URL names). Raises ``RestoreError`` and calls nothing."""
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
    try:
        type_url_of(st)
        return blob.parse(st)
    except DecodeError as exc:
        raise RestoreError.ProtobufDecode(exc) from exc
    except SavestateError as exc:
        raise RestoreError.Other(exc) from exc


def restore_blob(obj: SaveRestore[Any], blob: SavedStateBlob) -> None:
    """Decode ``blob`` as ``obj``'s state type (checking the type URL first), then restore.

    Raises ``RestoreError``: ``SavedStateNotSupported``, ``ProtobufDecode`` (type mismatch or
    bad bytes, with the field path), the object's own ``RestoreError``, or ``Other``.
    """
    state = parse_for(obj, blob)
    call_restore(obj, state)


def call_restore(obj: SaveRestore[Any], state: Any) -> None:
    """``obj.restore(state)``, with any failure turned into a ``RestoreError``."""
    try:
        obj.restore(state)
    except RestoreError:
        raise
    except Exception as exc:
        raise as_restore_error(exc) from exc


def call_save(obj: SaveRestore[Any]) -> Any:
    """``obj.save()``, with any failure turned into a ``SaveError``."""
    _check_savable(obj)
    try:
        return obj.save()
    except SaveError:
        raise
    except Exception as exc:
        raise SaveError.Other(exc) from exc
