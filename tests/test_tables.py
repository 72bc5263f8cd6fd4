"""bench.result_files, .caveats, .tables, .plots: result JSON → tables, caveats, CSV and PNG;
problems; exit codes.

Real documents come from training NumPy for 2 epochs on 600/200 rows (module fixture). Exact
numbers come from hand-written documents whose epoch times and settings are chosen here; expected
values are computed independently (statistics.median, n_train / median, ratios of medians).
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import scenarios
from bench import cli
from bench.campaign.machine import machine_info
from bench.cell import session as runner
from bench.data import load_dataset
from bench.report.caveats import AGREEMENT, FIT_OVERHEAD
from bench.report.outputs import results_markdown, write_tables
from bench.report.plots import MISSING
from bench.report.tables import headline_markdown
from bench.results.read import collect
from bench.results.write import document, epoch_stats, write_json_atomic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OUTPUTS = {
    "results.md",
    "accuracy.csv",
    "speed.csv",
    "cold_start.csv",
    "memory.csv",
    "runs.csv",
    "time_to_accuracy.csv",
    "accuracy_vs_time.png",
    "speed.png",
    "index.html",
}
CSVS = {
    "accuracy.csv", "speed.csv", "cold_start.csv", "memory.csv", "runs.csv", "time_to_accuracy.csv"
}  # fmt: skip
SETTINGS = {
    "device": "cpu",
    "batch_size": 32,
    "seed": 0,
    "dtype": "float32",
    "blas": "openblas 0.3.28",
    "blas_threads": 4,
    "numpy": "2.1.0",
}


# --- documents -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """numpy × baseline and numpy × dropout, 2 epochs on 600 train / 200 test rows."""
    data = load_dataset().subset(600, 200)
    results = [
        runner.run("numpy", scenarios.get(n).with_overrides(epochs=2), data)
        for n in ("baseline", "dropout")
    ]
    doc = document(results, machine_info(), {})
    return write_json_atomic(tmp_path_factory.mktemp("real") / "run.json", doc), doc


def entry(
    backend: str,
    scenario: str,
    warm: list[float],
    *,
    cold: float = 3.0,
    accuracies: list[float] | None = None,
    n_train: int = 60_000,
    complete: bool = True,
    epoch_gflop: float | None = None,
    seed: int | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A benchmarks[] entry: epoch 1 takes ``cold`` s, epochs 2.. take ``warm`` s."""
    seconds = [cold, *warm]
    accuracies = accuracies or [0.90 + 0.01 * i for i in range(len(seconds))]
    history = [
        {
            "epoch": i + 1,
            "seconds": s,
            "train_loss": 0.3,
            "train_accuracy": a,
            "test_loss": 0.3,
            "test_accuracy": a,
        }
        for i, (s, a) in enumerate(zip(seconds, accuracies, strict=True))
    ]
    return {
        "name": f"tests/test_benchmarks.py::test_train[{backend}-{scenario}]",
        "params": {
            "backend": backend,
            "scenario": scenario,
            **({} if seed is None else {"seed": seed}),
        },
        "stats": epoch_stats(warm or [cold]),
        "extra_info": {
            "history": history,
            "test_accuracy": accuracies[-1],
            "complete": complete,
            "epochs_run": len(history),
            "cold_seconds": cold,
            "build_seconds": 0.5,
            "stats_over": f"warm epochs 2..{len(history)}" if warm else "epoch 1 only (cold)",
            "n_train": n_train,
            "n_test": 10_000,
            **({"epoch_gflop": epoch_gflop} if epoch_gflop else {}),
            "settings": {
                k: v
                for k, v in {**SETTINGS, "epochs": len(history), **settings}.items()
                if v is not None
            },  # None: the backend does not record that setting
        },
    }


