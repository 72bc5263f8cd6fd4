"""``mlpbench fidelity``: the harness against each framework's plain script.

The verdict's rules against hand-made ratios (the band's definition is the oracle), the table
against a hand-made file, and one real short check of NumPy end to end: both sides train in
their own processes, the file holds what they measured, the table shows it.
"""

from __future__ import annotations

import json
import math
import statistics

import pytest
from conftest import run_mlpbench

from bench.campaign.fidelity import BAND, merged, verdict
from bench.errors import ConfigError
from bench.report.fidelity import fidelity_markdown
from bench.stats import Ratio


def ratio(value: float, low: float, high: float) -> Ratio:
    return Ratio(value, low, high, 4, 0.01, True)


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (ratio(1.00, 0.97, 1.03), "within ±5 %"),
        (ratio(0.84, 0.80, 0.88), "harness cheaper than users' code"),
        (ratio(1.20, 1.10, 1.31), "harness dearer than users' code"),
        (ratio(0.97, 0.90, 1.05), "not settled (interval reaches outside ±5 %)"),
        # excludes 1 but lies within the band: a real difference smaller than the band
        (ratio(0.97, 0.96, 0.98), "within ±5 %"),
        # excludes 1, estimate outside the band, yet the interval reaches inside it: cheaper
        (ratio(0.93, 0.90, 0.96), "harness cheaper than users' code"),
        (ratio(1.0, math.nan, math.nan), "not settled (one round)"),
    ],
)
def test_the_verdict_is_two_sided(r: Ratio, expected: str) -> None:
    assert BAND == 0.05
    assert verdict(r) == expected


def test_a_rerun_replaces_its_backends_entry_and_a_foreign_file_is_refused(tmp_path) -> None:
    path = tmp_path / "fidelity.json"
    path.write_text(json.dumps({"backends": [{"backend": "numpy", "x": 1}, {"backend": "jax"}]}))
    doc = merged(path, [{"backend": "numpy", "x": 2}])
    assert [e["backend"] for e in doc["backends"]] == ["jax", "numpy"]
    assert doc["backends"][1]["x"] == 2 and doc["machine_id"]
    other = tmp_path / "run.json"
    other.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(ConfigError, match="not a fidelity file"):
        merged(other, [])


def side(median: float, accuracy: float) -> dict:
    return {"seconds": [2 * median, median], "accuracy": accuracy, "median": median,
            "settings": {"script": "backends.plain.torch_plain"}}  # fmt: skip


def test_the_table_shows_both_sides_the_ratio_and_the_verdict() -> None:
    rounds = [
        {"harness": side(h, 0.97), "plain": side(p, 0.96)} for h, p in [(1.1, 1.3), (1.2, 1.4)]
    ]
    entry = {"backend": "torch", "scenario": "baseline", "epochs": 2, "rounds": rounds,
             "ratio": {"value": 0.85, "low": 0.80, "high": 0.90}, "confidence": 0.95,
             "band": 0.05, "verdict": "harness cheaper than users' code"}  # fmt: skip
    text = fidelity_markdown({"machine_id": "m-2cpu", "date": "2026-12-07", "backends": [entry]})
    (row,) = [line for line in text.splitlines() if line.startswith("| torch")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:6] == ["1.15", "1.35", "×0.85 [0.80, 0.90]", "2", "97.00 / 96.00 %"]
    assert cells[6] == "harness cheaper than users' code"
    assert "`m-2cpu`" in text and "python -m backends.plain.torch_plain" in text


def test_numpy_end_to_end(tmp_path) -> None:
    """Two lockstep rounds of three epochs: harness / plain is, per round, the Hodges–Lehmann
    location of its two warm epochs' log ratios (for two values, their mean), the geometric
    mean over rounds — computed here from the recorded seconds."""
    out = tmp_path / "fidelity.json"
    args = ["fidelity", "-b", "numpy", "--rounds", "2", "--epochs", "3"]
    done = run_mlpbench([*args, "--n-train", "2048", "--n-test", "500", "--out", str(out)])
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(out.read_text())["backends"]
    assert entry["backend"] == "numpy" and len(entry["rounds"]) == 2
    assert entry["design"] == "lockstep"
    per_round = []
    for r in entry["rounds"]:
        for name in ("harness", "plain"):
            assert len(r[name]["seconds"]) == 3
            assert 0.7 < r[name]["accuracy"] <= 1.0  # both sides really trained
        h, p = r["harness"]["seconds"][1:], r["plain"]["seconds"][1:]
        per_round.append(statistics.fmean(math.log(a / b) for a, b in zip(h, p, strict=True)))
    assert entry["ratio"]["value"] == pytest.approx(math.exp(statistics.fmean(per_round)))
    assert entry["ratio"]["low"] < entry["ratio"]["value"] < entry["ratio"]["high"]
    assert (tmp_path / "fidelity.md").read_text().count("| numpy") == 1
    assert "in turn, a fresh random order each epoch" in (tmp_path / "fidelity.md").read_text()
    assert "| numpy" in done.stdout


def test_a_plain_script_in_lockstep_waits_for_each_epoch(tmp_path) -> None:
    """``--lockstep``: ready first, then one epoch per ``epoch`` line; ``stop`` ends it."""
    import subprocess
    import sys

    from bench.data import SHIPPED_PATH

    argv = [sys.executable, "-m", "backends.plain.numpy_plain", "--data", str(SHIPPED_PATH),
            "--epochs", "3", "--n-train", "256", "--n-test", "100", "--lockstep"]  # fmt: skip
    done = subprocess.run(argv, input="epoch\nstop\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"ready": True} and [x["epoch"] for x in lines[1:]] == [1]
    done = subprocess.run(argv, input="epoch\n" * 3, capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [x.get("epoch") for x in lines[1:4]] == [1, 2, 3] and "test_accuracy" in lines[4]


def test_bad_requests_are_one_line_errors(tmp_path) -> None:
    done = run_mlpbench(["fidelity", "-b", "nope", "--out", str(tmp_path / "f.json")])
    assert done.returncode == 2 and "unknown backend 'nope'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = run_mlpbench(["fidelity", "-b", "numpy", "--epochs", "1"])
    assert done.returncode == 2 and "--epochs must be 2 or more" in done.stderr
