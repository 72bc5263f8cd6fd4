"""The Keras backends' own behaviour: what the cross-backend agreement suite cannot see.

One Keras model and ``fit`` on three Keras backends: ``KerasMLP`` (TensorFlow), ``KerasJaxMLP``
and ``KerasTorchMLP``. Tests that make sense for all three run for each (skipped with the class's
own ``unavailable_reason``); TensorFlow's specifics stay TensorFlow-only. The classes are mixed in
one process on purpose: each instance switches Keras to its backend.

Most tests build with ``jit_compile=False`` (``EAGER``) only because compilation would triple
their run time (and torch.compile costs ~40 s); the agreement tests run each class's default.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import reference
from test_agreement import CONFIGS, tolerance

from backends.api import OptionError, RecipeUnsupported, RunOptions
from backends.keras_mlp import DEFAULT_JIT_COMPILE, KerasJaxMLP, KerasMLP, KerasTorchMLP
from backends.numpy_mlp import NumpyMLP
from bench.cell.initializers import initial_weights
from bench.data import Dataset, RawMNIST, prepare
from scenarios import BASELINE, Scenario

EAGER = RunOptions(backend={"jit_compile": "false"})
N_TRAIN, N_TEST = 250, 100  # 250 rows at batch 32: 7 full batches and a partial one of 26
SHAPES = [(784, 128), (128,), (128, 10), (10,)]
CLASSES = {"tensorflow": KerasMLP, "jax": KerasJaxMLP, "torch": KerasTorchMLP}
FRAMEWORK_MODULES = ("tensorflow", "keras", "jax", "jaxlib", "torch")
TF_ONLY_SETTINGS = ("onednn_opts", "intra_op_threads", "inter_op_threads", "threads_note")


def available(cls: type[KerasMLP]) -> pytest.MarkDecorator:
    reason = cls.unavailable_reason()
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def params(*names: str) -> list[object]:
    """pytest params of the classes ``names`` (default: all), each skipped where unavailable."""
    return [pytest.param(CLASSES[n], id=n, marks=available(CLASSES[n])) for n in names or CLASSES]


def with_dtypes() -> list[object]:
    """(class, dtype) params: both dtypes, but float64 only where Keras computes in float64."""
    return [
        pytest.param(cls, dtype, id=f"{name}-{dtype}", marks=available(cls))
        for name, cls in CLASSES.items()
        for dtype in ("float32", "float64")
        if not (cls is KerasTorchMLP and dtype == "float64")
    ]


tf_only = available(KerasMLP)
ALL = params()
FLOAT64 = params("tensorflow", "jax")  # Keras' torch backend refuses float64 (see below)
COMPILED = params("tensorflow", "jax")  # jit_compile traces train_step (torch: eager by default)


@pytest.fixture(scope="module")
def data(raw_mnist: RawMNIST) -> dict[str, Dataset]:
    return {dt: prepare(raw_mnist, dt).subset(N_TRAIN, N_TEST) for dt in ("float32", "float64")}


def start(dtype: str = "float32") -> list[np.ndarray]:
    return initial_weights("glorot_uniform", 784, (128,), 10, seed=0, dtype=dtype)


def exact(dtype: str) -> list[np.ndarray]:
    """start() drawn in float32, in ``dtype``: the same values for every engine compared."""
    return [w.astype(dtype) for w in start("float32")]


def built(
    data: dict[str, Dataset],
    cls: type[KerasMLP] = KerasMLP,
    options: RunOptions = EAGER,
    **changes: object,
) -> tuple[KerasMLP, Scenario]:
    """A ``cls`` built for the baseline with ``changes`` on the small slice, from start()."""
    s = replace(BASELINE, name="keras_test", **changes)
    backend = cls(options)
    backend.build(s.recipe(data[s.dtype].n_train), data[s.dtype], start(s.dtype))
    return backend, s


def value(backend: KerasMLP, variable: object) -> np.ndarray:
    """A Keras variable's value on the host, whatever the framework."""
    return backend.keras.ops.convert_to_numpy(variable)


def iterations(backend: KerasMLP) -> int:
    return int(value(backend, backend.model.optimizer.iterations))


