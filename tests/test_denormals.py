"""Flushing denormals: on inside the block, off again after it (even after an exception)."""

import numpy as np
import pytest

from backends.xp import denormals as _denormals

DENORMAL = np.array([1e-39, -3e-40], dtype=np.float32)  # below float32's smallest normal


def product() -> np.ndarray:
    return DENORMAL * np.float32(1.0)


@pytest.mark.skipif(not _denormals.supported(), reason="needs Linux/glibc on x86-64 or arm64")
def test_denormals_flush_inside_the_block_only():
    assert np.all(product() == DENORMAL)  # IEEE default: kept
    with _denormals.flush_denormals() as on:
        assert on is True
        assert np.all(product() == 0.0)
        assert np.float32(1e-30) * np.float32(1.0) == np.float32(1e-30)  # normals untouched
    assert np.all(product() == DENORMAL)


@pytest.mark.skipif(not _denormals.supported(), reason="needs Linux/glibc on x86-64 or arm64")
def test_the_mode_is_restored_after_an_exception():
    with pytest.raises(RuntimeError), _denormals.flush_denormals():
        raise RuntimeError("boom")
    assert np.all(product() == DENORMAL)


def test_numpy_backend_records_the_setting():
    import scenarios
    from backends.api import RunOptions
    from backends.numpy_mlp import NumpyMLP
    from bench.cell.session import scenario_weights
    from bench.data import load_dataset

    data = load_dataset().subset(64, 10)
    recipe, weights = (
        scenarios.BASELINE.recipe(data.n_train),
        scenario_weights(scenarios.BASELINE, data),
    )
    shipped = NumpyMLP()
    shipped.build(recipe, data, weights)
    assert shipped.settings()["flush_denormals"] is False  # as NumPy runs
    tuned = NumpyMLP(RunOptions(backend={"flush_denormals": "true"}))
    tuned.build(recipe, data, weights)
    assert tuned.settings()["flush_denormals"] is _denormals.supported()
