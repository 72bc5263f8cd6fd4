"""Cross-backend agreement: every registered backend against the NumPy engine in float64.

Each backend trains from the same initial weights on the same batches of a small real MNIST slice
with the same hyperparameters; every weight array and the epoch's training loss are compared with
the float64 reference. Weight errors are measured relative to how far the reference moved,
``max|w − ref| / max|ref − w0|``, so one tolerance fits one step and a whole epoch alike.

Tolerances come from measurement (see ``tolerance``) and sit far below what a convention slip
produces: ε inside instead of outside the sqrt (the epsilon=1e-3 configs make ε dominate the
small gradients) or a summed instead of averaged loss gradient both move results by O(1). For the
NumPy float64 backend, which runs the reference's own code, this is a determinism check.

Every backend runs as shipped, and a backend whose shipped update departs from Keras' formulas
(``FORMULA_DEPARTURES`` on its class: PyTorch's torch.optim) runs a second time with the options
that make it exact (``EXACT_FORMULAS``, the id suffix ``:exact-formula``). As shipped, a departing
optimizer is held to the same tolerances against a float64 reference of its own documented
formula (``tests.reference.torch_optim_steps``); every other case against the NumPy engine.

Dropout masks are each backend's own random draws, so dropout is compared statistically over
seeds: each backend's mean over seeds must sit within the band the reference's own seed-to-seed
spread allows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import pytest
import reference as oracle

from backends.api import RecipeUnsupported, RunOptions
from bench import registry
from bench.cell.initializers import initial_weights
from bench.data import Dataset, load_raw, prepare
from scenarios import BASELINE, Scenario

N_TRAIN, N_TEST = 1024, 500
DTYPES = ("float32", "float64")

#: Optimizer settings; the epsilon=1e-3 ones make ε larger than most gradients, so where ε goes
#: (inside or outside the sqrt) changes every update.
CONFIGS: dict[str, dict[str, object]] = {
    "sgd": {"optimizer": "sgd", "learning_rate": 0.1},
    "adam": {"optimizer": "adam", "learning_rate": 1e-3},
    "rmsprop": {"optimizer": "rmsprop", "learning_rate": 1e-3},
    "adam_eps1e-3": {"optimizer": "adam", "learning_rate": 1e-3, "epsilon": 1e-3},
    "rmsprop_eps1e-3": {"optimizer": "rmsprop", "learning_rate": 1e-3, "epsilon": 1e-3},
}
#: The epoch test's (dtype, config) pairs: every optimizer in float32, and float64 SGD (the
#: report's recipe); the steps test covers every optimizer in both dtypes.
EPOCH_CASES = [("float32", "sgd"), ("float32", "adam"), ("float32", "rmsprop"), ("float64", "sgd")]
STEPS_BATCH = 32  # the steps test: 1 step, then 19 more (20 in all)
EPOCH_BATCH = 100  # the epoch test: 1024 rows = 10 batches of 100 + a partial batch of 24


Run = tuple[list[np.ndarray], float]  # (weights, train loss) after one train_epoch call


@dataclass(frozen=True)
class Tolerance:
    weights: float  # max|w − ref| / max|ref − w0|, per weight array
    loss: float  # |loss − ref| / ref


#: Measured worst cases over every case below (NumPy and Keras, 2-core x86 CPU), float32:
#: weights SGD 1.2e-6, RMSprop 1.0e-5, Adam 3.7e-4 (its first steps divide by √v + ε with
#: √v ≈ |g|, so float32 rounding of the tiniest gradients shows), loss 1.8e-6; float64: weights
#: 4.4e-13, loss 3.2e-16. Planting ε inside Adam's sqrt, ε outside RMSprop's, or a summed loss
#: gradient in the NumPy engine made every affected Keras case fail by ≥ 0.3 (largest array).
FLOAT32_WEIGHTS = {"sgd": 1e-5, "rmsprop": 1e-4, "adam": 3e-3}


#: A float32 backend may take either branch of a ReLU whose float64 pre-activation z lies this
#: close to zero relative to S = Σ|x·w| + |b|, the size of what was summed (a few float32 ulps of
#: S: different summation orders round z by that much). The threshold is calibrated on what was
#: seen, not a bound: a 784-term float32 sum can be off by more, so a backend could still flip a
#: decision above it on other hardware; such a failure shows up as one or two hidden units'
#: weights off by ~1e-2 while the loss agrees. When the reference's trajectory has such
#: a decision, weights after it are compared with FLIPPED_RELU_WEIGHTS instead: Keras on PyTorch
#: flipped two (margins ~1e-8, float32 SGD, 20 steps) and its weights moved by 1.6e-2 of the
#: reference's move; a convention slip moves them by ≥ 0.3. The loss tolerance stays as it is.
AMBIGUOUS_RELU_MARGIN = 2.0**-22
FLIPPED_RELU_WEIGHTS = 5e-2


#: torch.optim's formulas divide by √v + ε with no ε-sized floor under √v (Keras' Adam has
#: ε/√(1 − β2ᵗ), 32× ε at step 1; Keras' RMSprop √(v + ε)), so a gradient near ε, itself the
#: rounding residue of a sum, moves its update more: measured worst (torch 2.13 CPU, shipped
#: torch.optim against ``torch_optim_steps``) float64 2.0e-11 (Adam, 1 step), float32 RMSprop
#: 1.0e-3 — the same cause as Keras' float32 Adam bound, so that bound serves RMSprop too.
TORCH_OPTIM_FLOAT64_WEIGHTS = 1e-10


def tolerance(
    dtype: str, optimizer: str, relu_margin: float = 1.0, formula: str = "keras"
) -> Tolerance:
    """The tolerance for a case; ``relu_margin`` is the reference trajectory's smallest
    |z| / S (``relu_margins``); ``formula`` the update's ("keras" or "torch.optim")."""
    torch_optim = formula == "torch.optim"
    if dtype == "float64":
        return Tolerance(weights=TORCH_OPTIM_FLOAT64_WEIGHTS if torch_optim else 1e-11, loss=1e-13)
    weights = FLOAT32_WEIGHTS["adam" if torch_optim and optimizer != "sgd" else optimizer]
    if relu_margin < AMBIGUOUS_RELU_MARGIN:
        weights = max(weights, FLIPPED_RELU_WEIGHTS)
    return Tolerance(weights=weights, loss=2e-5)