def doc(
    *entries: dict[str, Any],
    machine: str = "m1",
    when: str = "2026-01-01T00:00:00+00:00",
    skipped: tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    facts = {
        "machine_id": machine,
        "cpu_model": "Test CPU",
        "logical_cpus": 4,
        "blas": [
            {
                "internal_api": "openblas",
                "version": "0.3.28",
                "num_threads": 4,
                "architecture": "Haswell",
            }
        ],
        "packages": {"numpy": "2.1.0"},
        "env": {"OPENBLAS_CORETYPE": "Haswell"},
        "gpus": [],
        "gemm_peak_gflops": {"float32": 100.0, "float64": 40.0},
    }
    return {
        "machine_info": {"node": "box", "python_version": "3.11.7", "mlpbench": facts},
        "commit_info": {},
        "benchmarks": list(entries),
        "datetime": when,
        "version": "5.1.0",
        "mlpbench": {"schema": 1, "skipped": list(skipped)},
    }


def save(tmp_path: Path, name: str, content: dict[str, Any] | str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def table_rows(markdown: str, heading: str, section: int = 0) -> dict[str, dict[str, str]]:
    """{row name: {column: cell}} of the markdown table under the ``section``-th ``heading``;
    for "### Speed" or "### Accuracy", the per-scenario tables of the ``section``-th machine,
    flattened to {scenario: {"<backend> <column>": cell}}."""
    if heading in ("### Speed", "### Accuracy"):
        return scenario_cells(markdown, section)
    text = markdown.split(f"\n{heading}\n")[section + 1]
    return _table(next(block for block in text.split("\n\n") if block.startswith("|")))


def _table(block: str) -> dict[str, dict[str, str]]:
    lines = block.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def scenario_cells(markdown: str, machine: int = 0) -> dict[str, dict[str, str]]:
    """The per-scenario tables of one machine's section: {scenario: {"<backend> <column>":
    cell}} (each table has backends as rows, at most 8 columns)."""
    section = markdown.split("\n## Results on ")[machine + 1].split("\n## ")[0]
    out: dict[str, dict[str, str]] = {}
    for part in section.split("\n#### ")[1:]:
        scenario, _, rest = part.partition("\n")
        block = next(b for b in rest.split("\n\n") if b.strip().startswith("|"))
        for backend, row in _table(block.strip()).items():
            for column, cell in row.items():
                out.setdefault(scenario, {})[f"{backend} {column}"] = cell
    return out


def caveat_lines(markdown: str) -> list[str]:
    section = markdown.split("\n## Caveats\n")[1].split("\n## ")[0]
    return [ln[2:] for ln in section.splitlines() if ln.startswith("- ")]


def markdown_of(*paths: Path) -> str:
    return results_markdown(collect(paths))


# --- real runs -----------------------------------------------------------------------------------


def test_real_run_writes_every_output_with_independent_values(real_run, tmp_path: Path) -> None:
    path, original = real_run
    report = write_tables([path], tmp_path / "new" / "out")
    assert report.problems == []
    assert {p.name for p in report.written} == OUTPUTS
    assert all(p.stat().st_size > 0 for p in report.written)
    for png in ("accuracy_vs_time.png", "speed.png"):
        assert (tmp_path / "new" / "out" / png).read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "new" / "out" / "results.md").read_text() == report.markdown
    machine = original["machine_info"]["mlpbench"]["machine_id"]
    accuracy = table_rows(report.markdown, "### Accuracy")
    speed = pd.read_csv(tmp_path / "new" / "out" / "speed.csv").set_index("scenario")
    for e in original["benchmarks"]:
        name, hist = e["params"]["scenario"], e["extra_info"]["history"]
        assert accuracy[name]["numpy final %"] == f"{100 * hist[-1]['test_accuracy']:.2f}"
        median = statistics.median(e["stats"]["data"])
        assert speed.loc[name, "median_s_per_epoch"] == pytest.approx(median, rel=1e-5)
        assert speed.loc[name, "samples_per_s"] == pytest.approx(600 / median, rel=1e-5)
        assert speed.loc[name, "relative_to_numpy"] == 1.0
        assert speed.loc[name, "machine_id"] == machine
    assert any("slice of MNIST (n_train 600 of 60,000" in c for c in caveat_lines(report.markdown))
    assert AGREEMENT not in report.markdown  # measured for NumPy vs Keras: no Keras here


# --- exact numbers from hand-written documents ---------------------------------------------------


def test_speed_and_relative_speed_from_known_medians(tmp_path: Path) -> None:
    numpy_warm, keras_warm = [1.0, 2.0, 4.0], [0.5, 0.4, 0.7]
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "baseline", numpy_warm, cold=2.5),
            entry("keras", "baseline", keras_warm, cold=9.0),
        ),
    )
    md = markdown_of(path)
    row = table_rows(md, "### Speed")["baseline"]
    numpy_median, keras_median = statistics.median(numpy_warm), statistics.median(keras_warm)
    # epochs this varied (coefficients of variation 0.5 and 0.29) are marked unstable: ⚠
    assert (row["numpy s/epoch"], row["keras s/epoch"]) == ("2.00 ⚠", "0.500 ⚠")
    assert (row["numpy vs numpy"], row["keras vs numpy"]) == ("×1.00", "×4.00")
    assert (row["numpy epoch 1 s"], row["keras epoch 1 s"]) == ("2.50", "9.00")
    assert caveat_lines(md) == []  # same settings, full data: nothing to say
    write_tables([path], tmp_path / "out")  # what the markdown leaves out is in the CSVs
    speed = pd.read_csv(tmp_path / "out" / "speed.csv").set_index("backend")
    assert speed.loc["numpy", "samples_per_s"] == 60_000 / numpy_median == 30_000
    assert speed.loc["keras", "samples_per_s"] == 60_000 / keras_median == 120_000
    cold = pd.read_csv(tmp_path / "out" / "cold_start.csv").set_index("backend")
    assert cold.loc["numpy", "cold_overhead_s"] == pytest.approx(0.5)
    assert cold.loc["keras", "cold_overhead_s"] == pytest.approx(8.5)
    accuracy = pd.read_csv(tmp_path / "out" / "accuracy.csv").set_index("backend")
    assert math.isnan(accuracy.loc["keras", "test_accuracy_epoch5_pct"])


