"""Results as JSON in pytest-benchmark's shape, written atomically.

Document: ``{machine_info, commit_info, benchmarks: [...], datetime, version, mlpbench: {schema,
version, skipped: [...]}}``. Each benchmark entry has ``params.backend``, ``params.scenario``,
``stats`` (pytest-benchmark's own statistics over the warm epoch times in seconds, with ``data``)
and ``extra_info`` (history, settings, cold start, completeness). ``mlpbench run`` and the
pytest-benchmark suite fill ``extra_info`` with the same function, so ``mlpbench table`` reads both.

The schema's version and field types live in ``bench.results.schema``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import bench
from bench.errors import MlpbenchError
from bench.results.record import Result
from bench.results.schema import SCHEMA_VERSION
from bench.stats import timed_sample
from scenarios import N_CLASSES
from scenarios.work import epoch_flops, step_bytes

#: Where ``mlpbench run`` writes its results unless told otherwise.
DEFAULT_OUT = Path("mlpbench-results") / "run.json"


def timed_epochs(result: Result) -> tuple[list[float], str]:
    """The epoch times the stats are over, with their label (``bench.stats.timed_sample``)."""
    return timed_sample(result.epoch_seconds)


def epoch_stats(seconds: list[float]) -> dict[str, Any]:
    """pytest-benchmark's statistics (min, max, mean, stddev, median, iqr, q1, q3, outliers,
    ops, total, rounds) over ``seconds``, plus ``data`` and ``iterations`` as in its JSON."""
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for s in seconds:
        stats.update(s)
    return {**stats.as_dict(), "data": list(seconds), "iterations": 1}


def extra_info(result: Result) -> dict[str, Any]:
    """Everything but the stats: per-epoch history, final accuracy, settings, cold start."""
    _, over = timed_epochs(result)
    return {
        "history": [asdict(r) for r in result.history],
        "test_accuracy": result.test_accuracy,
        "complete": result.complete,
        "epochs_run": len(result.history),
        "cold_seconds": result.cold_seconds,
        "build_seconds": result.build_seconds,
        "stats_over": over,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "epoch_gflop": epoch_flops(
            result.n_train, result.n_features, result.scenario.hidden, N_CLASSES
        )
        / 1e9,
        **_step_facts(result),
        "settings": result.settings,
        "scenario": result.scenario.to_dict(),
        "pid": result.pid,
        "peak_rss_bytes": result.peak_rss_bytes,
        "slurm_job_id": result.slurm_job_id,
        "hostname": result.hostname,
        "failed": result.failed,
        "round": result.round,
        "position": result.position,
        "started": result.started,
        "ended": result.ended,
        "conditions": result.conditions,
        "code": result.code,
        "options": result.options,
        "division": result.division,
        "design": result.design,
    }


def _step_facts(result: Result) -> dict[str, Any]:
    """Training steps per epoch and the estimated memory traffic of one (bytes; see
    ``scenarios.work.step_bytes``), for the scaling section's roofline."""
    if not result.n_train:
        return {}
    batch = min(result.scenario.batch_size or result.n_train, result.n_train)
    itemsize = 8 if result.scenario.dtype == "float64" else 4
    return {
        "steps_per_epoch": -(-result.n_train // batch),
        "step_bytes": step_bytes(
            batch, result.n_features, result.scenario.hidden, N_CLASSES, itemsize
        ),
    }


def benchmark_entry(result: Result, source: str = "mlpbench run") -> dict[str, Any]:
    """One ``benchmarks[]`` entry; the run must have at least one finished epoch."""
    param = f"{result.backend}-{result.scenario.name}-seed{result.scenario.seed}"
    seconds, _ = timed_epochs(result)
    return {
        "group": result.scenario.name,
        "name": f"test_train[{param}]",
        "fullname": f"{source}::test_train[{param}]",
        "params": {
            "backend": result.backend,
            "scenario": result.scenario.name,
            "seed": result.scenario.seed,
            **({"sweep": dict(result.scenario.sweep)} if result.scenario.sweep else {}),
        },
        "param": param,
        "extra_info": extra_info(result),
        "options": {"timer": "perf_counter", "source": source, "warmup": False},
        "stats": epoch_stats(seconds),
    }


def skipped_entry(result: Result) -> dict[str, Any]:
    """A cell without a finished epoch: skipped by its backend, failed, or interrupted."""
    reason = result.skipped or result.failed or "interrupted before its first epoch finished"
    entry = {
        "backend": result.backend,
        "scenario": result.scenario.name,
        "seed": result.scenario.seed,
        "reason": reason,
    }
    return {**entry, "failed": True} if result.failed else entry


def document(
    results: list[Result],
    machine: dict[str, Any],
    commit: dict[str, Any] | None = None,
    kept: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole JSON document for ``results`` (runs with no finished epoch go to skipped),
    after the ``kept`` entries of an earlier run (``--resume``), as they were; ``meta`` goes
    under ``mlpbench`` (the run's order, its precision report)."""
    import pytest_benchmark

    ran = [r for r in results if r.history]
    return {
        "machine_info": machine,
        "commit_info": commit or {},
        "benchmarks": [*(kept or []), *(benchmark_entry(r) for r in ran)],
        "datetime": dt.datetime.now(dt.UTC).isoformat(),
        "version": pytest_benchmark.__version__,
        "mlpbench": {
            "schema": SCHEMA_VERSION,
            "version": bench.__version__,
            "skipped": [skipped_entry(r) for r in results if not r.history],
            **(meta or {}),
        },
    }


def commit_info() -> dict[str, Any]:
    """pytest-benchmark's commit_info for the current directory (git id, dirty flag, branch)."""
    from pytest_benchmark.utils import get_commit_info

    return get_commit_info("mlpbench")


def check_writable(path: str | Path) -> Path:
    """Fail early (before any training) when ``path``'s folder cannot be created or written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".mlpbench-probe-"):
            pass
    except OSError as err:
        raise MlpbenchError(
            f"cannot write results to {path}: {err.strerror or err}; choose another --out"
        ) from None
    return path


def write_json_atomic(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` to ``path`` via a temporary file in the same folder and an atomic rename,
    so an interrupted write never leaves a broken file."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 → what open() would have given
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _json_default(value: Any) -> Any:
    """NumPy scalars and other numbers that json does not know."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