#: One start for everyone: float32 Glorot weights (exactly representable in both dtypes).
START = initial_weights("glorot_uniform", 784, (128,), 10, seed=0, dtype="float32")
ORDER = np.random.default_rng(7).permutation(N_TRAIN).astype(np.int64)


#: The id suffix of a backend's exact-formula variant.
EXACT = ":exact-formula"


def _class_attr(name: str, attr: str) -> dict:
    try:
        return dict(getattr(registry.backend_class(name), attr, {}) or {})
    except Exception:  # an unloadable backend skips in the fixture, with its reason
        return {}


def variants() -> list[str]:
    """Every backend as shipped, then as its exact-formula variant where it has one."""
    names = registry.names()
    return names + [n + EXACT for n in names if _class_attr(n, "EXACT_FORMULAS")]


@pytest.fixture(params=variants())
def backend_name(request: pytest.FixtureRequest) -> str:
    reason = registry.unavailable_reason(request.param.removesuffix(EXACT))
    if reason is not None:
        pytest.skip(reason)
    return request.param


def departs(name: str, optimizer: str) -> bool:
    """Whether ``name`` (a variant) updates ``optimizer`` by torch.optim's formula, not Keras'."""
    return not name.endswith(EXACT) and optimizer in _class_attr(name, "FORMULA_DEPARTURES")


