"""The order ``mlpbench run`` trains its cells in: rounds, each in a fresh random order.

A round runs every chosen backend × scenario once. Round r trains with the r-th seed asked for
(``--seed`` / ``--rounds``: round r uses seed r), so cells of one round are paired by seed. Within
a round the order is a random permutation drawn from (order seed, round) — randomized multiple
interleaved trials (Abedi & Brecht, ICPE 2017): a disturbance that lasts minutes lands on a few
cells of several backends instead of every cell of one, and no backend always runs after the
same other one. ``sequential`` keeps the catalogue order (scenario, then seed, then backend).
"""

from __future__ import annotations

import fnmatch
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from scenarios import Scenario

ORDERS = ("interleaved", "sequential")


@dataclass(frozen=True)
class Slot:
    """One cell's place in the plan: ``round`` (0-based), ``position`` in that round's order."""

    backend: str
    scenario: Scenario
    round: int
    position: int

    @property
    def key(self) -> tuple[str, str, int]:
        """(backend, scenario name, seed): what identifies a cell across runs."""
        return self.backend, self.scenario.name, self.scenario.seed


def cell_filter(specs: list[str] | None, backends: list[str], names: list[str]):
    """A predicate (backend, scenario name) → bool for ``--cells BACKENDS:SCENARIOS`` specs
    (comma-separated names or shell patterns; the union of the specs); everything without any.
    ``backends`` and ``names`` are what the specs may name (every installed backend, every
    scenario: a backend that cannot run here simply has no cells). ValueError (one line) for a
    malformed spec or a pattern that matches none of them."""
    if not specs:
        return lambda backend, scenario: True
    pairs: set[tuple[str, str]] = set()
    for spec in specs:
        left, sep, right = spec.partition(":")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"--cells {spec!r}: write BACKENDS:SCENARIOS, e.g. numpy:gap_*")
        chosen = [_matching(p, backends, "backend", spec) for p in left.split(",")]
        scenarios_ = [_matching(p, names, "scenario", spec) for p in right.split(",")]
        pairs |= {
            (b, s) for group in chosen for b in group for group_s in scenarios_ for s in group_s
        }
    return lambda backend, scenario: (backend, scenario) in pairs


def _matching(pattern: str, choices: list[str], what: str, spec: str) -> list[str]:
    """The choices ``pattern`` names: exactly, as a shell pattern, or (for a sweep's points,
    ``baseline[batch_size=256]``) through the scenario they came from."""
    pattern = pattern.strip()
    found = [
        c
        for c in choices
        if c == pattern
        or fnmatch.fnmatchcase(c, pattern)
        or fnmatch.fnmatchcase(c.split("[", 1)[0], pattern)
    ]
    if not found:
        raise ValueError(
            f"--cells {spec!r}: {pattern.strip()!r} matches no chosen {what} ({', '.join(choices)})"
        )
    return found


def new_order_seed() -> int:
    """A fresh order seed (recorded in the results, so the order can be drawn again)."""
    return secrets.randbelow(2**31)


def plan(
    backends: list[str],
    rounds: list[list[Scenario]],
    order: str = "interleaved",
    order_seed: int = 0,
    first_round: int = 0,
    keep: Callable[[str, str], bool] | None = None,
) -> list[Slot]:
    """Every backend × scenario of each round (those ``keep(backend, scenario name)`` allows),
    rounds one after another. ``rounds[i]`` holds the scenarios of round ``first_round + i``
    (already with that round's seed)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    keep = keep or (lambda backend, scenario: True)
    if order == "sequential":
        slots = []
        for index, scenario in _catalogue_order(rounds):
            for backend in backends:
                if keep(backend, scenario.name):
                    done = sum(1 for s in slots if s.round == first_round + index)
                    slots.append(Slot(backend, scenario, first_round + index, done))
        return slots
    slots = []
    for index, scenarios in enumerate(rounds):
        number = first_round + index
        cells = [(b, s) for s in scenarios for b in backends if keep(b, s.name)]
        random.Random(f"mlpbench-order:{order_seed}:{number}").shuffle(cells)
        slots += [Slot(b, s, number, i) for i, (b, s) in enumerate(cells)]
    return slots


def _catalogue_order(rounds: list[list[Scenario]]) -> list[tuple[int, Scenario]]:
    """(round index, scenario) by scenario first, then round: today's sequential order."""
    names = list(dict.fromkeys(s.name for r in rounds for s in r))
    return [(i, s) for name in names for i, r in enumerate(rounds) for s in r if s.name == name]
