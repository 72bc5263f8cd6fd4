"""Speed numbers that hold: interleaved rounds, paired ratios with intervals, instability named,
resumable runs, one thread budget, the doctor, and the gate's self-test.

Oracles: counting (every cell once per round), scipy's t on hand-made log ratios, real
``mlpbench run`` processes on a small slice of the real data (what they wrote is read back as
JSON), a real busy process for the doctor.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_mlpbench
from scipy import stats

import scenarios
from bench import registry
from bench.campaign import fingerprint, precision
from bench.campaign.rounds import cell_filter, plan
from bench.doctor import check_load
from bench.report.summary import tf_data_stalls, two_speeds
from bench.stats import Ratio, paired_ratio, relative_half_width, rounds_for_power

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--n-train", "1024", "--n-test", "200", "--epochs", "3"]


def rounds_of(*seeds: int) -> list[list]:
    chosen = [scenarios.get(n) for n in ("baseline", "dropout", "rmsprop")]
    return [[s.with_overrides(seed=seed) for s in chosen] for seed in seeds]


# --- the plan ------------------------------------------------------------------------------------


def test_each_round_runs_every_cell_once_in_an_order_drawn_from_the_order_seed():
    backends = ["numpy", "jax", "torch", "keras"]
    slots = plan(backends, rounds_of(0, 1, 2), "interleaved", order_seed=7)
    for r in range(3):
        cells = [(s.backend, s.scenario.name) for s in slots if s.round == r]
        assert Counter(cells) == Counter(
            (b, n) for n in ("baseline", "dropout", "rmsprop") for b in backends
        )
        assert [s.position for s in slots if s.round == r] == list(range(12))
        assert {s.scenario.seed for s in slots if s.round == r} == {r}  # round r, seed r
    orders = [[(s.backend, s.scenario.name) for s in slots if s.round == r] for r in range(3)]
    assert len({tuple(o) for o in orders}) == 3  # a fresh order each round
    again = plan(backends, rounds_of(0, 1, 2), "interleaved", order_seed=7)
    assert again == slots  # the recorded seed draws the same order
    assert plan(backends, rounds_of(0, 1, 2), "interleaved", order_seed=8) != slots


def test_sequential_keeps_the_catalogue_order():
    slots = plan(["numpy", "jax"], rounds_of(0, 1), "sequential")
    assert [(s.scenario.name, s.scenario.seed, s.backend) for s in slots] == [
        (n, seed, b)
        for n in ("baseline", "dropout", "rmsprop")
        for seed in (0, 1)
        for b in ("numpy", "jax")
    ]


def test_cells_select_pairs_by_name_or_pattern():
    keep = cell_filter(
        ["numpy:gap_*", "keras-torch:baseline", "numpy,jax:baseline"],
        ["numpy", "jax", "keras-torch"],
        ["baseline", "gap_1_init", "gap_2_float32", "dropout"],
    )
    kept = {
        (b, s)
        for b in ("numpy", "jax", "keras-torch")
        for s in ("baseline", "gap_1_init", "gap_2_float32", "dropout")
        if keep(b, s)
    }
    assert kept == {
        ("numpy", "gap_1_init"),
        ("numpy", "gap_2_float32"),
        ("numpy", "baseline"),
        ("jax", "baseline"),
        ("keras-torch", "baseline"),
    }
    with pytest.raises(ValueError, match="'tensorflow' matches no chosen backend"):
        cell_filter(["tensorflow:baseline"], ["numpy"], ["baseline"])
    with pytest.raises(ValueError, match="write BACKENDS:SCENARIOS"):
        cell_filter(["numpy"], ["numpy"], ["baseline"])


# --- ratios with intervals -----------------------------------------------------------------------


def test_the_paired_ratio_is_the_t_interval_of_the_log_ratios():
    reference = {0: 1.00, 1: 1.10, 2: 0.95, 3: 1.02, 4: 1.04}
    other = {0: 0.52, 1: 0.60, 2: 0.50, 3: 0.57, 4: 0.55, 9: 0.1}  # seed 9 has no partner
    logs = np.log([reference[s] / other[s] for s in range(5)])
    half = stats.t.ppf(0.975, 4) * logs.std(ddof=1) / math.sqrt(5)
    found = paired_ratio(reference, other)
    assert found.n == 5
    assert found.value == pytest.approx(math.exp(logs.mean()))
    assert (found.low, found.high) == pytest.approx(
        (math.exp(logs.mean() - half), math.exp(logs.mean() + half))
    )
    assert relative_half_width(found) == pytest.approx((found.high - found.low) / 2 / found.value)
    one = paired_ratio({0: 1.0}, {0: 0.5})
    assert one.value == 2.0 and math.isnan(one.low) and relative_half_width(one) == math.inf


# --- real runs -----------------------------------------------------------------------------------


def run_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_run_in_rounds_records_its_order_and_the_tables_pair_within_rounds(tmp_path):
    out = tmp_path / "r.json"
    done = run_mlpbench(
        [
            "run",
            "-b",
            "numpy",
            "-s",
            "baseline",
            "-s",
            "dropout",
            "--rounds",
            "3",
            "--order-seed",
            "5",
            *SMALL,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr
    doc = run_json(out)
    assert doc["mlpbench"]["order"] == {"mode": "interleaved", "seed": 5, "rounds": 3}
    entries = doc["benchmarks"]
    # listed as a sequential run would list them, whatever order they ran in
    assert [(e["params"]["scenario"], e["params"]["seed"]) for e in entries] == [
        (n, s) for n in ("baseline", "dropout") for s in range(3)
    ]
    expected = plan(
        ["numpy"],
        [
            [scenarios.get(n).with_overrides(epochs=3, seed=s) for n in ("baseline", "dropout")]
            for s in range(3)
        ],
        "interleaved",
        5,
    )
    by_key = {(e["params"]["scenario"], e["params"]["seed"]): e["extra_info"] for e in entries}
    for slot in expected:
        extra = by_key[(slot.scenario.name, slot.scenario.seed)]
        assert (extra["round"], extra["position"]) == (slot.round, slot.position)
        assert extra["started"] < extra["ended"]
        assert extra["code"] == fingerprint.code_fingerprint("numpy")
        assert extra["conditions"]["cores"] >= 1 and "involuntary_switches" in extra["conditions"]
    started = sorted(by_key.values(), key=lambda x: x["started"])
    assert [(x["round"], x["position"]) for x in started] == [
        (s.round, s.position) for s in expected
    ]
    speed = (tmp_path / "speed.csv").read_text().splitlines()
    assert speed[0].endswith(
        "ratio_ci95_low,ratio_ci95_high,within_cv_pct,between_cv_pct,unstable,ratio_pairs,"
        "ratio_level"
    )
    speed_rows = list(csv.DictReader(speed))
    assert {r["ratio_pairs"] for r in speed_rows} == {"epochs in lockstep"}  # the default design
    assert {e["extra_info"]["design"] for e in entries} == {"lockstep"}


def _spell(backend, scenario, seed, started, ended, epochs, design):
    """A benchmark entry with only what ``precision.round_costs`` reads."""
    history = [{"seconds": s} for s in epochs]
    extra = {"started": started, "ended": ended, "history": history, "design": design}
    return {"params": {"backend": backend, "scenario": scenario, "seed": seed}, "extra_info": extra}


def test_a_lockstep_round_is_charged_once_not_once_per_backend():
    """--target-ci's budget: three cells trained in lockstep for 100 s cost 100 s together,
    shared by their epochs' seconds (60, 30, 10 of them); a cell with a process of its own
    costs its span; costs are means over rounds."""
    entries = [
        _spell("numpy", "baseline", 0, 1000.0, 1100.0, [20.0, 20.0, 20.0], "lockstep"),
        _spell("jax", "baseline", 0, 1000.0, 1100.0, [10.0, 10.0, 10.0], "lockstep"),
        _spell("keras", "baseline", 0, 1000.0, 1100.0, [5.0, 5.0], "lockstep"),
        _spell("numpy", "baseline", 1, 2000.0, 2050.0, [10.0, 10.0], "lockstep"),
        _spell("jax", "baseline", 1, 2000.0, 2050.0, [10.0, 10.0], "lockstep"),
        _spell("numpy", "dropout", 0, 3000.0, 3040.0, [13.0, 13.0], None),
        _spell("jax", "dropout", 0, 3050.0, 3070.0, [6.0], None),
    ]
    costs = precision.round_costs(entries)
    assert costs[("numpy", "baseline")] == pytest.approx((60.0 + 25.0) / 2)
    assert costs[("jax", "baseline")] == pytest.approx((30.0 + 25.0) / 2)
    assert costs[("keras", "baseline")] == pytest.approx(10.0)
    assert costs[("numpy", "dropout")] == pytest.approx(40.0)
    assert costs[("jax", "dropout")] == pytest.approx(20.0)


def test_a_sweeps_points_share_their_scenarios_lockstep_round():
    """A sweep's points train in one lockstep group with their scenario (``group_key``): two
    points of one 90 s round, with 60 and 30 s of epochs, cost 60 and 30 s, not 90 each."""
    entries = [
        _spell("numpy", "baseline[batch_size=16]", 0, 10.0, 100.0, [30.0, 30.0], "lockstep"),
        _spell("numpy", "baseline[batch_size=64]", 0, 10.0, 100.0, [15.0, 15.0], "lockstep"),
    ]
    costs = precision.round_costs(entries)
    assert costs[("numpy", "baseline[batch_size=16]")] == pytest.approx(60.0)
    assert costs[("numpy", "baseline[batch_size=64]")] == pytest.approx(30.0)


def test_a_killed_run_resumes_without_losing_or_repeating_a_finished_cell(tmp_path):
    out = tmp_path / "r.json"
    args = [
        "run",
        "-b",
        "numpy",
        "-s",
        "baseline",
        "-s",
        "dropout",
        "-s",
        "rmsprop",
        "--rounds",
        "2",
        *SMALL,
        "--out",
        str(out),
        "--no-tables",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("progress: 2/6 cells"):  # two cells finished: stop the run here
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    finished = {
        (e["params"]["scenario"], e["params"]["seed"])
        for e in run_json(out)["benchmarks"]
        if e["extra_info"]["complete"]
    }
    assert len(finished) >= 2
    resumed = run_mlpbench([*args[:-3], "--resume", str(out), "--no-tables"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: kept {len(finished)} finished cells of {out}" in resumed.stdout
    trained = resumed.stdout.count(" (round ")
    assert trained == 6 - len(finished)  # none trained twice
    doc = run_json(out)
    keys = [(e["params"]["scenario"], e["params"]["seed"]) for e in doc["benchmarks"]]
    assert sorted(keys) == sorted(
        (n, s) for n in ("baseline", "dropout", "rmsprop") for s in (0, 1)
    )
    again = run_mlpbench([*args[:-3], "--resume", str(out), "--no-tables"])
    assert "resume: kept 6 finished cells" in again.stdout and " (round " not in again.stdout


@pytest.mark.parametrize("executor", ["lockstep", "process"])
def test_a_code_change_to_a_backend_reruns_its_cells_and_in_lockstep_their_rounds(
    tmp_path, executor
):
    """A process per cell keeps the unchanged backend's cells; in lockstep, a round whose jax
    cell trains again trains again as a whole, so numpy's epochs stay paired with jax's seconds
    apart, never with epochs trained in another run."""
    out = tmp_path / "r.json"
    args = [
        "run",
        "-b",
        "numpy",
        "-b",
        "jax",
        "-s",
        "baseline",
        "--rounds",
        "2",
        "--executor",
        executor,
        *SMALL,
        "--out",
        str(out),
        "--no-tables",
    ]
    if registry.probe("jax").reason:
        pytest.skip(f"jax: {registry.probe('jax').reason}")
    assert run_mlpbench(args).returncode == 0
    doc = run_json(out)
    for e in doc["benchmarks"]:  # as if jax's code had been different when these ran
        if e["params"]["backend"] == "jax":
            e["extra_info"]["code"] = "0" * 16
    out.write_text(json.dumps(doc))
    resumed = run_mlpbench([*args[:-3], "--resume", str(out), "--no-tables"])
    assert resumed.returncode == 0, resumed.stderr
    assert "2 whose code changed (jax)" in resumed.stdout
    assert resumed.stdout.count("jax × baseline (round") == 2
    if executor == "process":
        assert "kept 2 finished cells" in resumed.stdout
        assert "numpy × baseline (round" not in resumed.stdout
    else:
        assert "kept 0 finished cells" in resumed.stdout
        assert "2 of a lockstep round that trains again" in resumed.stdout
        assert resumed.stdout.count("numpy × baseline (round") == 2
    designs = {e["extra_info"]["design"] for e in run_json(out)["benchmarks"]}
    assert designs == {"lockstep" if executor == "lockstep" else None}


def test_the_fingerprint_follows_a_backends_own_source(tmp_path, install_backends):
    module = tmp_path / "fp_backend.py"
    module.write_text(
        "from backends.numpy_mlp import NumpyMLP\n\nclass Mine(NumpyMLP):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        install_backends({"mine": "fp_backend:Mine"})
        before = {n: fingerprint.code_fingerprint(n) for n in ("mine", "numpy")}
        module.write_text(module.read_text() + "\nX = 1\n")
        fingerprint.code_fingerprint.cache_clear()
        fingerprint._source.cache_clear()
        after = {n: fingerprint.code_fingerprint(n) for n in ("mine", "numpy")}
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fp_backend", None)
        fingerprint.code_fingerprint.cache_clear()
    assert before["mine"] != after["mine"] and before["numpy"] == after["numpy"]


def test_a_reporting_rule_leaves_every_fingerprint_alone(monkeypatch, tmp_path):
    """bench.stats decides how results are read, not what a cell measures: editing it must not
    send ``--resume`` back to train every cell."""
    import bench.stats

    edited = tmp_path / "stats.py"
    edited.write_text(Path(bench.stats.__file__).read_text() + "\nX = 1\n")
    before = fingerprint.code_fingerprint("numpy")
    original = fingerprint._source.__wrapped__
    monkeypatch.setattr(
        fingerprint, "_source", lambda name: edited if name == "bench.stats" else original(name)
    )
    fingerprint.code_fingerprint.cache_clear()
    try:
        after = fingerprint.code_fingerprint("numpy")
        assert "bench.stats" in fingerprint._imports(
            Path(fingerprint._source("bench.results.record")), "bench.results"
        )  # the harness does import it
    finally:
        fingerprint.code_fingerprint.cache_clear()
    assert after == before


def test_threads_give_every_framework_one_budget_recorded_in_settings(tmp_path):
    out = tmp_path / "r.json"
    backends = [n for n in ("numpy", "torch", "keras") if not registry.probe(n).reason]
    args = [
        "run",
        *(x for b in backends for x in ("-b", b)),
        "-s",
        "baseline",
        *SMALL,
        "--threads",
        "1",
        "--out",
        str(out),
        "--no-tables",
    ]
    done = run_mlpbench(args)
    assert done.returncode == 0, done.stderr
    settings = {
        e["params"]["backend"]: e["extra_info"]["settings"] for e in run_json(out)["benchmarks"]
    }
    assert all(s["threads_budget"] == 1 for s in settings.values())
    assert settings["numpy"]["blas_threads"] == 1
    if "torch" in settings:
        assert (settings["torch"]["threads"], settings["torch"]["interop_threads"]) == (1, 1)
    if "keras" in settings:
        assert settings["keras"]["intra_op_threads"] == settings["keras"]["inter_op_threads"] == 1
    inprocess = run_mlpbench(["run", "-b", "numpy", "--threads", "1", "--executor", "inprocess"])
    assert inprocess.returncode == 2
    assert "--threads needs a process per cell" in inprocess.stderr


def test_an_unstable_cell_is_marked_with_what_was_seen(tmp_path):
    """Hand-made rounds: numpy steady, jax's warm epochs varying 25 % under load 3 on 2 cores."""
    from bench.results.write import epoch_stats

    def entry(backend, seed, warm, load):
        return {
            "params": {"backend": backend, "scenario": "baseline", "seed": seed},
            "stats": epoch_stats(warm),
            "extra_info": {
                "history": [
                    {
                        "epoch": i + 1,
                        "seconds": s,
                        "test_accuracy": 0.9,
                        "train_loss": 0.3,
                        "train_accuracy": 0.9,
                        "test_loss": 0.3,
                    }
                    for i, s in enumerate([2.0, *warm])
                ],
                "complete": True,
                "n_train": 60000,
                "n_test": 10000,
                "stats_over": "warm epochs 2..5",
                "settings": {"device": "cpu", "batch_size": 32},
                "conditions": {"cores": 2, "load_1m_max": load, "threads": 3},
            },
        }

    benchmarks = [entry("numpy", s, [1.0, 1.01, 0.99, 1.0], 1.0) for s in range(3)]
    benchmarks += [entry("jax", s, [0.5, 0.7, 0.45, 0.62], 3.1) for s in range(3)]
    doc = {
        "machine_info": {"mlpbench": {"machine_id": "m"}},
        "benchmarks": benchmarks,
        "datetime": "2026-01-01T00:00:00+00:00",
        "mlpbench": {"schema": 1},
    }
    path = tmp_path / "u.json"
    path.write_text(json.dumps(doc))
    done = run_mlpbench(["table", str(path), "--out", str(tmp_path / "t")])
    assert done.returncode == 0, done.stderr
    markdown = (tmp_path / "t" / "results.md").read_text()
    assert "### Unstable speeds (⚠)" in markdown
    [line] = [ln for ln in markdown.splitlines() if ln.startswith("- m: ")]
    assert line.startswith("- m: jax × baseline: warm epochs vary")
    assert "load up to 3.1 on 2 cores" in line
    assert "mlpbench: 1 unstable speed (⚠): why, per cell, under" in done.stdout
    assert "numpy × baseline" not in line