def moved_errors(weights: list[np.ndarray], ref: list[np.ndarray]) -> list[float]:
    """Per array max|w − ref| / max|ref − w0| from start(): test_agreement.py's measure."""
    return [
        float(np.max(np.abs(w.astype(np.float64) - r)) / np.max(np.abs(r - w0)))
        for w, r, w0 in zip(weights, ref, start(), strict=True)
    ]


# --- availability and imports --------------------------------------------------------------------


def test_module_registry_and_reasons_import_no_framework() -> None:
    code = (
        "import sys, backends.keras_mlp as m\nfrom bench import registry\n"
        "registry.unavailable_reason('keras')\n"
        "[c.unavailable_reason() for c in (m.KerasMLP, m.KerasJaxMLP, m.KerasTorchMLP)]\n"
        f"assert not set(sys.modules) & set({FRAMEWORK_MODULES!r}), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


JAX_HINT = "keras and jax are needed (pip install 'mlpbench[keras-jax]')"
TORCH_HINT = "keras and torch are needed (pip install 'mlpbench[keras-torch]')"


@pytest.mark.parametrize(
    ("cls", "missing", "message"),
    [
        (KerasMLP, "tensorflow", "tensorflow is not installed (pip install 'mlpbench[tf]')"),
        (KerasJaxMLP, "jax", JAX_HINT),
        (KerasJaxMLP, "keras", JAX_HINT),
        (KerasTorchMLP, "torch", TORCH_HINT),
        (KerasTorchMLP, "keras", TORCH_HINT),
    ],
)
def test_unavailable_reason_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, cls: type[KerasMLP], missing: str, message: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    assert cls.unavailable_reason() == message


# --- switching Keras' backend in one process -----------------------------------------------------


@tf_only
@available(KerasJaxMLP)
def test_switching_backends_in_one_process(data) -> None:
    """TensorFlow → JAX → TensorFlow in one process: each instance runs on its own backend and
    trains an epoch that lands where NumPy's float64 epoch lands from the same weights."""
    s = replace(BASELINE, name="keras_test", batch_size=50)
    recipe, order = s.recipe(N_TRAIN), np.random.default_rng(3).permutation(N_TRAIN)
    ref = NumpyMLP(RunOptions())
    ref.build(replace(recipe, dtype="float64"), data["float64"], exact("float64"))
    ref_loss = float(ref.train_epoch(order).loss)
    tol = tolerance("float32", s.optimizer)
    for i, cls in enumerate((KerasMLP, KerasJaxMLP, KerasMLP)):
        backend = cls(EAGER)
        backend.build(recipe, data["float32"], start())
        loss = float(backend.train_epoch(order).loss)
        settings = backend.settings()
        assert settings["keras_backend"] == cls.KERAS_BACKEND == backend.keras.config.backend()
        if i > 0:  # the first may find Keras on TensorFlow already (earlier tests)
            assert settings["keras_backend_switched"] is True
        errors = moved_errors(backend.get_weights(), ref.get_weights())
        assert max(errors) <= tol.weights, (cls.__name__, errors)
        assert loss == pytest.approx(ref_loss, rel=tol.loss)


@tf_only
@available(KerasJaxMLP)
def test_an_instance_made_before_a_switch_builds_on_its_own_backend(data) -> None:
    early = KerasMLP(EAGER)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KerasJaxMLP(EAGER)  # switches Keras to JAX, without Keras' "dangerous" warning
    assert not [w for w in caught if "set_backend" in str(w.message)]
    early.build(BASELINE.recipe(N_TRAIN), data["float32"], start())
    assert early.keras.config.backend() == "tensorflow"
    assert early.settings()["keras_backend_switched"] is True
    assert np.isfinite(float(early.train_epoch(np.arange(N_TRAIN)).loss))


# --- the contract, per Keras backend -------------------------------------------------------------


@pytest.mark.parametrize(("cls", "dtype"), with_dtypes())
def test_build_loads_the_injected_weights_and_trains_nothing(data, cls, dtype: str) -> None:
    backend, _ = built(data, cls, dtype=dtype)
    weights = backend.get_weights()
    assert [w.shape for w in weights] == SHAPES
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    assert all(np.array_equal(w, w0) for w, w0 in zip(weights, start(dtype), strict=True))
    assert iterations(backend) == 0  # no hidden warm-up step
    backend.set_weights([w + 1 for w in weights])
    assert np.array_equal(backend.get_weights()[3], weights[3] + 1)


@pytest.mark.parametrize("cls", ALL)
def test_follows_the_given_order_and_never_shuffles(data, cls) -> None:
    identity = np.arange(N_TRAIN, dtype=np.int64)
    permuted = np.random.default_rng(1).permutation(N_TRAIN).astype(np.int64)
    runs = []
    for order in (identity, identity, permuted):
        backend, _ = built(data, cls)
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


@pytest.mark.parametrize("name", OPTIMIZER_CASES)
@pytest.mark.parametrize(("cls", "dtype"), with_dtypes())
def test_optimizer_hyperparameters_are_the_scenarios(data, cls, dtype: str, name: str) -> None:
    changes, expected = OPTIMIZER_CASES[name]
    backend, _ = built(data, cls, dtype=dtype, **changes)
    opt = backend.model.optimizer
    assert type(opt).__name__.lower() == name
    assert float(value(backend, opt.learning_rate)) == pytest.approx(5e-3, rel=1e-7)
    assert opt.learning_rate.dtype == dtype  # float64 runs keep an exact float64 step size
    for key, want in expected.items():
        got = getattr(opt, key)
        assert got is want if isinstance(want, bool) else float(value(backend, got)) == want, key


@pytest.mark.parametrize("cls", ALL)
def test_jit_default_is_keras_own_auto_resolved_and_recorded_as_a_bool(data, cls) -> None:
    """As shipped: Keras' "auto", resolved by Keras itself — on a CPU-only machine XLA off on
    TensorFlow (Keras' ``_resolve_auto_jit_compile``), jax.jit on JAX, eager on torch."""
    assert DEFAULT_JIT_COMPILE == "auto" and cls.DEFAULT_JIT_COMPILE == "auto"
    assert "auto (default: Keras' own choice" in cls.OPTIONS["jit_compile"]
    resolved = {KerasMLP: False, KerasJaxMLP: True, KerasTorchMLP: False}[cls]
    default, _ = built(data, cls, options=RunOptions())
    settings = default.settings()
    assert settings["jit_compile"] is resolved and settings["jit_compile_asked"] == "auto"
    assert default.model.jit_compile is resolved
    other = not resolved
    backend, _ = built(data, cls, options=RunOptions(backend={"jit_compile": str(other)}))
    assert backend.settings()["jit_compile"] is other and backend.model.jit_compile is other


@pytest.mark.parametrize("cls", ALL)
def test_settings_record_the_framework_and_explicit_choices(data, cls) -> None:
    backend, _ = built(data, cls)
    settings = backend.settings()
    json.dumps(settings)
    assert settings["keras_backend"] == cls.KERAS_BACKEND
    assert isinstance(settings["keras_backend_switched"], bool)
    assert settings["jit_compile"] is False and settings["steps_per_execution"] == 1
    assert settings["tf32"] is False
    assert settings["dtype"] == "float32" and settings["device"] == backend.device
    assert settings["keras"] == backend.keras.__version__
    feed = "tf.data" if cls is KerasMLP else "host arrays gathered per batch"
    assert settings["input_feed"].startswith(feed)
    tf_keys = [k for k in TF_ONLY_SETTINGS if k in settings]
    if cls is KerasMLP:
        assert tf_keys == list(TF_ONLY_SETTINGS) and settings["tensorflow"]
        assert isinstance(settings["intra_op_threads"], int)
        assert isinstance(settings["inter_op_threads"], int)
    elif cls is KerasJaxMLP:
        assert tf_keys == [] and "tensorflow" not in settings
        assert settings["jax"] and settings["jaxlib"] and "xla_flags" in settings
        assert settings["matmul_precision"] == "highest"
        assert isinstance(settings["jax_enable_x64"], bool)
    else:
        assert tf_keys == [] and "tensorflow" not in settings
        assert settings["torch"] and settings["threads"] >= 1


@pytest.mark.parametrize("cls", params("jax", "torch"))
def test_tf32_option_sets_the_frameworks_switch(data, cls) -> None:
    """Process-wide flags: set, read back, and set off again (other tests expect them off)."""
    try:
        backend, _ = built(data, cls, options=RunOptions(tf32=True, backend={"jit_compile": "0"}))
        assert backend.settings()["tf32"] is True
    finally:
        backend, _ = built(data, cls)
    assert backend.settings()["tf32"] is False


@pytest.mark.parametrize("cls", COMPILED)
def test_steps_per_execution_changes_dispatch_not_updates(data, cls) -> None:
    order = np.random.default_rng(2).permutation(N_TRAIN).astype(np.int64)
    runs = {}
    for steps in (1, 3):  # 8 batches: 3 + 3 + 2 steps per call, the last batch partial
        options = RunOptions(backend={"jit_compile": "false", "steps_per_execution": str(steps)})
        backend, _ = built(data, cls, options=options)
        metrics = backend.train_epoch(order)
        assert backend.model.steps_per_execution == steps
        assert backend.settings()["steps_per_execution"] == steps
        assert iterations(backend) == 8
        runs[steps] = (backend.get_weights(), float(metrics.loss), float(metrics.accuracy))
    (one, loss1, acc1), (three, loss3, acc3) = runs[1], runs[3]
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert loss3 == pytest.approx(loss1, rel=1e-5) and acc3 == acc1


@pytest.mark.dynamo
@available(KerasTorchMLP)
def test_torch_takes_one_step_per_execution_only() -> None:
    with pytest.raises(OptionError, match="steps_per_execution must be 1"):
        KerasTorchMLP(RunOptions(backend={"steps_per_execution": "2"}))


@pytest.mark.dynamo
@available(KerasTorchMLP)
def test_torch_refuses_float64_in_one_line(data) -> None:
    """Keras' torch ops compute float64 matmuls (every Dense) and the loss mean in float32; a
    float64 recipe is refused rather than run in mixed precision."""
    with pytest.raises(RecipeUnsupported) as refusal:
        built(data, KerasTorchMLP, dtype="float64")
    message = str(refusal.value)
    assert "\n" not in message and "matmul" in message and "float32" in message


@pytest.mark.parametrize("cls", FLOAT64)
def test_float64_full_batch_runs_in_float64_and_restores_floatx(data, cls) -> None:
    backend, _ = built(
        data, cls, dtype="float64", optimizer="sgd", learning_rate=0.01, batch_size=None
    )
    floatx = backend.keras.config.floatx()
    metrics = backend.train_epoch(np.arange(N_TRAIN, dtype=np.int64))
    test = backend.evaluate()
    assert iterations(backend) == 1  # None → one batch of all rows
    assert all(w.dtype == np.float64 for w in backend.get_weights())
    held = {backend.keras.backend.standardize_dtype(v.value.dtype) for v in backend.model.weights}
    assert held == {"float64"}  # the framework's own arrays, not just Keras' dtype label
    assert np.isfinite([metrics.loss, metrics.accuracy, test.loss, test.accuracy]).all()
    assert backend.keras.config.floatx() == floatx
    x, y = data["float64"].x_test, data["float64"].y_test
    assert test.loss == pytest.approx(reference.loss(backend.get_weights(), x, y), rel=1e-12)
    if cls is KerasJaxMLP:
        assert backend.settings()["jax_enable_x64"] is True


@pytest.mark.parametrize("cls", ALL)
def test_dropout_keeps_80_percent_scaled_in_training_only(data, cls) -> None:
    backend, _ = built(data, cls, dropout=0.2)
    keras = backend.keras
    (layer,) = [lay for lay in backend.model.layers if isinstance(lay, keras.layers.Dropout)]
    assert layer.rate == 0.2
    x = np.ones((400, 500), dtype=np.float32)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = y != 0
    assert abs(kept.mean() - 0.8) < 0.01  # binomial sd 0.0009
    assert np.all(y[kept] == np.float32(1 / 0.8))
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)


