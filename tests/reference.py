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


def gradients(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """∂ loss / ∂ params by the chain rule as written: softmax − one-hot over the batch size at
    the logits, back through each Dense layer and ReLU (no dropout), in float64."""
    p = [np.asarray(w, np.float64) for w in params]
    zs = preactivations(p, x)
    acts = [np.asarray(x, np.float64)] + [np.maximum(z, 0.0) for z in zs[:-1]]
    e = np.exp(zs[-1] - zs[-1].max(axis=1, keepdims=True))
    delta = e / e.sum(axis=1, keepdims=True)
    delta[np.arange(len(y)), y] -= 1.0
    delta /= len(y)
    grads: list[np.ndarray] = []
    for layer in range(len(p) // 2 - 1, -1, -1):
        grads[:0] = [acts[layer].T @ delta, delta.sum(axis=0)]
        if layer:
            delta = (delta @ p[2 * layer].T) * (zs[layer - 1] > 0)
    return grads


def torch_optim_steps(
    params: Sequence[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    batches: Sequence[np.ndarray],
    optimizer: str,
    lr: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    rho: float = 0.9,
    eps: float = 1e-7,
) -> list[tuple[list[np.ndarray], float]]:
    """Batches of rows trained in float64 with torch.optim's documented update (PyTorch's
    algorithm boxes): SGD θ −= lr·g; Adam θ −= lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β1ᵗ),
    v̂ = v/(1 − β2ᵗ); RMSprop v = αv + (1 − α)g², θ −= lr·g/(√v + ε), α = ``rho``.
    Per batch: (the weights after its update, its loss before the update)."""
    p = [np.array(w, np.float64) for w in params]
    m, v = [np.zeros_like(w) for w in p], [np.zeros_like(w) for w in p]
    out = []
    for t, idx in enumerate(batches, start=1):
        batch_loss = loss(p, x[idx], y[idx])
        for i, g in enumerate(gradients(p, x[idx], y[idx])):
            if optimizer == "sgd":
                p[i] -= lr * g
            elif optimizer == "adam":
                m[i] = beta_1 * m[i] + (1 - beta_1) * g
                v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
                m_hat, v_hat = m[i] / (1 - beta_1**t), v[i] / (1 - beta_2**t)
                p[i] -= lr * m_hat / (np.sqrt(v_hat) + eps)
            else:
                v[i] = rho * v[i] + (1 - rho) * g * g
                p[i] -= lr * g / (np.sqrt(v[i]) + eps)
        out.append(([w.copy() for w in p], batch_loss))
    return out
