"""The backend contract: what the harness calls, and the small types it passes. No logic here.

Every backend trains the same MLP (input → hidden ReLU layers → softmax) from weights the harness
hands it, in the batch order the harness hands it, with the scenario's hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from bench.data import Dataset
    from scenarios import Scenario

#: Weights in Keras order [W1, b1, W2, b2, ...]; kernels shaped (in, out), biases (out,).
Weights = list[np.ndarray]


@dataclass(frozen=True)
class RunOptions:
    """Implementation settings that change speed, not the recipe; every backend takes them.

    ``tf32``: allow TensorFloat-32 matmuls on GPUs that have them (off by default, everywhere).
    ``jit_compile``: Keras/XLA compilation; None means the backend's documented default.
    ``steps_per_execution``: Keras: optimizer steps per call of the compiled train function
    (Keras' default 1; larger values cut Keras' per-step dispatch cost, not its math).
    """

    tf32: bool = False
    jit_compile: bool | None = None
    steps_per_execution: int = 1


@dataclass(frozen=True)
class EpochMetrics:
    """Training metrics of one epoch, Keras-style: sample-weighted means over the epoch's batches,
    each batch measured by its forward pass before its update (dropout active).

    ``loss`` and ``accuracy`` may be 0-d device arrays; the harness converts them with ``float()``
    after the timed region, so a GPU backend never synchronizes inside an epoch.
    ``device_seconds``: optional device-side time of the epoch (e.g. CUDA events), also read
    with ``float()`` after the clock stops.
    """

    loss: Any
    accuracy: Any
    device_seconds: Any = None


@dataclass(frozen=True)
class Evaluation:
    """Test-set loss (mean categorical cross-entropy) and accuracy (fraction in [0, 1])."""

    loss: float
    accuracy: float


@runtime_checkable
class Backend(Protocol):
    """One implementation of the MLP.

    Lifecycle: ``build`` once (untimed), then per epoch ``train_epoch`` (timed, between two
    ``synchronize`` calls) and ``evaluate`` (untimed). A backend that cannot run a scenario raises
    ``NotImplementedError(reason)`` from ``build``; the harness records it as skipped.
    """

    name: str
    device: str  # "cpu" or "gpu"

    def __init__(self, options: RunOptions = ...) -> None: ...

    @staticmethod
    def unavailable_reason() -> str | None:
        """One sentence saying why this backend cannot run here, or None. Must be cheap and must
        not fail: it is called by ``mlpbench list``, test skips and the tables."""

    def build(self, scenario: Scenario, data: Dataset, init_weights: Weights) -> None:
        """Create the model and optimizer state and move ``data`` to the device."""

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """One pass over the training rows ``order`` (int64, shape (n,)) in that order, split into
        consecutive batches of the scenario's batch size (the last one may be smaller)."""

    def evaluate(self) -> Evaluation:
        """Test loss and accuracy in inference mode (no dropout)."""

    def get_weights(self) -> Weights:
        """Host copies of the current weights, in Keras order, in the scenario's dtype."""

    def set_weights(self, weights: Weights) -> None:
        """Replace the weights (optimizer state is kept)."""

    def synchronize(self) -> None:
        """Block until all queued device work is done; a no-op on the CPU."""

    def settings(self) -> dict[str, Any]:
        """Every setting that affects speed or numerics (dtype, threads, tf32, jit, versions...)."""
