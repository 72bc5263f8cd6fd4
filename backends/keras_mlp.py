"""The TensorFlow/Keras backend: the same MLP built from Keras layers, trained by ``model.fit``.

Every recipe value comes from the ``Recipe`` and is passed to Keras explicitly (initial weights
through ``set_weights``, optimizer hyperparameters, dropout rate and seed, dtype per layer).
TensorFlow is imported only when a ``KerasMLP`` is created, never when the registry is read.

Choices that affect speed, recorded by ``settings()``:
- ``jit_compile`` (XLA; option ``jit_compile``) is always an explicit bool, never Keras' "auto";
  ``DEFAULT_JIT_COMPILE`` unless the option says otherwise.
- ``steps_per_execution`` (option of that name; Keras' default 1): how many optimizer steps one
  call of the compiled train function runs. Same updates in the same order, less per-call
  dispatch (measured figures: results/README.md).
- TF32 is set from ``RunOptions.tf32`` (off by default; TensorFlow would otherwise use it on
  Ampere+ GPUs). This is a process-wide TensorFlow setting.
- On a GPU, memory growth is switched on (once, before TensorFlow initializes the GPUs) so the
  peak-memory figure means something; batches are fed by Keras' own input pipeline from host
  memory, as a Keras user's ``fit`` on NumPy arrays would.

No warm-up or pre-tracing happens in ``build``: tracing and compilation land in epoch 1 (the
harness's cold epoch), so the weights and optimizer state after N epochs are exactly those of N
plain ``fit`` epochs.

float64 recipes run in float64 end to end (they agree with the float64 NumPy engine to ~1e-13).
Two Keras defaults would silently drop to float32 and are worked around: the learning-rate
variable, loss tracker and input adapter follow the global floatx (set to the recipe's dtype
around build/fit/evaluate, then restored), and Adam's βᵗ (see ``_adam_beta``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import (
    EpochMetrics,
    Evaluation,
    Recipe,
    RecipeUnsupported,
    RunOptions,
    TrainData,
    Weights,
    parse_bool,
    parse_positive_int,
)

if TYPE_CHECKING:
    from types import ModuleType

#: XLA on by default: faster than False for this model on the CPU (figures: results/README.md).
DEFAULT_JIT_COMPILE = True
#: Rows per batch for ``evaluate`` (inference only; larger batches just mean fewer calls).
EVAL_BATCH_SIZE = 10_000

_gpus_configured = False


def _import_tf() -> ModuleType:
    import tensorflow as tf

    return tf


def _configure_gpus(tf: ModuleType) -> list[Any]:
    """The visible GPUs; on the first call, switch memory growth on for each (this must happen
    before TensorFlow initializes them; if something already did, their setting is kept)."""
    global _gpus_configured
    gpus = tf.config.list_physical_devices("GPU")
    if not _gpus_configured:
        for gpu in gpus:
            with contextlib.suppress(RuntimeError):  # "cannot be modified after initialization"
                tf.config.experimental.set_memory_growth(gpu, True)
        _gpus_configured = True
    return gpus


@contextlib.contextmanager
def _floatx(dtype: str) -> Iterator[None]:
    """Keras' global floatx set to ``dtype`` inside the block and restored after it.

    Keras creates the optimizer's learning-rate variable and the loss/metric trackers in floatx,
    not in the model's dtype; building them under the recipe's dtype keeps float64 runs float64.
    """
    import keras

    saved = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(saved)


def _make_model(keras: ModuleType, recipe: Recipe, n_features: int) -> Any:
    """Input → [Dense(h, relu) (→ Dropout)] per hidden size → Dense(n_classes, softmax), in the
    recipe's dtype; dropout masks are seeded from the recipe's seed."""
    dtype = recipe.dtype
    layers: list[Any] = [keras.Input(shape=(n_features,), dtype=dtype)]
    for width in recipe.hidden:
        layers.append(keras.layers.Dense(width, activation="relu", dtype=dtype))
        if recipe.dropout:
            layers.append(keras.layers.Dropout(recipe.dropout, seed=recipe.seed, dtype=dtype))
    layers.append(keras.layers.Dense(recipe.n_classes, activation="softmax", dtype=dtype))
    return keras.Sequential(layers, name="mlp")


def _make_optimizer(keras: ModuleType, s: Recipe) -> Any:
    """The recipe's optimizer with every hyperparameter given explicitly (no Keras default)."""
    lr = float(s.learning_rate)
    if s.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.0, nesterov=False)
    if s.optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=lr,
            beta_1=_adam_beta(s.beta_1, s.dtype),
            beta_2=_adam_beta(s.beta_2, s.dtype),
            epsilon=float(s.epsilon),
            amsgrad=False,
        )
    if s.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate=lr,
            rho=float(s.rho),
            momentum=0.0,
            epsilon=float(s.epsilon),
            centered=False,
        )
    raise RecipeUnsupported(f"optimizer {s.optimizer!r} is not implemented in the keras backend")


