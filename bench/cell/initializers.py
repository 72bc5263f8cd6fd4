"""Initial weights, drawn once on the host by the harness and handed to every backend.

Definitions follow Keras 3 (biases zero in every scheme):
- ``glorot_uniform``: U(−limit, limit), limit = √(6 / (fan_in + fan_out)).
- ``he_normal``: truncated normal, stddev = √(2 / fan_in) / 0.87962566103423978, values beyond
  ±2·stddev re-drawn (the constant makes the *truncated* distribution's stddev √(2 / fan_in)).
- ``report_normal``: the report's ``np.random.randn(fan_in, fan_out) * 0.01`` under the legacy
  ``np.random.seed(seed)``, W1 then W2 drawn from the same stream.
"""

from __future__ import annotations

import numpy as np

from scenarios.work import layer_sizes

TRUNCATION_CORRECTION = 0.87962566103423978  # stddev of N(0, 1) truncated to [−2, 2]


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def truncated_normal(rng: np.random.Generator, shape: tuple[int, int], stddev: float) -> np.ndarray:
    """N(0, stddev²) with every value outside ±2·stddev re-drawn until none is."""
    out = rng.normal(0.0, stddev, size=shape)
    bad = np.abs(out) > 2.0 * stddev
    while bad.any():
        out[bad] = rng.normal(0.0, stddev, size=int(bad.sum()))
        bad = np.abs(out) > 2.0 * stddev
    return out


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    return truncated_normal(rng, (fan_in, fan_out), np.sqrt(2.0 / fan_in) / TRUNCATION_CORRECTION)


def initial_weights(
    init: str,
    n_in: int,
    hidden: tuple[int, ...],
    n_out: int,
    *,
    seed: int,
    dtype: str = "float32",
) -> list[np.ndarray]:
    """Weights in Keras order [W1, b1, W2, b2, ...] (kernels (fan_in, fan_out)), in ``dtype``.

    Draws in float64 and casts, so float32 and float64 runs start from the same values (rounded).
    """
    sizes = layer_sizes(n_in, hidden, n_out)
    if init == "report_normal":
        legacy = np.random.RandomState(seed)
        kernels = [legacy.randn(fi, fo) * 0.01 for fi, fo in sizes]
    elif init in ("glorot_uniform", "he_normal"):
        rng = np.random.default_rng(seed)
        draw = glorot_uniform if init == "glorot_uniform" else he_normal
        kernels = [draw(rng, fi, fo) for fi, fo in sizes]
    else:
        raise ValueError(f"unknown init {init!r}")
    weights: list[np.ndarray] = []
    for kernel in kernels:
        weights += [kernel.astype(dtype), np.zeros(kernel.shape[1], dtype=dtype)]
    return weights
