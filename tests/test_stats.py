"""The statistics core against known answers: a textbook t table, synthetic samples with a known
ratio and spread, SciPy's own Welch test, and the rules' plain definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench import stats

#: Student-t 97.5 % quantiles, as printed in any t table (two-sided 95 %).
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 19: 2.093}


@pytest.mark.parametrize(("df", "t"), T_TABLE.items())
def test_the_mean_interval_uses_the_t_table(df: int, t: float) -> None:
    n = df + 1
    values = [float(i % 3) for i in range(n)] if n > 2 else [0.0, 1.0]
    sd = float(np.std(values, ddof=1))
    found = stats.mean_ci(values)
    assert found.half_width == pytest.approx(t * sd / math.sqrt(n), rel=2e-4)
    assert found.sd == pytest.approx(sd)


def test_a_known_ratio_and_spread_is_recovered() -> None:
    """Log ratios drawn around ln 1.5 with sd 2 %: the estimate finds 1.5 within its interval and
    the interval's width follows from the spread (1.96·sd/√n for large n)."""
    rng = np.random.default_rng(1)
    n = 400
    slow = {i: 1.0 for i in range(n)}
    fast = {i: math.exp(-math.log(1.5) + rng.normal(0, 0.02)) for i in range(n)}
    found = stats.paired_ratio(slow, fast)
    assert found.low < 1.5 < found.high
    assert found.sd_log == pytest.approx(0.02, rel=0.1)
    assert math.log(found.high / found.low) / 2 == pytest.approx(1.966 * 0.02 / 20, rel=0.1)
    assert stats.relative_half_width(found) < 0.01


def test_a_tie_is_no_interval_and_no_verdict() -> None:
    """The same ratio in every round says nothing of the spread: not testable, no power (the
    gate once called it decisive, with power 1.0)."""
    base = {i: 1.0 for i in range(5)}
    new = {i: 1.5 for i in range(5)}
    found = stats.ratio(new, base)
    assert found.value == pytest.approx(1.5) and found.n == 5
    assert not found.testable and not found.excludes_one
    assert stats.gate_verdict(found, 1.05).startswith("not testable")
    assert math.isnan(stats.power(found, 1.05))
    assert stats.rounds_for_power(found, 1.05) is None
    assert stats.relative_half_width(found) == math.inf


def test_the_unpaired_ratio_is_welchs_interval() -> None:
    a = [1.00, 1.05, 0.98, 1.02]
    b = [1.21, 1.18, 1.25]
    found = stats.ratio({10 + i: v for i, v in enumerate(b)}, dict(enumerate(a)))
    welch = scipy_stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert not found.paired and found.n == 3
    assert found.value == pytest.approx(math.exp(np.mean(np.log(b)) - np.mean(np.log(a))))
    assert (found.low, found.high) == pytest.approx(
        (math.exp(interval.low), math.exp(interval.high))
    )


def test_the_gate_rule() -> None:
    def at(low: float, high: float) -> stats.Ratio:
        return stats.Ratio((low + high) / 2, low, high, 5, 0.05, True)

    assert stats.gate_verdict(at(1.06, 1.20), 1.05) == stats.SLOWER
    assert stats.gate_verdict(at(1.01, 1.20), 1.05) == stats.SAME
    assert stats.gate_verdict(at(0.80, 0.94), 1.05) == stats.FASTER
    assert stats.gate_verdict(stats.Ratio(1.5, math.nan, math.nan, 1, math.nan, True), 1.05) == (
        "not testable (1 round per side)"
    )


def test_power_follows_the_normal_approximation_for_many_rounds() -> None:
    """At large n the noncentral t is the normal: P = Φ((ln 1.10 − ln 1.05)/(sd/√n) − z₀.₉₇₅)."""
    sd, n = 0.05, 60
    r = stats.Ratio(1.1, 1.0, 1.2, n, sd, True)
    shift = (math.log(1.10) - math.log(1.05)) / (sd / math.sqrt(n))
    expected = scipy_stats.norm.cdf(shift - scipy_stats.norm.ppf(0.975))
    assert stats.power(r, 1.05) == pytest.approx(expected, abs=0.01)
    needed = stats.rounds_for_power(r, 1.05)
    assert (
        needed is not None
        and stats.power(stats.Ratio(1.1, 1.0, 1.2, needed, sd, True), 1.05) >= 0.8
    )
    assert stats.power(stats.Ratio(1.1, 1.0, 1.2, needed - 1, sd, True), 1.05) < 0.8


