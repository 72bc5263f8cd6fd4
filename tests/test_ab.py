"""``mlpbench ab``: the A/B gate measures both sides itself, in lockstep, and its self-tests.

Oracles: a planted slowdown in a real worker (an environment whose Python slows NumPy's epochs
twofold: its ``--new-python`` is a wrapper that plants it), the interval recomputed by hand from
the per-epoch log ratios (Hodges–Lehmann per round, t over rounds), and synthetic rounds of
known noise."""

from __future__ import annotations

import json
import math
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_mlpbench
from scipy import stats as scipy_stats

from bench import stats
from bench.campaign.ab import RoundPair, judge
from bench.campaign.selftest import ab_rates, file_rates, run_ab_self_test, run_file_self_test

SMALL = ["-b", "numpy", "--n-train", "2048", "--n-test", "200", "--epochs", "4"]

#: A sitecustomize that makes NumPy's training epochs twice as slow: the worker's timed region
#: (``train_epoch``) sleeps as long again as the epoch took.
SLOWER = """
import time
import backends.numpy_mlp as m

_train = m.NumpyMLP.train_epoch

def train_epoch(self, order):
    start = time.perf_counter()
    out = _train(self, order)
    time.sleep(time.perf_counter() - start)
    return out

m.NumpyMLP.train_epoch = train_epoch
"""


def _python_with(tmp_path: Path, sitecustomize: str) -> str:
    """An executable that runs this Python with ``sitecustomize`` loaded first."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(sitecustomize, encoding="utf-8")
    wrapper = tmp_path / "python"
    path = f'PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}"'
    wrapper.write_text(f'#!/bin/sh\n{path} exec "{sys.executable}" "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def test_a_planted_slowdown_in_another_environment_exits_1_and_says_slower(tmp_path):
    slow = _python_with(tmp_path, SLOWER)
    out = tmp_path / "ab.json"
    done = run_mlpbench(
        ["ab", "-b", "numpy", "--n-train", "8192", "--n-test", "200", "--epochs", "4",
         "--rounds", "4", "--new-python", slow, "--out", str(out)]
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("ab: numpy × baseline: new/base ×") and last.endswith("— slower")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["verdict"] == "slower" and doc["new"]["python"] == slow
    assert 1.6 < doc["ratio"]["value"] < 2.4
    assert len(doc["rounds"]) == 4 and all(len(r["new"]) == 3 for r in doc["rounds"])


def test_the_interval_is_the_rounds_log_ratios_with_a_t_interval():
    """Recomputed by hand: per round the Hodges–Lehmann location of the per-epoch log ratios
    (the median of their pairwise means), then a t interval over rounds."""
    rng = np.random.default_rng(3)
    pairs = []
    for r in range(5):
        base = list(np.exp(rng.normal(0, 0.05, 4)))
        new = list(1.2 * np.array(base) * np.exp(rng.normal(0, 0.02, 4)))
        pairs.append(RoundPair(r, base, new, 0.97, 0.97))
    ratio, _, verdict = judge(pairs, factor=1.05, alpha=0.05)

    def hodges_lehmann(x: np.ndarray) -> float:
        i, j = np.triu_indices(len(x))
        return float(np.median((x[i] + x[j]) / 2))

    per_round = [hodges_lehmann(np.log(np.array(p.new) / np.array(p.base))) for p in pairs]
    mean, se = np.mean(per_round), np.std(per_round, ddof=1) / math.sqrt(5)
    half = scipy_stats.t.ppf(0.975, 4) * se
    assert ratio.value == pytest.approx(math.exp(mean), rel=1e-9)
    assert (ratio.low, ratio.high) == pytest.approx((math.exp(mean - half), math.exp(mean + half)))
    assert verdict == stats.SLOWER


def test_ab_refuses_two_identical_sides_and_a_python_without_mlpbench(tmp_path):
    done = run_mlpbench(["ab", *SMALL])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlpbench: error: ab: base and new are the same: give --new-option or --new-python "
        "(an A/A is mlpbench ab --self-test)"
    ]
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    broken.chmod(0o755)
    done = run_mlpbench(["ab", *SMALL, "--new-python", str(broken)])
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot import mlpbench or read this version's cells: install this mlpbench" in (
        done.stderr
    )
    done = run_mlpbench(["ab", *SMALL, "--new-option", "numpy.no_such=1"])
    assert done.returncode == 2 and "no_such" in done.stderr


#: A sitecustomize whose NumPy backend fails to build in round 1 (seed 1): a side that dies.
FAILS_IN_ROUND_1 = """
import backends.numpy_mlp as m

_build = m.NumpyMLP.build

def build(self, recipe, data, init_weights):
    if recipe.seed == 1:
        raise RuntimeError("planted failure")
    return _build(self, recipe, data, init_weights)

