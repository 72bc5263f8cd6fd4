"""The flat-buffer optimizers against Keras 3's published golden values and float64 references.

Golden values are typed in from Keras 3.15.1's own tests (keras/src/optimizers/adam_test.py,
rmsprop_test.py, sgd_test.py), with Keras' tolerances; keras itself is never imported here. The
optimizers run on every array module present (the ``xp`` fixture: NumPy, and CuPy where a CUDA
device is); the golden values and references stay host NumPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import to_numpy

from backends.xp.engine import XpMLP
from backends.xp.optimizers import SGD, Adam, RMSprop, make_optimizer

KERAS_DEFAULTS = {  # Keras 3's documented defaults; the scenarios pass these explicitly
    "learning_rate": 1e-3,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "rho": 0.9,
    "epsilon": 1e-7,
}


def run_steps(make, theta0, grads, dtype=np.float32, xp=np) -> list[np.ndarray]:
    """Apply ``make(xp, theta, grad)``'s step once per gradient on ``xp``; host copies of theta
    after each step."""
    theta = xp.asarray(np.array(theta0, dtype=dtype))
    grad = xp.zeros_like(theta)
    opt = make(xp, theta, grad)
    history = []
    for g in grads:
        grad[...] = xp.asarray(np.asarray(g, dtype=dtype))
        opt.step()
        history.append(to_numpy(theta))
    return history


# ------------------------------------------------------------------ Keras' golden values
W0 = [1.0, 2.0, 3.0, 4.0]
G0 = [1.0, 6.0, 7.0, 2.0]


def test_rmsprop_single_step_keras_golden(xp):
    # keras/src/optimizers/rmsprop_test.py::test_single_step (RMSprop(learning_rate=0.5))
    make = lambda xp, t, g: RMSprop(xp, t, g, 0.5, rho=0.9, epsilon=1e-7)  # noqa: E731
    (got,) = run_steps(make, W0, [G0], xp=xp)
    np.testing.assert_allclose(got, [-0.5811, 0.4189, 1.4189, 2.4189], rtol=1e-4, atol=1e-4)


def test_adam_single_step_keras_golden(xp):
    # keras/src/optimizers/adam_test.py::test_single_step (Adam(learning_rate=0.5))
    make = lambda xp, t, g: Adam(xp, t, g, 0.5, beta_1=0.9, beta_2=0.999, epsilon=1e-7)  # noqa: E731
    (got,) = run_steps(make, W0, [G0], xp=xp)
    np.testing.assert_allclose(got, [0.5, 1.5, 2.5, 3.5], rtol=1e-4, atol=1e-4)


def test_sgd_single_step_keras_golden(xp):
    # keras/src/optimizers/sgd_test.py::test_single_step (SGD(learning_rate=0.5))
    (got,) = run_steps(lambda xp, t, g: SGD(xp, t, g, 0.5), W0, [G0], xp=xp)
    np.testing.assert_allclose(got, [0.5, -1.0, -0.5, 3.0], rtol=1e-4, atol=1e-4)


# test_correctness_with_golden: x = ones(10); one step with gradient 0.01 everywhere, then
# steps with gradient arange(0.1, 1.1, 0.1); x is compared with golden[i] before step i + 1.
FIRST_GRAD = np.full(10, 0.01)
GRADS = np.arange(0.1, 1.1, 0.1)


def test_adam_correctness_with_keras_golden(xp):
    # keras/src/optimizers/adam_test.py::test_correctness_with_golden, Adam(amsgrad=True) with
    # default hyperparameters. AMSGrad divides by max(v_hat, v); for this gradient sequence v
    # only grows, so that max is v and plain Adam must follow the same path (asserted below).
    golden = np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))
    theta = xp.ones(10, dtype=np.float32)
    grad = xp.zeros_like(theta)
    opt = make_optimizer(xp, "adam", theta, grad, KERAS_DEFAULTS)
    grad[...] = xp.asarray(FIRST_GRAD)
    opt.step()
    for i in range(5):
        np.testing.assert_allclose(to_numpy(theta), golden[i], rtol=5e-4, atol=5e-4)  # Keras'
        v_before = to_numpy(opt.v)
        grad[...] = xp.asarray(GRADS)
        opt.step()
        assert (to_numpy(opt.v) >= v_before).all()  # so AMSGrad's max(v_hat, v) is v
    # The first step, where ε is comparable to √v, is also within the golden value's own
    # rounding (0.999 ± 5e-5); with ε inside the sqrt it would land at ≈ 0.99929.
    (first,) = run_steps(Adam, np.ones(10), [FIRST_GRAD], xp=xp)
    np.testing.assert_allclose(first, 0.999, atol=5e-5)


def test_sgd_correctness_with_keras_golden(xp):
    # keras/src/optimizers/sgd_test.py::test_correctness_with_golden, SGD(nesterov=True) with the
    # default learning rate 0.01 and momentum 0 (so Nesterov changes nothing: plain SGD).
    golden = np.array(
        [
            [0.9999] * 10,
            [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
            [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
            [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
            [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599],
        ]
    )
    history = run_steps(
        lambda xp, t, g: SGD(xp, t, g, 0.01), np.ones(10), [FIRST_GRAD, *[GRADS] * 4], xp=xp
    )
    np.testing.assert_allclose(np.array(history), golden, rtol=5e-4, atol=5e-4)


# RMSprop's test_correctness_with_golden uses RMSprop(centered=True), which this project does
# not implement (the scenarios use Keras' default centered=False), so it has no counterpart here.


# ------------------------------------------------------------ float64 plain references
def ref_adam(theta, grads, lr, beta_1, beta_2, epsilon):
    """Keras' Adam as written in its docs, in float64: ε outside the sqrt, bias correction
    folded into the step size α_t."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    history = []
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        theta = theta - alpha * m / (np.sqrt(v) + epsilon)
        history.append(theta)
    return history


