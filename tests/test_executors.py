"""Executors: each cell of ``mlpbench run`` in a fresh process by default (its own pid and peak
memory); a cell whose process dies is recorded as failed in one line and the others finish."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_mlpbench, write_distribution

import scenarios
from bench.campaign.executors import InProcess, Subprocess
from bench.cell.spec import CellSpec
from bench.results.record import Result

ROOT = Path(__file__).resolve().parent.parent
SLICE = ["--n-train", "512", "--n-test", "200"]

CRASHING = '''
import os
from backends.numpy_mlp import NumpyMLP


class AbortingMLP(NumpyMLP):
    """Dies as a native crash does: abort() in the middle of the second epoch."""

    epochs = 0

    def train_epoch(self, order):
        AbortingMLP.epochs += 1
        if AbortingMLP.epochs == 2:
            os.abort()
        return super().train_epoch(order)


class RaisingMLP(NumpyMLP):
    def train_epoch(self, order):
        raise ZeroDivisionError("a bug in the backend\\nsecond line")
'''


@pytest.fixture
def crashing_plugins(tmp_path: Path) -> Path:
    (tmp_path / "crashing_plugin.py").write_text(CRASHING)
    write_distribution(
        tmp_path,
        "crashing-plugin",
        {"aborting": "crashing_plugin:AbortingMLP", "raising": "crashing_plugin:RaisingMLP"},
    )
    return tmp_path


def test_each_cell_runs_in_its_own_process(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["run", "-b", "numpy", "-s", "baseline", "-s", "rmsprop", "--epochs", "1", *SLICE]
    done = run_mlpbench([*args, "--out", str(out), "--no-tables"], tmp_path)
    assert done.returncode == 0, done.stderr
    entries = json.loads(out.read_text())["benchmarks"]
    pids = [e["extra_info"]["pid"] for e in entries]
    assert len(entries) == 2 and len(set(pids)) == 2
    assert os.getpid() not in pids
    assert all(e["extra_info"]["peak_rss_bytes"] > 10 * 2**20 for e in entries)  # > 10 MiB


def test_a_dying_cell_loses_only_itself(crashing_plugins: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["run", "-b", "aborting", "-b", "numpy", "-s", "baseline", "--epochs", "3", *SLICE]
    done = run_mlpbench([*args, "--out", str(out)], crashing_plugins)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    failure = "failed: aborting × baseline: its process was killed by SIGABRT (signal 6)"
    assert [line for line in done.stderr.splitlines() if "failed" in line] == [
        f"mlpbench: {failure}"
    ]
    doc = json.loads(out.read_text())
    [aborted] = [e for e in doc["benchmarks"] if e["params"]["backend"] == "aborting"]
    assert aborted["extra_info"]["failed"].startswith("its process was killed by SIGABRT")
    assert aborted["extra_info"]["complete"] is False
    assert len(aborted["extra_info"]["history"]) == 1  # the epoch before the crash is kept
    [numpy] = [e for e in doc["benchmarks"] if e["params"]["backend"] == "numpy"]
    assert numpy["extra_info"]["complete"] is True and len(numpy["extra_info"]["history"]) == 3
    results_md = (tmp_path / "results.md").read_text()  # the tables are still written
    assert "(failed: 1/3 ep)" in results_md and "### Memory" in results_md
    assert "aborting × baseline on" in results_md and "failed after 1 of 3 epochs" in results_md


def test_an_exception_in_a_backend_is_one_line_per_cell(crashing_plugins: Path) -> None:
    out = crashing_plugins / "r.json"
    args = ["run", "-b", "raising", "-b", "numpy", "-s", "baseline", "--epochs", "1", *SLICE]
    done = run_mlpbench([*args, "--out", str(out), "--no-tables"], crashing_plugins)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "failed: raising × baseline: ZeroDivisionError: a bug in the backend\n" in done.stderr
    doc = json.loads(out.read_text())
    assert [e["params"]["backend"] for e in doc["benchmarks"]] == ["numpy"]
    [failed] = doc["mlpbench"]["skipped"]
    assert failed["failed"] is True and failed["reason"].startswith("ZeroDivisionError")


def test_in_process_executor_gives_the_same_numbers() -> None:
    cell = CellSpec("numpy", scenarios.BASELINE.with_overrides(epochs=2), n_train=512, n_test=200)
    here, there = InProcess().run(cell), Subprocess().run(cell)
    assert isinstance(there, Result) and there.complete and there.pid != os.getpid()
    assert here.pid == os.getpid()
    for a, b in zip(here.history, there.history, strict=True):
        assert (a.train_loss, a.test_loss, a.test_accuracy) == (
            b.train_loss,
            b.test_loss,
            b.test_accuracy,
        )
