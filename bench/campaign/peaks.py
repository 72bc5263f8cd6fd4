"""How fast this machine's GEMM and memory can go: the ceilings recorded in the machine facts.

A cell's achieved GFLOP/s (its epoch's FLOPs, ``scenarios.work.epoch_flops``, over its seconds)
is shown as a share of the GEMM peak measured on the same machine in the same run; the memory
bandwidth is the roofline's other ceiling.
"""

from __future__ import annotations

import time

import numpy as np

PEAK_SIZE = 2048  # square GEMM used for the peak: large enough to reach BLAS' best rate
PEAK_REPEATS = 5


def gemm_peak_gflops(dtype: str = "float32", size: int = PEAK_SIZE) -> float:
    """Best GFLOP/s of NumPy's matmul on (size × size) @ (size × size) in ``dtype``, best of
    PEAK_REPEATS after one untimed warm-up call, with the BLAS threads as currently configured."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=dtype)
    b = rng.random((size, size), dtype=dtype)
    out = np.empty((size, size), dtype=dtype)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def gemm_peaks() -> dict[str, float]:
    """{dtype: GFLOP/s} for float32 and float64, measured now."""
    return {dtype: round(gemm_peak_gflops(dtype), 1) for dtype in ("float32", "float64")}


BANDWIDTH_BYTES = 2**28  # 256 MiB: far beyond any cache, so the copy runs from main memory


def memory_bandwidth_gbs(nbytes: int = BANDWIDTH_BYTES, repeats: int = PEAK_REPEATS) -> float:
    """Best GB/s (10⁹ bytes read + written per second) of NumPy copying ``nbytes`` between two
    buffers, best of ``repeats`` after one untimed copy: the host's memory-bandwidth ceiling for
    the roofline (one thread: NumPy's copy is single-threaded, as the backends' elementwise
    passes mostly are)."""
    a = np.ones(nbytes // 8, dtype=np.float64)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return round(2 * a.nbytes / best / 1e9, 2)
