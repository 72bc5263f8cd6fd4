"""Time to accuracy: how long a run trained until its test accuracy first reached a target.

The rules are the anchors' (MLPerf Training, AlgoPerf, DAWNBench):

- **The first passing evaluation**: the training time up to the first evaluation whose test
  accuracy is at least the target; no interpolation between evaluations.
- **One cadence for every backend, in training samples**: the harness evaluates after every
  epoch (``n_train`` samples), untimed, on every backend alike; with ``mlpbench run
  --eval-every N`` also every N samples inside the epoch (whole batches), on every backend that
  can train an epoch in slices as it trains it whole (NumPy, CuPy, PyTorch: the epoch is a loop
  of steps). Keras (``model.fit`` per call) and JAX (its epoch compiled for its length) keep
  the epoch as their unit, and their settings say so.
- **Evaluation untimed** (AlgoPerf): only the timed training passes count; inside an epoch the
  clock stops for each evaluation.
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

import pandas as pd

from bench.report.formatting import ratio_text, to_markdown
from bench.report.frame import references, sort_cells
from bench.stats import (
    COLD_EPOCHS,
    TARGET_ACCURACY,
    mean_ci,
    paired_ratio,
    round_median,
    warm_epochs,
)


@dataclass(frozen=True)
class TimeToAccuracy:
    """One run's time to ``target`` (a fraction): ``epoch``, the epochs trained when an
    evaluation first reached it (3.0: at the end of epoch 3; 2.5: half-way through epoch 3),
    seconds on both clocks (NaN when not reached), the best test accuracy seen (a fraction) and
    the epochs run."""

    target: float
    epoch: float | None
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
            return f"{self.training_s:.3g} s (epoch {self.epoch:g})"
        return f"not reached in {self.epochs_run} epochs (best {100 * self.best:.2f} %)"


def training_clock(seconds: Sequence[float]) -> list[float]:
    """Each epoch's seconds on the *training* clock: the timed epochs, the cold first one
    replaced by the run's median warm epoch (its own time when it has no warm epoch)."""
    warm = warm_epochs(seconds)
    stand_in = round_median(warm) if warm else (seconds[0] if seconds else math.nan)
    return [stand_in if i < COLD_EPOCHS else float(s) for i, s in enumerate(seconds)]


def time_to_accuracy(
    history: Sequence[Mapping[str, Any]],
    target: float,
    build_s: float | None = None,
    inside: bool = True,
) -> TimeToAccuracy:
    """``history``: the run's epochs in order (``seconds``: the timed training pass,
    ``test_accuracy``: a fraction, evaluated after the epoch; ``evaluations``, where the run
    evaluated inside its epochs: each with its ``fraction`` of the epoch, ``seconds`` of timed
    training so far in the epoch and ``test_accuracy``); ``build_s``: seconds to build before
    the first epoch (None: not recorded, counted as 0); ``inside``: count the evaluations inside
    epochs (False: the epoch cadence, as for runs compared with backends that have none). The
    first evaluation at or above the target counts: on the training clock, the epochs before it
    plus its seconds so far in its own epoch (inside the cold epoch, its fraction of the
    samples times the stand-in: the cold epoch's compilation sits in its first slice); with
    start-up, the build, the epochs before it and its own seconds as timed."""
    seconds = [float(h["seconds"]) for h in history]
    training = training_clock(seconds)
    points = [(i, p) for i, h in enumerate(history) for p in _evaluations(h, inside)]
    best = max((float(p["test_accuracy"]) for _, p in points), default=math.nan)
    passing = next(((i, p) for i, p in points if float(p["test_accuracy"]) >= target), None)
    if passing is None:
        return TimeToAccuracy(target, None, math.nan, math.nan, best, len(history))
    i, point = passing
    into, fraction = float(point["seconds"]), float(point["fraction"])
    own = training[i] * fraction if i < COLD_EPOCHS else into
    return TimeToAccuracy(
        target,
        i + fraction,
        sum(training[:i]) + own,
        (build_s or 0.0) + sum(seconds[:i]) + into,
        best,
        len(history),
    )


