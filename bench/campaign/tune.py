"""``mlpbench tune -b BACKEND -s SCENARIO``: the tuned division, searched on this machine.

The candidates are every combination of the backend's speed-only options (``SPEED_OPTIONS`` on
its class: options that must not change the math, each with the values worth trying), plus the
backend as shipped. They run as one ``mlpbench run --executor lockstep`` in rounds — each round
starts every candidate in its own process and trains their epochs in turn, a fresh random order
per epoch — so the speed-up over shipped pairs epochs seconds apart within each round, the round
a random effect (``bench.stats.speed_ratio``, the one rule; paired round medians for a search
file made otherwise). Picking the fastest of k candidates is k comparisons at once, so
each interval is taken at the Bonferroni confidence (``bench.stats.familywise``: 1 − 0.05/k),
which keeps the chance of crowning a candidate that is not faster below 5 %.

A candidate whose final test accuracy differs from shipped's by more than ``tolerance`` points
(mean over rounds of the paired per-seed differences) is rejected as "changes the math": a speed
option must not. The winner is the fastest candidate whose whole interval lies above 1 (else
shipped stays); its options are written to a profile (``bench.campaign.profile``) that
``mlpbench run --profile`` applies.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import registry
from bench.campaign.lockstep import DESIGN
from bench.campaign.profile import load_profile, write_profile
from bench.errors import ConfigError
from bench.results.read import warm_median
from bench.results.write import check_writable
from bench.stats import (
    CONFIDENCE,
    Ratio,
    familywise,
    paired_difference,
    speed_ratio,
    warm_epochs,
)

#: Accuracy points a speed option may move the final test accuracy (mean over rounds) before it
#: counts as changing the math: a few test images of float rounding, far below what a changed
#: learning rate, optimizer or dropout moves.
TOLERANCE_PT = 0.5


@dataclass(frozen=True)
class Candidate:
    options: dict[str, str]
    seconds: float  # mean over rounds of the median warm epoch
    speedup: float  # shipped / candidate, paired by round
    low: float
    high: float
    accuracy_delta_pt: float
    verdict: str
    confidence: float  # of [low, high]: familywise over the candidates


def candidates(backend: str) -> list[dict[str, str]]:
    """Every combination of the backend's speed options' values; ConfigError without any."""
    speed = getattr(registry.backend_class(backend), "SPEED_OPTIONS", {}) or {}
    if not speed:
        raise ConfigError(f"backend {backend!r} declares no speed options to tune (SPEED_OPTIONS)")
    names = list(speed)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*speed.values())]


@dataclass(frozen=True)
class TuneRequest:
    """What ``mlpbench tune`` was asked for, as values (the CLI builds it from its flags)."""

    backend: str
    scenario: str = "baseline"
    rounds: int = 3  # interleaved rounds of every candidate
    epochs: int | None = None  # None: the scenario's own
    n_train: int | None = None  # the first N training rows only
    n_test: int | None = None  # the first N test rows only
    tolerance: float = TOLERANCE_PT  # accuracy points a candidate may differ from shipped
    out: Path = Path("profile.toml")  # the profile to write (its other backends are kept)
    keep: Path | None = None  # also keep the search's results JSON here


def run_args(request: TuneRequest, out: Path) -> list[str]:
    """The ``mlpbench run`` arguments of the search: one sweep over every speed option."""
    speed = registry.backend_class(request.backend).SPEED_OPTIONS
    sweeps = [f"{request.backend}.{k}={','.join(v)}" for k, v in speed.items()]
    argv = ["run", "-b", request.backend, "-s", request.scenario, "--rounds", str(request.rounds)]
    argv += ["--executor", "lockstep"]  # the candidates take turns epoch by epoch
    argv += [x for s in sweeps for x in ("--sweep", s)]
    for name in ("epochs", "n_train", "n_test"):
        value = getattr(request, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return [*argv, "--out", str(out), "--no-tables"]


def judge(doc: dict, scenario: str, tolerance: float) -> tuple[list[Candidate], dict[str, str]]:
    """Every candidate's speed-up over shipped and verdict, and the winner's options ({} when
    shipped stays). Shipped is the point whose options are all the backend's defaults: the run
    records each cell's options as given, so it is the point the run marked so."""
    by_point: dict[tuple, dict[int, Round]] = {}
    for entry in doc["benchmarks"]:
        extra = entry["extra_info"]
        median = warm_median(entry)
        if not extra.get("complete") or extra.get("failed") or median is None:
            continue
        point = tuple(sorted((entry["params"].get("sweep") or {}).items()))
        warm = warm_epochs([h["seconds"] for h in extra["history"]])
        by_point.setdefault(point, {})[entry["params"]["seed"]] = Round(
            median, extra["test_accuracy"], warm, extra.get("design") == DESIGN
        )
    shipped_point = _shipped_point(doc, by_point)
    if shipped_point is None:
        raise ConfigError(
            "tune: the shipped defaults did not finish a warm epoch; nothing to compare"
        )
    shipped = by_point[shipped_point]
    confidence = familywise(CONFIDENCE, len(by_point) - 1)
    found = []
    for point, rounds in by_point.items():
        ratio = speedup(shipped, rounds, confidence)
        delta = paired_difference(
            {s: 100 * v.accuracy for s, v in shipped.items()},
            {s: 100 * v.accuracy for s, v in rounds.items()},
        ).mean
        if abs(delta) > tolerance:
            verdict = f"rejected: changes the math ({delta:+.2f} pt accuracy)"
        elif point == shipped_point:
            verdict = "shipped"
        elif ratio.testable and ratio.low > 1:
            verdict = "faster"
        elif ratio.testable and ratio.high < 1:
            verdict = "slower"
        else:
            verdict = "no difference shown"
        options = {k.split(".", 1)[1]: v for k, v in point}
        seconds = statistics.fmean(v.median for v in rounds.values())
        found.append(
            Candidate(
                options, seconds, ratio.value, ratio.low, ratio.high, delta, verdict, confidence
            )
        )
    found.sort(key=lambda c: -c.speedup)
    winner = next((c for c in found if c.verdict == "faster"), None)
    return found, ({} if winner is None else winner.options)


