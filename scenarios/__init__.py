"""The scenario catalogue: the report's experiments, each one change away from the baseline.

A scenario fixes everything that defines the training *recipe* (architecture, init, optimizer
and its hyperparameters, batch size, epochs, dropout, dtype, seed). Backends take every value
from here and never fall back on a library default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from backends.api import DTYPES, OPTIMIZERS, Recipe
from bench.errors import ConfigError
from bench.stats import TARGET_ACCURACY

INITS = ("glorot_uniform", "he_normal", "report_normal")
N_CLASSES = 10


@dataclass(frozen=True)
class Scenario:
    """One training recipe. ``batch_size=None`` means full-batch gradient descent."""

    name: str
    summary: str
    hidden: tuple[int, ...] = (128,)
    init: str = "glorot_uniform"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    beta_1: float = 0.9  # Adam
    beta_2: float = 0.999  # Adam
    rho: float = 0.9  # RMSprop
    epsilon: float = 1e-7  # Adam and RMSprop (Keras' default)
    batch_size: int | None = 32
    epochs: int = 5
    dropout: float = 0.0
    dtype: str = "float32"
    seed: int = 0
    shuffle: bool = True
    changes: tuple[str, ...] = field(default=())
    #: The scenario this one changes, for the paired questions in results.md ("baseline").
    base: str | None = None
    #: Position on the report's gap ladder (report_recipe 0 … baseline last), else None.
    ladder: int | None = None
    #: A sweep's point this scenario is (``--sweep``): ((key, value as text), …); () otherwise.
    sweep: tuple[tuple[str, str], ...] = ()
    #: The test accuracy (a fraction) whose first passing evaluation ends the time to accuracy
    #: (``bench.report.tta``): ``bench.stats.TARGET_ACCURACY`` (97 %) for the whole catalogue;
    #: it changes no training.
    target_accuracy: float = TARGET_ACCURACY

    @property
    def origin(self) -> str:
        """The scenario a sweep point came from (its own name when it is none)."""
        return self.name.split("[", 1)[0]

    @property
    def sweep_options(self) -> dict[str, dict[str, str]]:
        """The backend options of its sweep point: backend → {option: value}."""
        out: dict[str, dict[str, str]] = {}
        for key, value in self.sweep:
            backend, dot, option = key.rpartition(".")
            if dot:
                out.setdefault(backend, {})[option] = value
        return out

    def __post_init__(self) -> None:
        validate(self)

    def with_overrides(self, **overrides: Any) -> Scenario:
        """A copy with some settings replaced (None values are ignored); validated."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def recipe(self, n_train: int) -> Recipe:
        """What a backend is handed: the training math as plain values (the init scheme is not
        in it: backends get the weights themselves); full batch becomes ``n_train`` rows."""
        return Recipe(
            scenario=self.name,
            hidden=self.hidden,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            rho=self.rho,
            epsilon=self.epsilon,
            batch_size=self.batch_size or n_train,
            dropout=self.dropout,
            dtype=self.dtype,
            seed=self.seed,
            n_classes=N_CLASSES,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scenario:
        """The scenario ``to_dict`` wrote (validated again)."""
        sweep = tuple(tuple(point) for point in d.get("sweep", ()))
        return cls(
            **{**d, "hidden": tuple(d["hidden"]), "changes": tuple(d["changes"]), "sweep": sweep}
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["changes"] = list(self.changes)
        d["sweep"] = [list(point) for point in self.sweep]
        return d


def validate(s: Scenario) -> None:
    """Raise ConfigError (one line, naming the setting and the valid range) for a bad value."""
    checks = [
        (s.init in INITS, f"init {s.init!r} is unknown; choose one of {', '.join(INITS)}"),
        (
            s.optimizer in OPTIMIZERS,
            f"optimizer {s.optimizer!r} is unknown; choose one of {', '.join(OPTIMIZERS)}",
        ),
        (
            s.dtype in DTYPES,
            f"dtype {s.dtype!r} is not supported; choose one of {', '.join(DTYPES)}",
        ),
        (
            len(s.hidden) >= 1 and all(_pos_int(h) for h in s.hidden),
            f"hidden sizes {s.hidden} must be positive integers",
        ),
        (_pos_int(s.epochs), f"epochs must be a positive integer, got {s.epochs!r}"),
        (
            s.batch_size is None or _pos_int(s.batch_size),
            f"batch size must be a positive integer, got {s.batch_size!r}",
        ),
        (
            _finite(s.learning_rate) and s.learning_rate > 0,
            f"learning rate must be > 0, got {s.learning_rate!r}",
        ),
        (
            _finite(s.dropout) and 0 <= s.dropout < 1,
            f"dropout rate must be in [0, 1), got {s.dropout!r}",
        ),
        (
            all(_finite(b) and 0 <= b < 1 for b in (s.beta_1, s.beta_2, s.rho)),
            "beta_1, beta_2 and rho must be in [0, 1)",
        ),
        (_finite(s.epsilon) and s.epsilon > 0, f"epsilon must be > 0, got {s.epsilon!r}"),
        (
            _finite(s.target_accuracy) and 0 < s.target_accuracy <= 1,
            f"target accuracy must be in (0, 1], got {s.target_accuracy!r}",
        ),
        (
            isinstance(s.seed, int) and s.seed >= 0,
            f"seed must be a non-negative integer, got {s.seed!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"scenario {s.name!r}: {message}")


def _pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


BASELINE = Scenario(
    name="baseline",
    summary="the report's Keras model: 128 ReLU, Glorot uniform, Adam lr 1e-3, batch 32, 5 epochs",
    ladder=6,
)


def _variant(name: str, change: str, **kw: Any) -> Scenario:
    return replace(
        BASELINE,
        name=name,
        summary=f"baseline with {change}, 10 epochs",
        epochs=10,
        changes=(change,),
        base="baseline",
        ladder=None,
        **kw,
    )


NEURONS_256 = _variant("neurons_256", "256 hidden neurons", hidden=(256,))
HE_INIT = _variant("he_init", "He-normal init", init="he_normal")
RMSPROP = _variant("rmsprop", "RMSprop (lr 1e-3, rho 0.9)", optimizer="rmsprop")
DROPOUT = _variant("dropout", "dropout 0.2 after the hidden layer", dropout=0.2)
#: The report's recommended recipe: its three winning changes together.
BEST_CONFIG = replace(
    _variant("best_config", "256 neurons + He-normal init + RMSprop"),
    hidden=(256,),
    init="he_normal",
    optimizer="rmsprop",
)
REPORT_RECIPE = Scenario(
    name="report_recipe",
    summary="the report's NumPy run: full-batch GD, lr 0.01, 50 epochs, float64, randn*0.01",
    init="report_normal",
    optimizer="sgd",
    learning_rate=0.01,
    batch_size=None,
    epochs=50,
    dtype="float64",
    seed=42,
    shuffle=False,
    changes=("full-batch SGD lr 0.01", "50 epochs", "float64", "N(0, 0.01²) init, seed 42"),
    ladder=0,
)


def _rung(previous: Scenario, step: int, name: str, change: str, **kw: Any) -> Scenario:
    """The next rung of the gap ladder: ``previous`` with one more thing as the baseline has it."""
    return replace(
        previous,
        name=f"gap_{step}_{name}",
        summary=f"gap ladder {step}: the rung before, with {change}",
        changes=(change,),
        ladder=step,
        **kw,
    )


#: From the report's recipe to the baseline one change at a time (the order is a choice: a
#: change's share of the gap depends on what came before it; results.md says so).
GAP_1 = _rung(REPORT_RECIPE, 1, "init", "Glorot-uniform init", init="glorot_uniform")
GAP_2 = _rung(GAP_1, 2, "float32", "float32", dtype="float32")
GAP_3 = _rung(GAP_2, 3, "adam", "Adam instead of SGD (lr 0.01 kept)", optimizer="adam")
GAP_4 = _rung(GAP_3, 4, "lr", "lr 1e-3", learning_rate=1e-3)
GAP_5 = _rung(GAP_4, 5, "epochs", "5 epochs", epochs=5)
#: Rung 6 is the baseline itself: batches of 32, reshuffled every epoch (the order of rows
#: only matters once there are mini-batches, so batching and shuffling are one change).

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        BASELINE,
        NEURONS_256,
        HE_INIT,
        RMSPROP,
        DROPOUT,
        BEST_CONFIG,
        REPORT_RECIPE,
        GAP_1,
        GAP_2,
        GAP_3,
        GAP_4,
        GAP_5,
    )
}


def get(name: str) -> Scenario:
    """The scenario called ``name``; ConfigError listing the valid names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)} (or 'all')"
        ) from None