def test_achieved_gflops_and_share_of_the_measured_gemm_peak(tmp_path: Path) -> None:
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "baseline", [0.5, 0.4, 0.6], epoch_gflop=24.54528),
            entry("keras", "baseline", [2.0], epoch_gflop=24.54528, dtype="float64"),
        ),
    )
    row = table_rows(markdown_of(path), "### Speed")["baseline"]
    assert row["numpy GFLOP/s"] == f"{24.54528 / 0.5:.1f}" == "49.1"
    assert row["numpy % peak"] == "49 %"  # of the float32 peak, 100 GFLOP/s
    assert row["keras GFLOP/s"] == "12.3"
    assert row["keras % peak"] == "31 %"  # of the float64 peak, 40 GFLOP/s


def test_gpu_cells_are_measured_against_their_gpus_own_peak_with_device_times(
    tmp_path: Path,
) -> None:
    gpu = {"index": 0, "name": "Test GPU", "gemm_peak_gflops": {"float32": 500.0, "tf32": 4000.0}}
    document = doc(
        entry("numpy", "baseline", [0.5, 0.5], epoch_gflop=25.0),
        entry("cupy", "baseline", [0.1, 0.1], epoch_gflop=25.0, device="gpu", gpu=gpu),
        entry(
            "torch",
            "baseline",
            [0.05, 0.05],
            epoch_gflop=25.0,
            device="gpu",
            tf32=True,
            gpu="Test GPU",
        ),
        entry(
            "jax",
            "baseline",
            [0.2, 0.2],
            epoch_gflop=25.0,
            device="gpu",
            dtype="float64",
            gpu="Test GPU",
        ),
    )
    document["machine_info"]["mlpbench"]["gpus"] = [gpu]
    # CUDA-event times on cupy's warm epochs: epoch 2 then 3 (epoch 1, cold, is left out)
    cupy_history = document["benchmarks"][1]["extra_info"]["history"]
    for record, (epoch_s, step_s, iqr_s) in zip(
        cupy_history, [(9.0, 9e-3, 9e-3), (0.08, 40e-6, 2e-6), (0.09, 44e-6, 4e-6)], strict=True
    ):
        record.update(device_seconds=epoch_s, device_step_median_s=step_s, device_step_iqr_s=iqr_s)
    row = table_rows(markdown_of(save(tmp_path, "g.json", document)), "### Speed")["baseline"]
    assert row["numpy % peak"] == "50 %"  # the host's float32 peak, 100 GFLOP/s
    assert row["cupy % peak"] == "50 %"  # 250 GFLOP/s of the GPU's float32 500
    assert row["torch % peak"] == "12 %"  # 500 GFLOP/s of its TF32 4000, not the host's
    assert row["jax % peak"] == "—"  # no float64 peak measured on the GPU: never the host's
    assert row["cupy device s/epoch"] == "0.0850"  # median of 0.08 and 0.09
    assert row["cupy device µs/step"] == "42.0 (IQR 3.0)"
    assert row["torch device s/epoch"] == row["numpy device µs/step"] == "—"


def test_gpu_memory_is_shown_with_what_each_framework_measures(tmp_path: Path) -> None:
    """CuPy's pool, torch's allocator peak and JAX's process peak are three measures: each
    number says which it is, in the table and in memory.csv; an older result says 'unnamed'."""
    mib = 2**20
    document = doc(
        entry("numpy", "baseline", [0.5, 0.5]),
        entry("cupy", "baseline", [0.1], device="gpu", peak_pool_bytes=300 * mib,
              gpu_memory_measure="pool"),
        entry("torch", "baseline", [0.1], device="gpu", gpu_peak_memory_bytes=200 * mib,
              gpu_memory_measure="allocator peak"),
        entry("jax", "baseline", [0.1], device="gpu", gpu_peak_memory_bytes=1024 * mib),
    )  # fmt: skip
    for e in document["benchmarks"]:
        e["extra_info"]["peak_rss_bytes"] = 500 * mib
    path = save(tmp_path, "m.json", document)
    md = markdown_of(path)
    block = next(b for b in md.split("\n### Memory\n")[1].split("\n\n") if b.startswith("|"))
    gpu = {ln.split("|")[2].strip(): ln.split("|")[4].strip() for ln in block.splitlines()[2:]}
    assert gpu["cupy"] == "300 (pool)"
    assert gpu["torch"] == "200 (allocator peak)"
    assert gpu["jax"] == "1,024 (unnamed)"
    assert gpu["numpy"] == "—"
    write_tables([path], tmp_path / "out")
    memory = pd.read_csv(tmp_path / "out" / "memory.csv").set_index("backend")
    assert memory.loc["cupy", "gpu_memory_measure"] == "pool"
    assert memory.loc["torch", "gpu_peak_mib"] == 200


