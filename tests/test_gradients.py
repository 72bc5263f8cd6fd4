"""The engine's loss and gradient against independent float64 oracles, on every array module
present (the ``xp`` fixture: NumPy, and CuPy where a CUDA device is).

Oracles: a plain forward pass in float64 NumPy (tests/reference.py: stable log-sum-exp
cross-entropy, no code shared with the engine) and central finite differences of that forward pass
over every parameter; the engine's results are brought to the host to meet them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference

from backends.xp.engine import XpMLP

N_FEATURES, N_CLASSES, BATCH = 20, 10, 8
FD_STEP = 1e-5  # central differences in float64: truncation ~1e-10, round-off ~1e-11
KINK_MARGIN = 1e-4  # no hidden pre-activation this close to ReLU's kink at 0


# ---------------------------------------------------------------- reference (float64, plain)
ref_preactivations = reference.preactivations
ref_loss = reference.loss
to_numpy = reference.to_numpy


def finite_difference_grad(loss, params: list[np.ndarray]) -> list[np.ndarray]:
    """Central differences of ``loss(params)`` with respect to every entry of every array."""
    grads = []
    for k, p in enumerate(params):
        g = np.empty_like(p)
        for i in np.ndindex(p.shape):
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[k][i] += FD_STEP
            minus[k][i] -= FD_STEP
            g[i] = (loss(plus) - loss(minus)) / (2 * FD_STEP)
        grads.append(g)
    return grads


def assert_grads_close(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-6):
    """Entry-wise relative error < rtol; an absolute floor of 1e-9 only for entries that are ~0
    in both (dead units), far below any non-trivial gradient entry here (≳ 1e-4)."""
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"array {k}: shape {g.shape} != {w.shape}"
        err = np.abs(g - w) / np.maximum(np.maximum(np.abs(g), np.abs(w)), 1e-9 / rtol)
        assert err.max() < rtol, f"array {k}: max relative error {err.max():.3g}"


# ------------------------------------------------------------------------------- helpers
def random_problem(hidden: tuple[int, ...], seed: int):
    """Weights [W1, b1, ...], inputs and labels with every hidden pre-activation at least
    KINK_MARGIN away from 0 (re-drawn until so), and every hidden unit active for some samples
    and inactive for others (so every gradient entry is exercised and ReLU masks something)."""
    rng = np.random.default_rng(seed)
    widths = [N_FEATURES, *hidden, N_CLASSES]
    for _ in range(100):
        params = []
        for fan_in, fan_out in itertools.pairwise(widths):
            params.append(rng.normal(0.0, 1.0 / np.sqrt(fan_in), (fan_in, fan_out)))
            params.append(rng.normal(0.0, 0.3, fan_out))
        x = rng.normal(0.0, 1.0, (BATCH, N_FEATURES))
        y = rng.integers(0, N_CLASSES, BATCH)
        hidden_z = ref_preactivations(params, x)[:-1]
        ok = [np.abs(z).min() > KINK_MARGIN and _each_unit_both_signs(z) for z in hidden_z]
        if all(ok):
            return params, x, y
    raise AssertionError("could not draw a kink-free problem")


def _each_unit_both_signs(z: np.ndarray) -> bool:
    return bool((z > 0).any(axis=0).all() and (z < 0).any(axis=0).all())


def make_engine(xp, params, dtype: str = "float64") -> XpMLP:
    return XpMLP(xp, params, dtype=dtype, optimizer="sgd", hyper={"learning_rate": 0.1})


def engine_grads(engine: XpMLP, x, y, training: bool = False) -> tuple[float, list[np.ndarray]]:
    """The engine's loss and host copies of its gradient for host (x, y), uploaded first."""
    loss = engine.loss_and_grad(engine.xp.asarray(x), engine.xp.asarray(y), training=training)
    return loss, [to_numpy(g) for g in engine.grads]


# --------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("hidden", [(7,), (7, 5)], ids=["one-hidden", "two-hidden"])
def test_gradient_matches_finite_differences(hidden, xp):
    params, x, y = random_problem(hidden, seed=len(hidden))
    loss, grads = engine_grads(make_engine(xp, params), x, y)
    fd = finite_difference_grad(lambda p: ref_loss(p, x, y), params)
    assert len(grads) == len(params) == 2 * (len(hidden) + 1)
    assert_grads_close(grads, fd)
    assert loss == pytest.approx(ref_loss(params, x, y), rel=1e-12)


def test_loss_and_grad_leaves_parameters_unchanged(xp):
    params, x, y = random_problem((7,), seed=3)
    engine = make_engine(xp, params)
    engine_grads(engine, x, y)
    for got, want in zip(engine.get_weights(), params, strict=True):
        np.testing.assert_array_equal(got, want)


