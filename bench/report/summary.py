"""The cells frame: the runs frame summarized over seeds, one row per machine × scenario × backend.

Per cell: ``n_seeds`` (results that trained at least one epoch), the mean final test accuracy with
its Student-t 95 % interval (``ci95_low`` / ``ci95_high``), the warm-epoch time as the mean over
seeds of each seed's median with its interval (``speed_ci95_low`` / ``speed_ci95_high``), other
numbers as means over seeds (memory peaks as maxima), ``relative_to_numpy`` from those means.
One seed → the intervals are NaN (the tables then say "1 seed"). Status: skipped when every seed
was skipped; otherwise failed, incomplete or ok, the worst of its seeds.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bench.report.frame import relative_to_reference, sort_cells
from bench.report.stats import mean_ci

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
    *MEANS,
    *MAXIMA,
    *FIRST,
]


def cells_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per machine × scenario × backend of ``runs`` (the runs frame)."""
    rows = [_summary(group) for _, group in runs.groupby(KEYS, sort=False)]
    frame = pd.DataFrame(rows).reindex(columns=COLUMNS)
    frame = frame.astype({c: "Int64" for c in ("epochs_run", "epochs", "n_train", "n_test")})
    frame["relative_to_numpy"] = relative_to_reference(frame, ["machine_id", "scenario"])
    return sort_cells(frame, [])


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
        **{c: _mean(ran[c]) for c in MEANS},
        **{c: _max(ran[c]) for c in MAXIMA},
        **{c: ran[c].iloc[0] for c in FIRST},
    }


def _mean(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else math.nan


def _max(values: pd.Series) -> float:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.max()) if len(numbers) else math.nan