def ref_rmsprop(theta, grads, lr, rho, epsilon):
    """Keras' RMSprop (no momentum, not centered) in float64: ε inside the sqrt."""
    v = np.zeros_like(theta)
    history = []
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        theta = theta - lr * g / np.sqrt(v + epsilon)
        history.append(theta)
    return history


def random_gradients(n_steps: int, size: int = 12, seed: int = 0) -> np.ndarray:
    """Signed gradients whose magnitudes span 1e-9 .. 1e1, so ε matters for some entries."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-9, 1, size)
    return rng.normal(size=(n_steps, size)) * scale


CHECK_STEPS = (1, 2, 3, 10, 100, 1000)
CUSTOM = {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "rho": 0.7, "epsilon": 1e-6}


@pytest.mark.parametrize("hyper", [KERAS_DEFAULTS, CUSTOM], ids=["keras-defaults", "custom"])
@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_matches_float64_reference(name, hyper, xp):
    grads = random_gradients(max(CHECK_STEPS))
    theta0 = np.linspace(-1.0, 1.0, grads.shape[1])
    got = run_steps(
        lambda xp, t, g: make_optimizer(xp, name, t, g, hyper), theta0, grads, np.float64, xp
    )
    lr = hyper["learning_rate"]
    if name == "adam":
        want = ref_adam(theta0, grads, lr, hyper["beta_1"], hyper["beta_2"], hyper["epsilon"])
    elif name == "rmsprop":
        want = ref_rmsprop(theta0, grads, lr, hyper["rho"], hyper["epsilon"])
    else:
        want = list(theta0 - lr * np.cumsum(grads, axis=0))
    # Compare the displacement θ_t − θ0, so an error cannot hide behind θ0; atol allows for
    # round-off in θ itself (|θ| ≤ 1, a few hundred ulps over 1000 steps).
    for t in CHECK_STEPS:
        np.testing.assert_allclose(
            got[t - 1] - theta0, want[t - 1] - theta0, rtol=1e-9, atol=1e-13, err_msg=f"t={t}"
        )


def test_adam_alpha_is_keras_bias_corrected_step_size():
    opt = Adam(np, np.zeros(1), np.zeros(1), 0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7)
    for t in (1, 2, 10, 1000):
        assert opt.alpha(t) == pytest.approx(
            0.01 * math.sqrt(1 - 0.99**t) / (1 - 0.8**t), rel=1e-15
        )


def test_make_optimizer_rejects_unknown_name():
    with pytest.raises(ValueError, match="adagrad"):
        make_optimizer(np, "adagrad", np.zeros(2), np.zeros(2), KERAS_DEFAULTS)


# ------------------------------------------------------------------- dtype and in-place
@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_float32_buffers_stay_float32_and_are_updated_in_place(name, xp):
    grads = random_gradients(50, seed=1).astype(np.float32)
    theta0 = np.linspace(-1.0, 1.0, grads.shape[1], dtype=np.float32)
    theta = xp.asarray(theta0.copy())
    grad = xp.zeros_like(theta)
    opt = make_optimizer(xp, name, theta, grad, KERAS_DEFAULTS)
    for g in grads:
        grad[...] = xp.asarray(g)
        opt.step()
    assert opt.theta is theta and theta.dtype == np.float32
    state = [getattr(opt, a) for a in ("m", "v", "_tmp", "_tmp2") if hasattr(opt, a)]
    assert all(s.dtype == np.float32 for s in state)
    # the caller's buffer moved: updates are in place
    assert not np.array_equal(to_numpy(theta), theta0)
    # and float32 arithmetic tracks the float64 reference (on NumPy) to float32 accuracy
    want = run_steps(
        lambda xp, t, g: make_optimizer(xp, name, t, g, KERAS_DEFAULTS), theta0, grads, np.float64
    )[-1]
    np.testing.assert_allclose(to_numpy(theta), want, rtol=1e-5, atol=1e-6)


def tiny_weights(rng) -> list[np.ndarray]:
    return [
        rng.normal(size=(6, 5)),
        rng.normal(size=5),
        rng.normal(size=(5, 3)),
        rng.normal(size=3),
    ]


def test_engine_step_updates_every_layer_view(xp):
    """SGD through the engine: each layer's W and b (views into the flat buffer) become
    W − lr·dW; also checks the flat gradient reaches the optimizer."""
    rng = np.random.default_rng(2)
    weights = tiny_weights(rng)
    engine = XpMLP(xp, weights, dtype="float64", optimizer="sgd", hyper={"learning_rate": 0.5})
    x, y = rng.normal(size=(4, 6)), np.array([0, 1, 2, 1])
    engine.loss_and_grad(xp.asarray(x), xp.asarray(y))
    grads = [to_numpy(g) for g in engine.grads]
    engine.optimizer.step()
    for got, w, g in zip(engine.get_weights(), weights, grads, strict=True):
        assert np.abs(g).max() > 0
        np.testing.assert_allclose(got, w - 0.5 * g, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_engine_training_keeps_float32_everywhere(name, xp):
    rng = np.random.default_rng(3)
    weights = [w.astype(np.float32) for w in tiny_weights(rng)]
    engine = XpMLP(xp, weights, dtype="float32", optimizer=name, hyper=KERAS_DEFAULTS)
    x = rng.normal(size=(10, 6)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    engine.train_epoch(xp.asarray(x), xp.asarray(y), xp.arange(10), batch_size=4)
    buffers = [engine.theta, engine.grad, *engine.params, *engine.grads]
    buffers += [getattr(engine.optimizer, a) for a in ("m", "v") if hasattr(engine.optimizer, a)]
    assert all(b.dtype == np.float32 for b in buffers)
    assert all(xp.shares_memory(p, engine.theta) for p in engine.params)
    assert all(w.dtype == np.float32 for w in engine.get_weights())
    assert not np.array_equal(engine.get_weights()[0], weights[0])


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_size_fed_as_a_device_value_gives_the_same_bits(xp, name, dtype):
    """What a replayed CUDA graph does: the host takes Adam's α′ from ``advance()`` and the step
    reads it from a 1-element array of the parameters' dtype. A Python float meeting a float32
    array is cast to float32 first (a weak scalar), so both forms must give identical bits."""
    rng = np.random.default_rng(3)
    theta0 = rng.normal(size=257).astype(dtype)
    grads = [rng.normal(scale=s, size=257).astype(dtype) for s in (1.0, 1e-3, 10.0, 1e-6)]
    runs = []
    for fed in (False, True):
        theta = xp.asarray(theta0.copy())
        grad = xp.zeros_like(theta)
        opt = make_optimizer(xp, name, theta, grad, KERAS_DEFAULTS)
        scale = xp.zeros(1, dtype=dtype)
        for g in grads:
            grad[...] = xp.asarray(g)
            if fed:
                value = opt.advance()
                if value is not None:
                    scale[...] = value
                opt.step(scale)
            else:
                opt.step()
        runs.append(to_numpy(theta))
    np.testing.assert_array_equal(runs[1], runs[0])
