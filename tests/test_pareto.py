"""Accuracy against time (the Pareto view) and the one ratio rule, on synthetic results whose
answer is known by hand: which backends no other beats on both axes, on which clock, and that
the verdicts, the tables and the fastest-backend line quote the same speed ratio."""

from __future__ import annotations

import math

import pytest
from test_tables import doc, entry, save

from bench.report.frame import runs_frame
from bench.report.pareto import TO_TARGET, WHOLE_RUN, front_lines, pareto_frame
from bench.report.questions import questions_table
from bench.report.summary import cells_frame
from bench.report.tables import fastest_text
from bench.report.tta import tta_frame
from bench.results.read import collect


def frames(tmp_path, *entries):
    collection = collect([save(tmp_path, "r.json", doc(*entries))])
    runs = runs_frame(collection.cells, collection.machines)
    cells = cells_frame(runs)
    return runs, cells, tta_frame(runs)


def three(scenario: str, final: dict[str, float], reach: bool = True) -> list[dict]:
    """numpy (1.0 s warm), jax (0.5 s), keras (2.0 s), two seeds; 97.5 % at epoch 2 when
    ``reach``, and ``final`` the last epoch's accuracy."""
    out = []
    for seed in range(2):
        for backend, warm in (("numpy", 1.0), ("jax", 0.5), ("keras", 2.0)):
            second = 0.975 if reach else 0.90
            accuracies = [0.95, second, final[backend]]
            out.append(entry(backend, scenario, [warm, warm], accuracies=accuracies, seed=seed))
    return out


def test_the_front_is_the_backends_no_other_beats_on_both(tmp_path):
    # time to 97 % (epoch 2; epoch 1 counted as a warm one): numpy 2.0 s, jax 1.0 s, keras 4.0 s
    # final accuracy: numpy 98.0, jax 97.5, keras 97.6 → keras is slower and less accurate than
    # numpy: off the front; jax (fastest) and numpy (most accurate) are on it
    final = {"numpy": 0.980, "jax": 0.975, "keras": 0.976}
    runs, cells, times = frames(tmp_path, *three("baseline", final))
    front = pareto_frame(runs, cells, times).set_index("backend")
    assert set(front["clock"]) == {TO_TARGET}
    assert front.loc["numpy", "seconds"] == pytest.approx(2.0)
    assert front.loc["jax", "seconds"] == pytest.approx(1.0)
    assert front.loc["keras", "seconds"] == pytest.approx(4.0)
    assert front.loc["keras", "accuracy_pct"] == pytest.approx(97.6)
    assert list(front.index[front["front"]]) == ["numpy", "jax"]
    assert front_lines(front.reset_index()) == [
        "baseline (time to target): not beaten on both: numpy, jax"
    ]


def test_a_scenario_nobody_finishes_is_placed_on_the_whole_runs_training_time(tmp_path):
    # nobody reaches 97 %: every epoch on the training clock, 3 epochs → 3×warm
    final = {"numpy": 0.90, "jax": 0.91, "keras": 0.89}
    runs, cells, times = frames(tmp_path, *three("report_recipe", final, reach=False))
    front = pareto_frame(runs, cells, times).set_index("backend")
    assert set(front["clock"]) == {WHOLE_RUN}
    assert front["seconds"].to_dict() == pytest.approx({"numpy": 3.0, "jax": 1.5, "keras": 6.0})
    assert list(front.index[front["front"]]) == ["jax"]  # fastest and most accurate


def lockstep(backend: str, epochs: list[float], seed: int) -> dict:
    e = entry(backend, "baseline", epochs, seed=seed)
    e["extra_info"]["design"] = "lockstep"
    return e


def test_the_verdict_the_table_and_the_fastest_line_quote_one_ratio(tmp_path):
    """Lockstep rounds whose epoch-by-epoch ratios differ from the ratio of their medians
    (round 0: ×2, ×2, ×2, ×3.33, ×2.86, medians ×2; round 1: ×2 throughout): the verdict, the
    table and the fastest line all give the rule's value (each round's Hodges–Lehmann location
    of the log ratios: ×2.39 and ×2, geometric mean ×2.19), none the medians' ×2.00."""
    numpy = {0: [1.0] * 5, 1: [1.2, 1.0, 1.1, 0.9, 1.0]}
    jax = {0: [0.5, 0.5, 0.5, 0.3, 0.35], 1: [0.6, 0.5, 0.55, 0.45, 0.5]}
    entries = [
        lockstep(b, side[s], s) for b, side in (("numpy", numpy), ("jax", jax)) for s in (0, 1)
    ]
    runs, cells, _ = frames(tmp_path, *entries)
    row = cells.set_index("backend").loc["jax"]
    assert row["ratio_pairs"] == "epochs in lockstep"
    # round 0's 15 Walsh averages of the log ratios: ln 2 six times, then (ln 2 + ln(1/0.35))/2
    # three times: the 8th, the median; round 1: ln 2
    round0 = math.exp((math.log(2.0) + math.log(1 / 0.35)) / 2)
    assert row["relative_to_numpy"] == pytest.approx(math.sqrt(round0 * 2.0), rel=1e-9)
    asked = questions_table(runs)
    verdict = asked[asked["question"].str.startswith("as fast as")].iloc[0]
    assert verdict["difference"].startswith(f"×{row['relative_to_numpy']:.2f} [")
    assert f"×{row['relative_to_numpy']:.2f}" in fastest_text(cells)


def test_one_lockstep_round_draws_no_verdict_from_its_epochs(tmp_path):
    """One round in lockstep: the table shows the epochs' ratio, but the verdict and the fastest
    line count rounds (one), not epochs, and say one seed cannot tell."""
    entries = [
        lockstep("numpy", [1.0, 1.1, 0.9, 1.0, 1.05], 0),
        lockstep("jax", [0.5, 0.52, 0.47, 0.5, 0.51], 0),
    ]
    runs, cells, _ = frames(tmp_path, *entries)
    asked = questions_table(runs)
    verdict = asked[asked["question"].str.startswith("as fast as")].iloc[0]
    assert verdict["verdict"] == "one seed: cannot tell" and verdict["n"] == 1
    assert "one seed cannot tell it from numpy" in fastest_text(cells)
