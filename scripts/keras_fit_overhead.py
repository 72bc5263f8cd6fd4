"""What the harness costs a Keras backend: its warm epochs against a plain multi-epoch ``fit``.

In one process, interleaved round by round, for a Keras backend (default ``keras``, TensorFlow)
and a scenario (default ``baseline``, batch 32, full MNIST):

- ``plain``: the backend's model, built as the harness builds it (same layers, compile, initial
  weights), trained by one ``model.fit(x, y, epochs=4, batch_size=B, shuffle=True)``; each
  epoch timed by a callback (``on_epoch_begin`` → ``on_epoch_end``);
- ``harness``: the same backend driven by ``bench.cell.session.Session`` for 4 epochs, each
  epoch timed as ``mlpbench run`` times it (evaluation after each epoch, untimed);
- ``harness-arrays``: the same, with ``fit`` handed the epoch's rows as fresh arrays each epoch
  (``FreshArrays``: the feed before the persistent ``tf.data`` pipeline on TensorFlow, and before
  the per-batch ``PyDataset`` on JAX and PyTorch) — the "before" of those changes.

Epochs 2–4 of each are warm. Prints every warm epoch, the medians and the ratio to ``plain``.

    python scripts/keras_fit_overhead.py [--backend keras] [--scenario baseline] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import scenarios
from bench.cell.session import Session
from bench.data import load_dataset
from bench.stats import paired_ratio, round_median, warm_epochs

EPOCHS = 4


class FreshArrays:
    """The earlier feed: ``fit`` handed ``x[order]``, ``y[order]`` (one host gather of the whole
    training set per epoch, inside the timed epoch) with ``shuffle=False``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def fit_args(self, order: np.ndarray) -> dict[str, Any]:
        return {"x": self.x[order], "y": self.y[order], "batch_size": self.batch_size}


def plain_fit(backend: str, scenario: Any, data: Any) -> list[float]:
    """Seconds of each epoch of one plain ``fit`` over EPOCHS epochs of the harness's model."""
    session = Session(backend, scenario, data)
    session.build()
    model = session.backend.model
    seconds: list[float] = []

    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds.append(time.perf_counter() - self.start)

    x = np.asarray(data.x_train, dtype=scenario.dtype)
    y = np.asarray(data.y_train, dtype=np.int64)
    model.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=scenario.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[EpochClock()],
    )
    return seconds


def harness(backend: str, scenario: Any, data: Any, arrays: bool) -> list[float]:
    """Seconds of each of EPOCHS epochs timed as ``mlpbench run`` times them."""
    session = Session(backend, scenario, data)
    session.build()
    if arrays:
        session.backend.feed = FreshArrays(
            np.asarray(data.x_train, dtype=scenario.dtype),
            np.asarray(data.y_train, dtype=np.int64),
            scenario.batch_size,
        )
    return [session.run_epoch().seconds for _ in range(EPOCHS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="keras")
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scenario = scenarios.get(args.scenario)
    data = load_dataset(dtype=scenario.dtype)
    ways = {
        "plain": lambda: plain_fit(args.backend, scenario, data),
        "harness": lambda: harness(args.backend, scenario, data, arrays=False),
        "harness-arrays": lambda: harness(args.backend, scenario, data, arrays=True),
    }
    medians: dict[str, dict[int, float]] = {name: {} for name in ways}
    for round_ in range(1, args.rounds + 1):
        for name, way in ways.items():
            seconds = way()
            medians[name][round_] = round_median(warm_epochs(seconds))
            print(f"round {round_} {name:15s} " + " ".join(f"{s:.3f}" for s in seconds), flush=True)
    print(f"\n{args.backend} {args.scenario} batch {scenario.batch_size}: per round, the median")
    print("warm epoch; against plain, paired by round (bench.stats.paired_ratio)")
    for name, per_round in medians.items():
        mean = statistics.fmean(per_round.values())
        shown = paired_ratio(per_round, medians["plain"]).shown()
        print(f"  {name:15s} {mean:.3f} s  ({shown} × plain, {len(per_round)} rounds)")


if __name__ == "__main__":
    main()
