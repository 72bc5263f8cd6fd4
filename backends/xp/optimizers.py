"""SGD, Adam and RMSprop on flat buffers, in Keras 3's exact formulas and operation order.

Each optimizer updates ``theta`` in place from ``grad`` (both 1-D arrays of the same dtype, all
layers' parameters end to end) with whole-buffer passes written with ``out=``. Hyperparameters
arrive explicitly from the scenario; the defaults below are Keras' only for documentation.

    Adam    m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
            α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ);  θ ← θ − (m·α)/(√v + ε)          (ε outside the sqrt)
    RMSprop v ← ρv + (1 − ρ)g²;  θ ← θ − lr·g/√(v + ε)                    (ε inside the sqrt)
    SGD     θ ← θ − lr·g

Speed: the moments are stored pre-divided by their (1 − β) factor, which is the same math in fewer
whole-buffer passes over all the parameters, once per batch. For Adam, with m̃ = m/(1 − β1) and
ṽ = v/(1 − β2):

    m̃ ← β1·m̃ + g;   ṽ ← β2·ṽ + g²;   θ ← θ − α′·m̃/(√ṽ + ε′),
    α′ = α(1 − β1)/√(1 − β2),   ε′ = ε/√(1 − β2)

— identical to Keras' update in exact arithmetic: 10 passes instead of 12. RMSprop likewise with
ṽ = v/(1 − ρ): ṽ ← ρ·ṽ + g², θ ← θ − lr/√(1 − ρ)·g/√(ṽ + ε/(1 − ρ)): 8 passes instead of 9.
In float32 the results differ from the literal order by rounding only (tests/test_optimizers.py
checks both against Keras' golden values and a float64 reference).
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

    def advance(self) -> None:
        """Nothing to advance: SGD's step size is constant (see ``Adam.advance``)."""

    def step(self, scale: Any = None) -> None:
        """One update; ``scale`` is unused (SGD's step size is a constant)."""
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
        self.m_scaled = xp.zeros_like(theta)  # m / (1 − β1)
        self.v_scaled = xp.zeros_like(theta)  # v / (1 − β2)
        self._tmp = xp.empty_like(theta)
        self.iterations = 0

    @property
    def m(self) -> Any:
        """Keras' first moment m (a new array)."""
        return self.m_scaled * (1.0 - self.beta_1)

    @property
    def v(self) -> Any:
        """Keras' second moment v (a new array)."""
        return self.v_scaled * (1.0 - self.beta_2)

    def alpha(self, t: int) -> float:
        """Bias-corrected step size of update number t (1-based)."""
        return self.lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)

    def advance(self) -> float:
        """Count one more update and return its step size α′ (the factor of the last pass): for
        a caller that passes it to ``step`` as a device value (a replayed CUDA graph)."""
        self.iterations += 1
        return self.alpha(self.iterations) * (1.0 - self.beta_1) / math.sqrt(1.0 - self.beta_2)

    def step(self, scale: Any = None) -> None:
        """One update. ``scale``: None (advance the step count here, α′ a host float), or a
        1-element device array holding ``advance()``'s α′ in the parameters' dtype — the same
        float32/float64 product as the host float's, since a weak Python scalar is cast to the
        array's dtype first."""
        xp, g, tmp = self.xp, self.grad, self._tmp
        m, v = self.m_scaled, self.v_scaled
        factor = self.advance() if scale is None else scale
        root = math.sqrt(1.0 - self.beta_2)
        m *= self.beta_1
        m += g  # m̃ ← β1·m̃ + g
        xp.square(g, out=tmp)
        v *= self.beta_2
        v += tmp  # ṽ ← β2·ṽ + g²
        xp.sqrt(v, out=tmp)
        tmp += self.eps / root  # √ṽ + ε′
        xp.divide(m, tmp, out=tmp)
        tmp *= factor  # α′
        self.theta -= tmp


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
        self.v_scaled = xp.zeros_like(theta)  # v / (1 − ρ)
        self._tmp = xp.empty_like(theta)

    @property
    def v(self) -> Any:
        """Keras' velocity v (a new array)."""
        return self.v_scaled * (1.0 - self.rho)

    def advance(self) -> None:
        """Nothing to advance: RMSprop's step size is constant (see ``Adam.advance``)."""

    def step(self, scale: Any = None) -> None:
        """One update; ``scale`` is unused (RMSprop's step size is a constant)."""
        xp, g, v, tmp = self.xp, self.grad, self.v_scaled, self._tmp
        v *= self.rho
        xp.square(g, out=tmp)
        v += tmp  # ṽ ← ρ·ṽ + g²
        xp.add(v, self.eps / (1.0 - self.rho), out=tmp)
        xp.sqrt(tmp, out=tmp)  # √(ṽ + ε/(1 − ρ))
        xp.divide(g, tmp, out=tmp)
        tmp *= self.lr / math.sqrt(1.0 - self.rho)
        self.theta -= tmp


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
