"""The CuPy backend: the shared manual-backprop engine bound to ``xp = cupy`` on an NVIDIA GPU.

The whole dataset is uploaded in ``build`` (untimed). Inside an epoch nothing synchronizes the host:
loss and accuracy accumulate in device scalars (see ``XpMLP.train_epoch``), and a CUDA event is
recorded before the first step and after each one (``backends.device_time``), read only after the
harness's clock stops: the epoch's device time and every step's (the row order's upload, before
the first event, counts in the wall time only). TF32 is off unless
``RunOptions.tf32``; the setting is applied before the first float32 matmul and read back.

``machine_facts`` measures the current GPU's own GEMM peak (float32, TF32, float64) with CUDA
events, so a speed's "% of peak" is against the device it ran on, never the host CPU.

This backend runs the plain ``xp`` path: no fused CUDA kernels yet, because no GPU was available to
test them when it was written (untested GPU kernels are worse than none).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from backends.api import EpochMetrics
from backends.device_time import GPU_PEAK_REPEATS, GPU_PEAK_SIZE, StepMarks, gpu_gemm_peaks
from backends.xp.backend import XpBackend

if TYPE_CHECKING:
    from types import ModuleType

    from backends.api import Recipe, TrainData

INSTALL = "pip install 'mlpbench[cuda12]' or 'mlpbench[cuda13]', the CuPy build for your CUDA"


def _cupy_problem() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return f"cupy is not installed ({INSTALL})"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, missing driver library, ...
        return (
            f"no CUDA device ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        )
    return None if count > 0 else "no CUDA device (cupy sees 0 GPUs)"


def cuda_devices(peaks: bool = False) -> list[dict[str, Any]]:
    """Name, compute capability, memory (bytes), driver and CUDA runtime version of each GPU;
    with ``peaks``, the current device's measured GEMM peak too (``gemm_peak_gflops``)."""
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
    if peaks and devices:
        devices[runtime.getDevice()]["gemm_peak_gflops"] = gemm_peaks()
    return devices


def gemm_peaks(size: int = GPU_PEAK_SIZE, repeats: int = GPU_PEAK_REPEATS) -> dict[str, float]:
    """{"float32", "tf32", "float64": GFLOP/s} of cuBLAS on (size × size) @ (size × size) on the
    current GPU, best of ``repeats`` timed by CUDA events; TF32 is put back as it was."""
    import cupy

    base = cupy.random.default_rng(0).random((size, size), dtype=np.float64)

    def square_matmul(dtype: str) -> Callable[[], None]:
        x = base.astype(dtype)
        result = cupy.empty_like(x)
        return lambda: cupy.matmul(x, x, out=result)

    return gpu_gemm_peaks(square_matmul, (_tf32_in_effect, set_tf32), cupy_marks(), size, repeats)


def cupy_marks() -> StepMarks:
    """CUDA events through CuPy (``backends.device_time.StepMarks``)."""
    import cupy

    return StepMarks(
        cupy.cuda.Event, lambda e: e.record(), lambda e: e.synchronize(), cupy.cuda.get_elapsed_time
    )


def set_tf32(enabled: bool) -> bool:
    """Allow (or forbid) TF32 for float32 matmuls; returns the setting now in effect.

    CuPy reads ``CUPY_TF32`` once, at its first float32 matmul, and caches the compute type; so we
    set the variable (for a first matmul still to come) and also overwrite the cached type.
    """
    os.environ["CUPY_TF32"] = "1" if enabled else "0"
    from cupy._core import _routines_linalg as linalg

    wanted = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(np.float32, wanted)
    return _tf32_in_effect()


def _tf32_in_effect() -> bool:
    from cupy._core import _routines_linalg as linalg

    return linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32


class CupyMLP(XpBackend):
    device = "gpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        return _cupy_problem()

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """The CUDA devices CuPy sees (name, compute capability, memory, driver and runtime) and
        the current one's GEMM peak (about a second); nothing when it sees none."""
        return {"gpus": cuda_devices(peaks=True)} if _cupy_problem() is None else {}

    def array_module(self) -> ModuleType:
        import cupy

        return cupy

    def build(self, recipe: Recipe, data: TrainData, init_weights: list[np.ndarray]) -> None:
        """Upload the data and weights; the memory pool's cached blocks are freed first, so its
        peak (``peak_pool_bytes``) is this run's."""
        import cupy

        self.tf32 = set_tf32(self.options.tf32)
        self.pool = cupy.get_default_memory_pool()
        self.pool.free_all_blocks()
        super().build(recipe, data, init_weights)
        self.marks = cupy_marks()
        self.peak_pool_bytes = self.pool.total_bytes()

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """The engine's epoch with a CUDA event before the first step and after each one;
        nothing waits for the device (the events are read after the clock stops)."""
        steps = -(-len(order) // self.batch_size)
        events = self.marks.start_epoch(steps)
        loss, accuracy = self._train(order, self.marks.mark)
        self.peak_pool_bytes = max(self.peak_pool_bytes, self.pool.total_bytes())
        return EpochMetrics(loss, accuracy, events.epoch_seconds, events.step_seconds)

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
            "device_time": "CUDA events before the first step and after each step",
            "fused_kernels": False,
        }
