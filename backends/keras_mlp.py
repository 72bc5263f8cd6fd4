"""The Keras backends: the same MLP built from Keras layers, trained by ``model.fit``, on Keras 3's
TensorFlow (``KerasMLP``, entry point ``keras``), JAX (``KerasJaxMLP``, ``keras-jax``) and PyTorch
(``KerasTorchMLP``, ``keras-torch``) backends.

Every recipe value comes from the ``Recipe`` and is passed to Keras explicitly (initial weights
through ``set_weights``, optimizer hyperparameters, dropout rate and seed, dtype per layer). The
model, ``fit`` and ``evaluate`` code is one code path for all three; what differs per framework
(device, TF32, float64, synchronization, settings) lives in the small ``_TensorFlow``, ``_Jax`` and
``_Torch`` helpers. No framework is imported when the registry is read, only when an instance is
created.

Keras picks its backend once per process, at ``import keras`` (env ``KERAS_BACKEND``). An instance
makes Keras run on its class's backend in ``__init__`` (and checks again in ``build``): before
Keras is imported it sets ``KERAS_BACKEND``, as Keras users do; if Keras is already imported on
another backend it calls ``keras.config.set_backend``, which re-imports the Keras package
(recorded as ``keras_backend_switched``). Keras objects made before a switch are unusable after
it, so every Keras object of a run is created in ``build``, after the switch, from the Keras
module the instance keeps (``self.keras``); an instance built earlier on another backend must not
be used after a later instance switched away (the harness makes a fresh instance per run).

Choices that affect speed, recorded by ``settings()`` (measured figures: results/README.md):
- ``jit_compile`` (option ``jit_compile``): ``auto`` by default (``DEFAULT_JIT_COMPILE``) —
  Keras' own resolution, as a Keras user gets it (``model.compile(jit_compile="auto")``;
  settings record what it resolved to and what was asked): on TensorFlow XLA only with a GPU
  (Keras turns it off on CPU-only machines), on JAX ``jax.jit``, on PyTorch eager.
  ``true``/``false`` force it (a tuned profile). TensorFlow: True = XLA. JAX: True = ``jax.jit``
  of the train step (False runs it op by op). PyTorch: True = ``torch.compile`` (inductor: needs
  a C++ compiler on the CPU; compilation lands in the cold epoch).
- ``steps_per_execution`` (Keras' default 1): optimizer steps per call of the compiled train
  function. Same updates in the same order, less per-call dispatch. Keras' PyTorch trainer only
  supports 1.
- TF32 follows ``RunOptions.tf32`` (off by default): TensorFlow's
  ``enable_tensor_float_32_execution``, JAX's ``jax_default_matmul_precision`` ("highest" or
  "tensorfloat32"), torch's ``allow_tf32`` flags for matmul and cuDNN. All process-wide.
- On a TensorFlow GPU, memory growth is switched on (once, before TensorFlow initializes the
  GPUs) so the peak-memory figure means something.
- Batches come from host memory, as for a Keras user's ``fit`` on NumPy arrays: on TensorFlow
  through one ``tf.data`` pipeline built as Keras' array adapter builds it (``_TfFeed``), on JAX
  and PyTorch batch by batch in the harness's order, gathered when due, as Keras' array adapter
  gathers a shuffled ``fit``'s batches (``_BatchFeed``).

No warm-up or pre-tracing happens in ``build``: tracing and compilation land in epoch 1 (the
harness's cold epoch), so the weights and optimizer state after N epochs are exactly those of N
plain ``fit`` epochs.

float64 recipes run in float64 end to end (the tests compare them with the float64 NumPy
engine); ``build`` refuses the recipe (``RecipeUnsupported``) where Keras would compute part of
it in float32 on this backend (``_float64_lost``: matmul and the loss mean on PyTorch) or makes
weights that are not float64. Keras defaults that would silently drop to float32 are worked
around: the learning-rate variable, loss tracker and input adapter follow the global floatx (set
to the recipe's dtype around build/fit/evaluate, then restored); on TensorFlow, Adam's βᵗ (see
``_TensorFlow.adam_beta``); on JAX, float64 needs ``jax_enable_x64``, switched on (process-wide,
and never off again) when a float64 recipe is built.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backends.api import (
    EpochMetrics,
    Evaluation,
    OptionError,
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

#: Every Keras class's jit default: Keras' own resolution (the shipped division).
DEFAULT_JIT_COMPILE = "auto"
#: Rows per batch for ``evaluate`` (inference only; larger batches just mean fewer calls).
EVAL_BATCH_SIZE = 10_000

_gpus_configured = False


def _missing(*modules: str) -> bool:
    """Whether any of ``modules`` cannot be imported here (a spec lookup: nothing is imported)."""
    return any(importlib.util.find_spec(m) is None for m in modules)


#: What TensorFlow's C++ runtime prints to stderr while it loads, before absl logging is set up
#: (so TF_CPP_MIN_LOG_LEVEL cannot silence it): absl's own notice and INFO/WARNING lines.
NATIVE_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} )")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Run the block with file descriptor 2 captured, then pass on every captured line except
    ``NATIVE_NOISE`` (errors and anything else still reach the terminal)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not NATIVE_NOISE.match(line):
                    sys.stderr.write(line)


def _use_keras_backend(name: str) -> tuple[ModuleType, bool]:
    """The ``keras`` module running on backend ``name``, and whether Keras had to be switched
    from another backend to get it (``keras.config.set_backend``: a re-import of Keras)."""
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = name  # read once, by the import below
        with _quiet_native_stderr():
            import keras

        if keras.config.backend() == name:
            return keras, False
        loaded = keras  # imported before, then dropped from sys.modules: switch as below
    if loaded.config.backend() == name:
        return loaded, False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*set_backend.*dangerous", category=UserWarning)
        loaded.config.set_backend(name)
    import keras

    if keras.config.backend() != name:
        raise RuntimeError(f"keras.config.set_backend({name!r}) left {keras.config.backend()!r}")
    return keras, True


@contextlib.contextmanager
def _floatx(keras: ModuleType, dtype: str) -> Iterator[None]:
    """Keras' global floatx set to ``dtype`` inside the block and restored after it.

    Keras creates the optimizer's learning-rate variable and the loss/metric trackers in floatx,
    not in the model's dtype; building them under the recipe's dtype keeps float64 runs float64.
    """
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


def _make_optimizer(keras: ModuleType, s: Recipe, adam_beta: Any) -> Any:
    """The recipe's optimizer with every hyperparameter given explicitly (no Keras default);
    ``adam_beta(β, dtype)`` is β as the framework's Adam must see it."""
    lr = float(s.learning_rate)
    if s.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.0, nesterov=False)
    if s.optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=lr,
            beta_1=adam_beta(s.beta_1, s.dtype),
            beta_2=adam_beta(s.beta_2, s.dtype),
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