@pytest.mark.parametrize("cls", ALL)
def test_evaluate_is_inference_mode(data, cls) -> None:
    backend, _ = built(data, cls, dropout=0.5)
    first, second = backend.evaluate(), backend.evaluate()
    assert first == second  # no dropout randomness
    x, y = data["float32"].x_test, data["float32"].y_test
    assert first.loss == pytest.approx(reference.loss(start(), x, y), rel=1e-5)
    assert first.accuracy == pytest.approx(reference.accuracy(start(), x, y), abs=1e-7)
    assert isinstance(first.loss, float) and isinstance(first.accuracy, float)
    assert backend.synchronize() is None


@pytest.mark.parametrize("cls", COMPILED)
def test_warm_epochs_do_not_retrace(data, cls) -> None:
    """Python code in ``train_step`` runs only while TensorFlow or JAX traces it: count runs."""
    backend, _ = built(data, cls, options=RunOptions())
    model, traces = backend.model, []
    original = model.train_step
    model.train_step = lambda *args: (traces.append(1), original(*args))[1]
    order = np.arange(N_TRAIN, dtype=np.int64)
    metrics = backend.train_epoch(order)  # cold: traces the full batch and the partial one
    cold = len(traces)
    for _ in range(2):
        backend.train_epoch(order)
    assert 1 <= cold <= 2 and len(traces) == cold
    assert isinstance(metrics.loss, float) and 0.0 <= metrics.accuracy <= 1.0


