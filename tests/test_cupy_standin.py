"""The CuPy backend end to end on the CPU, through a NumPy-backed stand-in for the ``cupy`` module.

Why a stand-in: the machines that run these tests have no NVIDIA GPU, and CuPy cannot even be
imported without CUDA, so without one ``CupyMLP`` — its build, its CUDA-event epoch, its settings
and GPU facts — would never run outside a GPU machine. The stand-in (tests/cupy_standin.py) does
the arithmetic with NumPy and models what matters for correctness of the *wiring and the host/device
discipline*: inside a timed epoch nothing may synchronize the host or copy a device value to it,
and CUDA events are read only after the harness's clock-stop synchronize; any of those raises
there. It says nothing about CUDA numerics (cuBLAS, TF32) or speed: on a real GPU,
tests/test_agreement.py compares CupyMLP with the NumPy reference and tests/test_cupy_backend.py
checks TF32, device time and memory.

Because the stand-in computes with NumPy, CupyMLP on it must give the NumPy backend's weights
exactly: the same engine, batch order, initial weights and dropout stream, run the same way.
"""

from __future__ import annotations

import json
import sys

import cupy_standin
import numpy as np
import pytest
from cupy_standin import TICK_MS, Discipline
from threadpoolctl import threadpool_limits

import backends.xp.backend
import scenarios
from backends import cupy_mlp
from backends.api import RunOptions
from backends.cupy_mlp import CupyMLP
from backends.xp.engine import XpMLP
from bench import registry
from bench.cell.session import Session
from bench.data import Dataset, prepare

REAL_REASON = registry.unavailable_reason("cupy")  # before any stand-in is installed

SCENARIOS = {
    "baseline": scenarios.BASELINE.with_overrides(epochs=2),
    "dropout": scenarios.DROPOUT.with_overrides(epochs=2),
    "rmsprop": scenarios.RMSPROP.with_overrides(epochs=2),
    # float64, and a last batch of 48 rows (2048 = 20 × 100 + 48)
    "float64": scenarios.BASELINE.with_overrides(
        name="baseline_float64", dtype="float64", batch_size=100, epochs=2
    ),
}


@pytest.fixture
def cupy(monkeypatch):
    """The stand-in as ``cupy`` for this test, with CupyMLP's epochs watched; gone afterwards."""
    module = cupy_standin.install(monkeypatch)
    cupy_standin.watch_epochs(monkeypatch, CupyMLP)
    registry.refresh()
    yield module
    registry.refresh()


@pytest.fixture
def discipline(cupy) -> Discipline:
    return cupy_standin.standin_device().discipline


@pytest.fixture(scope="module")
def small(raw_mnist) -> Dataset:
    return prepare(raw_mnist, "float32").subset(2048, 500)


@pytest.fixture(scope="module")
def small64(raw_mnist) -> Dataset:
    return prepare(raw_mnist, "float64").subset(2048, 500)


def trained(backend: str, scenario: scenarios.Scenario, data: Dataset) -> Session:
    session = Session(backend, scenario, data)
    session.build()
    for _ in range(scenario.epochs):
        session.run_epoch()
    return session


def n_steps(data: Dataset, scenario: scenarios.Scenario) -> int:
    return -(-data.n_train // scenario.batch_size)


# ------------------------------------------------------------------------------- the stand-in
def test_the_standin_makes_cupy_available_only_while_installed():
    with pytest.MonkeyPatch.context() as mp:
        module = cupy_standin.install(mp)
        registry.refresh()
        assert registry.unavailable_reason("cupy") is None
        assert isinstance(registry.create("cupy"), CupyMLP)
    registry.refresh()
    assert sys.modules.get("cupy") is not module
    assert registry.unavailable_reason("cupy") == REAL_REASON


def test_the_standin_keeps_values_on_the_device_as_cupy_does(cupy, discipline):
    """What the engine relies on: reductions, counts, argmax and scalar indexing stay 0-d device
    arrays; NumPy's functions on device arrays read nothing on the host; host arrays never mix
    in; uninitialized memory is visibly garbage."""
    a = cupy.arange(6).reshape(2, 3) * 1.5
    discipline.enter_epoch()  # as if inside train_epoch
    results = [a.sum(), a[1, 2], cupy.count_nonzero(a), cupy.argmax(a), np.percentile(a, 50)]
    results += [cupy.matmul(a, a.T, out=cupy.empty((2, 2))), a[cupy.arange(2), cupy.arange(2)]]
    for r in results:
        assert isinstance(r, cupy.ndarray)
    assert [r.ndim for r in results[:5]] == [0] * 5
    with pytest.raises(AssertionError, match=r"float\(\)"):
        float(results[0])
    discipline.leave_epoch(None, failed=False)
    cupy.cuda.get_current_stream().synchronize()  # the clock stops
    assert [float(r) for r in results[:5]] == [22.5, 7.5, 5, 5, 3.75]
    assert len(discipline.violations) == 1
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)  # as CuPy: a host copy is asked for by name (cupy.asnumpy, .get())
    with pytest.raises(TypeError, match=r"numpy\.ndarray"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="no device array"):
        cupy.exp(np.ones(3))
    assert np.isnan(cupy.asnumpy(cupy.empty(3))).all()