def test_seeds_are_summarized_with_t_intervals(tmp_path: Path) -> None:
    """Three seeds: final accuracies 90, 92, 94 % (sd 2) → 92.00 ± t(0.975, 2)·2/√3 = ± 4.97;
    warm medians 1.0, 2.0, 3.0 s → 2.00 ± 4.303·1/√3 = ± 2.48. A single-seed cell has no ±."""
    runs = [
        entry("numpy", "baseline", [m], accuracies=[0.5, a], seed=seed)
        for seed, (a, m) in enumerate([(0.90, 1.0), (0.92, 2.0), (0.94, 3.0)])
    ]
    single = entry("keras", "baseline", [1.0], accuracies=[0.5, 0.91], seed=0)
    path = save(tmp_path, "a.json", doc(*runs, single))
    report = write_tables([path], tmp_path / "out")
    rows = table_rows(report.markdown, "### Accuracy")
    assert rows["baseline"]["numpy final %"] == "92.00 ± 4.97"
    assert rows["baseline"]["keras final %"] == "91.00"
    assert (rows["baseline"]["numpy seeds"], rows["baseline"]["keras seeds"]) == ("3", "1")
    speed = table_rows(report.markdown, "### Speed")["baseline"]["numpy s/epoch"]
    assert speed == "2.00 ± 2.48 ⚠"  # rounds 1, 2 and 3 s apart: unstable between rounds
    accuracy = pd.read_csv(tmp_path / "out" / "accuracy.csv").set_index("backend")
    assert accuracy.loc["numpy", "n_seeds"] == 3 and accuracy.loc["keras", "n_seeds"] == 1
    assert accuracy.loc["numpy", "ci95_low"] == pytest.approx(92 - 4.303 * 2 / 3**0.5, abs=1e-3)
    assert accuracy.loc["numpy", "ci95_high"] == pytest.approx(92 + 4.303 * 2 / 3**0.5, abs=1e-3)
    assert math.isnan(accuracy.loc["keras", "ci95_low"])
    assert len(pd.read_csv(tmp_path / "out" / "runs.csv")) == 4


def test_epoch5_accuracy_and_not_run_cells(tmp_path: Path) -> None:
    accuracies = [0.91, 0.92, 0.93, 0.94, 0.955, 0.96]
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "he_init", [1.0] * 5, accuracies=accuracies),
            entry("keras", "baseline", [1.0]),
        ),
    )
    rows = table_rows(markdown_of(path), "### Accuracy")
    assert rows["he_init"]["numpy final %"] == "96.00"
    assert "keras final %" not in rows["he_init"]  # not run: no row in he_init's table
    assert list(rows) == ["he_init", "baseline"]  # the file's order (tables read only JSON)
    write_tables([path], tmp_path / "out")  # epoch 5's accuracy and epochs run: in the CSV
    accuracy = pd.read_csv(tmp_path / "out" / "accuracy.csv").set_index("scenario")
    assert accuracy.loc["he_init", "test_accuracy_epoch5_pct"] == pytest.approx(95.5)
    assert accuracy.loc["he_init", "epochs_run"] == 6


def test_results_from_another_machine_get_their_own_tables(tmp_path: Path) -> None:
    a = save(
        tmp_path,
        "a.json",
        doc(entry("numpy", "baseline", [2.0]), entry("keras", "baseline", [0.5])),
    )
    b = save(tmp_path, "b.json", doc(entry("keras", "baseline", [0.25]), machine="m2"))
    md = markdown_of(a, b)
    assert table_rows(md, "### Speed", 0)["baseline"]["keras vs numpy"] == "×4.00"
    m2 = table_rows(md, "### Speed", 1)["baseline"]
    assert m2 == {
        "keras backend": "keras",
        "keras seeds": "1",
        "keras final %": "91.00",
        "keras s/epoch": "0.250",
        "keras vs numpy": "—",  # no numpy on m2: ratios never cross machines
        "keras GFLOP/s": "—",  # these entries carry no epoch_gflop
        "keras % peak": "—",
        "keras epoch 1 s": "3.00",
    }
    assert "## Results on m1" in md and "## Results on m2" in md
    assert caveat_lines(md)[0].startswith("Results from 2 machines (m1, m2)")
    assert "| fact " in md and "| m1 " in md and "| m2 " in md


