"""Time to accuracy against answers worked out by hand from synthetic histories."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from bench.report.tta import time_to_accuracy


def history(seconds: list[float], accuracies: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": i + 1, "seconds": s, "test_accuracy": a}
        for i, (s, a) in enumerate(zip(seconds, accuracies, strict=True))
    ]


def test_the_first_passing_evaluation_counts_without_interpolation():
    """Epochs of 5 (cold), 1, 2, 1, 3 s; accuracy first ≥ 0.97 after epoch 3 (0.972), and again
    after 5. Training clock: the cold epoch counted as the median warm epoch (median of 1, 2, 1,
    3 = 1.5): 1.5 + 1 + 2 = 4.5 s. With start-up: build 0.25 + 5 + 1 + 2 = 8.25 s. Epoch 2 at
    0.9699 does not pass, however close (no interpolation)."""
    found = time_to_accuracy(
        history([5.0, 1.0, 2.0, 1.0, 3.0], [0.95, 0.9699, 0.972, 0.968, 0.975]), 0.97, 0.25
    )
    assert found.reached and found.epoch == 3
    assert found.training_s == pytest.approx(4.5)
    assert found.with_startup_s == pytest.approx(8.25)
    assert found.best == 0.975 and found.epochs_run == 5
    assert found.text() == "4.5 s (epoch 3)"


def test_reached_at_the_first_evaluation_counts_one_epoch():
    found = time_to_accuracy(history([4.0, 1.0, 1.2], [0.98, 0.985, 0.99]), 0.97)
    assert found.epoch == 1
    assert found.training_s == pytest.approx(1.1)  # the warm median stands in for the cold 4 s
    assert found.with_startup_s == pytest.approx(4.0)  # no build recorded: 0


def test_not_reached_says_so_with_the_best_accuracy():
    """The report's recipe never reaches 97 %: AlgoPerf's infinity, in words."""
    found = time_to_accuracy(history([0.5] * 50, [0.1 + 0.005 * i for i in range(50)]), 0.97)
    assert not found.reached and found.epoch is None
    assert math.isnan(found.training_s) and math.isnan(found.with_startup_s)
    assert found.text() == "not reached in 50 epochs (best 34.50 %)"


def test_the_target_is_inclusive():
    found = time_to_accuracy(history([2.0, 1.0], [0.96, 0.97]), 0.97)
    assert found.epoch == 2


def test_a_real_run_reaches_its_target_at_the_epoch_its_history_shows(tmp_path):
    """A short real run on a slice, tabulated with a target it passes mid-run: the table's epoch
    is the first whose recorded test accuracy reaches the target, read from the JSON by hand;
    time_to_accuracy.csv and results.md carry it, and an unreachable target says so."""
    import csv
    import json

    from conftest import run_mlpbench

    out = tmp_path / "r.json"
    done = run_mlpbench(
        ["run", "-b", "numpy", "-s", "baseline", "--n-train", "2048", "--n-test", "500",
         "--epochs", "4", "--rounds", "2", "--out", str(out), "--no-tables"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    histories = [e["extra_info"]["history"] for e in json.loads(out.read_text())["benchmarks"]]
    accuracy = [[h["test_accuracy"] for h in hist] for hist in histories]
    # a target between epoch 1's accuracy and the best, off the grid of k/500 test accuracies
    target = (max(a[0] for a in accuracy) + min(max(a) for a in accuracy)) / 2 - 0.0005
    expected = [next(i + 1 for i, a in enumerate(acc) if a >= target) for acc in accuracy]
    done = run_mlpbench(
        ["table", str(out), "--out", str(tmp_path / "t"), "--target-accuracy", f"{100 * target}"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [row] = list(csv.DictReader((tmp_path / "t" / "time_to_accuracy.csv").open()))
    assert (row["seeds"], row["reached_seeds"]) == ("2", "2")
    assert float(row["epochs_to_target"]) == pytest.approx(sum(expected) / 2)
    assert "### Time to accuracy" in (tmp_path / "t" / "results.md").read_text()
    done = run_mlpbench(
        ["table", str(out), "--out", str(tmp_path / "u"), "--target-accuracy", "100"]
    )
    [row] = list(csv.DictReader((tmp_path / "u" / "time_to_accuracy.csv").open()))
    assert row["reached_seeds"] == "0" and row["text"].startswith("not reached in 4 epochs (best ")


# --- a cadence finer than the epoch (--eval-every) -----------------------------------------


def test_a_sub_epoch_evaluation_counts_its_share_of_its_epoch():
    """Epochs of 5 (cold), 1, 2, 1 s. Epoch 2 evaluated a quarter and half-way in, after 0.3 s
    and 0.55 s of its 1 s: 0.965 then 0.971 → the target 0.97 is first reached 1.5 epochs in.
    Training clock: the stand-in for the cold epoch (median warm 1 s) + 0.55 = 1.55 s; with
    start-up: build 0.25 + 5 + 0.55 = 5.8 s. The end of epoch 2 (0.972) comes later."""
    epochs = history([5.0, 1.0, 2.0, 1.0], [0.95, 0.972, 0.975, 0.98])
    epochs[1]["evaluations"] = [
        {"samples": 250, "fraction": 0.25, "seconds": 0.3, "test_accuracy": 0.965},
        {"samples": 500, "fraction": 0.5, "seconds": 0.55, "test_accuracy": 0.971},
    ]
    found = time_to_accuracy(epochs, 0.97, 0.25)
    assert found.epoch == pytest.approx(1.5)
    assert found.training_s == pytest.approx(1.55)
    assert found.with_startup_s == pytest.approx(5.8)
    assert found.text() == "1.55 s (epoch 1.5)"


def test_inside_the_cold_epoch_the_share_is_of_samples_times_its_stand_in():
    """Reached a quarter of the samples into the cold epoch, 2 s of its 5 s (its compilation
    sits in the first slice): on the training clock a quarter of the stand-in (median warm
    epoch, 1 s) = 0.25 s, not 2/5 of it; with start-up the 2 s as timed."""
    epochs = history([5.0, 1.0, 1.0], [0.975, 0.98, 0.98])
    epochs[0]["evaluations"] = [
        {"samples": 250, "fraction": 0.25, "seconds": 2.0, "test_accuracy": 0.971}
    ]
    found = time_to_accuracy(epochs, 0.97)
    assert found.epoch == pytest.approx(0.25)
    assert found.training_s == pytest.approx(0.25)
    assert found.with_startup_s == pytest.approx(2.0)


def test_one_cadence_per_scenario_when_a_backend_evaluates_per_epoch_only():
    """The same history read at the epoch cadence (``inside=False``, as when another backend
    of the scenario could not evaluate inside its epochs) passes at the end of epoch 2."""
    epochs = history([5.0, 1.0, 2.0, 1.0], [0.95, 0.972, 0.975, 0.98])
    epochs[1]["evaluations"] = [
        {"samples": 500, "fraction": 0.5, "seconds": 0.55, "test_accuracy": 0.971}
    ]
    assert time_to_accuracy(epochs, 0.97).epoch == pytest.approx(1.5)
    found = time_to_accuracy(epochs, 0.97, inside=False)
    assert found.epoch == 2 and found.training_s == pytest.approx(2.0)


def test_an_epoch_is_sliced_into_whole_batches():
    from bench.cell.session import epoch_slices

    # 1 000 rows, every 100 samples at batch 32 → slices of 128 (4 batches), the last shorter
    slices = epoch_slices(1000, 100, 32)
    assert slices[0] == (0, 128) and slices[-1] == (896, 1000) and len(slices) == 8
    assert all(b[0] == a[1] for a, b in itertools.pairwise(slices))
    assert epoch_slices(1000, 5000, 32) == [(0, 1000)]  # coarser than the epoch: one slice
    assert epoch_slices(1000, 1, 32)[1] == (32, 64)  # never finer than a batch


def test_a_real_run_at_a_sub_epoch_cadence_trains_as_without_it(tmp_path):
    """NumPy on 2 048 rows, evaluated every 512 samples: three evaluations inside each epoch at
    512, 1 024 and 1 536 samples; the epochs' ends are the same numbers as a run without the
    cadence (slicing changes no batch or update); a target first passed inside an epoch is found
    there in the table, as read from the JSON by hand. Keras on TensorFlow cannot slice
    ``model.fit``: its settings say it kept the epoch."""
    import csv
    import json

    from conftest import run_mlpbench

    common = ["run", "-b", "numpy", "-s", "baseline", "--n-train", "2048", "--n-test", "500",
              "--epochs", "3", "--no-tables"]  # fmt: skip
    sliced, whole = tmp_path / "sliced.json", tmp_path / "whole.json"
    done = run_mlpbench([*common, "--eval-every", "512", "--out", str(sliced)])
    assert done.returncode == 0, done.stderr
    done = run_mlpbench([*common, "--out", str(whole)])
    assert done.returncode == 0, done.stderr
    [a] = json.loads(sliced.read_text())["benchmarks"]
    [b] = json.loads(whole.read_text())["benchmarks"]
    settings = a["extra_info"]["settings"]
    assert (settings["eval_every"], settings["eval_every_samples"]) == (512, 512)
    for epoch_a, epoch_b in zip(
        a["extra_info"]["history"], b["extra_info"]["history"], strict=True
    ):
        assert [e["samples"] for e in epoch_a["evaluations"]] == [512, 1024, 1536]
        assert epoch_a["test_accuracy"] == epoch_b["test_accuracy"]
        assert epoch_a["train_loss"] == pytest.approx(epoch_b["train_loss"], rel=1e-6)
    # by hand: every evaluation in order as (epochs trained, accuracy)
    points = [
        (i + p.get("fraction", 1.0), p["test_accuracy"])
        for i, h in enumerate(a["extra_info"]["history"])
        for p in [*h["evaluations"], h]
    ]
    # a target an inside evaluation passes first: just below an inside accuracy that beats
    # every evaluation before it (off the grid of k/500 accuracies)
    at, acc = next(
        (at, acc)
        for k, (at, acc) in enumerate(points)
        if at != int(at) and acc > max((x for _, x in points[:k]), default=0.0) + 0.001
    )
    target = acc - 0.0005
    done = run_mlpbench(
        ["table", str(sliced), "--out", str(tmp_path / "t"), "--target-accuracy", f"{100 * target}"]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [row] = list(csv.DictReader((tmp_path / "t" / "time_to_accuracy.csv").open()))
    assert float(row["epochs_to_target"]) == pytest.approx(at)
    # by hand, the training clock: the epochs before it (the cold one as the median warm epoch)
    # plus the seconds into its own epoch (a share of the stand-in inside the cold epoch)
    seconds = [h["seconds"] for h in a["extra_info"]["history"]]
    stand_in = statistics.median(seconds[1:])
    whole, part = int(at), at - int(at)
    into = next(
        e["seconds"]
        for e in a["extra_info"]["history"][whole]["evaluations"]
        if e["fraction"] == pytest.approx(part)
    )
    clock = [stand_in, *seconds[1:]]
    own = stand_in * part if whole == 0 else into
    assert float(row["training_s"]) == pytest.approx(sum(clock[:whole]) + own, rel=1e-5)
    keras = tmp_path / "keras.json"
    done = run_mlpbench(
        ["run", "-b", "keras", "-s", "baseline", "--n-train", "512", "--n-test", "100",
         "--epochs", "1", "--eval-every", "128", "--no-tables", "--out", str(keras)]
    )  # fmt: skip
    if "not installed" not in done.stdout + done.stderr:
        [k] = json.loads(keras.read_text())["benchmarks"]
        assert k["extra_info"]["settings"]["eval_every"].startswith("epoch (")
        assert k["extra_info"]["history"][0]["evaluations"] == []