# ------------------------------------------------------------------------ end to end, and right
@pytest.mark.parametrize("name", SCENARIOS)
def test_cupy_mlp_trains_end_to_end_without_host_syncs_and_matches_numpy(
    cupy, discipline, small, small64, name
):
    scenario = SCENARIOS[name]
    data = small64 if scenario.dtype == "float64" else small
    # OpenBLAS rounds differently with one and two threads, and NumpyMLP trains batches below
    # 128 rows with one (backends/numpy_mlp.py): both run with one thread here, evaluation too.
    with threadpool_limits(limits=1, user_api="blas"):
        gpu = trained("cupy", scenario, data)
        cpu = trained("numpy", scenario, data)

    assert discipline.violations == []  # nothing read or waited for while the clock ran
    assert len(discipline.epochs) == scenario.epochs
    steps = n_steps(data, scenario)
    for record, epoch in zip(gpu.history, discipline.epochs, strict=True):
        step_seconds = list(epoch.metrics.device_step_seconds)
        assert len(step_seconds) == steps
        assert all(s > 0 for s in step_seconds)
        assert record.device_seconds == pytest.approx(sum(step_seconds), rel=1e-12)
        assert record.device_step_median_s == pytest.approx(float(np.median(step_seconds)))
        q1, q3 = np.percentile(step_seconds, [25, 75])
        assert record.device_step_iqr_s == pytest.approx(q3 - q1, abs=1e-15)
        # the one host→device copy inside an epoch: the harness's row order, int64
        assert epoch.uploads == [("cupy.asarray", 8 * data.n_train)]

    for got, want in zip(gpu.backend.get_weights(), cpu.backend.get_weights(), strict=True):
        assert type(got) is np.ndarray and got.dtype == want.dtype == np.dtype(scenario.dtype)
        np.testing.assert_array_equal(got, want)
    metrics = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    for mine, ref in zip(gpu.history, cpu.history, strict=True):
        assert [getattr(mine, m) for m in metrics] == [getattr(ref, m) for m in metrics]
        assert ref.device_seconds is None


def test_events_alternate_between_two_sets_and_stale_times_are_an_error(cupy, discipline, small):
    scenario = scenarios.BASELINE.with_overrides(epochs=3)
    trained("cupy", scenario, small)
    assert discipline.violations == []
    first, second, third = discipline.epochs
    steps = n_steps(small, scenario)
    # one event before the first step and one after each, in two sets, all made in the cold
    # epoch: the warm ones create none (a cudaEventCreate per step would be timed)
    assert first.events_created == 2 * (steps + 1)
    assert second.events_created == third.events_created == 0
    with pytest.raises(RuntimeError, match="overwritten"):
        float(first.metrics.device_seconds)
    assert float(second.metrics.device_seconds) > 0


def test_speed_options_are_checked_and_recorded_with_why_a_graph_does_not_run(cupy, small):
    """The options' parsing and what settings() records; the fused kernel and the captured graph
    themselves need a GPU (tests/test_cupy_backend.py compares them with the plain path)."""
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backend 'cupy' has no option 'graph'; its options"):
        registry.create("cupy", RunOptions(backend={"graph": "true"}))
    with pytest.raises(ConfigError, match="option fused takes true or false, got 'maybe'"):
        registry.create("cupy", RunOptions(backend={"fused": "maybe"}))
    graph = RunOptions(backend={"cuda_graph": "true"})
    session = Session("cupy", SCENARIOS["dropout"].with_overrides(epochs=1), small, options=graph)
    session.build()
    session.run_epoch()  # the cold epoch runs eagerly in every case
    settings = session.settings()
    assert settings["cuda_graph"] is False
    assert settings["cuda_graph_skipped"].startswith("dropout")
    both = RunOptions(backend={"cuda_graph": "true", "fused": "true"})
    rmsprop = Session("cupy", SCENARIOS["rmsprop"], small, options=both)
    rmsprop.build()
    assert rmsprop.settings()["fused"] is False  # the fused kernel is Adam's only
    assert rmsprop.settings()["cuda_graph"] is True


