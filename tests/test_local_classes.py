"""Classes declared inside a function: a forward reference binds to the class of the same call.

Two calls of one function declare two families of classes with the same qualified names; an
annotation naming a class declared later in the function must resolve to the class of its own
call, whatever the other calls did meanwhile, in one thread or many.
"""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from savestate import Protobuf, field, u32
from savestate.testing import redeclaring


def _declare(barrier: threading.Barrier | None = None) -> tuple[type, type]:
    """Fa names Fb, declared after it: the reference is resolved on first use."""

    class Fa(Protobuf):
        b: Fb | None = field(1, default=None)  # Fb: declared below, resolved later

    if barrier is not None:
        barrier.wait()  # every thread has declared its Fa before any declares its Fb

    class Fb(Protobuf):
        x: u32 = field(1, default=0)

    return Fa, Fb


def test_two_calls_each_resolve_to_their_own_classes() -> None:
    with redeclaring():
        fa1, fb1 = _declare()
        fa2, fb2 = _declare()
    assert fb1 is not fb2
    # The first call's Fa is used after the second call declared its Fb.
    value = fa1(b=fb1(x=7))
    assert fa1.decode(value.encode()) == value
    assert type(fa1.decode(value.encode()).b) is fb1
    other = fa2(b=fb2(x=9))
    assert type(fa2.decode(other.encode()).b) is fb2


def test_many_threads_each_resolve_to_their_own_classes() -> None:
    threads = 48
    barrier = threading.Barrier(threads)

    def use(i: int) -> bool:
        fa, fb = _declare(barrier)
        value = fa(b=fb(x=i))
        back: Any = fa.decode(value.encode())
        return type(back.b) is fb and back.b.x == i and back == value

    with redeclaring(), ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(use, range(threads)))
    assert results.count(False) == 0


def test_a_resolved_class_no_longer_holds_its_call() -> None:
    """Once the annotations are resolved, the function's locals (its frame) are let go."""
    import weakref

    class Big:
        pass

    def declare() -> tuple[type, Any]:
        big = Big()

        class Ha(Protobuf):
            b: Hb | None = field(1, default=None)

        class Hb(Protobuf):
            x: u32 = field(1, default=0)

        assert big is not None
        return Ha, weakref.ref(big)

    with redeclaring():
        ha, big = declare()
    ha().encode()  # resolves Ha's annotations
    gc.collect()
    assert big() is None
