"""The answer at the end of a run: per scenario the fastest backend and its lead (or a tie),
whether accuracies agree, the rounds; the unstable count; the page. Checked against the results
JSON of the same run, and on synthetic results with a known answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_mlpbench
from test_tables import doc, save
from test_tables import seeded as cell_seeds

from bench.report import write_tables_and_report
from bench.results.read import warm_median


def closing(capsys, tmp_path: Path, *entries: dict) -> list[str]:
    write_tables_and_report([save(tmp_path, "r.json", doc(*entries))], tmp_path / "out")
    out = capsys.readouterr().out
    return [ln for ln in out.splitlines() if not ln.startswith("wrote ")]


def test_a_clear_win_and_agreeing_accuracies(tmp_path: Path, capsys) -> None:
    noise = [1.00, 1.03, 0.97, 1.02, 0.99]
    accuracy = [0.970, 0.971, 0.969, 0.972, 0.970]
    lines = closing(
        capsys,
        tmp_path,
        *cell_seeds("numpy", 2.0, noise, accuracy),
        *cell_seeds("jax", 1.0, noise[::-1], accuracy[::-1]),
    )
    assert lines[0].startswith("mlpbench: m1 × baseline (5 rounds): fastest: jax, ×2.00 [")
    # the fastest's own final accuracy: the mean of its seeds' last epochs (97.04 %)
    assert "ahead of numpy (1.00 s/epoch), final accuracy 97.04 %; accuracies agree" in lines[0]
    assert lines[-1] == f"mlpbench: open {tmp_path / 'out' / 'index.html'}"


def test_a_tie_is_called_a_tie(tmp_path: Path, capsys) -> None:
    lines = closing(
        capsys,
        tmp_path,
        *cell_seeds("numpy", 1.0, [1.0, 1.1, 0.9, 1.05, 0.95], [0.97] * 5),
        *cell_seeds("torch", 0.99, [0.9, 1.1, 1.0, 0.95, 1.05], [0.97] * 5),
    )
    assert lines[0].startswith("mlpbench: m1 × baseline (5 rounds): tie for fastest: torch, numpy")


def test_a_real_run_ends_on_its_answer(tmp_path: Path) -> None:
    """The last lines of ``mlpbench run`` name the scenario's fastest backend as the run's own
    JSON has it, its rounds, and the page it wrote."""
    out = tmp_path / "r.json"
    done = run_mlpbench(
        ["run", "-b", "numpy", "-s", "baseline", "-s", "rmsprop", "--rounds", "2",
         "--epochs", "2", "--n-train", "512", "--n-test", "200", "--out", str(out)]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    answer = [ln for ln in lines if " rounds): " in ln]
    entries = json.loads(out.read_text(encoding="utf-8"))["benchmarks"]
    machine = json.loads(out.read_text())["machine_info"]["mlpbench"]["machine_id"]
    for scenario, line in zip(("baseline", "rmsprop"), answer, strict=True):
        medians = [warm_median(e) for e in entries if e["params"]["scenario"] == scenario]
        mean = sum(medians) / len(medians)
        assert line.startswith(f"mlpbench: {machine} × {scenario} (2 rounds): fastest: numpy (")
        shown = float(re.search(r"\(([\d.]+) s/epoch\)", line).group(1))
        assert abs(shown - mean) / mean < 0.01  # the cells' mean of round medians, as printed
        assert line.endswith("accuracies: one backend, nothing to compare")
    assert lines.index(answer[-1]) >= len(lines) - 3  # the answer closes the output
    assert lines[-1] == f"mlpbench: open {tmp_path / 'index.html'}"
