"""The NumPy backend's speed settings take effect inside training epochs and are recorded."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

import scenarios
from backends.numpy_mlp import SINGLE_THREAD_BELOW, NumpyMLP
from bench.cell.session import epoch_order, scenario_weights
from bench.data import load_dataset


def blas_threads() -> int:
    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


@pytest.mark.parametrize("shipped", [True, False])
@pytest.mark.parametrize("batch_size", [32, SINGLE_THREAD_BELOW - 1, SINGLE_THREAD_BELOW, 256])
def test_blas_threads_inside_an_epoch_follow_the_batch_size(
    batch_size: int, shipped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As shipped NumPy keeps its BLAS's threads; ``small_batch_threads=1`` (a tuned profile)
    trains batches below SINGLE_THREAD_BELOW on one."""
    from backends.api import RunOptions

    scenario = scenarios.BASELINE.with_overrides(batch_size=batch_size)
    data = load_dataset().subset(512, 10)
    options = RunOptions() if shipped else RunOptions(backend={"small_batch_threads": "1"})
    backend = NumpyMLP(options)
    backend.build(scenario.recipe(data.n_train), data, scenario_weights(scenario, data))
    pool = blas_threads()
    seen: list[int] = []
    real = backend.engine.train_epoch

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(backend.engine, "train_epoch", spy)
    backend.train_epoch(epoch_order(scenario, data.n_train, 1))
    expected = 1 if batch_size < SINGLE_THREAD_BELOW and not shipped else pool
    assert seen == [expected]
    assert backend.settings()["blas_threads"] == expected
    assert backend.settings()["small_batch_threads"] == ("default" if shipped else "1")
    assert blas_threads() == pool  # restored after the epoch


@pytest.mark.parametrize("bad", [-1, 512])
def test_out_of_range_row_order_is_refused_not_clipped(bad: int) -> None:
    data = load_dataset().subset(512, 10)
    scenario = scenarios.BASELINE
    backend = NumpyMLP()
    backend.build(scenario.recipe(data.n_train), data, scenario_weights(scenario, data))
    order = epoch_order(scenario, data.n_train, 1)
    order[7] = bad
    with pytest.raises(IndexError, match=r"outside \[0, 512\)"):
        backend.train_epoch(order)