# --- agreement with the float64 NumPy engine (test_agreement.py's tolerances) --------------------

AGREE_TRAIN, AGREE_TEST, AGREE_BATCH = 1024, 500, 100  # 10 batches of 100 + one of 24
AGREE_ORDER = np.random.default_rng(7).permutation(AGREE_TRAIN).astype(np.int64)
#: Each class's default jit; float64 only where Keras computes in float64. The (dtype, config)
#: pairs not marked slow are the sensitive ones (ε = 1e-3 dominates Adam's small gradients).
FAST_AGREEMENT = {("float32", "adam_eps1e-3"), ("float64", "adam_eps1e-3")}


def agreement_params() -> list[object]:
    out = []
    for name in ("jax", "torch"):
        for dtype in ("float32", "float64"):
            if name == "torch" and dtype == "float64":
                continue
            for config in CONFIGS:
                marks = [available(CLASSES[name])]
                if (dtype, config) not in FAST_AGREEMENT:
                    marks.append(pytest.mark.slow)
                out.append(
                    pytest.param(
                        CLASSES[name], dtype, config, id=f"{name}-{dtype}-{config}", marks=marks
                    )
                )
    return out


@pytest.fixture(scope="module")
def agree_data(raw_mnist: RawMNIST) -> dict[str, Dataset]:
    return {
        dt: prepare(raw_mnist, dt).subset(AGREE_TRAIN, AGREE_TEST) for dt in ("float32", "float64")
    }


