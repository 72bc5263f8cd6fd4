"""Accuracy against time, per scenario: which backends no other beats on both.

One point per machine × scenario × backend (both divisions; a tuned row is its own point):
final test accuracy (mean over seeds, Student-t 95 % interval, the cells frame's) against time.
The time axis is the scenario's time to its target accuracy (``tta``'s training clock) where
every point reached it on every seed, else the whole run's training time on the same clock
(every epoch timed, the cold first one counted as a warm one), mean over seeds with its t
interval; ``clock`` says which. A point is on the front when no other point of its scenario is
at least as accurate and at least as fast, and better on one of the two (by the means: the
intervals are shown beside them, and a front that rests on overlapping intervals says so only
there).
"""

from __future__ import annotations

import math

import pandas as pd

from bench.report.formatting import to_markdown
from bench.report.tta import training_clock
from bench.stats import mean_ci

KEYS = ["machine_id", "scenario", "backend"]
COLUMNS = [
    *KEYS,
    "clock",
    "seconds",
    "seconds_low",
    "seconds_high",
    "accuracy_pct",
    "accuracy_low",
    "accuracy_high",
    "front",
]
TO_TARGET, WHOLE_RUN = "time to target", "training time"


def pareto_frame(runs: pd.DataFrame, cells: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """``runs``/``cells``: the runs and cells frames; ``times``: ``tta.tta_frame`` of the same
    runs. One row per cell that finished (columns ``COLUMNS``)."""
    whole = _whole_run_seconds(runs)
    rows = []
    ok = cells[(cells["status"] == "ok") & cells["final_test_accuracy_pct"].notna()]
    for (machine, scenario), group in ok.groupby(["machine_id", "scenario"], sort=False):
        reached = times[(times["machine_id"] == machine) & (times["scenario"] == scenario)]
        to_target = (
            len(reached) == len(group)
            and bool(len(reached))
            and bool((reached["reached_seeds"] == reached["seeds"]).all())
        )
        for r in group.itertuples():
            if to_target:
                t = reached[reached["backend"] == r.backend].iloc[0]
                seconds = (t["training_s"], t["training_ci95_low"], t["training_ci95_high"])
            else:
                e = whole.get((machine, scenario, r.backend))
                seconds = (e.mean, e.low, e.high) if e else (math.nan,) * 3
            rows.append(
                {
                    "machine_id": machine,
                    "scenario": scenario,
                    "backend": r.backend,
                    "clock": TO_TARGET if to_target else WHOLE_RUN,
                    "seconds": seconds[0],
                    "seconds_low": seconds[1],
                    "seconds_high": seconds[2],
                    "accuracy_pct": r.final_test_accuracy_pct,
                    "accuracy_low": r.ci95_low,
                    "accuracy_high": r.ci95_high,
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    frame["front"] = _front(frame)
    return frame


def _whole_run_seconds(runs: pd.DataFrame) -> dict:
    """(machine, scenario, backend) → Estimate of the run's training time over seeds."""
    ok = runs[(runs["status"] == "ok") & runs["history"].map(lambda h: isinstance(h, list))]
    out = {}
    for key, group in ok.groupby(KEYS, sort=False):
        totals = [sum(training_clock([e["seconds"] for e in h])) for h in group["history"] if h]
        if totals:
            out[key] = mean_ci(totals)
    return out


def _front(frame: pd.DataFrame) -> list[bool]:
    """Per row: no other row of its machine × scenario is at least as fast and as accurate and
    better on one (NaN times are never on the front and beat nothing)."""
    front = []
    for r in frame.itertuples():
        if math.isnan(r.seconds):
            front.append(False)
            continue
        peers = frame[
            (frame["machine_id"] == r.machine_id)
            & (frame["scenario"] == r.scenario)
            & (frame["backend"] != r.backend)
            & frame["seconds"].notna()
        ]
        beaten = (
            (peers["seconds"] <= r.seconds)
            & (peers["accuracy_pct"] >= r.accuracy_pct)
            & ((peers["seconds"] < r.seconds) | (peers["accuracy_pct"] > r.accuracy_pct))
        )
        front.append(not bool(beaten.any()))
    return front


def front_lines(frame: pd.DataFrame) -> list[str]:
    """'baseline (time to target): not beaten on both by another: jax, keras-jax (tuned)'."""
    lines = []
    for (_, scenario), group in frame.groupby(["machine_id", "scenario"], sort=False):
        names = ", ".join(group.loc[group["front"], "backend"].astype(str))
        lines.append(f"{scenario} ({group['clock'].iloc[0]}): not beaten on both: {names or '—'}")
    return lines


LEGEND = (
    "Accuracy against time, one point per backend and division: final test accuracy (at the "
    "end of the run, mean over seeds, 95 % interval) against the time to the scenario's target "
    "accuracy where every backend reached it on every seed, else the whole run's training time "
    "(the training clock of the time-to-accuracy table: compilation and start-up left out), "
    "mean over seeds with its 95 % interval. On the front (◆): no other point is at least as "
    "accurate and at least as fast and better on one, by the means; where intervals overlap, "
    "the order is not settled."
)


def pareto_markdown(frame: pd.DataFrame) -> str:
    """One machine's table: scenario × backend, the time and its clock, accuracy, front."""
    table = pd.DataFrame(
        {
            "time s": [
                _interval(r.seconds, r.seconds_low, r.seconds_high) for r in frame.itertuples()
            ],
            "clock": frame["clock"],
            "accuracy %": [
                _interval(r.accuracy_pct, r.accuracy_low, r.accuracy_high, "{:.2f}")
                for r in frame.itertuples()
            ],
            "front": frame["front"].map(lambda f: "◆" if f else ""),
        },
        index=[f"{s} × {b}" for s, b in zip(frame["scenario"], frame["backend"], strict=True)],
    )
    table.index.name = "scenario × backend"
    return to_markdown(table, align="left")


def _interval(value: float, low: float, high: float, pattern: str = "{:.3g}") -> str:
    if value != value:
        return "—"
    shown = pattern.format(value)
    if low == low and high == high and high > low:
        shown += f" [{pattern.format(low)}, {pattern.format(high)}]"
    return shown
