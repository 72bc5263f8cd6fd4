"""The run's progress line: its estimate against a run whose costs are known, and what a real
short run shows on a terminal (a pseudo-terminal) and in a pipe."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from bench.campaign import priors
from bench.campaign.progress import Progress, clock_text
from bench.cell.spec import CellSpec
from scenarios import BASELINE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_priors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No development-machine priors: the estimate is the run's own pace only."""
    monkeypatch.setattr(priors, "load_priors", lambda path=priors.PRIORS: {})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def simulate(costs: dict[str, float], rounds: int, epochs: int, overhead: float):
    """A sequential run of one cell per backend per round, each epoch of backend b taking
    ``costs[b]`` s of training plus ``overhead`` s of evaluation, each cell ``2 × overhead`` s
    of start-up. Yields (epochs done, the estimate, true seconds left) after every epoch."""
    scenario = BASELINE.with_overrides(epochs=epochs)
    cells = [CellSpec(b, scenario, round=r) for r in range(rounds) for b in costs]
    clock, stream = Clock(), io.StringIO()
    progress = Progress(cells, stream=stream, clock=clock, live=False)
    per_cell = {b: 2 * overhead + epochs * (c + overhead) for b, c in costs.items()}
    total = sum(per_cell[c.backend] for c in cells)
    spent = 0.0
    for cell in cells:
        clock.now += 2 * overhead
        spent += 2 * overhead
        for _ in range(epochs):
            clock.now += costs[cell.backend] + overhead
            spent += costs[cell.backend] + overhead
            progress.epoch(cell, costs[cell.backend])
            yield progress.epochs_done, progress.remaining_seconds(), total - spent
        progress.cell_done(cell)