@functools.cache
def numpy_epoch(config: str, x64: Dataset) -> tuple[list[np.ndarray], float]:
    """The float64 NumPy engine's weights and training loss after the agreement epoch."""
    s = replace(BASELINE, name=f"agree_{config}", batch_size=AGREE_BATCH, **CONFIGS[config])
    ref = NumpyMLP(RunOptions())
    ref.build(replace(s, dtype="float64").recipe(AGREE_TRAIN), x64, exact("float64"))
    loss = float(ref.train_epoch(AGREE_ORDER).loss)
    return ref.get_weights(), loss


@pytest.mark.parametrize(("cls", "dtype", "config"), agreement_params())
def test_epoch_agrees_with_the_float64_numpy_engine(agree_data, cls, dtype: str, config: str):
    """One epoch at batch 100 on 1024 rows from float32-exact weights, as test_agreement.py runs
    it for registered backends: weights and training loss within its tolerances."""
    s = replace(BASELINE, name=f"agree_{config}", batch_size=AGREE_BATCH, **CONFIGS[config])
    ref_weights, ref_loss = numpy_epoch(config, agree_data["float64"])
    backend = cls(RunOptions())
    backend.build(replace(s, dtype=dtype).recipe(AGREE_TRAIN), agree_data[dtype], exact(dtype))
    loss = float(backend.train_epoch(AGREE_ORDER).loss)
    backend.synchronize()
    weights = backend.get_weights()
    assert [w.dtype for w in weights] == [np.dtype(dtype)] * 4
    tol = tolerance(dtype, s.optimizer)
    errors = moved_errors(weights, ref_weights)
    assert max(errors) <= tol.weights, f"errors (W1, b1, W2, b2) {errors} > {tol.weights}"
    assert abs(loss - ref_loss) <= tol.loss * ref_loss, (loss, ref_loss)


