"""The fuzz targets, bounded, in the normal test suite (no atheris needed).

Every target of ``fuzz/targets.py`` runs over its committed seed corpus and then over a few
thousand inputs made by seeded mutations of those seeds (bit flips, byte overwrites with
interesting values, insertions, deletions, truncations, splices of two seeds, varint and length
tampering): the same checks as the coverage-guided run (``python -m fuzz.run``), deterministic
and fast. A hypothesis test adds arbitrary bytes for the decoding targets.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets

CORPUS = Path(__file__).parent.parent / "fuzz" / "corpus"
INPUTS_PER_TARGET = {"restore_units": 1500, "read_snapshot": 1500}
DEFAULT_INPUTS = 2500
INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12, 0x0B, 0x0C, 0x0F]


def _seeds(target: str) -> list[bytes]:
    directory = CORPUS / target
    return [p.read_bytes() for p in sorted(directory.iterdir())] if directory.is_dir() else []


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    """One random edit of ``data`` (more, now and then)."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 4))):
        op = rng.randrange(8)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[pos % len(out)] = rng.choice(INTERESTING)
        elif op == 2:
            out[pos:pos] = bytes(rng.choice(INTERESTING) for _ in range(rng.randint(1, 8)))
        elif op == 3 and out:
            del out[pos:pos + rng.randint(1, 16)]
        elif op == 4:
            del out[pos:]
        elif op == 5:
            other = rng.choice(seeds) if seeds else b""
            start = rng.randrange(len(other) + 1)
            out[pos:pos] = other[start:start + rng.randint(1, 64)]
        elif op == 6:  # an absurd varint (a length, a tag or a value)
            out[pos:pos] = rng.choice([b"\xff" * 9 + b"\x01", b"\x80" * 10 + b"\x01",
                                       b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"])
        elif op == 7 and out:  # repeat a chunk (merges, duplicate keys)
            chunk = bytes(out[pos:pos + rng.randint(2, 32)])
            out[pos:pos] = chunk * rng.randint(2, 20)
    return bytes(out)


@pytest.mark.parametrize("target", list(targets.TARGETS))
def test_target_on_seeds_and_mutations(target: str) -> None:
    seeds = _seeds(target)
    for seed in seeds:
        targets.run_one(target, seed)
    rng = random.Random(f"savestate-{target}")
    pool = seeds or [b""]
    for _ in range(INPUTS_PER_TARGET.get(target, DEFAULT_INPUTS)):
        targets.run_one(target, mutate(rng, rng.choice(pool), pool))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=256), st.sampled_from(["decode_root", "blob_parse"]))
def test_targets_on_arbitrary_bytes(data: bytes, target: str) -> None:
    targets.run_one(target, data)