def test_two_speeds_are_named_with_their_counts():
    """Oracle: rounds at two speeds twice apart are two groups with their counts; a steady
    spread (no step larger than the groups' own) is not."""
    found = two_speeds([0.65, 1.35, 0.64, 1.33, 0.66])
    assert found == "two speeds: 2 of 5 processes at 1.34 s, the others at 0.65 s"
    assert two_speeds([0.60, 0.70, 0.80, 0.90, 1.0]) is None
    assert two_speeds([0.65, 1.35]) is None  # two rounds cannot show two groups
    epochs = two_speeds([0.70, 1.40, 0.69, 1.44, 0.72, 0.71], "warm epochs")
    assert epochs == "two speeds: 2 of 6 warm epochs at 1.42 s, the others at 0.705 s"


def test_tf_data_autotuning_waits_are_counted_on_tf_data_cells_only():
    """Oracle: 10 ms × (2^k − 1) for k = 9, 10 is 5.11 s and 10.23 s."""
    feed = {"input_feed": "tf.data pipeline built once, order from the harness"}
    ran = pd.DataFrame(
        {
            "settings": [feed, feed, {"input_feed": "numpy arrays"}],
            "warm_seconds": [[3.0, 5.117, 3.1, 3.0], [3.2, 10.232, 3.1, 3.1], [3.0, 5.11, 3, 3]],
        }
    )
    found = tf_data_stalls(ran)
    assert found is not None and found.startswith("2 of 8 warm epochs lasted one of tf.data's")
    assert tf_data_stalls(ran.iloc[[2]]) is None
    slow_anyway = ran.iloc[[0]].assign(warm_seconds=[[5.0, 5.117, 5.2, 5.1]])
    assert tf_data_stalls(slow_anyway) is None  # not an outlier of its own cell


