"""Your own workloads: scenario files, sweeps, depth, and the scaling section.

Oracles: the catalogue (a file's scenario equals the catalogue scenario with the written changes),
hand-computed names and products, a fit on synthetic step times built from a known fixed cost and
rate, and real ``mlpbench run`` processes on a slice of the real data.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_mlpbench

import scenarios
from bench import registry
from bench.errors import ConfigError
from bench.report.scaling import crossover, fit_cost
from scenarios.files import expand, load, parse_sweeps

PUBLIC_RECIPE = """
[deep_rmsprop]
hidden = [512, 512]
dropout = 0.2
optimizer = "rmsprop"
batch_size = 128
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_public_recipe_is_a_short_table_built_on_the_baseline(tmp_path):
    (deep,) = load(write(tmp_path, PUBLIC_RECIPE))
    expected = replace(
        scenarios.BASELINE,
        name="deep_rmsprop",
        hidden=(512, 512),
        dropout=0.2,
        optimizer="rmsprop",
        batch_size=128,
    )
    for field in (
        "hidden",
        "dropout",
        "optimizer",
        "batch_size",
        "learning_rate",
        "epochs",
        "init",
        "seed",
        "dtype",
        "rho",
        "epsilon",
    ):
        assert getattr(deep, field) == getattr(expected, field), field
    assert deep.base == "baseline" and deep.ladder is None
    assert "hidden: 128 → 512x512" in deep.changes and "batch_size: 32 → 128" in deep.changes
    assert len(PUBLIC_RECIPE.strip().splitlines()) <= 8


def test_base_chains_through_the_file_and_full_batch_is_a_word(tmp_path):
    first, second = load(
        write(
            tmp_path,
            '[wide]\nbase = "rmsprop"\nhidden = [1024]\n\n'
            '[wide_full]\nbase = "wide"\nbatch_size = "full"\nepochs = 3\n',
        )
    )
    assert (first.optimizer, first.hidden, first.epochs) == ("rmsprop", (1024,), 10)
    assert (second.hidden, second.batch_size, second.epochs) == ((1024,), None, 3)
    assert second.base == "wide"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a\nhidden = 1", "not valid TOML"),
        ("", "holds no [scenario] table"),
        ("hidden = [1]", "'hidden' is not a [table]"),
        ("[baseline]\nepochs = 2", "[baseline]: the catalogue has a scenario of that name"),
        ("[x]\nwidth = 3", "[x] width: unknown key; the keys are base, hidden"),
        ('[x]\nepochs = "ten"', "[x] epochs: takes an integer, got 'ten'"),
        ("[x]\nhidden = [128, 0]", "[x] hidden: takes a list of positive widths"),
        ("[x]\nbatch_size = 0", '[x] batch_size: takes a positive integer or "full"'),
        ("[x]\ndropout = 1.5", "[x]: dropout rate must be in [0, 1), got 1.5"),
        ('[x]\noptimizer = "lion"', "[x]: optimizer 'lion' is unknown"),
        ('[x]\nbase = "nope"', "[x] base: 'nope' is neither a catalogue scenario"),
        ('[x]\nbase = "y"\n[y]\nbase = "x"', "is a cycle"),
        ('[x]\nbase = "x"', "is a cycle"),
    ],
)
def test_bad_scenario_files_are_one_line_naming_file_table_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    line = str(err.value)
    assert "\n" not in line and str(path) in line and message in line


def test_bad_input_through_the_cli_is_one_line_exit_2_and_trains_nothing(tmp_path):
    path = write(tmp_path, "[x]\nwidth = 3\n")
    done = run_mlpbench(["run", "-b", "numpy", "-s", str(path), "--out", str(tmp_path / "r.json")])
    assert done.returncode == 2 and not (tmp_path / "r.json").exists()
    assert done.stderr.count("\n") == 1 and "width: unknown key" in done.stderr
    for sweep, words in [
        ("batch_size", "write KEY=V1,V2"),
        ("batch_size=", "write KEY=V1,V2"),
        ("batch_size=32,,64", "write KEY=V1,V2"),
        ("widths=1,2", "no chosen backend has this option"),
        ("keras.steps_per_execution=1,4", "no chosen backend has this option"),
        ("hidden=12x", "takes widths like 512 or 512x512"),
        ("batch_size=0,32", "takes a positive integer"),
    ]:
        done = run_mlpbench(
            ["run", "-b", "numpy", "--sweep", sweep, "--out", str(tmp_path / "r.json")]
        )
        assert done.returncode == 2, (sweep, done.stderr)
        assert done.stderr.count("\n") == 1 and words in done.stderr, (sweep, done.stderr)


def test_a_sweep_expands_into_named_points_carrying_their_values():
    sweeps = parse_sweeps(
        ["batch_size=32,full", "hidden=128,512x512"], {"keras": ["steps_per_execution"]}
    )
    points = expand(scenarios.BASELINE, sweeps)
    assert [p.name for p in points] == [
        "baseline[batch_size=32,hidden=128]",
        "baseline[batch_size=32,hidden=512x512]",
        "baseline[batch_size=full,hidden=128]",
        "baseline[batch_size=full,hidden=512x512]",
    ]
    assert [(p.batch_size, p.hidden) for p in points] == [
        (32, (128,)),
        (32, (512, 512)),
        (None, (128,)),
        (None, (512, 512)),
    ]
    assert points[1].sweep == (("batch_size", "32"), ("hidden", "512x512"))
    assert all(p.origin == "baseline" and p.seed == scenarios.BASELINE.seed for p in points)
    option = expand(
        scenarios.BASELINE,
        parse_sweeps(["keras.steps_per_execution=1,16"], {"keras": ["steps_per_execution"]}),
    )
    assert option[1].sweep_options == {"keras": {"steps_per_execution": "16"}}
    assert option[1].to_dict()["sweep"] == [["keras.steps_per_execution", "16"]]
    assert scenarios.Scenario.from_dict(option[1].to_dict()) == option[1]


