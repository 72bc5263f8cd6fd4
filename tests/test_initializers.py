"""Initial weights against distribution facts and the report's literal recipe.

Statistical bounds are ~5 standard errors of the statistic for a 784×128 draw (100,352 values),
so a correct initializer fails them with probability ≲ 1e-6 while a wrong scale or shape (e.g. a
missing truncation correction, 12 % off) fails by tens of standard errors. Seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.cell.initializers import initial_weights

FAN_IN, FAN_OUT = 784, 128
INITS = ("glorot_uniform", "he_normal", "report_normal")


def first_kernel(init: str, seed: int = 0, n_in: int = FAN_IN, hidden: int = FAN_OUT):
    return initial_weights(init, n_in, (hidden,), 10, seed=seed, dtype="float64")[0]


# ---------------------------------------------------------------------------- Glorot
@pytest.mark.parametrize("seed", [0, 1])
def test_glorot_uniform_matches_uniform_distribution(seed):
    w = first_kernel("glorot_uniform", seed)
    limit = math.sqrt(6.0 / (FAN_IN + FAN_OUT))
    n = w.size
    assert w.shape == (FAN_IN, FAN_OUT)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit  # fills the whole interval, not a narrower one
    # U(−L, L): mean 0, variance L²/3, Var(X²) = L⁴/5 − L⁴/9 = 4L⁴/45
    assert abs(w.mean()) < 5 * limit / math.sqrt(3 * n)
    assert abs(w.var() - limit**2 / 3) < 5 * math.sqrt(4 / 45) * limit**2 / math.sqrt(n)
    # and flat: each tenth of the interval holds 10 % of the values (binomial bound)
    counts, _ = np.histogram(w, bins=10, range=(-limit, limit))
    assert np.abs(counts / n - 0.1).max() < 5 * math.sqrt(0.09 / n)


def test_glorot_uniform_uses_each_layers_own_fans():
    weights = initial_weights("glorot_uniform", 784, (64, 32), 10, seed=3, dtype="float64")
    kernels = weights[0::2]
    assert [k.shape for k in kernels] == [(784, 64), (64, 32), (32, 10)]
    for k in kernels:
        limit = math.sqrt(6.0 / sum(k.shape))
        assert np.abs(k).max() <= limit
        assert np.abs(k).max() > 0.9 * limit


# --------------------------------------------------------------------------- He normal
HE_STD = math.sqrt(2.0 / FAN_IN)  # the stddev the truncated distribution must have
HE_STD_RAW = HE_STD / 0.87962566103423978  # Keras' pre-truncation stddev


@pytest.mark.parametrize("seed", [0, 1])
def test_he_normal_is_truncated_at_two_raw_stddevs_with_corrected_std(seed):
    w = first_kernel("he_normal", seed)
    n = w.size
    assert np.abs(w).max() <= 2 * HE_STD_RAW
    assert np.abs(w).max() > 1.99 * HE_STD_RAW  # truncated at 2σ, not tighter (~110 expected)
    assert abs(w.mean()) < 5 * HE_STD / math.sqrt(n)
    assert w.std() == pytest.approx(HE_STD, rel=0.01)  # without the correction: 12 % low
    # N(0, σ²) truncated to ±2σ keeps (Φ(1) − Φ(−1)) / (Φ(2) − Φ(−2)) of its mass within ±σ
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    p_within = (phi(1) - phi(-1)) / (phi(2) - phi(-2))  # 0.7152
    frac = np.mean(np.abs(w) <= HE_STD_RAW)
    assert abs(frac - p_within) < 5 * math.sqrt(p_within * (1 - p_within) / n)


def test_he_normal_std_follows_fan_in():
    w = first_kernel("he_normal", seed=4, n_in=784, hidden=512)  # second layer: fan_in 512
    k2 = initial_weights("he_normal", 784, (512,), 10, seed=4, dtype="float64")[2]
    assert w.std() == pytest.approx(math.sqrt(2 / 784), rel=0.01)
    assert np.abs(k2).max() <= 2 * math.sqrt(2 / 512) / 0.87962566103423978
    assert k2.std() == pytest.approx(math.sqrt(2 / 512), rel=0.05)  # 5,120 values


# ------------------------------------------------------------------------ report_normal
def test_report_normal_is_the_reports_literal_recipe():
    saved = np.random.get_state()
    try:
        np.random.seed(42)
        w1 = np.random.randn(784, 128) * 0.01
        w2 = np.random.randn(128, 10) * 0.01
    finally:
        np.random.set_state(saved)
    got = initial_weights("report_normal", 784, (128,), 10, seed=42, dtype="float64")
    np.testing.assert_array_equal(got[0], w1)
    np.testing.assert_array_equal(got[2], w2)
    got32 = initial_weights("report_normal", 784, (128,), 10, seed=42, dtype="float32")
    np.testing.assert_array_equal(got32[0], w1.astype(np.float32))
    np.testing.assert_array_equal(got32[2], w2.astype(np.float32))


def test_report_normal_leaves_global_numpy_random_state_alone():
    saved = np.random.get_state()
    try:
        np.random.seed(7)
        before = np.random.get_state()[1].copy()
        initial_weights("report_normal", 784, (128,), 10, seed=42)
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(saved)


# ------------------------------------------------------------------------ every scheme
@pytest.mark.parametrize("init", INITS)
def test_shapes_keras_order_and_zero_biases(init):
    weights = initial_weights(init, 784, (128,), 10, seed=0)
    assert [w.shape for w in weights] == [(784, 128), (128,), (128, 10), (10,)]
    assert not weights[1].any() and not weights[3].any()
    assert weights[0].any() and weights[2].any()


@pytest.mark.parametrize("init", INITS)
def test_same_seed_identical_different_seed_different(init):
    a = initial_weights(init, 784, (128,), 10, seed=5)
    b = initial_weights(init, 784, (128,), 10, seed=5)
    c = initial_weights(init, 784, (128,), 10, seed=6)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_float32_is_float64_rounded(init, dtype):
    weights = initial_weights(init, 784, (128,), 10, seed=9, dtype=dtype)
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    ref = initial_weights(init, 784, (128,), 10, seed=9, dtype="float64")
    for w, r in zip(weights, ref, strict=True):
        np.testing.assert_array_equal(w, r.astype(dtype))


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="lecun"):
        initial_weights("lecun_normal", 784, (128,), 10, seed=0)