def _evaluations(epoch: Mapping[str, Any], inside: bool) -> list[Mapping[str, Any]]:
    """An epoch's evaluations in order: those inside it (when ``inside``), then its end."""
    end = {"fraction": 1.0, "seconds": epoch["seconds"], "test_accuracy": epoch["test_accuracy"]}
    return [*((epoch.get("evaluations") or ()) if inside else ()), end]


def evaluates_inside(history: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a run evaluated inside its epochs (``--eval-every`` on a backend that can)."""
    return any(h.get("evaluations") for h in history)


# --- per cell, over seeds --------------------------------------------------------------------

KEYS = ["machine_id", "scenario", "backend"]
COLUMNS = [
    *KEYS,
    "target_pct",
    "seeds",
    "reached_seeds",
    "training_s",
    "training_ci95_low",
    "training_ci95_high",
    "with_startup_s",
    "with_startup_ci95_low",
    "with_startup_ci95_high",
    "epochs_to_target",
    "best_pct",
    "relative_to_numpy",
    "ratio_ci95_low",
    "ratio_ci95_high",
    "text",
]


def target_of(recipe: Mapping[str, Any], override: float | None) -> float:
    """The run's target: ``override`` (``--target-accuracy``), else its recipe's
    ``target_accuracy``, else (a result made before scenarios had one) ``TARGET_ACCURACY``."""
    if override is not None:
        return override
    if recipe.get("target_accuracy") is not None:
        return float(recipe["target_accuracy"])
    return TARGET_ACCURACY


def run_times(
    runs: pd.DataFrame, override: float | None = None
) -> dict[tuple, dict[int, TimeToAccuracy]]:
    """(machine, scenario, backend) → seed → the run's time to accuracy, for runs that finished
    (complete histories; skipped and failed runs have none), at one cadence per machine ×
    scenario (inside epochs only where every run there evaluated inside them)."""
    found: dict[tuple, dict[int, TimeToAccuracy]] = {}
    ok = runs[runs["status"] == "ok"]
    # one cadence per machine × scenario: evaluations inside epochs count only where every run
    # compared there has them (else a backend that evaluates per epoch would lose by cadence)
    inside = {
        key: all(isinstance(h, list) and evaluates_inside(h) for h in group["history"])
        for key, group in ok.groupby(["machine_id", "scenario"], sort=False)
    }
    for row in ok.itertuples(index=False):
        if not row.history:
            continue
        target = target_of(row.recipe, override)
        build = None if pd.isna(row.build_s) else float(row.build_s)
        seed = -1 if pd.isna(row.seed) else int(row.seed)
        key = (row.machine_id, row.scenario, row.backend)
        cadence = inside[(row.machine_id, row.scenario)]
        found.setdefault(key, {})[seed] = time_to_accuracy(row.history, target, build, cadence)
    return found


def tta_frame(runs: pd.DataFrame, override: float | None = None) -> pd.DataFrame:
    """One row per machine × scenario × backend: the time to its target over seeds (mean with a
    t interval, only when every seed reached it), epochs to the target, the best accuracy, and
    the reference row's training time / this one's, paired by seed over the seeds where both
    reached it (``stats.paired_ratio``; the reference as ``frame.references`` chooses it)."""
    times = run_times(runs, override)
    chosen = references(runs)
    rows = []
    for key, by_seed in times.items():
        reached = {s: t for s, t in by_seed.items() if t.reached}
        every = len(reached) == len(by_seed)
        training = mean_ci([t.training_s for t in reached.values()]) if every else None
        startup = mean_ci([t.with_startup_s for t in reached.values()]) if every else None
        reference = times.get((*key[:2], chosen.get(key, key[2])), {})
        common = [s for s in reached if s in reference and reference[s].reached]
        ratio = (
            paired_ratio(
                {s: reference[s].training_s for s in common},
                {s: reached[s].training_s for s in common},
            )
            if len(common) >= 1
            else None
        )
        first = next(iter(by_seed.values()))
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "target_pct": 100 * first.target,
                "seeds": len(by_seed),
                "reached_seeds": len(reached),
                "training_s": training.mean if training else math.nan,
                "training_ci95_low": training.low if training else math.nan,
                "training_ci95_high": training.high if training else math.nan,
                "with_startup_s": startup.mean if startup else math.nan,
                "with_startup_ci95_low": startup.low if startup else math.nan,
                "with_startup_ci95_high": startup.high if startup else math.nan,
                "epochs_to_target": (
                    statistics.median(t.epoch for t in reached.values() if t.epoch is not None)
                    if reached
                    else math.nan
                ),
                "best_pct": 100 * max(t.best for t in by_seed.values()),
                "relative_to_numpy": ratio.value if ratio else math.nan,
                "ratio_ci95_low": ratio.low if ratio else math.nan,
                "ratio_ci95_high": ratio.high if ratio else math.nan,
                "text": _cell_text(by_seed, reached, training),
            }
        )
    return sort_cells(pd.DataFrame(rows, columns=COLUMNS), [])


def _cell_text(
    by_seed: Mapping[int, TimeToAccuracy], reached: Mapping[int, TimeToAccuracy], training: Any
) -> str:
    n = len(by_seed)
    if not reached:
        longest = max(t.epochs_run for t in by_seed.values())
        best = max(t.best for t in by_seed.values())
        return f"not reached in {longest} epochs (best {100 * best:.2f} %)"
    if len(reached) < n:
        return f"reached in {len(reached)} of {n} seeds"
    epochs = sorted({t.epoch for t in reached.values()})
    when = f"epoch {epochs[0]:g}" if len(epochs) == 1 else f"epochs {epochs[0]:g}–{epochs[-1]:g}"
    if n >= 2 and not math.isnan(training.low):
        return f"{training.mean:.3g} s [{training.low:.3g}, {training.high:.3g}] ({when})"
    return f"{training.mean:.3g} s ({when})"


# --- markdown --------------------------------------------------------------------------------

LEGEND = (
    "Time to accuracy: training time until the first evaluation whose test accuracy reached the "
    "target (no interpolation between evaluations); the harness evaluates after every epoch, "
    "untimed, on every backend alike (with `--eval-every N` also every N samples on the "
    "backends that can evaluate inside an epoch; their settings record the cadence; epoch "
    "2.5 = half-way through the third). *Training*: the timed epochs up "
    "to it, the first counted as a warm one (compilation and start-up untimed, as MLPerf leaves "
    "initialization untimed); *with start-up*: the build and every epoch as timed, compilation "
    "included (as AlgoPerf counts it). Mean over seeds [95 % interval] when every seed reached "
    "the target; vs numpy: NumPy's training time / the backend's, paired by seed over the seeds "
    "where both reached it (the same reference row as the speed tables)."
)


def tta_markdown(frame: pd.DataFrame) -> str:
    """One machine's table: backend × scenario, target, both clocks, vs numpy."""
    table = pd.DataFrame(
        {
            "target": frame["target_pct"].map(lambda v: f"{v:g} %"),
            "training time to target": frame["text"],
            "with start-up": [
                "—" if math.isnan(v) else f"{v:.3g} s" for v in frame["with_startup_s"]
            ],
            "vs numpy": [
                ratio_text(v, lo, hi)
                for v, lo, hi in zip(
                    frame["relative_to_numpy"],
                    frame["ratio_ci95_low"],
                    frame["ratio_ci95_high"],
                    strict=True,
                )
            ],
        },
        index=[f"{s} × {b}" for s, b in zip(frame["scenario"], frame["backend"], strict=True)],
    )
    table.index.name = "scenario × backend"
    return to_markdown(table, align="left")
