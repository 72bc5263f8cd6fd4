"""backends.device_time: per-step and per-epoch device times from events, read lazily.

The events here are stamped by a simulated device clock that advances by known step durations
(the oracle); a real GPU's CUDA events are exercised by tests/test_cupy_backend.py on a GPU and by
the CuPy stand-in (tests/test_cupy_standin.py) on the CPU.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.device_time import GPU_PEAK_KINDS, StepMarks, best_gflops, gpu_gemm_peaks
from bench.registry import _merged


class SimulatedDevice:
    """A device clock (ms) that queued work advances; events take its time when recorded."""

    def __init__(self) -> None:
        self.now_ms = 0.0
        self.created = 0
        self.reads = 0
        self.waits = 0
        self.recorded = 0  # events recorded so far, in stream order
        self.finished = 0  # how many of them the host knows have happened

    def new_event(self) -> dict[str, Any]:
        self.created += 1
        return {}

    def record(self, event: dict[str, Any]) -> None:
        self.recorded += 1
        event.update(t=self.now_ms, seq=self.recorded)

    def wait(self, event: dict[str, Any]) -> None:
        """The host waits for ``event``: it and everything recorded before it have happened."""
        self.waits += 1
        self.finished = max(self.finished, event["seq"])

    def elapsed_ms(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        """As cudaEventElapsedTime: no waiting, "not ready" until the end event has happened."""
        if b["seq"] > self.finished:
            raise RuntimeError("cudaErrorNotReady")
        self.reads += 1
        return b["t"] - a["t"]

    def marks(self) -> StepMarks:
        return StepMarks(self.new_event, self.record, self.wait, self.elapsed_ms)


def run_epoch(device: SimulatedDevice, marks: StepMarks, steps_ms: list[float]):
    events = marks.start_epoch(len(steps_ms))
    marks.mark()
    for ms in steps_ms:
        device.now_ms += ms
        marks.mark()
    return events


def test_step_and_epoch_seconds_are_the_device_times_between_marks():
    device = SimulatedDevice()
    marks = device.marks()
    events = run_epoch(device, marks, [2.0, 3.0, 5.0])
    assert device.reads == device.waits == 0  # nothing read or waited for while the epoch ran
    assert list(events.step_seconds) == pytest.approx([0.002, 0.003, 0.005])
    assert float(events.epoch_seconds) == pytest.approx(0.010)


def test_events_are_reused_and_an_overwritten_epoch_is_an_error_not_a_wrong_number():
    device = SimulatedDevice()
    marks = device.marks()
    first = run_epoch(device, marks, [1.0, 1.0])
    assert device.created == 6
    second = run_epoch(device, marks, [4.0, 4.0])
    assert float(first.epoch_seconds) == pytest.approx(0.002)  # still readable one epoch later
    third = run_epoch(device, marks, [7.0, 7.0])
    assert device.created == 6  # two sets of three events, both made in the first epoch
    assert float(second.epoch_seconds) == pytest.approx(0.008)
    assert float(third.epoch_seconds) == pytest.approx(0.014)
    with pytest.raises(RuntimeError, match="overwritten by a later epoch"):
        float(first.epoch_seconds)  # the third epoch re-recorded the first's events
    fresh = run_epoch(device, marks, [1.0])  # another step count: its own events
    assert list(fresh.step_seconds) == pytest.approx([0.001])


def test_best_gflops_is_the_fastest_call_after_a_warm_up():
    device = SimulatedDevice()
    durations = iter([50.0, 4.0, 2.0, 3.0])  # ms: the warm-up (untimed), then three calls

    def run_once() -> None:
        device.now_ms += next(durations)

    assert best_gflops(run_once, 2e9, device.marks(), repeats=3) == pytest.approx(1000.0)


def test_gpu_gemm_peaks_time_each_kind_with_its_tf32_switch_and_put_the_switch_back():
    device = SimulatedDevice()
    switch = {"tf32": True}  # the library's TF32 switch, found on
    ms_per_call = {("float32", False): 4.0, ("float32", True): 1.0, ("float64", False): 8.0}
    seen = []

    def square_matmul(dtype: str):
        seen.append((dtype, switch["tf32"]))
        ms = ms_per_call[(dtype, switch["tf32"])]

        def run_once() -> None:
            device.now_ms += ms

        return run_once

    def set_tf32(on: bool) -> None:
        switch["tf32"] = on

    peaks = gpu_gemm_peaks(
        square_matmul, (lambda: switch["tf32"], set_tf32), device.marks(), size=1000, repeats=2
    )
    # 2·1000³ FLOP in 4 ms, 1 ms, 8 ms
    assert peaks == {"float32": 500.0, "tf32": 2000.0, "float64": 250.0}
    assert seen == list(GPU_PEAK_KINDS.values())
    assert switch["tf32"] is True


def test_gpu_facts_from_several_backends_merge_device_by_device():
    cupy = {"gpus": [{"index": 0, "name": "H200", "gemm_peak_gflops": {"float32": 1.0}}]}
    jax = {"gpus": [{"index": 0, "name": "NVIDIA H200", "jax": "0.11"}], "x": 1}
    merged = _merged(_merged({"blas": []}, cupy), jax)
    assert merged == {
        "blas": [],
        "gpus": [{"index": 0, "name": "H200", "gemm_peak_gflops": {"float32": 1.0}, "jax": "0.11"}],
        "x": 1,
    }
    # lists that do not line up device by device keep the first backend's
    assert _merged({"gpus": [{"a": 1}]}, {"gpus": [{"a": 2}, {"a": 3}]}) == {"gpus": [{"a": 1}]}