def test_the_estimate_follows_the_run_s_own_pace(no_priors: None) -> None:
    """Backends whose epochs cost 1 s and 3 s: once both have run, the estimate is within a few
    per cent of the truth (the start-up share is what it cannot know exactly)."""
    seen = list(simulate({"numpy": 1.0, "keras": 3.0}, rounds=4, epochs=5, overhead=0.1))
    total_epochs = len(seen)
    done, estimate, truth = seen[total_epochs // 4 - 1]
    assert done == total_epochs // 4
    assert estimate == pytest.approx(truth, rel=0.05)
    for _, estimate, truth in seen[total_epochs // 4 :]:
        assert estimate == pytest.approx(truth, rel=0.05, abs=1.0)


def test_an_unseen_backend_is_estimated_from_what_was_measured(no_priors: None) -> None:
    """After the first cell only numpy's pace is known: keras' epochs are weighed as numpy's
    (the estimate's known bias), and the estimate is exact again once keras has run."""
    seen = list(simulate({"numpy": 1.0, "keras": 3.0}, rounds=2, epochs=4, overhead=0.0))
    _, estimate, truth = seen[3]
    assert estimate == pytest.approx(3 * 4 * 1.0)  # keras' epochs weighed at numpy's pace
    assert truth == pytest.approx(4 * 3.0 + 4 * 1.0 + 4 * 3.0)
    _, estimate, truth = seen[5]
    assert estimate == pytest.approx(truth)


def test_plain_lines_say_cells_epochs_elapsed_and_what_is_left(no_priors: None) -> None:
    scenario = BASELINE.with_overrides(epochs=2)
    cells = [CellSpec("numpy", scenario, round=r) for r in range(2)]
    clock, stream = Clock(), io.StringIO()
    progress = Progress(cells, stream=stream, clock=clock, live=False)
    for cell in cells:
        for _ in range(2):
            clock.now += 30
            progress.epoch(cell, 30.0)
        progress.cell_done(cell)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "progress: 0/2 cells, 0/4 epochs, 0 s elapsed, estimating what is left"
    assert "progress: 1/2 cells, 2/4 epochs, 1 min 00 s elapsed, about 1 min 00 s left" in lines
    assert lines[-1] == "progress: 2/2 cells, 4/4 epochs, 2 min 00 s elapsed, about 0 s left"


def test_clock_text() -> None:
    assert [clock_text(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]


RUN = ["-m", "bench", "run", "-b", "numpy", "-s", "baseline", "-s", "he_init", "--epochs", "2"]
RUN += ["--n-train", "2048", "--n-test", "500", "--no-tables"]


def test_the_shipped_priors_cover_the_readme_main_job() -> None:
    """The README's main job (every catalogue scenario on NumPy and Keras, full MNIST) has an
    estimate before anything trains."""
    import scenarios

    cells = [CellSpec(b, s) for s in scenarios.SCENARIOS.values() for b in ("numpy", "keras")]
    assert priors.estimate(cells) > 60


def test_a_real_run_through_a_pipe_prints_plain_progress_lines(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, *RUN, "--out", str(tmp_path / "run.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = re.findall(r"^progress: (\d+)/(\d+) cells, (\d+)/(\d+) epochs, .* (left)$",
                       done.stderr, re.MULTILINE)  # fmt: skip
    assert found[0][:4] == ("0", "2", "0", "4") and found[-1][:4] == ("2", "2", "4", "4")
    assert "\r" not in done.stderr  # no in-place updates in a log
    assert "epoch  2/2" in done.stdout  # the run's own lines are still there


def test_a_real_run_on_a_terminal_updates_one_line_in_place(tmp_path) -> None:
    leader, follower = pty.openpty()
    # a terminal 120 columns wide (a fresh pseudo-terminal has none, where tqdm draws nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, *RUN, "--out", str(tmp_path / "run.json")],
        stdin=follower, stdout=follower, stderr=follower, cwd=ROOT, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=600) == 0
    os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "2/2 cells" in text and "4/4 epochs" in text
    assert "progress:" not in text  # the bar, not the log's plain lines
    assert re.search(r"about \d+ (s|min \d\d s) left", text)


def test_quiet_keeps_only_the_answer(tmp_path) -> None:
    run = [a for a in RUN if a != "--no-tables"]
    done = subprocess.run(
        [sys.executable, *run, "--quiet", "--out", str(tmp_path / "run.json")],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not re.search(r"epoch +\d+/\d+", done.stdout) and "wrote" not in done.stdout
    assert "progress:" not in done.stderr
    assert "baseline" in done.stdout and "index.html" in done.stdout  # the answer and the page


def results_doc(cells: list[tuple[str, str, float, int]], n_train: int | None = None) -> dict:
    """A results document whose cells (backend, scenario, wall seconds, epochs) ran in turn."""
    entries, now = [], 1000.0
    for backend, scenario, wall, epochs in cells:
        extra = {"complete": True, "n_train": n_train, "started": now, "ended": now + wall,
                 "history": [{"epoch": i + 1, "seconds": 1.0} for i in range(epochs)]}  # fmt: skip
        entries.append({"params": {"backend": backend, "scenario": scenario}, "extra_info": extra})
        now += wall
    return {"benchmarks": entries, "machine_info": {"mlpbench": {"machine_id": "dev-2cpu"}}}


def test_priors_are_the_mean_cell_time_per_backend_and_scenario() -> None:
    doc = results_doc([("numpy", "baseline", 10.0, 5), ("numpy", "baseline", 14.0, 5),
                       ("keras", "baseline", 40.0, 5)])  # fmt: skip
    got = priors.priors_from(doc, "a test run")
    assert got["machine_id"] == "dev-2cpu" and got["source"] == "a test run"
    assert got["cells"] == {"keras/baseline": {"seconds": 40.0, "epochs": 5},
                            "numpy/baseline": {"seconds": 12.0, "epochs": 5}}  # fmt: skip
    assert priors.priors_from(results_doc([("numpy", "baseline", 9.0, 5)], 2048), "")["cells"] == {}
    cells = [CellSpec("numpy", BASELINE.with_overrides(epochs=10)), CellSpec("keras", BASELINE)]
    assert priors.estimate(cells, got) == pytest.approx(24.0 + 40.0)  # epochs scale the prior
    assert priors.estimate([*cells, CellSpec("jax", BASELINE)], got) is None  # jax never timed
    assert priors.estimate([CellSpec("numpy", BASELINE, n_train=2048)], got) is None  # a slice


def test_before_any_epoch_the_estimate_is_the_development_machine_s(monkeypatch) -> None:
    known = priors.priors_from(
        results_doc([("numpy", "baseline", 10.0, 5), ("keras", "baseline", 40.0, 5)]), "t"
    )
    monkeypatch.setattr(priors, "load_priors", lambda path=priors.PRIORS: known)
    cells = [CellSpec("numpy", BASELINE), CellSpec("keras", BASELINE)]
    clock, stream = Clock(), io.StringIO()
    progress = Progress(cells, stream=stream, clock=clock, live=False)
    assert stream.getvalue().splitlines()[0] == (
        "progress: 0/2 cells, 0/10 epochs, 0 s elapsed, about 50 s at dev-2cpu's pace"
    )
    # numpy runs at half the prior's pace here (1 s per epoch against 2): keras, not yet run,
    # is weighed at its prior (8 s per epoch) scaled the same way, not at numpy's 1 s
    for _ in range(5):
        clock.now += 1.0
        progress.epoch(cells[0], 1.0)
    assert progress.remaining_seconds() == pytest.approx(5 * 4.0)
