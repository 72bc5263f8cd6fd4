"""How many rounds each speed cell of a results file needs, and what a publication would reach.

Reads a ``mlpbench run`` results JSON (e.g. ``results/amd-epyc-2cpu/run.json``) and, per cell,
takes its rounds' values as the tables do: for NumPy (the reference) the log of each round's
median warm epoch, for every other backend each round's log ratio to NumPy
(``bench.stats.round_log_ratio``: the Hodges–Lehmann location of its per-epoch log ratios). From
their spread between rounds it prints the cell's half-width now and the rounds it would need for a
95 % interval within ±10 % and ±5 %, assuming the spread stays as measured.

Then it replays ``--target-ci`` on those spreads: ROUNDS rounds of every cell, then one more round
of the cells still wider than ±TARGET_CI % (each with NumPy's) while the BUDGET minutes allow it,
each round costing what that cell's rounds cost in the file (``bench.campaign.precision.
round_costs``: a lockstep round's wall time shared by its cells) — and prints how many cells
would end within ±10 % and ±5 %. A planning aid, not a measurement: the spreads come from the
file's few rounds.

    python scripts/rounds_needed.py results/amd-epyc-2cpu/run.json [--target-ci 10]
        [--budget 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from scipy import stats as st

from bench.campaign.precision import round_costs
from bench.stats import REFERENCE, round_log_ratio, round_median, warm_epochs

Cell = tuple[str, str]  # (backend, scenario)


def round_values(doc: dict) -> dict[Cell, list[float]]:
    """Per cell, its rounds' log values (see the module's docstring)."""
    epochs: dict[Cell, dict[int, list[float]]] = defaultdict(dict)
    for entry in doc["benchmarks"]:
        extra, params = entry["extra_info"], entry["params"]
        if extra.get("complete") and not extra.get("failed"):
            warm = warm_epochs([h["seconds"] for h in extra["history"]])
            if warm:
                epochs[(params["backend"], params["scenario"])][int(params["seed"])] = warm
    values = {}
    for (backend, scenario), rounds in epochs.items():
        if backend == REFERENCE:
            values[(backend, scenario)] = [math.log(round_median(w)) for w in rounds.values()]
        else:
            ref = epochs.get((REFERENCE, scenario), {})
            values[(backend, scenario)] = [
                round_log_ratio(w, ref[seed]) for seed, w in rounds.items() if seed in ref
            ]
    return {cell: v for cell, v in values.items() if len(v) >= 2}


def half_width(spread: float, rounds: int) -> float:
    """The relative half-width of a 95 % t interval over ``rounds`` values of sd ``spread``."""
    return math.exp(st.t.ppf(0.975, rounds - 1) * spread / math.sqrt(rounds)) - 1


def rounds_for(spread: float, target: float) -> int | None:
    """The fewest rounds whose interval is within ±``target`` (None: more than 500)."""
    return next((n for n in range(2, 501) if half_width(spread, n) <= target), None)


def replay(
    spreads: dict[Cell, float], cost: dict[Cell, float], target: float, budget: float, first: int
) -> tuple[dict[Cell, int], float]:
    """``--target-ci``'s loop on the measured spreads: rounds per cell and minutes used."""
    rounds = dict.fromkeys(spreads, first)
    used = first * sum(cost.get(c, 0.0) for c in spreads)
    while True:
        over = {c for c in spreads if half_width(spreads[c], rounds[c]) > target}
        wanted = over | {(REFERENCE, scenario) for _, scenario in over}
        estimate = sum(cost.get(c, 0.0) for c in wanted)
        if not over or used + estimate > budget:
            return rounds, used / 60
        used += estimate
        for c in wanted & rounds.keys():
            rounds[c] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--target-ci", type=float, default=10.0)
    parser.add_argument("--budget", type=float, default=100.0, help="minutes")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    doc = json.loads(args.results.read_text(encoding="utf-8"))
    values = round_values(doc)
    spreads = {cell: statistics.stdev(v) for cell, v in values.items()}
    print(f"{args.results}: per cell, ±half-width now (rounds) → rounds for ±10 % / ±5 %")
    for cell in sorted(spreads, key=lambda c: -spreads[c] / math.sqrt(len(values[c]))):
        n = len(values[cell])
        print(
            f"  {cell[1]:15s} {cell[0]:12s} ±{100 * half_width(spreads[cell], n):5.1f} % ({n})"
            f" → {rounds_for(spreads[cell], 0.10)} / {rounds_for(spreads[cell], 0.05)}"
        )
    rounds, minutes = replay(
        spreads, round_costs(doc["benchmarks"]), args.target_ci / 100, 60 * args.budget, args.rounds
    )
    widths = [half_width(spreads[c], rounds[c]) for c in spreads]
    print(
        f"\n{args.rounds} rounds, then --target-ci {args.target_ci:g} within {args.budget:g} min: "
        f"{minutes:.0f} min; within ±10 %: {sum(w <= 0.10 for w in widths)} of {len(widths)}, "
        f"within ±5 %: {sum(w <= 0.05 for w in widths)}"
    )


if __name__ == "__main__":
    main()
