"""The JAX backend against independent oracles: the NumPy reference backend (same weights, same
order, one epoch), a hand-written NumPy SGD step (dropout), and its own two epoch modes.

Compilation dominates the run time (~1.3 s per built instance here), so trained results are
cached per configuration and shared between tests (``trained``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from backends.api import OptionError, Recipe, RunOptions, TrainData
from backends.jax_mlp import DEFAULT_DONATE, DEFAULT_EPOCH, JaxMLP
from backends.numpy_mlp import NumpyMLP
from bench import conformance
from bench.cell.initializers import initial_weights
from bench.data import load_dataset

REASON = JaxMLP.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

N_TRAIN, N_TEST, BATCH = 1024, 500, 100  # 10 full batches and a partial one of 24
ORDER = np.random.default_rng(7).permutation(N_TRAIN).astype(np.int64)
SHAPES = [(784, 128), (128,), (128, 10), (10,)]
BASE = replace(conformance.BASE, scenario="test", batch_size=BATCH)  # Keras' defaults
#: (optimizer, learning rate, epsilon); ε = 1e-3 makes its placement (inside/outside the sqrt)
#: change the updates far beyond the tolerances below.
CASES = [
    ("sgd", 0.1, 1e-7),
    ("adam", 1e-3, 1e-7),
    ("rmsprop", 1e-3, 1e-7),
    ("adam", 1e-3, 1e-3),
    ("rmsprop", 1e-3, 1e-3),
]
#: max|w − ref| / max|ref − w0| per weight array after one epoch. Measured (2-vCPU Xeon, jax
#: 0.10.2): float32 sgd 7.7e-7, rmsprop 1.3e-6, adam 5.6e-5 (ε 1e-7; 1.3e-5 with ε 1e-3);
#: float64 ≤ 4.9e-14 for every case (Keras vs NumPy needed ~3e-3 for float32 Adam).
WEIGHT_TOL = {"float32": {"sgd": 1e-5, "rmsprop": 2e-5, "adam": 1e-3}, "float64": 1e-12}
#: |loss − ref loss|: measured ≤ 2.4e-6 (float32) and ≤ 4.4e-16 (float64).
LOSS_TOL = {"float32": 3e-5, "float64": 1e-13}


@functools.cache
def data(dtype: str) -> TrainData:
    ds = load_dataset(dtype=dtype)
    return TrainData(
        ds.x_train[:N_TRAIN], ds.y_train[:N_TRAIN], ds.x_test[:N_TEST], ds.y_test[:N_TEST]
    )


def start() -> list[np.ndarray]:
    """Glorot weights drawn in float64 and rounded to float32: the same start for both dtypes."""
    return initial_weights("glorot_uniform", 784, (128,), 10, seed=0, dtype="float32")


def recipe(**changes: object) -> Recipe:
    return replace(BASE, **changes)


def built(s: Recipe, **options: str) -> JaxMLP:
    backend = JaxMLP(RunOptions(backend=options))
    backend.build(s, data(s.dtype), start())
    return backend


def trained(
    kind: str, s: Recipe, epoch: str = DEFAULT_EPOCH, donate: str = "true", feed: str = "host"
) -> tuple:
    """(weights, training loss, accuracy) after one epoch over ORDER, from start(); ``kind`` is
    "jax" or "numpy" (the reference). Cached: each configuration is trained once per session."""
    jax = kind == "jax"
    return _trained(kind, s, epoch if jax else "", donate if jax else "", feed if jax else "")[:3]


@functools.cache
def _trained(kind: str, s: Recipe, epoch: str, donate: str, feed: str) -> tuple:
    if kind == "numpy":
        backend = NumpyMLP(RunOptions())
        backend.build(s, data(s.dtype), start())
    else:
        backend = built(s, epoch=epoch, donate=donate, feed=feed)
    metrics = backend.train_epoch(ORDER)
    backend.synchronize()
    return backend.get_weights(), float(metrics.loss), float(metrics.accuracy), backend, metrics


def moved(weights: list[np.ndarray], ref: list[np.ndarray], dtype: str) -> list[float]:
    """Per array: max|w − ref| relative to how far the reference moved from start()."""
    w0 = [w.astype(dtype) for w in start()]
    return [
        float(np.max(np.abs(w - r)) / np.max(np.abs(r - s)))
        for w, r, s in zip(weights, ref, w0, strict=True)
    ]


# ------------------------------------------------------------------------------ availability
def test_module_and_unavailable_reason_do_not_import_jax() -> None:
    code = (
        "import sys\n"
        "from backends.jax_mlp import JaxMLP, _gpu_plugin_installed\n"
        "assert JaxMLP.unavailable_reason() is None\n"
        "if not _gpu_plugin_installed():\n"
        "    assert JaxMLP.machine_facts() == {}\n"
        "assert 'jax' not in sys.modules and 'jaxlib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unavailable_reason_without_jax(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name)
    )
    assert JaxMLP.unavailable_reason() == "jax is not installed (pip install 'mlpbench[jax]')"
    assert JaxMLP.machine_facts() == {}


# ------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("name", "value"),
    [("epoch", "fast"), ("epoch", ""), ("donate", "maybe"), ("donate", "2"), ("feed", "disk")],
)
def test_bad_option_values_are_option_errors(name: str, value: str) -> None:
    with pytest.raises(OptionError, match=name):
        JaxMLP(RunOptions(backend={name: value}))


def test_settings_record_the_options_in_force() -> None:
    default = built(recipe())
    settings = default.settings()
    assert set(JaxMLP.OPTIONS) == {"epoch", "donate", "feed"}
    assert settings["epoch"] == DEFAULT_EPOCH and settings["donate"] is DEFAULT_DONATE
    assert settings["feed"] == "host"  # as JAX's tutorials feed a jitted step
    assert settings["dtype"] == "float32" and settings["device"] == default.device == "cpu"
    assert settings["tf32"] is False and settings["matmul_precision"] == "highest"
    assert settings["jax"] and settings["jaxlib"] and settings["platform"] == "cpu"
    assert isinstance(settings["x64"], bool) and settings["devices"] >= 1
    other = JaxMLP(RunOptions(tf32=True, backend={"epoch": "LOOP", "donate": "off"}))
    other.build(recipe(), data("float32"), start())
    settings = other.settings()
    assert settings["epoch"] == "loop" and settings["donate"] is False
    assert built(recipe(), epoch="scan").settings()["feed"] == "device"  # scan gathers there
    assert settings["tf32"] is True and settings["matmul_precision"] == "tensorfloat32"


# ------------------------------------------------------------------------------- weights
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_build_loads_the_weights_and_trains_nothing(dtype: str) -> None:
    backend = built(recipe(dtype=dtype))
    weights = backend.get_weights()
    assert [w.shape for w in weights] == SHAPES
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    assert all(np.array_equal(w, w0) for w, w0 in zip(weights, start(), strict=True))
    assert int(backend.opt_state[0]) == 0  # no hidden warm-up step
    backend.set_weights([w + 1 for w in weights])
    assert np.array_equal(backend.get_weights()[3], weights[3] + 1)
    with pytest.raises(ValueError, match="shapes"):
        backend.set_weights(weights[:2])


def test_weights_handed_out_are_copies_that_later_steps_do_not_touch() -> None:
    backend = built(recipe(optimizer="sgd", learning_rate=0.1, batch_size=128))  # donates
    before = backend.get_weights()
    snapshot = [w.copy() for w in before]
    before[0][...] = 0.0
    assert np.array_equal(backend.get_weights()[0], snapshot[0])
    backend.train_epoch(ORDER)
    backend.synchronize()
    before = backend.get_weights()
    snapshot = [w.copy() for w in before]
    backend.train_epoch(ORDER)
    backend.synchronize()
    assert all(np.array_equal(a, b) for a, b in zip(before, snapshot, strict=True))
    assert int(backend.opt_state[0]) == 2 * 8  # 8 batches of 128 per epoch


# ---------------------------------------------------------------- agreement with NumPy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("optimizer", "lr", "eps"), CASES)
def test_one_epoch_agrees_with_the_numpy_reference(
    optimizer: str, lr: float, eps: float, dtype: str
) -> None:
    s = recipe(optimizer=optimizer, learning_rate=lr, epsilon=eps, dtype=dtype)
    ref, ref_loss, ref_acc = trained("numpy", s)
    weights, loss, acc = trained("jax", s, "scan")
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    tol = WEIGHT_TOL[dtype] if dtype == "float64" else WEIGHT_TOL[dtype][optimizer]
    assert max(moved(weights, ref, dtype)) < tol
    assert loss == pytest.approx(ref_loss, abs=LOSS_TOL[dtype])
    assert acc == pytest.approx(ref_acc, abs=1.5 / N_TRAIN)  # at most one tie-flipped row


@pytest.mark.parametrize(("optimizer", "dtype"), [("adam", "float32"), ("rmsprop", "float64")])
def test_loop_without_donation_matches_scan_and_the_reference(optimizer: str, dtype: str) -> None:
    """Loop mode (a jitted step per batch, partial last batch included), donation off."""
    s = recipe(optimizer=optimizer, learning_rate=1e-3, epsilon=1e-3, dtype=dtype)
    loop, loop_loss, _ = trained("jax", s, "loop", "false")
    scan, scan_loss, _ = trained("jax", s, "scan")
    device, device_loss, _ = trained("jax", s, "loop", "false", feed="device")
    ref, _, _ = trained("numpy", s)
    same = 1e-5 if dtype == "float32" else 1e-13  # rounding: XLA may fuse the two differently
    for other, other_loss in ((scan, scan_loss), (device, device_loss)):
        assert max(moved(loop, other, dtype)) < same
        assert loop_loss == pytest.approx(other_loss, rel=same)
    tol = WEIGHT_TOL[dtype] if dtype == "float64" else WEIGHT_TOL[dtype][optimizer]
    assert max(moved(loop, ref, dtype)) < tol


def test_full_batch_epoch_has_no_partial_step() -> None:
    """batch == n_train: one scanned step and no remainder call; agrees with NumPy."""
    s = recipe(optimizer="sgd", learning_rate=0.1, batch_size=N_TRAIN, dtype="float64")
    weights, loss, _ = trained("jax", s, "scan")
    ref, ref_loss, _ = trained("numpy", s)
    assert max(moved(weights, ref, "float64")) < WEIGHT_TOL["float64"]
    assert loss == pytest.approx(ref_loss, abs=LOSS_TOL["float64"])


def test_epoch_metrics_are_device_scalars_and_evaluate_matches_numpy() -> None:
    import jax

    s = recipe(dtype="float64", optimizer="rmsprop")
    *_, backend, metrics = _trained("jax", s, DEFAULT_EPOCH, "true", "host")
    assert isinstance(metrics.loss, jax.Array) and isinstance(metrics.accuracy, jax.Array)
    result = backend.evaluate()
    assert backend.evaluate() == result  # deterministic
    w1, b1, w2, b2 = backend.get_weights()
    logits = np.maximum(data("float64").x_test @ w1 + b1, 0.0) @ w2 + b2
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    y = data("float64").y_test
    assert result.loss == pytest.approx(-logp[np.arange(N_TEST), y].mean(), abs=1e-12)
    assert result.accuracy == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-12)


# ----------------------------------------------------------------------------- dtypes
def test_float32_after_float64_still_computes_in_float32() -> None:
    """jax_enable_x64 is process-wide: a float32 run under it must be bitwise the float32 run
    without it (every dtype explicit, Python scalars weak), and hand back float32."""
    import jax

    s = recipe(optimizer="adam", epsilon=1e-3, dropout=0.2, batch_size=128)  # no partial batch
    with jax.enable_x64(False):
        plain = built(s)
        plain.train_epoch(ORDER)
        expected = plain.get_weights()
    built(recipe(dtype="float64"))  # switches x64 on for the process
    assert jax.config.jax_enable_x64
    backend = built(s)
    metrics = backend.train_epoch(ORDER)
    assert metrics.loss.dtype == np.float32 and metrics.accuracy.dtype == np.float32
    assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(backend.opt_state[1]))
    weights = backend.get_weights()
    assert all(w.dtype == np.float32 for w in weights)
    assert all(np.array_equal(a, b) for a, b in zip(weights, expected, strict=True))


# ---------------------------------------------------------------------------- dropout
def numpy_sgd_step(
    w: list[np.ndarray], x: np.ndarray, y: int, kept: np.ndarray, rate: float, lr: float
) -> list[np.ndarray]:
    """One SGD step on one row, written out by hand: inverted dropout with keep-mask ``kept``."""
    w1, b1, w2, b2 = w
    z1 = x @ w1 + b1
    scale = kept / (1.0 - rate)
    h = np.maximum(z1, 0.0) * scale
    z2 = h @ w2 + b2
    p = np.exp(z2 - z2.max())
    p /= p.sum()
    dz2 = p - np.eye(len(b2))[y]
    dz1 = (w2 @ dz2) * scale * (z1 > 0)
    grads = [np.outer(x, dz1), dz1, np.outer(h, dz2), dz2]
    return [a - lr * g for a, g in zip(w, grads, strict=True)]


def dropout_steps(seed: int, steps: int = 10, rate: float = 0.5) -> list[np.ndarray]:
    """Single-row SGD steps (float64) with dropout; each step's keep-mask is read back from which
    rows of W2 moved (a dropped or inactive unit's row gets no gradient), then the whole step is
    checked against ``numpy_sgd_step`` with that mask. Returns the masks over active units."""
    lr = 0.1
    s = recipe(optimizer="sgd", learning_rate=lr, batch_size=1, dropout=rate, dtype="float64")
    backend = built(replace(s, seed=seed))
    x, y = data("float64").x_train, data("float64").y_train
    masks = []
    for row in range(steps):
        before = backend.get_weights()
        backend.train_epoch(np.array([row], dtype=np.int64))
        after = backend.get_weights()
        active = (x[row] @ before[0] + before[1]) > 0
        kept = np.any(after[2] != before[2], axis=1)
        assert not np.any(kept & ~active)
        expected = numpy_sgd_step(before, x[row], int(y[row]), kept, rate, lr)
        assert all(
            np.allclose(a, e, rtol=0, atol=1e-12) for a, e in zip(after, expected, strict=True)
        )
        masks.append(kept[active])
    return masks


def test_dropout_masks_are_inverted_bernoulli_and_seeded() -> None:
    """JAX's own masks: keep-fraction ≈ 1 − rate, kept units scaled by 1/(1 − rate) (checked by
    the hand-written step), the same seed gives the same masks, another seed other masks."""
    masks = dropout_steps(seed=0)
    pooled = np.concatenate(masks)
    assert pooled.size > 300  # ~60 active units of 128 per row
    assert abs(pooled.mean() - 0.5) < 0.1  # 5 standard deviations
    assert all(np.array_equal(a, b) for a, b in zip(masks, dropout_steps(seed=0), strict=True))
    other = dropout_steps(seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(masks, other, strict=True))


def test_dropout_changes_training_but_not_evaluation() -> None:
    s = recipe(optimizer="sgd", learning_rate=0.1)
    _, plain_loss, _ = trained("jax", s)
    backend = built(replace(s, dropout=0.5))
    metrics = backend.train_epoch(ORDER)
    assert float(metrics.loss) > plain_loss + 0.01  # dropout noise raises the training loss
    first, second = backend.evaluate(), backend.evaluate()
    assert first == second  # inference: no dropout, deterministic