m.NumpyMLP.build = build
"""


def test_a_side_that_fails_exits_1_and_keeps_the_rounds_that_finished(tmp_path):
    broken = _python_with(tmp_path, FAILS_IN_ROUND_1)
    out = tmp_path / "ab.json"
    done = run_mlpbench(
        ["ab", *SMALL, "--rounds", "3", "--new-python", broken, "--out", str(out)]
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(ln.startswith("ab: failed: new side, round 1: ") for ln in lines)
    assert lines[-1].endswith("(1 side(s) failed; judged on 1 rounds)")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["round"] for r in doc["rounds"]] == [0]  # round 2 never started
    assert len(doc["failures"]) == 1 and "planted failure" in doc["failures"][0]


def test_the_self_test_refuses_a_size_it_would_not_measure_and_flags_it_ignores():
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 20"):
        run_ab_self_test(rounds=15, size=10)
    done = run_mlpbench(["ab", "-b", "numpy", "--self-test", "--new-option", "numpy.x=1"])
    assert done.returncode == 2 and "leave out --new-option" in done.stderr


def _rounds(sd: float, n: int, seed: int) -> list[RoundPair]:
    rng = np.random.default_rng(seed)
    return [
        RoundPair(r, [1.0] * 3, list(np.exp(rng.normal(0, sd) + rng.normal(0, sd / 4, 3))), 1, 1)
        for r in range(n)
    ]


def test_the_ab_rates_follow_the_noise_of_synthetic_rounds():
    """Rounds with 1 % noise: no false alarm, every 10 % slowdown seen at 4 rounds; with 20 %
    noise the gate rarely sees it. The disjoint blocks are independent: 24 // 4 of them."""
    quiet, blocks = ab_rates(_rounds(0.01, 24, 1), 4, factor=1.05, alpha=0.05, seed=0)
    assert quiet.false_alarm_rate == 0 and quiet.power == 1
    assert blocks.independent and blocks.draws == 6 and blocks.detections == 6
    noisy, _ = ab_rates(_rounds(0.2, 24, 2), 4, factor=1.05, alpha=0.05, seed=0)
    assert noisy.power < 0.3 and noisy.false_alarm_rate <= 0.1


def test_a_slowdown_moves_the_ratio_and_its_interval_by_exactly_its_factor():
    """What the self-test's rates rely on: slowing every epoch of the new side by 10 % shifts
    each round's value, and so the ratio and both ends of its interval, by × 1.10."""
    pairs = _rounds(0.05, 6, 9)
    plain, _, _ = judge(pairs, factor=1.05, alpha=0.05)
    slowed, _, _ = judge(pairs, factor=1.05, alpha=0.05, slowdown=1.10)
    for a, b in ((plain.value, slowed.value), (plain.low, slowed.low), (plain.high, slowed.high)):
        assert b == pytest.approx(1.10 * a, rel=1e-12)


def test_the_file_rates_count_the_drift_between_runs():
    """Separate runs whose speed drifts 10 % from one run to the next: the file gate sees a
    change between most pairs of runs though nothing changed (the drift the A/B gate avoids);
    without drift it raises none."""
    rng = np.random.default_rng(5)

    def runs(drift: float) -> list[dict[int, float]]:
        return [
            {s: float((1 + drift) ** k * np.exp(rng.normal(0, 0.005))) for s in range(5)}
            for k in range(6)
        ]

    steady, disjoint = file_rates(runs(0.0), 5, factor=1.05, alpha=0.05)
    assert steady.draws == 15 and steady.false_alarm_rate == 0 and steady.power == 1
    assert disjoint.independent and disjoint.draws == 3
    drifting, _ = file_rates(runs(0.10), 5, factor=1.05, alpha=0.05)
    assert drifting.false_alarm_rate == 1


def test_both_self_tests_run_for_real_and_count_their_trials(capsys):
    found = run_ab_self_test(rounds=4, size=2, n_train=1024, epochs=3)
    assert sorted(found) == [2]
    overlapping, independent = found[2]
    assert overlapping.draws == math.comb(4, 2) and independent.draws == 2
    assert "← ab's default --rounds 2" in capsys.readouterr().out
    found = run_file_self_test(runs=3, rounds=2, gap_s=0, n_train=1024, epochs=3)
    overlapping, independent = found[2]
    assert overlapping.draws == 3 and independent.draws == 1  # pairs of 3 runs; (0, 1) alone


def test_the_cli_ab_self_test_writes_its_rates(tmp_path):
    out = tmp_path / "st.json"
    done = run_mlpbench(
        ["ab", "-b", "numpy", "--self-test", "--self-test-rounds", "4", "--rounds", "2",
         "--n-train", "1024", "--epochs", "3", "--out", str(out)]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ab self-test: A/A over all 4 rounds" in done.stdout
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["gate"] == "ab" and doc["default_size"] == 2 and len(doc["rounds"]) == 4
    assert set(doc["rates"]) == {"2"}
