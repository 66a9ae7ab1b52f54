"""Every input that ever made a fuzz target fail, replayed (``tests/fuzz_regressions/<target>/``).

How each was fixed:

- ``restore_units/*``: a unit's ``restore`` failed after earlier units were restored; the
  rollback restored the earlier units in reverse order, so the chipset's PIT was put back while
  the CPU clock still held the new time, and the machine did not come back as it was. Rollback
  now runs in restore order; and blobs nested in unit states (a chipset's children) are decoded
  before any ``restore`` runs (``savestate.units.check_nested_blobs``).
- ``read_snapshot/*``: the target wrongly expected a snapshot whose payload decodes to pack back
  to the same bytes; a payload may be a non-canonical encoding. The target now compares values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import targets

HERE = Path(__file__).parent / "fuzz_regressions"
CASES = sorted(
    (d.name, f) for d in HERE.iterdir() if d.is_dir() for f in sorted(d.iterdir())
) if HERE.is_dir() else []


@pytest.mark.parametrize("case", CASES, ids=[f"{t}-{f.name[:16]}" for t, f in CASES])
def test_failing_input_passes_now(case: tuple[str, Path]) -> None:
    target, path = case
    targets.run_one(target, path.read_bytes())


def test_there_are_regressions_to_replay() -> None:
    assert len(CASES) >= 12
