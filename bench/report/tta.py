"""Time to accuracy: how long a run trained until its test accuracy first reached a target.

The rules are the anchors' (MLPerf Training, AlgoPerf, DAWNBench):

- **The first passing evaluation**: the training time up to the first evaluation whose test
  accuracy is at least the target; no interpolation between evaluations.
- **One cadence for every backend, in training samples**: the harness evaluates after every
  epoch (``n_train`` samples), untimed, on every backend alike, so the evaluation is the epoch
  (an ``--eval-every`` finer than an epoch is not built yet: the epoch is the unit).
- **Evaluation untimed** (AlgoPerf): only the epochs' timed training passes count.
- **Two clocks, each labelled.** *Training* (MLPerf: initialization untimed) counts the timed
  epochs up to the passing evaluation, the first epoch as a warm one (the run's median warm
  epoch stands in for it, so a framework's first-call compilation is left out). *With start-up*
  (AlgoPerf counts JIT compilation) counts the build (model construction, optimizer, the
  backend's ahead-of-time compilation where it has one) and every epoch as timed, the cold first
  epoch with its compilation.
- **Not reached**: ``reached`` is False, with the epochs run and the best accuracy seen — AlgoPerf
  scores such a run as infinite; the tables say "not reached in N epochs (best x %)".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.stats import COLD_EPOCHS, warm_epochs


@dataclass(frozen=True)
class TimeToAccuracy:
    """One run's time to ``target`` (a fraction): the epoch whose evaluation first reached it,
    seconds on both clocks (NaN when not reached), the best test accuracy seen (a fraction) and
    the epochs run."""

    target: float
    epoch: int | None
    training_s: float
    with_startup_s: float
    best: float
    epochs_run: int

    @property
    def reached(self) -> bool:
        return self.epoch is not None

    def text(self) -> str:
        """ "12.3 s (epoch 3)" or "not reached in 50 epochs (best 33.69 %)"."""
        if self.reached:
            return f"{self.training_s:.3g} s (epoch {self.epoch})"
        return f"not reached in {self.epochs_run} epochs (best {100 * self.best:.2f} %)"


def time_to_accuracy(
    history: Sequence[Mapping[str, Any]], target: float, build_s: float | None = None
) -> TimeToAccuracy:
    """``history``: the run's epochs in order (``seconds``: the timed training pass,
    ``test_accuracy``: a fraction, evaluated after the epoch); ``build_s``: seconds to build
    before the first epoch (None: not recorded, counted as 0)."""
    seconds = [float(h["seconds"]) for h in history]
    accuracies = [float(h["test_accuracy"]) for h in history]
    best = max(accuracies, default=math.nan)
    passing = next((i for i, a in enumerate(accuracies) if a >= target), None)
    if passing is None:
        return TimeToAccuracy(target, None, math.nan, math.nan, best, len(history))
    warm = warm_epochs(seconds)
    stand_in = statistics.median(warm) if warm else seconds[0]
    training = [stand_in if i < COLD_EPOCHS else s for i, s in enumerate(seconds)]
    counted = passing + 1
    return TimeToAccuracy(
        target,
        counted,
        sum(training[:counted]),
        (build_s or 0.0) + sum(seconds[:counted]),
        best,
        len(history),
    )
