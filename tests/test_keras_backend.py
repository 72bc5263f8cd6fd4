"""The Keras backend's own behaviour: what the cross-backend agreement suite cannot see.

Most tests build with ``jit_compile=False`` (``EAGER_XLA_OFF``) only because XLA compilation
would triple their run time; the agreement suite runs the backend's default (XLA on).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import reference

from backends.api import RunOptions
from backends.keras_mlp import DEFAULT_JIT_COMPILE, KerasMLP
from bench import registry
from bench.data import Dataset, RawMNIST, prepare
from bench.train.initializers import initial_weights
from scenarios import BASELINE, Scenario

REASON = registry.unavailable_reason("keras")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

EAGER_XLA_OFF = RunOptions(backend={"jit_compile": "false"})
N_TRAIN, N_TEST = 250, 100  # 250 rows at batch 32: 7 full batches and a partial one of 26
SHAPES = [(784, 128), (128,), (128, 10), (10,)]


@pytest.fixture(scope="module")
def data(raw_mnist: RawMNIST) -> dict[str, Dataset]:
    return {dt: prepare(raw_mnist, dt).subset(N_TRAIN, N_TEST) for dt in ("float32", "float64")}


def start(dtype: str = "float32") -> list[np.ndarray]:
    return initial_weights("glorot_uniform", 784, (128,), 10, seed=0, dtype=dtype)


def built(
    data: dict[str, Dataset], options: RunOptions = EAGER_XLA_OFF, **changes: object
) -> tuple[KerasMLP, Scenario]:
    """A KerasMLP built for the baseline with ``changes`` on the small slice, from start()."""
    s = replace(BASELINE, name="keras_test", **changes)
    backend = KerasMLP(options)
    backend.build(s.recipe(data[s.dtype].n_train), data[s.dtype], start(s.dtype))
    return backend, s


def test_module_and_registry_do_not_import_tensorflow() -> None:
    code = (
        "import sys, backends.keras_mlp\nfrom bench import registry\n"
        "registry.unavailable_reason('keras')\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unavailable_reason_without_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name)
    )
    assert KerasMLP.unavailable_reason() == (
        "tensorflow is not installed (pip install 'mlpbench[tf]')"
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_build_loads_the_injected_weights_and_trains_nothing(data, dtype: str) -> None:
    backend, _ = built(data, dtype=dtype)
    weights = backend.get_weights()
    assert [w.shape for w in weights] == SHAPES
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    assert all(np.array_equal(w, w0) for w, w0 in zip(weights, start(dtype), strict=True))
    assert int(backend.model.optimizer.iterations.numpy()) == 0  # no hidden warm-up step
    backend.set_weights([w + 1 for w in weights])
    assert np.array_equal(backend.get_weights()[3], weights[3] + 1)


def test_follows_the_given_order_and_never_shuffles(data) -> None:
    identity = np.arange(N_TRAIN, dtype=np.int64)
    permuted = np.random.default_rng(1).permutation(N_TRAIN).astype(np.int64)
    runs = []
    for order in (identity, identity, permuted):
        backend, _ = built(data)
        backend.train_epoch(order)
        runs.append(backend.get_weights())
    same, again, other = runs
    assert all(np.array_equal(a, b) for a, b in zip(same, again, strict=True))
    assert not np.allclose(same[0], other[0])


OPTIMIZER_CASES = {
    "adam": (
        {
            "optimizer": "adam",
            "learning_rate": 5e-3,
            "beta_1": 0.8,
            "beta_2": 0.99,
            "epsilon": 1e-4,
        },
        {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4, "amsgrad": False},
    ),
    "rmsprop": (
        {"optimizer": "rmsprop", "learning_rate": 5e-3, "rho": 0.8, "epsilon": 1e-5},
        {"rho": 0.8, "epsilon": 1e-5, "momentum": 0.0, "centered": False},
    ),
    "sgd": ({"optimizer": "sgd", "learning_rate": 5e-3}, {"momentum": 0.0, "nesterov": False}),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", OPTIMIZER_CASES)
def test_optimizer_hyperparameters_are_the_scenarios(data, name: str, dtype: str) -> None:
    changes, expected = OPTIMIZER_CASES[name]
    backend, _ = built(data, dtype=dtype, **changes)
    opt = backend.model.optimizer
    assert type(opt).__name__.lower() == name
    assert float(opt.learning_rate.numpy()) == pytest.approx(5e-3, rel=1e-7)
    assert opt.learning_rate.dtype == dtype  # float64 runs keep an exact float64 step size
    for key, value in expected.items():
        got = getattr(opt, key)
        assert got is value if isinstance(value, bool) else float(got) == value, key


def test_settings_record_explicit_choices(data) -> None:
    default, _ = built(data, options=RunOptions())
    assert default.settings()["jit_compile"] is DEFAULT_JIT_COMPILE
    assert default.model.jit_compile is DEFAULT_JIT_COMPILE  # a bool, never "auto"
    backend, _ = built(
        data, options=RunOptions(backend={"jit_compile": str(not DEFAULT_JIT_COMPILE)})
    )
    settings = backend.settings()
    assert settings["jit_compile"] is (not DEFAULT_JIT_COMPILE)
    assert backend.model.jit_compile is (not DEFAULT_JIT_COMPILE)
    assert settings["tf32"] is False
    assert settings["dtype"] == "float32" and settings["device"] == backend.device
    assert isinstance(settings["intra_op_threads"], int)
    assert isinstance(settings["inter_op_threads"], int)
    assert settings["tensorflow"] and settings["keras"]


def test_steps_per_execution_changes_dispatch_not_updates(data) -> None:
    order = np.random.default_rng(2).permutation(N_TRAIN).astype(np.int64)
    runs = {}
    for steps in (1, 3):  # 8 batches: 3 + 3 + 2 steps per call, the last batch partial
        backend, _ = built(
            data,
            options=RunOptions(backend={"jit_compile": "false", "steps_per_execution": str(steps)}),
        )
        metrics = backend.train_epoch(order)
        assert backend.model.steps_per_execution == steps
        assert backend.settings()["steps_per_execution"] == steps
        assert int(backend.model.optimizer.iterations) == 8
        runs[steps] = (backend.get_weights(), float(metrics.loss), float(metrics.accuracy))
    (one, loss1, acc1), (three, loss3, acc3) = runs[1], runs[3]
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert loss3 == pytest.approx(loss1, rel=1e-5) and acc3 == acc1


def test_float64_full_batch_runs_in_float64_and_restores_floatx(data) -> None:
    import keras

    floatx = keras.config.floatx()
    backend, _ = built(data, dtype="float64", optimizer="sgd", learning_rate=0.01, batch_size=None)
    metrics = backend.train_epoch(np.arange(N_TRAIN, dtype=np.int64))
    test = backend.evaluate()
    assert int(backend.model.optimizer.iterations.numpy()) == 1  # None → one batch of all rows
    assert all(w.dtype == np.float64 for w in backend.get_weights())
    assert np.isfinite([metrics.loss, metrics.accuracy, test.loss, test.accuracy]).all()
    assert keras.config.floatx() == floatx


def test_dropout_keeps_80_percent_scaled_in_training_only(data) -> None:
    import keras

    backend, _ = built(data, dropout=0.2)
    (layer,) = [lay for lay in backend.model.layers if isinstance(lay, keras.layers.Dropout)]
    assert layer.rate == 0.2
    x = np.ones((400, 500), dtype=np.float32)
    y = np.asarray(layer(x, training=True))
    kept = y != 0
    assert abs(kept.mean() - 0.8) < 0.01  # binomial sd 0.0009
    assert np.all(y[kept] == np.float32(1 / 0.8))
    assert np.array_equal(np.asarray(layer(x, training=False)), x)


def test_evaluate_is_inference_mode(data) -> None:
    backend, _ = built(data, dropout=0.5)
    first, second = backend.evaluate(), backend.evaluate()
    assert first == second  # no dropout randomness
    x, y = data["float32"].x_test, data["float32"].y_test
    assert first.loss == pytest.approx(reference.loss(start(), x, y), rel=1e-5)
    assert first.accuracy == pytest.approx(reference.accuracy(start(), x, y), abs=1e-7)
    assert isinstance(first.loss, float) and isinstance(first.accuracy, float)


def test_warm_epochs_do_not_retrace(data) -> None:
    """Python code in ``train_step`` runs only while TensorFlow traces it: count those runs."""
    backend, _ = built(data, options=RunOptions())
    model, traces = backend.model, []
    original = model.train_step
    model.train_step = lambda batch: (traces.append(1), original(batch))[1]
    order = np.arange(N_TRAIN, dtype=np.int64)
    metrics = backend.train_epoch(order)  # cold: traces the full batch and the partial one
    cold = len(traces)
    for _ in range(2):
        backend.train_epoch(order)
    assert 1 <= cold <= 2 and len(traces) == cold
    assert isinstance(metrics.loss, float) and 0.0 <= metrics.accuracy <= 1.0
