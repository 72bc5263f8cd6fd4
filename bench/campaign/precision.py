"""``mlpbench run --target-ci PCT --budget MINUTES``: more rounds where the intervals are widest.

After the planned rounds, every cell's warm epochs are known per round. A cell's precision is the
relative half-width of its interval: for the reference backend its own speed's (the rounds'
median warm epochs, Student-t over rounds), for every other backend its ratio to the reference by
the rule the tables publish (``bench.stats.speed_ratio``: epoch by epoch within rounds when the
run trained in lockstep), so the run stops on the interval it will publish. While some cell is
wider than the target and the budget allows another round of the cells that are (each with its
reference, so the pairs stay paired), that round runs; then each cell is "target met", or
"budget ended" with its width.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.campaign.lockstep import group_key
from bench.results.read import warm_median
from bench.stats import mean_ci, relative_half_width, round_median, speed_ratio, warm_epochs

CellKey = tuple[str, str]  # (backend, scenario)


@dataclass(frozen=True)
class Width:
    """A cell's relative interval half-width now, over ``rounds`` rounds."""

    cell: CellKey
    half_width: float
    rounds: int


Rounds = dict[int, list[float]]  # seed → the round's warm epochs' seconds, in order


def round_epochs(entries: list[dict[str, Any]]) -> dict[CellKey, Rounds]:
    """(backend, scenario) → {seed: the round's warm epochs} from benchmark entries (complete
    ones with warm epochs only)."""
    found: dict[CellKey, Rounds] = defaultdict(dict)
    for entry in entries:
        extra, params = entry.get("extra_info") or {}, entry.get("params") or {}
        if not extra.get("complete") or extra.get("failed") or warm_median(entry) is None:
            continue
        warm = warm_epochs([h["seconds"] for h in extra.get("history") or []])
        found[(params["backend"], params["scenario"])][int(params["seed"])] = warm
    return dict(found)


def in_lockstep(entries: list[dict[str, Any]]) -> bool:
    """Whether every entry trained in lockstep rounds (``extra_info.design``)."""
    return all((e.get("extra_info") or {}).get("design") == "lockstep" for e in entries)


def widths(rounds: dict[CellKey, Rounds], reference: str, lockstep: bool) -> list[Width]:
    """Every cell's relative half-width, widest first."""
    out = []
    for (backend, scenario), per_round in rounds.items():
        if backend == reference:
            estimate = mean_ci([round_median(w) for w in per_round.values() if w])
        else:
            estimate, _ = speed_ratio(rounds.get((reference, scenario), {}), per_round, lockstep)
        out.append(Width((backend, scenario), relative_half_width(estimate), len(per_round)))
    return sorted(out, key=lambda w: -w.half_width)


def too_wide(rounds: dict[CellKey, Rounds], reference: str, target: float, lockstep: bool) -> set:
    """The cells to run again for ``target`` (a fraction): those wider, with their references."""
    over = {w.cell for w in widths(rounds, reference, lockstep) if w.half_width > target}
    return over | {(reference, scenario) for _, scenario in over}


def round_costs(entries: list[dict[str, Any]]) -> dict[CellKey, float]:
    """(backend, scenario) → the mean wall seconds one more round of that cell costs, from the
    benchmark entries so far (those that record when they started and ended). A cell trained in
    a process of its own costs its span. Cells trained in one lockstep group (``group_key``)
    share its span (each started with the group and ended with it): each is charged the span in
    proportion to its own epochs' seconds among the group's, so the cells of a group add up to
    its wall time once, not once per backend."""
    spells = []  # (cell, round key, span, epoch seconds, lockstep)
    for entry in entries:
        extra, params = entry.get("extra_info") or {}, entry.get("params") or {}
        started, ended = extra.get("started"), extra.get("ended")
        if not isinstance(started, float) or not isinstance(ended, float):
            continue
        epochs = sum(h["seconds"] for h in extra.get("history") or [])
        cell = (params["backend"], params["scenario"])
        group = group_key(cell[1], params.get("seed"))
        spells.append((cell, group, ended - started, epochs, extra.get("design") == "lockstep"))
    shared: dict[tuple, float] = defaultdict(float)  # lockstep group → its cells' epoch seconds
    for _, key, _, epochs, lockstep in spells:
        if lockstep:
            shared[key] += epochs
    costs: dict[CellKey, list[float]] = defaultdict(list)
    for cell, key, span, epochs, lockstep in spells:
        share = epochs / shared[key] if lockstep and shared[key] > 0 else 1.0
        costs[cell].append(span * share)
    return {cell: sum(v) / len(v) for cell, v in costs.items()}


def report(
    rounds: dict[CellKey, Rounds],
    reference: str,
    target: float,
    budget_ended: bool,
    lockstep: bool,
) -> list[dict[str, Any]]:
    """Per cell: its half-width (percent), rounds, and "target met" / "budget ended"."""
    rows = []
    for w in widths(rounds, reference, lockstep):
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
