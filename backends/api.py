"""The public contract between mlpbench and a backend: the one module a backend author imports.

A backend trains one MLP — input → Dense(h, ReLU) [→ Dropout] per hidden width → Dense(10,
softmax), mean categorical cross-entropy — from weights the harness hands it, in the batch order
the harness hands it, with the optimizer formulas and hyperparameters of the ``Recipe`` it is
handed (Keras 3's definitions, or the framework's own optimizer where the backend declares how
it departs from them; see the README's "For backend authors"). Everything passed in is
plain data (NumPy arrays, numbers, strings): no harness object crosses this line.

A backend is a class registered under the entry-point group ``mlpbench.backends``::

    [project.entry-points."mlpbench.backends"]
    mine = "my_package.my_module:MyMLP"

and checked by the conformance kit (``bench.conformance``). Lifecycle, as the harness drives it:
``cls(options)`` → ``build(recipe, data, init_weights)`` (untimed) → per epoch
``synchronize(); train_epoch(order); synchronize()`` (the timed region) then ``evaluate()``
(untimed). Only the instance's ``device`` attribute and ``settings()`` are read after ``build``.

Optional class attributes: ``PLAIN_SCRIPT`` (``python -m`` arguments of the recipe written as the
framework's own users write it, ``backends/plain/common.py`` has its contract; ``mlpbench
fidelity`` times it against the harness), ``FORMULA_DEPARTURES`` (recipe optimizer → one line on
how the shipped update, the framework's own optimizer, departs from Keras' formula; recorded in
``settings()`` as ``optimizer_formula``) and ``EXACT_FORMULAS`` (the backend options under which
every update is Keras' formula). The conformance kit reads all three.

Refusals: a recipe setting the backend does not support → ``RecipeUnsupported(reason)`` from
``build`` (the harness records "skipped: reason"); a bad backend option → ``OptionError(reason)``
from ``__init__``. Any other exception is a failure of that run, never a skip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

#: Weights in Keras order [W1, b1, W2, b2, ...]; kernels shaped (in, out), biases (out,).
Weights = list[np.ndarray]

OPTIMIZERS = ("sgd", "adam", "rmsprop")
DTYPES = ("float32", "float64")


class RecipeUnsupported(Exception):
    """This backend cannot run this recipe; the message is one line saying why."""


class OptionError(ValueError):
    """A backend option has an unknown name or a bad value; the message is one line with the fix."""


@dataclass(frozen=True)
class Recipe:
    """What to train, as plain values; a backend takes every value from here, never a default.

    ``hidden``: widths of the hidden ReLU layers. ``optimizer``: one of ``OPTIMIZERS`` with
    Keras 3's formulas — SGD ``w −= lr·g``; Adam (``beta_1``, ``beta_2``, ``epsilon`` outside the
    sqrt, bias-corrected step size); RMSprop (``rho``, ``epsilon`` inside the sqrt).
    ``batch_size``: rows per step (the last batch of an epoch may be smaller); full-batch training
    arrives as ``batch_size == n_train``. ``dropout``: inverted-dropout rate after each hidden
    layer (0 = none), with the backend's own random masks seeded from ``seed``. ``dtype``:
    "float32" or "float64", for weights, data and arithmetic. ``scenario``: a name for messages.
    """

    scenario: str
    hidden: tuple[int, ...]
    optimizer: str
    learning_rate: float
    beta_1: float
    beta_2: float
    rho: float
    epsilon: float
    batch_size: int
    dropout: float
    dtype: str
    seed: int
    n_classes: int = 10


@dataclass(frozen=True, eq=False)
class TrainData:
    """x_train (n_train, n_features) and x_test (n_test, n_features): C-contiguous, in the
    recipe's dtype, values in [0, 1]; y_train (n_train,) and y_test (n_test,): int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what to train: never changes the recipe's math beyond rounding.

    ``tf32``: allow TensorFloat-32 matmuls on GPUs that have them (off by default, everywhere).
    ``backend``: this backend's own options as strings (names from its ``OPTIONS``), e.g.
    ``{"jit_compile": "false"}``; the backend parses them and records the values in settings().
    ``threads``: the harness's thread budget for every pool the framework starts (None: the
    framework's own sizes, as its users get them). The harness sets what the environment
    controls before the framework loads (``bench.cell.threads``); a backend applies the rest
    (pools it sizes at run time) and records what it ran with in settings().
    """

    tf32: bool = False
    backend: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None


@dataclass(frozen=True)
class EpochMetrics:
    """Training metrics of one epoch, Keras-style: sample-weighted means over the epoch's batches,
    each batch measured by its forward pass before its update (dropout active).

    ``loss`` and ``accuracy`` may be 0-d device arrays: the harness reads them with ``float()``
    only after the clock stops, so a GPU backend need not synchronize inside an epoch.
    ``device_seconds``: optional device-side time of the epoch (e.g. CUDA events), also read with
    ``float()`` after the clock stops. ``device_step_seconds``: optional device-side time of each
    training step (one per batch, in order), an iterable of seconds read only after the clock
    stops (``backends.device_time`` makes both from CUDA events).
    """

    loss: Any
    accuracy: Any
    device_seconds: Any = None
    device_step_seconds: Any = None


@dataclass(frozen=True)
class Evaluation:
    """Test-set loss (mean categorical cross-entropy) and accuracy (fraction in [0, 1])."""

    loss: float
    accuracy: float


@runtime_checkable
class Backend(Protocol):
    """One implementation of the MLP (see the module docstring for the lifecycle)."""

    #: "cpu" or "gpu"; an instance may refine the class's value in ``__init__`` or ``build``.
    device: str
    #: This backend's options: name → one-line help. ``RunOptions.backend`` keys come from here.
    OPTIONS: ClassVar[Mapping[str, str]]
    # Optional (read with getattr, default False): ``SUB_EPOCH_EVALUATION = True`` says that
    # ``train_epoch`` over consecutive slices of an epoch's order (each a multiple of the batch
    # size) trains exactly as one call over the whole order does — the same batches and updates,
    # optimizer and dropout state carried across calls — at no per-call cost worth measuring, so
    # the harness may evaluate between slices (``mlpbench run --eval-every``). Backends that
    # compile per epoch length or rebuild an input pipeline per call leave it out.

    def __init__(self, options: RunOptions) -> None: ...

    @staticmethod
    def unavailable_reason() -> str | None:
        """One line saying why this backend cannot run here ("torch is not installed (pip install
        'mlpbench[torch]')"), or None. Cheap and never raising: ``mlpbench list``, test skips and
        run selection call it; it must not import the framework when a spec lookup suffices."""

    def build(self, recipe: Recipe, data: TrainData, init_weights: Weights) -> None:
        """Create the model and optimizer state from ``init_weights`` and move ``data`` to the
        device. Untimed. ``RecipeUnsupported`` when the recipe asks for what this cannot do."""

    def train_epoch(self, order: np.ndarray) -> EpochMetrics:
        """One pass over the training rows ``order`` (int64, shape (n,), values in [0, n_train))
        in that order, as consecutive batches of ``recipe.batch_size``. The timed unit: it may
        return before queued device work finishes; the harness synchronizes around it."""

    def evaluate(self) -> Evaluation:
        """Test loss and accuracy in inference mode (no dropout). Untimed."""

    def get_weights(self) -> Weights:
        """Host copies of the current weights, in Keras order, in the recipe's dtype."""

    def set_weights(self, weights: Weights) -> None:
        """Replace the weights (optimizer state is kept)."""

    def synchronize(self) -> None:
        """Block until all queued device work is done; a no-op on the CPU."""

    def settings(self) -> dict[str, Any]:
        """Every setting that affects speed or numerics, JSON-ready: at least ``dtype`` and the
        value in force of each name in ``OPTIONS``; threads, TF32, compilation, versions."""


def parse_bool(name: str, text: str) -> bool:
    """A backend option's boolean value: true/false, 1/0, yes/no, on/off (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"option {name} takes true or false, got {text!r}")


def parse_choice(name: str, text: str, choices: tuple[str, ...]) -> str:
    """A backend option's value from ``choices`` (case-insensitive)."""
    value = text.strip().lower()
    if value not in choices:
        raise OptionError(f"option {name} takes one of {', '.join(choices)}, got {text!r}")
    return value


def parse_positive_int(name: str, text: str) -> int:
    """A backend option's positive integer value."""
    value = text.strip()
    if not value.isdigit() or int(value) <= 0:
        raise OptionError(f"option {name} takes a positive integer, got {text!r}")
    return int(value)
