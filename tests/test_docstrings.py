"""Every public callable in every module of the package has a docstring.

The walk imports each module of ``savestate`` (``__main__`` excepted: importing it runs the command
line) and checks what each module defines itself, under a name not starting with ``_``: functions,
classes, and the methods, class and static methods, properties and nested classes of those classes.
A name bound in one module but defined in another is checked where it is defined. Members of
private classes are not public and are not checked.

``STILL_MISSING`` lists the names, in files being rewritten, that do not have a docstring yet. It
must stay exact: a name on it that has one now (or no longer exists) fails the test too, so that
the list only shrinks.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from functools import cached_property
from types import ModuleType
from typing import Any

import savestate

# Files whose docstrings are being written as part of a rewrite; only their names may be listed.
REWRITTEN_MODULES = frozenset({
    "savestate.codec.compiler",
    "savestate.codec.accel",
    "savestate.codec._speedups",
    "savestate.state.snapshot",
    "savestate.state.blob",
})

# Qualified names (``module.qualname``) in REWRITTEN_MODULES still without a docstring.
STILL_MISSING: frozenset[str] = frozenset()


def _modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.walk_packages(savestate.__path__, "savestate.")
        if info.name.rpartition(".")[2] != "__main__"
    ]
    return [savestate] + [importlib.import_module(name) for name in sorted(names)]


def _generated_doc(cls: type, doc: str) -> bool:
    """Whether a class's docstring is one Python made up: a dataclass's or named tuple's
    signature (``Name(a: int)``), or an enum's stock text."""
    text = doc.strip()
    if issubclass(cls, enum.Enum) and text == "An enumeration.":
        return True
    return (
        (dataclasses.is_dataclass(cls) or issubclass(cls, tuple))
        and "\n" not in text
        and text.startswith(f"{cls.__name__}(")
        and text.endswith(")")
    )


def _documented(obj: Any) -> bool:
    return bool((getattr(obj, "__doc__", None) or "").strip())


def _defined_in(obj: Any, module: str) -> bool:
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "func", target)  # functools.cached_property
    return getattr(target, "__module__", None) == module


def _class_missing(cls: type, where: str, module: str) -> Iterator[str]:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip() or _generated_doc(cls, doc):
        yield where
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if inspect.isclass(member):
            # Only a class defined here, not one bound as an attribute (an alias).
            if member.__module__ == module and member.__qualname__ == f"{cls.__qualname__}.{name}":
                yield from _class_missing(member, f"{where}.{name}", module)
        elif (
            (isinstance(member, (property, cached_property)) or callable(member))
            and _defined_in(member, module)
            and not _documented(member)
        ):
            yield f"{where}.{name}"


def _undocumented() -> list[str]:
    missing: list[str] = []
    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or not callable(obj):
                continue
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # imported from elsewhere: checked where it is defined
            where = f"{module.__name__}.{getattr(obj, '__qualname__', name)}"
            if inspect.isclass(obj):
                missing += _class_missing(obj, where, module.__name__)
            elif not _documented(obj):
                missing.append(where)
    return sorted(set(missing))


def test_every_public_callable_has_a_docstring() -> None:
    missing = _undocumented()
    unexpected = [name for name in missing if name not in STILL_MISSING]
    assert unexpected == [], (
        "public callables without a docstring:\n  " + "\n  ".join(unexpected)
    )


def test_the_list_of_names_still_missing_is_exact() -> None:
    missing = set(_undocumented())
    stale = sorted(STILL_MISSING - missing)
    assert stale == [], (
        "these have a docstring now, or no longer exist: take them off STILL_MISSING:\n  "
        + "\n  ".join(stale)
    )
    outside = sorted(
        name for name in STILL_MISSING
        if not any(name.startswith(f"{module}.") for module in REWRITTEN_MODULES)
    )
    assert outside == [], "only names in the files being rewritten may be listed"


def test_the_walk_sees_what_it_should() -> None:
    # A check on the checker: it must reach every layer, and catch a made-up dataclass doc.
    names = {module.__name__ for module in _modules()}
    for layer in ("model", "codec", "schemaio", "state", "cli"):
        assert f"savestate.{layer}" in names
    assert "savestate.state.snapshot" in names and "savestate.__main__" not in names

    @dataclasses.dataclass
    class Plain:
        a: int

    assert _generated_doc(Plain, Plain.__doc__ or "")
    assert list(_class_missing(Plain, "Plain", __name__)) == ["Plain"]

    class Documented:
        """Has one."""

        @property
        def size(self) -> int:
            return 0

        def run(self) -> None:
            """Runs."""

    assert list(_class_missing(Documented, "Documented", __name__)) == ["Documented.size"]
