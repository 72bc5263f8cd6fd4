"""``mlpbench ab -b BACKEND``: did one change make a backend slower? The gate measures both sides
itself, seconds apart (the question ``asv continuous`` asks of two commits).

The two sides are one backend on one scenario under two option sets (``--base-option`` /
``--new-option``, ``[BACKEND.]NAME=VALUE`` as ``mlpbench run -O`` takes them) and/or under two
Python interpreters (``--base-python`` / ``--new-python``: two virtual environments, e.g. two
versions of a framework, each with mlpbench installed). Every round starts each side in its own
fresh process (``bench.campaign.lockstep``): both load and build, then train their epochs in
turn, in a fresh random order per epoch, the other side blocked on its input meanwhile. Round r
trains both sides with seed r, so both see the same weights and batches.

Statistics (``bench.stats.lockstep_ratio``): NEW/BASE of the warm epochs, paired epoch by epoch
within each round; a round's value is the Hodges–Lehmann location of its per-epoch log ratios
(``stats.round_log_ratio``) and the interval is
a t interval over rounds, the round (a pair of processes) the random effect. The verdict is
``bench.stats.gate_verdict`` at ``factor``, as ``mlpbench compare`` decides: *slower* only when
the whole interval lies above ``factor``. ``mlpbench ab --self-test`` measures, on this machine,
how often that verdict is a false alarm when both sides are the same, and how often it catches a
10 % slowdown, at the default size (``bench.campaign.selftest``).

Exit 0 (no change detected, or faster), 1 (slower, or a side failed: the rounds that finished
are still judged and written), 2 for bad input.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench
import scenarios
from bench import registry, stats
from bench.campaign.command import backend_options
from bench.campaign.lockstep import Lockstep
from bench.campaign.machine import machine_id
from bench.cell.spec import CellSpec
from bench.errors import EXIT_FAILED, EXIT_OK, ConfigError
from bench.results.record import Result
from bench.results.write import check_writable

#: The default size, which the self-test measures: 10 rounds (pairs of processes), each 21
#: epochs (20 warm) on the first 8 192 training rows. The steps are the scenario's (same batch
#: size and model; evaluation is untimed), only fewer per epoch: many short epochs give many
#: pairs seconds apart. Chosen by ``mlpbench ab --self-test`` on the development machine (README).
DEFAULT_ROUNDS = 10
DEFAULT_EPOCHS = 21
DEFAULT_N_TRAIN = 8192
BASE, NEW = 0, 1  # a side's position in its round
SIDES = ("base", "new")


@dataclass(frozen=True)
class ABRequest:
    """What ``mlpbench ab`` was asked for, as values (the CLI builds it from its flags)."""

    backend: str
    scenario: str = "baseline"
    base_options: tuple[str, ...] = ()  # '[BACKEND.]NAME=VALUE' texts
    new_options: tuple[str, ...] = ()
    base_python: str | None = None  # None: this interpreter
    new_python: str | None = None
    rounds: int = DEFAULT_ROUNDS
    epochs: int | None = DEFAULT_EPOCHS  # None: the scenario's own
    n_train: int | None = DEFAULT_N_TRAIN  # the first N training rows only; None: all
    n_test: int | None = None
    factor: float = stats.GATE_FACTOR
    alpha: float = stats.GATE_ALPHA
    order_seed: int = 0
    out: Path | None = None  # the measurements and verdict as JSON


@dataclass(frozen=True)
class RoundPair:
    """One round: each side's warm-epoch seconds (in order) and final test accuracy."""

    round: int
    base: list[float]
    new: list[float]
    base_accuracy: float
    new_accuracy: float

    def log_ratio(self) -> float:
        """The round's value, log NEW/BASE (``stats.round_log_ratio``)."""
        return stats.round_log_ratio(self.new, self.base)


def make_cells(request: ABRequest) -> list[CellSpec]:
    """Two cells per round (base at position 0, new at 1), seed = round. ConfigError for an
    unknown backend, scenario or option, or an option set the backend rejects."""
    registry.check_name(request.backend)
    scenario = scenarios.get(request.scenario)
    if request.epochs is not None:
        scenario = scenario.with_overrides(epochs=request.epochs)
    if not stats.has_warm_epochs(scenario.epochs):
        raise ConfigError(
            f"ab compares warm epochs: --epochs must be {stats.COLD_EPOCHS + 1} or more"
        )
    options = [
        backend_options([request.backend], given, {})[request.backend]
        for given in (request.base_options, request.new_options)
    ]
    cells = []
    for r in range(request.rounds):
        recipe = scenario.with_overrides(seed=r)
        for side in (BASE, NEW):
            cell = CellSpec(request.backend, recipe, options[side], None, request.n_train,
                            request.n_test, r, side, SIDES[side])  # fmt: skip
            cells.append(cell)
    return cells


