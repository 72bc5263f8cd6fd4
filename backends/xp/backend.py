"""The Backend contract implemented once over the shared ``xp`` engine; NumPy and CuPy subclass it
and supply only the array module, synchronization and their own settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import (
    EpochMetrics,
    Evaluation,
    OptionError,
    Recipe,
    RunOptions,
    TrainData,
    Weights,
)
from backends.xp.blas import blas_info
from backends.xp.engine import XpMLP

if TYPE_CHECKING:
    from types import ModuleType


class XpBackend:
    device = "cpu"
    OPTIONS: ClassVar[dict[str, str]] = {}
    #: The engine's epoch is a loop of steps: slices of an epoch train as the whole epoch does.
    SUB_EPOCH_EVALUATION: ClassVar[bool] = True

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()

    def own_options(self, backend: str) -> dict[str, str]:
        """The options given to this ``backend``, checked against its ``OPTIONS`` (OptionError,
        one line, for another; the registry checks names first, this guards direct use)."""
        given = dict(self.options.backend)
        unknown = sorted(set(given) - set(self.OPTIONS))
        if unknown:
            raise OptionError(
                f"unknown {backend} option {unknown[0]!r}; known: {', '.join(self.OPTIONS)}"
            )
        return given

    def array_module(self) -> ModuleType:
        raise NotImplementedError

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        xp = self.array_module()
        self.recipe = recipe
        self.x_train, self.y_train = xp.asarray(data.x_train), xp.asarray(data.y_train)
        self.x_test, self.y_test = xp.asarray(data.x_test), xp.asarray(data.y_test)
        self.batch_size = recipe.batch_size
        hyper = {
            k: getattr(recipe, k) for k in ("learning_rate", "beta_1", "beta_2", "rho", "epsilon")
        }
        self.engine = XpMLP(
            xp,
            init_weights,
            dtype=recipe.dtype,
            optimizer=recipe.optimizer,
            hyper=hyper,
            dropout=recipe.dropout,
            dropout_seed=recipe.seed,
        )

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        loss, accuracy = self._train(order)
        return EpochMetrics(loss=loss, accuracy=accuracy)

    def _train(self, order: np.ndarray, mark: Callable[[], None] | None = None) -> tuple[Any, Any]:
        """The engine's epoch over ``order`` (host int64, uploaded here); ``mark`` is called
        before the first step and after each (see ``XpMLP.train_epoch``)."""
        self._check_order(order)
        idx = self.array_module().asarray(order)
        return self.engine.train_epoch(self.x_train, self.y_train, idx, self.batch_size, mark)

    def _check_order(self, order: np.ndarray) -> None:
        """The engine's gather does not bounds-check (mode="clip"), so refuse bad rows here."""
        n = int(self.x_train.shape[0])
        if order.size and not (int(order.min()) >= 0 and int(order.max()) < n):
            raise IndexError(f"row order holds indices outside [0, {n}): the harness's bug")

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
        blas = [p for p in blas_info() if p.get("user_api") == "blas"]
        return {
            "dtype": self.recipe.dtype,
            "blas": ", ".join(f"{p['internal_api']} {p['version']}" for p in blas) or "unknown",
            "blas_threads": max((p["num_threads"] for p in blas), default=None),
        }
