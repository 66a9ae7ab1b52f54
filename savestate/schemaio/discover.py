"""Finding the saved-state roots that modules define: what ``savestate proto``, ``savestate
check``, ``--module`` and :func:`savestate.check_compatible` do with module names."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from ..errors import SavestateError, SchemaError
from ..model.registry import roots as registered_roots

__all__ = ["DiscoveryError", "import_module_spec", "load_roots"]

# Modules that declare the library's own roots (NoSavedState, SavedStateUnits).
LIBRARY_MODULES = ("savestate.state.saverestore", "savestate.state.units")


class DiscoveryError(SavestateError):
    """A module cannot be imported, or defines no saved-state roots (the command line reports
    it as a usage error, exit status 2)."""


def import_module_spec(spec: str) -> ModuleType:
    """Import a dotted module name, or a ``.py`` file by path (raises :class:`DiscoveryError`
    for a file that does not exist or is not a module; the module's own errors pass)."""
    path = Path(spec)
    if spec.endswith(".py") or os.sep in spec or (os.altsep and os.altsep in spec):
        if not path.is_file():
            raise DiscoveryError(f"cannot import {spec}: no such file")
        name = path.stem
        file_spec = importlib.util.spec_from_file_location(name, path)
        if file_spec is None or file_spec.loader is None:
            raise DiscoveryError(f"cannot import {spec}: not a Python module")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[name] = module
        try:
            file_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    return importlib.import_module(spec)


def load_roots(modules: Sequence[str]) -> list[type]:
    """Import ``modules`` and return the saved-state roots they define, sorted by proto name.

    A module's roots are those registered while it was imported, those declared in it or in
    its submodules, and those it binds as attributes. Raises :class:`DiscoveryError` for a
    module that cannot be imported or has no roots, :class:`SchemaError` for a bad declaration.
    """
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, so local modules import
    # The library's own roots are registered first, so that they belong to a module only when
    # it binds them, whichever module imported them first.
    for library_module in LIBRARY_MODULES:
        importlib.import_module(library_module)
    found: dict[int, type] = {}
    for spec in modules:
        before = {id(cls) for cls in registered_roots()}
        try:
            module = import_module_spec(spec)
        except (DiscoveryError, SchemaError):
            raise
        except ModuleNotFoundError as exc:
            raise DiscoveryError(f"cannot import {spec}: {exc}") from exc
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            raise DiscoveryError(f"cannot import {spec}: {detail}") from exc
        name = module.__name__
        mine: list[type] = []
        attributes = {id(v) for v in vars(module).values() if isinstance(v, type)}
        for cls in registered_roots():
            own = cls.__module__ == name or cls.__module__.startswith(name + ".")
            # A module that imports NoSavedState (or does `from savestate import *`) uses the
            # library's roots; it does not define them.
            bound = id(cls) in attributes and cls.__module__ not in LIBRARY_MODULES
            if id(cls) not in before or own or bound:
                mine.append(cls)
        if not mine:
            raise DiscoveryError(
                f"{spec} defines no saved-state roots (declare one with @savedstate(package=...))"
            )
        for cls in mine:
            found[id(cls)] = cls
    return [cls for cls in registered_roots() if id(cls) in found]
