"""The benchmark suite: every scenario × every backend under pytest-benchmark.

One pytest-benchmark round = one warm training epoch, timed by the same ``Session.train``
(hence the same ``bench.cell.timing.timed`` region) as ``mlpbench run``; epoch 1 (cold) runs
before the rounds and is recorded in ``extra_info`` (``cold_seconds``), as are the history and
settings, through the same ``bench.results.write.extra_info`` as ``mlpbench run``'s JSON. Plain
``pytest`` runs a quick variant (a data slice, 2 epochs) so the suite cannot rot;
``--bench-full`` runs the real thing, and ``--bench-seeds 0-4`` runs every cell once per seed
(``params.seed`` in the JSON; without it, each scenario's own seed):

    pytest tests/test_benchmarks.py --bench-full --bench-seeds 0-4 --benchmark-json=out.json

``scripts/publish-results.sh`` (``tox -e bench-cpu``) publishes it, one run per seed.

A backend that refuses a scenario (``RecipeUnsupported``, e.g. no exact float64) is skipped with
its reason; any other exception from a backend, ``NotImplementedError`` included, fails the test.
"""

from __future__ import annotations

import math

import pytest
from conftest import bench_scenarios

from backends.api import RecipeUnsupported
from bench import registry
from bench.cell.session import Session
from bench.results import write as results


@pytest.fixture
def seed() -> int | None:
    """Without ``--bench-seeds``: None, each scenario's own seed (and no seed in the test id)."""
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With ``--bench-seeds``: one cell per seed (test ids ``seedN-backend-scenario``); the
    backends are every installed one, or those of ``--bench-backends`` in its order."""
    seeds = metafunc.config.getoption("--bench-seeds")
    if seeds and "seed" in metafunc.fixturenames:
        metafunc.parametrize("seed", seeds, ids=[f"seed{s}" for s in seeds])
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize(
            "backend", metafunc.config.getoption("--bench-backends") or registry.names()
        )
    if "scenario" in metafunc.fixturenames:
        metafunc.parametrize("scenario", list(bench_scenarios(metafunc.config)))


def test_train(
    benchmark, bench_data, backend: str, scenario: str, seed: int | None, request
) -> None:
    backend_name, scenario_name = backend, scenario
    reason = registry.unavailable_reason(backend_name)
    if reason is not None:
        pytest.skip(reason)
    base = bench_scenarios(request.config)[scenario_name]
    recipe = base.with_overrides(epochs=bench_data.epochs(base.epochs), seed=seed)
    session = Session(backend_name, recipe, bench_data.get(recipe.dtype))
    try:
        session.build()
    except RecipeUnsupported as err:
        pytest.skip(f"{backend_name} cannot run {scenario_name}: {err}")
    benchmark.group = scenario_name
    if recipe.epochs > 1:
        session.run_epoch()  # the cold epoch, kept out of the rounds
    benchmark.pedantic(
        session.train,
        setup=lambda: ((session.next_order(),), {}),
        teardown=lambda order: session.evaluate(),
        rounds=max(recipe.epochs - len(session.history), 1),
        iterations=1,
        warmup_rounds=0,
    )
    if session.pending:  # --benchmark-disable runs the target once, without teardown
        session.evaluate()
    while len(session.history) < recipe.epochs:
        session.run_epoch()
    result = session.result(complete=True)
    benchmark.extra_info.update(results.extra_info(result))

    assert result.scenario.seed == recipe.seed
    assert [r.epoch for r in result.history] == list(range(1, recipe.epochs + 1))
    assert all(math.isfinite(r.train_loss) and math.isfinite(r.test_loss) for r in result.history)
    assert all(0.0 <= r.test_accuracy <= 1.0 for r in result.history)
