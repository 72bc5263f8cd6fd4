"""The arithmetic shape of a scenario's network: its layers, the matrix-product work of one
epoch and the least memory traffic of one step.

Only the matrix products are counted as FLOPs (they are > 97 % of the arithmetic); elementwise
work, softmax and the optimizer are extra cost on top of this floor, never counted as useful
FLOPs. Plain arithmetic on sizes: nothing here runs or measures anything.
"""

from __future__ import annotations

import itertools


def layer_sizes(n_in: int, hidden: tuple[int, ...], n_out: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each Dense layer."""
    widths = [n_in, *hidden, n_out]
    return list(itertools.pairwise(widths))


def epoch_flops(n_train: int, n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one training epoch over n_train samples.

    Per sample and Dense layer (fan_in → fan_out): forward 2·in·out, weight gradient 2·in·out, and
    input gradient 2·in·out for every layer but the first (the input needs no gradient).
    """
    per_sample = 0
    for layer, (fan_in, fan_out) in enumerate(layer_sizes(n_in, hidden, n_out)):
        products = 2 if layer == 0 else 3
        per_sample += products * 2 * fan_in * fan_out
    return per_sample * n_train


def step_bytes(batch: int, n_in: int, hidden: tuple[int, ...], n_out: int, itemsize: int) -> int:
    """An estimate of the least memory traffic of one training step (bytes): every weight read
    in the forward and backward passes and written as a gradient, the optimizer reading and
    writing weights, gradients and two moments (~10 passes over the parameters), and each
    activation written once and read about five times (forward, backward, ReLU mask, dropout)."""
    sizes = layer_sizes(n_in, hidden, n_out)
    params = sum(i * o + o for i, o in sizes)
    activations = batch * (n_in + sum(hidden) + n_out)
    return itemsize * (10 * params + 6 * activations)
