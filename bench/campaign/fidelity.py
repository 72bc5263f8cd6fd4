"""``mlpbench fidelity -b BACKEND``: the harness's warm epoch against the framework's own idiom.

The shipped division promises each framework as its users run it. This checks the promise in
both directions, in lockstep (the design ``mlpbench run`` uses, ``bench.campaign.lockstep``):
per round, the backend's ``baseline`` cell as the harness trains it (its own worker process)
and the backend's plain script (``PLAIN_SCRIPT`` on its class: the same recipe written as the
framework's users write it, ``backends.plain``, run with ``--lockstep``) are started side by
side, each loads and builds, and then they train their epochs in turn — a fresh random order
for every epoch — so each pair of epochs met the same machine seconds apart. harness / plain is
the one ratio rule (``bench.stats.speed_ratio``: each round's Hodges–Lehmann location of its
per-epoch log ratios, the geometric mean over rounds with its t interval, the round a random
effect; the rounds are fresh processes, so a state that holds a whole process still shows).

Verdict (``verdict``): "within ±5 %" when the whole interval lies in [1 − BAND, 1 + BAND];
"harness cheaper" / "harness dearer" when the interval excludes 1 and the estimate lies outside
the band; otherwise "not settled" with the interval. Results go to a JSON file (one entry per
backend and harness options, a rerun replacing its entry) that ``bench.report.fidelity``
tabulates.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scenarios
from bench import registry
from bench.campaign.command import backend_options
from bench.campaign.lockstep import DESIGN, finish, start_worker, train_epoch
from bench.campaign.machine import machine_id
from bench.cell.spec import CellSpec
from bench.data import SHIPPED_PATH
from bench.errors import ConfigError
from bench.results.record import Result
from bench.results.write import check_writable
from bench.stats import CONFIDENCE, Ratio, round_median, speed_ratio, warm_epochs

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


def harness_cell(backend: str, request: FidelityRequest, round_: int) -> CellSpec:
    """The backend's ``baseline`` cell as ``mlpbench run`` would train it, with ``request``'s
    epochs, data slice and harness options; seed = round. ConfigError for a bad option."""
    scenario = scenarios.get(SCENARIO).with_overrides(epochs=request.epochs, seed=round_)
    options = backend_options([backend], request.options, {})[backend]
    return CellSpec(backend, scenario, options, None, request.n_train, request.n_test, round_)


class Plain:
    """The backend's plain script, started with ``--lockstep``: it loads, builds, says ready and
    trains an epoch per ``epoch`` line, reporting each (``backends/plain/common.py``)."""

    def __init__(self, backend: str, request: FidelityRequest) -> None:
        argv = [sys.executable, "-m", *plain_script(backend), "--data", str(SHIPPED_PATH)]
        self.backend, self.seconds, self.accuracy = backend, [], math.nan
        # a file, not a pipe: a framework's chatter on stderr must never fill a pipe and stall it
        self.stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*argv, *_common_args(request), "--lockstep"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            start_new_session=True,
        )
        self._read_until("ready")

    def _read_until(self, key: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                message = json.loads(line)
                if key in message:
                    return message
        self.proc.wait()
        self.stderr.seek(0)
        tail = (self.stderr.read().strip().splitlines() or ["(no stderr)"])[-1]
        raise ConfigError(
            f"fidelity: {self.backend}'s plain script ended before its {key!r} line "
            f"(exit {self.proc.returncode}): {tail}"
        )

    def train_epoch(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        self.seconds.append(float(self._read_until("epoch")["seconds"]))

    def finish(self) -> None:
        """Its test accuracy, once its epochs are done (the script evaluates and exits)."""
        self.accuracy = float(self._read_until("test_accuracy")["test_accuracy"])
        self.proc.wait(timeout=SIDE_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def lockstep_round(backend: str, request: FidelityRequest, round_: int) -> dict[str, Side]:
    """One round: both sides started, then their epochs in turn, each epoch in a fresh random
    order (drawn from the round and epoch); each side's ``Side``."""
    cell = harness_cell(backend, request, round_)
    worker = start_worker(cell, sys.executable)
    plain: Plain | None = None
    try:
        if worker.read_until(("ready",), None) != "ready":
            raise ConfigError(f"fidelity: {backend}'s harness cell did not start: {_why(worker)}")
        plain = Plain(backend, request)
        for epoch in range(1, request.epochs + 1):
            order = ["harness", "plain"]
            random.Random(f"fidelity:{backend}:{round_}:{epoch}").shuffle(order)
            for side in order:
                if side == "plain":
                    plain.train_epoch()
                else:
                    train_epoch(worker, [worker], None)
                    if not worker.waiting:
                        raise ConfigError(f"fidelity: {backend}'s harness cell: {_why(worker)}")
        plain.finish()
    except BaseException:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()
        raise
    finally:
        if plain is not None:
            plain.stop()
    results: list[Result] = []
    finish([worker], lambda _cell, result: results.append(result), None, interrupted=False)
    (result,) = results
    if not result.complete or not result.history:
        raise ConfigError(f"fidelity: {backend}'s harness cell did not finish: {result.failed}")
    harness = Side(
        [r.seconds for r in result.history],
        float(result.history[-1].test_accuracy),
        dict(result.settings or {}),
    )
    script = {"script": " ".join(plain_script(backend)), "design": DESIGN}
    return {"harness": harness, "plain": Side(plain.seconds, plain.accuracy, script)}


