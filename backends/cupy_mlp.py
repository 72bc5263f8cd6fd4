"""The CuPy backend: the shared manual-backprop engine bound to ``xp = cupy`` on an NVIDIA GPU.

The whole dataset is uploaded in ``build`` (untimed). Inside an epoch nothing synchronizes the host:
loss and accuracy accumulate in device scalars (see ``XpMLP.train_epoch``), and a CUDA event is
recorded before the first step and after each one (``backends.device_time``), read only after the
harness's clock stops: the epoch's device time and every step's (the row order's upload, before
the first event, counts in the wall time only). TF32 is off unless
``RunOptions.tf32``; the setting is applied before the first float32 matmul and read back.

``machine_facts`` measures the current GPU's own GEMM peak (float32, TF32, float64) with CUDA
events, so a speed's "% of peak" is against the device it ran on, never the host CPU.

Options (speed only: neither changes the math beyond what the GPU tests bound):

- ``fused`` (default false): Adam's update as ONE element-wise kernel over the flat parameter
  buffer instead of ten whole-buffer passes, compiled with ``--fmad=false`` so that each
  operation rounds as the separate passes do (the GPU tests compare the two bit for bit).
- ``cuda_graph`` (default false): each full-size training step — gather, forward, loss,
  backward, update — captured once into a CUDA graph (``cupy.cuda.Stream.begin_capture``) and
  replayed per batch; the batch's row indices and Adam's step size are copied into static device
  buffers before each replay, because a graph freezes every kernel argument, host scalars
  included. The first (cold) epoch runs eagerly: it compiles every kernel (and creates cuBLAS's
  handle) before the capture. The capture runs on a stream of its own, whose memory-pool blocks
  CuPy keeps apart from the default stream's, so the graph's temporaries take memory of their
  own (about a step's worth). A last, smaller batch and recipes with dropout (CuPy's generator
  state is not captured here) run eagerly; ``settings()`` says which ran.

The defaults are the plain ``xp`` path, what a CuPy user writes first. NOT YET RUN ON A GPU: both
options were written without access to one; ``scripts/gpu-proof.sh`` runs their GPU tests (bit
for bit against the plain path) and measures them on its first GPU.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import EpochMetrics, RunOptions, parse_bool
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

    CuPy decides the float32 compute type at its first float32 matmul (from ``CUPY_TF32``) and
    caches it; setting the cached type directly decides it for the whole process, whether or not
    that first matmul has happened. The environment is left alone, so the run's recorded
    environment holds only what the user set.
    """
    from cupy._core import _routines_linalg as linalg

    wanted = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(np.float32, wanted)
    return _tf32_in_effect()


def _tf32_in_effect() -> bool:
    from cupy._core import _routines_linalg as linalg

    return linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32


#: Adam's update (``backends.xp.optimizers.Adam.step``, its moments pre-divided by (1 − β)) in one
#: kernel, each operation in the same order and precision as the ten separate passes:
#: m̃ ← β1·m̃ + g;  ṽ ← β2·ṽ + g²;  θ ← θ − (m̃ / (√ṽ + ε′))·α′.  ``scale`` holds α′ (one element).
ADAM_KERNEL = (
    "T g, T beta_1, T beta_2, T eps, raw T scale",
    "T m, T v, T theta",
    "T m1 = beta_1 * m; m1 = m1 + g; "
    "T g2 = g * g; T v1 = beta_2 * v; v1 = v1 + g2; "
    "T d = sqrt(v1); d = d + eps; T u = m1 / d; u = u * scale[0]; "
    "m = m1; v = v1; theta = theta - u;",
    "mlpbench_adam",
)


class FusedAdam:
    """``step`` of an engine's ``Adam`` as one CuPy kernel (``ADAM_KERNEL``); same contract."""

    def __init__(self, adam: Any) -> None:
        import cupy

        in_params, out_params, body, name = ADAM_KERNEL
        self.adam = adam
        self.kernel = cupy.ElementwiseKernel(
            in_params, out_params, body, name, options=("--fmad=false",)
        )
        self._scale = cupy.empty(1, dtype=adam.theta.dtype)
        root = math.sqrt(1.0 - adam.beta_2)
        dtype = adam.theta.dtype.type
        self._constants = (dtype(adam.beta_1), dtype(adam.beta_2), dtype(adam.eps / root))

    def advance(self) -> float:
        return self.adam.advance()

    def step(self, scale: Any = None) -> None:
        if scale is None:
            self._scale.fill(self.adam.advance())
            scale = self._scale
        a = self.adam
        self.kernel(a.grad, *self._constants, scale, a.m_scaled, a.v_scaled, a.theta)

    def __getattr__(self, name: str) -> Any:  # m, v, iterations, ... of the wrapped Adam
        return getattr(self.adam, name)


