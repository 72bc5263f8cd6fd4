"""The cells frame: the runs frame summarized over seeds, one row per machine × scenario × backend.

Per cell: ``n_seeds`` (results that trained at least one epoch), the mean final test accuracy with
its Student-t 95 % interval (``ci95_low`` / ``ci95_high``), the warm-epoch time as the mean over
seeds of each seed's median with its interval (``speed_ci95_low`` / ``speed_ci95_high``), other
numbers as means over seeds (memory peaks as maxima), and ``relative_to_numpy``: the reference
row's time / this one's, paired by round — not a ratio of the means (see below).
One seed → the intervals are NaN (the tables then say "1 seed"). Status: skipped when every seed
was skipped; otherwise failed, incomplete or ok, the worst of its seeds.

Speed has two levels of variation (Kalibera & Jones, ISMM 2013): between processes (rounds,
one per seed) and between the warm epochs of one process. The cell's interval is over the rounds'
medians — each already carries its process's epoch noise — and both levels are reported:
``within_cv_pct`` (the median over rounds of the warm epochs' coefficient of variation) and
``between_cv_pct`` (the rounds' medians'). The ratio to the reference row (``stats.reference_of``:
NumPy, or NumPy's tuned row for a tuned one) follows the one rule, ``stats.speed_ratio``: paired
within rounds, epoch by epoch where both trained in lockstep, ``relative_to_numpy`` the geometric
mean over rounds with ``ratio_ci95_low`` / ``ratio_ci95_high`` its t interval on the log scale;
only rounds with warm epochs count. A cell whose warm
epochs or rounds vary more than ``UNSTABLE`` is ``unstable``, with what was seen meanwhile.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import pandas as pd

from bench.report.frame import has_warm, in_lockstep, references, sort_cells, speed_ratio_between
from bench.results.read import as_dict
from bench.stats import mean_ci, round_median

#: A speed cell varying more than this (coefficient of variation, within or between processes)
#: is unstable (pyperf warns from 10 % too).
UNSTABLE = 0.10

KEYS = ["machine_id", "scenario", "backend"]
MEANS = [
    "test_accuracy_epoch5_pct",
    "gflops",
    "gemm_peak_pct",
    "device_s_per_epoch",
    "device_step_median_us",
    "device_step_iqr_us",
    "epoch1_s",
    "build_s",
    "cold_overhead_s",
]
MAXIMA = ["host_peak_mib", "gpu_peak_mib"]
FIRST = [
    "epochs",
    "n_train",
    "n_test",
    "stats_over",
    "peak_of",
    "gpu_memory_measure",
    "settings",
    "history",
    "pid",
]
STATUS_ORDER = ("failed", "incomplete", "ok")
COLUMNS = [
    *KEYS,
    "status",
    "reason",
    "source",
    "seeds",
    "n_seeds",
    "final_test_accuracy_pct",
    "ci95_low",
    "ci95_high",
    "median_s_per_epoch",
    "speed_ci95_low",
    "speed_ci95_high",
    "samples_per_s",
    "epochs_run",
    "histories",
    "lockstep",
    "within_cv_pct",
    "between_cv_pct",
    "unstable",
    *MEANS,
    *MAXIMA,
    *FIRST,
]


def cells_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per machine × scenario × backend of ``runs`` (the runs frame)."""
    rows = [_summary(group) for _, group in runs.groupby(KEYS, sort=False)]
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    frame = frame.astype({c: "Int64" for c in ("epochs_run", "epochs", "n_train", "n_test")})
    ratios = _paired_ratios(runs)
    for column in (
        "relative_to_numpy",
        "ratio_ci95_low",
        "ratio_ci95_high",
        "ratio_pairs",
        "ratio_level",
    ):
        frame[column] = [
            ratios.get((m, s, b), {}).get(column, math.nan)
            for m, s, b in zip(
                frame["machine_id"], frame["scenario"], frame["backend"], strict=True
            )
        ]
    return sort_cells(frame, [])


