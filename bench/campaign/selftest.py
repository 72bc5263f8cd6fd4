"""The gates' error rates, measured on this machine from real runs of one cheap cell.

Two gates, two self-tests, each measuring the noise its gate meets:

- ``mlpbench ab --self-test`` — the A/B gate (``bench.campaign.ab``), which measures both sides
  itself in lockstep, seconds apart. It runs an A/A: the same backend and options on both sides,
  ``rounds`` rounds. For a sample size n it draws n of those rounds and asks the gate about them
  as they are (any verdict but "no change detected" is a false alarm) and with the new side's
  epochs slowed by 10 % (a "slower" verdict is a detection). The default size is ``ab``'s own
  (``DEFAULT_ROUNDS``).
- ``mlpbench compare --self-test`` — the file gate (``mlpbench compare A.json B.json``), which
  judges two runs made minutes or hours apart. It makes ``runs`` separate runs of the same cell,
  each of ``rounds`` rounds (round r: seed r, a fresh process), with a pause of ``gap`` seconds
  between runs, and asks the gate about every pair of runs (the later run as NEW): as they are,
  and with NEW's times slowed by 10 %. The drift between runs is in these rates, as it is in the
  files ``compare`` judges.

Draws of n from the same rounds (or pairs of the same runs) overlap: they are not independent
trials, and the rates say so; the *independent* rates use disjoint blocks of rounds (or disjoint
pairs of runs) only, and are coarse for it. The slowdown is applied to measured times: an
injected change of exactly 10 % over this machine's real noise.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import scenarios
from backends.api import RunOptions
from bench import stats
from bench.campaign.ab import (
    DEFAULT_EPOCHS,
    DEFAULT_N_TRAIN,
    DEFAULT_ROUNDS,
    ABRequest,
    RoundPair,
    judge,
    measure,
)
from bench.campaign.lockstep import Lockstep
from bench.campaign.machine import machine_id
from bench.cell.spec import CellSpec
from bench.errors import ConfigError, MlpbenchError

DRAWS = 2000
#: The false-alarm rate a gate may have at the size it is used at.
MAX_FALSE_ALARMS = 0.05
T = TypeVar("T")


@dataclass(frozen=True)
class Rates:
    """At ``n`` rounds per side: false alarms and detections of a 10 % slowdown over ``draws``
    comparisons; ``independent``: the comparisons share no round (or run)."""

    n: int
    draws: int
    false_alarms: int
    detections: int
    independent: bool = False

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.draws if self.draws else math.nan

    @property
    def power(self) -> float:
        return self.detections / self.draws if self.draws else math.nan

    def line(self) -> str:
        kind = "disjoint, independent" if self.independent else "overlapping draws"
        return (
            f"false alarms {_pct(self.false_alarm_rate)} ({self.false_alarms}/{self.draws}), "
            f"power for a {100 * (stats.SLOWDOWN - 1):.0f} % slowdown {_pct(self.power)} "
            f"({self.detections}/{self.draws}; {kind})"
        )


def _pct(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{100 * x:5.1f} %"


def draws(total: int, n: int, seed: int) -> list[tuple[int, ...]]:
    """Every n-subset of range(total), or ``DRAWS`` random ones when there are more."""
    if math.comb(total, n) <= DRAWS:
        return list(itertools.combinations(range(total), n))
    return [tuple(random.Random(f"{seed}:{k}").sample(range(total), n)) for k in range(DRAWS)]


def blocks(total: int, n: int) -> list[tuple[int, ...]]:
    """Disjoint consecutive n-blocks of range(total)."""
    return [tuple(range(k, k + n)) for k in range(0, total - n + 1, n)]


def count(
    subsets: Sequence[tuple[int, ...]],
    verdict: Callable[[tuple[int, ...], float], str],
    n: int,
    independent: bool,
) -> Rates:
    """The gate's verdicts on each subset as measured (false alarm unless SAME) and slowed down
    by ``stats.SLOWDOWN`` (detected when SLOWER)."""
    false_alarms = sum(verdict(s, 1.0) != stats.SAME for s in subsets)
    detections = sum(verdict(s, stats.SLOWDOWN) == stats.SLOWER for s in subsets)
    return Rates(n, len(subsets), false_alarms, detections, independent)


# --- the A/B gate: lockstep, seconds apart ---------------------------------------------------


def ab_rates(
    pairs: Sequence[RoundPair], n: int, factor: float, alpha: float, seed: int
) -> tuple[Rates, Rates]:
    """(over draws of n rounds, over disjoint blocks of n rounds) of an A/A in lockstep. Each
    round's value is computed once (``RoundPair.log_ratio``); a slowdown of the new side's
    epochs shifts it by log(slowdown), as it shifts every per-epoch log ratio."""
    logs = [p.log_ratio() for p in pairs]

    def verdict(subset: tuple[int, ...], slowdown: float) -> str:
        shifted = {i: math.exp(logs[i] + math.log(slowdown)) for i in subset}
        ratio = stats.paired_ratio(shifted, dict.fromkeys(subset, 1.0), 1 - alpha)
        return stats.gate_verdict(ratio, factor)

    return (
        count(draws(len(pairs), n, seed), verdict, n, independent=False),
        count(blocks(len(pairs), n), verdict, n, independent=True),
    )


def run_ab_self_test(
    backend: str = "numpy",
    scenario: str = "baseline",
    rounds: int = 40,
    size: int = DEFAULT_ROUNDS,
    n_train: int | None = DEFAULT_N_TRAIN,
    epochs: int | None = DEFAULT_EPOCHS,
    factor: float = stats.GATE_FACTOR,
    alpha: float = stats.GATE_ALPHA,
    out: Path | None = None,
    seed: int = 0,
) -> dict[int, tuple[Rates, Rates]]:
    """Measure an A/A of ``rounds`` rounds in lockstep; print and return the rates per n."""
    if rounds < 2 * size:
        raise ConfigError(
            f"--self-test-rounds must be at least {2 * size}: twice the size it tests (--rounds "
            f"{size}), for at least two disjoint draws"
        )
    request = ABRequest(
        backend, scenario, rounds=rounds, n_train=n_train, epochs=epochs, factor=factor,
        alpha=alpha, order_seed=seed,
    )  # fmt: skip
    data = f"{n_train} training rows" if n_train else "full data"
    print(f"ab self-test: {backend} × {scenario}, {data}, an A/A of {rounds} rounds in lockstep")
    started = time.perf_counter()
    measured = measure(request)
    if measured.failures:
        raise MlpbenchError(f"ab self-test: {measured.failures[0]}")
    pairs = measured.pairs
    aa, levels, _ = judge(pairs, factor, alpha)
    print(
        f"ab self-test: A/A over all {rounds} rounds: new/base ×{aa.value:.3f} [{aa.low:.3f}, "
        f"{aa.high:.3f}] ({'holds' if aa.low <= 1 <= aa.high else 'does not hold'} 1); "
        f"per-round log-ratio sd {100 * aa.sd_log:.1f} %, variation dominated by "
        f"{levels.dominant} ({time.perf_counter() - started:.0f} s)"
    )
    found = {n: ab_rates(pairs, n, factor, alpha, seed) for n in range(2, rounds // 2 + 1)}
    # rounds >= 2 * size: the size itself is among them
    _print_rates(found, size, "rounds per side", f"ab's default --rounds {size}")
    if out is not None:
        _save(out, "ab", backend, scenario, n_train, factor, alpha, found, size,
              {"rounds": [p.__dict__ for p in pairs]})  # fmt: skip
    return found


# --- the file gate: separate runs, minutes apart ---------------------------------------------


def measure_runs(
    backend: str,
    scenario: str,
    runs: int,
    rounds: int,
    gap_s: float,
    n_train: int | None,
    epochs: int,
    seed: int,
) -> list[dict[int, float]]:
    """``runs`` separate runs of one cell, ``gap_s`` seconds apart; each run ``rounds`` rounds
    (round r: seed r, in a fresh process). Per run: seed → median warm-epoch seconds."""
    recipe = scenarios.get(scenario).with_overrides(epochs=epochs)
    executor = Lockstep(seed)  # a group of one cell: a fresh process, as mlpbench run trains it
    found = []
    for k in range(runs):
        if k:
            time.sleep(gap_s)
        medians = {}
        for r in range(rounds):
            cell = CellSpec(backend, recipe.with_overrides(seed=r), RunOptions(), None, n_train,
                            None, r, 0)  # fmt: skip
            result = executor.run(cell)
            if result.failed or not result.warm_seconds:
                raise MlpbenchError(f"self-test run failed: {result.failed or 'no warm epoch'}")
            medians[r] = stats.round_median(result.warm_seconds)
        found.append(medians)
        shown = ", ".join(f"{v:.4f}" for v in medians.values())
        print(f"  run {k + 1}/{runs} at {time.strftime('%H:%M:%S')}: {shown} s", flush=True)
    return found


def file_rates(
    runs: Sequence[dict[int, float]], n: int, factor: float, alpha: float
) -> tuple[Rates, Rates]:
    """(over every pair of runs, over disjoint pairs) with the first ``n`` rounds of each run:
    the later run is NEW, the ratio paired by seed as ``mlpbench compare`` pairs it."""

    def verdict(pair: tuple[int, ...], slowdown: float) -> str:
        base, new = (runs[i] for i in pair)
        seeds = sorted(base)[:n]
        ratio = stats.ratio(
            {s: slowdown * new[s] for s in seeds}, {s: base[s] for s in seeds}, 1 - alpha
        )
        return stats.gate_verdict(ratio, factor)

    every = list(itertools.combinations(range(len(runs)), 2))
    disjoint = [(i, i + 1) for i in range(0, len(runs) - 1, 2)]
    return (
        count(every, verdict, n, independent=False),
        count(disjoint, verdict, n, independent=True),
    )


def run_file_self_test(
    backend: str = "numpy",
    scenario: str = "baseline",
    runs: int = 6,
    rounds: int = 5,
    gap_s: float = 60.0,
    n_train: int | None = 8192,
    epochs: int = 4,
    factor: float = stats.GATE_FACTOR,
    alpha: float = stats.GATE_ALPHA,
    out: Path | None = None,
    seed: int = 0,
) -> dict[int, tuple[Rates, Rates]]:
    """Measure ``runs`` separate runs; print and return the file gate's rates per n rounds."""
    if runs < 2 or rounds < 2:
        raise ConfigError("compare --self-test needs at least 2 runs of at least 2 rounds")
    data = f"{n_train} training rows" if n_train else "full data"
    print(
        f"compare self-test: {backend} × {scenario}, {data}, {epochs} epochs: {runs} separate "
        f"runs of {rounds} rounds, {gap_s:g} s apart"
    )
    started = time.perf_counter()
    found_runs = measure_runs(backend, scenario, runs, rounds, gap_s, n_train, epochs, seed)
    spread = stats.paired_ratio(found_runs[-1], found_runs[0])
    print(
        f"compare self-test: last run / first run ×{spread.value:.3f} [{spread.low:.3f}, "
        f"{spread.high:.3f}] ({time.perf_counter() - started:.0f} s)"
    )
    found = {n: file_rates(found_runs, n, factor, alpha) for n in range(2, rounds + 1)}
    _print_rates(found, rounds, "rounds per file", f"{rounds} rounds per file")
    if out is not None:
        measured = {"runs": [{str(k): v for k, v in r.items()} for r in found_runs], "gap_s": gap_s}
        _save(out, "compare", backend, scenario, n_train, factor, alpha, found, rounds, measured)
    return found


