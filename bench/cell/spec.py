"""A cell: one backend × scenario (× seed) to train — the unit an executor runs, in this process,
in a fresh one, or on another machine. Plain data, so it travels as JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.api import RunOptions
from bench.cell.session import run
from bench.data import DataCache
from bench.results.record import EpochRecord, Result
from scenarios import Scenario

#: Called after every finished epoch of a cell.
EpochCallback = Callable[["CellSpec", EpochRecord], None]


@dataclass(frozen=True)
class CellSpec:
    """What to train and on which data: ``data`` is the path ``--data`` named (None: the shipped
    MNIST), cut to the first ``n_train`` / ``n_test`` rows (None: all). ``round`` and
    ``position``: its place in ``mlpbench run``'s plan (``bench.campaign.rounds``), if any.
    ``eval_every``: the evaluation cadence in training samples (``--eval-every``; None: after
    each epoch), the same for every backend that can evaluate inside an epoch."""

    backend: str
    scenario: Scenario
    options: RunOptions = field(default_factory=RunOptions)
    data: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    round: int | None = None
    position: int | None = None
    division: str = "shipped"
    eval_every: int | None = None  # evaluate every N training samples (None: per epoch)

    @property
    def label(self) -> str:
        return f"{self.backend}/{self.scenario.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "scenario": self.scenario.to_dict(),
            "options": {
                "tf32": self.options.tf32,
                "backend": dict(self.options.backend),
                **({"threads": self.options.threads} if self.options.threads else {}),
            },
            "data": self.data,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "round": self.round,
            "position": self.position,
            "division": self.division,
            "eval_every": self.eval_every,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellSpec:
        return cls(
            **{
                **d,
                "scenario": Scenario.from_dict(d["scenario"]),
                "options": RunOptions(**d["options"]),
            }
        )


def train_here(cell: CellSpec, data: DataCache, on_epoch: EpochCallback | None = None) -> Result:
    """Train ``cell`` in this process on ``data`` (which must hold the cell's data)."""
    progress = None if on_epoch is None else lambda s, r: on_epoch(cell, r)
    return run(
        cell.backend,
        cell.scenario,
        data.get(cell.scenario.dtype),
        progress,
        cell.options,
        cell.eval_every,
    )
