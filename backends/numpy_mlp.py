"""The NumPy backend: the shared manual-backprop engine bound to ``xp = numpy`` on the CPU.

Training epochs run with denormals flushed to zero (see ``backends/_denormals.py``): without it,
Adam's decaying moments make warm epochs up to ~2× slower on x86, for no change in the results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from backends import _denormals
from backends._xp_backend import XpBackend
from backends.base import EpochMetrics

if TYPE_CHECKING:
    from types import ModuleType


class NumpyMLP(XpBackend):
    name = "numpy"
    device = "cpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        return None

    def array_module(self) -> ModuleType:
        return np

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        with _denormals.flush_denormals():
            return super().train_epoch(order)

    def synchronize(self) -> None:
        """Nothing to wait for: NumPy is synchronous."""

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "flush_denormals": _denormals.supported(),
            "numpy": np.__version__,
        }