@functools.cache
def slices() -> dict[str, Dataset]:
    """The first N_TRAIN training and N_TEST test rows of the shipped MNIST, in each dtype."""
    raw = load_raw()
    return {dt: prepare(raw, dt).subset(N_TRAIN, N_TEST) for dt in DTYPES}


def scenario(config: str, batch_size: int, dtype: str, **changes: object) -> Scenario:
    settings = {**CONFIGS[config], **changes}
    return replace(BASELINE, name=f"agree_{config}", batch_size=batch_size, dtype=dtype, **settings)


def train(name: str, s: Scenario, *orders: np.ndarray, start: list | None = None) -> list[Run]:
    """Build ``name`` for ``s`` from ``start`` (START), then train one epoch per row order in
    ``orders``; (weights, train loss) after each."""
    base = name.removesuffix(EXACT)
    exact = _class_attr(base, "EXACT_FORMULAS") if name.endswith(EXACT) else {}
    backend = registry.create(base, RunOptions(backend=exact))
    data = slices()[s.dtype]
    try:
        weights = START if start is None else start
        backend.build(s.recipe(data.n_train), data, [w.astype(s.dtype) for w in weights])
    except RecipeUnsupported as refusal:  # an honest refusal (e.g. no exact float64) is no failure
        pytest.skip(f"{name} refuses {s.dtype}: {refusal}")
    out = []
    for order in orders:
        metrics = backend.train_epoch(order)
        backend.synchronize()
        out.append((backend.get_weights(), float(metrics.loss)))
    return out


STEPS_ORDERS = (ORDER[:STEPS_BATCH], ORDER[STEPS_BATCH : 20 * STEPS_BATCH])


@functools.cache
def reference(config: str, test: str, formula: str = "keras") -> list[Run]:
    """The float64 reference's results for ``test`` ("steps" or "epoch"): the NumPy engine
    (Keras' formulas), or with ``formula="torch.optim"`` torch.optim's documented update."""
    batch, orders = (STEPS_BATCH, STEPS_ORDERS) if test == "steps" else (EPOCH_BATCH, (ORDER,))
    s = scenario(config, batch, "float64")
    if formula == "keras":
        return train("numpy", s, *orders)
    return torch_optim_runs(s, START, orders)


