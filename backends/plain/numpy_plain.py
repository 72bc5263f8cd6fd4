"""The baseline recipe as a NumPy user writes it: forward, backward and Adam by hand, the rows
shuffled by ``random.permutation`` (seeded) every epoch. ``--xp cupy`` runs the same code on
an NVIDIA GPU as a CuPy user ports it: the arrays put on the device once, ``cupy`` for
``numpy``, the device synchronized before an epoch's clock stops."""

import importlib
import time

import numpy as np

from backends.plain import common

cli = common.parser(__doc__)
cli.add_argument("--xp", default="numpy", choices=("numpy", "cupy"), help="the array module")
args = cli.parse_args()
xp = importlib.import_module(args.xp)
data = common.Mnist(*(xp.asarray(a) for a in common.load(args)))
xp.random.seed(args.seed)
n_in, n_hidden, n_out = data.x_train.shape[1], common.HIDDEN, common.N_CLASSES


def glorot(fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6 / (fan_in + fan_out))
    return xp.random.uniform(-limit, limit, (fan_in, fan_out)).astype(xp.float32)


params = [
    glorot(n_in, n_hidden),
    xp.zeros(n_hidden, xp.float32),
    glorot(n_hidden, n_out),
    xp.zeros(n_out, xp.float32),
]
m = [xp.zeros_like(p) for p in params]
v = [xp.zeros_like(p) for p in params]
lr, b1, b2, eps = common.LEARNING_RATE, common.BETA_1, common.BETA_2, common.EPSILON
t = 0


def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden activations, softmax probabilities)."""
    w1, c1, w2, c2 = params
    h = xp.maximum(x @ w1 + c1, 0)
    z = h @ w2 + c2
    e = xp.exp(z - z.max(axis=1, keepdims=True))
    return h, e / e.sum(axis=1, keepdims=True)


for epoch in range(1, args.epochs + 1):
    common.next_epoch(args)
    start = time.perf_counter()
    total_loss, correct = xp.zeros((), xp.float64), xp.zeros((), xp.int64)
    perm = xp.random.permutation(len(data.x_train))
    for i in range(0, len(perm), common.BATCH_SIZE):
        idx = perm[i : i + common.BATCH_SIZE]
        xb, yb = data.x_train[idx], data.y_train[idx]
        h, p = forward(xb)
        rows = xp.arange(len(yb))
        total_loss += -xp.log(p[rows, yb] + 1e-12).sum()
        correct += (p.argmax(1) == yb).sum()
        dz = p.copy()
        dz[rows, yb] -= 1
        dz /= len(yb)
        dh = (dz @ params[2].T) * (h > 0)
        grads = [xb.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
        t += 1
        step = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for j, g in enumerate(grads):
            m[j] = b1 * m[j] + (1 - b1) * g
            v[j] = b2 * v[j] + (1 - b2) * g * g
            params[j] -= step * m[j] / (xp.sqrt(v[j]) + eps)
    if xp is not np:
        xp.cuda.Device().synchronize()
    common.emit(epoch=epoch, seconds=time.perf_counter() - start)

_, probabilities = forward(data.x_test)
common.emit(test_accuracy=float((probabilities.argmax(1) == data.y_test).mean()))
