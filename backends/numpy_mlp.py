"""The NumPy backend: the shared manual-backprop engine bound to ``xp = numpy`` on the CPU.

As shipped it runs as NumPy runs for anyone: denormals as the CPU handles them, the BLAS with its
own thread count. Two speed options (the tuned division; the measurements behind them are in
results/README.md), both recorded by ``settings()``:
- ``flush_denormals``: training epochs with denormals flushed to zero
  (``backends/xp/denormals.py``): Adam's decaying moments otherwise pass through the denormal
  range, which some x86 CPUs compute on slowly; no result that matters changes;
- ``small_batch_threads=1``: below ``SINGLE_THREAD_BELOW`` rows per batch, training epochs with ONE
  BLAS thread: such small products gain nothing from a second thread, while splitting them
  leaves halves of W1 and its gradient in the other core's cache, where the single-threaded
  optimizer must fetch them.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from threadpoolctl import ThreadpoolController

from backends.api import EpochMetrics, RunOptions, parse_bool, parse_choice
from backends.xp import denormals
from backends.xp.backend import XpBackend
from backends.xp.blas import blas_info

if TYPE_CHECKING:
    from types import ModuleType

    from backends.api import Recipe, TrainData, Weights


#: Batches smaller than this train with one BLAS thread (see the module docstring).
SINGLE_THREAD_BELOW = 128


class NumpyMLP(XpBackend):
    device = "cpu"
    OPTIONS: ClassVar[dict[str, str]] = {
        "flush_denormals": "flush denormals to zero during training epochs (default false: "
        "as NumPy runs)",
        "small_batch_threads": f"BLAS threads below batch {SINGLE_THREAD_BELOW}: default "
        "(the BLAS's own) or 1",
    }
    #: ``mlpbench fidelity``: the same recipe as a plain NumPy script.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = ("backends.plain.numpy_plain",)
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "flush_denormals": ("false", "true"),
        "small_batch_threads": ("default", "1"),
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        super().__init__(options)
        given = self.own_options("numpy")
        self.flush = parse_bool("flush_denormals", given.get("flush_denormals", "false"))
        self.small_batch_threads = parse_choice(
            "small_batch_threads", given.get("small_batch_threads", "default"), ("default", "1")
        )

    @staticmethod
    def unavailable_reason() -> str | None:
        return None

    def array_module(self) -> ModuleType:
        return np

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """NumPy's BLAS thread pools (library, version, kernel, threads)."""
        return {"blas": blas_info()}

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        super().build(recipe, data, init_weights)
        self._blas = ThreadpoolController()

    def single_threaded(self) -> bool:
        """Whether training epochs ask for one BLAS thread (batches below SINGLE_THREAD_BELOW);
        a BLAS that threadpoolctl cannot see keeps its own threads, and ``settings()`` says so."""
        return self.small_batch_threads == "1" and self.batch_size < SINGLE_THREAD_BELOW

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        one_thread = self.single_threaded()
        threads = self._blas.limit(limits=1, user_api="blas") if one_thread else nullcontext()
        flush = denormals.flush_denormals() if self.flush else nullcontext()
        with flush, threads:
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
            "flush_denormals": self.flush and denormals.supported(),
            "small_batch_threads": self.small_batch_threads,
            "numpy": np.__version__,
        }
