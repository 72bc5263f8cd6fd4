"""``mlpbench compare --self-test``: the regression gate's error rates, measured on this machine.

Runs one cheap cell (default: NumPy × baseline on a slice) ``rounds`` times in pairs — each round
trains it twice with the same seed, in a random order, each in a fresh process: two identical
alternatives, interleaved (an A/A design). Then, for each sample size n, it draws n of the rounds
(every combination, or ``DRAWS`` at random) and asks the gate (``bench.stats.gate_verdict``)
about
  - A vs A: any verdict but "no change detected" is a false alarm;
  - A vs A × 1.10 (the second run's epoch times slowed by 10 %): "slower" is a detection.
The rates are over real timing noise of this machine; the slowdown is applied to measured times
(an injected slowdown of exactly 10 %). Prints a table and returns the rates.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scenarios
from backends.api import RunOptions
from bench import stats
from bench.campaign.executors import Subprocess
from bench.cell.spec import CellSpec
from bench.errors import ConfigError, MlpbenchError

DRAWS = 2000


@dataclass(frozen=True)
class Rates:
    """At ``n`` rounds per side: false alarms and detections of a 10 % slowdown over ``draws``."""

    n: int
    draws: int
    false_alarms: int
    detections: int

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.draws

    @property
    def power(self) -> float:
        return self.detections / self.draws


def measure_pairs(
    backend: str, scenario: str, rounds: int, n_train: int | None, epochs: int, seed: int
) -> list[tuple[float, float]]:
    """(A, A′) median warm-epoch seconds per round, each run in a fresh process, the pair's
    order random per round."""
    order = random.Random(seed)
    base = scenarios.get(scenario).with_overrides(epochs=epochs)
    pairs = []
    executor = Subprocess()
    for r in range(rounds):
        recipe = base.with_overrides(seed=r)
        cells = [CellSpec(backend, recipe, RunOptions(), None, n_train, None, r, i) for i in (0, 1)]
        medians = {}
        for cell in order.sample(cells, 2):
            result = executor.run(cell)
            if result.failed or not result.warm_seconds:
                raise MlpbenchError(f"self-test run failed: {result.failed or 'no warm epoch'}")
            medians[cell.position] = stats.round_median(result.warm_seconds)
        pairs.append((medians[0], medians[1]))
        print(f"  round {r}: {medians[0]:.4f} s, {medians[1]:.4f} s", flush=True)
    return pairs


def rates(
    pairs: list[tuple[float, float]], n: int, factor: float, alpha: float, seed: int
) -> Rates:
    """The gate's false alarms (A/A) and detections (A/A×1.10) over draws of ``n`` rounds."""
    indices = range(len(pairs))
    combos = list(itertools.combinations(indices, n)) if _count(len(pairs), n) <= DRAWS else [
        tuple(random.Random(f"{seed}:{k}").sample(indices, n)) for k in range(DRAWS)
    ]  # fmt: skip
    false_alarms = detections = 0
    for combo in combos:
        base = {i: pairs[i][0] for i in combo}
        same = {i: pairs[i][1] for i in combo}
        slow = {i: pairs[i][1] * stats.SLOWDOWN for i in combo}
        false_alarms += stats.gate_verdict(stats.ratio(same, base, 1 - alpha), factor) != stats.SAME
        detections += stats.gate_verdict(stats.ratio(slow, base, 1 - alpha), factor) == stats.SLOWER
    return Rates(n, len(combos), false_alarms, detections)


def _rounds_needed(aa: stats.Ratio, factor: float, alpha: float) -> str:
    """How many rounds per side the gate needs for 80 % power at the A/A spread measured."""
    if not aa.testable:
        return "the A/A ratios tie in every round: their spread, and so the power, is unknown"
    needed = stats.rounds_for_power(aa, factor, 1 - alpha)
    if needed is None:
        return "at this A/A spread no n up to 200 rounds reaches 80 % power"
    return (
        f"at this A/A spread the gate's power for a 10 % slowdown reaches 80 % from n = {needed} "
        "rounds per side (noncentral t, as compare states it)"
    )


def _count(total: int, n: int) -> int:
    return math.comb(total, n)


def run_self_test(
    backend: str = "numpy",
    scenario: str = "baseline",
    rounds: int = 12,
    n_train: int | None = 8192,
    epochs: int = 4,
    factor: float = 1.05,
    alpha: float = 0.05,
    out: Path | None = None,
    seed: int = 0,
) -> list[Rates]:
    """Measure, print one line per sample size, optionally save the pairs and rates as JSON."""
    if rounds < 3:
        raise ConfigError("--self-test-rounds must be at least 3 (draws of 2 rounds from them)")
    size = f"{n_train} training rows" if n_train else "full data"
    print(
        f"self-test: {backend} × {scenario}, {size}, {epochs} epochs, {rounds} rounds of A/A pairs"
    )
    started = time.perf_counter()
    pairs = measure_pairs(backend, scenario, rounds, n_train, epochs, seed)
    found = [rates(pairs, n, factor, alpha, seed) for n in range(2, rounds + 1)]
    second = {i: b for i, (_, b) in enumerate(pairs)}
    aa = stats.paired_ratio(
        second, {i: a for i, (a, _) in enumerate(pairs)}, 1 - alpha
    )  # its sd_log is the spread of the A/A log ratios
    print(
        f"self-test: A/A over all {rounds} rounds: A′/A = {aa.value:.3f} [{aa.low:.3f}, "
        f"{aa.high:.3f}] ({'holds' if aa.low <= 1 <= aa.high else 'does not hold'} 1)"
    )
    print(
        f"self-test: gate 'slower' when NEW/BASE's {100 * (1 - alpha):g} % interval lies above "
        f"{factor:g}; A/A log-ratio sd {100 * aa.sd_log:.1f} % "
        f"({time.perf_counter() - started:.0f} s)"
    )
    for r in found:
        print(
            f"  n = {r.n:>2} rounds per side: false alarms {100 * r.false_alarm_rate:5.1f} % "
            f"({r.false_alarms}/{r.draws}), power for a 10 % slowdown {100 * r.power:5.1f} %"
        )
    enough = next((r.n for r in found if r.false_alarm_rate <= 0.05 and r.power >= 0.8), None)
    print(
        f"self-test: ≤ 5 % false alarms and ≥ 80 % power from n = {enough} rounds per side"
        if enough
        else "self-test: no sample size here reaches ≤ 5 % false alarms and ≥ 80 % power"
    )
    print(f"self-test: {_rounds_needed(aa, factor, alpha)}")
    if out is not None:
        doc: dict[str, Any] = {
            "backend": backend, "scenario": scenario, "n_train": n_train, "epochs": epochs,
            "factor": factor, "alpha": alpha, "pairs": pairs,
            "rates": [r.__dict__ for r in found], "enough": enough,
        }  # fmt: skip
        out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return found
