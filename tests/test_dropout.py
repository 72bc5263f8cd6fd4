"""Inverted dropout in the engine: rate, scaling, inference mode and its gradient.

The hidden activations are read from the engine's per-batch workspace (``acts[l]`` is hidden
layer l's output after ReLU and dropout, as documented in backends/xp/engine.py) and compared with
a plain float64 NumPy forward pass. The engine runs on every array module present (the ``xp``
fixture: NumPy, and CuPy where a CUDA device is; each draws its masks from its own generator, so
the checks are of properties every mask stream must have).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import reference
from reference import to_numpy

from backends.xp.engine import XpMLP

RATE = 0.2


def make_engine(xp, weights, dropout: float = RATE, seed: int = 0, dtype: str = "float64") -> XpMLP:
    return XpMLP(
        xp,
        weights,
        dtype=dtype,
        optimizer="sgd",
        hyper={"learning_rate": 0.1},
        dropout=dropout,
        dropout_seed=seed,
    )


def hidden_after_training_forward(engine: XpMLP, x, y, layer: int = 1) -> np.ndarray:
    """Host copy of hidden layer ``layer`` after one training forward pass over host (x, y)."""
    engine.loss_and_grad(engine.xp.asarray(x), engine.xp.asarray(y), training=True)
    return engine.last_batch(x.shape[0])[0][layer]


def evaluate(engine: XpMLP, x, y, **kw) -> tuple[float, float]:
    return engine.evaluate(engine.xp.asarray(x), engine.xp.asarray(y), **kw)


def loss_and_grad(engine: XpMLP, x, y, training: bool) -> float:
    return engine.loss_and_grad(engine.xp.asarray(x), engine.xp.asarray(y), training=training)


@pytest.fixture(scope="module")
def all_active():
    """Weights and inputs for which every hidden ReLU is strictly positive, so a zero after the
    training forward pass can only be a dropped unit. 4096 × 64 = 262,144 hidden units."""
    rng = np.random.default_rng(0)
    n_in, hidden, n_out, batch = 16, 64, 10, 4096
    weights = [
        rng.uniform(0.1, 1.0, (n_in, hidden)),
        rng.uniform(0.1, 1.0, hidden),
        rng.normal(size=(hidden, n_out)),
        np.zeros(n_out),
    ]
    x = rng.uniform(0.0, 1.0, (batch, n_in))
    y = rng.integers(0, n_out, batch)
    h0 = np.maximum(x @ weights[0] + weights[1], 0.0)
    assert (h0 > 0.05).all()
    return weights, x, y, h0


def test_fraction_dropped_is_the_rate(all_active, xp):
    weights, x, y, _ = all_active
    h = hidden_after_training_forward(make_engine(xp, weights), x, y)
    n = h.size
    assert abs(np.mean(h == 0) - RATE) < 5 * math.sqrt(RATE * (1 - RATE) / n)  # ±0.0039


def test_kept_units_are_scaled_by_exactly_one_over_keep(all_active, xp):
    weights, x, y, h0 = all_active
    h = hidden_after_training_forward(make_engine(xp, weights), x, y)
    kept = h != 0
    np.testing.assert_allclose(h[kept] / h0[kept], 1 / (1 - RATE), rtol=1e-12)


def test_expected_activation_is_preserved(all_active, xp):
    """E[mask·h0/(1−rate)] = h0: averaged over the batch, each unit's mean is unchanged (to the
    sampling error of 4096 Bernoulli(0.8) draws: relative sd √(0.2/0.8)/64 ≈ 0.8 %)."""
    weights, x, y, h0 = all_active
    h = hidden_after_training_forward(make_engine(xp, weights), x, y)
    ratio = h.mean(axis=0) / h0.mean(axis=0)  # (hidden,)
    assert np.abs(ratio - 1).max() < 0.04  # ~5 sd for the extreme of 64 units
    assert abs(h.mean() / h0.mean() - 1) < 5 * 0.5 / math.sqrt(h.size)  # all units pooled


def test_masks_are_fresh_per_step_and_per_sample(all_active, xp):
    weights, x, y, _ = all_active
    engine = make_engine(xp, weights)
    first = hidden_after_training_forward(engine, x, y) == 0
    second = hidden_after_training_forward(engine, x, y) == 0
    assert not np.array_equal(first, second)
    assert not (first == first[0]).all()  # not one mask shared by every sample
    assert not (first == first[:, :1]).all()  # nor one decision per sample


def test_dropout_seed_determines_the_mask(all_active, xp):
    weights, x, y, _ = all_active
    a = hidden_after_training_forward(make_engine(xp, weights, seed=1), x, y)
    b = hidden_after_training_forward(make_engine(xp, weights, seed=1), x, y)
    c = hidden_after_training_forward(make_engine(xp, weights, seed=2), x, y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a == 0, c == 0)


def test_training_forward_is_unchanged_without_dropout(all_active, xp):
    weights, x, y, h0 = all_active
    h = hidden_after_training_forward(make_engine(xp, weights, dropout=0.0), x, y)
    np.testing.assert_allclose(h, h0, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_applies_no_dropout(all_active, dtype, xp):
    weights, x, y, _ = all_active
    x, y = x[:1000].astype(dtype), y[:1000]
    with_dropout = make_engine(xp, weights, dtype=dtype)
    plain = make_engine(xp, weights, dropout=0.0, dtype=dtype)
    assert evaluate(with_dropout, x, y, chunk=300) == evaluate(plain, x, y, chunk=300)
    hidden_after_training_forward(with_dropout, x, y)  # a training step came before
    assert evaluate(with_dropout, x, y) == evaluate(plain, x, y)
    loss_d = loss_and_grad(with_dropout, x, y, training=False)
    assert loss_d == loss_and_grad(plain, x, y, training=False)


def test_inference_gradient_applies_no_dropout(all_active, xp):
    weights, x, y, _ = all_active
    with_dropout, plain = make_engine(xp, weights), make_engine(xp, weights, dropout=0.0)
    hidden_after_training_forward(with_dropout, x, y)  # leaves a mask in the workspace
    loss_and_grad(with_dropout, x, y, training=False)
    loss_and_grad(plain, x, y, training=False)
    np.testing.assert_array_equal(to_numpy(with_dropout.grad), to_numpy(plain.grad))


# ----------------------------------------------------------------------------- gradient
N_IN, N_OUT, BATCH, FD_STEP = 12, 6, 16, 1e-5


ref_loss_with_masks = reference.loss  # (params, x, y, masks): float64, masks scaled by 1/keep


def random_problem(hidden: tuple[int, ...], seed: int):
    """Random weights [W1, b1, ...], inputs and labels (kinks are checked once masks exist)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise([N_IN, *hidden, N_OUT]):
        params += [rng.normal(0, 1 / math.sqrt(fan_in), (fan_in, fan_out))]
        params += [rng.normal(0, 0.3, fan_out)]
    return params, rng.normal(size=(BATCH, N_IN)), rng.integers(0, N_OUT, BATCH)


