"""The registry of declared classes: the bottom of the model, below the declaration surface.

Every declared class carries a :class:`ClassInfo` (``cls.__savestate__``, read with
:func:`info_of`). The registry keeps three indexes, all guarded by :data:`LOCK`:

- (not an index) a class declared inside a function keeps that call's frame until its
  annotations are resolved, so that a (string) annotation naming a class declared later in the
  function finds the class of the same call, whatever other calls (or threads) declared;
- messages and Oneofs with a package by full proto name (weakly: a dead function-local class
  disappears), for :func:`type_by_name` and :func:`root_for_url`. Two live classes with one
  full name (so one type URL) are a :class:`DuplicateTypeName`, except a class declared again
  at the same ``module.qualname`` (a function declaring classes, run twice): it replaces the
  old one (and so does any class declared inside :func:`redeclaring`). Classes without a
  package are not indexed: their names never reach the wire;
- saved-state roots (``@savedstate``) by full proto name, for :func:`roots`;
- every live declared class, in the order of declaration (weakly), for :func:`declared`, which
  the warm-up call walks.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import sys
import threading
import types
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import SchemaError

if TYPE_CHECKING:
    from ..codec.front import Codec
    from .schema import MessageSchema, OneofSchema

__all__ = [
    "FIELD_KEY",
    "LOCK",
    "TYPE_URL_PREFIX",
    "ClassInfo",
    "DuplicateTypeName",
    "FieldOptions",
    "UnknownTypeName",
    "declared",
    "declared_info",
    "forget_roots",
    "full_name",
    "info_of",
    "is_any",
    "redeclaring",
    "register_root",
    "register_type",
    "remember_scope",
    "root_for_url",
    "roots",
    "type_by_name",
]

# The key under which ``field`` stores its options in a dataclass field's metadata.
FIELD_KEY = "savestate"
TYPE_URL_PREFIX = "type.googleapis.com/"
ANY_NAME = "google.protobuf.Any"


@dataclasses.dataclass(frozen=True)
class FieldOptions:
    """What ``field()`` records in a dataclass field's metadata: the field number, the length
    of a fixed-length array (None when it is not one) and the doc comment for ``.proto`` text."""

    number: int
    length: int | None = None
    doc: str | None = None


class ClassInfo:
    """What savestate keeps on each declared class (``cls.__savestate__``)."""

    __slots__ = (
        "_schema",
        "codec",
        "kind",
        "localns",
        "lock",
        "name",
        "package",
        "reserved",
        "root",
        "transparent",
        "tuple",
        "variant",
        "variants",
    )

    def __init__(self, kind: str, name: str, package: str | None) -> None:
        # "message", "oneof" (the enum itself) or "variant" (one of its variants)
        self.kind = kind
        self.name = name
        self.package = package
        self.root = False
        # Sorted, disjoint ranges of step 1 (a number is a range of one).
        self.reserved: tuple[range, ...] = ()
        self.variant: int | None = None
        self.tuple = False
        self.transparent = False
        # For a oneof: its variant classes in declaration order.
        self.variants: list[type] = []
        self.localns: Mapping[str, Any] = {}
        self._schema: MessageSchema | OneofSchema | None = None
        self.codec: Codec | None = None

    @property
    def schema(self) -> MessageSchema | OneofSchema | None:
        """The class's schema, once built (None until its annotations are resolved)."""
        return self._schema

    @schema.setter
    def schema(self, schema: MessageSchema | OneofSchema | None) -> None:
        self._schema = schema
        if schema is not None and isinstance(self.localns, _ScopeNamespace):
            # Resolved: the declaring call's locals (its frame) are no longer needed.
            self.localns = {}


class DuplicateTypeName(SchemaError):
    """Two live declared classes have one full proto name (and so one type URL)."""


class UnknownTypeName(SchemaError):
    """:func:`type_by_name` was given a name that no live declared class has."""


LOCK = threading.Lock()
_redeclaring: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "savestate_redeclaring", default=False
)
_by_name: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()
_declared: weakref.WeakValueDictionary[int, type] = weakref.WeakValueDictionary()
_declaration_count = itertools.count()
_roots: dict[str, type] = {}


def info_of(cls: object) -> ClassInfo | None:
    """The :class:`ClassInfo` declared on ``cls`` itself (not inherited), else None."""
    if not isinstance(cls, type):
        return None
    info = cls.__dict__.get("__savestate__")
    return info if isinstance(info, ClassInfo) else None


def declared_info(cls: object) -> ClassInfo:
    """The :class:`ClassInfo` of ``cls``; a :class:`SchemaError` if it is not declared."""
    info = info_of(cls)
    if info is None:
        raise SchemaError(f"{getattr(cls, '__name__', cls)!r} is not a savestate class")
    return info


def full_name(cls: type) -> str:
    """``<package>.<Name>`` of a declared class (just the name without a package)."""
    info = declared_info(cls)
    return f"{info.package}.{info.name}" if info.package else info.name


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_any(cls: object) -> bool:
    """Whether ``cls`` is the class standing for ``google.protobuf.Any`` (the blob class)."""
    return getattr(cls, "__savestate_wellknown__", None) == ANY_NAME and info_of(cls) is not None


# ---------------------------------------------------------------------------------------------
# Scopes


