"""The scaling section's regime is read at each scenario's OWN batch size and width, as the
results record them — never at the catalogue baseline's batch 32 and width 128.

Synthetic runs of a scenario ``wide`` (batch 64, one hidden layer of 256) with step times built
so the regime changes between the baseline's value and the scenario's own: fixed cost 1 ms per
step plus FLOPs / 45 GFLOP/s, so the fixed cost is over half the step below FLOPs per step of
45 MFLOP, i.e. below x = 45 for the batch sweep (1 MFLOP per row) and below x = 180 for the width
sweep (0.25 MFLOP per unit of width).
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.report.scaling import own_sizes, points_frame, scaling_rows

STEPS = 1000  # training steps per epoch
FIXED_S, RATE = 1e-3, 45e9  # seconds per step, FLOP/s
MACHINES = {"m": {"mlpbench": {"memory_bandwidth_gbs": 20.0}}}
BATCHES = (16, 32, 64, 256)  # the baseline's 32 and the scenario's own 64 both measured
WIDTHS = (64, 128, 256, 1024)  # likewise 128 and 256
OWN = {"batch_size": 64, "hidden": [256]}


def _row(scenario: str, recipe: dict, flops_per_step: float) -> dict:
    step_s = FIXED_S + flops_per_step / RATE
    return {
        "machine_id": "m",
        "scenario": scenario,
        "backend": "numpy",
        "seed": 0,
        "status": "ok",
        "epochs_run": 3,
        "n_train": 60_000,
        "recipe": recipe,
        "steps_per_epoch": STEPS,
        "epoch_gflop": flops_per_step * STEPS / 1e9,
        "median_s_per_epoch": step_s * STEPS,
        "step_bytes": 1e6,  # 50 µs at 20 GB/s: never the nearer ceiling here
        "gflops": 100.0,
        "gemm_peak_pct": 50.0,  # a peak of 200 GFLOP/s
    }


def _point(key: str, value: int, flops_per_step: float) -> dict:
    """A sweep point of ``wide``: its recipe holds the swept value and the scenario's own rest."""
    swept = [value] if key == "hidden" else value
    recipe = {**OWN, key: swept, "sweep": [[key, str(value)]]}
    return _row(f"wide[{key}={value}]", recipe, flops_per_step)


def batch_sweep() -> list[dict]:
    return [_point("batch_size", b, b * 1e6) for b in BATCHES]


def width_sweep() -> list[dict]:
    return [_point("hidden", w, w * 2.5e5) for w in WIDTHS]


def unswept() -> dict:
    return _row("wide", {**OWN, "sweep": []}, 64e6)


def regimes(rows: list[dict]) -> dict[str, pd.Series]:
    found = scaling_rows(points_frame(pd.DataFrame(rows), MACHINES))
    return {r.key: r for r in found.itertuples()}


def test_the_regime_is_read_at_the_scenarios_own_batch_and_width():
    """Two sweeps of one scenario, no unswept run: each sweep's rows carry the scenario's own
    value of the other key, so batch 64 and width 256 are known (at the baseline's 32 and 128
    both sweeps would be overhead-bound)."""
    found = regimes(batch_sweep() + width_sweep())
    assert found["batch_size"].regime == "compute-bound"
    assert found["batch_size"].regime_words.startswith("at batch_size 64,")
    assert found["hidden"].regime == "compute-bound"
    assert found["hidden"].regime_words.startswith("at hidden 256,")
    assert found["batch_size"].fixed_us == pytest.approx(1000, rel=1e-6)


def test_an_unswept_run_of_the_scenario_gives_its_own_value():
    found = regimes([*batch_sweep(), unswept()])
    assert found["batch_size"].regime_words.startswith("at batch_size 64,")


def test_without_the_own_value_the_smallest_point_is_used_and_said():
    found = regimes(batch_sweep())
    assert found["batch_size"].regime == "overhead-bound"
    words = found["batch_size"].regime_words
    assert words.startswith("at batch_size 16 (the smallest swept;") and "own" in words


def test_rows_that_disagree_on_the_own_value_leave_it_unknown():
    other = _row("wide", {**OWN, "batch_size": 128, "sweep": []}, 128e6)
    sizes = own_sizes(pd.DataFrame([unswept(), other, *width_sweep()]))
    assert sizes == {"wide": {"hidden": 256.0}}
    full = _row("wide", {**OWN, "batch_size": None, "sweep": []}, 1e6)
    assert own_sizes(pd.DataFrame([full]))["wide"]["batch_size"] == 60_000  # full batch: n_train
