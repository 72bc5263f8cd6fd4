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
def test_epoch_records_device_time_memory_and_gpu_facts(small):
    session = gpu_session(small)
    record = session.run_epoch()
    assert record.device_seconds is not None
    assert 0 < record.device_seconds <= record.seconds * 1.05  # device time within wall time
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
