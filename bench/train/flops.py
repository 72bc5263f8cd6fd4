"""How much matrix-product work a training epoch is, and how fast this machine's GEMM can go.

Together they put every speed on an absolute scale: achieved GFLOP/s = epoch FLOPs / seconds, and
its share of the GEMM peak measured on the same machine in the same run. Only the matrix products
are counted (they are > 97 % of the arithmetic); elementwise work, softmax and the optimizer are
extra cost on top of this floor, never counted as useful FLOPs.
"""

from __future__ import annotations

import time

import numpy as np

from bench.train.initializers import layer_sizes

PEAK_SIZE = 2048  # square GEMM used for the peak: large enough to reach BLAS' best rate
PEAK_REPEATS = 5


def epoch_flops(n_train: int, n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one training epoch over n_train samples.

    Per sample and Dense layer (fan_in → fan_out): forward 2·in·out, weight gradient 2·in·out, and
    input gradient 2·in·out for every layer but the first (the input needs no gradient).
    """
    per_sample = 0
    for layer, (fan_in, fan_out) in enumerate(layer_sizes(n_in, hidden, n_out)):
        products = 2 if layer == 0 else 3
        per_sample += products * 2 * fan_in * fan_out
    return per_sample * n_train


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
    """{dtype: GFLOP/s} for float32 and float64, measured now (about a second)."""
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


def step_bytes(batch: int, n_in: int, hidden: tuple[int, ...], n_out: int, itemsize: int) -> int:
    """An estimate of the least memory traffic of one training step (bytes): every weight read
    in the forward and backward passes and written as a gradient, the optimizer reading and
    writing weights, gradients and two moments (~10 passes over the parameters), and each
    activation written once and read about five times (forward, backward, ReLU mask, dropout)."""
    sizes = layer_sizes(n_in, hidden, n_out)
    params = sum(i * o + o for i, o in sizes)
    activations = batch * (n_in + sum(hidden) + n_out)
    return itemsize * (10 * params + 6 * activations)
