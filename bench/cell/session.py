"""scenario × backend → Result: shared initial weights and batch order, epoch timing, evaluation.

The backend is created through ``bench.registry`` and handed only ``backends.api`` values: the
scenario's ``Recipe``, the data as ``TrainData`` and the initial weights.

What is timed: each training epoch, through ``bench.cell.timing.timed`` (device synchronized
before the clock starts and before it stops). What is not: data loading, ``build`` (model
creation, optimizer state, host→device copies; reported as ``build_seconds``), drawing the batch
order, evaluation (after every epoch, and with ``eval_every`` between slices of it). Every epoch's
seconds are recorded; which are cold (epoch 1: first-call costs
such as tracing land there) and which warm is ``bench.stats``' rule, applied when results are
written and read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from backends.api import EpochMetrics, RecipeUnsupported, RunOptions
from bench import registry
from bench.cell.initializers import initial_weights
from bench.cell.timing import timed
from bench.errors import ConfigError
from bench.results.record import EpochRecord, Result
from scenarios import N_CLASSES, Scenario

if TYPE_CHECKING:
    from bench.data import Dataset


def epoch_order(scenario: Scenario, n: int, epoch: int) -> np.ndarray:
    """The harness's row order for ``epoch`` (1-based): a permutation of range(n) (int64) drawn
    from (seed, epoch), or range(n) when the scenario does not shuffle. Every backend gets it."""
    if not scenario.shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([scenario.seed, epoch])
    return rng.permutation(n).astype(np.int64)


def scenario_weights(scenario: Scenario, data: Dataset) -> list[np.ndarray]:
    """Initial weights for ``scenario`` on ``data``, drawn on the host from its init and seed."""
    return initial_weights(
        scenario.init,
        data.n_features,
        scenario.hidden,
        N_CLASSES,
        seed=scenario.seed,
        dtype=scenario.dtype,
    )


def _median_iqr(seconds: Any) -> tuple[float | None, float | None]:
    """(median, interquartile range) of per-step device seconds; (None, None) when the backend
    gave none. Read here, after the clock stopped (reading CUDA events waits for them)."""
    if seconds is None:
        return None, None
    values = np.fromiter(seconds, dtype=np.float64)
    if values.size == 0:
        return None, None
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(median), float(q3 - q1)


class Session:
    """One scenario × backend run, an epoch at a time (the pytest-benchmark suite drives it through
    ``next_order`` / ``train`` / ``evaluate``; ``run`` below drives it in a loop)."""

    def __init__(
        self,
        backend_name: str,
        scenario: Scenario,
        data: Dataset,
        progress: Callable[[Session, EpochRecord], None] | None = None,
        options: RunOptions | None = None,
        eval_every: int | None = None,
    ) -> None:
        if data.dtype != scenario.dtype:
            raise ConfigError(
                f"data is {data.dtype} but scenario {scenario.name!r} needs {scenario.dtype}"
            )
        self.options = options or RunOptions()
        self.backend = registry.create(backend_name, self.options)
        self.eval_every = (
            eval_every if eval_every and evaluates_within_epochs(self.backend) else None
        )
        self.asked_eval_every = eval_every
        self.backend_name = backend_name
        self.scenario, self.data, self.progress = scenario, data, progress
        self.history: list[EpochRecord] = []
        self.build_seconds: float | None = None
        self._pending: tuple[Any, float] | None = None

    def build(self) -> None:
        """Untimed set-up: initial weights handed to the backend, data moved to its device.
        Raises RecipeUnsupported(reason) when the backend cannot run this scenario."""
        weights = scenario_weights(self.scenario, self.data)
        recipe = self.scenario.recipe(self.data.n_train)
        start = time.perf_counter()
        self.backend.build(recipe, self.data, weights)
        self.backend.synchronize()
        self.build_seconds = time.perf_counter() - start

    @property
    def pending(self) -> bool:
        """True between ``train`` and the ``evaluate`` that records it."""
        return self._pending is not None

    def next_order(self) -> np.ndarray:
        return epoch_order(self.scenario, self.data.n_train, len(self.history) + 1)

    def train(self, order: np.ndarray) -> float:
        """THE timed region: one training epoch over ``order``; returns its seconds. With a
        sub-epoch cadence (``eval_every`` samples, on a backend that allows it) the epoch is
        trained in consecutive slices, each timed, with an untimed evaluation after every slice
        but the last; the epoch's seconds are the slices' sum."""
        if self.eval_every is None:
            metrics, seconds = timed(
                lambda: self.backend.train_epoch(order), self.backend.synchronize
            )
            self._pending = (metrics, seconds, ())
            return seconds
        parts, seconds, evaluations = [], 0.0, []
        slices = epoch_slices(len(order), self.eval_every, self.scenario.batch_size or len(order))
        for i, (start, stop) in enumerate(slices):
            chunk = order[start:stop]
            metrics, spent = timed(
                lambda c=chunk: self.backend.train_epoch(c), self.backend.synchronize
            )
            seconds += spent
            parts.append((metrics, stop - start))
            if i < len(slices) - 1:
                test = self.backend.evaluate()
                evaluations.append(
                    {
                        "samples": stop,
                        "fraction": stop / len(order),
                        "seconds": seconds,
                        "test_loss": float(test.loss),
                        "test_accuracy": float(test.accuracy),
                    }
                )
        self._pending = (combined(parts), seconds, tuple(evaluations))
        return seconds

    def evaluate(self) -> EpochRecord:
        """Untimed: evaluate on the test set and record the epoch just trained."""
        assert self._pending is not None, "evaluate() follows train()"
        metrics, seconds, evaluations = self._pending
        self._pending = None
        test = self.backend.evaluate()
        step_median, step_iqr = _median_iqr(metrics.device_step_seconds)
        record = EpochRecord(
            epoch=len(self.history) + 1,
            seconds=seconds,
            train_loss=float(metrics.loss),
            train_accuracy=float(metrics.accuracy),
            test_loss=float(test.loss),
            test_accuracy=float(test.accuracy),
            device_seconds=None
            if metrics.device_seconds is None
            else float(metrics.device_seconds),
            device_step_median_s=step_median,
            device_step_iqr_s=step_iqr,
            evaluations=evaluations,
        )
        self.history.append(record)
        if self.progress is not None:
            self.progress(self, record)
        return record

    def run_epoch(self) -> EpochRecord:
        self.train(self.next_order())
        return self.evaluate()

    def result(self, complete: bool) -> Result:
        return Result(
            backend=self.backend_name,
            scenario=self.scenario,
            history=tuple(self.history),
            settings=self.settings(),
            build_seconds=self.build_seconds,
            complete=complete,
            n_train=self.data.n_train,
            n_test=self.data.n_test,
            n_features=self.data.n_features,
        )

    def _cadence(self) -> dict[str, Any]:
        """How often it evaluated: every N samples, or per epoch (and why, when a finer cadence
        was asked of a backend that cannot)."""
        if self.eval_every:
            step = slice_samples(self.eval_every, self.scenario.batch_size or self.data.n_train)
            return {"eval_every": self.eval_every, "eval_every_samples": step}
        if self.asked_eval_every:
            return {"eval_every": "epoch (the backend evaluates between epochs only)"}
        return {}

    def settings(self) -> dict[str, Any]:
        threads = self.options.threads
        return {
            "device": self.backend.device,
            "batch_size": self.scenario.batch_size or self.data.n_train,
            "epochs": self.scenario.epochs,
            "seed": self.scenario.seed,
            **({"threads_budget": threads} if threads else {}),
            **self._cadence(),
            **self.backend.settings(),
        }


def evaluates_within_epochs(backend: Any) -> bool:
    """Whether ``backend`` allows evaluation between slices of an epoch (its class's optional
    ``SUB_EPOCH_EVALUATION``, see ``backends.api.Backend``)."""
    return bool(getattr(type(backend), "SUB_EPOCH_EVALUATION", False))


def epoch_slices(n: int, every: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of consecutive slices of an epoch of ``n`` rows: ``every`` samples each,
    rounded up to whole batches (the batches stay those of one unsliced epoch), the last one
    shorter where the epoch ends."""
    step = slice_samples(every, batch_size)
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def slice_samples(every: int, batch_size: int) -> int:
    """The samples between two evaluations: ``every`` rounded up to whole batches."""
    return max(batch_size, -(-every // batch_size) * batch_size)


def combined(parts: list[tuple[EpochMetrics, int]]) -> EpochMetrics:
    """An epoch's metrics from its slices' (metrics, rows): sample-weighted means; device
    seconds summed (None unless every slice has them); per-step device times concatenated."""
    rows = sum(n for _, n in parts)
    device = [m.device_seconds for m, _ in parts]
    steps = [m.device_step_seconds for m, _ in parts]
    return EpochMetrics(
        loss=sum(float(m.loss) * n for m, n in parts) / rows,
        accuracy=sum(float(m.accuracy) * n for m, n in parts) / rows,
        device_seconds=None if None in device else sum(float(d) for d in device),
        device_step_seconds=None
        if all(s is None for s in steps)
        else [float(x) for s in steps if s is not None for x in s],
    )


def run(
    backend_name: str,
    scenario: Scenario,
    data: Dataset,
    progress: Callable[[Session, EpochRecord], None] | None = None,
    options: RunOptions | None = None,
    eval_every: int | None = None,
) -> Result:
    """Train ``scenario`` on ``backend_name`` for scenario.epochs epochs (evaluating every
    ``eval_every`` samples where the backend allows it, else after each epoch).

    Ctrl-C (KeyboardInterrupt) between or inside epochs returns the finished epochs with
    ``complete=False``; a backend that refuses the scenario gives ``skipped=reason``.
    """
    session = Session(backend_name, scenario, data, progress, options, eval_every)
    try:
        session.build()
    except RecipeUnsupported as err:
        return Result(
            backend=backend_name,
            scenario=scenario,
            skipped=str(err) or "not supported",
            n_train=data.n_train,
            n_test=data.n_test,
        )
    try:
        for _ in range(scenario.epochs):
            session.run_epoch()
    except KeyboardInterrupt:
        return session.result(complete=False)
    return session.result(complete=True)