@pytest.mark.parametrize(
    ("numpy", "keras", "expected"),
    [
        ({"dtype": "float64"}, {}, "dtype — numpy: float64, keras: float32"),
        ({}, {"tf32": True}, "tf32 — numpy: false, keras: true"),
        ({}, {"blas_threads": 1}, "threads — numpy: blas_threads=4, keras: blas_threads=1"),
        (
            {},
            {"blas_threads": None, "intra_op_threads": 0, "threads_note": "0 = default"},
            "threads — numpy: blas_threads=4, keras: intra_op_threads=0 (0 = default)",
        ),
        ({"batch_size": 128}, {}, "batch_size — numpy: 128, keras: 32"),
        ({"blas": "mkl 2024"}, {}, "blas — numpy: mkl 2024, keras: openblas 0.3.28"),
        ({"device": "gpu"}, {}, "device — numpy: gpu, keras: cpu"),
        ({"n_train": 3000}, {}, "n_train — numpy: 3000, keras: 60000"),
    ],
    ids=["dtype", "tf32", "threads", "thread-knobs", "batch_size", "blas", "device", "n_train"],
)
def test_a_setting_that_differs_gets_a_caveat(tmp_path: Path, numpy, keras, expected) -> None:
    n_train = numpy.pop("n_train", 60_000)
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "baseline", [1.0], n_train=n_train, **numpy),
            entry("keras", "baseline", [1.0], **keras),
        ),
    )
    lines = [c for c in caveat_lines(markdown_of(path)) if "differ in" in c]
    assert lines == [f"m1: backends side by side differ in {expected} (in baseline)"]


def test_caveats_state_only_recorded_settings(tmp_path: Path) -> None:
    """A setting one backend does not record is not guessed (TensorFlow's kernels flush
    denormals themselves, for one); a recorded difference is stated."""
    numpy = entry("numpy", "baseline", [1.0], flush_denormals=True)
    keras = entry("keras", "baseline", [2.0])  # records nothing about denormals
    lines = caveat_lines(markdown_of(save(tmp_path, "a.json", doc(numpy, keras))))
    assert not any("flush_denormals" in line for line in lines)
    torch = entry("torch", "baseline", [2.0], flush_denormals=False)
    lines = caveat_lines(markdown_of(save(tmp_path, "b.json", doc(numpy, torch))))
    assert any("flush_denormals — numpy: true, torch: false" in line for line in lines)


def test_an_update_that_departs_from_keras_formula_is_stated(tmp_path: Path) -> None:
    departure = "torch.optim.RMSprop divides by √v + ε; Keras by √(v + ε)"
    numpy = entry("numpy", "rmsprop", [1.0])
    torch = entry("torch", "rmsprop", [2.0], optimizer_formula=departure)
    lines = caveat_lines(markdown_of(save(tmp_path, "a.json", doc(numpy, torch))))
    (line,) = [c for c in lines if "Keras' formula" in c]
    assert line.startswith("torch updates as its framework ships it")
    assert departure in line and line.endswith("(in rmsprop)")
    exact = entry("torch", "rmsprop", [2.0], optimizer="keras-formula")
    lines = caveat_lines(markdown_of(save(tmp_path, "b.json", doc(numpy, exact))))
    assert not any("Keras' formula" in c for c in lines)


def test_agreement_paragraph_only_where_it_was_measured(tmp_path: Path) -> None:
    """NumPy vs Keras on a CPU: shown for such tables, not for GPU machines or other pairs."""
    pair = doc(entry("numpy", "baseline", [1.0]), entry("keras", "baseline", [2.0]))
    assert AGREEMENT in markdown_of(save(tmp_path, "cpu.json", pair))
    on_gpu = copy.deepcopy(pair)
    on_gpu["machine_info"]["mlpbench"]["gpus"] = [{"name": "NVIDIA H200"}]
    assert AGREEMENT not in markdown_of(save(tmp_path, "gpu.json", on_gpu))
    other = doc(entry("numpy", "baseline", [1.0]), entry("torch", "baseline", [2.0]))
    assert AGREEMENT not in markdown_of(save(tmp_path, "torch.json", other))


def test_keras_fit_overhead_is_stated_for_the_keras_backends_tabled_on_a_cpu(tmp_path) -> None:
    """Each Keras backend's measured harness overhead appears only where it is tabled (CPU)."""
    pair = doc(entry("numpy", "baseline", [1.0]), entry("keras-jax", "baseline", [2.0]))
    markdown = markdown_of(save(tmp_path, "cpu.json", pair))
    assert FIT_OVERHEAD["keras-jax"] in markdown and FIT_OVERHEAD["keras"] not in markdown
    on_gpu = copy.deepcopy(pair)
    on_gpu["machine_info"]["mlpbench"]["gpus"] = [{"name": "NVIDIA H200"}]
    assert FIT_OVERHEAD["keras-jax"] not in markdown_of(save(tmp_path, "gpu.json", on_gpu))


def test_tf32_is_implied_off_only_on_the_cpu(tmp_path: Path) -> None:
    silent = entry("cupy", "baseline", [1.0], device="gpu")  # records no tf32: unknown
    with_tf32 = entry("torch", "baseline", [1.0], device="gpu", tf32=True)
    lines = caveat_lines(markdown_of(save(tmp_path, "a.json", doc(with_tf32, silent))))
    assert not any("tf32" in line for line in lines)
    on_cpu = entry("numpy", "baseline", [1.0], device="cpu")  # a CPU has no TF32
    lines = caveat_lines(markdown_of(save(tmp_path, "b.json", doc(on_cpu, with_tf32))))
    assert any("tf32 — numpy: false, torch: true" in line for line in lines)


