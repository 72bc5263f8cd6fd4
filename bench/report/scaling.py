"""How cost grows: the scaling section of results.md, for results that hold a sweep.

For each swept key of each scenario a sweep started from (``recipe.sweep`` in the JSON), per
backend and machine:

- **step time and rate** against the swept value: warm seconds per training step (the epoch's
  median / its steps) and achieved GFLOP/s (the epoch's matrix-product FLOPs / its median);
- **a fit** of step time = fixed cost + FLOPs per step / rate (least squares over the points, each
  the mean over seeds): the fixed cost per step (µs), the sustained rate (GFLOP/s and % of the
  device's measured GEMM peak) and the largest relative residual, so a bad fit shows;
- **crossovers** against NumPy on the same machine: where the ratio of step times changes side,
  interpolated on log-log axes between the two measured points around it, per seed, with the
  t interval over seeds; "none in range" says who leads throughout;
- **the regime** at the measured point nearest the scenario's own value of the swept key (the
  smaller point on a tie): overhead-bound when the fixed cost is above half the step, else
  memory- or compute-bound by which ceiling is nearer — the roofline: the GEMM peak, or the
  measured memory bandwidth × the step's arithmetic intensity (``step_bytes`` in the JSON: an
  estimate of the least traffic of a step).

A scenario's own batch size and width are read from the recipes in the results (``own_sizes``):
the value carried by its rows that do not sweep that key — its unswept run, or a sweep of another
key from the same scenario. Where the results hold no such row (or its rows disagree), the regime
is given at the smallest measured point, and its words say so.

Reads the runs frame only (JSON-derived): nothing here runs a backend or imports the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.report.frame import has_warm
from bench.results.read import as_dict
from bench.stats import REFERENCE, mean_ci


def _x_of(key: str, value: str) -> float | None:
    """The swept size as a number for the log axes: the batch size, or the total hidden width;
    None for anything else (a rate, a seed, a dtype, an option: how cost grows is a question of
    size) and for full batch, whose size is the data's."""
    try:
        if key == "hidden":
            return float(sum(int(w) for w in value.split("x")))
        if key == "batch_size":
            x = float(value)
            return x if x > 0 else None
    except ValueError:
        return None
    return None


