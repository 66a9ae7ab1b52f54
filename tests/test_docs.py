"""The documentation site builds with warnings as errors, its guide has the pages users look
for, its API reference renders every module of the package, and every public name reachable
from ``savestate`` has a docstring."""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import savestate

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ["declaring", "save-restore", "blobs-units", "snapshots", "compatibility", "porting",
         "cli", "json", "typing", "performance"]


def test_guide_pages_are_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in GUIDE:
        assert (ROOT / "docs" / "guide" / f"{page}.md").is_file(), page
        assert f"guide/{page}.md" in config, page
    assert "strict: true" in config


def test_readme_gives_the_build_command() -> None:
    assert "mkdocs build --strict" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra is not installed",
)
def test_site_builds_strict(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "api" / "state" / "index.html").read_text(encoding="utf-8")
    assert "Put the object back into" in api  # SaveRestore.restore's docstring, rendered
    internals = (tmp_path / "api" / "codec-internals" / "index.html").read_text(encoding="utf-8")
    assert 'id="savestate.codec.front.Codec.decode"' in internals


def test_api_reference_covers_every_module() -> None:
    # Each module of the package is rendered by a ``::: module`` line of a page in the nav
    # (``__main__`` only runs the command line; the C extension's functions are not rendered).
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    rendered: set[str] = set()
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        assert f"api/{page.name}" in config, f"{page.name} is not in the nav"
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.startswith("::: "):
                rendered.add(line[4:].strip())
    modules = {"savestate"} | {
        info.name for info in pkgutil.walk_packages(savestate.__path__, "savestate.")
    }
    modules -= {"savestate.__main__", "savestate.codec._speedups"}
    assert sorted(modules - rendered) == [], "add a '::: MODULE' line to a page of docs/api"
    assert sorted(rendered - modules) == [], "docs/api renders modules that do not exist"


def _undocumented(obj: object, where: str) -> list[str]:
    missing = [] if (getattr(obj, "__doc__", None) or "").strip() else [where]
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if (inspect.isfunction(func) or isinstance(member, property)) and not (
                (func.__doc__ or "").strip()
            ):
                missing.append(f"{where}.{name}")
    return missing


def test_every_public_callable_has_a_docstring() -> None:
    missing: list[str] = []
    for name in savestate.__all__:
        obj = getattr(savestate, name)
        if inspect.ismodule(obj):
            for inner in getattr(obj, "__all__", []):
                value = getattr(obj, inner)
                if isinstance(value, types.GenericAlias):
                    continue  # a type alias (Python 3.10 calls `Callable[[int], None]` a class)
                if inspect.isclass(value) or inspect.isfunction(value):
                    missing += _undocumented(value, f"{name}.{inner}")
        elif inspect.isclass(obj) or inspect.isfunction(obj):
            missing += _undocumented(obj, name)
    assert missing == []
