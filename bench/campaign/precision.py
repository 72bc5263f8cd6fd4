"""``mlpbench run --target-ci PCT --budget MINUTES``: more rounds where the intervals are widest.

After the planned rounds, every cell's speed is known per round (the median of its warm epochs).
A cell's precision is the relative half-width of its interval: for the reference backend its own
speed's (Student-t over rounds), for every other backend its ratio to the reference, paired
within rounds (``bench.stats.paired_ratio``). While some cell is wider than the target and
the budget allows another round of the cells that are (each with its reference, so the pairs stay
paired), that round runs; then each cell is "target met", or "budget ended" with its width.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.results.read import warm_median
from bench.stats import mean_ci, paired_ratio, relative_half_width

CellKey = tuple[str, str]  # (backend, scenario)


@dataclass(frozen=True)
class Width:
    """A cell's relative interval half-width now, over ``rounds`` rounds."""

    cell: CellKey
    half_width: float
    rounds: int


def round_medians(entries: list[dict[str, Any]]) -> dict[CellKey, dict[int, float]]:
    """(backend, scenario) → {seed: the round's speed (``bench.results.read.warm_median``)} from
    benchmark entries (complete ones with warm epochs only)."""
    found: dict[CellKey, dict[int, float]] = defaultdict(dict)
    for entry in entries:
        extra, params = entry.get("extra_info") or {}, entry.get("params") or {}
        median = warm_median(entry)
        if not extra.get("complete") or extra.get("failed") or median is None:
            continue
        found[(params["backend"], params["scenario"])][int(params["seed"])] = median
    return dict(found)


def widths(medians: dict[CellKey, dict[int, float]], reference: str) -> list[Width]:
    """Every cell's relative half-width, widest first."""
    out = []
    for (backend, scenario), per_round in medians.items():
        if backend == reference:
            estimate = mean_ci(list(per_round.values()))
        else:
            estimate = paired_ratio(medians.get((reference, scenario), {}), per_round)
        out.append(Width((backend, scenario), relative_half_width(estimate), len(per_round)))
    return sorted(out, key=lambda w: -w.half_width)


def too_wide(medians: dict[CellKey, dict[int, float]], reference: str, target: float) -> set:
    """The cells to run again for ``target`` (a fraction): those wider, with their references."""
    over = {w.cell for w in widths(medians, reference) if w.half_width > target}
    return over | {(reference, scenario) for _, scenario in over}


def report(
    medians: dict[CellKey, dict[int, float]], reference: str, target: float, budget_ended: bool
) -> list[dict[str, Any]]:
    """Per cell: its half-width (percent), rounds, and "target met" / "budget ended"."""
    rows = []
    for w in widths(medians, reference):
        met = w.half_width <= target
        rows.append(
            {
                "backend": w.cell[0],
                "scenario": w.cell[1],
                "half_width_pct": round(100 * w.half_width, 2) if math.isfinite(w.half_width)
                else None,
                "rounds": w.rounds,
                "status": "target met" if met else ("budget ended" if budget_ended else "not met"),
            }
        )  # fmt: skip
    return rows
