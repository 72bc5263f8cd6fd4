"""The conformance kit: the tests every backend passes, in this repository or in a plug-in's.

A plug-in's test suite subclasses ``BackendConformance`` once, naming its backend::

    from bench.conformance import BackendConformance

    class TestMyBackendConformance(BackendConformance):
        backend = "mine"                 # its entry-point name (or: backend_class = MyMLP)
        framework_modules = ("myframework",)   # unavailable_reason() must not import these

and pytest runs every check below against it (skipped, with the backend's own reason, where it
cannot run). The oracle is mlpbench's NumPy engine, itself checked against finite differences and
Keras' golden values: from the harness's initial weights and batch order, one epoch must land
where NumPy's lands. Needs pytest and the shipped MNIST (full training set for one check, a
1,200-row slice for the rest).

What is checked: the weights handed in come back out unchanged (and ``set_weights`` round-trips);
the batch order is honoured; one baseline epoch at batch 600 (seed 3, full MNIST) gives a test
loss within 1e-3 relative of NumPy's under the exact formulas (within 1e-2 as shipped where the
shipped Adam departs); SGD, Adam and RMSprop steps agree with the
float64 reference (ε placed as Keras places it) under the backend's exact-formula options; as
shipped, each optimizer either is Keras' formula or its departure is declared; float64 stays
float64 (or is refused with ``RecipeUnsupported``); metrics are readable after ``synchronize()``;
``evaluate`` is inference mode; ``unavailable_reason()`` is one line and imports no framework;
``settings()`` is JSON-ready and records ``dtype`` and every option in ``OPTIONS``; the plain
script trains (``PLAIN_SCRIPT``, for ``mlpbench fidelity``).

Optional class attributes the kit reads: ``EXACT_FORMULAS`` (backend options under which every
update is Keras 3's formula, when the shipped one is not: e.g. ``{"optimizer": "keras-formula"}``),
``FORMULA_DEPARTURES`` (recipe optimizer → one line on how the shipped update departs from
Keras'), ``PLAIN_SCRIPT`` (``python -m`` arguments of the recipe written as the framework's own
users write it; its contract: ``backends/plain/common.py``).
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import pytest

from backends.api import EpochMetrics, Evaluation, Recipe, RecipeUnsupported, RunOptions, Weights

N_SLICE, N_SLICE_TEST = 1200, 500
SLICE_BATCH = 100  # 12 steps per epoch on the slice
FULL_BATCH, FULL_SEED = 600, 3  # the batch-600 check on full MNIST
#: Test-loss agreement with NumPy after one full-MNIST epoch at batch 600 (exact formulas).
FULL_LOSS_RTOL = 1e-3
#: The same, as shipped, for an Adam that departs from Keras' formula (declared): torch.optim's
#: measured 3.7e-3 (its ε acts unscaled by the bias correction, Keras' 32× larger at step 1).
SHIPPED_LOSS_RTOL = 1e-2
#: Weight agreement after one epoch on the slice, as max|w − ref| / max|ref − w0| per array.
#: Measured worst cases (2-core x86 CPU): float32 NumPy vs Keras SGD 1.2e-6, RMSprop 1.0e-5,
#: Adam 3.7e-4 (its first steps divide by √v + ε with √v ≈ |g|, so float32 rounding of the
#: tiniest gradients shows); float64 below 1e-12. ε placed inside Adam's sqrt or outside
#: RMSprop's moves results by ≥ 0.3 with ε = 1e-3, so these bounds catch it.
FLOAT32_WEIGHTS = {"sgd": 1e-5, "rmsprop": 1e-4, "adam": 3e-3}
FLOAT64_WEIGHTS = 1e-9
OPTIMIZER_CASES = {
    "sgd": {"optimizer": "sgd", "learning_rate": 0.1},
    "adam": {"optimizer": "adam", "learning_rate": 1e-3},
    "rmsprop": {"optimizer": "rmsprop", "learning_rate": 1e-3},
    "adam_eps1e-3": {"optimizer": "adam", "learning_rate": 1e-3, "epsilon": 1e-3},
    "rmsprop_eps1e-3": {"optimizer": "rmsprop", "learning_rate": 1e-3, "epsilon": 1e-3},
}
BASE = Recipe(
    scenario="conformance",
    hidden=(128,),
    optimizer="adam",
    learning_rate=1e-3,
    beta_1=0.9,
    beta_2=0.999,
    rho=0.9,
    epsilon=1e-7,
    batch_size=SLICE_BATCH,
    dropout=0.0,
    dtype="float32",
    seed=0,
)


# --- data, weights and the NumPy reference (cached across backends) ------------------------------


@functools.cache
def _dataset(dtype: str, sliced: bool) -> Any:
    from bench.data import load_dataset

    data = load_dataset(dtype=dtype)
    return data.subset(N_SLICE, N_SLICE_TEST) if sliced else data


def _weights(dtype: str, seed: int = 0, hidden: tuple[int, ...] = (128,)) -> Weights:
    """Glorot-uniform weights drawn as float32 (exactly representable in float64 too)."""
    from bench.cell.initializers import initial_weights

    start = initial_weights("glorot_uniform", 784, hidden, 10, seed=seed, dtype="float32")
    return [w.astype(dtype) for w in start]


def _order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


def _train(
    cls: type,
    recipe: Recipe,
    data: Any,
    weights: Weights,
    order: np.ndarray,
    options: RunOptions | None = None,
) -> tuple[Weights, EpochMetrics, Evaluation, Any]:
    """Build ``cls`` from ``weights``, train one epoch over ``order``, synchronize, evaluate."""
    backend = cls(options or RunOptions())
    backend.build(recipe, data, [w.copy() for w in weights])
    metrics = backend.train_epoch(order)
    backend.synchronize()
    return backend.get_weights(), metrics, backend.evaluate(), backend


@functools.cache
def _reference(
    case: str, dtype: str, order_seed: int, hidden: tuple[int, ...] = (128,)
) -> tuple[Weights, float]:
    """NumPy in float64 from float32-exact weights: (weights, training loss) after one epoch."""
    from backends.numpy_mlp import NumpyMLP

    recipe = replace(BASE, **OPTIMIZER_CASES[case], dtype="float64", hidden=hidden)
    weights, metrics, _, _ = _train(
        NumpyMLP,
        recipe,
        _dataset("float64", True),
        _weights("float64", hidden=hidden),
        _order(N_SLICE, order_seed),
    )
    return weights, float(metrics.loss)


#: The depth case: two hidden layers (any number must work; two is the smallest that tests the
#: backward pass through a hidden layer).
DEEP = (64, 32)


def _moved(weights: Weights, reference: Weights, start: Weights) -> list[float]:
    """max|w − ref| / max|ref − w0| per array: error relative to how far training moved it."""
    return [
        float(np.max(np.abs(w - r)) / np.max(np.abs(r - s)))
        for w, r, s in zip(
            (np.asarray(w, np.float64) for w in weights), reference, start, strict=True
        )
    ]


def _exact(cls: type) -> RunOptions:
    """The backend's options under which every update is Keras 3's formula."""
    return RunOptions(backend=dict(getattr(cls, "EXACT_FORMULAS", {}) or {}))


#: What the plain-script check trains: two epochs of the first rows.
PLAIN_ROWS, PLAIN_EPOCHS = 2048, 2


# --- the kit -------------------------------------------------------------------------------------


class BackendConformance:
    """Subclass with ``backend = "entry-point name"`` (or ``backend_class``) in a ``Test*``
    class; every ``test_*`` method below then runs against that backend."""

    backend: ClassVar[str | None] = None
    backend_class: ClassVar[type | None] = None
    #: Top-level modules ``unavailable_reason()`` must not import (e.g. ("torch",)).
    framework_modules: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture
    def cls(self) -> type:
        """The backend class; the test skips with the backend's own reason where it can't run."""
        if self.backend_class is not None:
            cls = self.backend_class
            reason = cls.unavailable_reason()
        else:
            from bench import registry

            assert self.backend, "set backend = '<entry-point name>' or backend_class"
            reason = registry.unavailable_reason(self.backend)
            cls = registry.backend_class(self.backend) if reason is None else None
        if reason is not None:
            pytest.skip(f"{self.backend or self.backend_class}: {reason}")
        return cls

    # -- the contract's surface
    def test_unavailable_reason_is_one_line_and_imports_no_framework(self, cls: type) -> None:
        reason = cls.unavailable_reason()
        assert reason is None or (isinstance(reason, str) and reason and "\n" not in reason)
        code = (
            "import importlib, sys\n"
            f"cls = getattr(importlib.import_module({cls.__module__!r}), {cls.__qualname__!r})\n"
            "before = set(sys.modules)\n"
            "cls.unavailable_reason()\n"
            "print(' '.join(sorted(set(sys.modules) - before)))\n"
        )
        new = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        imported = {m.partition(".")[0] for m in new}
        assert not imported & set(self.framework_modules), f"imported {sorted(imported)}"

    def test_declares_device_and_options(self, cls: type) -> None:
        options = getattr(cls, "OPTIONS", {})
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in options.items())
        backend = cls(RunOptions())
        assert backend.device in ("cpu", "gpu")

    def test_settings_are_json_and_complete(self, cls: type) -> None:
        _, _, _, backend = _train(
            cls, BASE, _dataset("float32", True), _weights("float32"), _order(N_SLICE, 1)
        )
        settings = backend.settings()
        json.dumps(settings)  # JSON-ready: the harness writes it as is
        assert settings["dtype"] == "float32"
        missing = [k for k in getattr(cls, "OPTIONS", {}) if k not in settings]
        assert missing == [], f"settings() lacks the options in force: {missing}"

    # -- weights and order
    def test_weights_come_back_as_handed_in(self, cls: type) -> None:
        backend = cls(RunOptions())
        start = _weights("float32")
        backend.build(BASE, _dataset("float32", True), [w.copy() for w in start])
        out = backend.get_weights()
        assert [w.shape for w in out] == [w.shape for w in start]
        assert all(w.dtype == np.float32 for w in out)
        for got, given in zip(out, start, strict=True):
            np.testing.assert_array_equal(got, given)
        other = _weights("float32", seed=5)
        backend.set_weights(other)
        for got, given in zip(backend.get_weights(), other, strict=True):
            np.testing.assert_array_equal(got, given)

    def test_batch_order_is_honoured(self, cls: type) -> None:
        """SGD is order-sensitive: each of two orders must land on NumPy's result for it."""
        recipe = replace(BASE, **OPTIMIZER_CASES["sgd"])
        start = _weights("float32")
        runs = {}
        for order_seed in (1, 2):
            order = _order(N_SLICE, order_seed)
            runs[order_seed], _, _, _ = _train(cls, recipe, _dataset("float32", True), start, order)
            reference, _ = _reference("sgd", "float32", order_seed)
            assert max(_moved(runs[order_seed], reference, start)) < FLOAT32_WEIGHTS["sgd"]
        assert not np.allclose(runs[1][0], runs[2][0])

    # -- the math
    @pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
    def test_epoch_agrees_with_the_float64_reference(self, cls: type, case: str) -> None:
        recipe = replace(BASE, **OPTIMIZER_CASES[case])
        start = _weights("float32")
        weights, metrics, _, _ = _train(
            cls, recipe, _dataset("float32", True), start, _order(N_SLICE, 1), _exact(cls)
        )
        reference, ref_loss = _reference(case, "float32", 1)
        errors = _moved(weights, reference, _weights("float64"))
        assert max(errors) < FLOAT32_WEIGHTS[recipe.optimizer], errors
        assert float(metrics.loss) == pytest.approx(ref_loss, rel=1e-4)

    @pytest.mark.parametrize("case", ["sgd", "adam"])
    def test_two_hidden_layers_agree_with_the_float64_reference(self, cls: type, case: str) -> None:
        """The same epoch through two hidden layers (64, 32): the backward pass must go
        through a hidden layer's ReLU, and every layer's weights must come back in order."""
        recipe = replace(BASE, **OPTIMIZER_CASES[case], hidden=DEEP)
        start = _weights("float32", hidden=DEEP)
        weights, metrics, _, _ = _train(
            cls, recipe, _dataset("float32", True), start, _order(N_SLICE, 1), _exact(cls)
        )
        assert [w.shape for w in weights] == [w.shape for w in start]
        reference, ref_loss = _reference(case, "float32", 1, DEEP)
        errors = _moved(weights, reference, _weights("float64", hidden=DEEP))
        assert max(errors) < FLOAT32_WEIGHTS[recipe.optimizer], errors
        assert float(metrics.loss) == pytest.approx(ref_loss, rel=1e-4)

    @pytest.mark.parametrize("case", ["sgd", "adam_eps1e-3"])
    def test_float64_recipe_runs_in_float64(self, cls: type, case: str) -> None:
        recipe = replace(BASE, **OPTIMIZER_CASES[case], dtype="float64")
        try:
            weights, metrics, _, _ = _train(
                cls,
                recipe,
                _dataset("float64", True),
                _weights("float64"),
                _order(N_SLICE, 1),
                _exact(cls),
            )
        except RecipeUnsupported as refusal:
            assert str(refusal) and "\n" not in str(refusal)
            pytest.skip(f"refuses float64: {refusal}")
        assert all(w.dtype == np.float64 for w in weights)
        reference, ref_loss = _reference(case, "float64", 1)
        assert max(_moved(weights, reference, _weights("float64"))) < FLOAT64_WEIGHTS
        assert float(metrics.loss) == pytest.approx(ref_loss, rel=1e-9)

    @pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
    def test_shipped_update_is_keras_formula_or_declared(self, cls: type, optimizer: str) -> None:
        """As shipped, an optimizer is Keras' formula (it agrees with the reference), or its
        departure is one declared line and ``EXACT_FORMULAS`` makes it Keras' (checked above)."""
        departure = dict(getattr(cls, "FORMULA_DEPARTURES", {}) or {}).get(optimizer)
        if departure is not None:
            assert isinstance(departure, str) and departure and "\n" not in departure
            assert getattr(cls, "EXACT_FORMULAS", None), "a departure needs EXACT_FORMULAS"
            return
        recipe = replace(BASE, **OPTIMIZER_CASES[optimizer])
        start = _weights("float32")
        weights, _, _, _ = _train(cls, recipe, _dataset("float32", True), start, _order(N_SLICE, 1))
        reference, _ = _reference(optimizer, "float32", 1)
        assert max(_moved(weights, reference, _weights("float64"))) < FLOAT32_WEIGHTS[optimizer]

    def test_plain_script_trains(self, cls: type) -> None:
        """``PLAIN_SCRIPT`` follows its output contract: one line per epoch with its seconds,
        then a test accuracy well above chance after two epochs on 2,048 rows."""
        from bench.data import SHIPPED_PATH

        script = getattr(cls, "PLAIN_SCRIPT", None)
        assert script, "declare PLAIN_SCRIPT: the recipe as the framework's users write it"
        argv = [sys.executable, "-m", *script, "--data", str(SHIPPED_PATH)]
        argv += ["--epochs", str(PLAIN_EPOCHS), "--n-train", str(PLAIN_ROWS), "--n-test", "1000"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert [x["epoch"] for x in lines[:-1]] == list(range(1, PLAIN_EPOCHS + 1))
        assert all(x["seconds"] > 0 for x in lines[:-1])
        assert 0.7 < lines[-1]["test_accuracy"] <= 1.0

    def test_baseline_epoch_at_batch_600_matches_numpy(self, cls: type) -> None:
        """The harness's own weights and batches (seed 3), full MNIST, one baseline epoch, under
        the exact formulas: test loss within FULL_LOSS_RTOL of NumPy's. A backend whose shipped
        Adam departs from Keras' formula must still land close as shipped: accuracy within half a
        point, loss within SHIPPED_LOSS_RTOL (torch.optim measured 3.7e-3 and 0.01 pt)."""
        import scenarios
        from backends.numpy_mlp import NumpyMLP
        from bench.cell.session import epoch_order, scenario_weights

        scenario = scenarios.BASELINE.with_overrides(batch_size=FULL_BATCH, seed=FULL_SEED)
        data = _dataset("float32", False)
        recipe, start = scenario.recipe(data.n_train), scenario_weights(scenario, data)
        order = epoch_order(scenario, data.n_train, 1)
        _, _, numpy, _ = _train(NumpyMLP, recipe, data, start, order)
        _, _, mine, _ = _train(cls, recipe, data, start, order, _exact(cls))
        assert mine.loss == pytest.approx(numpy.loss, rel=FULL_LOSS_RTOL)
        assert abs(mine.accuracy - numpy.accuracy) < 0.005
        if recipe.optimizer in (getattr(cls, "FORMULA_DEPARTURES", {}) or {}):
            _, _, shipped, _ = _train(cls, recipe, data, start, order)
            assert shipped.loss == pytest.approx(numpy.loss, rel=SHIPPED_LOSS_RTOL)
            assert abs(shipped.accuracy - numpy.accuracy) < 0.005

    # -- what the harness reads
    def test_metrics_are_read_after_synchronize(self, cls: type) -> None:
        backend = cls(RunOptions())
        backend.build(BASE, _dataset("float32", True), _weights("float32"))
        metrics = backend.train_epoch(_order(N_SLICE, 1))
        assert isinstance(metrics, EpochMetrics)
        assert backend.synchronize() is None
        backend.synchronize()  # idempotent
        loss, accuracy = float(metrics.loss), float(metrics.accuracy)
        assert math.isfinite(loss) and 0.0 <= accuracy <= 1.0
        if metrics.device_seconds is not None:
            assert float(metrics.device_seconds) > 0.0

    def test_dropout_acts_in_training(self, cls: type) -> None:
        data, start, order = _dataset("float32", True), _weights("float32"), _order(N_SLICE, 1)
        _, plain, _, _ = _train(cls, BASE, data, start, order)
        _, dropped, _, _ = _train(cls, replace(BASE, dropout=0.5), data, start, order)
        assert float(dropped.loss) > float(plain.loss) * 1.02  # half the units gone: worse fit

    def test_evaluate_matches_the_forward_pass(self, cls: type) -> None:
        """Before training, evaluate() is the plain forward pass of the handed-in weights, and
        dropout (rate 0.5) does not touch it."""
        data = _dataset("float32", True)
        start = _weights("float32")
        backend = cls(RunOptions())
        backend.build(replace(BASE, dropout=0.5), data, [w.copy() for w in start])
        first, second = backend.evaluate(), backend.evaluate()
        assert first == second
        assert isinstance(first, Evaluation)
        logits = np.maximum(data.x_test.astype(np.float64) @ start[0] + start[1], 0.0)
        logits = logits @ start[2] + start[3]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(data.y_test))
        assert first.loss == pytest.approx(-log_p[rows, data.y_test].mean(), rel=1e-5)
        assert first.accuracy == pytest.approx(np.mean(logits.argmax(1) == data.y_test), abs=1e-6)
