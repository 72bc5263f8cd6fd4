"""The lockstep executor, run for real: two backends of one scenario and round train their epochs
in turn, each in its own waiting process, and the tables pair their epochs."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import pytest
from conftest import run_mlpbench

OTHER = "torch"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(OTHER) is None, reason=f"{OTHER} is not installed (the torch extra)"
)

EPOCHS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("lockstep") / "r.json"
    done = run_mlpbench(
        ["run", "-b", "numpy", "-b", OTHER, "-s", "baseline", "--executor", "lockstep",
         "--rounds", "2", "--epochs", str(EPOCHS), "--n-train", "512", "--n-test", "200",
         "--out", str(out)]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_the_backends_take_turns_epoch_by_epoch(run: tuple[Path, str]) -> None:
    """Within a round, every backend's epoch e ends before any backend's epoch e + 1 (a cell
    trained start to end would show one backend's epochs back to back)."""
    _, stdout = run
    epochs = [
        (m.group(1), int(m.group(2)))
        for m in re.finditer(r"\[(\w+)/baseline\] epoch +(\d+)/", stdout)
    ]
    assert len(epochs) == 2 * 2 * EPOCHS
    for first in (0, 2 * EPOCHS):  # the two rounds, one after the other
        one_round = epochs[first : first + 2 * EPOCHS]
        numbers = [e for _, e in one_round]
        assert numbers == sorted(numbers), one_round
        assert {b for b, _ in one_round} == {"numpy", OTHER}


def test_each_cell_is_complete_and_says_how_it_ran(run: tuple[Path, str]) -> None:
    out, _ = run
    entries = json.loads(out.read_text(encoding="utf-8"))["benchmarks"]
    assert len(entries) == 4
    pids = set()
    for entry in entries:
        extra = entry["extra_info"]
        assert extra["complete"] and not extra["failed"] and extra["epochs_run"] == EPOCHS
        assert extra["design"] == "lockstep"
        assert extra["started"] < extra["ended"]
        seen = extra["conditions"]
        assert {"idle_workers_cpu_s", "foreign_cpu_s", "steal_s", "trained_cpu_s"} <= set(seen)
        assert seen["trained_cpu_s"] > 0
        pids.add(extra["pid"])
    assert len(pids) == 4  # every cell its own process


def test_the_tables_pair_epochs_in_lockstep(run: tuple[Path, str]) -> None:
    out, _ = run
    with (out.parent / "speed.csv").open(encoding="utf-8") as f:
        rows = {r["backend"]: r for r in csv.DictReader(f)}
    assert rows[OTHER]["ratio_pairs"] == "epochs in lockstep"
    assert rows[OTHER]["ratio_level"] in ("epochs", "processes")
    assert float(rows[OTHER]["relative_to_numpy"]) > 0


def lockstep_entry(seed: int, warm: list[float], **conditions: float) -> dict:
    from test_tables import entry

    e = entry("numpy", "baseline", warm, seed=seed)
    e["extra_info"].update({"design": "lockstep", "round": seed, "conditions": conditions})
    return e


@pytest.mark.parametrize(
    ("conditions", "words"),
    [
        ({"foreign_cpu_s": 4.0, "idle_workers_cpu_s": 0.0, "steal_s": 0.0},
         "other processes used 0.31 cores meanwhile"),
        ({"foreign_cpu_s": 0.0, "idle_workers_cpu_s": 2.0, "steal_s": 0.0},
         "the waiting backends' threads used 0.15 cores meanwhile"),
        ({"foreign_cpu_s": 0.1, "idle_workers_cpu_s": 0.1, "steal_s": 0.0},
         "nothing unusual seen in other processes"),
    ],
)  # fmt: skip
def test_an_unstable_cell_names_what_other_processes_did(
    tmp_path: Path, conditions: dict, words: str
) -> None:
    """The warm epochs vary 40 %: the note says what other processes used while they trained
    (measured per epoch by the lockstep executor), not the load the cell itself made."""
    from test_tables import doc, save

    from bench.report.outputs import write_tables

    warm = [2.0, 3.0, 2.0, 3.0]  # with the 3 s cold epoch, 13 s of training per cell: 26 s
    source = save(tmp_path, "r.json", doc(*(lockstep_entry(s, warm, **conditions) for s in (0, 1))))
    report = write_tables([source], tmp_path / "out")
    (line,) = report.unstable
    assert "warm epochs vary" in line and words in line
    assert "load up to" not in line