def torch_optim_runs(s: Scenario, start: list, orders: tuple[np.ndarray, ...]) -> list[Run]:
    """``train``'s runs for ``s`` in float64 with torch.optim's documented update: after each
    order, its last weights and its batches' sample-weighted loss."""
    data = slices()["float64"]
    size = s.batch_size
    batches = [o[i : i + size] for o in orders for i in range(0, len(o), size)]
    steps = oracle.torch_optim_steps(
        start, data.x_train, data.y_train, batches, s.optimizer, s.learning_rate,
        s.beta_1, s.beta_2, s.rho, s.epsilon,
    )  # fmt: skip
    out, done = [], 0
    for o in orders:
        count = -(-len(o) // size)
        chunk = steps[done : done + count]
        weighted = sum(loss * len(b) for (_, loss), b in zip(chunk, batches[done:], strict=False))
        out.append((chunk[-1][0], weighted / len(o)))
        done += count
    return out


def formula_of(name: str, optimizer: str) -> str:
    """The update formula ``name`` (a variant) runs ``optimizer`` with."""
    return "torch.optim" if departs(name, optimizer) else "keras"


@functools.cache
def relu_margins(config: str, test: str) -> list[float]:
    """Per checkpoint of ``reference(config, test)``: the smallest |z| / S over every hidden
    pre-activation z = x·W1 + b1 of every batch trained so far, S = |x|·|W1| + |b1|, along the
    float64 reference's trajectory (trained batch by batch to see the weights each batch met)."""
    batch, orders = (STEPS_BATCH, STEPS_ORDERS) if test == "steps" else (EPOCH_BATCH, (ORDER,))
    s = scenario(config, batch, "float64")
    data = slices()["float64"]
    backend = registry.create("numpy")
    backend.build(s.recipe(data.n_train), data, [w.astype("float64") for w in START])
    margins, smallest = [], np.inf
    for order in orders:
        for start in range(0, len(order), batch):
            rows = data.x_train[order[start : start + batch]]
            w1, b1 = backend.get_weights()[:2]
            size = np.abs(rows) @ np.abs(w1) + np.abs(b1)
            smallest = min(smallest, float(np.min(np.abs(rows @ w1 + b1) / size)))
            backend.train_epoch(order[start : start + batch])
        margins.append(smallest)
    return margins


def relative_errors(weights: list[np.ndarray], ref: list[np.ndarray]) -> list[float]:
    """Per array: max|w − ref| / max|ref − w0| (error as a fraction of the reference's move)."""
    return [
        float(np.max(np.abs(w.astype(np.float64) - r)) / np.max(np.abs(r - w0)))
        for w, r, w0 in zip(weights, ref, START, strict=True)
    ]


def assert_agrees(got: Run, ref: Run, tol: Tolerance, dtype: str, what: str) -> None:
    (weights, loss), (ref_weights, ref_loss) = got, ref
    assert [w.dtype for w in weights] == [np.dtype(dtype)] * len(START)
    errors = relative_errors(weights, ref_weights)
    assert max(errors) <= tol.weights, f"{what}: errors (W1, b1, W2, b2) {errors} > {tol.weights}"
    assert abs(loss - ref_loss) <= tol.loss * ref_loss, f"{what}: train loss {loss} vs {ref_loss}"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_steps_match_reference(backend_name: str, dtype: str, config: str) -> None:
    """One step, then 19 more, at batch 32 (cases a and b)."""
    s = scenario(config, STEPS_BATCH, dtype)
    got = train(backend_name, s, *STEPS_ORDERS)
    formula = formula_of(backend_name, s.optimizer)
    ref, margins = reference(config, "steps", formula), relu_margins(config, "steps")
    for what, g, r, margin in zip(("1 step", "20 steps"), got, ref, margins, strict=True):
        assert_agrees(g, r, tolerance(dtype, s.optimizer, margin, formula), dtype, what)


@pytest.mark.parametrize(("dtype", "config"), EPOCH_CASES)
def test_epoch_matches_reference(backend_name: str, dtype: str, config: str) -> None:
    """One epoch of the slice at batch 100, ending in a partial batch (case c): the epoch loss
    must be the sample-weighted mean of the batch losses."""
    s = scenario(config, EPOCH_BATCH, dtype)
    (got,) = train(backend_name, s, ORDER)
    formula = formula_of(backend_name, s.optimizer)
    (ref,) = reference(config, "epoch", formula)
    (margin,) = relu_margins(config, "epoch")
    assert_agrees(got, ref, tolerance(dtype, s.optimizer, margin, formula), dtype, "epoch")


# ----------------------------------------------------------------------------------- depth
DEEP = (64, 32)
DEEP_START = initial_weights("glorot_uniform", 784, DEEP, 10, seed=0, dtype="float32")


def test_two_hidden_layers_match_the_reference(backend_name: str) -> None:
    """20 Adam steps at batch 32 through two hidden layers (64, 32), against the float64
    reference of its formula from the same float32-exact start: the catalogue's tolerance."""
    s = replace(scenario("adam", STEPS_BATCH, "float32"), hidden=DEEP)
    ((weights, loss),) = train(backend_name, s, ORDER[: 20 * STEPS_BATCH], start=DEEP_START)
    ref, rows = replace(s, dtype="float64"), ORDER[: 20 * STEPS_BATCH]
    if departs(backend_name, "adam"):
        ((ref_weights, ref_loss),) = torch_optim_runs(ref, DEEP_START, (rows,))
    else:
        ((ref_weights, ref_loss),) = train("numpy", ref, rows, start=DEEP_START)
    errors = [
        float(np.max(np.abs(w.astype(np.float64) - r)) / np.max(np.abs(r - w0)))
        for w, r, w0 in zip(weights, ref_weights, DEEP_START, strict=True)
    ]
    assert len(weights) == 6 and max(errors) <= tolerance("float32", "adam").weights, errors
    assert abs(loss - ref_loss) <= tolerance("float32", "adam").loss * ref_loss


# --------------------------------------------------------------------------------- dropout
DROPOUT = 0.2
DROPOUT_ROWS = 640  # 20 Adam steps at batch 32
BACKEND_SEEDS = range(5)
REFERENCE_SEEDS = range(100, 120)
BAND_SIGMAS = 4.0


def dropout_stats(name: str, dtype: str, seed: int, rate: float = DROPOUT) -> np.ndarray:
    """(train loss, ‖θ − θ0‖) after 20 Adam steps with dropout ``rate`` seeded by ``seed``."""
    s = scenario("adam", STEPS_BATCH, dtype, dropout=rate, seed=seed)
    ((weights, loss),) = train(name, s, ORDER[:DROPOUT_ROWS])
    moved = sum(
        np.sum((w.astype(np.float64) - w0) ** 2) for w, w0 in zip(weights, START, strict=True)
    )
    return np.array([loss, np.sqrt(moved)])


@functools.cache
def reference_dropout() -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over REFERENCE_SEEDS of the float64 reference's stats."""
    stats = np.array([dropout_stats("numpy", "float64", s) for s in REFERENCE_SEEDS])
    return stats.mean(axis=0), stats.std(axis=0, ddof=1)


def dropout_band(ref_sd: np.ndarray) -> np.ndarray:
    """How far a backend's mean over BACKEND_SEEDS may sit from the reference's mean: BAND_SIGMAS
    standard errors of the difference of two means, with the reference's spread for both."""
    return BAND_SIGMAS * ref_sd * np.sqrt(1 / len(BACKEND_SEEDS) + 1 / len(REFERENCE_SEEDS))


def test_dropout_agrees_statistically(backend_name: str) -> None:
    stats = np.array([dropout_stats(backend_name, "float32", s) for s in BACKEND_SEEDS])
    ref_mean, ref_sd = reference_dropout()
    mean, sd = stats.mean(axis=0), stats.std(axis=0, ddof=1)
    assert np.all(np.abs(mean - ref_mean) <= dropout_band(ref_sd)), (
        f"(loss, ‖Δθ‖) mean {mean} vs reference {ref_mean} ± {dropout_band(ref_sd)}"
    )
    # Masks must really vary with the seed, about as much as the reference's do.
    assert np.all((sd > ref_sd / 5) & (sd < ref_sd * 5)), f"seed spread {sd} vs {ref_sd}"


def test_relu_margins_find_the_ambiguous_decisions() -> None:
    """The margins are what their definition says: float32 SGD over 20 steps meets a ReLU
    decision closer to zero than float32 resolves (the one Keras on PyTorch flipped), its first
    step does not, and Adam's 20 steps (which every backend matches to 3e-3) do not either."""
    first, twenty = relu_margins("sgd", "steps")
    assert twenty < AMBIGUOUS_RELU_MARGIN < first
    assert min(relu_margins("adam", "steps")) > AMBIGUOUS_RELU_MARGIN


def test_dropout_band_is_tight_enough_to_see_dropout() -> None:
    """The band above would reject a backend that ignored dropout or forgot the 1/(1 − rate)."""
    ref_mean, ref_sd = reference_dropout()
    band = dropout_band(ref_sd)
    no_dropout = dropout_stats("numpy", "float64", 0, rate=0.0)
    assert np.all(np.abs(no_dropout - ref_mean) > band), (no_dropout, ref_mean, band)
