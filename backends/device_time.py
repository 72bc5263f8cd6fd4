"""Device-side time of an epoch and of each of its training steps, from GPU events.

A GPU backend records one event before its first step and one after every step of an epoch
(``StepMarks.mark``); nothing is read while the epoch runs, because reading an event's time waits
for it (a host synchronization). The harness reads ``epoch_seconds`` and ``step_seconds`` only
after its clock has stopped (see ``backends.api.EpochMetrics``).

Events are created once per step count (both sets in the first, cold, epoch of that count) and
reused, alternating between two sets: the times of an epoch stay readable until the epoch after
next re-records its set, and reading them later is an error, never a wrong number.
Library-neutral: the caller passes how to make, record and time events (CuPy's ``cuda.Event`` /
``cuda.get_elapsed_time``, torch's ``cuda.Event``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any


class StepMarks:
    """Events around the steps of successive epochs.

    ``new_event()`` makes one timing event; ``record(event)`` records it on the current stream;
    ``wait(event)`` blocks the host until the event has happened; ``elapsed_ms(a, b)`` is the
    device time from a to b in milliseconds, for events that have happened (CUDA's elapsed-time
    call does not wait: on an unfinished event it fails with "not ready").
    """

    def __init__(
        self,
        new_event: Callable[[], Any],
        record: Callable[[Any], None],
        wait: Callable[[Any], None],
        elapsed_ms: Callable[[Any, Any], float],
    ) -> None:
        self._new_event, self._record, self._wait = new_event, record, wait
        self._elapsed_ms = elapsed_ms
        self._sets: dict[tuple[int, int], list[Any]] = {}
        self._uses: dict[tuple[int, int], int] = {}
        self._epochs = 0
        self._events: list[Any] = []
        self._next = 0

    def start_epoch(self, n_steps: int) -> EpochEvents:
        """Begin an epoch of ``n_steps`` steps: ``n_steps + 1`` calls to ``mark`` follow."""
        key = (n_steps, self._epochs % 2)
        self._epochs += 1
        if key not in self._sets:  # both sets at once: the next epoch (warm) creates none
            for parity in (0, 1):
                self._sets[(n_steps, parity)] = [self._new_event() for _ in range(n_steps + 1)]
                self._uses[(n_steps, parity)] = 0
        self._uses[key] += 1
        self._events, self._next = self._sets[key], 0
        return EpochEvents(self, key, self._uses[key])

    def mark(self) -> None:
        """Record the next event of the current epoch (before the first step, after each)."""
        self._record(self._events[self._next])
        self._next += 1

    def _read(self, key: tuple[int, int], use: int) -> list[Any]:
        """The epoch's events, once its last one has happened (waits for it: call this only
        after the clock stops, when the harness's synchronize has already drained the work)."""
        if self._uses[key] != use:
            raise RuntimeError(
                "this epoch's device times were overwritten by a later epoch: read them "
                "before the epoch after next starts"
            )
        events = self._sets[key]
        self._wait(events[-1])
        return events


class EpochEvents:
    """One epoch's events, read lazily: ``float(epoch_seconds)`` and ``list(step_seconds)``."""

    def __init__(self, marks: StepMarks, key: tuple[int, int], use: int) -> None:
        self._marks, self._key, self._use = marks, key, use
        self._steps: list[float] | None = None

    @property
    def epoch_seconds(self) -> _Seconds:
        return _Seconds(self)

    @property
    def step_seconds(self) -> _StepSeconds:
        return _StepSeconds(self)

    def steps(self) -> list[float]:
        """Seconds of each step (waits for the epoch's last event; cached)."""
        if self._steps is None:
            events = self._marks._read(self._key, self._use)
            elapsed = self._marks._elapsed_ms
            self._steps = [elapsed(a, b) / 1000.0 for a, b in itertools.pairwise(events)]
        return self._steps

    def total(self) -> float:
        """Seconds from the first event to the last (one reading: no summed rounding)."""
        events = self._marks._read(self._key, self._use)
        return self._marks._elapsed_ms(events[0], events[-1]) / 1000.0


class _Seconds:
    """The epoch's device seconds (first event to last), computed by ``float()``."""

    def __init__(self, events: EpochEvents) -> None:
        self._events = events

    def __float__(self) -> float:
        return self._events.total()


class _StepSeconds:
    """The epoch's per-step device seconds, computed when iterated."""

    def __init__(self, events: EpochEvents) -> None:
        self._events = events

    def __iter__(self) -> Iterator[float]:
        return iter(self._events.steps())


#: Square GEMM size and repeats for a GPU's peak (2·8192³ ≈ 1.1 TFLOP a call).
GPU_PEAK_SIZE, GPU_PEAK_REPEATS = 8192, 10
#: The GPU GEMM peaks measured: name → (dtype, TF32 allowed).
GPU_PEAK_KINDS = {
    "float32": ("float32", False),
    "tf32": ("float32", True),
    "float64": ("float64", False),
}


def gpu_gemm_peaks(
    square_matmul: Callable[[str], Callable[[], None]],
    tf32: tuple[Callable[[], bool], Callable[[bool], object]],
    marks: StepMarks,
    size: int,
    repeats: int,
) -> dict[str, float]:
    """{"float32", "tf32", "float64": GFLOP/s} of one library's GEMM on the current GPU, best of
    ``repeats`` timed by ``marks``' events. ``square_matmul(dtype)`` allocates (size × size)
    operands in ``dtype`` and returns the call that queues their product; ``tf32`` is the
    library's (get, set) of its TF32 switch, put back as it was found."""
    get_tf32, set_tf32 = tf32
    before = get_tf32()
    out: dict[str, float] = {}
    try:
        for name, (dtype, allow_tf32) in GPU_PEAK_KINDS.items():
            set_tf32(allow_tf32)
            gflops = best_gflops(square_matmul(dtype), 2.0 * size**3, marks, repeats)
            out[name] = round(gflops, 1)
    finally:
        set_tf32(before)
    return out


def best_gflops(run_once: Callable[[], None], flop: float, marks: StepMarks, repeats: int) -> float:
    """Best GFLOP/s of ``run_once`` (queues ``flop`` floating-point operations on the device),
    timed by events around each of ``repeats`` calls after one untimed warm-up call."""
    run_once()
    events = marks.start_epoch(repeats)
    marks.mark()
    for _ in range(repeats):
        run_once()
        marks.mark()
    return flop / min(events.steps()) / 1e9
