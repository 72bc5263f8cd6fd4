"""The questions section and the gap ladder of results.md, on hand-built results whose answers
are worked out by hand (t(0.975, 4) = 2.776)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tables import doc, entry, save, table_rows

from bench.report.outputs import write_tables
from bench.report.questions import accuracy_verdict
from bench.stats import paired_difference


def result(backend, scenario, seed, accuracies, speed=1.0, base=None, ladder=None):
    """An entry whose epochs reach ``accuracies`` (fractions), whose warm epochs alternate
    ``speed`` and 1.01·``speed`` seconds (median 1.005·speed), and whose recipe names its base
    scenario and ladder rung as the writer records them."""
    warm = [speed * (1 + 0.01 * (i % 2)) for i in range(len(accuracies) - 1)]
    e = entry(backend, scenario, warm, accuracies=list(accuracies), seed=seed)
    e["extra_info"]["scenario"] = {"name": scenario, "base": base, "ladder": ladder, "seed": seed}
    return e


def markdown(tmp_path: Path, *entries) -> str:
    return write_tables([save(tmp_path, "r.json", doc(*entries))], tmp_path / "out").markdown


def questions(md: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = table_rows(md, "### Questions")
    return {(q, r["backend"]): r for q, r in rows.items()}


BASE_FINAL = [0.970, 0.972, 0.968, 0.971, 0.969]


def test_a_change_is_compared_with_its_base_at_equal_epochs(tmp_path: Path) -> None:
    entries = []
    for seed, final in enumerate(BASE_FINAL):
        entries.append(result("numpy", "baseline", seed, [0.9, 0.93, 0.95, 0.96, final]))
        at5 = final + [0.004, 0.005, 0.006, 0.005, 0.005][seed]  # +0.50 pt, sd 0.0707 pt
        entries.append(result("numpy", "he_init", seed, [0.9] * 4 + [at5] + [0.999] * 5,
                              base="baseline"))  # fmt: skip
        same = final + [0.003, -0.003, 0.001, -0.001, 0.0][seed]  # mean 0
        entries.append(result("numpy", "rmsprop", seed, [0.9] * 4 + [same] + [0.5] * 5,
                              base="baseline"))  # fmt: skip
    rows = questions(markdown(tmp_path, *entries))
    he = rows["does he_init beat baseline? (test accuracy after 5 epochs)", "numpy"]
    assert he["n"] == "5"
    assert he["verdict"] == "better by 0.50 ± 0.09 pt"  # 2.776 · 0.0707 / √5 = 0.088
    rms = rows["does rmsprop beat baseline? (test accuracy after 5 epochs)", "numpy"]
    assert rms["verdict"] == "no difference detected at n = 5"  # epoch 10's 50 % is not used


def test_backends_against_numpy_paired_by_seed(tmp_path: Path) -> None:
    entries = []
    for seed, final in enumerate(BASE_FINAL):
        entries.append(result("numpy", "baseline", seed, [0.9] * 4 + [final], speed=1.0))
        torch_speed = 0.5 * (1 + 0.002 * (seed - 2))  # ×2.00 give or take 0.4 %
        entries.append(result("torch", "baseline", seed, [0.9] * 4 + [final], speed=torch_speed))
    rows = questions(markdown(tmp_path, *entries))
    accuracy = rows["same accuracy as numpy on baseline?", "torch"]
    assert accuracy["verdict"] == "identical on all 5 seeds"  # same accuracies on every seed
    speed = rows["as fast as numpy on baseline? (numpy's time / this)", "torch"]
    assert speed["verdict"] == "faster than numpy: ×2.00"  # medians 1.005 vs 0.5025


def test_one_seed_cannot_tell(tmp_path: Path) -> None:
    md = markdown(
        tmp_path,
        result("numpy", "baseline", 0, [0.9] * 5),
        result("numpy", "dropout", 0, [0.95] * 10, base="baseline"),
    )
    assert (
        questions(md)["does dropout beat baseline? (test accuracy after 5 epochs)", "numpy"][
            "verdict"
        ]
        == "one seed: cannot tell"
    )


def test_a_tie_on_every_seed_is_no_verdict(tmp_path: Path) -> None:
    """Accuracies move in steps of one test image, so two seeds can give the very same
    difference: a zero-width interval, which must not read as a certain difference."""
    md = markdown(
        tmp_path,
        *[result("numpy", "baseline", s, [0.90 + s / 100] * 5) for s in (0, 1)],
        *[result("numpy", "dropout", s, [0.9002 + s / 100] * 10, base="baseline") for s in (0, 1)],
    )
    row = questions(md)["does dropout beat baseline? (test accuracy after 5 epochs)", "numpy"]
    assert (
        row["verdict"] == "the same difference on all 2 seeds: its spread is unknown, cannot tell"
    )
    # float64 runs that agree exactly on every seed: the one tie that is an answer
    assert accuracy_verdict(paired_difference({0: 97.5, 1: 97.7}, {0: 97.5, 1: 97.7})) == (
        "identical on all 2 seeds"
    )


def test_gap_ladder_gains_and_shares(tmp_path: Path) -> None:
    entries = []
    for seed in range(3):
        for rung, accuracy in enumerate([0.30, 0.60, 0.90]):
            name = ["report_recipe", "gap_1_init", "baseline"][rung]
            entries.append(result("numpy", name, seed, [0.1, accuracy + 0.01 * (seed - 1)],
                                  ladder=rung))  # fmt: skip
    for seed in range(3):  # torch ran only the ladder's ends: no ladder of its own
        entries += [result("torch", "report_recipe", seed, [0.1, 0.3], ladder=0)]
        entries += [result("torch", "baseline", seed, [0.1, 0.9], ladder=2)]
    rows = table_rows(markdown(tmp_path, *entries), "### The report's gap, factor by factor")
    assert not any(column.startswith("torch") for column in rows["0. report_recipe"])
    assert list(rows) == ["0. report_recipe", "1. gap_1_init", "2. baseline"]
    assert rows["1. gap_1_init"]["numpy gain pt"] == "+30.00"
    assert rows["2. baseline"]["numpy share"] == "50 %"
    assert rows["0. report_recipe"]["numpy %"] == "30.00 ± 2.48"  # 4.303 · 1 / √3


def test_no_questions_or_ladder_without_what_they_need(tmp_path: Path) -> None:
    md = markdown(tmp_path, entry("numpy", "baseline", [1.0]))
    assert "### Questions" not in md and "factor by factor" not in md


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables only (plots are tested in test_tables)."""
    from bench.report import outputs

    monkeypatch.setattr(outputs, "_plots", lambda *args: [])
