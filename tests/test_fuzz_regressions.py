"""Every input that ever made a fuzz target fail, replayed (``tests/fuzz_regressions/<target>/``).

How each was fixed:

- ``restore_units/crash-{3cda,ae8c,c720,e277,fb37}*``: a unit's ``restore`` failed after
  earlier units were restored; the rollback restored the earlier units in reverse order, so the
  chipset's PIT was put back while the CPU clock still held the new time, and the machine did
  not come back as it was. Rollback now runs in restore order; and blobs nested in unit states
  (a chipset's children) are decoded before any ``restore`` runs
  (``savestate.state.units.check_nested_blobs``).
- ``restore_units/crash-{479c,9f15}*``: these failed only after earlier inputs: one holding
  only a ``cpu`` record (a unit without a record keeps its state) left the example machine with
  its clock behind its PIT's last tick, a state the PIT's own ``restore`` refuses; a later
  restore that failed could then not put the PIT back, and said so in ``rollback_failures``.
  That is the limit of rolling back by restoring saved states (replayed as a sequence below);
  the target now starts every input from the same consistent state so that a finding never
  depends on the inputs before it. Looking into it also found that units were restored in the
  order of the records rather than, as documented, the order they were added: fixed
  (``tests/test_faults.py``).
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
    assert len(CASES) >= 14


def test_rollback_that_a_unit_refuses_is_reported() -> None:
    """The sequence behind ``restore_units/crash-479c*``: after a restore from a ``cpu``-only
    record, a failing restore either puts every unit back or names the one it could not."""
    from examples.vm.machine import Machine
    from savestate import RestoreError, SavedStateBlob
    from savestate.state.blob import type_url_of
    from savestate.state.saverestore import restore_blob
    from savestate.state.units import SavedStateUnits

    here = Path(__file__).parent / "fuzz_regressions_sequences"
    url = type_url_of(SavedStateUnits)
    machine = Machine()
    machine.run(300)
    first = (here / "restore_units-1-cpu-only").read_bytes()
    restore_blob(machine, SavedStateBlob(type_url=url, value=first))
    before = machine.save()
    with pytest.raises(RestoreError) as info:
        restore_blob(machine, SavedStateBlob(
            type_url=url, value=(here / "restore_units-2-bad-ioapic").read_bytes()))
    if machine.save() != before:
        failures = getattr(info.value, "rollback_failures", [])
        assert any("pit" in note for note in failures), failures
