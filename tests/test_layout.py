"""The package's layout: no import cycles, no private names across modules, only the
``SavestateError`` family out of public functions.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import``
at any depth counts, function-local ones included. Imports under ``if TYPE_CHECKING:`` are left
out: they are never executed, they only name types for the type checker.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import savestate
from savestate import SavestateError, check_compatible

PACKAGE = Path(savestate.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["savestate", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _base(name: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = name if _is_package(name) else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _edges(name: str) -> Iterator[tuple[str, str, ast.ImportFrom | None]]:
    """``(module imported, name imported or "", node)`` for each savestate import of ``name``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, "", None
            continue
        base = _base(name, node)
        for alias in node.names:
            # `from .x import y` is an edge to `.x.y` when that is a module, else to `.x`.
            target = f"{base}.{alias.name}"
            if target in MODULES:
                yield target, "", node
            elif base in MODULES:
                yield base, alias.name, node


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target, _, _ in _edges(name) if target != name} for name in MODULES
    }


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state:
                found = visit(other)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_the_walk_sees_local_imports() -> None:
    # declare imports the codec front end inside a function: that is an edge too.
    assert "savestate.codec.front" in _graph()["savestate.declare"]
    assert len(MODULES) > 20


def test_no_import_cycles() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# A private C extension and the one module that loads it (as json loads _json).
NATIVE_LOADERS = {"savestate.codec._speedups": "savestate.codec.accel"}


def test_no_private_names_across_modules() -> None:
    found = []
    for name in MODULES:
        for target, imported, _ in _edges(name):
            if imported.startswith("_") and target != name and (
                NATIVE_LOADERS.get(f"{target}.{imported}") != name
            ):
                found.append(f"{name} imports {target}.{imported}")
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        modules = {  # names bound to savestate modules: `from ..state import snapshot`
            (alias.asname or alias.name.rpartition(".")[2])
            for node in _imports(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if f"{_base(name, node)}.{alias.name}" in MODULES
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name} uses {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)


def test_layers_point_down() -> None:
    """The model imports nothing above it; the codec and schema I/O nothing of state or CLI."""
    above = {
        "savestate.model": ("savestate.declare", "savestate.codec", "savestate.state",
                            "savestate.schemaio", "savestate.cli"),
        "savestate.codec": ("savestate.declare", "savestate.state", "savestate.schemaio",
                            "savestate.cli"),
        "savestate.schemaio": ("savestate.declare", "savestate.state", "savestate.cli",
                               "savestate.codec"),
        "savestate.state": ("savestate.schemaio", "savestate.cli"),
    }
    bad = []
    for name, targets in _graph().items():
        for layer, forbidden in above.items():
            if name == layer or name.startswith(layer + "."):
                bad += [f"{name} -> {t}" for t in targets if t.startswith(forbidden)]
    assert not bad, "\n".join(bad)


def test_check_compatible_with_an_unimportable_module_is_a_savestate_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "x.proto").write_text('syntax = "proto3";\npackage x;\nmessage M {}\n')
    with pytest.raises(SavestateError, match="cannot import"):
        check_compatible("savestate_no_such_module_anywhere", against=tmp_path)
    with pytest.raises(SavestateError, match="no such file"):
        check_compatible(str(tmp_path / "missing.py"), against=tmp_path)
