"""The Backend contract implemented once over the shared ``xp`` engine; NumPy and CuPy subclass it
and supply only the array module, synchronization and their own settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from backends._xp_mlp import XpMLP
from backends.base import EpochMetrics, Evaluation, RunOptions, Weights

if TYPE_CHECKING:
    from types import ModuleType

    from bench.data import Dataset
    from scenarios import Scenario


class XpBackend:
    name = "xp"
    device = "cpu"

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()

    def array_module(self) -> ModuleType:
        raise NotImplementedError

    def build(self, scenario: Scenario, data: Dataset, init_weights: Weights) -> None:
        xp = self.array_module()
        self.scenario = scenario
        self.x_train, self.y_train = xp.asarray(data.x_train), xp.asarray(data.y_train)
        self.x_test, self.y_test = xp.asarray(data.x_test), xp.asarray(data.y_test)
        self.batch_size = scenario.batch_size or data.n_train  # None → full batch
        hyper = {
            k: getattr(scenario, k) for k in ("learning_rate", "beta_1", "beta_2", "rho", "epsilon")
        }
        self.engine = XpMLP(
            xp,
            init_weights,
            dtype=scenario.dtype,
            optimizer=scenario.optimizer,
            hyper=hyper,
            dropout=scenario.dropout,
            dropout_seed=scenario.seed,
        )

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        idx = self.array_module().asarray(order)
        loss, accuracy = self.engine.train_epoch(self.x_train, self.y_train, idx, self.batch_size)
        return EpochMetrics(loss=loss, accuracy=accuracy)

    def evaluate(self) -> Evaluation:
        loss, accuracy = self.engine.evaluate(self.x_test, self.y_test)
        return Evaluation(loss=loss, accuracy=accuracy)

    def get_weights(self) -> Weights:
        return self.engine.get_weights()

    def set_weights(self, weights: Weights) -> None:
        self.engine.set_weights(weights)

    def synchronize(self) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        from bench.machine import blas_info

        blas = [p for p in blas_info() if p.get("user_api") == "blas"]
        return {
            "dtype": self.scenario.dtype,
            "blas": ", ".join(f"{p['internal_api']} {p['version']}" for p in blas) or "unknown",
            "blas_threads": max((p["num_threads"] for p in blas), default=None),
        }
