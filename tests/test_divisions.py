"""Two divisions: every backend as it ships, and tuned on this machine by ``mlpbench tune``.

Oracles: the frameworks' own resolution (Keras' "auto" resolved by Keras), a plug-in backend
whose "speed" option secretly changes the learning rate (tune must reject it), real
``mlpbench`` processes and the JSON they write.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_mlpbench, run_module, write_distribution
from scipy import stats

from bench import registry

MATHY = '''
from backends.numpy_mlp import NumpyMLP
from dataclasses import replace


class Mathy(NumpyMLP):
    """NumPy with a 'speed' option that is not one: lr_scale multiplies the learning rate."""

    OPTIONS = {**NumpyMLP.OPTIONS, "lr_scale": "1 or 30 (pretends to be about speed)"}
    SPEED_OPTIONS = {"lr_scale": ("1", "30")}

    def __init__(self, options=None):
        from backends.api import RunOptions

        options = options or RunOptions()
        self.scale = float(options.backend.get("lr_scale", "1"))
        rest = {k: v for k, v in options.backend.items() if k != "lr_scale"}
        super().__init__(replace(options, backend=rest))

    def build(self, recipe, data, init_weights):
        super().build(replace(recipe, learning_rate=recipe.learning_rate * self.scale), data,
                      init_weights)

    def settings(self):
        return {**super().settings(), "lr_scale": self.scale}
'''


def test_tune_rejects_a_speed_option_that_changes_the_math(tmp_path):
    (tmp_path / "mathy_pkg.py").write_text(MATHY)
    write_distribution(tmp_path, "mathy-dist", {"mathy": "mathy_pkg:Mathy"})
    profile = tmp_path / "profile.toml"
    done = run_module(
        "bench",
        [
            "tune",
            "-b",
            "mathy",
            "-s",
            "baseline",
            "--rounds",
            "2",
            "--n-train",
            "2048",
            "--n-test",
            "500",
            "--epochs",
            "2",
            "--out",
            str(profile),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("  ×") and "lr_scale=30" in ln]
    assert "rejected: changes the math" in line
    assert 'lr_scale = "30"' not in profile.read_text()


def test_a_bad_profile_is_one_line_exit_2(tmp_path):
    for text, words in [
        ('[tensorflow]\njit_compile = "true"\n', "[tensorflow] is not an installed backend"),
        ('[numpy]\nturbo = "on"\n', "[numpy] turbo: numpy has no such option"),
        ("[numpy\n", "not valid TOML"),
    ]:
        path = tmp_path / "p.toml"
        path.write_text(text)
        done = run_mlpbench(
            ["run", "-b", "numpy", "--profile", str(path), "--out", str(tmp_path / "r.json")]
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
        assert not (tmp_path / "r.json").exists()


def test_a_profile_runs_as_the_tuned_division_beside_shipped(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('# by hand\n[numpy]\nsmall_batch_threads = "1"\n')
    shipped, tuned = tmp_path / "shipped.json", tmp_path / "tuned.json"
    common = [
        "-b",
        "numpy",
        "-s",
        "baseline",
        "--rounds",
        "2",
        "--n-train",
        "1024",
        "--n-test",
        "200",
        "--epochs",
        "2",
        "--no-tables",
    ]
    assert run_mlpbench(["run", *common, "--out", str(shipped)]).returncode == 0
    done = run_mlpbench(["run", *common, "--profile", str(profile), "--out", str(tuned)])
    assert done.returncode == 0, done.stderr
    for path, division, threads in ((shipped, "shipped", "default"), (tuned, "tuned", "1")):
        for entry in json.loads(path.read_text())["benchmarks"]:
            assert entry["extra_info"]["division"] == division
            assert entry["extra_info"]["settings"]["small_batch_threads"] == threads
    table = run_mlpbench(["table", str(shipped), str(tuned), "--out", str(tmp_path / "t")])
    assert table.returncode == 0, table.stderr
    speed = (tmp_path / "t" / "speed.csv").read_text()
    assert ",numpy," in speed and ",numpy (tuned)," in speed


def test_every_backend_declares_speed_options_with_the_shipped_value_first():
    """The shipped division is each backend's defaults; tune starts from it."""
    from backends.api import RunOptions

    for name in registry.names():
        if registry.probe(name).reason:
            continue
        cls = registry.backend_class(name)
        speed = getattr(cls, "SPEED_OPTIONS", {})
        assert speed, name
        assert set(speed) <= set(cls.OPTIONS), name
        shipped = {k: v[0] for k, v in speed.items()}
        if name.startswith("keras"):  # building one here would fix Keras' backend: read the class
            assert shipped["jit_compile"] == cls.DEFAULT_JIT_COMPILE == "auto", name
            assert shipped.get("steps_per_execution", "1") == "1", name  # Keras' own default
            continue
        default = cls(RunOptions()).__dict__
        tuned = cls(RunOptions(backend=shipped)).__dict__
        same = {k for k in default if k != "options" and default[k] == tuned.get(k)}
        assert same >= {k for k in default if k != "options"} - {"options"}, (name, default, tuned)


