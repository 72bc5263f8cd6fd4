"""Shared fixtures and the pytest-benchmark machine-info hook."""

from __future__ import annotations

import pytest

from bench.data import DataCache, RawMNIST, load_raw

QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 1024, 500, 2


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlpbench")
    group.addoption(
        "--bench-full",
        action="store_true",
        help="benchmark suite: full MNIST and each scenario's own epochs "
        f"(default: a quick variant, {QUICK_TRAIN} training rows, {QUICK_EPOCHS} epochs)",
    )


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add what pytest-benchmark does not record: BLAS and threads, versions, speed env, GPUs."""
    from bench.machine import mlpbench_facts

    machine_info["mlpbench"] = mlpbench_facts()


class BenchData(DataCache):
    """The benchmark suite's data: full MNIST, or the quick slice; converted once per dtype."""

    def __init__(self, raw: RawMNIST, full: bool) -> None:
        super().__init__(raw, *((None, None) if full else (QUICK_TRAIN, QUICK_TEST)))
        self.full = full

    def epochs(self, scenario_epochs: int) -> int:
        return scenario_epochs if self.full else QUICK_EPOCHS


@pytest.fixture(scope="session")
def raw_mnist() -> RawMNIST:
    return load_raw()


@pytest.fixture(scope="session")
def bench_data(request: pytest.FixtureRequest, raw_mnist: RawMNIST) -> BenchData:
    return BenchData(raw_mnist, full=request.config.getoption("--bench-full"))
