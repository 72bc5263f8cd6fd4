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
from bench.cli import main
from bench.train.session import Session

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
