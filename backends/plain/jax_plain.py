"""The baseline recipe as a JAX user writes it without Flax or Optax: parameters as a list of
arrays, the loss differentiated by ``jax.value_and_grad``, Adam by hand, one ``jax.jit`` step
called per batch with the batch's rows sliced from NumPy arrays by a fresh permutation."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from backends.plain import common

args = common.parser(__doc__).parse_args()
data = common.load(args)
rng = np.random.default_rng(args.seed)
key = jax.random.key(args.seed)
n_in, n_hidden, n_out = data.x_train.shape[1], common.HIDDEN, common.N_CLASSES
k1, k2 = jax.random.split(key)
glorot = jax.nn.initializers.glorot_uniform()
params = [
    glorot(k1, (n_in, n_hidden), jnp.float32),
    jnp.zeros(n_hidden, jnp.float32),
    glorot(k2, (n_hidden, n_out), jnp.float32),
    jnp.zeros(n_out, jnp.float32),
]
opt_state = ([jnp.zeros_like(p) for p in params], [jnp.zeros_like(p) for p in params], 0)
lr, b1, b2, eps = common.LEARNING_RATE, common.BETA_1, common.BETA_2, common.EPSILON


def logits_of(params: list, x: jax.Array) -> jax.Array:
    w1, c1, w2, c2 = params
    return jax.nn.relu(x @ w1 + c1) @ w2 + c2


def loss_of(params: list, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = logits_of(params, x)
    log_p = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(log_p, y[:, None], axis=1).mean(), logits


@jax.jit
def train_step(params: list, opt_state: tuple, sums: tuple, x: jax.Array, y: jax.Array) -> tuple:
    """One Adam step; ``sums`` carries the epoch's loss·rows and correct count."""
    (loss, logits), grads = jax.value_and_grad(loss_of, has_aux=True)(params, x, y)
    m, v, t = opt_state
    t = t + 1
    m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads, strict=True)]
    v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads, strict=True)]
    step = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    params = [p - step * mi / (jnp.sqrt(vi) + eps) for p, mi, vi in zip(params, m, v, strict=True)]
    loss_sum, correct = sums
    sums = (loss_sum + loss * len(y), correct + (logits.argmax(1) == y).sum())
    return params, (m, v, t), sums


for epoch in range(1, args.epochs + 1):
    common.next_epoch(args)
    start = time.perf_counter()
    sums = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
    perm = rng.permutation(len(data.x_train))
    for i in range(0, len(perm), common.BATCH_SIZE):
        idx = perm[i : i + common.BATCH_SIZE]
        params, opt_state, sums = train_step(
            params, opt_state, sums, data.x_train[idx], data.y_train[idx]
        )
    loss, accuracy = float(sums[0]) / len(perm), int(sums[1]) / len(perm)
    common.emit(epoch=epoch, seconds=time.perf_counter() - start)

predicted = np.asarray(logits_of(params, jnp.asarray(data.x_test)).argmax(1))
common.emit(test_accuracy=float((predicted == data.y_test).mean()))