def test_flat_gradient_buffer_is_the_per_layer_gradients(xp):
    params, x, y = random_problem((7, 5), seed=4)
    engine = make_engine(xp, params)
    _, grads = engine_grads(engine, x, y)
    np.testing.assert_array_equal(to_numpy(engine.grad), np.concatenate([g.ravel() for g in grads]))


@pytest.mark.parametrize("hidden", [(7,), (7, 5)], ids=["one-hidden", "two-hidden"])
def test_float32_gradient_agrees_with_float64(hidden, xp):
    params, x, y = random_problem(hidden, seed=5)
    loss64, g64 = engine_grads(make_engine(xp, params), x, y)
    engine32 = make_engine(xp, params, dtype="float32")
    loss32, g32 = engine_grads(engine32, x.astype(np.float32), y)
    assert all(g.dtype == np.float32 for g in g32)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_batch_gradient_is_the_mean_of_per_sample_gradients(xp):
    params, x, y = random_problem((7, 5), seed=6)
    engine = make_engine(xp, params)
    batch_loss, batch_grads = engine_grads(engine, x, y)
    per_sample = [engine_grads(engine, x[i : i + 1], y[i : i + 1]) for i in range(BATCH)]
    assert batch_loss == pytest.approx(np.mean([loss for loss, _ in per_sample]), rel=1e-12)
    for k, g in enumerate(batch_grads):
        mean = np.mean([grads[k] for _, grads in per_sample], axis=0)
        np.testing.assert_allclose(g, mean, rtol=1e-10, atol=1e-15)


def huge_logit_problem():
    """The one-hidden problem with the output layer scaled so the largest logit is 1000."""
    params, x, y = random_problem((7,), seed=7)
    top = ref_preactivations(params, x)[-1].max()
    assert top > 0
    scale = 1e3 / top
    params[2], params[3] = params[2] * scale, params[3] * scale
    return params, x, y


def test_huge_logits_loss_is_finite_and_correct_float64(xp):
    params, x, y = huge_logit_problem()
    logits = ref_preactivations(params, x)[-1]
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(logits)).any(), "the naive softmax must overflow here"
    want = ref_loss(params, x, y)
    assert np.isfinite(want) and want > 10.0  # some samples are confidently wrong
    loss, grads = engine_grads(make_engine(xp, params), x, y)
    assert loss == pytest.approx(want, rel=1e-12)
    assert all(np.isfinite(g).all() for g in grads)
    # dLoss/db2 = mean over the batch of softmax − onehot, with the stable softmax
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(BATCH), y] -= 1.0
    np.testing.assert_allclose(grads[3], p.mean(axis=0), rtol=1e-10, atol=1e-15)


def test_huge_logits_loss_is_finite_and_correct_float32(xp):
    params, x, y = huge_logit_problem()
    p32 = [p.astype(np.float32) for p in params]
    want = ref_loss([p.astype(np.float64) for p in p32], x.astype(np.float32).astype(np.float64), y)
    loss, grads = engine_grads(make_engine(xp, p32, dtype="float32"), x.astype(np.float32), y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(want, rel=1e-5)
    assert all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("shift", [-1e3, 1e3])
def test_loss_is_invariant_to_a_common_logit_shift(shift, xp):
    """softmax(z + c) = softmax(z): a bias shift of ±1000 (exp underflows / overflows) changes
    neither the loss nor the gradient."""
    params, x, y = random_problem((7,), seed=8)
    loss, grads = engine_grads(make_engine(xp, params), x, y)
    shifted = [p.copy() for p in params]
    shifted[3] += shift
    loss_s, grads_s = engine_grads(make_engine(xp, shifted), x, y)
    assert loss_s == pytest.approx(loss, rel=1e-9)
    assert_grads_close(grads_s, grads, rtol=1e-9)


def test_evaluate_matches_reference_loss_and_accuracy_across_chunks(xp):
    params, x, y = random_problem((7, 5), seed=9)
    y = y.copy()
    logits = ref_preactivations(params, x)[-1]
    y[:4] = logits[:4].argmax(axis=1)  # at least half right, so accuracy is not trivially 0
    engine = make_engine(xp, params)
    loss, accuracy = engine.evaluate(xp.asarray(x), xp.asarray(y), chunk=3)  # chunks of 3, 3, 2
    assert loss == pytest.approx(ref_loss(params, x, y), rel=1e-12)
    assert accuracy == np.mean(logits.argmax(axis=1) == y)
