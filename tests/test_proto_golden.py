"""Golden .proto files: the text emitted for each module under tests/golden/ is kept exactly.

Each directory ``tests/golden/<module>/`` holds the files ``savestate proto <module>`` writes.
To add a case, create the directory; to accept a deliberate change, run with
``SAVESTATE_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from savestate import proto_files
from savestate.schemaio.discover import load_roots

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def golden_files(case: str) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((GOLDEN / case).glob("*.proto"))}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    emitted = proto_files(load_roots([case]))
    if os.environ.get("SAVESTATE_UPDATE_GOLDEN"):
        for old in (GOLDEN / case).glob("*.proto"):
            old.unlink()
        for name, text in emitted.items():
            (GOLDEN / case / name).write_text(text, encoding="utf-8", newline="\n")
    expected = golden_files(case)
    assert sorted(emitted) == sorted(expected)
    for name, text in emitted.items():
        assert text == expected[name], f"{case}/{name} differs from its golden file"


def test_cases_exist() -> None:
    assert "tests.proto_constructs" in CASES
    assert "examples.quickstart" in CASES
