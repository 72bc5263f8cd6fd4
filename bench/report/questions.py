"""The report's questions, answered from the runs frame with paired comparisons over seeds.

Every comparison pairs results by seed (same seed → same initial weights and batch order), takes
the per-seed differences and reports their mean with a Student-t 95 % interval
(``bench.stats``): "better by 0.30 ± 0.10 pt" when the interval excludes zero, "no
difference detected at n = 5 (+0.05 ± 0.20 pt)" when it does not. The questions:

1. Each change of the report's Part 3 against the scenario it changes (``recipe.base``), at equal
   epochs: the variant's test accuracy after as many epochs as its base ran.
2. Is the report's best configuration (``best_config``) better than each single change, at equal
   epochs?
3. Each backend against its reference row on the same scenario (``bench.stats.reference_of``:
   NumPy; a tuned row against NumPy's tuned row of the same run where there is one): final test
   accuracy, and speed as the reference's time / the backend's by the one rule
   (``bench.stats.speed_ratio``: paired within rounds, epoch by epoch in lockstep; the value the
   tables show).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.report.frame import has_warm, references, speed_ratio_between
from bench.stats import REFERENCE_RULE, TIE, Estimate, paired_difference

BEST = "best_config"
COLUMNS = ["question", "backend", "n", "difference", "verdict"]


def questions_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One machine's runs → a table of questions (columns ``COLUMNS``); empty when nothing pairs."""
    ran = runs[runs["status"] != "skipped"]
    rows = _part3(ran) + _best(ran) + _backends(ran)
    return pd.DataFrame(rows, columns=COLUMNS)


def accuracy_verdict(d: Estimate, better: str = "better", worse: str = "worse") -> str:
    """Plain words for a paired difference in percentage points."""
    if d.n < 2:
        return "one seed: cannot tell"
    if not d.spread_known:
        if abs(d.mean) <= TIE:
            return f"identical on all {d.n} seeds"
        return f"the same difference on all {d.n} seeds: its spread is unknown, cannot tell"
    if not d.excludes_zero:
        return f"no difference detected at n = {d.n}"
    return f"{better if d.mean > 0 else worse} by {abs(d.mean):.2f} ± {d.half_width:.2f} pt"


def _points(d: Estimate) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} pt"
    return f"{d.mean:+.2f} pt [{d.low:+.2f}, {d.high:+.2f}]"


def _accuracy_at(group: pd.DataFrame, epochs: int | None) -> dict[int, float]:
    """seed → test accuracy (%) after ``epochs`` epochs (None: the last), where it ran that far."""
    out = {}
    for r in group.itertuples():
        history = r.history
        at = len(history) if epochs is None else epochs
        if len(history) >= at and not pd.isna(r.seed):
            out[int(r.seed)] = 100 * history[at - 1]["test_accuracy"]
    return out


def _epochs_of(group: pd.DataFrame) -> int:
    return int(group["epochs_run"].min())


def _part3(ran: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for (backend, scenario), group in ran.groupby(["backend", "scenario"], sort=False):
        base = _field(group, "base")
        if not base or scenario == BEST:
            continue
        base_runs = ran[(ran["backend"] == backend) & (ran["scenario"] == base)]
        if base_runs.empty:
            continue
        epochs = _epochs_of(base_runs)
        d = paired_difference(_accuracy_at(base_runs, None), _accuracy_at(group, epochs))
        question = f"does {scenario} beat {base}? (test accuracy after {epochs} epochs)"
        rows.append(_row(question, backend, d))
    return rows


def _best(ran: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for backend, runs in ran.groupby("backend", sort=False):
        best = runs[runs["scenario"] == BEST]
        if best.empty:
            continue
        for scenario, group in runs.groupby("scenario", sort=False):
            if scenario == BEST or _field(group, "base") != _field(best, "base"):
                continue
            epochs = min(_epochs_of(group), _epochs_of(best))
            d = paired_difference(_accuracy_at(group, epochs), _accuracy_at(best, epochs))
            question = f"is {BEST} better than {scenario}? (after {epochs} epochs)"
            rows.append(_row(question, backend, d))
    return rows


def _backends(ran: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    chosen = references(ran)
    for scenario, runs in ran.groupby("scenario", sort=False):
        for backend, group in runs.groupby("backend", sort=False):
            against = chosen[(group["machine_id"].iloc[0], scenario, backend)]
            reference = runs[runs["backend"] == against]
            if backend == against or reference.empty:
                continue
            d = paired_difference(_accuracy_at(reference, None), _accuracy_at(group, None))
            question = f"same accuracy as {against} on {scenario}?"
            rows.append(_row(question, backend, d, better="higher", worse="lower"))
            rows += _speed(scenario, backend, against, reference, group)
    return rows


def _speed(
    scenario: str, backend: str, against: str, reference: pd.DataFrame, group: pd.DataFrame
) -> list[dict[str, Any]]:
    """The reference row's time / this backend's by the one rule (``stats.speed_ratio``, the
    value the tables show; warm epochs only)."""
    ratio, levels = speed_ratio_between(reference[has_warm(reference)], group[has_warm(group)])
    rounds = levels.rounds if levels is not None else ratio.n  # seeds, never epochs
    if ratio.n == 0:
        return []
    if rounds < 2:
        verdict = "one seed: cannot tell"
    elif not ratio.testable:
        verdict = f"×{ratio.value:.2f} on all {rounds} seeds: its spread is unknown, cannot tell"
    elif ratio.excludes_one:
        verdict = f"{'faster' if ratio.value > 1 else 'slower'} than {against}: ×{ratio.value:.2f}"
    else:
        verdict = f"no speed difference detected at n = {rounds}"
    question = f"as fast as {against} on {scenario}? ({against}'s time / this)"
    return [
        {
            "question": question,
            "backend": backend,
            "n": rounds,
            "difference": ratio.shown(),
            "verdict": verdict,
        }
    ]


def _row(question: str, backend: str, d: Estimate, **words: str) -> dict[str, Any]:
    return {
        "question": question,
        "backend": backend,
        "n": d.n,
        "difference": _points(d),
        "verdict": accuracy_verdict(d, **words),
    }


def _field(group: pd.DataFrame, key: str) -> Any:
    """A recipe field as the group's first result recorded it (None if absent)."""
    recipe = group["recipe"].iloc[0]
    return recipe.get(key) if isinstance(recipe, dict) else None


LEGEND = (
    "Paired by seed (same seed = same initial weights and batch order on every backend and "
    "scenario): the difference is the mean over seeds of each seed's difference, in "
    "percentage points of test accuracy, with its Student-t 95 % confidence interval in "
    "brackets. Speed, "
    + REFERENCE_RULE
    + " A verdict names a difference only when the interval excludes zero (×1 for speed); "
    "otherwise it says none was detected at that n. The t interval suits a handful of seeds; "
    "the Wilcoxon signed-rank test cannot reach p < 0.05 with fewer than six pairs."
)
