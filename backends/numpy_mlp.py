"""The NumPy backend: the shared manual-backprop engine bound to ``xp = numpy`` on the CPU.

Training epochs run with denormals flushed to zero (see ``backends/_denormals.py``): without it,
Adam's decaying moments make warm epochs up to ~2× slower on x86, for no change in the results.

Below ``SINGLE_THREAD_BELOW`` rows per batch, training epochs run with ONE BLAS thread. At batch 32
the matrix products are too small to gain from a second thread (x·W1 took the same 68 µs with one
or two), while splitting them leaves halves of W1 and its gradient in the other core's cache, where
Adam, which runs on one core, must fetch them: Adam took ~240 µs per step with two BLAS threads and
~150 µs with one, and the warm baseline epoch 0.77–0.81 s vs 0.64–0.70 s (2-vCPU Xeon). From batch
128 up the second thread pays (batch 1024: 0.159 vs 0.221 s). The count used is in ``settings()``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import ThreadpoolController

from backends import _denormals
from backends._xp_backend import XpBackend
from backends.base import EpochMetrics

if TYPE_CHECKING:
    from types import ModuleType

    from backends.base import Weights
    from bench.data import Dataset
    from scenarios import Scenario


#: Batches smaller than this train with one BLAS thread (see the module docstring).
SINGLE_THREAD_BELOW = 128


class NumpyMLP(XpBackend):
    name = "numpy"
    device = "cpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        return None

    def array_module(self) -> ModuleType:
        return np

    def build(self, scenario: Scenario, data: Dataset, init_weights: Weights) -> None:
        super().build(scenario, data, init_weights)
        self._blas = ThreadpoolController()

    def single_threaded(self) -> bool:
        """Whether training epochs ask for one BLAS thread (batches below SINGLE_THREAD_BELOW);
        a BLAS that threadpoolctl cannot see keeps its own threads, and ``settings()`` says so."""
        return self.batch_size < SINGLE_THREAD_BELOW

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        one_thread = self.single_threaded()
        threads = self._blas.limit(limits=1, user_api="blas") if one_thread else nullcontext()
        with _denormals.flush_denormals(), threads:
            return super().train_epoch(order)

    def synchronize(self) -> None:
        """Nothing to wait for: NumPy is synchronous."""

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        if self.single_threaded() and self._blas.select(user_api="blas").lib_controllers:
            settings["blas_threads"] = 1
            settings["blas_threads_note"] = f"1 for batches below {SINGLE_THREAD_BELOW}"
        return {
            **settings,
            "flush_denormals": _denormals.supported(),
            "numpy": np.__version__,
        }