# --- output ----------------------------------------------------------------------------------


def _print_rates(found: dict[int, tuple[Rates, Rates]], size: int, unit: str, named: str) -> None:
    for n, (overlapping, independent) in found.items():
        mark = "  ← " + named if n == size else ""
        print(f"  n = {n:>2} {unit}: {overlapping.line()}{mark}")
        if independent.draws:
            print(f"  {'':>{len(str(n)) + 5}}{'':>{len(unit)}}  {independent.line()}")
    goal = [
        n
        for n, (r, _) in found.items()
        if r.false_alarm_rate <= MAX_FALSE_ALARMS and r.power >= stats.TARGET_POWER
    ]
    wanted = (
        f"≤ {100 * MAX_FALSE_ALARMS:g} % false alarms and ≥ {100 * stats.TARGET_POWER:g} % power"
    )
    print(
        f"self-test: {wanted} from n = {goal[0]} {unit}"
        if goal
        else f"self-test: no n here reaches {wanted} ({unit})"
    )


def _save(
    out: Path,
    gate: str,
    backend: str,
    scenario: str,
    n_train: int | None,
    factor: float,
    alpha: float,
    found: dict[int, tuple[Rates, Rates]],
    size: int,
    measured: dict[str, Any],
) -> None:
    doc = {
        "gate": gate, "machine_id": machine_id(), "date": time.strftime("%Y-%m-%d"),
        "backend": backend, "scenario": scenario, "n_train": n_train, "factor": factor,
        "alpha": alpha, "default_size": size,
        "rates": {str(n): [r.__dict__ for r in pair] for n, pair in found.items()},
        **measured,
    }  # fmt: skip
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
