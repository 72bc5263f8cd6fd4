"""The JAX backend: the same MLP in plain JAX, as a JAX user writes it (no Flax, no Optax).

Parameters are a list of arrays in Keras order [W1, b1, W2, b2, ...]; the loss is a function of
them, differentiated by ``jax.value_and_grad``; the optimizer is a pure function of (params,
grads, state) in Keras 3's formulas and operation order (see ``_make_update``); the training step
is compiled by ``jax.jit``. JAX is imported only when a ``JaxMLP`` is created, never when the
registry is read.

The network: x → [Dense → ReLU → inverted dropout (training only)] per hidden width → Dense →
softmax cross-entropy, computed stably from ``jax.nn.log_softmax`` and averaged over the batch.
Dropout masks are JAX's own: step t's key is ``fold_in(key(recipe.seed), t)`` (t counts steps over
the whole run), one ``fold_in`` per hidden layer below it; kept units are scaled by 1/(1 − rate).

Choices that affect speed, recorded by ``settings()`` (measured figures: results/README.md):
- ``epoch`` (option, default ``DEFAULT_EPOCH`` = ``loop``, as shipped): ``loop`` calls the jitted
  step once per batch from Python, the common JAX training loop. ``scan`` compiles a whole
  epoch's full batches into one ``lax.scan`` — one dispatch per epoch; a partial last batch then
  runs as one more call of the jitted single step (same updates, same order as ``loop``), the
  rows gathered on the device (``jnp.take``) from the dataset uploaded once in ``build``.
- ``feed`` (option, ``loop`` only, default ``DEFAULT_FEED`` = ``host``, as JAX's tutorials feed
  a jitted step): each batch's rows gathered by NumPy on the host and handed to the step;
  ``device`` hands the step the host's index slice and gathers the rows on the device from the
  dataset uploaded once (cheaper per step: ``mlpbench fidelity`` measured the harness 9 %
  cheaper than a tutorial-style script with it, so it is a tuned option, not shipped).
- ``donate`` (option, default ``DEFAULT_DONATE`` = false: JAX donates nothing unless asked): when
  true, parameters, optimizer state and the metric sums are donated to each compiled call
  (``donate_argnums``), so XLA may update them in place instead of allocating new buffers.
- Matmul precision: every ``dot`` carries an explicit ``precision`` — "highest" (true float32,
  no TF32 on GPUs) unless ``RunOptions.tf32``, then "tensorfloat32". Set per operation, not via
  the process-wide ``jax_default_matmul_precision``, so one instance cannot change another's.
- float64 recipes switch on ``jax_enable_x64`` in ``build``: a process-wide JAX setting that
  cannot be undone safely. Every array and constant here has an explicit dtype (Python scalars
  stay weakly typed), so a float32 recipe still computes in float32 after a float64 one.

No warm-up or pre-compilation happens in ``build``: tracing and XLA compilation land in epoch 1
(the harness's cold epoch). The loss and accuracy of an epoch stay device scalars (no host sync
inside ``train_epoch``); ``synchronize`` blocks on the parameters and those scalars.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import (
    OPTIMIZERS,
    EpochMetrics,
    Evaluation,
    Recipe,
    RecipeUnsupported,
    RunOptions,
    TrainData,
    Weights,
    parse_bool,
    parse_choice,
)

if TYPE_CHECKING:
    from types import ModuleType

#: How an epoch runs: "scan" (the whole epoch as one compiled ``lax.scan``) or "loop" (one call
#: of the jitted step per batch, from Python).
EPOCH_MODES = ("scan", "loop")
DEFAULT_EPOCH = "loop"  # as shipped: a jit-compiled step, as JAX's own tutorials write it
#: Donation lets XLA update parameters and moments in place; in ``loop`` it saves a copy of
#: every donated buffer per step, in ``scan`` only per epoch call (the scan body is the same).
DEFAULT_DONATE = False  # as shipped: JAX donates nothing unless asked
#: Where ``loop`` gathers a batch's rows: "host" (NumPy arrays handed to the step, as JAX's
#: tutorials feed a jitted step) or "device" (the dataset uploaded once, rows gathered inside
#: the step from the host's index slice). ``scan`` always gathers on the device.
FEEDS = ("host", "device")
DEFAULT_FEED = "host"


def _import_jax() -> ModuleType:
    import jax

    return jax


class JaxMLP:
    """The Backend contract over pure-JAX functions compiled with ``jax.jit``."""

    device = "cpu"  # replaced per instance: "gpu" when JAX's default backend is a GPU
    OPTIONS: ClassVar[dict[str, str]] = {
        "epoch": "loop (a jit-compiled step called per batch from Python, default) or scan "
        "(the whole epoch as one compiled lax.scan)",
        "donate": f"donate parameter and optimizer buffers to each compiled call "
        f"(true/false, default {str(DEFAULT_DONATE).lower()})",
        "feed": "loop's batches: host (rows gathered by NumPy and handed to the step, as JAX's "
        "tutorials feed it; default) or device (the dataset on the device, rows gathered in the "
        "step)",
    }
    #: ``mlpbench fidelity``: the same recipe as a plain JAX script.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = ("backends.plain.jax_plain",)
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "epoch": ("loop", "scan"),
        "donate": ("false", "true"),
        "feed": ("host", "device"),
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        given = self.options.backend
        self.epoch_mode = parse_choice("epoch", given.get("epoch", DEFAULT_EPOCH), EPOCH_MODES)
        self.donate = parse_bool("donate", given.get("donate", str(DEFAULT_DONATE)))
        self.feed = parse_choice("feed", given.get("feed", DEFAULT_FEED), FEEDS)
        self.precision = "tensorfloat32" if self.options.tf32 else "highest"
        jax = _import_jax()
        self.device = "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"

    @staticmethod
    def unavailable_reason() -> str | None:
        if importlib.util.find_spec("jax") is None:
            return "jax is not installed (pip install 'mlpbench[jax]')"
        return None

    @staticmethod
    def machine_facts() -> dict[str, Any]:
        """The GPUs JAX sees (name, compute capability) under "gpus"; {} on a CPU-only install.

        Imports JAX only when a GPU plug-in is installed (a CPU-only jaxlib has nothing to add)."""
        if importlib.util.find_spec("jax") is None or not _gpu_plugin_installed():
            return {}
        jax = _import_jax()
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:  # plug-in present, no usable GPU
            return {}
        return {
            "gpus": [
                {
                    "index": d.id,
                    "name": d.device_kind,
                    "compute_capability": getattr(d, "compute_capability", "unknown"),
                    "jax": jax.__version__,
                }
                for d in gpus
            ]
        }

    # ------------------------------------------------------------------------------- build
    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        """Upload data and weights, create the optimizer state, define the jitted functions.

        Nothing is traced or compiled here (``jax.jit`` is lazy), and no step runs: the first
        ``train_epoch`` pays for compilation, and ``get_weights()`` equals ``init_weights``."""
        if recipe.optimizer not in OPTIMIZERS:
            raise RecipeUnsupported(f"optimizer {recipe.optimizer!r} is not implemented in jax")
        if recipe.dtype not in ("float32", "float64"):
            raise RecipeUnsupported(f"dtype {recipe.dtype!r} is not supported by the jax backend")
        if not 0.0 <= recipe.dropout < 1.0:
            raise RecipeUnsupported(f"dropout rate {recipe.dropout} is not in [0, 1)")
        jax = _import_jax()
        if recipe.dtype == "float64":
            jax.config.update("jax_enable_x64", True)  # process-wide; see the module docstring
        import jax.numpy as jnp

        self.recipe = recipe
        self.dtype = np.dtype(recipe.dtype)
        self.batch_size = recipe.batch_size
        self._shapes = [tuple(np.shape(w)) for w in init_weights]
        if len(self._shapes) != 2 * (len(recipe.hidden) + 1):
            raise ValueError(f"{len(self._shapes)} weight arrays for hidden={recipe.hidden}")
        put = jax.device_put
        self._host = (
            np.ascontiguousarray(data.x_train, dtype=self.dtype),
            np.ascontiguousarray(data.y_train, dtype=np.int32),
        )
        self.x_train, self.y_train = put(self._host[0]), put(self._host[1])
        self.x_test = put(np.asarray(data.x_test, dtype=self.dtype))
        self.y_test = put(np.asarray(data.y_test, dtype=np.int32))
        self.params = [put(np.array(w, dtype=self.dtype)) for w in init_weights]
        zeros = [jnp.zeros(s, dtype=self.dtype) for s in self._shapes]
        slots = {"sgd": 0, "adam": 2, "rmsprop": 1}[recipe.optimizer]
        moments = tuple([jnp.zeros_like(z) for z in zeros] for _ in range(slots))
        self.opt_state = (jnp.zeros((), dtype=jnp.int32), moments)  # (steps taken, moments)
        self._pending: tuple[Any, ...] = ()
        self._define_functions(jax, jnp)

    def _define_functions(self, jax: ModuleType, jnp: ModuleType) -> None:
        """The jitted single step (gather + forward + backward + update), the jitted epoch scan
        and the jitted evaluation; all constants (hyperparameters, dropout, key) are closed over
        as Python values or a fixed key, so they are baked into the compiled code. Longer than
        the house's 60 lines on purpose: split into functions, the closures would take those
        constants as arguments, where ``jax.jit`` traces them instead of baking them in."""
        recipe, dtype, precision = self.recipe, self.dtype, self.precision
        n_hidden = len(recipe.hidden)
        rate = float(recipe.dropout)
        keep = 1.0 - rate
        base_key = jax.random.key(recipe.seed)
        update = _make_update(jnp, recipe, dtype)

        def forward(params: list[Any], x: Any, key: Any | None) -> Any:
            """Logits (B, n_classes); dropout after each hidden layer when ``key`` is given."""
            h = x
            for layer in range(n_hidden + 1):
                w, b = params[2 * layer], params[2 * layer + 1]
                h = jnp.matmul(h, w, precision=precision) + b
                if layer < n_hidden:
                    h = jax.nn.relu(h)
                    if key is not None and rate > 0.0:
                        mask = jax.random.bernoulli(
                            jax.random.fold_in(key, layer), jnp.asarray(keep, dtype), h.shape
                        )
                        h = jnp.where(mask, h / keep, jnp.zeros((), dtype))
            return h

        def losses(params: list[Any], x: Any, y: Any, key: Any | None) -> tuple[Any, Any]:
            """(mean cross-entropy, number of correct argmax predictions) of a batch."""
            logits = forward(params, x, key)
            logp = jax.nn.log_softmax(logits, axis=-1)
            picked = jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
            correct = jnp.sum(jnp.argmax(logits, axis=-1) == y, dtype=jnp.int32)
            return -jnp.mean(picked), correct

        grad_fn = jax.value_and_grad(losses, has_aux=True)

        def batch_step(state: tuple[Any, Any, Any], xb: Any, yb: Any) -> tuple[Any, Any, Any]:
            """One optimizer step on the batch (xb, yb); adds its loss sum and correct count
            (measured before the update, dropout active) to the running sums."""
            params, (t, moments), (loss_sum, correct_sum) = state
            key = jax.random.fold_in(base_key, t)
            (loss, correct), grads = grad_fn(params, xb, yb, key)
            t = t + 1
            params, moments = update(params, grads, moments, t)
            sums = (loss_sum + loss * yb.shape[0], correct_sum + correct)
            return params, (t, moments), sums

        def step(state: tuple[Any, Any, Any], x: Any, y: Any, rows: Any) -> tuple[Any, Any, Any]:
            """``batch_step`` on rows ``rows`` of (x, y), gathered on the device."""
            xb = jnp.take(x, rows, axis=0, mode="clip")  # rows are a permutation: in range
            yb = jnp.take(y, rows, axis=0, mode="clip")
            return batch_step(state, xb, yb)

        def epoch(state: tuple[Any, Any, Any], x: Any, y: Any, batches: Any) -> Any:
            """``step`` over each row of ``batches`` (n_batches, batch) in order, as a scan."""

            def body(carry: Any, rows: Any) -> tuple[Any, None]:
                return step(carry, x, y, rows), None

            return jax.lax.scan(body, state, batches)[0]

        def evaluate(params: list[Any], x: Any, y: Any) -> tuple[Any, Any]:
            loss, correct = losses(params, x, y, None)
            return loss, correct

        donate = (0,) if self.donate else ()
        self._step = jax.jit(step, donate_argnums=donate)
        self._batch_step = jax.jit(batch_step, donate_argnums=donate)
        self._epoch = jax.jit(epoch, donate_argnums=donate)
        self._evaluate = jax.jit(evaluate)

    # ----------------------------------------------------------------------------- training
    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """One pass over rows ``order`` in consecutive batches of the recipe's batch size.

        Rows are gathered on the device from the order (as int32). ``scan``: the full batches'
        indices go to the device as one (n // batch, batch) array and one call runs them, then
        one step runs a partial last batch; ``loop``: one call per batch, each passed its slice
        of the host's order (int32). Returns the epoch's sample-weighted mean loss and accuracy
        as device scalars; nothing here waits for the device."""
        jax = _import_jax()
        import jax.numpy as jnp

        n, batch = int(order.shape[0]), self.batch_size
        n_full = n // batch
        idx = np.asarray(order, dtype=np.int32)
        sums = (jnp.zeros((), dtype=self.dtype), jnp.zeros((), dtype=jnp.int32))
        state = (self.params, self.opt_state, sums)
        x, y = self.x_train, self.y_train
        if self.epoch_mode == "scan":
            if n_full:
                batches = jax.device_put(idx[: n_full * batch].reshape(n_full, batch))
                state = self._epoch(state, x, y, batches)
            if n_full * batch < n:
                state = self._step(state, x, y, jax.device_put(idx[n_full * batch :]))
        elif self.feed == "device":  # the host's index slices go to the step, rows gathered there
            for start in range(0, n, batch):
                state = self._step(state, x, y, idx[start : start + batch])
        else:  # each batch's rows gathered on the host and handed over (JAX's tutorials' loop)
            xh, yh = self._host
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                state = self._batch_step(state, xh[rows], yh[rows])
        self.params, self.opt_state, (loss_sum, correct) = state
        loss = loss_sum / n
        accuracy = correct.astype(self.dtype) / n
        self._pending = (loss, accuracy)
        return EpochMetrics(loss=loss, accuracy=accuracy)

    def evaluate(self) -> Evaluation:
        loss, correct = self._evaluate(self.params, self.x_test, self.y_test)
        return Evaluation(loss=float(loss), accuracy=int(correct) / int(self.y_test.shape[0]))

    def get_weights(self) -> Weights:
        # A copy, never a view: on the CPU np.asarray may alias a buffer a later step donates.
        return [np.array(p, dtype=self.dtype, copy=True) for p in self.params]

    def set_weights(self, weights: Weights) -> None:
        if [tuple(np.shape(w)) for w in weights] != self._shapes:
            raise ValueError(f"weight shapes {[np.shape(w) for w in weights]} != {self._shapes}")
        put = _import_jax().device_put
        self.params = [put(np.array(w, dtype=self.dtype)) for w in weights]

    def synchronize(self) -> None:
        """Block until every queued computation is done (parameters, state and the metrics)."""
        _import_jax().block_until_ready((self.params, self.opt_state, self._pending))

    def settings(self) -> dict[str, Any]:
        jax = _import_jax()
        import jaxlib

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        out: dict[str, Any] = {
            "dtype": self.recipe.dtype,
            "epoch": self.epoch_mode,
            "donate": self.donate,
            "feed": self.feed if self.epoch_mode == "loop" else "device",
            "tf32": self.options.tf32,
            "matmul_precision": self.precision,
            "x64": bool(jax.config.jax_enable_x64),
            "x64_note": "jax_enable_x64 is process-wide; float32 recipes keep float32 dtypes",
            "jit": "jax.jit; tracing and XLA compilation fall in epoch 1",
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "platform": jax.default_backend(),
            "devices": jax.device_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", "unset"),
            "cpu_threads_note": f"XLA:CPU sizes its own thread pool ({cores} cores here)",
            "device": self.device,
        }
        if self.device == "gpu":
            out.update(_gpu_settings(jax))
        return out


def _make_update(jnp: ModuleType, recipe: Recipe, dtype: np.dtype) -> Callable[..., Any]:
    """The recipe's optimizer as ``update(params, grads, moments, t) -> (params, moments)``,
    t = the 1-based number of this update (an int32 scalar), in Keras 3's operation order:

        SGD      w ← w − lr·g
        Adam     m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
                 α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ);  w ← w − (m·α)/(√v + ε)     (ε outside the sqrt)
        RMSprop  v ← ρv + (1 − ρ)g²;  w ← w − lr·g/√(v + ε)                 (ε inside the sqrt)

    βᵗ is computed in the recipe's dtype, as Keras does (``power(cast(β), cast(t))``). Every
    hyperparameter is a Python float: weakly typed, so it never promotes float32 arithmetic."""
    lr, eps = float(recipe.learning_rate), float(recipe.epsilon)
    b1, b2, rho = float(recipe.beta_1), float(recipe.beta_2), float(recipe.rho)

    def sgd(params: list[Any], grads: list[Any], moments: tuple, t: Any) -> tuple[list, tuple]:
        return [w - lr * g for w, g in zip(params, grads, strict=True)], moments

    def adam(params: list[Any], grads: list[Any], moments: tuple, t: Any) -> tuple[list, tuple]:
        ms, vs = moments
        step = t.astype(dtype)
        alpha = (
            lr
            * jnp.sqrt(1.0 - jnp.power(jnp.asarray(b2, dtype), step))
            / (1.0 - jnp.power(jnp.asarray(b1, dtype), step))
        )
        new_w, new_m, new_v = [], [], []
        for w, g, m, v in zip(params, grads, ms, vs, strict=True):
            m = m + (g - m) * (1.0 - b1)
            v = v + (jnp.square(g) - v) * (1.0 - b2)
            new_w.append(w - (m * alpha) / (jnp.sqrt(v) + eps))
            new_m.append(m)
            new_v.append(v)
        return new_w, (new_m, new_v)

    def rmsprop(params: list[Any], grads: list[Any], moments: tuple, t: Any) -> tuple[list, tuple]:
        (vs,) = moments
        new_w, new_v = [], []
        for w, g, v in zip(params, grads, vs, strict=True):
            v = rho * v + (1.0 - rho) * jnp.square(g)
            new_w.append(w - lr * g / jnp.sqrt(v + eps))
            new_v.append(v)
        return new_w, (new_v,)

    return {"sgd": sgd, "adam": adam, "rmsprop": rmsprop}[recipe.optimizer]


def _gpu_plugin_installed() -> bool:
    """Whether a JAX GPU plug-in (``jax_cuda12_plugin``, ``jax_rocm7_plugin``, ...) is installed,
    found by module name on ``sys.path`` without importing anything."""
    return any(
        m.name.startswith(("jax_cuda", "jax_rocm")) for m in pkgutil.iter_modules() if m.ispkg
    )


def _gpu_settings(jax: ModuleType) -> dict[str, Any]:
    """The GPU's name, its peak memory in use so far in this process (JAX cannot reset the peak),
    and the allocator's environment (JAX preallocates 75% of GPU memory unless told otherwise)."""
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    return {
        "gpu": device.device_kind,
        "gpu_peak_memory_bytes": stats.get("peak_bytes_in_use"),
        "gpu_memory_measure": "process peak",
        "gpu_memory_note": "peak over the whole process so far (JAX cannot reset it)",
        "xla_python_client_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "unset"),
        "xla_python_client_mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "unset"),
    }