def _float64_lost(keras: ModuleType) -> list[str]:
    """The ops of this model's training that Keras runs below float64 on its current backend.
    Keras 3.15 on torch computes float64 ``matmul`` (every Dense layer) and ``divide_no_nan`` (the
    loss mean) in float32: its ``result_type`` maps float64 to float32 on every backend but
    TensorFlow, and these torch ops compute in that type. JAX's ops keep float64 under x64."""
    ops = keras.ops
    x = 1 + 2.0**-40  # not representable in float32
    a = ops.convert_to_tensor(np.array([[x]]), dtype="float64")
    one = ops.ones((1, 1), dtype="float64")
    probes = {"matmul": ops.matmul(a, one), "divide_no_nan": ops.divide_no_nan(a, one)}
    return [name for name, out in probes.items() if float(ops.convert_to_numpy(out)[0, 0]) != x]


# --- how fit is fed ---------------------------------------------------------------------------


class _BatchFeed:
    """``fit`` fed batch by batch from host arrays in the harness's order, as Keras' own array
    adapter feeds a user's ``fit(x, y, shuffle=True)`` on JAX and PyTorch: each batch's rows
    are gathered from the arrays when the batch is due (a ``keras.utils.PyDataset`` whose item
    i holds rows ``order[i·b : (i+1)·b]``, the last one partial), on the training thread, with
    no worker pool. The one difference from the adapter: the order is the harness's, where
    Keras would draw ``np.random.permutation``. Gathering the epoch's rows up front instead (a
    copy of the whole training set per epoch, the feed before) made the harness dearer than
    the user's ``fit`` (figures: results/README.md, "Fidelity")."""

    #: How ``settings()`` names this feed.
    NAME = "host arrays gathered per batch in the harness's order (a PyDataset)"

    def __init__(self, keras: ModuleType, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        self.batches = _ordered_batches(keras)
        self.x, self.y, self.batch_size = x, y, batch_size

    def fit_args(self, order: np.ndarray) -> dict[str, Any]:
        return {"x": self.batches(self.x, self.y, order, self.batch_size)}


def _ordered_batches(keras: ModuleType) -> type:
    """A ``keras.utils.PyDataset`` class (of this Keras instance) over ``x``, ``y`` in a given
    row order, ``batch_size`` rows an item."""

    class OrderedBatches(keras.utils.PyDataset):
        def __init__(
            self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int
        ) -> None:
            super().__init__()  # one worker, no multiprocessing: Keras' defaults
            self.x, self.y, self.order, self.batch_size = x, y, order, batch_size

        def __len__(self) -> int:
            return -(-len(self.order) // self.batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[i * self.batch_size : (i + 1) * self.batch_size]
            return self.x[rows], self.y[rows]

    return OrderedBatches


class _TfFeed:
    """``tf.data`` pipelines built the way Keras' own array adapter feeds a multi-epoch
    ``fit(x, y, shuffle=True)`` on TensorFlow: the arrays become host tensors once (in
    ``build``), each epoch's row order is split into batches of indices, a parallel ``map``
    gathers each batch's rows, and batches are prefetched. The one difference: the order is the
    harness's, written into a variable that the pipeline reads when an epoch's iteration starts,
    where Keras would call ``tf.random.shuffle``. One pipeline per order length, built by the
    first epoch of that length (the harness's cold epoch; a plain ``fit`` also builds its
    pipeline in its first call) and reused by every later one, instead of handing ``fit`` fresh
    arrays every epoch (a host gather, an array-to-tensor conversion and a new pipeline each
    time), which costs a plain multi-epoch ``fit`` does not pay (figures: results/README.md)."""

    NAME = "tf.data pipeline built once, order from the harness"

    def __init__(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, threads: int | None = None
    ) -> None:
        tf = _import_tf()
        self.batch_size, self.threads = batch_size, threads
        with tf.device("/cpu:0"):  # host memory, as Keras' adapter keeps NumPy input
            self.inputs = (tf.constant(x), tf.constant(y))
        self.pipelines: dict[int, tuple[Any, Any]] = {}  # order length → (variable, dataset)

    def fit_args(self, order: np.ndarray) -> dict[str, Any]:
        if len(order) not in self.pipelines:
            self.pipelines[len(order)] = self._pipeline(len(order))
        variable, dataset = self.pipelines[len(order)]
        variable.assign(np.asarray(order, dtype=np.int64))
        return {"x": dataset}

    def _pipeline(self, length: int) -> tuple[Any, Any]:
        """(the order variable, the dataset reading it) for epochs over ``length`` rows."""
        tf = _import_tf()
        size = self.batch_size
        full, rest = divmod(length, size)
        with tf.device("/cpu:0"):
            variable = tf.Variable(tf.zeros([length], dtype=tf.int64), trainable=False)

        def batches_of(order: Any) -> Any:
            head = tf.data.Dataset.from_tensor_slices(
                tf.reshape(order[: full * size], [full, size])
            )
            if rest:
                head = head.concatenate(tf.data.Dataset.from_tensors(order[full * size :]))
            return head

        indices = tf.data.Dataset.range(1).map(lambda _: variable.read_value())
        indices = indices.flat_map(batches_of)
        rows = tf.data.Dataset.zip((indices, tf.data.Dataset.from_tensors(self.inputs).repeat()))
        rows = rows.map(
            lambda i, xy: (tf.gather(xy[0], i), tf.gather(xy[1], i)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        rows = rows.apply(tf.data.experimental.assert_cardinality(full + bool(rest)))
        options = tf.data.Options()  # as Keras' adapter: no graph rewrites of the pipeline
        options.experimental_optimization.apply_default_optimizations = False
        if self.threads:  # the harness's thread budget (--threads): tf.data's own pool too
            options.threading.private_threadpool_size = self.threads
        return variable, rows.with_options(options).prefetch(tf.data.AUTOTUNE)


# --- per-framework helpers -------------------------------------------------------------------


class _Framework:
    """Keras' own behaviour where a framework needs nothing special: ``fit`` fed batch by batch
    from host arrays (``_BatchFeed``), Adam's β as a Python float (cast straight to the
    variable's dtype)."""

    @staticmethod
    def feed(
        keras: ModuleType, x: np.ndarray, y: np.ndarray, batch_size: int, threads: int | None
    ) -> Any:
        return _BatchFeed(keras, x, y, batch_size)

    @staticmethod
    def limit_threads(threads: int) -> None:
        """The harness's thread budget for pools sized at run time (the environment set before
        the framework loaded covers the rest: ``bench.cell.threads``)."""

    @staticmethod
    def adam_beta(beta: float, dtype: str) -> Any:
        return float(beta)


class _TensorFlow(_Framework):
    """What is TensorFlow's own: GPUs with memory growth, TF32, sync, βᵗ, threads, versions."""

    @staticmethod
    def setup(tf32: bool) -> str:
        """Apply the TF32 switch; "gpu" when TensorFlow sees a GPU, else "cpu"."""
        tf = _import_tf()
        gpus = _configure_gpus(tf)
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        return "gpu" if gpus else "cpu"

    @staticmethod
    def prepare(recipe: Recipe, device: str, jit_compile: bool) -> None:
        """Process-wide settings the recipe needs before its Keras objects exist: none."""

    @staticmethod
    def feed(
        keras: ModuleType, x: np.ndarray, y: np.ndarray, batch_size: int, threads: int | None
    ) -> Any:
        """TensorFlow's input pipeline, built once (see ``_TfFeed``)."""
        return _TfFeed(x, y, batch_size, threads)

    @staticmethod
    def limit_threads(threads: int) -> None:
        """TensorFlow's op pools (once they exist they cannot change: then the environment,
        ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, has already sized them)."""
        tf = _import_tf()
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

    @staticmethod
    def adam_beta(beta: float, dtype: str) -> Any:
        """β as Keras' Adam should see it. Keras computes βᵗ as ``cast(β, var.dtype) ** t``, and
        TensorFlow casts a Python float through float32 first, so a float64 model would get
        float32-rounded bias corrections (a 7e-6 relative error in the first step). A float64
        tensor keeps them exact; float32 models keep the plain float (Keras' own behaviour)."""
        if dtype == "float32":
            return float(beta)
        return _import_tf().constant(beta, dtype=dtype)

    @staticmethod
    def reset_peak_memory(device: str) -> None:
        if device == "gpu":
            _import_tf().config.experimental.reset_memory_stats("GPU:0")  # peak = this run's

    @staticmethod
    def synchronize(device: str, model: Any) -> None:
        if device == "gpu":
            _import_tf().test.experimental.sync_devices()

    @staticmethod
    def settings(device: str) -> dict[str, Any]:
        tf = _import_tf()
        out = {
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            **_thread_settings(tf),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default: on)"),
            "tensorflow": tf.__version__,
        }
        if device == "gpu":
            out.update(_gpu_settings(tf))
        return out


class _Jax(_Framework):
    """JAX's own: matmul precision (TF32), ``jax_enable_x64`` for float64, sync, versions."""

    @staticmethod
    def setup(tf32: bool) -> str:
        import jax

        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")
        return "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"

    @staticmethod
    def prepare(recipe: Recipe, device: str, jit_compile: bool) -> None:
        """float64 needs ``jax_enable_x64`` (without it JAX silently makes float64 arrays
        float32). Process-wide and left on: float32 recipes keep float32 dtypes under it."""
        if recipe.dtype == "float64":
            import jax

            jax.config.update("jax_enable_x64", True)

    @staticmethod
    def reset_peak_memory(device: str) -> None:
        """JAX offers no reset: the recorded peak is the process's."""

    @staticmethod
    def synchronize(device: str, model: Any) -> None:
        """Wait until the model's and optimizer's variables are computed (cheap on the CPU)."""
        import jax

        variables = [*model.variables, *getattr(model.optimizer, "variables", [])]
        jax.block_until_ready([v.value for v in variables])

    @staticmethod
    def settings(device: str) -> dict[str, Any]:
        import jax
        import jaxlib

        precision = jax.config.jax_default_matmul_precision
        out: dict[str, Any] = {
            "tf32": precision == "tensorfloat32",
            "matmul_precision": precision,
            "jax_enable_x64": bool(jax.config.jax_enable_x64),
            "xla_flags": os.environ.get("XLA_FLAGS", "unset"),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
        }
        if device == "gpu":
            dev = jax.devices()[0]
            stats = dev.memory_stats() or {}
            out["gpu"] = dev.device_kind
            out["gpu_peak_memory_bytes"] = stats.get("peak_bytes_in_use")
            out["gpu_memory_measure"] = "process peak"
            out["gpu_peak_memory_note"] = "the process's peak (JAX cannot reset it)"
        return out


class _Torch(_Framework):
    """PyTorch's own: CUDA, TF32 flags, sync, the compiler torch.compile needs, threads."""

    @staticmethod
    def setup(tf32: bool) -> str:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        return "gpu" if torch.cuda.is_available() else "cpu"

    @staticmethod
    def limit_threads(threads: int) -> None:
        """PyTorch's intra-op pool (and its inter-op pool, while it can still be sized)."""
        import torch

        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(threads)

    @staticmethod
    def prepare(recipe: Recipe, device: str, jit_compile: bool) -> None:
        """``torch.compile`` (jit_compile=True) needs a C++ compiler for CPU code."""
        if jit_compile and device == "cpu" and shutil.which(os.environ.get("CXX", "g++")) is None:
            raise RecipeUnsupported("jit_compile=true (torch.compile) needs a C++ compiler (g++)")

    @staticmethod
    def reset_peak_memory(device: str) -> None:
        if device == "gpu":
            import torch

            torch.cuda.reset_peak_memory_stats()

    @staticmethod
    def synchronize(device: str, model: Any) -> None:
        if device == "gpu":
            import torch

            torch.cuda.synchronize()

    @staticmethod
    def settings(device: str) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "torch": torch.__version__,
        }
        if device == "gpu":
            out["gpu"] = torch.cuda.get_device_name()
            out["gpu_peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
            out["gpu_memory_measure"] = "allocator peak"
            out["cudnn_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        return out


# --- the backends ----------------------------------------------------------------------------


class KerasMLP:
    """The Backend contract over ``keras.Sequential`` + ``model.fit`` (TensorFlow backend)."""

    #: Keras' backend for this class, and the helper holding that framework's specifics.
    KERAS_BACKEND: ClassVar[str] = "tensorflow"
    #: ``mlpbench fidelity``: the same recipe as a plain Keras script on this backend.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = (
        "backends.plain.keras_plain",
        "--keras-backend",
        "tensorflow",
    )
    FRAMEWORK: ClassVar[type] = _TensorFlow
    DEFAULT_JIT_COMPILE: ClassVar[str] = DEFAULT_JIT_COMPILE
    #: Largest steps_per_execution Keras' trainer for this backend accepts (None: no limit).
    MAX_STEPS_PER_EXECUTION: ClassVar[int | None] = None

    device = "cpu"  # replaced per instance: "gpu" when the framework sees one
    OPTIONS: ClassVar[dict[str, str]] = {
        "jit_compile": "compile the train step with XLA: auto (default: Keras' own choice, off "
        "on a CPU-only machine), true or false",
        "steps_per_execution": "optimizer steps per call of the compiled train function "
        "(default 1, Keras' own)",
    }
    #: Speed-only options and the values ``mlpbench tune`` tries (they must not change the
    #: math); the first value of each is the shipped default.
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "jit_compile": ("auto", "false", "true"),
        "steps_per_execution": ("1", "64"),
    }

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        given = self.options.backend
        jit = given.get("jit_compile", self.DEFAULT_JIT_COMPILE).strip().lower()
        self.jit_compile: bool | str = "auto" if jit == "auto" else parse_bool("jit_compile", jit)
        self.steps_per_execution = parse_positive_int(
            "steps_per_execution", given.get("steps_per_execution", "1")
        )
        limit = self.MAX_STEPS_PER_EXECUTION
        if limit is not None and self.steps_per_execution > limit:
            raise OptionError(
                f"option steps_per_execution must be {limit} on Keras' {self.KERAS_BACKEND} "
                f"backend, got {self.steps_per_execution}"
            )
        self.keras_backend_switched = False
        self.keras = self._use_keras()
        self.device = self.FRAMEWORK.setup(self.options.tf32)

    def _use_keras(self) -> ModuleType:
        """Keras on this class's backend (switching it if another one is loaded)."""
        keras, switched = _use_keras_backend(self.KERAS_BACKEND)
        self.keras_backend_switched = self.keras_backend_switched or switched
        return keras

    @staticmethod
    def unavailable_reason() -> str | None:
        if _missing("tensorflow"):
            return "tensorflow is not installed (pip install 'mlpbench[tf]')"
        return None

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        """Model, optimizer and compiled loss/metrics in the recipe's dtype, weights loaded.

        Nothing is traced or trained here: the optimizer's slots are created lazily by the first
        ``fit`` step (epoch 1), so ``get_weights()`` equals ``init_weights`` afterwards."""
        keras = self.keras = self._use_keras()  # another instance may have switched since
        dtype = recipe.dtype
        self.recipe = recipe
        self.FRAMEWORK.prepare(recipe, self.device, self.jit_compile is True)
        if self.options.threads:
            self.FRAMEWORK.limit_threads(self.options.threads)
        self.feed = self.FRAMEWORK.feed(
            keras,
            np.ascontiguousarray(data.x_train, dtype=dtype),
            np.ascontiguousarray(data.y_train, dtype=np.int64),
            recipe.batch_size,
            self.options.threads,
        )
        self.x_test = np.ascontiguousarray(data.x_test, dtype=dtype)
        self.y_test = np.ascontiguousarray(data.y_test, dtype=np.int64)
        lost = _float64_lost(keras) if dtype == "float64" else []
        if lost:
            raise RecipeUnsupported(
                f"Keras {keras.__version__} on {self.KERAS_BACKEND} computes float64 "
                f"{' and '.join(lost)} in float32 (use keras or keras-jax for float64)"
            )
        with _floatx(keras, dtype):
            self.model = _make_model(keras, recipe, data.n_features)
            held = {keras.backend.standardize_dtype(w.value.dtype) for w in self.model.weights}
            if held != {dtype}:
                raise RecipeUnsupported(
                    f"Keras on {self.KERAS_BACKEND} made {'/'.join(sorted(held))} weights for a "
                    f"{dtype} recipe"
                )
            self.set_weights(init_weights)
            self.model.compile(
                optimizer=_make_optimizer(keras, recipe, self.FRAMEWORK.adam_beta),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False, dtype=dtype),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy", dtype=dtype)],
                jit_compile=self.jit_compile,
                steps_per_execution=self.steps_per_execution,
            )
        self.jit_asked = self.jit_compile
        self.jit_compile = bool(self.model.jit_compile)  # what Keras resolved "auto" to
        self.FRAMEWORK.reset_peak_memory(self.device)

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """One ``fit`` epoch over rows ``order`` in that order: consecutive batches of the
        recipe's batch size, fed by the framework's feed (``_TfFeed`` on TensorFlow, else
        ``_BatchFeed``); feeding is part of the timed epoch. Keras' logged loss/accuracy are
        sample-weighted means of each batch before its update."""
        with _floatx(self.keras, self.recipe.dtype):  # Keras' array adapter casts to floatx
            logs = self.model.fit(
                **self.feed.fit_args(order), epochs=1, shuffle=False, verbose=0
            ).history
        return EpochMetrics(loss=float(logs["loss"][0]), accuracy=float(logs["accuracy"][0]))

    def evaluate(self) -> Evaluation:
        with _floatx(self.keras, self.recipe.dtype):
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
        floats, so this only matters on a GPU (TensorFlow, PyTorch) or for JAX's async dispatch."""
        self.FRAMEWORK.synchronize(self.device, self.model)

    def settings(self) -> dict[str, Any]:
        return {
            "dtype": self.recipe.dtype,
            "keras_backend": self.keras.config.backend(),
            "keras_backend_switched": self.keras_backend_switched,
            "jit_compile": self.jit_compile,
            "jit_compile_asked": getattr(self, "jit_asked", self.jit_compile),
            "steps_per_execution": self.steps_per_execution,
            "input_feed": self.feed.NAME,
            "keras": self.keras.__version__,
            "device": self.device,
            **self.FRAMEWORK.settings(self.device),
        }


class KerasJaxMLP(KerasMLP):
    """The same Keras model and ``fit`` on Keras' JAX backend."""

    KERAS_BACKEND: ClassVar[str] = "jax"
    #: ``mlpbench fidelity``: the same recipe as a plain Keras script on this backend.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = (
        "backends.plain.keras_plain",
        "--keras-backend",
        "jax",
    )
    FRAMEWORK: ClassVar[type] = _Jax
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "jit_compile": ("auto",),  # jit off runs op by op: never faster
        "steps_per_execution": ("1", "16", "64"),
    }
    OPTIONS: ClassVar[dict[str, str]] = {
        "jit_compile": "compile the train step with jax.jit: auto (default: Keras' own choice, "
        "jit on), true or false (op by op)",
        "steps_per_execution": KerasMLP.OPTIONS["steps_per_execution"],
    }

    @staticmethod
    def unavailable_reason() -> str | None:
        if _missing("keras", "jax"):
            return "keras and jax are needed (pip install 'mlpbench[keras-jax]')"
        return None


