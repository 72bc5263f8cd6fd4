"""The CuPy backend: availability on any machine; on a CUDA machine, its GPU-specific behaviour.

The math is the shared ``xp`` engine, tested on the CPU through NumPy everywhere else (and against
NumPy on the GPU by tests/test_agreement.py). These tests add what only the GPU path has: TF32
control, CUDA-event device time, memory-pool statistics, the GPU facts.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import scenarios
from bench import registry
from bench.cell.session import Session
from bench.cli import main

REASON = registry.unavailable_reason("cupy")
needs_gpu = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_unavailability_is_one_sentence_that_says_what_is_missing():
    if REASON is None:
        pytest.skip("cupy and a CUDA device are present")
    if importlib.util.find_spec("cupy") is None:
        assert REASON.startswith("cupy is not installed")
    else:
        assert REASON.startswith("no CUDA device")
    assert "\n" not in REASON


def test_run_on_cupy_without_it_ends_with_that_one_line(tmp_path, capsys):
    if REASON is None:
        pytest.skip("cupy and a CUDA device are present")
    code = main(["run", "--backend", "cupy", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"mlpbench: error: backend 'cupy' is unavailable: {REASON}\n"


@pytest.fixture(scope="module")
def small(raw_mnist):
    from bench.data import prepare

    return prepare(raw_mnist, "float32").subset(2048, 500)


def gpu_session(data, tf32: bool = False) -> Session:
    from backends.api import RunOptions

    recipe = scenarios.BASELINE.with_overrides(epochs=2)
    session = Session("cupy", recipe, data, options=RunOptions(tf32=tf32))
    session.build()
    return session


@pytest.mark.gpu
@needs_gpu
def test_tf32_is_off_by_default_and_on_when_asked(small):
    from cupy._core import _routines_linalg as linalg

    assert gpu_session(small).settings()["tf32"] is False
    assert linalg.get_compute_type(np.float32) != linalg.COMPUTE_TYPE_TF32
    assert gpu_session(small, tf32=True).settings()["tf32"] is True
    assert linalg.get_compute_type(np.float32) == linalg.COMPUTE_TYPE_TF32
    gpu_session(small, tf32=False)  # leave the process as the default finds it


@pytest.mark.gpu
@needs_gpu
def test_the_gpus_own_gemm_peak_is_measured_and_tf32_left_as_it_was():
    from backends.cupy_mlp import CupyMLP, _tf32_in_effect

    before = _tf32_in_effect()
    (gpu, *_) = [g for g in CupyMLP.machine_facts()["gpus"] if "gemm_peak_gflops" in g]
    peak = gpu["gemm_peak_gflops"]
    # every CUDA GPU of the last decade does float32 GEMM at > 1 TFLOP/s, and below 1 PFLOP/s
    # (float64 may match float32: H100/H200 run DGEMM on FP64 tensor cores at the FP32 rate)
    assert 1e3 < peak["float32"] < 1e6 and 0 < peak["float64"] < 1e6
    assert peak["tf32"] >= peak["float32"] * 0.9  # TF32 is never much slower than float32
    assert _tf32_in_effect() == before


@pytest.mark.gpu
@needs_gpu
def test_epoch_records_device_time_memory_and_gpu_facts(small):
    session = gpu_session(small)
    session.run_epoch()  # cold
    record = session.run_epoch()
    assert record.device_seconds is not None
    assert 0 < record.device_seconds <= record.seconds * 1.05  # device time within wall time
    steps = -(-small.n_train // session.scenario.batch_size)
    # per-step times: the median step is about the epoch's share, and the IQR is non-negative
    assert 0 < record.device_step_median_s <= 2 * record.device_seconds / steps
    assert record.device_step_iqr_s >= 0
    settings = session.settings()
    assert settings["peak_pool_bytes"] >= small.x_train.nbytes  # the data lives on the device
    assert settings["gpu"]["name"] and settings["gpu"]["compute_capability"]


@pytest.mark.gpu
@needs_gpu
def test_weights_come_back_to_the_host_in_keras_order(small):
    session = gpu_session(small)
    weights = session.backend.get_weights()
    assert [w.shape for w in weights] == [(784, 128), (128,), (128, 10), (10,)]
    assert all(isinstance(w, np.ndarray) and w.dtype == np.float32 for w in weights)


def _trained_weights(data, epochs: int, **options: str) -> tuple[list[np.ndarray], list, dict]:
    """Weights, per-epoch records and settings after ``epochs`` epochs of baseline on CuPy with
    backend ``options`` (the same seed, so the same initial weights and batch orders)."""
    from backends.api import RunOptions

    recipe = scenarios.BASELINE.with_overrides(epochs=epochs)
    session = Session("cupy", recipe, data, options=RunOptions(backend=options))
    session.build()
    records = [session.run_epoch() for _ in range(epochs)]
    return session.backend.get_weights(), records, session.settings()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_adam_kernel_matches_the_ten_passes_bit_for_bit(dtype):
    """The fused kernel does the separate passes' operations in their order and precision
    (no FMA contraction), so it must give the same bits, step after step."""
    import cupy

    from backends.cupy_mlp import FusedAdam
    from backends.xp.optimizers import Adam

    rng = np.random.default_rng(7)
    start = rng.normal(size=5000).astype(dtype)
    grads = [
        rng.normal(scale=10.0 ** rng.integers(-6, 1), size=5000).astype(dtype) for _ in range(6)
    ]
    runs = []
    for fused in (False, True):
        theta = cupy.asarray(start)
        grad = cupy.zeros_like(theta)
        adam = Adam(cupy, theta, grad, 1e-3, 0.9, 0.999, 1e-7)
        opt = FusedAdam(adam) if fused else adam
        for g in grads:
            grad[...] = cupy.asarray(g)
            opt.step()
        runs.append([cupy.asnumpy(a) for a in (theta, adam.m_scaled, adam.v_scaled)])
    for plain, fused in zip(*runs, strict=True):
        np.testing.assert_array_equal(fused, plain)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize(
    "options", [{"cuda_graph": "true"}, {"cuda_graph": "true", "fused": "true"}]
)
def test_cuda_graph_replays_train_as_the_eager_steps_do(small, options):
    """Epochs 2-3 replayed from the captured step give the eager path's weights and metrics: the
    same kernels on the same buffers, with the batch rows and Adam's step size fed per replay.
    Bit-for-bit is expected; the bound allows cuBLAS a different kernel inside a graph."""
    eager, eager_records, _ = _trained_weights(small, 3)
    graphed, records, settings = _trained_weights(small, 3, **options)
    assert settings["cuda_graph"] is True and settings["fused"] is ("fused" in options)
    for a, b in zip(eager, graphed, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    for a, b in zip(eager_records, records, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.train_accuracy == pytest.approx(a.train_accuracy, abs=1e-9)
        assert b.device_step_median_s > 0


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_leaves_dropout_eager_and_says_so(small):
    from backends.api import RunOptions

    recipe = scenarios.get("dropout").with_overrides(epochs=2)
    session = Session("cupy", recipe, small, options=RunOptions(backend={"cuda_graph": "true"}))
    session.build()
    session.run_epoch()
    session.run_epoch()
    settings = session.settings()
    assert settings["cuda_graph"] is False
    assert settings["cuda_graph_skipped"].startswith("dropout")
