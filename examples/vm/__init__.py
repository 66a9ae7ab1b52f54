"""A small emulated PC whose devices save and restore through savestate.

The saved-state schemas follow the Rust reference's devices (same packages, names, field numbers
and types); the device logic is a compact simulation written for this example. Run the demo with
``python -m examples.vm``.
"""

from .aio import AsyncMachine
from .machine import Machine

__all__ = ["AsyncMachine", "Machine"]