class KerasTorchMLP(KerasMLP):
    """The same Keras model and ``fit`` on Keras' PyTorch backend."""

    KERAS_BACKEND: ClassVar[str] = "torch"
    #: ``mlpbench fidelity``: the same recipe as a plain Keras script on this backend.
    PLAIN_SCRIPT: ClassVar[tuple[str, ...]] = (
        "backends.plain.keras_plain",
        "--keras-backend",
        "torch",
    )
    FRAMEWORK: ClassVar[type] = _Torch
    MAX_STEPS_PER_EXECUTION: ClassVar[int | None] = 1
    OPTIONS: ClassVar[dict[str, str]] = {
        "jit_compile": "compile the train step with torch.compile: auto (default: Keras' own "
        "choice, eager), true (needs a C++ compiler on the CPU) or false",
        "steps_per_execution": "optimizer steps per call of the train function (only 1: Keras' "
        "PyTorch trainer supports no other)",
    }
    SPEED_OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {"jit_compile": ("auto", "true")}

    @staticmethod
    def unavailable_reason() -> str | None:
        if _missing("keras", "torch"):
            return "keras and torch are needed (pip install 'mlpbench[keras-torch]')"
        return None


# --- TensorFlow details ----------------------------------------------------------------------


def _import_tf() -> ModuleType:
    with _quiet_native_stderr():
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
        "gpu_memory_measure": "process peak",
    }