def min_abs_preactivation(params, x, masks) -> float:
    """The hidden pre-activation closest to ReLU's kink."""
    return min(np.abs(z).min() for z in reference.preactivations(params, x, masks)[:-1])


@pytest.mark.parametrize("hidden", [(9,), (9, 7)], ids=["one-hidden", "two-hidden"])
def test_gradient_with_dropout_matches_finite_differences(hidden, xp):
    """Two oracles for the gradient of a training step:

    1. the masks the engine stored are read back and the loss of an independent float64 forward
       pass with those masks is differentiated numerically;
    2. black-box: an engine's first training forward draws its masks from ``dropout_seed``
       alone, so ``θ ↦ fresh engine(θ, seed).loss_and_grad(training=True)`` is a deterministic
       function of θ; its central differences must match the gradient too.
    """
    for attempt in range(20):  # re-draw until no hidden pre-activation is within 1e-4 of 0
        params, x, y = random_problem(hidden, seed=100 * len(hidden) + attempt)
        engine = make_engine(xp, params, seed=attempt)
        loss = loss_and_grad(engine, x, y, training=True)
        grads = [to_numpy(g) for g in engine.grads]
        masks = engine.last_batch(BATCH)[1]
        if min_abs_preactivation(params, x, masks) > 1e-4:
            break
    else:
        raise AssertionError("no kink-free problem found")
    scale = 1 / (1 - RATE)
    assert all(np.isin(m, [0.0, scale]).all() for m in masks)
    assert all(0 < np.mean(m == 0) < 0.5 for m in masks)  # some units dropped, most kept
    assert loss == pytest.approx(ref_loss_with_masks(params, x, y, masks), rel=1e-12)

    def engine_loss(p):
        return loss_and_grad(make_engine(xp, p, seed=attempt), x, y, training=True)

    for loss_fn in (lambda p: ref_loss_with_masks(p, x, y, masks), engine_loss):
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            fd = np.empty_like(p)
            for i in np.ndindex(p.shape):
                plus, minus = [q.copy() for q in params], [q.copy() for q in params]
                plus[k][i] += FD_STEP
                minus[k][i] -= FD_STEP
                fd[i] = (loss_fn(plus) - loss_fn(minus)) / (2 * FD_STEP)
            err = np.abs(g - fd) / np.maximum(np.maximum(np.abs(g), np.abs(fd)), 1e-3)
            assert err.max() < 1e-6, f"array {k}: max relative error {err.max():.3g}"