def test_equal_settings_and_one_sided_settings_give_no_caveat(tmp_path: Path) -> None:
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "baseline", [1.0], numpy="2.1.0"),
            entry("keras", "baseline", [1.0], tf32=False, jit_compile=True, keras="3.5"),
            entry("numpy", "report_recipe", [1.0], dtype="float64"),
        ),
    )
    assert caveat_lines(markdown_of(path)) == []


def test_skipped_incomplete_and_cold_only_runs_are_marked(tmp_path: Path) -> None:
    reason = "keras cannot run full-batch float64 here"
    path = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "report_recipe", [1.0]),
            entry("numpy", "dropout", [1.0], epochs=5, complete=False),
            entry("keras", "dropout", []),
            skipped=({"backend": "keras", "scenario": "report_recipe", "reason": reason},),
        ),
    )
    md = markdown_of(path)
    accuracy, speed = table_rows(md, "### Accuracy"), table_rows(md, "### Speed")
    assert accuracy["report_recipe"]["keras final %"] == "skipped"
    assert speed["report_recipe"]["keras s/epoch"] == f"skipped: {reason}"
    assert accuracy["dropout"]["numpy final %"] == "91.00 (incomplete: 2/5 ep)"
    assert speed["dropout"]["keras s/epoch"] == "3.00 (epoch 1, cold)"
    assert speed["dropout"]["keras vs numpy"] == "—"  # a cold epoch is no match for warm ones
    lines = caveat_lines(md)
    assert f"keras × report_recipe on m1: skipped — {reason}" in lines
    assert any(
        c.startswith("numpy × dropout on m1: incomplete — interrupted after 2 of 5") for c in lines
    )
    assert any(c.startswith("keras × dropout on m1: speed is over epoch 1 only") for c in lines)


def test_a_cold_only_run_without_stats_over_still_reads_epoch_1_only(tmp_path: Path) -> None:
    cold_only = entry("keras", "dropout", [])
    del cold_only["extra_info"]["stats_over"]  # e.g. JSON written by another tool
    warm = entry("numpy", "dropout", [1.0])  # a string beside the missing value in the column
    lines = caveat_lines(markdown_of(save(tmp_path, "a.json", doc(warm, cold_only))))
    expected = "keras × dropout on m1: speed is over epoch 1 only, so it includes first-call costs"
    assert expected in lines


def test_a_document_with_only_skipped_runs_gives_tables_without_plots(tmp_path: Path) -> None:
    skipped = ({"backend": "keras", "scenario": "baseline", "reason": "no GPU"},)
    path = save(tmp_path, "a.json", doc(skipped=skipped))
    report = write_tables([path], tmp_path / "out")
    assert report.problems == []
    assert {p.name for p in report.written} == {"results.md", *CSVS, "index.html"}
    assert table_rows(report.markdown, "### Speed")["baseline"]["keras s/epoch"] == (
        "skipped: no GPU"
    )
    assert caveat_lines(report.markdown) == ["keras × baseline on m1: skipped — no GPU"]


def test_the_newest_of_repeated_results_is_kept(tmp_path: Path) -> None:
    older_software = doc(entry("numpy", "baseline", [2.0]))
    older_software["machine_info"]["mlpbench"]["packages"] = {"numpy": "1.26.4"}
    old = save(tmp_path, "old.json", older_software)
    new = save(
        tmp_path,
        "new.json",
        doc(entry("numpy", "baseline", [3.0]), when="2026-02-01T00:00:00+00:00"),
    )
    md = markdown_of(new, old)
    assert table_rows(md, "### Speed")["baseline"]["numpy s/epoch"] == "3.00"
    assert caveat_lines(md) == [
        f"numpy × baseline on m1: 2 results; kept the newest (`{new}`), not `{old}`",
        f"m1: the files disagree on packages (software changed between runs); Machines shows "
        f"the newest, `{new}`",
    ]
    assert "numpy 2.1.0" in md.split("## Machines")[1]


def test_suite_json_without_mlpbench_keys_is_read_by_params(tmp_path: Path) -> None:
    suite = doc(entry("numpy", "baseline", [1.0]))
    del suite["mlpbench"], suite["machine_info"]["mlpbench"]
    md = markdown_of(save(tmp_path, "suite.json", suite))
    assert "## Results on unidentified (box)" in md
    assert table_rows(md, "### Speed")["baseline"]["numpy s/epoch"] == "1.00"
    assert "not recorded (no mlpbench machine facts" in md