def tune_doc(speedups: dict[tuple[str, str], list[float]]) -> dict:
    """A tune search's results: per point (flush_denormals, small_batch_threads) and round, warm
    epochs at 1 s / the round's speed-up, identical accuracies."""
    from bench.results.write import epoch_stats

    entries = []
    for (flush, threads), per_round in speedups.items():
        for seed, speedup in enumerate(per_round):
            warm = [1.0 / speedup] * 4
            history = [{"epoch": i + 1, "seconds": s, "train_loss": 0.1, "train_accuracy": 0.9,
                        "test_loss": 0.1, "test_accuracy": 0.97}
                       for i, s in enumerate([2.0, *warm])]  # fmt: skip
            sweep = {"numpy.flush_denormals": flush, "numpy.small_batch_threads": threads}
            entries.append({
                "params": {"backend": "numpy", "scenario": "baseline", "seed": seed,
                           "sweep": sweep},
                "stats": epoch_stats(warm),
                "extra_info": {"history": history, "complete": True, "failed": None,
                               "test_accuracy": 0.97, "stats_over": "warm epochs 2..5"},
            })  # fmt: skip
    return {"benchmarks": entries}


def test_tune_corrects_for_picking_among_its_candidates():
    """A candidate 6 % faster with round-to-round spread 2 %: its 95 % interval alone would
    exclude 1 (t(0.975, 2) = 4.30), but picking the best of three candidates needs each interval
    at 1 − 0.05/3 (t(0.99167, 2) ≈ 7.6), which does not: no winner is crowned."""
    from bench.campaign.tune import judge

    logs = [0.06, 0.04, 0.08]
    doc = tune_doc({
        ("false", "default"): [1.0, 1.0, 1.0],
        ("true", "1"): [math.exp(v) for v in logs],
        ("true", "default"): [1.0, 1.0, 1.0],
        ("false", "1"): [1.0, 1.0, 1.0],
    })  # fmt: skip
    found, winner = judge(doc, "baseline", tolerance=0.5)
    candidate = next(c for c in found if c.options == {"flush_denormals": "true",
                                                      "small_batch_threads": "1"})  # fmt: skip
    assert candidate.confidence == pytest.approx(1 - 0.05 / 3)
    assert candidate.low < 1 < candidate.high and winner == {}
    sd = float(np.std(logs, ddof=1))
    assert math.log(candidate.high) - math.log(candidate.speedup) == pytest.approx(
        stats.t.ppf(1 - 0.05 / 6, 2) * sd / math.sqrt(3)
    )


def test_the_tolerance_default_is_tunes_own(monkeypatch):
    from bench import cli

    monkeypatch.setattr(cli, "TOLERANCE_PT", 0.7)
    parsed = cli.build_parser().parse_args(["tune", "-b", "numpy"])
    assert parsed.tolerance == 0.7