def test_settings_record_the_gpu_the_pool_peak_and_tf32(cupy, small):
    linalg = cupy._core._routines_linalg
    session = Session("cupy", scenarios.BASELINE.with_overrides(epochs=1), small)
    session.build()
    session.run_epoch()
    settings = session.settings()
    json.dumps(settings)  # JSON-ready
    assert settings["device"] == "gpu"
    assert settings["dtype"] == "float32" and settings["tf32"] is False
    assert settings["cupy"] == cupy_standin.VERSION and settings["fused"] is False
    assert settings["cuda_graph"] is False and "cuda_graph_skipped" not in settings
    assert settings["gpu"] == {
        "index": 0,
        "name": "NumPy stand-in for a CUDA GPU",
        "compute_capability": "9.0",
        "memory_bytes": 80 * 2**30,
        "driver_version": cupy_standin.DRIVER_VERSION,
        "runtime_version": cupy_standin.RUNTIME_VERSION,
        "cupy": cupy_standin.VERSION,
    }
    data_bytes = sum(a.nbytes for a in (small.x_train, small.y_train, small.x_test, small.y_test))
    assert settings["peak_pool_bytes"] >= data_bytes  # the data lives on the device
    assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_DEFAULT

    tf32 = Session("cupy", scenarios.BASELINE, small, options=RunOptions(tf32=True))
    tf32.build()
    assert tf32.settings()["tf32"] is True
    assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    assert linalg.get_compute_type(np.float64) == linalg.COMPUTE_TYPE_DEFAULT


def test_machine_facts_time_the_gemm_peak_with_cuda_events(cupy, discipline, monkeypatch):
    size, repeats = 64, 3
    # gemm_peaks binds GPU_PEAK_SIZE and GPU_PEAK_REPEATS as default arguments: replace those
    monkeypatch.setattr(cupy_mlp.gemm_peaks, "__defaults__", (size, repeats))
    linalg = cupy._core._routines_linalg
    before = linalg.get_compute_type(np.float32)
    (gpu,) = CupyMLP.machine_facts()["gpus"]
    assert gpu["name"] == "NumPy stand-in for a CUDA GPU" and gpu["compute_capability"] == "9.0"
    # each timed call is one matmul kernel and one event record: two ticks of the fake clock
    expected = round(2.0 * size**3 / (2 * TICK_MS / 1000) / 1e9, 1)
    assert gpu["gemm_peak_gflops"] == {"float32": expected, "tf32": expected, "float64": expected}
    assert linalg.get_compute_type(np.float32) == before  # TF32 put back as it was
    assert discipline.violations == []


# ------------------------------------------------------------------- the stand-in catches these
def _events_elapsed(xp):
    """Read two fresh events' time as CUDA allows it: after waiting for the end event (CuPy's
    get_elapsed_time does not wait; on an unfinished event it is cudaErrorNotReady)."""
    start, end = xp.cuda.Event(), xp.cuda.Event()
    start.record()
    end.record()
    end.synchronize()
    return xp.cuda.get_elapsed_time(start, end)


def _event_synchronize(xp):
    event = xp.cuda.Event()
    event.record()
    event.synchronize()


