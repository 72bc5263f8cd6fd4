"""``mlpbench fidelity -b BACKEND``: the harness's warm epoch against the framework's own idiom.

The shipped division promises each framework as its users run it. This checks the promise in
both directions: per round, the backend's ``baseline`` cell as ``mlpbench run`` trains it (its
own process) and the backend's plain script (``PLAIN_SCRIPT`` on its class: the same recipe
written as the framework's users write it, ``backends.plain``) run one after the other — the
order alternating round by round, so a drift through the run weighs on both sides alike — each
in a fresh process on the same data. Each side's round speed is the median of its warm epochs
(``bench.stats``); harness / plain is paired by round with its t interval on the log scale.

Verdict (``verdict``): "within ±5 %" when the whole interval lies in [1 − BAND, 1 + BAND];
"harness cheaper" / "harness dearer" when the interval excludes 1 and the estimate lies outside
the band; otherwise "not settled" with the interval. Results go to a JSON file (one entry per
backend and harness options, a rerun replacing its entry) that ``bench.report.fidelity``
tabulates.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import registry
from bench.campaign.machine import machine_id
from bench.data import SHIPPED_PATH
from bench.errors import ConfigError
from bench.results.read import warm_median
from bench.results.write import check_writable
from bench.stats import CONFIDENCE, Ratio, paired_ratio, round_median, warm_epochs

#: The harness may differ from its framework's plain script by this fraction either way.
BAND = 0.05
SCENARIO = "baseline"
#: The longest one side of one round may take before it counts as hung.
SIDE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class FidelityRequest:
    """What ``mlpbench fidelity`` was asked for, as values (the CLI builds it from its flags)."""

    backends: tuple[str, ...]
    rounds: int = 4
    epochs: int = 6
    n_train: int | None = None
    n_test: int | None = None
    out: Path = Path("mlpbench-results/fidelity.json")
    #: ``mlpbench run -O`` options for the harness side (e.g. "torch.optimizer=keras-formula"):
    #: to measure what a departure from the idiom costs; recorded in the entry.
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Side:
    """One side of one round: its per-epoch seconds, final test accuracy and settings."""

    seconds: list[float]
    accuracy: float
    settings: dict[str, Any]

    @property
    def median(self) -> float:
        return round_median(warm_epochs(self.seconds))


def plain_script(backend: str) -> tuple[str, ...]:
    """The backend's plain script as ``python -m`` arguments; ConfigError when it ships none."""
    script = getattr(registry.backend_class(backend), "PLAIN_SCRIPT", None)
    if not script:
        raise ConfigError(
            f"backend {backend!r} ships no plain script (PLAIN_SCRIPT on its class); a fidelity "
            "check needs one (see backends/plain)"
        )
    return tuple(script)


