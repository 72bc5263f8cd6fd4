"""The single definition of a timed region.

A region starts after ``synchronize()`` returns and stops after a second ``synchronize()``, so
asynchronous device work queued inside it is counted and work queued before it is not. The clock
is ``time.perf_counter`` (wall time, seconds). Both ``mlpbench run`` and the pytest-benchmark suite
time epochs through ``timed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T], synchronize: Callable[[], None]) -> tuple[T, float]:
    """Run ``fn()`` between two device synchronizations; return (its result, elapsed seconds)."""
    synchronize()
    start = time.perf_counter()
    result = fn()
    synchronize()
    return result, time.perf_counter() - start
