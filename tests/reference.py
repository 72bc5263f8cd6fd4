"""The tests' independent oracle: the MLP's forward pass and loss in plain float64 NumPy, written
as the equations read (no buffers, no tricks), shared by every test that needs it; and
``to_numpy``, which brings an engine's arrays (NumPy or CuPy) to the host to meet it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def preactivations(
    params: Sequence[np.ndarray], x: np.ndarray, masks: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """z = a·W + b of every Dense layer (hidden ones first, logits last) for params
    [W1, b1, W2, b2, ...]; a hidden layer's output is ReLU(z), times its dropout mask (already
    scaled by 1/keep) when ``masks`` are given."""
    zs, a = [], np.asarray(x, dtype=np.float64)
    n_layers = len(params) // 2
    for layer in range(n_layers):
        z = a @ np.asarray(params[2 * layer], np.float64) + np.asarray(params[2 * layer + 1])
        zs.append(z)
        if layer < n_layers - 1:
            a = np.maximum(z, 0.0) * (1.0 if masks is None else masks[layer])
    return zs


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean over rows of −log softmax(logits)[true class], via a max-shifted log-sum-exp."""
    m = logits.max(axis=1)
    log_sum_exp = m + np.log(np.exp(logits - m[:, None]).sum(axis=1))
    return float(np.mean(log_sum_exp - logits[np.arange(len(y)), y]))


def loss(
    params: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    masks: Sequence[np.ndarray] | None = None,
) -> float:
    """The training objective: mean categorical cross-entropy of the softmax of the logits."""
    return cross_entropy(preactivations(params, x, masks)[-1], y)


def accuracy(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose largest logit is the true class."""
    return float(np.mean(preactivations(params, x)[-1].argmax(axis=1) == y))


def to_numpy(a) -> np.ndarray:
    """A host (NumPy) copy of ``a``: a NumPy array or scalar, or a CuPy array (``.get()``)."""
    if isinstance(a, np.ndarray | np.generic | float | int):
        return np.array(a)
    return a.get()