def _adam_beta(beta: float, dtype: str) -> Any:
    """β as Keras' Adam should see it. Keras computes βᵗ as ``cast(β, var.dtype) ** t``, and
    TensorFlow casts a Python float through float32 first, so a float64 model would get
    float32-rounded bias corrections (a 7e-6 relative error in the first step). A float64 tensor
    keeps them exact; float32 models keep the plain float (identical to Keras' own behaviour)."""
    if dtype == "float32":
        return float(beta)
    return _import_tf().constant(beta, dtype=dtype)


class KerasMLP:
    """The Backend contract over ``keras.Sequential`` + ``model.fit`` (TensorFlow backend)."""

    device = "cpu"  # replaced per instance: "gpu" when TensorFlow sees one
    OPTIONS: ClassVar[dict[str, str]] = {
        "jit_compile": f"compile the train step with XLA (default {DEFAULT_JIT_COMPILE})",
        "steps_per_execution": "optimizer steps per call of the compiled train function "
        "(default 1, Keras' own)",
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        given = self.options.backend
        self.jit_compile = parse_bool(
            "jit_compile", given.get("jit_compile", str(DEFAULT_JIT_COMPILE))
        )
        self.steps_per_execution = parse_positive_int(
            "steps_per_execution", given.get("steps_per_execution", "1")
        )
        tf = _import_tf()
        self.device = "gpu" if _configure_gpus(tf) else "cpu"
        tf.config.experimental.enable_tensor_float_32_execution(self.options.tf32)

    @staticmethod
    def unavailable_reason() -> str | None:
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow is not installed (pip install 'mlpbench[tf]')"
        return None

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        """Model, optimizer and compiled loss/metrics in the recipe's dtype, weights loaded.

        Nothing is traced or trained here: the optimizer's slots are created lazily by the first
        ``fit`` step (epoch 1), so ``get_weights()`` equals ``init_weights`` afterwards."""
        import keras

        dtype = recipe.dtype
        self.recipe = recipe
        self.x_train = np.ascontiguousarray(data.x_train, dtype=dtype)
        self.y_train = np.ascontiguousarray(data.y_train, dtype=np.int64)
        self.x_test = np.ascontiguousarray(data.x_test, dtype=dtype)
        self.y_test = np.ascontiguousarray(data.y_test, dtype=np.int64)
        self.batch_size = recipe.batch_size
        with _floatx(dtype):
            self.model = _make_model(keras, recipe, data.n_features)
            self.set_weights(init_weights)
            self.model.compile(
                optimizer=_make_optimizer(keras, recipe),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False, dtype=dtype),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy", dtype=dtype)],
                jit_compile=self.jit_compile,
                steps_per_execution=self.steps_per_execution,
            )
        if self.device == "gpu":
            _import_tf().config.experimental.reset_memory_stats("GPU:0")  # peak = this run's

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """One ``fit`` epoch over rows ``order`` in that order (``shuffle=False``): consecutive
        batches of the recipe's batch size. The row gather is part of the timed epoch. Keras'
        logged loss/accuracy are sample-weighted means of each batch before its update."""
        with _floatx(self.recipe.dtype):  # Keras' input adapter casts float arrays to floatx
            logs = self.model.fit(
                self.x_train[order],
                self.y_train[order],
                batch_size=self.batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
            ).history
        return EpochMetrics(loss=float(logs["loss"][0]), accuracy=float(logs["accuracy"][0]))

    def evaluate(self) -> Evaluation:
        with _floatx(self.recipe.dtype):
            logs = self.model.evaluate(
                self.x_test, self.y_test, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True
            )
        return Evaluation(loss=float(logs["loss"]), accuracy=float(logs["accuracy"]))

    def get_weights(self) -> Weights:
        return [np.array(w, dtype=self.recipe.dtype) for w in self.model.get_weights()]

    def set_weights(self, weights: Weights) -> None:
        self.model.set_weights([np.asarray(w, dtype=self.recipe.dtype) for w in weights])

    def synchronize(self) -> None:
        """Block until queued device work is done. ``fit`` and ``evaluate`` already return host
        floats, so this only matters on a GPU, where it waits on every device explicitly."""
        if self.device == "gpu":
            _import_tf().test.experimental.sync_devices()

    def settings(self) -> dict[str, Any]:
        import keras

        tf = _import_tf()
        out = {
            "dtype": self.recipe.dtype,
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            **_thread_settings(tf),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default: on)"),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "device": self.device,
        }
        if self.device == "gpu":
            out.update(_gpu_settings(tf))
        return out


def _thread_settings(tf: ModuleType) -> dict[str, Any]:
    """TensorFlow's op thread pools as configured. 0 means TensorFlow picks the size itself; its
    CPU runtime then uses one thread per schedulable core, so the core count is recorded too."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "threads_note": f"0 = TensorFlow's choice (one per schedulable core: {cores} here)",
    }


def _gpu_settings(tf: ModuleType) -> dict[str, Any]:
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return {
        "gpu": details.get("device_name", "unknown"),
        "gpu_memory_growth": all(tf.config.experimental.get_memory_growth(g) for g in gpus),
        "gpu_peak_memory_bytes": tf.config.experimental.get_memory_info("GPU:0")["peak"],
    }
