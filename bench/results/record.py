"""What one scenario × backend run produced, as immutable values (the JSON writer's input)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.stats import warm_epochs
from scenarios import Scenario


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: ``seconds`` is the timed training pass; losses are mean cross-entropies;
    accuracies are fractions in [0, 1]. Training metrics are Keras-style running means over the
    epoch's batches (each measured before its update); test metrics are taken after the epoch."""

    epoch: int
    seconds: float
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    device_seconds: float | None = None  # device-side epoch time where the backend measures it
    # the median and interquartile range (seconds) of the epoch's per-step device times, where
    # the backend measures them (CUDA events around each step)
    device_step_median_s: float | None = None
    device_step_iqr_s: float | None = None
    # evaluations inside the epoch (``mlpbench run --eval-every``), untimed, in order: each
    # {"samples": trained so far in this epoch, "fraction": of the epoch, "seconds": timed
    # training seconds so far in this epoch, "test_loss", "test_accuracy"}; the end of the
    # epoch is the record itself
    evaluations: tuple[dict[str, float], ...] = ()


@dataclass(frozen=True)
class Result:
    """Everything one scenario × backend run produced. ``backend`` is the registered name;
    ``skipped`` holds the backend's reason when it could not run the scenario; ``complete`` is
    False for an interrupted or failed run; ``failed`` is the one-line reason a run died (its
    process killed by a signal, an exception in the backend). ``pid`` is the process that trained
    it and ``peak_rss_bytes`` that process's peak resident memory (the whole process's peak when
    cells share one). ``slurm_job_id`` and ``hostname``: the Slurm job and the host that trained
    it (``--executor slurm``; None otherwise). ``round`` and ``position``: where ``mlpbench run``
    placed the cell (its round, 0-based, and its 0-based place in that round's order);
    ``started`` / ``ended``: when it ran (UNIX seconds); ``conditions``: what the machine was
    doing meanwhile (``bench.campaign.conditions``); ``code``: the fingerprint of the code it ran
    (``bench.campaign.fingerprint``); ``options``: the backend options it was asked to run with;
    ``design``: "lockstep" when its epochs alternated with the other backends' of its scenario and
    round, each in its own waiting process (``bench.campaign.lockstep``), else None (a cell
    trained start to end in one go)."""

    backend: str
    scenario: Scenario
    history: tuple[EpochRecord, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    build_seconds: float | None = None
    complete: bool = True
    skipped: str | None = None
    n_train: int = 0
    n_test: int = 0
    n_features: int = 784
    failed: str | None = None
    pid: int | None = None
    peak_rss_bytes: int | None = None
    slurm_job_id: str | None = None
    hostname: str | None = None
    round: int | None = None
    position: int | None = None
    started: float | None = None
    ended: float | None = None
    conditions: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    options: dict[str, Any] | None = None
    division: str | None = None
    design: str | None = None

    @property
    def epoch_seconds(self) -> list[float]:
        return [r.seconds for r in self.history]

    @property
    def cold_seconds(self) -> float | None:
        return self.history[0].seconds if self.history else None

    @property
    def warm_seconds(self) -> list[float]:
        return warm_epochs(self.epoch_seconds)

    @property
    def test_accuracy(self) -> float | None:
        return self.history[-1].test_accuracy if self.history else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a worker process sends back (``from_dict`` inverts it)."""
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "scenario": self.scenario.to_dict(),
            "history": [asdict(r) for r in self.history],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(
            **{
                **d,
                "scenario": Scenario.from_dict(d["scenario"]),
                "history": tuple(EpochRecord(**r) for r in d["history"]),
            }
        )