def test_headline_markdown(tmp_path: Path) -> None:
    path = save(
        tmp_path,
        "a.json",
        doc(entry("numpy", "baseline", [2.0]), entry("keras", "baseline", [0.5])),
    )
    text = headline_markdown([path, tmp_path / "missing.json"])
    assert text.startswith("**m1** — per scenario: NumPy's median warm s/epoch")
    [row] = [ln for ln in text.splitlines() if ln.startswith("| baseline")]
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "baseline",
        "2.00",
        "keras? one seed cannot tell it from numpy (×4.00; run --rounds 3 or more)",
        "0.500",
        "×4.00",
        "numpy? one seed cannot tell it from keras (+0.00 pt; run --rounds 3 or more); 91.00 %",
    ]
    assert headline_markdown([tmp_path / "missing.json"]) == ""


def headline_row(tmp_path: Path, *entries: dict[str, Any]) -> list[str]:
    text = headline_markdown([save(tmp_path, "h.json", doc(*entries))])
    [row] = [ln for ln in text.splitlines() if ln.startswith("| baseline")]
    return [c.strip() for c in row.strip("|").split("|")]


def seeded(backend: str, level: float, noise: list[float], accuracy: list[float]) -> list[dict]:
    """Five seeds of a cell: warm epochs at ``level`` × the seed's noise, final accuracies."""
    return [
        entry(backend, "baseline", [level * n] * 3, seed=s,
              accuracies=[0.5, 0.6, 0.7, accuracy[s]])
        for s, n in enumerate(noise)
    ]  # fmt: skip


def test_the_summary_names_a_clear_winner_with_its_lead(tmp_path: Path) -> None:
    """Jax is 2× faster than numpy on every seed (± a little) and more accurate on every seed by
    0.2–0.4 points: both are named, with the lead's paired interval."""
    noise = [1.00, 1.03, 0.97, 1.02, 0.99]
    row = headline_row(
        tmp_path,
        *seeded("numpy", 2.0, noise, [0.970, 0.971, 0.969, 0.972, 0.970]),
        *seeded("jax", 1.0, noise[::-1], [0.973, 0.974, 0.973, 0.975, 0.974]),
    )
    assert row[2].startswith("jax, ×2.00 [") and row[2].endswith("] ahead of numpy")
    assert row[5].startswith("jax, +0.34 pt [")


def test_the_summary_names_no_winner_inside_a_tie(tmp_path: Path) -> None:
    """Torch is 1 % faster on average but swings ±10 % between seeds; accuracies differ by
    ±0.1 point either way: both columns say tie, and numpy's lead is shown when it leads."""
    row = headline_row(
        tmp_path,
        *seeded("numpy", 1.0, [1.0, 1.1, 0.9, 1.05, 0.95], [0.970, 0.971, 0.969, 0.972, 0.970]),
        *seeded("torch", 0.99, [0.9, 1.1, 1.0, 0.95, 1.05], [0.971, 0.970, 0.970, 0.971, 0.969]),
    )
    assert row[2].startswith("tie: torch, numpy (×1.0") and row[4].startswith("×1.0")
    assert row[5].startswith("tie: ")
    lead = headline_row(
        tmp_path,
        *seeded("numpy", 1.0, [1.0, 1.02, 0.98, 1.01, 0.99], [0.97] * 5),
        *seeded("keras", 3.0, [0.99, 1.0, 1.02, 0.98, 1.01], [0.97] * 5),
    )
    assert lead[2].startswith("numpy, ×3.00 [") and lead[2].endswith("ahead of keras")


# --- unusable files, CLI and plots ---------------------------------------------------------------


def unusable_files(tmp_path: Path) -> dict[Path, str]:
    """{path: the problem its line must name}."""
    foreign_entries = {"benchmarks": [{"name": "test_sum", "params": None, "stats": {}}]}
    return {
        tmp_path / "missing.json": "no such file",
        save(tmp_path, "garbage.json", b"\x00\xff\xfe not json"): "not JSON",
        save(tmp_path, "truncated.json", '{"benchmarks": ['): "not JSON",
        save(tmp_path, "foreign.json", {"hello": 1}): "not a pytest-benchmark JSON",
        save(tmp_path, "list.json", [1, 2]): "not a pytest-benchmark JSON",
        save(tmp_path, "other.json", foreign_entries): "benchmarks[0].params is missing",
        tmp_path: "cannot read",
    }