@dataclass(frozen=True)
class Round:
    """One candidate's round: its warm median, final accuracy, warm epochs, and whether it
    trained in lockstep with the other candidates."""

    median: float
    accuracy: float
    warm: list[float]
    lockstep: bool


def speedup(shipped: dict[int, Round], candidate: dict[int, Round], confidence: float) -> Ratio:
    """shipped / candidate by the one rule (``stats.speed_ratio``): epoch by epoch within rounds
    where all trained in lockstep, else paired round medians."""
    lockstep = all(r.lockstep for r in (*shipped.values(), *candidate.values()))
    ratio, _ = speed_ratio(
        {s: r.warm for s, r in shipped.items()},
        {s: r.warm for s, r in candidate.items()},
        lockstep,
        confidence,
    )
    return ratio


def _shipped_point(doc: dict, by_point: dict) -> tuple | None:
    """The point whose values are the backend's shipped defaults: the first value of each speed
    option (``SPEED_OPTIONS`` lists the shipped value first)."""
    backend = doc["benchmarks"][0]["params"]["backend"] if doc["benchmarks"] else None
    if backend is None:
        return None
    speed = registry.backend_class(backend).SPEED_OPTIONS
    point = tuple(sorted((f"{backend}.{k}", v[0]) for k, v in speed.items()))
    return point if point in by_point else None


def run_tune(request: TuneRequest) -> int:
    """Search, print the candidates, write the profile; 0 (a winner or not), errors raise."""
    registry.check_name(request.backend)
    if request.out.exists():
        load_profile(request.out)  # a bad profile to update fails now, not after the search
    for path in filter(None, (request.out, request.keep)):
        check_writable(path)
    count = len(candidates(request.backend))
    print(
        f"tune: {request.backend} × {request.scenario}: {count} candidates, {request.rounds} rounds"
    )
    with tempfile.TemporaryDirectory(prefix="mlpbench-tune-") as tmp:
        out = Path(tmp) / "tune.json"
        # the search is an ordinary `mlpbench run` (its own process, its own cells' processes)
        code = subprocess.run([sys.executable, "-m", "bench", *run_args(request, out)]).returncode
        if code not in (0, 1) or not out.exists():
            raise ConfigError(f"tune: the search run failed (exit {code}); see above")
        doc = json.loads(out.read_text(encoding="utf-8"))
        if request.keep:
            request.keep.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
    found, winner = judge(doc, request.scenario, request.tolerance)
    print(
        f"\ntune: {request.backend} × {request.scenario}, speed-up over shipped (paired by round, "
        f"{100 * found[0].confidence:.3g} % intervals: 95 % over all {len(found) - 1} candidates "
        "together)"
    )
    for c in found:
        shown = ", ".join(f"{k}={v}" for k, v in c.options.items())
        interval = "" if math.isnan(c.low) else f" [{c.low:.2f}, {c.high:.2f}]"
        print(
            f"  ×{c.speedup:.2f}{interval}  {c.seconds:.3f} s/epoch  {c.accuracy_delta_pt:+.2f} pt"
            f"  {shown}  — {c.verdict}"
        )
    best = next((c for c in found if c.options == winner), None) if winner else None
    if best is None:
        print(
            "tune: no candidate is faster than shipped beyond its interval; the profile keeps "
            "shipped"
        )
        winner = {}
    machine = doc["machine_info"]["mlpbench"]["machine_id"]
    when = doc.get("datetime", "")[:10]
    note = f"mlpbench tune -b {request.backend} -s {request.scenario} on {machine}, {when}: " + (
        f"×{best.speedup:.2f} [{best.low:.2f}, {best.high:.2f}] over shipped"
        if best
        else "shipped is best"
    )
    path = write_profile(request.out, request.backend, winner, note)
    print(f"tune: wrote {path} ([{request.backend}] {winner or 'shipped defaults'})")
    return 0