#: name → (what the engine does with (xp, loss_sum, correct, logits), the error, its message)
LEAKS = {
    "float(loss)": (lambda xp, loss, n, z: float(loss), AssertionError, r"float\(\)"),
    "int(correct)": (lambda xp, loss, n, z: int(n), AssertionError, r"int\(\)"),
    "if loss > 0": (lambda xp, loss, n, z: bool(loss > 0), AssertionError, r"bool\(\)"),
    "range(correct)": (lambda xp, loss, n, z: range(n), AssertionError, r"operator\.index"),
    "loss.item()": (lambda xp, loss, n, z: loss.item(), AssertionError, r"\.item\(\)"),
    "logits.tolist()": (lambda xp, loss, n, z: z.tolist(), AssertionError, r"\.tolist\(\)"),
    "logits.get()": (lambda xp, loss, n, z: z.get(), AssertionError, r"\.get\(\)"),
    "cupy.asnumpy": (lambda xp, loss, n, z: xp.asnumpy(z), AssertionError, r"cupy\.asnumpy"),
    "print(loss)": (lambda xp, loss, n, z: str(loss), AssertionError, r"str\(\)"),
    "f-string": (lambda xp, loss, n, z: f"{loss:.4f}", AssertionError, r"format\(\)"),
    "stream synchronize": (
        lambda xp, loss, n, z: xp.cuda.get_current_stream().synchronize(),
        AssertionError,
        r"Stream\.synchronize",
    ),
    "event synchronize": (
        lambda xp, loss, n, z: _event_synchronize(xp),
        AssertionError,
        r"Event\.synchronize",
    ),
    "event elapsed time": (
        lambda xp, loss, n, z: _events_elapsed(xp),
        AssertionError,
        r"Event\.synchronize",
    ),
    "blocking upload": (
        lambda xp, loss, n, z: xp.asarray(np.zeros(3), blocking=True),
        AssertionError,
        r"blocking=True",
    ),
    # refused at any time, as CuPy refuses them (code that would break on a GPU)
    "np.asarray(logits)": (lambda xp, loss, n, z: np.asarray(z), TypeError, "Implicit"),
    "np.array(loss)": (lambda xp, loss, n, z: np.array(loss), TypeError, "Implicit"),
    "host operand": (lambda xp, loss, n, z: z * np.ones(z.shape[1]), TypeError, r"numpy\.ndarray"),
}


@pytest.mark.parametrize("leak", LEAKS)
def test_a_host_read_or_wait_in_the_engine_fails_the_epoch(
    cupy, discipline, small, monkeypatch, leak
):
    act, error, message = LEAKS[leak]

    class LeakyMLP(XpMLP):
        def _softmax_xent(self, ws):
            loss_sum, correct = super()._softmax_xent(ws)
            act(self.xp, loss_sum, correct, ws.logits)
            return loss_sum, correct

    monkeypatch.setattr(backends.xp.backend, "XpMLP", LeakyMLP)
    session = Session("cupy", scenarios.BASELINE.with_overrides(epochs=1), small)
    session.build()
    if error is AssertionError:
        session.backend.evaluate()  # the same operation is allowed while no clock runs
        assert discipline.violations == []
    with pytest.raises(error, match=message):
        session.train(session.next_order())
    assert len(discipline.violations) == (1 if error is AssertionError else 0)
    assert discipline.phase == Discipline.UNTIMED  # a failed epoch leaves no clock running


def test_reading_device_times_before_the_closing_synchronize_fails(cupy, discipline, small):
    session = Session("cupy", scenarios.BASELINE.with_overrides(epochs=1), small)
    session.build()
    backend = session.backend
    backend.synchronize()  # the harness's opening synchronize
    metrics = backend.train_epoch(session.next_order())  # returned; the clock still runs
    # reading an event's time waits for it (device_time waits for the last event first)
    waits = "Event.synchronize.* while the harness's clock runs"
    with pytest.raises(AssertionError, match=waits):
        float(metrics.device_seconds)
    with pytest.raises(AssertionError, match=waits):
        list(metrics.device_step_seconds)
    with pytest.raises(AssertionError, match=r"float\(\)"):
        float(metrics.loss)
    backend.synchronize()  # the harness's closing synchronize: the clock stops
    assert float(metrics.device_seconds) > 0
    assert len(list(metrics.device_step_seconds)) == n_steps(small, session.scenario)
    assert float(metrics.loss) > 0


class EagerTimesCupyMLP(CupyMLP):
    """Reads its epoch's device time before returning it (waits for the last event)."""

    def train_epoch(self, order):
        metrics = super().train_epoch(order)
        float(metrics.device_seconds)
        return metrics


class SyncingCupyMLP(CupyMLP):
    """Waits for the device before returning from the epoch."""

    def train_epoch(self, order):
        metrics = super().train_epoch(order)
        self.synchronize()
        return metrics


@pytest.mark.parametrize(
    ("cls", "message"),
    [(EagerTimesCupyMLP, "Event.synchronize"), (SyncingCupyMLP, "inside a timed epoch")],
    ids=["reads-device-time", "synchronizes"],
)
def test_a_backend_that_waits_inside_its_epoch_fails(
    cupy, discipline, small, monkeypatch, cls, message
):
    cupy_standin.watch_epochs(monkeypatch, cls)  # its clock starts when its own epoch does
    session = Session("cupy", scenarios.BASELINE.with_overrides(epochs=1), small)
    session.backend = cls(RunOptions())
    session.build()
    with pytest.raises(AssertionError, match=message):
        session.train(session.next_order())
    assert len(discipline.violations) == 1