@pytest.mark.parametrize("cls", params("jax", "torch"))
def test_baseline_epoch_at_batch_600_matches_numpy(raw_mnist: RawMNIST, cls) -> None:
    """The harness's own weights and batches (seed 3), full MNIST, one baseline epoch: the test
    loss within 1e-3 relative of the NumPy engine's."""
    import scenarios
    from bench.cell.session import epoch_order, scenario_weights

    scenario = scenarios.BASELINE.with_overrides(batch_size=600, seed=3, epochs=1)
    data = prepare(raw_mnist, "float32")
    recipe, order = scenario.recipe(data.n_train), epoch_order(scenario, data.n_train, 1)
    results = []
    for engine in (cls, NumpyMLP):
        backend = engine(RunOptions())
        backend.build(recipe, data, scenario_weights(scenario, data))
        backend.train_epoch(order)
        backend.synchronize()
        results.append(backend.evaluate())
    mine, numpy = results
    assert mine.loss == pytest.approx(numpy.loss, rel=1e-3)
    assert abs(mine.accuracy - numpy.accuracy) < 0.005


@pytest.mark.parametrize("cls", params("jax", "torch"))
def test_batch_feed_gathers_each_batch_in_the_harness_order(cls: type[KerasMLP]) -> None:
    """On JAX and PyTorch, each epoch's batches are the rows of the harness's order, gathered
    batch by batch (oracle: NumPy indexing of ``x[order]`` cut into consecutive batches), the
    partial last batch included, for a new order every epoch and an order shorter than the
    data; and the PyDataset is one Keras' own ``fit`` accepts."""
    from backends.keras_mlp import _BatchFeed

    keras = cls()._use_keras()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_TRAIN, 3)).astype(np.float32)
    y = rng.integers(0, 10, N_TRAIN)
    feed = _BatchFeed(keras, x, y, 32)
    for order in (rng.permutation(N_TRAIN), rng.permutation(N_TRAIN), rng.permutation(70)):
        batches = feed.fit_args(order)["x"]
        assert isinstance(batches, keras.utils.PyDataset)
        starts = range(0, len(order), 32)
        assert len(batches) == len(starts)
        for i, start in enumerate(starts):
            xb, yb = batches[i]
            np.testing.assert_array_equal(xb, x[order[start : start + 32]])
            np.testing.assert_array_equal(yb, y[order[start : start + 32]])


@available(KerasMLP)
@pytest.mark.parametrize("batch_size", [32, 50])
def test_tensorflow_feed_yields_the_harness_order_each_epoch(batch_size):
    """TensorFlow's persistent pipelines yield each epoch's batches exactly as slicing
    ``x[order]`` into consecutive batches does (oracle: NumPy indexing), the partial last batch
    included, for a new order every epoch and for orders shorter than the data."""
    from backends.keras_mlp import _TfFeed

    rng = np.random.default_rng(7)
    x = rng.standard_normal((N_TRAIN, 3)).astype(np.float32)
    y = rng.integers(0, 10, N_TRAIN)
    feed = _TfFeed(x, y, batch_size)
    # full-length orders, as the harness gives; shorter ones (a few steps), as tests give
    for order in (rng.permutation(N_TRAIN), rng.permutation(N_TRAIN), rng.permutation(70)):
        batches = list(feed.fit_args(order)["x"].as_numpy_iterator())
        starts = range(0, len(order), batch_size)
        assert len(batches) == len(starts)
        for (xb, yb), start in zip(batches, starts, strict=True):
            rows = order[start : start + batch_size]
            np.testing.assert_array_equal(xb, x[rows])
            np.testing.assert_array_equal(yb, y[rows])