def check_python(python: str | None, side: str, cell: CellSpec) -> None:
    """ConfigError unless ``python`` (None: this interpreter) imports mlpbench and reads this
    version's cells (an older or newer mlpbench there would fail every round). Its worker runs
    from the current folder, as this process does: from a checkout, that checkout's mlpbench is
    the one both sides import; the environments then differ in their frameworks."""
    if python is None:
        return
    reader = (
        "import json, sys; from bench.cell.spec import CellSpec; "
        "CellSpec.from_dict(json.load(sys.stdin))"
    )
    try:
        found = subprocess.run(
            [python, "-c", reader], input=json.dumps(cell.to_dict()), text=True,
            capture_output=True, timeout=120,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConfigError(f"--{side}-python {python}: cannot run it ({error})") from None
    if found.returncode != 0:
        raise ConfigError(
            f"--{side}-python {python} cannot import mlpbench or read this version's cells: "
            "install this mlpbench into that environment (PY -m pip install -e PATH)"
        )


@dataclass(frozen=True)
class Measured:
    """The rounds where both sides finished, and one line per side that did not."""

    pairs: list[RoundPair]
    failures: list[str]


def measure(request: ABRequest, quiet: bool = False) -> Measured:
    """Train both sides in lockstep, round by round, printing each finished round. A side that
    fails is recorded (its round left out) and the rounds stop there; what finished is kept."""
    cells = make_cells(request)
    for python, side, cell in zip(
        (request.base_python, request.new_python), SIDES, cells[:2], strict=True
    ):
        check_python(python, side, cell)
    pythons = (request.base_python or sys.executable, request.new_python or sys.executable)
    executor = Lockstep(request.order_seed, python=lambda cell: pythons[cell.position or 0])
    found: dict[int, dict[int, Result]] = {}
    failures: list[str] = []
    for r in range(request.rounds):
        if failures:
            break

        def done(cell: CellSpec, result: Result) -> None:
            if result.failed or not result.complete or not result.warm_seconds:
                reason = result.failed or result.skipped or "no warm epoch"
                failures.append(f"{SIDES[cell.position or 0]} side, round {cell.round}: {reason}")
                return
            found.setdefault(cell.round or 0, {})[cell.position or 0] = result

        executor.run_many(cells[2 * r : 2 * r + 2], done, None)
        if len(found.get(r, {})) == 2 and not quiet:
            print(_round_line(_pair(r, found[r])), flush=True)
    pairs = [_pair(r, sides) for r, sides in sorted(found.items()) if len(sides) == 2]
    return Measured(pairs, failures)


def _pair(r: int, sides: dict[int, Result]) -> RoundPair:
    base, new = sides[BASE], sides[NEW]
    return RoundPair(
        r, base.warm_seconds, new.warm_seconds, base.test_accuracy or 0.0,
        new.test_accuracy or 0.0,
    )  # fmt: skip


def _round_line(p: RoundPair) -> str:
    return (
        f"  round {p.round}: base {stats.round_median(p.base):.4f} s, new "
        f"{stats.round_median(p.new):.4f} s per warm epoch, new/base ×{math.exp(p.log_ratio()):.3f}"
    )


def judge(
    pairs: Sequence[RoundPair], factor: float, alpha: float, slowdown: float = 1.0
) -> tuple[stats.Ratio, stats.Levels, str]:
    """NEW/BASE (NEW's epochs × ``slowdown``: the self-test's injected change) with its
    interval, the variance levels and the gate's verdict."""
    ratio, levels = stats.lockstep_ratio(
        {p.round: [slowdown * s for s in p.new] for p in pairs},
        {p.round: p.base for p in pairs},
        1 - alpha,
    )
    return ratio, levels, stats.gate_verdict(ratio, factor)


def run_ab(request: ABRequest) -> int:
    """Measure, print the verdict (last line), write ``out``; EXIT_FAILED when slower or when a
    side failed (the rounds that finished are still judged and written)."""
    cells = make_cells(request)
    same_python = (request.base_python or sys.executable) == (request.new_python or sys.executable)
    if cells[BASE].options == cells[NEW].options and same_python:
        raise ConfigError(
            "ab: base and new are the same: give --new-option or --new-python (an A/A is "
            "mlpbench ab --self-test)"
        )
    if request.rounds < 2:
        raise ConfigError("ab: --rounds must be at least 2 (the interval is over rounds)")
    for side in (BASE, NEW):  # in a fresh process each, as mlpbench run checks its options
        found = registry.probe(request.backend, options=cells[side].options)
        if found.option_error or found.reason:
            raise ConfigError(f"ab: {SIDES[side]} side: {found.option_error or found.reason}")
    if request.out is not None:
        check_writable(request.out)
    print(f"ab: {describe(request)}; {request.rounds} rounds, both sides in lockstep")
    measured = measure(request)
    pairs = measured.pairs
    ratio, levels, verdict = judge(pairs, request.factor, request.alpha)
    accuracy = stats.mean_ci(
        [100 * (p.new_accuracy - p.base_accuracy) for p in pairs], 1 - request.alpha
    )
    chance = stats.power(ratio, request.factor, 1 - request.alpha)
    if pairs:
        print(
            f"ab: accuracy new − base {accuracy.mean:+.2f} pt"
            + ("" if math.isnan(accuracy.low) else f" [{accuracy.low:+.2f}, {accuracy.high:+.2f}]")
        )
        print(
            f"ab: spread of the per-round log ratios {100 * ratio.sd_log:.1f} %; variation "
            f"dominated by {levels.dominant}; power for a {_slowdown_text()} slowdown at this "
            f"size {_percent(chance)}"
        )
    if request.out is not None:
        write_json(request, measured, ratio, levels, accuracy, chance, verdict)
        print(f"ab: wrote {request.out}")
    for line in measured.failures:
        print(f"ab: failed: {line}")
    tail = f" ({len(measured.failures)} side(s) failed; judged on {len(pairs)} rounds)"
    print(
        f"ab: {request.backend} × {request.scenario}: new/base {_ratio_text(ratio)} — {verdict}"
        + (tail if measured.failures else "")
    )
    return EXIT_FAILED if verdict == stats.SLOWER or measured.failures else EXIT_OK


def _slowdown_text() -> str:
    return f"{100 * (stats.SLOWDOWN - 1):.0f} %"


def describe(request: ABRequest) -> str:
    """One line naming the two sides."""

    def side(options: tuple[str, ...], python: str | None) -> str:
        parts = [", ".join(options) or "defaults"]
        return " under ".join([*parts, *([python] if python else [])])

    return (
        f"{request.backend} × {request.scenario}: base = "
        f"{side(request.base_options, request.base_python)}, new = "
        f"{side(request.new_options, request.new_python)}"
    )


def _ratio_text(r: stats.Ratio) -> str:
    if math.isnan(r.low):
        return f"×{r.value:.3f}"
    return f"×{r.value:.3f} [{r.low:.3f}, {r.high:.3f}]"


def _percent(value: float) -> str:
    return "unknown" if math.isnan(value) else f"{100 * value:.0f} %"


def write_json(
    request: ABRequest,
    measured: Measured,
    ratio: stats.Ratio,
    levels: stats.Levels,
    accuracy: stats.Estimate,
    chance: float,
    verdict: str,
) -> None:
    """The request, every finished round's epochs, the failures and the verdict, as JSON."""
    doc: dict[str, Any] = {
        "mlpbench": bench.__version__,
        "machine_id": machine_id(),
        "backend": request.backend,
        "scenario": request.scenario,
        "base": {"options": list(request.base_options), "python": request.base_python},
        "new": {"options": list(request.new_options), "python": request.new_python},
        "rounds_asked": request.rounds,
        "epochs": request.epochs,
        "n_train": request.n_train,
        "n_test": request.n_test,
        "order_seed": request.order_seed,
        "factor": request.factor,
        "alpha": request.alpha,
        "rounds": [p.__dict__ for p in measured.pairs],
        "failures": measured.failures,
        "ratio": {"value": ratio.value, "low": ratio.low, "high": ratio.high},
        "levels": {
            "within_sd": levels.within_sd,
            "between_sd": levels.between_sd,
            "dominant": levels.dominant,
        },
        "accuracy_delta_pt": {"mean": accuracy.mean, "low": accuracy.low, "high": accuracy.high},
        "power": chance,
        "verdict": verdict,
    }
    assert request.out is not None
    request.out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