def _why(worker: Any) -> str:
    return str(worker.outcome.get("failed", {}).get("reason", "it stopped"))


NOT_SETTLED_ONE = "not settled (one round)"


def verdict(r: Ratio, band: float = BAND) -> str:
    """The two-sided reading of harness / plain (module docstring)."""
    if not r.testable or math.isnan(r.low):
        return NOT_SETTLED_ONE
    if 1 - band <= r.low and r.high <= 1 + band:
        return f"within ±{100 * band:.0f} %"
    if r.high < 1 and r.value < 1 - band:
        return "harness cheaper than users' code"
    if r.low > 1 and r.value > 1 + band:
        return "harness dearer than users' code"
    return f"not settled (interval reaches outside ±{100 * band:.0f} %)"


def check_backend(backend: str, request: FidelityRequest) -> dict[str, Any]:
    """Every round of one backend in lockstep; its JSON entry."""
    rounds: list[dict[str, Any]] = []
    for r in range(request.rounds):
        started = time.perf_counter()
        sides = lockstep_round(backend, request, r)
        print(
            f"fidelity: {backend} round {r + 1}/{request.rounds}: harness "
            f"{sides['harness'].median:.3f} s/epoch, plain {sides['plain'].median:.3f} s/epoch "
            f"warm ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        rounds.append({name: vars(side) | {"median": side.median} for name, side in sides.items()})
    ratio, levels = speed_ratio(
        {i: warm_epochs(x["harness"]["seconds"]) for i, x in enumerate(rounds)},
        {i: warm_epochs(x["plain"]["seconds"]) for i, x in enumerate(rounds)},
        lockstep=True,
    )
    return {
        "backend": backend,
        "scenario": SCENARIO,
        "epochs": request.epochs,
        "n_train": request.n_train,
        "harness_options": list(request.options),
        "design": DESIGN,
        "rounds": rounds,
        "ratio": {"value": ratio.value, "low": ratio.low, "high": ratio.high},
        "ratio_level": levels.dominant if levels else None,
        "confidence": CONFIDENCE,
        "band": BAND,
        "verdict": verdict(ratio) if levels is None or levels.rounds >= 2 else NOT_SETTLED_ONE,
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
    entries = [check_backend(name, request) for name in request.backends]
    doc = merged(request.out, entries)
    request.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return request.out