def test_each_unusable_file_gives_one_line_and_the_rest_is_tabulated(tmp_path: Path) -> None:
    good = save(tmp_path, "good.json", doc(entry("numpy", "baseline", [1.0])))
    mixed = doc(entry("keras", "baseline", [0.5]), {"name": "test_other", "params": {}})
    mixed_path = save(tmp_path, "mixed.json", mixed)
    bad = unusable_files(tmp_path)
    collection = collect([good, *bad, mixed_path])
    assert len(collection.problems) == len(bad) + 1
    for problem, (path, words) in zip(collection.problems[:-1], bad.items(), strict=True):
        assert problem.startswith(f"{path}: ") and words in problem and "\n" not in problem
    assert collection.problems[-1] == (
        f"{mixed_path}: ignored 1 of 2 entries (benchmarks[1].params.backend is missing, "
        "expected text)"
    )
    row = table_rows(results_markdown(collection), "### Speed")["baseline"]
    assert row["keras vs numpy"] == "×2.00"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda e: e["extra_info"].pop("history"), "extra_info.history is missing"),
        (lambda e: e["extra_info"]["history"][0].pop("seconds"), "expected epochs with positive"),
        (lambda e: e["stats"].update(data=[0.0], median=0.0), "stats.data is list [0.0]"),
        (lambda e: e.pop("stats"), "stats is missing, expected an object"),
    ],
    ids=["no-history", "no-seconds", "zero-median", "no-stats"],
)
def test_malformed_entries_are_ignored_with_one_line(tmp_path: Path, damage, problem) -> None:
    broken = entry("keras", "baseline", [1.0])
    damage(broken)
    path = save(tmp_path, "a.json", doc(entry("numpy", "baseline", [1.0]), broken))
    collection = collect([path])
    [line] = collection.problems
    assert line.startswith(f"{path}: ignored 1 of 2 entries (benchmarks[1].") and problem in line
    assert [c.backend for c in collection.cells] == ["numpy"]


def test_cli_exit_codes_and_messages(tmp_path: Path, capsys) -> None:
    good = save(tmp_path, "good.json", doc(entry("numpy", "baseline", [1.0])))
    bad = save(tmp_path, "bad.json", "nope")
    assert cli.main(["table", str(good), "--out", str(tmp_path / "ok")]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main(["table", str(good), str(bad), "--out", str(tmp_path / "some")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"mlpbench: {bad}: not JSON")
    assert (tmp_path / "some" / "results.md").exists()
    assert cli.main(["table", str(bad), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "mlpbench: error: no readable results; nothing written"
    assert not (tmp_path / "none").exists()
    blocked = tmp_path / "good.json" / "out"  # a folder inside a file cannot be made
    assert cli.main(["table", str(good), "--out", str(blocked)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"mlpbench: error: cannot write tables to {blocked}")


def test_without_matplotlib_tables_are_still_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = save(tmp_path, "a.json", doc(entry("numpy", "baseline", [1.0])))
    report = write_tables([path], tmp_path / "out")
    assert report.problems == [MISSING]
    assert {p.name for p in report.written} == {"results.md", *CSVS, "index.html"}


def test_plots_for_several_backends_and_machines(tmp_path: Path) -> None:
    a = save(
        tmp_path,
        "a.json",
        doc(
            entry("numpy", "baseline", [2.0, 2.1]),
            entry("keras", "baseline", [0.05, 0.06]),
            entry("numpy", "dropout", [2.2]),
            entry("keras", "dropout", []),
        ),
    )
    b = save(tmp_path, "b.json", doc(entry("keras", "baseline", [0.01]), machine="m2"))
    report = write_tables([a, b], tmp_path / "out")
    pngs = [p for p in report.written if p.suffix == ".png"]
    assert [p.name for p in pngs] == ["accuracy_vs_time.png", "speed.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000


def test_a_tuned_row_is_paired_with_numpys_tuned_row_from_its_own_run(tmp_path: Path) -> None:
    """The shipped run and the tuned run are two runs: a drift between them must not enter a
    tuned ratio. Oracle: the machine was 2× slower during the tuned run (NumPy's tuned row,
    same settings, takes twice as long); keras (tuned) took as long as that NumPy row, so its
    ratio is ×1.00 — against shipped NumPy it would read ×0.50."""

    def tuned(e: dict[str, Any]) -> dict[str, Any]:
        e["extra_info"]["division"] = "tuned"
        return e

    shipped = [entry("numpy", "baseline", [1.0, 1.0], seed=s) for s in (0, 1, 2)]
    shipped += [entry("keras", "baseline", [4.0, 4.0], seed=s) for s in (0, 1, 2)]
    again = [tuned(entry("numpy", "baseline", [2.0, 2.0], seed=s)) for s in (0, 1, 2)]
    again += [tuned(entry("keras", "baseline", [2.0 + s / 100] * 2, seed=s)) for s in (0, 1, 2)]
    paths = [save(tmp_path, "run.json", doc(*shipped)), save(tmp_path, "t.json", doc(*again))]
    write_tables(paths, tmp_path / "out")
    speed = pd.read_csv(tmp_path / "out" / "speed.csv").set_index("backend")
    assert speed.loc["keras", "relative_to_numpy"] == pytest.approx(0.25)
    assert speed.loc["keras (tuned)", "relative_to_numpy"] == pytest.approx(0.99, abs=0.01)
    assert speed.loc["numpy (tuned)", "relative_to_numpy"] == pytest.approx(1.0)
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    per_seed = runs[runs["backend"] == "keras (tuned)"]["relative_to_numpy"]
    assert per_seed.round(2).tolist() == [1.0, round(2 / 2.01, 2), round(2 / 2.02, 2)]
