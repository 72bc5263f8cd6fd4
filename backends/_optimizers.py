"""SGD, Adam and RMSprop on flat buffers, in Keras 3's exact formulas and operation order.

Each optimizer updates ``theta`` in place from ``grad`` (both 1-D arrays of the same dtype, all
layers' parameters end to end) with whole-buffer passes written with ``out=``. Hyperparameters
arrive explicitly from the scenario; the defaults below are Keras' only for documentation.

    Adam    m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
            α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ);  θ ← θ − (m·α)/(√v + ε)          (ε outside the sqrt)
    RMSprop v ← ρv + (1 − ρ)g²;  θ ← θ − lr·g/√(v + ε)                    (ε inside the sqrt)
    SGD     θ ← θ − lr·g
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any


class SGD:
    def __init__(self, xp: ModuleType, theta: Any, grad: Any, learning_rate: float) -> None:
        self.xp, self.theta, self.grad = xp, theta, grad
        self.lr = float(learning_rate)
        self._tmp = xp.empty_like(theta)

    def step(self) -> None:
        self.xp.multiply(self.grad, self.lr, out=self._tmp)
        self.theta -= self._tmp


class Adam:
    def __init__(
        self,
        xp: ModuleType,
        theta: Any,
        grad: Any,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        self.xp, self.theta, self.grad = xp, theta, grad
        self.lr, self.beta_1, self.beta_2, self.eps = map(
            float, (learning_rate, beta_1, beta_2, epsilon)
        )
        self.m = xp.zeros_like(theta)
        self.v = xp.zeros_like(theta)
        self._tmp = xp.empty_like(theta)
        self._tmp2 = xp.empty_like(theta)
        self.iterations = 0

    def alpha(self, t: int) -> float:
        """Bias-corrected step size of update number t (1-based)."""
        return self.lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def step(self) -> None:
        xp, g, m, v, tmp, tmp2 = self.xp, self.grad, self.m, self.v, self._tmp, self._tmp2
        self.iterations += 1
        xp.subtract(g, m, out=tmp)
        tmp *= 1.0 - self.beta_1
        m += tmp  # m ← m + (g − m)(1 − β1)
        xp.multiply(g, g, out=tmp)
        tmp -= v
        tmp *= 1.0 - self.beta_2
        v += tmp  # v ← v + (g² − v)(1 − β2)
        xp.sqrt(v, out=tmp)
        tmp += self.eps  # √v + ε
        xp.multiply(m, self.alpha(self.iterations), out=tmp2)
        tmp2 /= tmp
        self.theta -= tmp2


class RMSprop:
    def __init__(
        self,
        xp: ModuleType,
        theta: Any,
        grad: Any,
        learning_rate: float = 1e-3,
        rho: float = 0.9,
        epsilon: float = 1e-7,
    ) -> None:
        self.xp, self.theta, self.grad = xp, theta, grad
        self.lr, self.rho, self.eps = map(float, (learning_rate, rho, epsilon))
        self.v = xp.zeros_like(theta)
        self._tmp = xp.empty_like(theta)
        self._tmp2 = xp.empty_like(theta)

    def step(self) -> None:
        xp, g, v, tmp, tmp2 = self.xp, self.grad, self.v, self._tmp, self._tmp2
        v *= self.rho
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.rho
        v += tmp  # v ← ρv + (1 − ρ)g²
        xp.add(v, self.eps, out=tmp)
        xp.sqrt(tmp, out=tmp)  # √(v + ε)
        xp.multiply(g, self.lr, out=tmp2)
        tmp2 /= tmp
        self.theta -= tmp2


def make_optimizer(
    xp: ModuleType, name: str, theta: Any, grad: Any, hyper: dict[str, float]
) -> SGD | Adam | RMSprop:
    """The optimizer ``name`` over (theta, grad) with the hyperparameters in ``hyper``
    (keys: learning_rate, and beta_1/beta_2/epsilon for Adam, rho/epsilon for RMSprop)."""
    if name == "sgd":
        return SGD(xp, theta, grad, hyper["learning_rate"])
    if name == "adam":
        keys = ("learning_rate", "beta_1", "beta_2", "epsilon")
        return Adam(xp, theta, grad, **{k: hyper[k] for k in keys})
    if name == "rmsprop":
        return RMSprop(
            xp, theta, grad, **{k: hyper[k] for k in ("learning_rate", "rho", "epsilon")}
        )
    raise ValueError(f"unknown optimizer {name!r}")