def test_familywise_confidence_is_bonferroni() -> None:
    assert stats.familywise(0.95, 1) == pytest.approx(0.95)
    assert stats.familywise(0.95, 5) == pytest.approx(0.99)
    wide = stats.paired_ratio({0: 1.0, 1: 1.1, 2: 0.9}, {0: 0.5, 1: 0.6, 2: 0.5}, 0.99)
    narrow = stats.paired_ratio({0: 1.0, 1: 1.1, 2: 0.9}, {0: 0.5, 1: 0.6, 2: 0.5}, 0.95)
    assert wide.low < narrow.low and wide.high > narrow.high and wide.value == narrow.value


def test_the_warm_epoch_rule() -> None:
    assert stats.warm_epochs([3.0, 1.0, 1.2]) == [1.0, 1.2]
    assert stats.timed_sample([3.0, 1.0, 1.2]) == ([1.0, 1.2], "warm epochs 2..3")
    sample, label = stats.timed_sample([3.0])
    assert sample == [3.0] and not stats.is_warm_sample(label)
    assert stats.is_warm_sample("warm epochs 2..5") and not stats.is_warm_sample(None)
    assert stats.has_warm_epochs(2) and not stats.has_warm_epochs(1)
    assert stats.round_median([1.0, 5.0, 2.0]) == 2.0 and math.isnan(stats.round_median([]))


def test_the_reference_rule() -> None:
    assert stats.reference_of("torch", {"numpy", "torch"}) == "numpy"
    assert stats.reference_of("torch (tuned)", {"numpy", "numpy (tuned)"}) == "numpy (tuned)"
    assert stats.reference_of("torch (tuned)", {"numpy"}) == "numpy"


def nested(rounds: int, epochs: int, between: float, within: float, seed: int = 0):
    """Per-round epoch times of two backends whose log ratio is ln 2 + round effect + noise."""
    rng = np.random.default_rng(seed)
    fast, slow = {}, {}
    for r in range(rounds):
        shift = rng.normal(0, between)
        base = rng.uniform(0.5, 1.5, epochs)  # the machine's drift: both sides meet it
        fast[r] = list(base)
        slow[r] = list(base * np.exp(math.log(2) + shift + rng.normal(0, within, epochs)))
    return slow, fast


def test_lockstep_pairs_epochs_and_recovers_both_levels() -> None:
    slow, fast = nested(rounds=200, epochs=6, between=0.05, within=0.02)
    ratio, levels = stats.lockstep_ratio(slow, fast)
    assert ratio.low < 2 < ratio.high and ratio.n == 200
    assert levels.within_sd == pytest.approx(0.02, rel=0.1)
    assert levels.between_sd == pytest.approx(0.05, rel=0.2)
    assert levels.dominant == "processes"
    _, quiet = stats.lockstep_ratio(*nested(rounds=200, epochs=6, between=0.0, within=0.05))
    assert quiet.dominant == "epochs"


def test_lockstep_cancels_drift_that_round_medians_keep() -> None:
    """The machine's drift (both sides' epochs move together) cancels epoch by epoch; ratios of
    round medians, each side's median taken over its own epochs, keep it."""
    slow, fast = nested(rounds=5, epochs=6, between=0.0, within=0.01, seed=3)
    paired, _ = stats.lockstep_ratio(slow, fast)
    medians = stats.paired_ratio(
        {r: float(np.median(v)) for r, v in slow.items()},
        {r: float(np.median(v)) for r, v in fast.items()},
    )
    assert stats.relative_half_width(paired) < stats.relative_half_width(medians)


def test_a_rounds_value_is_the_hodges_lehmann_location_of_its_epochs() -> None:
    """Oracle by hand: [1, 2, 3] has pairwise means 1, 1.5, 2, 2, 2.5, 3 (median 2); one wild
    epoch among four moves it not at all (0, 0, 0, 10: six of the ten means are 0)."""
    assert stats.hodges_lehmann([1.0, 2.0, 3.0]) == 2.0
    assert stats.hodges_lehmann([0.0, 0.0, 0.0, 10.0]) == 0.0
    stalled = stats.round_log_ratio([1.0, 1.0, 1.0, 5.0], [0.5, 0.5, 0.5, 0.5])
    assert stalled == pytest.approx(math.log(2))
    assert math.isnan(stats.round_log_ratio([], [1.0]))


def test_one_lockstep_round_is_judged_on_its_epochs() -> None:
    slow, fast = nested(rounds=1, epochs=8, between=0.0, within=0.03)
    ratio, levels = stats.lockstep_ratio(slow, fast)
    logs = np.log(np.array(slow[0]) / np.array(fast[0]))
    expected = 2.365 * logs.std(ddof=1) / math.sqrt(8)  # t(0.975, 7) from the table
    assert math.log(ratio.high / ratio.low) / 2 == pytest.approx(expected, rel=1e-3)
    assert levels.dominant == "processes (not measured)" and ratio.n == 8