class StepGraph:
    """One full-size training step of an ``XpMLP`` on CuPy, captured as a CUDA graph.

    ``replay(idx)`` copies the batch's row indices (a (B,) int64 device array) into the graph's
    static index buffer and Adam's next step size into its static scale buffer, then launches the
    graph on the current stream; the batch's loss sum and correct count accumulate in
    ``loss_sum`` (float64) and ``correct`` (int64), zeroed by ``reset()``. Capture runs nothing:
    the engine's state is untouched until the first replay. The capture stream and everything
    allocated during capture stay referenced while the graph lives (CuPy's pool keeps a stream's
    blocks for that stream, so the graph's temporaries are never handed to other work)."""

    def __init__(self, engine: Any, x: Any, y: Any, batch: int) -> None:
        import cupy

        self.engine = engine
        self.idx = cupy.zeros(batch, dtype=cupy.int64)
        self.scale = cupy.zeros(1, dtype=engine.dtype)
        self.loss_sum = cupy.zeros((), dtype=cupy.float64)
        self.correct = cupy.zeros((), dtype=cupy.int64)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        with self.stream:
            self.stream.begin_capture()
            try:
                engine.train_step(x, y, self.idx, self.loss_sum, self.correct, self.scale)
            except BaseException:
                self.stream.end_capture()  # leave the stream usable; the first error is the one
                raise
            self.graph = self.stream.end_capture()

    def reset(self) -> None:
        self.loss_sum.fill(0)
        self.correct.fill(0)

    def replay(self, idx: Any) -> None:
        self.idx[...] = idx
        scale = self.engine.optimizer.advance()
        if scale is not None:
            self.scale.fill(scale)
        self.graph.launch()


class CupyMLP(XpBackend):
    device = "gpu"
    OPTIONS: ClassVar[dict[str, str]] = {
        "fused": "Adam's update as one fused element-wise kernel (true/false, default false)",
        "cuda_graph": "replay each full-size training step as a captured CUDA graph "
        "(true/false, default false)",
    }

    #: ``mlpbench fidelity``: the same recipe as a plain CuPy script.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = ("backends.plain.numpy_plain", "--xp", "cupy")
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "fused": ("false", "true"),
        "cuda_graph": ("false", "true"),
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        super().__init__(options)
        given = self.own_options("cupy")
        self.fused = parse_bool("fused", given.get("fused", "false"))
        self.cuda_graph = parse_bool("cuda_graph", given.get("cuda_graph", "false"))

    @staticmethod
    def unavailable_reason() -> str | None:
        return _cupy_problem()

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """The CUDA devices CuPy sees (name, compute capability, memory, driver and runtime) and
        the current one's GEMM peak, measured now; nothing when it sees none."""
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
        self.fused_in_use = self.fused and recipe.optimizer == "adam"
        if self.fused_in_use:
            self.engine.optimizer = FusedAdam(self.engine.optimizer)
        self.graph_skipped = self._graph_skipped(recipe)
        self.graphs: dict[int, StepGraph] = {}
        self.epochs_run = 0
        self.marks = cupy_marks()
        self.peak_pool_bytes = self.pool.total_bytes()

    def _graph_skipped(self, recipe: Recipe) -> str | None:
        """Why the steps run eagerly although ``cuda_graph`` was asked for (None: they replay)."""
        if not self.cuda_graph:
            return "not asked for"
        if recipe.dropout:
            return "dropout: CuPy's random generator is not captured here"
        return None

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """The engine's epoch with a CUDA event before the first step and after each one;
        nothing waits for the device (the events are read after the clock stops)."""
        steps = -(-len(order) // self.batch_size)
        events = self.marks.start_epoch(steps)
        if self.graph_skipped is None and self.epochs_run > 0:
            loss, accuracy = self._train_graphed(order)
        else:
            loss, accuracy = self._train(order, self.marks.mark)
        self.epochs_run += 1
        self.peak_pool_bytes = max(self.peak_pool_bytes, self.pool.total_bytes())
        return EpochMetrics(loss, accuracy, events.epoch_seconds, events.step_seconds)

    def _train_graphed(self, order: np.ndarray) -> tuple[Any, Any]:
        """``_train`` with every full-size batch replayed from its captured graph (captured on
        the first call, after the eager cold epoch) and a smaller last batch run eagerly."""
        import cupy

        self._check_order(order)
        n, batch = len(order), self.batch_size
        graph = self.graphs.get(batch)
        if graph is None:
            graph = self.graphs[batch] = StepGraph(self.engine, self.x_train, self.y_train, batch)
        idx = cupy.asarray(order)
        graph.reset()
        self.marks.mark()
        for start in range(0, n, batch):
            rows = idx[start : start + batch]
            if len(rows) == batch:
                graph.replay(rows)
            else:
                self.engine.train_step(
                    self.x_train, self.y_train, rows, graph.loss_sum, graph.correct
                )
            self.marks.mark()
        return graph.loss_sum / n, graph.correct / n

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
            "gpu_memory_measure": "pool",
            "device_time": "CUDA events before the first step and after each step",
            "fused": self.fused_in_use,
            "cuda_graph": self.graph_skipped is None,
            **({"cuda_graph_skipped": self.graph_skipped} if self.cuda_graph else {}),
        }
