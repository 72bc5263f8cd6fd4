"""The report's gap, factor by factor: the gap ladder's rungs (scenarios whose recipe carries a
``ladder`` position, from ``report_recipe`` at 0 to ``baseline``), each one change from the rung
before, with the mean final test accuracy over seeds, the gain over the rung before and its share
of the whole gap (first rung to last).

The attribution depends on the order of the rungs: a change can matter a lot after one change
and little after another (Adam's learning rate matters less once batches are small, for one).
"""

from __future__ import annotations

import math

import pandas as pd

from bench.stats import mean_ci

LEGEND = (
    "From the report's recipe (rung 0) to the baseline (last rung), one change per rung: mean "
    "final test accuracy over seeds ± the half-width of its 95 % interval, the gain over the rung "
    "before (pt) and that gain's share of the whole gap. The shares depend on the order of the "
    "rungs: each change is measured after the ones above it."
)


def ladder_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One machine's runs → rows (backend, rung, scenario, change, accuracy, ±, gain, share) for
    every backend that ran every rung run on this machine (at least two); empty when none did.
    A backend that ran only some rungs (e.g. the two ends, which are ordinary scenarios too) is
    left out: its steps would each merge several changes."""
    ran = runs[runs["status"] != "skipped"].copy()
    ran["rung"] = [r.get("ladder") if isinstance(r, dict) else None for r in ran["recipe"]]
    ran = ran[ran["rung"].notna()]
    every_rung = set(ran["rung"])
    rows = []
    for backend, group in ran.groupby("backend", sort=False):
        if set(group["rung"]) != every_rung:
            continue
        rungs, before = [], None
        for rung, runs_at in sorted(group.groupby("rung"), key=lambda kv: kv[0]):
            estimate = mean_ci(runs_at["final_test_accuracy_pct"].tolist())
            recipe = runs_at["recipe"].iloc[0]
            change = _change(before, recipe) if before else "the report's recipe"
            rungs.append((int(rung), runs_at["scenario"].iloc[0], change, estimate))
            before = recipe
        if len(rungs) < 2:
            continue
        gap = rungs[-1][3].mean - rungs[0][3].mean
        for i, (rung, scenario, change, est) in enumerate(rungs):
            gain = est.mean - rungs[i - 1][3].mean if i else math.nan
            rows.append(
                {
                    "backend": backend,
                    "rung": rung,
                    "scenario": scenario,
                    "change": change,
                    "accuracy_pct": est.mean,
                    "ci95_half": est.half_width,
                    "n_seeds": est.n,
                    "gain_pt": gain,
                    "share_pct": 100 * gain / gap if gap else math.nan,
                }
            )
    return pd.DataFrame(rows)


#: Recipe fields that name or describe a rung, or differ between runs over seeds: not changes.
BOOKKEEPING = frozenset({"name", "summary", "changes", "ladder", "base", "seed"})


def _change(before: dict, after: dict) -> str:
    """'field: old → new' for every recipe field that differs between two rungs (full batch is
    shown as 'full')."""

    def shown(key: str, value: object) -> str:
        return "full" if key == "batch_size" and value is None else str(value)

    keys = [k for k in after if k not in BOOKKEEPING and before.get(k) != after.get(k)]
    return ", ".join(f"{k}: {shown(k, before.get(k))} → {shown(k, after[k])}" for k in keys)


def ladder_table(ladder: pd.DataFrame) -> pd.DataFrame:
    """Rows rung (scenario: change), a column group per backend: formatted text."""

    def text(r: pd.Series) -> tuple[str, str, str]:
        spread = "" if math.isnan(r["ci95_half"]) else f" ± {r['ci95_half']:.2f}"
        gain = "—" if math.isnan(r["gain_pt"]) else f"{r['gain_pt']:+.2f}"
        share = "—" if math.isnan(r["share_pct"]) else f"{r['share_pct']:.0f} %"
        return f"{r['accuracy_pct']:.2f}{spread}", gain, share

    columns: dict[str, dict[str, str]] = {}
    labels = {}
    for r in ladder.itertuples(index=False):
        row = ladder.loc[(ladder["backend"] == r.backend) & (ladder["rung"] == r.rung)].iloc[0]
        accuracy, gain, share = text(row)
        key = f"{r.rung}. {r.scenario}"
        labels[key] = r.change
        columns.setdefault(f"{r.backend} %", {})[key] = accuracy
        columns.setdefault(f"{r.backend} gain pt", {})[key] = gain
        columns.setdefault(f"{r.backend} share", {})[key] = share
    table = pd.DataFrame(columns)
    table.insert(0, "change", pd.Series(labels))
    table = table.loc[sorted(table.index, key=lambda k: int(k.split(".")[0]))]
    table.index.name = "rung"
    return table.fillna("not run")
