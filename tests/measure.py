"""Measuring what a call costs, for the tests that bound it."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any


def peak(fn: Callable[[], object]) -> tuple[int, Any]:
    """The peak of memory traced while ``fn()`` runs (after a collection), and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()
