"""Shared test set-up: hypothesis profiles (small by default, larger on request), and the
codec's strict mode (an unexpected exception in a compiled codec fails the test instead of
falling back to the interpreter)."""

from __future__ import annotations

import os

os.environ.setdefault("SAVESTATE_STRICT", "1")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SAVESTATE_HYPOTHESIS_PROFILE", "default"))
