"""The command line on a small slice of the real data: JSON shape, progress, bad input, Ctrl-C."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_mlpbench

import bench
from bench.cli import main
from bench.results import write as results

SLICE = ["--n-train", "512", "--n-test", "200"]
ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_names_backends_with_availability_and_scenarios(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    assert re.search(r"^  numpy +cpu +available$", out, re.MULTILINE)
    assert "cupy" in out and "keras" in out
    for name in ("baseline", "neurons_256", "he_init", "rmsprop", "dropout", "report_recipe"):
        assert name in out


def test_run_writes_pytest_benchmark_shaped_json(tmp_path, capsys):
    out_file = tmp_path / "r.json"
    args = ["run", "-b", "numpy", "-s", "baseline", "-s", "report_recipe", "--epochs", "3"]
    code, out, _ = run_cli([*args, *SLICE, "--out", str(out_file), "--no-tables"], capsys)
    assert code == 0
    assert "[numpy/baseline] epoch  3/3" in out  # progress per epoch
    doc = json.loads(out_file.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert doc["machine_info"]["mlpbench"]["blas"]  # BLAS facts recorded
    entries = {e["params"]["scenario"]: e for e in doc["benchmarks"]}
    assert set(entries) == {"baseline", "report_recipe"}
    base = entries["baseline"]
    assert base["params"]["backend"] == "numpy"
    history = base["extra_info"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert base["stats"]["data"] == [h["seconds"] for h in history[1:]]  # warm epochs only
    assert base["stats"]["median"] == pytest.approx(statistics.median(base["stats"]["data"]))
    info = base["extra_info"]
    assert info["complete"] is True and info["test_accuracy"] == history[-1]["test_accuracy"]
    assert info["settings"]["dtype"] == "float32" and info["settings"]["batch_size"] == 32
    assert info["settings"]["seed"] == 0 and info["settings"]["blas_threads"] >= 1
    report = entries["report_recipe"]["extra_info"]["settings"]
    assert report["dtype"] == "float64" and report["batch_size"] == 512  # full batch of the slice


def test_same_seed_same_numbers_across_cli_runs(tmp_path, capsys):
    histories = []
    for name in ("a.json", "b.json"):
        args = ["run", "-b", "numpy", "-s", "dropout", "--epochs", "2", "--seed", "7", *SLICE]
        assert run_cli([*args, "--out", str(tmp_path / name), "--no-tables"], capsys)[0] == 0
        entry = json.loads((tmp_path / name).read_text())["benchmarks"][0]
        histories.append(
            [
                {k: v for k, v in h.items() if "seconds" not in k}
                for h in entry["extra_info"]["history"]
            ]
        )
    assert histories[0] == histories[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-b", "tensorflow"], "unknown backend 'tensorflow'; choose from numpy, cupy, "),
        (["-s", "huge"], "unknown scenario 'huge'; choose from baseline"),
        (["--epochs", "0"], "--epochs: must be a positive integer"),
        (["--epochs", "-3"], "--epochs: must be a positive integer"),
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--learning-rate", "0"], "--learning-rate: must be a finite number > 0"),
        (["--learning-rate", "inf"], "--learning-rate: must be a finite number > 0"),
        (["--dropout", "1.0"], "--dropout: must be in [0, 1)"),
        (["--dropout", "-0.1"], "--dropout: must be in [0, 1)"),
        (["--seed", "-1"], "--seed: must be seeds like 3, 0-4 or 0,2,5-6"),
        (["--seed", "4-2"], "--seed: must be seeds like 3, 0-4 or 0,2,5-6"),
        (["--seed", "x"], "--seed: must be seeds like"),
        (["--steps-per-execution", "0"], "--steps-per-execution: must be a positive integer"),
        (["--data", "/no/such/mnist.npz"], "/no/such/mnist.npz"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        code = main(["run", "-b", "numpy", "--out", str(tmp_path / "r.json"), *args])
        raise SystemExit(code)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_corrupt_data_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    code, _, err = run_cli(
        ["run", "-b", "numpy", "--data", str(bad), "--out", str(tmp_path / "r.json")], capsys
    )
    assert code == 2 and str(bad) in err and err.count("\n") == 1


def test_unwritable_results_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code, out, err = run_cli(["run", "-b", "numpy", "--out", str(blocker / "r.json")], capsys)
    assert code == 2 and "cannot write results" in err and err.count("\n") == 1
    assert "epoch" not in out  # nothing was trained


def test_ctrl_c_mid_run_keeps_finished_epochs_marked_incomplete(tmp_path):
    out_file = tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "run",
        "-b",
        "numpy",
        "-s",
        "baseline",
        "--epochs",
        "500",
        "--n-train",
        "4096",
        "--n-test",
        "200",
        "--out",
        str(out_file),
        "--no-tables",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # As from a terminal: SIGINT at its default even when this test runs under a shell's
    # background job, which starts everything with SIGINT ignored (POSIX), and a process that
    # starts with SIGINT ignored rightly keeps ignoring it.
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    for line in proc.stdout:
        if "epoch  2/500" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    entry = json.loads(out_file.read_text())["benchmarks"][0]
    assert entry["extra_info"]["complete"] is False
    assert 2 <= len(entry["extra_info"]["history"]) < 500


def test_results_are_written_atomically(tmp_path):
    path = tmp_path / "r.json"
    results.write_json_atomic(path, {"old": 1})

    class Explodes:
        def item(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        results.write_json_atomic(path, {"new": Explodes()})
    assert json.loads(path.read_text()) == {"old": 1}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"mlpbench {bench.__version__}"


def test_results_file_gets_the_usual_permissions(tmp_path):
    """Written through a temporary file, yet readable like any file the user writes (umask)."""
    old = os.umask(0o022)
    try:
        path = results.write_json_atomic(tmp_path / "r.json", {"benchmarks": []})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_seed_ranges_give_one_entry_per_seed(tmp_path, capsys):
    out_file = tmp_path / "r.json"
    args = ["run", "-b", "numpy", "-s", "baseline", "--epochs", "2", "--seed", "0-2", *SLICE]
    code, _, _ = run_cli([*args, "--seed", "2,5", "--out", str(out_file), "--no-tables"], capsys)
    assert code == 0
    entries = json.loads(out_file.read_text())["benchmarks"]
    assert [e["params"]["seed"] for e in entries] == [0, 1, 2, 5]
    assert [e["extra_info"]["scenario"]["seed"] for e in entries] == [0, 1, 2, 5]
    losses = [e["extra_info"]["history"][0]["train_loss"] for e in entries]
    assert len(set(losses)) == 4  # different weights and orders


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed"
)
def test_tensorflows_load_time_logs_do_not_flood_the_terminal():
    """TensorFlow prints INFO lines (oneDNN, absl) to stderr while it loads, before any log
    level applies; mlpbench keeps them off the terminal and lets everything else through."""
    done = run_mlpbench(["list"])
    assert done.returncode == 0
    assert "keras" in done.stdout
    assert "absl::InitializeLog" not in done.stderr and "I0000" not in done.stderr


def test_a_slice_larger_than_the_data_is_one_line_before_any_training(tmp_path, capsys):
    out_file = tmp_path / "r.json"
    code, out, err = run_cli(
        ["run", "-b", "numpy", "-s", "baseline", "--n-train", "70000", "--out", str(out_file)],
        capsys,
    )
    assert code == 2 and "baseline" not in out  # no cell started
    assert err.strip() == "mlpbench: error: n_train=70000 is out of range; use 1..60000"
    assert not out_file.exists()
