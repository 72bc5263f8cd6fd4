"""THE manual-backprop MLP, written once against an array module ``xp`` (NumPy or CuPy).

Network: x (B, 784) → [Dense → ReLU → Dropout] × len(hidden) → Dense → softmax, trained on the
mean over the batch of the categorical cross-entropy. Conventions follow Keras 3 exactly: weights
in Keras order [W1, b1, W2, b2, ...] with kernels (in, out) and biases (out,); inverted dropout
(keep a unit with p = 1 − rate, scale kept units by 1/p, training only); softmax computed
stably (the row's largest logit subtracted first); the optimizers' formulas, Adam with ε outside
the sqrt and RMSprop with ε inside it, are in ``backends.xp.optimizers``. The initial weights
and the batch order come from the caller (the harness draws them).

Speed without obscuring the math:
- parameters, gradients and optimizer state each live in ONE flat buffer; the per-layer W and b
  are views into it, so the optimizer updates all layers in a handful of whole-buffer passes;
- every per-batch array is preallocated once per batch size and written with ``out=``;
- every scalar that meets an array is a Python float, so NumPy's weak-scalar rules keep float32
  arithmetic in float32 (no hidden promotion);
- batch rows are gathered with ``xp.take(..., out=)`` rather than shuffling the whole dataset;
- sums over an axis (softmax row sums over the classes, bias gradients over the batch) are
  products with a ones vector, which NumPy runs faster than its axis reductions on these shapes
  (results/README.md has the measurement);
- per-epoch loss and accuracy are accumulated on the device: nothing here synchronizes the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from backends.xp.optimizers import make_optimizer


@dataclass
class _Workspace:
    """Preallocated per-batch-size buffers. acts[0] is the gathered input batch (B, n_in);
    acts[l] (l ≥ 1) is hidden layer l's output after ReLU and dropout (B, hidden[l-1])."""

    acts: list[Any]
    masks: list[Any]  # dropout keep-masks already scaled by 1/(1 - rate), one per hidden layer
    deltas: list[Any]  # dLoss/d(pre-activation) of each layer, (B, width)
    logits: Any  # (B, n_out); overwritten in place with the softmax, then with dLoss/dlogits
    labels: Any  # (B,) int64 gathered labels
    rows: Any  # (B,) int64 0..B-1, to pick each row's true-class entry
    ones: Any  # (n_out, 1) ones: row sums of (B, n_out) as one matrix product
    batch_ones: Any  # (1, B) ones: column sums of (B, width), i.e. bias gradients, likewise
    active: list[Any]  # (B, width) bool per hidden layer: ReLU'(z) = 1 where the unit is on


