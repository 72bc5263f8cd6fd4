"""The CuPy backend: the shared manual-backprop engine bound to ``xp = cupy`` on an NVIDIA GPU.

The whole dataset is uploaded in ``build`` (untimed). Inside an epoch nothing synchronizes the host:
loss and accuracy accumulate in device scalars (see ``XpMLP.train_epoch``). Each epoch is also timed
with CUDA events (device time, reported beside the harness's wall time). TF32 is off unless
``RunOptions.tf32``; the setting is applied before the first float32 matmul and read back.

This backend runs the plain ``xp`` path: no fused CUDA kernels yet, because no GPU was available to
test them when it was written (untested GPU kernels are worse than none).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from backends.api import EpochMetrics
from backends.xp.backend import XpBackend

if TYPE_CHECKING:
    from types import ModuleType

    from backends.api import Recipe, TrainData


def _cupy_problem() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install 'mlpbench[gpu]' on a machine with CUDA 12)"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, missing driver library, ...
        return (
            f"no CUDA device ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        )
    return None if count > 0 else "no CUDA device (cupy sees 0 GPUs)"


def cuda_devices() -> list[dict[str, Any]]:
    """Name, compute capability, memory (bytes), driver and CUDA runtime version of each GPU."""
    import cupy

    runtime = cupy.cuda.runtime
    devices = []
    for i in range(runtime.getDeviceCount()):
        props = runtime.getDeviceProperties(i)
        name = props["name"]
        devices.append(
            {
                "index": i,
                "name": name.decode() if isinstance(name, bytes) else str(name),
                "compute_capability": f"{props['major']}.{props['minor']}",
                "memory_bytes": int(props["totalGlobalMem"]),
                "driver_version": runtime.driverGetVersion(),
                "runtime_version": runtime.runtimeGetVersion(),
                "cupy": cupy.__version__,
            }
        )
    return devices


def set_tf32(enabled: bool) -> bool:
    """Allow (or forbid) TF32 for float32 matmuls; returns the setting now in effect.

    CuPy reads ``CUPY_TF32`` once, at its first float32 matmul, and caches the compute type; so we
    set the variable (for a first matmul still to come) and also overwrite the cached type.
    """
    os.environ["CUPY_TF32"] = "1" if enabled else "0"
    from cupy._core import _routines_linalg as linalg

    wanted = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(np.float32, wanted)
    return linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32


class _EventSeconds:
    """Device time between two CUDA events, read (with a sync on the end event) only by float()."""

    def __init__(self, start: Any, end: Any) -> None:
        self.start, self.end = start, end

    def __float__(self) -> float:
        import cupy

        return cupy.cuda.get_elapsed_time(self.start, self.end) / 1000.0


class CupyMLP(XpBackend):
    device = "gpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        return _cupy_problem()

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """The CUDA devices CuPy sees (name, compute capability, memory, driver and runtime);
        nothing when it sees none."""
        return {"gpus": cuda_devices()} if _cupy_problem() is None else {}

    def array_module(self) -> ModuleType:
        import cupy

        return cupy

    def build(self, recipe: Recipe, data: TrainData, init_weights: list[np.ndarray]) -> None:
        import cupy

        self.tf32 = set_tf32(self.options.tf32)
        super().build(recipe, data, init_weights)
        self.pool = cupy.get_default_memory_pool()
        self.peak_pool_bytes = self.pool.total_bytes()

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        import cupy

        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        metrics = super().train_epoch(order)
        end.record()
        self.peak_pool_bytes = max(self.peak_pool_bytes, self.pool.total_bytes())
        return EpochMetrics(metrics.loss, metrics.accuracy, _EventSeconds(start, end))

    def synchronize(self) -> None:
        import cupy

        cupy.cuda.get_current_stream().synchronize()

    def settings(self) -> dict[str, Any]:
        import cupy

        return {
            "dtype": self.recipe.dtype,
            "tf32": self.tf32,
            "cupy": cupy.__version__,
            "gpu": cuda_devices()[cupy.cuda.runtime.getDevice()],
            "peak_pool_bytes": int(self.peak_pool_bytes),
            "fused_kernels": False,
        }