def _size(value: Any) -> float | None:
    """A positive finite number from a JSON value, else None."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def own_sizes(runs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """origin scenario → {"batch_size": rows per step, "hidden": total hidden width}: its own
    values, from every row of ``runs`` named after it (``origin[...]`` for a sweep point) whose
    recipe does not sweep that key; full batch counts as the row's ``n_train``. A key its rows
    disagree on (runs with different overrides) is left out."""
    seen: dict[str, dict[str, set[float]]] = {}
    for r in runs.itertuples():
        recipe = as_dict(r.recipe)
        if not recipe:
            continue
        swept = {point[0] for point in recipe.get("sweep") or [] if point}
        hidden = recipe.get("hidden")
        widths = hidden if isinstance(hidden, list) and hidden else []
        numbers = all(isinstance(w, int | float) and not isinstance(w, bool) for w in widths)
        sizes = {
            "batch_size": _size(recipe.get("batch_size") or r.n_train),
            "hidden": _size(sum(widths)) if widths and numbers else None,
        }
        origin = str(r.scenario).split("[", 1)[0]
        for key, x in sizes.items():
            if x is not None and key not in swept:
                seen.setdefault(origin, {}).setdefault(key, set()).add(x)
    return {
        origin: {key: xs.pop() for key, xs in keys.items() if len(xs) == 1}
        for origin, keys in seen.items()
    }


def points_frame(runs: pd.DataFrame, machines: dict[str, Any]) -> pd.DataFrame:
    """One row per swept run: machine, origin, key, others, x, label, backend, seed, step_s,
    gflops, flops_per_step, bytes_per_step, peak_gflops, bandwidth_gbs and own_x (the origin's
    own value of the key, ``own_sizes``), NaN where unknown."""
    own = own_sizes(runs)
    rows = []
    for r in runs[(runs["status"] == "ok") & has_warm(runs)].itertuples():
        recipe = as_dict(r.recipe)
        given = recipe.get("sweep")
        sweep = [
            tuple(p)
            for p in (given if isinstance(given, list) else [])
            if isinstance(p, (list, tuple)) and len(p) == 2  # a malformed point is no point
        ]
        if not sweep:
            continue
        fixed = dict(sweep)
        steps = r.steps_per_epoch
        if not (steps == steps and steps and r.epoch_gflop == r.epoch_gflop):
            continue  # results written before steps were recorded
        flops = 1e9 * r.epoch_gflop / steps
        facts = as_dict(as_dict(machines.get(r.machine_id)).get("mlpbench"))
        for key, value in sweep:
            x = _x_of(key, value)
            if x is None:
                continue
            others = ",".join(f"{k}={v}" for k, v in fixed.items() if k != key)
            origin = str(r.scenario).split("[", 1)[0]
            rows.append(
                {
                    "machine_id": r.machine_id,
                    "origin": origin,
                    "key": key,
                    "others": others,
                    "x": x,
                    "label": value,
                    "backend": r.backend,
                    "seed": r.seed,
                    "step_s": r.median_s_per_epoch / steps,
                    "gflops": flops / (r.median_s_per_epoch / steps) / 1e9,
                    "flops_per_step": flops,
                    "bytes_per_step": r.step_bytes,
                    "peak_gflops": (r.gemm_peak_pct and r.gflops / r.gemm_peak_pct * 100)
                    if isinstance(r.gemm_peak_pct, float) and r.gemm_peak_pct > 0
                    else math.nan,
                    "bandwidth_gbs": facts.get("memory_bandwidth_gbs", math.nan),
                    "own_x": own.get(origin, {}).get(key, math.nan),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Fit:
    """step_s = fixed_s + flops / rate: least squares over the points (means over seeds)."""

    fixed_s: float
    rate_gflops: float
    max_residual: float  # largest |fit − measured| / measured
    n_points: int


def fit_cost(flops: np.ndarray, step_s: np.ndarray) -> Fit:
    """The line through (FLOPs per step, seconds per step), least squares on relative errors
    (each point weighted by 1 / its time: a sweep spans orders of magnitude, and a plain fit
    would ignore the small steps, where the fixed cost shows)."""
    design = np.column_stack([np.ones_like(flops), flops])
    weights = 1 / step_s
    (fixed, per_flop), *_ = np.linalg.lstsq(design * weights[:, None], step_s * weights, rcond=None)
    predicted = design @ np.array([fixed, per_flop])
    residual = float(np.max(np.abs(predicted - step_s) / step_s))
    rate = 1 / per_flop / 1e9 if per_flop > 0 else math.inf
    return Fit(float(fixed), float(rate), residual, len(flops))


def crossover(xs: list[float], reference: list[float], other: list[float]) -> float | None:
    """The x where ``other``'s step time crosses ``reference``'s (log-log interpolation between
    the two measured points around the first change of side), or None."""
    sides = [math.log(r / o) for r, o in zip(reference, other, strict=True)]
    for i in range(len(xs) - 1):
        a, b = sides[i], sides[i + 1]
        if a == 0:
            return xs[i]
        if a * b < 0:
            t = a / (a - b)
            return math.exp(math.log(xs[i]) + t * (math.log(xs[i + 1]) - math.log(xs[i])))
    return None


def scaling_rows(points: pd.DataFrame) -> pd.DataFrame:
    """Per machine × origin × key × others × backend: the fit, the crossover with NumPy (mean
    over seeds and its interval), the regime at the scenario's own value (``own_x``; without
    that column, or NaN, at the smallest measured point), in words."""
    rows = []
    if points.empty:
        return pd.DataFrame()
    group_keys = ["machine_id", "origin", "key", "others"]
    for (machine, origin, key, others), group in points.groupby(group_keys, sort=False):
        means = group.groupby(["backend", "x"], sort=True)[
            ["step_s", "flops_per_step", "bytes_per_step", "peak_gflops", "bandwidth_gbs"]
        ].mean()
        own = float(group["own_x"].iloc[0]) if "own_x" in group else math.nan
        for backend in group["backend"].unique():
            mine = means.loc[backend]
            if len(mine) < 2:
                continue
            fit = fit_cost(mine["flops_per_step"].to_numpy(), mine["step_s"].to_numpy())
            peak = (
                float(mine["peak_gflops"].dropna().max())
                if mine["peak_gflops"].notna().any()
                else math.nan
            )
            rows.append(
                {
                    "machine_id": machine,
                    "origin": origin,
                    "key": key,
                    "others": others,
                    "backend": backend,
                    "points": fit.n_points,
                    "fixed_us": 1e6 * fit.fixed_s,
                    "rate_gflops": fit.rate_gflops,
                    "rate_peak_pct": 100 * fit.rate_gflops / peak if peak == peak else math.nan,
                    "max_residual_pct": 100 * fit.max_residual,
                    **_crossover_vs_reference(group, backend),
                    **_regime(mine, fit, key, peak, own),
                }
            )
    return pd.DataFrame(rows)


def _crossover_vs_reference(group: pd.DataFrame, backend: str) -> dict[str, Any]:
    if backend == REFERENCE or REFERENCE not in set(group["backend"]):
        return {"crossover": None, "crossover_text": "—"}
    found, leads = [], []
    for _, by_seed in group.groupby("seed", sort=False):
        ref = by_seed[by_seed["backend"] == REFERENCE].set_index("x")["step_s"]
        mine = by_seed[by_seed["backend"] == backend].set_index("x")["step_s"]
        xs = sorted(set(ref.index) & set(mine.index))
        if len(xs) < 2:
            continue
        point = crossover(xs, [ref[x] for x in xs], [mine[x] for x in xs])
        if point is not None:
            found.append(point)
        leads.append(mine[xs[0]] < ref[xs[0]])
    if found:
        estimate = mean_ci([math.log(v) for v in found])
        side = "below" if 2 * sum(leads) > len(leads) else "above"  # where this backend leads
        text = f"{backend} faster {side} {math.exp(estimate.mean):,.0f}"
        if estimate.n >= 2 and estimate.low == estimate.low:
            text += f" [{math.exp(estimate.low):,.0f}, {math.exp(estimate.high):,.0f}]"
        text += f" ({len(found)} of {len(leads)} seeds)"
        return {"crossover": math.exp(estimate.mean), "crossover_text": text}
    if not leads:
        return {"crossover": None, "crossover_text": "—"}
    who = backend if all(leads) else REFERENCE if not any(leads) else "either, by seed"
    return {"crossover": None, "crossover_text": f"none in range ({who} faster throughout)"}


def _regime(mine: pd.DataFrame, fit: Fit, key: str, peak: float, own: float) -> dict[str, Any]:
    """Overhead-, memory- or compute-bound, in words, at the measured point nearest ``own``
    (the scenario's own value of ``key``; the smaller point on a tie) — at the smallest measured
    point when ``own`` is NaN (the results do not say), and the words say so."""
    xs = sorted(mine.index)
    if own == own and own > 0:
        x = min(xs, key=lambda v: abs(math.log(v / own)))
        at = f"at {key} {x:g}"
    else:
        x = xs[0]
        at = f"at {key} {x:g} (the smallest swept; these results do not hold the scenario's own)"
    row = mine.loc[x]
    share = min(max(fit.fixed_s, 0.0) / row["step_s"], 1.0)
    if share > 0.5:
        regime = "overhead-bound"
        words = (
            f"{at}, {100 * share:.0f} % of a step is fixed cost: fewer, larger steps "
            "(bigger batches, fused or compiled steps) help; faster arithmetic does not"
        )
    else:
        compute_s = row["flops_per_step"] / (peak * 1e9) if peak == peak else math.nan
        memory_s = (
            row["bytes_per_step"] / (row["bandwidth_gbs"] * 1e9)
            if row["bandwidth_gbs"] == row["bandwidth_gbs"]
            else math.nan
        )
        if memory_s == memory_s and (compute_s != compute_s or memory_s > compute_s):
            regime = "memory-bound"
            words = f"{at}, moving the data takes longer than the arithmetic at peak"
        else:
            regime = "compute-bound"
            words = f"{at}, the matrix products dominate: a faster GEMM pays off"
    return {"regime": regime, "regime_words": words, "fixed_share_pct": 100 * share}