def test_the_fit_recovers_a_known_fixed_cost_and_rate():
    fixed, rate = 150e-6, 40e9  # 150 µs a step, 40 GFLOP/s
    flops = np.array([1e5, 4e5, 1.6e6, 6.4e6, 2.56e7, 1e8])
    noise = 1 + 0.01 * np.array([1, -1, 0.5, -0.5, 1, -1])
    found = fit_cost(flops, (fixed + flops / rate) * noise)
    assert found.fixed_s == pytest.approx(fixed, rel=0.03)
    assert found.rate_gflops == pytest.approx(rate / 1e9, rel=0.03)
    assert found.max_residual < 0.03 and found.n_points == 6


def test_the_crossover_is_interpolated_on_log_axes():
    xs = [16, 64, 256, 1024]
    reference = [1.0, 1.0, 1.0, 1.0]
    other = [4.0, 2.0, 0.5, 0.25]  # crosses between 64 and 256: log2 halfway → 128
    assert crossover(xs, reference, other) == pytest.approx(128.0)
    assert crossover(xs, reference, [0.5] * 4) is None


def test_a_sweep_run_writes_the_scaling_section_plot_and_a_fit_per_backend(tmp_path):
    """The issue's own command, on a smaller slice: one JSON, its tables with the scaling
    section, scaling.png, and every point paired with the catalogue cell it came from."""
    out = tmp_path / "s.json"
    done = run_mlpbench(
        [
            "run",
            "-b",
            "numpy",
            "-b",
            "jax",
            "-s",
            "baseline",
            "--sweep",
            "batch_size=32,128,512,2048",
            "--n-train",
            "4096",
            "--epochs",
            "3",
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    entries = doc["benchmarks"]
    assert {e["params"]["sweep"]["batch_size"] for e in entries} == {"32", "128", "512", "2048"}
    assert {e["params"]["seed"] for e in entries} == {scenarios.BASELINE.seed}
    markdown = (tmp_path / "results.md").read_text()
    assert (
        "### How cost grows (sweeps)" in markdown
        and "#### baseline, sweeping batch_size" in markdown
    )
    section = markdown.split("#### baseline, sweeping batch_size")[1].split("\n### ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| numpy") or ln.startswith("| jax")]
    assert len(rows) == 2
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"


def exact_formulas() -> list[str]:
    """``-O`` options running every available backend whose shipped update is not Keras'
    formula with its exact one."""
    return [
        x
        for name in registry.names()
        if registry.unavailable_reason(name) is None
        for key, value in (getattr(registry.backend_class(name), "EXACT_FORMULAS", {})).items()
        for x in ("-O", f"{name}.{key}={value}")
    ]


def test_two_hidden_layers_train_on_every_backend_and_agree(tmp_path):
    """Without dropout (each framework draws its own masks) every backend trains the same
    weights through the same batches with the same update formula (PyTorch's exact-formula
    variant: torch.optim's RMSprop places ε elsewhere): their test accuracies agree to a few
    test images."""
    path = write(tmp_path, PUBLIC_RECIPE)
    out = tmp_path / "d.json"
    done = run_mlpbench(
        [
            "run",
            "-s",
            str(path),
            "--n-train",
            "2048",
            "--n-test",
            "500",
            "--epochs",
            "2",
            "--dropout",
            "0",
            *exact_formulas(),
            "--out",
            str(out),
            "--no-tables",
        ]
    )
    assert done.returncode == 0, done.stderr
    entries = json.loads(out.read_text())["benchmarks"]
    accuracy = {e["params"]["backend"]: e["extra_info"]["test_accuracy"] for e in entries}
    assert "numpy" in accuracy and len(accuracy) >= 2
    for backend, value in accuracy.items():  # the same recipe, weights and batches everywhere
        assert math.isclose(value, accuracy["numpy"], abs_tol=0.006), (backend, accuracy)
    for e in entries:
        assert e["extra_info"]["scenario"]["hidden"] == [512, 512]


def test_the_crossover_says_who_leads_on_which_side():
    """Oracle: a backend with a lower fixed cost and a lower rate than NumPy leads at small
    batches; the two step times cross where the fits meet, 0.8 ms = x·1e6·(1/5e10 − 1/1e11)."""
    from bench.report.scaling import scaling_rows

    rows = []
    for seed in (0, 1, 2):
        for x in (16, 64, 256, 1024, 4096):
            flops = x * 1e6
            for backend, fixed, rate in (("numpy", 1e-3, 1e11), ("jax", 2e-4, 5e10)):
                step = (fixed + flops / rate) * (1 + 0.01 * seed)
                where = {"machine_id": "m", "origin": "baseline", "key": "batch_size"}
                sizes = {"x": float(x), "flops_per_step": flops, "bytes_per_step": 1e6}
                ceilings = {"peak_gflops": 200.0, "bandwidth_gbs": 20.0}
                rows.append({**where, "others": "", "backend": backend, "seed": seed,
                             "step_s": step, **sizes, **ceilings})  # fmt: skip
    found = scaling_rows(pd.DataFrame(rows)).set_index("backend")
    assert found.loc["jax", "crossover"] == pytest.approx(80, rel=0.15)  # 0.8e-3 / 1e-5
    assert found.loc["jax", "crossover_text"].startswith("jax faster below 8")
    assert found.loc["jax", "fixed_us"] == pytest.approx(200, rel=0.05)
    assert found.loc["jax", "rate_gflops"] == pytest.approx(50, rel=0.05)
