"""What every plain script shares and no framework user would write differently: its command
line, reading MNIST from a Keras-layout .npz, and its output.

The recipe is the harness's ``baseline``: 784 → 128 ReLU → 10 softmax, mean sparse categorical
cross-entropy, Adam (lr 1e-3, β1 0.9, β2 0.999, ε 1e-7), batch 32, float32, the training rows
shuffled every epoch by the framework's own generator, seeded from ``--seed``.

Output contract (stdout, one JSON object per line): ``{"epoch": i, "seconds": s}`` for every
epoch i = 1..``--epochs``, where s is the wall time of the training loop over that epoch's
batches (shuffle, batching, forward, backward, update, the epoch's loss and accuracy; no
evaluation), then ``{"test_accuracy": a}`` (fraction in [0, 1]). Nothing else goes to stdout.

``--lockstep`` (``mlpbench fidelity``'s design: the script and the harness's cell take turns,
epoch by epoch): the script calls ``next_epoch(args)`` before each epoch's clock starts; the
first call says ``{"ready": true}`` (data loaded, model built), and every call blocks until the
parent writes ``epoch`` on stdin. Without the flag it returns at once: the script's own code is
the same either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NamedTuple

import numpy as np

HIDDEN = 128
N_CLASSES = 10
LEARNING_RATE = 1e-3
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
BATCH_SIZE = 32


class Mnist(NamedTuple):
    """x_* float32 (n, 784) in [0, 1]; y_* int64 (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def parser(description: str) -> argparse.ArgumentParser:
    """``--data PATH --epochs N [--n-train N] [--n-test N] [--seed S]``; a script may add its own
    arguments before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="MNIST as a Keras-layout .npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=None, help="first N training rows")
    parser.add_argument("--n-test", type=int, default=None, help="first N test rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lockstep",
        action="store_true",
        help="wait for 'epoch' on stdin before each epoch (mlpbench fidelity)",
    )
    return parser


def load(args: argparse.Namespace) -> Mnist:
    """The .npz's arrays, flattened and scaled to [0, 1] in float32, optionally the first rows."""
    with np.load(args.data) as f:
        x_train, y_train = f["x_train"][: args.n_train], f["y_train"][: args.n_train]
        x_test, y_test = f["x_test"][: args.n_test], f["y_test"][: args.n_test]

    def scaled(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float32) / np.float32(255)

    return Mnist(scaled(x_train), y_train.astype(np.int64), scaled(x_test), y_test.astype(np.int64))


def emit(**fields: float) -> None:
    """One output line."""
    print(json.dumps(fields), flush=True)


_told_ready = False


def next_epoch(args: argparse.Namespace) -> None:
    """Before an epoch's clock starts: with ``--lockstep``, say ready (the first time) and wait
    for the parent's ``epoch``; anything else on stdin (``stop``, its end) ends the script."""
    global _told_ready
    if not args.lockstep:
        return
    if not _told_ready:
        emit(ready=True)
        _told_ready = True
    if sys.stdin.readline().strip() != "epoch":
        raise SystemExit(0)