def _paired_ratios(runs: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(machine, scenario, backend) → the reference row's time / this one's with its interval,
    by the one rule, ``stats.speed_ratio`` (epoch by epoch within rounds where both trained in
    lockstep, ``ratio_level`` saying which level dominates; else the rounds' warm medians paired
    by seed). Only warm epochs count."""
    warm = runs[(runs["status"] != "skipped") & has_warm(runs)]
    groups = {key: group for key, group in warm.groupby(KEYS, sort=False)}
    chosen = references(runs)
    out = {}
    for (machine, scenario, backend), group in groups.items():
        reference = groups.get((machine, scenario, chosen[(machine, scenario, backend)]))
        if reference is not None:
            out[(machine, scenario, backend)] = _ratio_columns(reference, group)
    return out


def _ratio_columns(reference: pd.DataFrame, group: pd.DataFrame) -> dict[str, Any]:
    estimate, levels = speed_ratio_between(reference, group)
    return {
        "relative_to_numpy": estimate.value,
        "ratio_ci95_low": estimate.low,
        "ratio_ci95_high": estimate.high,
        "ratio_pairs": "epochs in lockstep" if levels else "round medians",
        "ratio_level": levels.dominant if levels else None,
    }


def _summary(group: pd.DataFrame) -> dict[str, Any]:
    first = group.iloc[0]
    row: dict[str, Any] = {k: first[k] for k in KEYS}
    row["source"] = ", ".join(dict.fromkeys(group["source"]))
    ran = group[group["status"] != "skipped"]
    if ran.empty:
        return {**row, "status": "skipped", "reason": first["reason"], "n_seeds": 0}
    accuracy = mean_ci(ran["final_test_accuracy_pct"].tolist())
    speed = mean_ci(ran["median_s_per_epoch"].tolist())
    reasons = ran["reason"].dropna()
    return {
        **row,
        "status": next(s for s in STATUS_ORDER if s in set(ran["status"]) or s == "ok"),
        "reason": reasons.iloc[0] if len(reasons) else None,
        "seeds": [int(s) for s in ran["seed"].dropna()],
        "n_seeds": len(ran),
        "final_test_accuracy_pct": accuracy.mean,
        "ci95_low": accuracy.low,
        "ci95_high": accuracy.high,
        "median_s_per_epoch": speed.mean,
        "speed_ci95_low": speed.low,
        "speed_ci95_high": speed.high,
        "samples_per_s": ran["n_train"].iloc[0] / speed.mean,
        "epochs_run": int(ran["epochs_run"].min()),
        "histories": list(ran["history"]),
        "lockstep": in_lockstep(ran),
        **_levels(ran),
        **{c: _mean(ran[c]) for c in MEANS},
        **{c: _max(ran[c]) for c in MAXIMA},
        **{c: ran[c].iloc[0] for c in FIRST},
    }


def _levels(ran: pd.DataFrame) -> dict[str, Any]:
    """Within- and between-process variation of the warm epochs (percent CVs) and, past
    ``UNSTABLE``, why the cell is unstable (what was seen while it ran)."""
    within = [_cv(h) for h in ran["warm_seconds"] if isinstance(h, list) and len(h) >= 2]
    medians = list(ran["median_s_per_epoch"][has_warm(ran)])
    within_cv = float(pd.Series(within).median()) if within else math.nan
    between_cv = _cv(medians) if len(medians) >= 2 else math.nan
    causes = []
    if within_cv > UNSTABLE:
        causes.append(f"warm epochs vary {100 * within_cv:.0f} % within a process")
        pooled = [s for h in ran["warm_seconds"] if isinstance(h, list) for s in h]
        causes += filter(None, [two_speeds(pooled, "warm epochs")])
    if between_cv > UNSTABLE:
        causes.append(f"rounds vary {100 * between_cv:.0f} %")
        causes += filter(None, [two_speeds(medians)])
    if causes:
        causes += filter(None, [tf_data_stalls(ran)])
        measured = _others(ran)
        causes += measured if measured is not None else _seen(ran["conditions"])
    return {
        "within_cv_pct": 100 * within_cv,
        "between_cv_pct": 100 * between_cv,
        "unstable": "; ".join(causes) or None,
    }


#: The step between two neighbouring values (sorted: round medians, or warm epochs) that splits
#: a cell's processes, or its epochs, into two speeds, when neither group spreads as much.
TWO_SPEEDS = 1.3


def two_speeds(medians: list[float], what: str = "processes") -> str | None:
    """ "two speeds: k of n processes at a s, the others at b s" when the values (the rounds'
    medians, or ``what`` else; three or more) fall in two groups: the largest ratio between
    sorted neighbours is at least ``TWO_SPEEDS`` and larger than each group's own max/min; else
    None."""
    if len(medians) < 3:
        return None
    ordered = sorted(medians)
    if ordered[0] <= 0:
        return None
    steps = [b / a for a, b in itertools.pairwise(ordered)]
    cut = max(range(len(steps)), key=steps.__getitem__) + 1
    fast, slow = ordered[:cut], ordered[cut:]
    step = steps[cut - 1]
    if step < TWO_SPEEDS or step <= max(fast[-1] / fast[0], slow[-1] / slow[0]):
        return None
    return (
        f"two speeds: {len(slow)} of {len(ordered)} {what} at "
        f"{statistics.median(slow):.3g} s, the others at {statistics.median(fast):.3g} s"
    )


#: tf.data's autotuning waits on a period that doubles from 10 ms: an epoch that waited ends
#: within a few ms of 10 ms × (2^k − 1) — 5.11 s (k = 9), 10.23 s (k = 10), 20.47 s (k = 11).
AUTOTUNE_WAITS = tuple(0.01 * (2**k - 1) for k in (9, 10, 11))


def tf_data_stalls(ran: pd.DataFrame) -> str | None:
    """How many warm epochs of a cell fed by tf.data lasted one of tf.data's autotuning waits
    (``AUTOTUNE_WAITS``, within 15 ms) while being at least 1.5× the cell's median; else None."""
    stalled = total = 0
    for settings, warm in zip(ran["settings"], ran["warm_seconds"], strict=True):
        if "tf.data" not in str(as_dict(settings).get("input_feed", "")) or not warm:
            continue
        median = round_median(warm)
        total += len(warm)
        stalled += sum(
            1 for s in warm if s >= 1.5 * median and any(abs(s - w) < 0.015 for w in AUTOTUNE_WAITS)
        )
    if not stalled:
        return None
    return (
        f"{stalled} of {total} warm epochs lasted one of tf.data's autotuning waits, "
        "10 ms × (2^k − 1): 5.11, 10.23 or 20.47 s"
    )


#: What other processes may use, in cores on average while a cell's epochs trained, before the
#: tables name it as a cause.
OTHERS_CORES = 0.1


def _others(ran: pd.DataFrame) -> list[str] | None:
    """What other processes did while the cell's epochs trained, where the executor measured
    it (lockstep: CPU seconds of the group's waiting workers, of every other process, and steal,
    per second of training): a cause per kind past ``OTHERS_CORES``, or "nothing unusual seen";
    None where it was not measured."""
    measured = [
        (c, sum(h["seconds"] for h in history))
        for c, history in zip(ran["conditions"], ran["history"], strict=True)
        if isinstance(c, dict) and "foreign_cpu_s" in c and history
    ]
    if not measured:
        return None
    trained = sum(seconds for _, seconds in measured) or math.nan
    share = {
        key: sum(c.get(key) or 0.0 for c, _ in measured) / trained
        for key in ("foreign_cpu_s", "idle_workers_cpu_s", "steal_s")
    }
    words = {
        "foreign_cpu_s": "other processes used {:.2f} cores meanwhile",
        "idle_workers_cpu_s": "the waiting backends' threads used {:.2f} cores meanwhile",
        "steal_s": "the hypervisor stole {:.2f} cores meanwhile",
    }
    causes = [words[k].format(v) for k, v in share.items() if v > OTHERS_CORES]
    return causes or ["nothing unusual seen in other processes (CPU, steal)"]


def _cv(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return float(pd.Series(values).std(ddof=1) / mean) if mean else math.nan


def _seen(conditions: pd.Series) -> list[str]:
    """What the machine was doing during a cell's runs, where it could compete with it."""
    seen = [c for c in conditions if isinstance(c, dict) and c]
    if not seen:
        return []
    cores = max(c.get("cores") or 0 for c in seen) or None
    notes = []
    load = max((c.get("load_1m_max", 0) for c in seen), default=0)
    if cores and load > cores - 0.5:
        notes.append(f"load up to {load:.1f} on {cores} cores")
    threads = max((c.get("threads", 0) for c in seen), default=0)
    if cores and threads > cores + 2:
        notes.append(f"{threads} threads on {cores} cores")
    low = min((c["cpu_mhz_min"] for c in seen if "cpu_mhz_min" in c), default=None)
    high = max((c["cpu_mhz_max"] for c in seen if "cpu_mhz_max" in c), default=None)
    if low and high and high > 1.05 * low:
        notes.append(f"CPU clock {low:.0f}–{high:.0f} MHz")
    if any((c.get("swap_growth_mib") or 0) > 0 for c in seen):
        notes.append("swapping")
    return notes or ["nothing unusual seen (load, threads, clock, swap)"]


def _mean(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else math.nan


def _max(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.max()) if len(numbers) else math.nan