class _ScopeNamespace(Mapping[str, Any]):
    """Names an annotation may use besides the module's globals: the locals of the call that
    declared the class, read when the annotation is resolved (so that a class declared later
    in the same call is found, and never one of another call: each call has its own frame).

    The frame is held until the class's schema is built (``ClassInfo.schema``), then let go.
    """

    __slots__ = ("_frame",)

    def __init__(self, frame: types.FrameType) -> None:
        self._frame = frame

    def _locals(self) -> Mapping[str, Any]:
        return self._frame.f_locals

    def __getitem__(self, name: str) -> Any:
        return self._locals()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._locals()))

    def __len__(self) -> int:
        return len(self._locals())


def remember_scope(cls: type) -> Mapping[str, Any]:
    """The extra names the annotations of ``cls`` may use: for a class declared inside a
    function (or a class body inside one), the locals of that very call."""
    if "<locals>" not in cls.__qualname__:
        return {}
    # Find the frame that executed the class statement: the first one outside this package.
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("savestate."):
        frame = frame.f_back  # type: ignore[assignment]
    return _ScopeNamespace(frame) if frame is not None else {}


# ---------------------------------------------------------------------------------------------
# Full names and roots


@contextlib.contextmanager
def redeclaring() -> Iterator[None]:
    """Within this block, a class declared under a full name that another class already has
    replaces it (in :func:`type_by_name`, and as a root) instead of being a
    :class:`DuplicateTypeName`: for tests that declare two versions of one schema side by side.
    The earlier class keeps working; it is only no longer found by its name."""
    token = _redeclaring.set(True)
    try:
        yield
    finally:
        _redeclaring.reset(token)


def _conflict(previous: type | None, cls: type) -> bool:
    return (
        previous is not None
        and previous is not cls
        and _where(previous) != _where(cls)
        and not _redeclaring.get()
    )


def register_type(cls: type) -> None:
    """Record a declared class (for :func:`declared`), and index a message or Oneof with a
    package by its full proto name.

    Raises :class:`DuplicateTypeName` naming both classes when another live class, declared
    elsewhere, has that name.
    """
    info = info_of(cls)
    if info is None:
        return
    with LOCK:
        _declared[next(_declaration_count)] = cls
    if info.package is None or info.kind not in ("message", "oneof"):
        return
    name = f"{info.package}.{info.name}"
    with LOCK:
        previous = _by_name.get(name)
        if _conflict(previous, cls):
            assert previous is not None
            raise DuplicateTypeName(
                f"two classes are named {name} (type URL {TYPE_URL_PREFIX}{name}): "
                f"{_where(previous)} and {_where(cls)}",
                [cls.__name__],
            )
        _by_name[name] = cls
        if previous is not None and previous is not cls and _roots.get(name) is previous:
            del _roots[name]  # the root it replaces, until this one is declared a root too


def declared() -> list[type]:
    """Every declared message, Oneof and variant still alive, in the order of declaration."""
    with LOCK:
        return list(_declared.values())


def register_root(cls: type) -> None:
    """Register a message (its info already marked ``root``) as a saved-state root."""
    name = full_name(cls)
    with LOCK:
        previous = _roots.get(name)
        if _conflict(previous, cls):
            assert previous is not None
            raise DuplicateTypeName(
                f"two saved-state roots are named {name}: {_where(previous)} and {_where(cls)}",
                [cls.__name__],
            )
        _roots[name] = cls


def roots() -> list[type]:
    """Every registered saved-state root, sorted by full proto name."""
    with LOCK:
        return [cls for _, cls in sorted(_roots.items())]


def forget_roots(keep: Iterable[type] = ()) -> None:
    """Unregister every saved-state root except those in ``keep`` (for test suites that import
    throw-away modules; the classes themselves stay declared)."""
    kept = {id(cls) for cls in keep}
    with LOCK:
        for name, cls in list(_roots.items()):
            if id(cls) not in kept:
                del _roots[name]


def root_for_url(url: str) -> type | None:
    """The registered root, or the ``google.protobuf.Any`` class, whose type URL is ``url``
    (``https://`` and the ``type.googleapis.com/`` prefix are optional); else None."""
    name = url.removeprefix("https://").removeprefix(TYPE_URL_PREFIX)
    with LOCK:
        cls = _roots.get(name)
        if cls is None and name == ANY_NAME:
            cls = _by_name.get(name)
            if not is_any(cls):
                cls = None
    return cls


def type_by_name(name: str) -> type:
    """The declared class whose full proto name is ``name`` (``"pkg.Name"``).

    Any message or Oneof declared with a package is found, root or not (a Oneof by the name of
    its enum), once the module declaring it has been imported. Raises :class:`UnknownTypeName`,
    a ``SchemaError``, for a name that no live class has.
    """
    with LOCK:
        cls = _by_name.get(name)
        if cls is not None:
            return cls
        package = name.rpartition(".")[0]
        near = sorted(n for n in _by_name if n.rpartition(".")[0] == package)
    hint = f"; in package {package}: {', '.join(near[:10])}" if near and package else ""
    more = f" and {len(near) - 10} more" if len(near) > 10 else ""
    raise UnknownTypeName(f"no declared class is named {name!r}{hint}{more}")
