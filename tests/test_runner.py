"""The harness: reproducibility, batch order, the timed region, interruption, refusals, and the
report's own figures on the full training set."""

from __future__ import annotations

import dataclasses
import time
import types
from typing import ClassVar

import numpy as np
import pytest
import reference

import bench.cell.timing
import scenarios
from backends.api import RecipeUnsupported
from backends.numpy_mlp import NumpyMLP
from bench.cell import session as runner
from bench.data import load_dataset
from bench.errors import ConfigError

SMALL = scenarios.BASELINE.with_overrides(epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def data():
    """The first 1024 training and 500 test rows of the shipped MNIST, float32."""
    return load_dataset().subset(1024, 500)


@pytest.fixture
def register_backend(install_backends):
    """Install a test backend class from this module under the entry-point name ``cls.name``."""

    def register(cls: type) -> str:
        return install_backends({cls.name: f"{__name__}:{cls.__name__}"})[0]

    return register


def run_keeping_weights(scenario, data, backend="numpy"):
    """runner.run, plus host copies of the weights after every epoch."""
    weights: list[list[np.ndarray]] = []
    result = runner.run(
        backend, scenario, data, progress=lambda s, r: weights.append(s.backend.get_weights())
    )
    return result, weights


def without_seconds(history):
    return [dataclasses.replace(r, seconds=0.0) for r in history]


# ------------------------------------------------------------------------ reproducibility
def test_same_seed_gives_bit_identical_history_and_weights(data):
    a, wa = run_keeping_weights(SMALL, data)
    b, wb = run_keeping_weights(SMALL, data)
    assert a.complete and len(a.history) == 2
    assert without_seconds(a.history) == without_seconds(b.history)
    for epoch_a, epoch_b in zip(wa, wb, strict=True):
        for x, y in zip(epoch_a, epoch_b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_different_seed_gives_different_run(data):
    a, wa = run_keeping_weights(SMALL, data)
    b, wb = run_keeping_weights(SMALL.with_overrides(seed=1), data)
    assert a.history[0].train_loss != b.history[0].train_loss
    assert a.history[-1].test_loss != b.history[-1].test_loss
    assert not np.array_equal(wa[-1][0], wb[-1][0])


def test_history_is_numbered_from_one_with_cold_and_warm_epochs(data):
    result = runner.run("numpy", SMALL.with_overrides(epochs=3), data)
    h = result.history
    assert [r.epoch for r in h] == [1, 2, 3]
    assert result.epoch_seconds == [r.seconds for r in h]
    assert result.cold_seconds == h[0].seconds
    assert result.warm_seconds == [h[1].seconds, h[2].seconds]
    assert result.test_accuracy == h[-1].test_accuracy
    assert all(r.seconds > 0 for r in h)
    assert all(0 <= r.train_accuracy <= 1 and 0 <= r.test_accuracy <= 1 for r in h)
    assert (result.n_train, result.n_test) == (1024, 500)
    assert result.build_seconds is not None and result.build_seconds >= 0
    assert result.settings["batch_size"] == 64 and result.settings["epochs"] == 3
    assert h[-1].test_loss < h[0].test_loss  # it learns


# ------------------------------------------------------------------------- batch order
def test_epoch_order_is_a_fresh_permutation_each_epoch():
    n = 1000
    orders = [runner.epoch_order(SMALL, n, epoch) for epoch in (1, 2, 3)]
    for order in orders:
        assert order.dtype == np.int64 and order.shape == (n,)
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
        assert not np.array_equal(order, np.arange(n))
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    np.testing.assert_array_equal(orders[0], runner.epoch_order(SMALL, n, 1))  # deterministic
    other_seed = runner.epoch_order(SMALL.with_overrides(seed=1), n, 1)
    assert not np.array_equal(orders[0], other_seed)


@pytest.mark.parametrize(
    "scenario",
    [scenarios.BASELINE.with_overrides(shuffle=False), scenarios.REPORT_RECIPE],
    ids=["baseline-no-shuffle", "report_recipe"],
)
def test_epoch_order_without_shuffle_is_identity(scenario):
    for epoch in (1, 2):
        order = runner.epoch_order(scenario, 500, epoch)
        assert order.dtype == np.int64
        np.testing.assert_array_equal(order, np.arange(500))


# ---------------------------------------------------------- recording backends (real ones)
class RecordingNumpy(NumpyMLP):
    """The real NumPy backend, logging each harness call (and, in the timing test, each read of
    the clock) into ``log``."""

    name = "test-recording-numpy"
    log: ClassVar[list[str]] = []
    orders: ClassVar[list[np.ndarray]] = []

    def build(self, recipe, data, init_weights):
        self.log.append("build")
        super().build(recipe, data, init_weights)

    def synchronize(self):
        self.log.append("sync")

    def train_epoch(self, order):
        self.log.append("train")
        self.orders.append(order.copy())
        return super().train_epoch(order)

    def evaluate(self):
        self.log.append("evaluate")
        return super().evaluate()


@pytest.fixture
def recording(monkeypatch, register_backend):
    log: list[str] = []
    monkeypatch.setattr(RecordingNumpy, "log", log)
    monkeypatch.setattr(RecordingNumpy, "orders", [])
    return register_backend(RecordingNumpy), log


def test_backend_gets_the_harness_order_for_each_epoch(data, recording):
    name, _ = recording
    runner.run(name, SMALL, data)
    assert len(RecordingNumpy.orders) == 2
    for epoch, order in enumerate(RecordingNumpy.orders, start=1):
        np.testing.assert_array_equal(order, runner.epoch_order(SMALL, data.n_train, epoch))


def test_timed_region_is_synchronized_before_start_and_before_stop(data, recording, monkeypatch):
    name, log = recording
    ticks = iter([10.0, 12.5, 20.0, 21.25])  # start/stop of epoch 1, then of epoch 2

    def perf_counter():
        log.append("clock")
        return next(ticks)

    monkeypatch.setattr(bench.cell.timing, "time", types.SimpleNamespace(perf_counter=perf_counter))
    result = runner.run(name, SMALL, data)
    assert log.count("train") == 2 and log.count("clock") == 4  # only training is timed
    for i in (j for j, event in enumerate(log) if event == "train"):
        assert log[i - 2 : i + 3] == ["sync", "clock", "train", "sync", "clock"]
    assert log.index("evaluate") > log.index("train") + 2  # evaluation after the stop clock
    assert result.epoch_seconds == [2.5, 1.25]


class LazyNumpy(NumpyMLP):
    """Simulates an asynchronous device: work "queued" by train_epoch (0.05 s) and by evaluate
    (0.3 s) is only waited for in synchronize()."""

    name = "test-lazy-numpy"

    def __init__(self, options=None):
        super().__init__(options)
        self.pending = 0.0

    def synchronize(self):
        time.sleep(self.pending)
        self.pending = 0.0

    def train_epoch(self, order):
        metrics = super().train_epoch(order)
        self.pending = 0.05
        return metrics

    def evaluate(self):
        evaluation = super().evaluate()
        self.pending = 0.3
        return evaluation


def test_epoch_time_includes_queued_training_work_and_excludes_earlier_work(data, register_backend):
    name = register_backend(LazyNumpy)
    tiny = data.subset(256, 100)
    result = runner.run(name, SMALL, tiny)
    for seconds in result.epoch_seconds:
        assert 0.05 <= seconds < 0.3


# ------------------------------------------------------------------ interruption, refusal
def run_catching_ctrl_c(*args, **kwargs):
    """runner.run; a KeyboardInterrupt escaping it fails this test instead of stopping pytest."""
    try:
        return runner.run(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped runner.run")


def test_ctrl_c_in_progress_callback_keeps_finished_epochs(data):
    def progress(session, record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    result = run_catching_ctrl_c("numpy", SMALL.with_overrides(epochs=3), data, progress=progress)
    assert result.complete is False and result.skipped is None
    assert [r.epoch for r in result.history] == [1, 2]
    full = runner.run("numpy", SMALL, data)  # the same first two epochs, uninterrupted
    assert without_seconds(result.history) == without_seconds(full.history)


class InterruptedNumpy(NumpyMLP):
    """Ctrl-C arrives during the second training epoch."""

    name = "test-interrupted-numpy"

    def __init__(self, options=None):
        super().__init__(options)
        self.epochs_started = 0

    def train_epoch(self, order):
        self.epochs_started += 1
        if self.epochs_started == 2:
            raise KeyboardInterrupt
        return super().train_epoch(order)


def test_ctrl_c_inside_an_epoch_keeps_the_epochs_before_it(data, register_backend):
    name = register_backend(InterruptedNumpy)
    result = run_catching_ctrl_c(name, SMALL.with_overrides(epochs=3), data)
    assert result.complete is False
    assert [r.epoch for r in result.history] == [1]


class RefusingNumpy(NumpyMLP):
    name = "test-refusing-numpy"
    reason = "float64 is not supported on this device"

    def build(self, recipe, data, init_weights):
        raise RecipeUnsupported(self.reason)


class SilentlyRefusingNumpy(NumpyMLP):
    name = "test-silently-refusing-numpy"

    def build(self, recipe, data, init_weights):
        raise RecipeUnsupported


class BrokenNumpy(NumpyMLP):
    """A programming error inside a backend: NotImplementedError is not a refusal."""

    name = "test-broken-numpy"

    def build(self, recipe, data, init_weights):
        raise NotImplementedError("forgot to write this")


def test_backend_refusing_the_scenario_is_recorded_as_skipped(data, register_backend):
    name = register_backend(RefusingNumpy)
    result = runner.run(name, SMALL, data)
    assert result.skipped == RefusingNumpy.reason
    assert result.history == () and result.backend == name and result.scenario == SMALL
    quiet = runner.run(register_backend(SilentlyRefusingNumpy), SMALL, data)
    assert quiet.skipped  # a reason-less refusal is still a skip, never a 0-epoch "run"


def test_programming_error_in_a_backend_is_a_failure_not_a_skip(data, register_backend):
    with pytest.raises(NotImplementedError, match="forgot"):
        runner.run(register_backend(BrokenNumpy), SMALL, data)


def test_data_dtype_must_match_scenario(data):
    with pytest.raises(ConfigError, match="float64"):
        runner.run("numpy", scenarios.REPORT_RECIPE, data)


def test_unknown_backend_is_a_config_error(data):
    with pytest.raises(ConfigError, match="nope"):
        runner.run("nope", SMALL, data)


# ------------------------------------------------------------------ the report's figures
@pytest.fixture(scope="module")
def full_float64():
    return load_dataset(dtype="float64")


def test_report_recipe_first_epoch_matches_the_reports_log(full_float64):
    """The report's NumPy run logged "Epoch 0: Loss = 2.3031, Accuracy = 0.1248": full-batch,
    so the epoch's training metrics are those of the initial weights on all 60,000 rows."""
    result = runner.run("numpy", scenarios.REPORT_RECIPE.with_overrides(epochs=1), full_float64)
    first = result.history[0]
    line = f"Epoch 0: Loss = {first.train_loss:.4f}, Accuracy = {first.train_accuracy:.4f}"
    assert line == "Epoch 0: Loss = 2.3031, Accuracy = 0.1248"
    # and exactly the float64 loss of the report's literal initial weights
    saved = np.random.get_state()
    try:
        np.random.seed(42)
        w1, w2 = np.random.randn(784, 128) * 0.01, np.random.randn(128, 10) * 0.01
    finally:
        np.random.set_state(saved)
    params = [w1, np.zeros(128), w2, np.zeros(10)]
    x, y = full_float64.x_train, full_float64.y_train
    assert first.train_loss == pytest.approx(reference.loss(params, x, y), rel=1e-12)
    assert first.train_accuracy == reference.accuracy(params, x, y)


@pytest.mark.slow
def test_numpy_baseline_reaches_the_reports_accuracy():
    result = runner.run("numpy", scenarios.BASELINE, load_dataset())
    assert result.complete and len(result.history) == 5
    assert result.test_accuracy >= 0.973
