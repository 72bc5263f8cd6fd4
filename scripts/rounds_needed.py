"""How many rounds each speed cell of a results file needs, and what a publication would reach.

Reads a ``mlpbench run`` results JSON (e.g. ``results/amd-epyc-2cpu/run.json``) and, per cell,
takes the spread between rounds of the estimate the tables publish (``bench.campaign.precision``
reads the rounds, ``bench.stats`` estimates): for NumPy (the reference) the spread of its rounds'
median warm epochs relative to their mean (``mean_ci``), for every other backend the spread of
its per-round log ratios to NumPy (``speed_ratio``: epoch by epoch in lockstep). From it, it
prints the cell's relative half-width now (as ``stats.relative_half_width`` computes it) and the
rounds it would need for a 95 % interval within ±10 % and ±5 %, assuming the spread stays as
measured.

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
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as st

from bench.campaign.precision import in_lockstep, round_costs, round_epochs
from bench.stats import CONFIDENCE, REFERENCE, mean_ci, round_median, speed_ratio

Cell = tuple[str, str]  # (backend, scenario)


@dataclass(frozen=True)
class Spread:
    """A cell's spread between rounds: ``sd`` relative to the mean (``log`` False: NumPy's own
    speed) or of the log ratios (``log`` True), over ``rounds`` rounds."""

    sd: float
    log: bool
    rounds: int

    def half_width(self, rounds: int) -> float:
        """The relative half-width of the published interval over ``rounds`` rounds: t·sd/√n
        for a mean, sinh(t·sd/√n) for a ratio (its interval is symmetric on the log scale)."""
        h = st.t.ppf(0.5 + CONFIDENCE / 2, rounds - 1) * self.sd / math.sqrt(rounds)
        return math.sinh(h) if self.log else h

    def rounds_for(self, target: float) -> int | None:
        """The fewest rounds whose interval is within ±``target`` (None: more than 500)."""
        return next((n for n in range(2, 501) if self.half_width(n) <= target), None)


def spreads(entries: list[dict]) -> dict[Cell, Spread]:
    """Per cell with at least 2 rounds, its spread (see the module's docstring)."""
    rounds, lockstep = round_epochs(entries), in_lockstep(entries)
    found = {}
    for (backend, scenario), per_round in rounds.items():
        if backend == REFERENCE:
            est = mean_ci([round_median(w) for w in per_round.values() if w])
            spread = Spread(est.sd / est.mean, False, est.n) if est.n >= 2 else None
        else:
            ratio, _ = speed_ratio(rounds.get((REFERENCE, scenario), {}), per_round, lockstep)
            spread = Spread(ratio.sd_log, True, ratio.n) if ratio.n >= 2 else None
        if spread is not None:
            found[(backend, scenario)] = spread
    return found


def replay(
    spread: dict[Cell, Spread], cost: dict[Cell, float], target: float, budget: float, first: int
) -> tuple[dict[Cell, int], float]:
    """``--target-ci``'s loop on the measured spreads: rounds per cell and minutes used."""
    rounds = dict.fromkeys(spread, first)
    used = first * sum(cost.get(c, 0.0) for c in spread)
    while True:
        over = {c for c in spread if spread[c].half_width(rounds[c]) > target}
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
    spread = spreads(doc["benchmarks"])
    print(f"{args.results}: per cell, ±half-width now (rounds) → rounds for ±10 % / ±5 %")
    for cell in sorted(spread, key=lambda c: -spread[c].half_width(spread[c].rounds)):
        s = spread[cell]
        print(
            f"  {cell[1]:15s} {cell[0]:12s} ±{100 * s.half_width(s.rounds):5.1f} % ({s.rounds})"
            f" → {s.rounds_for(0.10)} / {s.rounds_for(0.05)}"
        )
    rounds, minutes = replay(
        spread, round_costs(doc["benchmarks"]), args.target_ci / 100, 60 * args.budget, args.rounds
    )
    widths = [spread[c].half_width(rounds[c]) for c in spread]
    print(
        f"\n{args.rounds} rounds, then --target-ci {args.target_ci:g} within {args.budget:g} min: "
        f"{minutes:.0f} min; within ±10 %: {sum(w <= 0.10 for w in widths)} of {len(widths)}, "
        f"within ±5 %: {sum(w <= 0.05 for w in widths)}"
    )


if __name__ == "__main__":
    main()