class XpMLP:
    """The MLP's parameters, optimizer state and training step on one array module.

    ``weights`` are host arrays in Keras order [W1, b1, W2, b2, ...]; they are copied into the
    flat parameter buffer in ``dtype``. ``dropout_seed`` seeds this engine's own dropout masks.
    """

    def __init__(
        self,
        xp: ModuleType,
        weights: Sequence[np.ndarray],
        *,
        dtype: str,
        optimizer: str,
        hyper: dict[str, float],
        dropout: float = 0.0,
        dropout_seed: int = 0,
    ) -> None:
        self.xp = xp
        self.dtype = np.dtype(dtype)
        self.dropout = float(dropout)
        self._shapes = [tuple(w.shape) for w in weights]
        sizes = [int(np.prod(s)) for s in self._shapes]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.theta = xp.zeros(self._offsets[-1], dtype=self.dtype)  # all parameters, flat
        self.grad = xp.zeros_like(self.theta)  # all gradients, flat, same layout
        self.params = self._views(self.theta)  # [W1, b1, W2, b2, ...] views into theta
        self.grads = self._views(self.grad)
        self.set_weights(weights)
        self.optimizer = make_optimizer(xp, optimizer, self.theta, self.grad, hyper)
        self._rng = xp.random.default_rng(dropout_seed) if self.dropout else None
        self._workspaces: dict[int, _Workspace] = {}
        self._take_mode = {"mode": "clip"} if xp is np else {}  # CuPy's take never bounds-checks

    # ------------------------------------------------------------------ weights
    def _views(self, flat: Any) -> list[Any]:
        return [
            flat[a:b].reshape(shape)
            for a, b, shape in zip(self._offsets[:-1], self._offsets[1:], self._shapes, strict=True)
        ]

    @property
    def n_layers(self) -> int:
        return len(self._shapes) // 2

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        if [tuple(w.shape) for w in weights] != self._shapes:
            raise ValueError(f"weight shapes {[w.shape for w in weights]} != {self._shapes}")
        for view, w in zip(self.params, weights, strict=True):
            view[...] = self.xp.asarray(np.asarray(w, dtype=self.dtype))

    def get_weights(self) -> list[np.ndarray]:
        return [_to_host(self.xp, p).copy() for p in self.params]

    def last_batch(self, batch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Host copies of (activations, dropout masks) left by the latest forward pass over a
        batch of ``batch`` rows: activations[0] is the input (B, n_in), activations[l] hidden
        layer l after ReLU and dropout; masks are scaled by 1/(1 - rate). For tests."""
        ws = self._workspace(batch)
        return [_to_host(self.xp, a).copy() for a in ws.acts], [
            _to_host(self.xp, m).copy() for m in ws.masks
        ]

    # ---------------------------------------------------------------- workspace
    def _workspace(self, batch: int) -> _Workspace:
        ws = self._workspaces.get(batch)
        if ws is None:
            xp, dt = self.xp, self.dtype
            widths = [s[1] for s in self._shapes[0::2]]  # output width of each Dense layer
            n_in = self._shapes[0][0]
            ws = _Workspace(
                acts=[xp.empty((batch, w), dt) for w in [n_in, *widths[:-1]]],
                masks=[xp.empty((batch, w), dt) for w in widths[:-1]] if self.dropout else [],
                deltas=[xp.empty((batch, w), dt) for w in widths],
                logits=xp.empty((batch, widths[-1]), dt),
                labels=xp.empty(batch, xp.int64),
                rows=xp.arange(batch),
                ones=xp.ones((widths[-1], 1), dt),
                batch_ones=xp.ones((1, batch), dt),
                active=[xp.empty((batch, w), bool) for w in widths[:-1]],
            )
            self._workspaces[batch] = ws
        return ws

    # ------------------------------------------------------------------- forward
    def _forward(self, ws: _Workspace, training: bool) -> Any:
        """Fill ws.acts[1:] and ws.logits from ws.acts[0]; returns ws.logits (B, n_out)."""
        xp = self.xp
        for layer in range(self.n_layers):
            W, b = self.params[2 * layer], self.params[2 * layer + 1]
            last = layer == self.n_layers - 1
            out = ws.logits if last else ws.acts[layer + 1]
            xp.matmul(ws.acts[layer], W, out=out)  # (B, out)
            out += b
            if not last:
                xp.maximum(out, 0.0, out=out)  # ReLU
                if training and self.dropout:
                    self._dropout(out, ws.masks[layer])
        return ws.logits

    def _dropout(self, a: Any, mask: Any) -> None:
        """Inverted dropout in place: keep each unit with p = 1 - rate, scale kept ones by 1/p."""
        keep = 1.0 - self.dropout
        u = self._rng.random(a.shape, dtype=self.dtype)
        self.xp.greater_equal(u, self.dropout, out=mask)  # 1.0 where kept, 0.0 where dropped
        mask *= 1.0 / keep
        a *= mask

    def _softmax_xent(self, ws: _Workspace) -> tuple[Any, Any]:
        """Softmax in place over ``ws.logits`` (B, C) against ``ws.labels``; returns (sum of
        per-sample cross-entropies, number of correct argmax predictions), 0-d device arrays."""
        xp, logits, labels, rows = self.xp, ws.logits, ws.labels, ws.rows
        predicted = xp.argmax(logits, axis=1)  # (B,)
        correct = xp.count_nonzero(predicted == labels)
        # Row maxima picked at the argmax: a max reduction over NumPy's short last axis (C = 10)
        # costs more than the argmax + pick; the row sums are likewise a product with ones.
        logits -= logits[rows, predicted][:, None]  # stable: max logit is 0
        picked = logits[rows, labels]  # (B,) shifted logit of the true class
        xp.exp(logits, out=logits)
        total = xp.matmul(logits, ws.ones)  # (B, 1) row sums
        loss_sum = xp.log(total).sum() - picked.sum()  # Σ_i log Σ_j e^z_ij - z_iy
        logits /= total  # softmax probabilities
        return loss_sum, correct

    # ------------------------------------------------------------------ backward
    def _backward(self, ws: _Workspace, training: bool) -> None:
        """Gradients of the mean loss into self.grads; ws.logits holds the softmax on entry and
        ``training`` must be the flag the forward pass ran with (it decides the dropout masks)."""
        xp = self.xp
        batch = ws.logits.shape[0]
        delta = ws.logits
        delta[ws.rows, ws.labels] -= 1.0  # dL_i/dz = p - onehot(y)
        delta *= 1.0 / batch  # mean over the batch
        for layer in reversed(range(self.n_layers)):
            gW, gb = self.grads[2 * layer], self.grads[2 * layer + 1]
            a_in = ws.acts[layer]
            xp.matmul(a_in.T, delta, out=gW)  # (in, out)
            xp.matmul(ws.batch_ones, delta, out=gb[None])  # (out,) = Σ over the batch
            if layer == 0:
                break
            d_in = ws.deltas[layer - 1]
            xp.matmul(delta, self.params[2 * layer].T, out=d_in)  # (B, in)
            if training and self.dropout:
                d_in *= ws.masks[layer - 1]
            active = xp.greater(a_in, 0.0, out=ws.active[layer - 1])  # z > 0 (and kept)
            d_in *= active  # ReLU'(z) = 1 where z > 0
            delta = d_in

    # ----------------------------------------------------------------- training
    def _load_batch(self, ws: _Workspace, x: Any, y: Any, idx: Any) -> None:
        """Gather rows ``idx`` of (x, y) into the workspace. The indices are the harness's
        permutation, always in range; NumPy's default bounds mode would stage ``out`` through a
        temporary copy, ``mode="clip"`` writes it directly (the backend checks the order first)."""
        self.xp.take(x, idx, axis=0, out=ws.acts[0], **self._take_mode)
        self.xp.take(y, idx, axis=0, out=ws.labels, **self._take_mode)

    def loss_and_grad(self, x: Any, y: Any, training: bool = False) -> float:
        """Mean loss of the batch (x (B, n_in), y (B,)); leaves its gradient in ``self.grad``.
        Untimed helper for gradient checks; does not update the parameters."""
        ws = self._workspace(x.shape[0])
        ws.acts[0][...] = x
        ws.labels[...] = y
        self._forward(ws, training)
        loss_sum, _ = self._softmax_xent(ws)
        self._backward(ws, training)
        return float(loss_sum) / x.shape[0]

    def train_epoch(
        self,
        x: Any,
        y: Any,
        order: Any,
        batch_size: int,
        mark: Callable[[], None] | None = None,
    ) -> tuple[Any, Any]:
        """One pass over rows ``order`` of (x, y) in consecutive batches; one update per batch.

        Returns (mean training loss, accuracy) over the epoch's samples as 0-d device arrays,
        each batch measured by its forward pass before its update (as Keras reports them).
        ``mark``, if given, is called before the first step and after each step (a GPU backend
        records timing events there; it must not synchronize).
        """
        xp = self.xp
        n = int(order.shape[0])
        loss_sum = xp.zeros((), dtype=xp.float64)
        correct = xp.zeros((), dtype=xp.int64)
        if mark is not None:
            mark()
        for start in range(0, n, batch_size):
            self.train_step(x, y, order[start : start + batch_size], loss_sum, correct)
            if mark is not None:
                mark()
        return loss_sum / n, correct / n

    def train_step(
        self, x: Any, y: Any, idx: Any, loss_sum: Any, correct: Any, scale: Any = None
    ) -> None:
        """One update on rows ``idx`` (B,) of (x, y): the batch's loss sum and correct count are
        added to the 0-d device accumulators ``loss_sum`` (float64) and ``correct`` (int64).

        ``scale``: None (the optimizer advances its own step count and computes its bias-corrected
        step size on the host), or a 1-element device array holding the step size the caller
        took from ``self.optimizer.advance()`` — the form a captured CUDA graph replays, since
        host scalars are frozen into a graph at capture. Queues device work only: no host sync.
        """
        ws = self._workspace(int(idx.shape[0]))
        self._load_batch(ws, x, y, idx)
        self._forward(ws, True)
        batch_loss, batch_correct = self._softmax_xent(ws)
        loss_sum += batch_loss
        correct += batch_correct
        self._backward(ws, True)
        self.optimizer.step(scale)

    def evaluate(self, x: Any, y: Any, chunk: int = 10_000) -> tuple[float, float]:
        """(mean loss, accuracy) over (x, y) in inference mode; synchronizes (returns floats)."""
        loss_sum, correct = 0.0, 0
        for start in range(0, x.shape[0], chunk):
            ws = self._workspace(min(chunk, x.shape[0] - start))
            ws.acts[0][...] = x[start : start + chunk]
            ws.labels[...] = y[start : start + chunk]
            self._forward(ws, False)
            batch_loss, batch_correct = self._softmax_xent(ws)
            loss_sum += float(batch_loss)
            correct += int(batch_correct)
        return loss_sum / x.shape[0], correct / x.shape[0]


def _to_host(xp: ModuleType, a: Any) -> np.ndarray:
    return xp.asnumpy(a) if hasattr(xp, "asnumpy") else np.asarray(a)
