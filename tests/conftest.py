"""Shared test set-up: hypothesis profiles (small by default, larger on request), and the
codec's strict mode (an unexpected exception in a compiled codec fails the test instead of
falling back to the interpreter)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SAVESTATE_STRICT", "1")
# The code cache in a directory of this run's own (never the user's ~/.cache), empty at the
# start: a class compiled twice in the run (the same shape declared again) comes from it.
if "SAVESTATE_CACHE_DIR" not in os.environ:
    os.environ["SAVESTATE_CACHE_DIR"] = tempfile.mkdtemp(prefix="savestate-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SAVESTATE_CACHE_DIR"], ignore_errors=True)

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