def _common_args(request: FidelityRequest) -> list[str]:
    argv = ["--epochs", str(request.epochs)]
    for name in ("n_train", "n_test"):
        value = getattr(request, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def _run(argv: list[str], what: str) -> str:
    """stdout of ``argv``; ConfigError naming ``what`` with the end of its stderr on failure."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SIDE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"fidelity: {what} ran past {SIDE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise ConfigError(f"fidelity: {what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def harness_side(backend: str, request: FidelityRequest, tmp: Path) -> Side:
    """One ``mlpbench run -b BACKEND -s baseline --rounds 1`` (its cell in its own process)."""
    out = tmp / f"{backend}.json"
    argv = [sys.executable, "-m", "bench", "run", "-b", backend, "-s", SCENARIO, "--rounds", "1"]
    argv += [x for option in request.options for x in ("-O", option)]
    _run([*argv, *_common_args(request), "--out", str(out), "--no-tables"], f"{backend} harness")
    (entry,) = json.loads(out.read_text(encoding="utf-8"))["benchmarks"]
    extra = entry["extra_info"]
    if warm_median(entry) is None or not extra.get("complete"):
        raise ConfigError(f"fidelity: {backend}'s harness cell did not finish a warm epoch")
    seconds = [h["seconds"] for h in extra["history"]]
    return Side(seconds, float(extra["test_accuracy"]), extra.get("settings", {}))


def plain_side(backend: str, request: FidelityRequest) -> Side:
    """One run of the backend's plain script on the shipped data."""
    argv = [sys.executable, "-m", *plain_script(backend), "--data", str(SHIPPED_PATH)]
    stdout = _run([*argv, *_common_args(request)], f"{backend}'s plain script")
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    seconds = [float(x["seconds"]) for x in lines if "seconds" in x]
    accuracy = next((float(x["test_accuracy"]) for x in lines if "test_accuracy" in x), math.nan)
    if len(seconds) != request.epochs:
        raise ConfigError(
            f"fidelity: {backend}'s plain script reported {len(seconds)} epochs of "
            f"{request.epochs} (see backends/plain/common.py for its output contract)"
        )
    return Side(seconds, accuracy, {"script": " ".join(plain_script(backend))})


def verdict(r: Ratio, band: float = BAND) -> str:
    """The two-sided reading of harness / plain (module docstring)."""
    if not r.testable or math.isnan(r.low):
        return "not settled (one round)"
    if 1 - band <= r.low and r.high <= 1 + band:
        return f"within ±{100 * band:.0f} %"
    if r.high < 1 and r.value < 1 - band:
        return "harness cheaper than users' code"
    if r.low > 1 and r.value > 1 + band:
        return "harness dearer than users' code"
    return f"not settled (interval reaches outside ±{100 * band:.0f} %)"


def check_backend(backend: str, request: FidelityRequest, tmp: Path) -> dict[str, Any]:
    """Every round of one backend, alternating which side goes first; its JSON entry."""
    rounds: list[dict[str, Any]] = []
    for r in range(request.rounds):
        sides: dict[str, Side] = {}
        for name in ("harness", "plain") if r % 2 == 0 else ("plain", "harness"):
            started = time.perf_counter()
            sides[name] = (
                harness_side(backend, request, tmp)
                if name == "harness"
                else plain_side(backend, request)
            )
            print(
                f"fidelity: {backend} round {r + 1}/{request.rounds} {name}: "
                f"{sides[name].median:.3f} s/epoch warm ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        rounds.append({name: vars(side) | {"median": side.median} for name, side in sides.items()})
    ratio = paired_ratio(
        {i: x["harness"]["median"] for i, x in enumerate(rounds)},
        {i: x["plain"]["median"] for i, x in enumerate(rounds)},
    )
    return {
        "backend": backend,
        "scenario": SCENARIO,
        "epochs": request.epochs,
        "n_train": request.n_train,
        "harness_options": list(request.options),
        "rounds": rounds,
        "ratio": {"value": ratio.value, "low": ratio.low, "high": ratio.high},
        "confidence": CONFIDENCE,
        "band": BAND,
        "verdict": verdict(ratio),
    }


def _key(entry: dict[str, Any]) -> tuple:
    return entry["backend"], tuple(entry.get("harness_options", ()))


def merged(path: Path, entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The file at ``path`` (if any) with ``entries`` replacing those of the same backend and
    harness options."""
    doc: dict[str, Any] = {"backends": []}
    if path.exists():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc["backends"], list):  # a file of another kind fails here
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path} is not a fidelity file; choose another --out") from None
    new = {_key(e) for e in entries}
    doc["backends"] = [e for e in doc["backends"] if _key(e) not in new] + list(entries)
    doc["machine_id"] = machine_id()
    doc["date"] = time.strftime("%Y-%m-%d")
    return doc


def run_fidelity(request: FidelityRequest) -> Path:
    """Check every requested backend; write (merge into) ``request.out``; return its path."""
    for name in request.backends:
        registry.check_name(name)
        plain_script(name)
        reason = registry.unavailable_reason(name)
        if reason is not None:
            raise ConfigError(f"fidelity: backend {name!r} cannot run here: {reason}")
    check_writable(request.out)
    merged(request.out, [])  # a file of another kind at --out fails now, not after the rounds
    entries = []
    with tempfile.TemporaryDirectory(prefix="mlpbench-fidelity-") as tmp:
        for name in request.backends:
            entries.append(check_backend(name, request, Path(tmp)))
    doc = merged(request.out, entries)
    request.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return request.out