@pytest.mark.parametrize("sd", [0.02, 0.062, 0.15])
def test_the_rounds_the_gate_needs_follow_the_normal_approximation(sd):
    """Oracle: n ≈ ((z₀.₉₇₅ + z₀.₈₀)·sd / ln(1.10/1.05))², which the t distribution's heavier
    tails raise by a few rounds at small n."""
    approx = ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.log(1.10 / 1.05)) ** 2
    needed = rounds_for_power(Ratio(1.0, 0.9, 1.1, 5, sd, True), factor=1.05, confidence=0.95)
    assert max(2, math.ceil(approx)) <= needed <= math.ceil(approx) + 4


def test_the_doctor_names_a_busy_process(tmp_path):
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        check = check_load()
    finally:
        busy.kill()
        busy.wait()
    assert not check.ok
    assert f"pid {busy.pid}" in check.text and "stop other work" in check.text
    done = run_mlpbench(["doctor"])
    assert done.returncode in (0, 1)
    lines = done.stdout.strip().splitlines()
    assert all(ln.startswith(("ok", "warn")) for ln in lines[:-1])
    assert lines[-1] in ("ready",) or lines[-1].endswith(("warning", "warnings"))


def test_the_publication_resumes_and_an_unchanged_rerun_only_checks(tmp_path):
    """scripts/publish-results.sh on a slice with NumPy alone (its run steps: tune and scaling
    train full-size data, and have tests of their own): the published folder appears only when
    it finished; a second run trains nothing (every cell is kept)."""
    import os

    published = tmp_path / "results"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "RESULTS": str(published),
        "ROUNDS": "2",
        "TARGET_CI": "",
        "BUDGET": "5",
        "STEPS": "main own tables",
        "EXTRA": "-b numpy --n-train 512 --n-test 100 --epochs 2",
    }

    def publish() -> subprocess.CompletedProcess:
        script = ["bash", "scripts/publish-results.sh"]
        return subprocess.run(
            script, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )

    first = publish()
    assert first.returncode == 0, first.stderr[-2000:]
    assert {"run.json", "seed_own.json", "results.md", "speed.csv"} <= {
        p.name for p in published.iterdir()
    }
    assert not (published / ".staging").exists()
    assert ".staging" not in (published / "speed.csv").read_text()  # the sources, as published
    run = run_json(published / "run.json")
    assert len(run["benchmarks"]) == 2 * 12  # 7 scenarios + 5 gap rungs, 2 rounds
    assert str(published / "run.json") in (published / "results.md").read_text()
    second = publish()
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resume: kept 24 finished cells of {published}/.staging/run.json" in second.stdout
    assert " (round " not in second.stdout
