"""``mlpbench compare BASE.json NEW.json``: verdicts, exit codes, messages.

Documents are written here in the shape ``mlpbench run`` writes (pytest-benchmark's Stats over
the warm epochs via ``bench.results.write.epoch_stats``), with 12 warm epochs drawn around 1.0 s
(sd 0.02 s, fixed seed). Expected values are computed independently in the tests: medians with
``statistics.median``, p with scipy's exact Mann–Whitney distribution, accuracy deltas by hand.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from bench import cli
from bench.report.compare import min_p
from bench.results.write import epoch_stats

ROOT = Path(__file__).resolve().parent.parent
N_WARM = 12
SKIPPED_ONLY = {
    "benchmarks": [],
    "mlpbench": {"skipped": [{"backend": "keras", "scenario": "baseline", "reason": "no tf"}]},
}


def warm_times(seed: int, n: int = N_WARM) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(1.0, 0.02, n)]


def entry(
    backend: str,
    scenario: str,
    warm: list[float],
    *,
    seed: int = 0,
    batch_size: int = 32,
    final_accuracy: float = 0.975,
) -> dict[str, Any]:
    seconds = [3.0, *warm]
    history = [
        {
            "epoch": i + 1,
            "seconds": s,
            "train_loss": 0.1,
            "train_accuracy": 0.98,
            "test_loss": 0.1,
            "test_accuracy": final_accuracy if i == len(seconds) - 1 else 0.9,
        }
        for i, s in enumerate(seconds)
    ]
    return {
        "name": f"test_train[{backend}-{scenario}]",
        "params": {"backend": backend, "scenario": scenario, "seed": seed},
        "stats": epoch_stats(warm),
        "extra_info": {
            "history": history,
            "test_accuracy": final_accuracy,
            "complete": True,
            "cold_seconds": 3.0,
            "stats_over": f"warm epochs 2..{len(history)}",
            "n_train": 60_000,
            "n_test": 10_000,
            "settings": {"device": "cpu", "batch_size": batch_size, "seed": seed},
        },
    }


def doc(
    *entries: dict[str, Any],
    machine: str = "m1",
    cpu: str = "Test CPU",
    numpy_version: str = "2.1.0",
    when: str = "2026-01-01T00:00:00+00:00",
) -> dict[str, Any]:
    facts = {
        "machine_id": machine,
        "cpu_model": cpu,
        "blas": [{"internal_api": "openblas", "version": "0.3.28", "num_threads": 2}],
        "packages": {"numpy": numpy_version},
        "gpus": [],
    }
    return {
        "machine_info": {"node": "box", "mlpbench": facts},
        "benchmarks": list(entries),
        "datetime": when,
        "version": "5.1.0",
        "mlpbench": {"schema": 1},
    }


def base_doc(**kwargs: Any) -> dict[str, Any]:
    return doc(
        entry("numpy", "baseline", warm_times(1), final_accuracy=0.9756),
        entry("numpy", "dropout", warm_times(2)),
        entry("keras", "baseline", warm_times(3)),
        **kwargs,
    )


def scaled(document: dict[str, Any], factor: float, only: str | None = None) -> dict[str, Any]:
    """A copy whose warm epochs all take ``factor`` times as long (cells of backend ``only``)."""
    out = copy.deepcopy(document)
    for e in out["benchmarks"]:
        if only in (None, e["params"]["backend"]):
            e["stats"] = epoch_stats([factor * x for x in e["stats"]["data"]])
    return out


def save(tmp_path: Path, name: str, content: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def compare(*args: str | Path, capsys) -> tuple[int, str, str]:
    code = cli.main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def rows(out: str) -> dict[str, dict[str, str]]:
    """{cell: {column: text}} of the markdown table in ``out``."""
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return {r[0]: dict(zip(header, r, strict=True)) for r in body}


# --- the done-when cases -------------------------------------------------------------------------


def test_a_file_against_itself_exits_0_with_no_change(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    code, out, err = compare(base, base, capsys=capsys)
    assert (code, err) == (0, "")
    table = rows(out)
    assert set(table) == {
        "numpy × baseline (seed 0, batch 32)",
        "numpy × dropout (seed 0, batch 32)",
        "keras × baseline (seed 0, batch 32)",
    }
    for row in table.values():
        assert (row["ratio"], row["p"], row["verdict"]) == ("1.00", "1.000", "no change detected")
        assert row["Δ accuracy pt"] == "+0.00"
    assert "regressed:" not in out and "only in" not in out


def test_two_percent_slower_is_below_the_factor_and_exits_0(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    new = save(tmp_path, "new.json", scaled(base_doc(), 1.02))
    code, out, _ = compare(base, new, capsys=capsys)
    assert code == 0
    for row in rows(out).values():
        assert row["ratio"] == "1.02" and row["verdict"] == "no change detected"


def test_one_and_a_half_times_slower_exits_1_and_names_the_cell(tmp_path: Path, capsys) -> None:
    original = base_doc()
    base = save(tmp_path, "base.json", original)
    new = save(tmp_path, "new.json", scaled(original, 1.5, only="numpy"))
    code, out, err = compare(base, new, capsys=capsys)
    assert (code, err) == (1, "")
    table = rows(out)
    cell = "numpy × baseline (seed 0, batch 32)"
    x = original["benchmarks"][0]["stats"]["data"]
    y = [1.5 * v for v in x]
    expected_p = mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
    assert expected_p == pytest.approx(2 / math.comb(2 * N_WARM, N_WARM))  # fully separated
    assert table[cell]["verdict"] == "slower"
    assert table[cell]["ratio"] == f"{statistics.median(y) / statistics.median(x):.2f}" == "1.50"
    assert table[cell]["base s/epoch"] == f"{statistics.median(x):#.3g}"
    assert table["keras × baseline (seed 0, batch 32)"]["verdict"] == "no change detected"
    regressed = [ln for ln in out.splitlines() if ln.startswith("regressed:")]
    assert regressed == [
        f"regressed: {cell}: 1.50× slower (p = {expected_p:.1e})",
        f"regressed: numpy × dropout (seed 0, batch 32): 1.50× slower (p = {expected_p:.1e})",
    ]


def test_the_factor_is_settable(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    new = save(tmp_path, "new.json", scaled(base_doc(), 1.5))
    code, out, _ = compare(base, new, "--factor", "1.6", capsys=capsys)
    assert code == 0 and "regressed:" not in out
    assert {r["verdict"] for r in rows(out).values()} == {"no change detected"}
    # 8 % slower (4 sd of the noise): significant, below the default factor, above 1.05
    new = save(tmp_path, "new2.json", scaled(base_doc(), 1.08))
    code, out, _ = compare(base, new, capsys=capsys)
    assert code == 0 and {r["verdict"] for r in rows(out).values()} == {"no change detected"}
    assert all(float(r["p"]) < 0.05 for r in rows(out).values())
    code, out, _ = compare(base, new, "--factor", "1.05", capsys=capsys)
    assert code == 1 and {r["verdict"] for r in rows(out).values()} == {"slower"}


def test_alpha_is_settable(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    new = save(tmp_path, "new.json", scaled(base_doc(), 1.5))
    p = 2 / math.comb(2 * N_WARM, N_WARM)  # the smallest p 12 vs 12 values can give
    code, out, _ = compare(base, new, "--alpha", f"{p * 1.01:.4e}", capsys=capsys)
    assert code == 1 and {r["verdict"] for r in rows(out).values()} == {"slower"}
    code, out, _ = compare(base, new, "--alpha", f"{p / 2:.4e}", capsys=capsys)
    assert code == 0
    assert {r["verdict"] for r in rows(out).values()} == {f"not testable (n = {N_WARM})"}


def test_faster_copy_exits_0_with_verdict_faster(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    new = save(tmp_path, "new.json", scaled(base_doc(), 0.5))
    code, out, _ = compare(base, new, capsys=capsys)
    assert code == 0 and "regressed:" not in out
    assert {(r["ratio"], r["verdict"]) for r in rows(out).values()} == {("0.50", "faster")}


def test_accuracy_delta_in_percentage_points(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", doc(entry("numpy", "baseline", warm_times(1))))
    better = doc(entry("numpy", "baseline", warm_times(1), final_accuracy=0.9812))
    code, out, _ = compare(base, save(tmp_path, "new.json", better), capsys=capsys)
    # 98.12 % − 97.50 % = +0.62 pt
    assert code == 0
    assert rows(out)["numpy × baseline (seed 0, batch 32)"]["Δ accuracy pt"] == "+0.62"


# --- matching ------------------------------------------------------------------------------------


def test_cells_only_in_one_file_are_listed(tmp_path: Path, capsys) -> None:
    base = save(
        tmp_path,
        "base.json",
        doc(
            entry("numpy", "baseline", warm_times(1)),
            entry("numpy", "baseline", warm_times(4), seed=1),
        ),
    )
    new = save(
        tmp_path,
        "new.json",
        doc(
            entry("numpy", "baseline", warm_times(4), seed=1),
            entry("numpy", "baseline", warm_times(5), batch_size=64),
            entry("numpy", "dropout", warm_times(6)),
        ),
    )
    code, out, err = compare(base, new, capsys=capsys)
    assert (code, err) == (0, "")
    assert list(rows(out)) == ["numpy × baseline (seed 1, batch 32)"]
    lines = out.splitlines()
    assert "only in BASE: numpy × baseline (seed 0, batch 32)" in lines
    assert (
        "only in NEW: numpy × baseline (seed 0, batch 64), numpy × dropout (seed 0, batch 32)"
        in lines
    )


def test_different_machines_warn_in_one_line_and_still_compare(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    other = scaled(base_doc(machine="m2", cpu="Other CPU", numpy_version="2.2.0"), 1.5)
    code, out, err = compare(base, save(tmp_path, "new.json", other), capsys=capsys)
    assert code == 1 and len(rows(out)) == 3
    [line] = err.splitlines()
    assert line.startswith(
        "mlpbench: warning: BASE and NEW come from different machines (m1 vs m2)"
    )
    assert "cpu_model 'Test CPU' vs 'Other CPU'" in line and "numpy 2.1.0 → 2.2.0" in line
    assert "blas" not in line and "gpus" not in line  # the same in both


def test_same_machine_with_new_packages_is_a_note_not_a_warning(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", base_doc())
    new = save(tmp_path, "new.json", base_doc(numpy_version="2.2.0"))
    code, out, err = compare(base, new, capsys=capsys)
    assert (code, err) == (0, "")
    assert "note: same machine (m1); changed: packages numpy 2.1.0 → 2.2.0" in out.splitlines()


def test_several_results_for_one_key_keep_the_newest(tmp_path: Path, capsys) -> None:
    old = save(tmp_path, "old.json", doc(entry("numpy", "baseline", warm_times(1))))
    # the same cell twice in one document: collect keeps the later entry
    twice = doc(
        entry("numpy", "baseline", [2 * x for x in warm_times(1)]),
        entry("numpy", "baseline", warm_times(1)),
    )
    code, out, _ = compare(old, save(tmp_path, "new.json", twice), capsys=capsys)
    assert code == 0
    assert rows(out)["numpy × baseline (seed 0, batch 32)"]["ratio"] == "1.00"
    assert any(
        ln.startswith("note: numpy × baseline (seed 0) on m1: 2 results") for ln in out.splitlines()
    )


# --- too few samples -----------------------------------------------------------------------------


def test_minimum_sample_size_matches_scipy_exact() -> None:
    for n in range(1, 8):
        for m in range(1, 8):
            exact = mannwhitneyu(list(range(n)), [100 + i for i in range(m)], method="exact").pvalue
            assert min_p(n, m) == pytest.approx(exact)
    assert min_p(3, 3) >= 0.05 > min_p(4, 4)


def test_three_warm_epochs_are_not_testable_and_never_a_regression(tmp_path: Path, capsys) -> None:
    base = save(tmp_path, "base.json", doc(entry("numpy", "baseline", [1.0, 1.01, 0.99])))
    new = save(tmp_path, "new.json", doc(entry("numpy", "baseline", [3.0, 3.03, 2.97])))
    code, out, _ = compare(base, new, capsys=capsys)
    row = rows(out)["numpy × baseline (seed 0, batch 32)"]
    assert code == 0
    assert (row["ratio"], row["p"], row["verdict"]) == ("3.00", "—", "not testable (n = 3)")


def test_median_only_is_not_testable(tmp_path: Path, capsys) -> None:
    base_entry = entry("numpy", "baseline", warm_times(1))
    base_entry["stats"] = {"median": 1.0}
    base = save(tmp_path, "base.json", doc(base_entry))
    new = save(tmp_path, "new.json", doc(entry("numpy", "baseline", [2.0] * N_WARM)))
    code, out, _ = compare(base, new, capsys=capsys)
    assert code == 0
    row = rows(out)["numpy × baseline (seed 0, batch 32)"]
    assert (row["ratio"], row["verdict"]) == ("2.00", "not testable (median only)")


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ({"benchmarks": []}, "holds no results"),
        (SKIPPED_ONLY, "every cell in it was skipped"),
    ],
    ids=["missing", "garbage", "empty", "skipped-only"],
)
def test_unusable_file_is_one_line_exit_2(tmp_path: Path, capsys, content, words) -> None:
    good = save(tmp_path, "good.json", base_doc())
    bad = tmp_path / "bad.json" if content is None else save(tmp_path, "bad.json", content)
    for args in ((good, bad), (bad, good)):
        code, out, err = compare(*args, capsys=capsys)
        assert code == 2 and out == ""
        [line] = err.splitlines()
        assert line.startswith("mlpbench: error: cannot compare ") and str(bad) in line
        assert words in line


def test_no_common_cells_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    a = save(tmp_path, "a.json", doc(entry("numpy", "baseline", warm_times(1))))
    b = save(tmp_path, "b.json", doc(entry("keras", "baseline", warm_times(1))))
    code, out, err = compare(a, b, capsys=capsys)
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"mlpbench: error: no cells in common between {a} and {b}")


@pytest.mark.parametrize("option", [["--factor", "0.9"], ["--alpha", "1.5"], ["--alpha", "x"]])
def test_bad_options_are_one_line_usage_errors(tmp_path: Path, capsys, option) -> None:
    a = save(tmp_path, "a.json", base_doc())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compare", str(a), str(a), *option])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("mlpbench compare: error: argument ")


def test_python_m_bench_compare_exit_codes(tmp_path: Path) -> None:
    base = save(tmp_path, "base.json", base_doc())
    slower = save(tmp_path, "slower.json", scaled(base_doc(), 1.5))
    missing = tmp_path / "missing.json"
    for new, expected in ((base, 0), (slower, 1), (missing, 2)):
        done = subprocess.run(
            [sys.executable, "-m", "bench", "compare", str(base), str(new)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == expected, done.stderr
        assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
