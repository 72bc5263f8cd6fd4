"""The slurm executor: every cell a Slurm job (through submitit), all submitted at once, each
result saved as its job ends, with the node's machine facts, job id and host name; a cancelled
job is a failed cell in one line; Ctrl-C cancels what has not finished.

Tests marked ``slurm`` need a running Slurm (``bash scripts/local-slurm.sh start`` brings up a
one-node cluster on this machine) and submitit; without them they skip with the reason. The
others check the per-machine writing with stand-ins and run everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import scenarios
from bench.cell.spec import CellSpec
from bench.results import read
from bench.results.record import EpochRecord, Result

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "local-slurm.sh"
TINY = {"n_train": 2000, "n_test": 1000}
DAEMONS = "slurmctld|slurmscriptd|slurmd|slurmstepd|munged"


def slurm_reason() -> str | None:
    """Why the slurm tests cannot run here, or None."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install -e '.[slurm]')"
    if shutil.which("sinfo") is None:
        return "no Slurm here (sinfo is not on PATH); bash scripts/local-slurm.sh start"
    try:
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    states = done.stdout.split()
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"Slurm is not reachable ({lines[-1] if lines else 'sinfo failed'})"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in states):
        return f"no usable Slurm node (sinfo: {' '.join(states) or 'none'})"
    return None


SLURM_REASON = slurm_reason()
needs_slurm = pytest.mark.skipif(SLURM_REASON is not None, reason=SLURM_REASON or "")


def cell(name: str, epochs: int = 1, **sizes) -> CellSpec:
    return CellSpec("numpy", scenarios.get(name).with_overrides(epochs=epochs), **(sizes or TINY))


def job_state(job_id: str) -> str:
    out = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={job_id}", "--format=%T"],
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[0] if out else ""


def live_daemons() -> list[str]:
    """Slurm and munge processes still running (zombies, already dead, aside)."""
    found = subprocess.run(["pgrep", "-x", DAEMONS], capture_output=True, text=True).stdout
    alive = []
    for pid in found.split():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":
            alive.append(pid)
    return alive


# --- with Slurm ----------------------------------------------------------------------------------


@pytest.mark.slurm
@needs_slurm
def test_cli_runs_each_cell_as_a_slurm_job(tmp_path: Path) -> None:
    """The Done-when: two complete entries, each with its Slurm job id and host name."""
    out = tmp_path / "run.json"
    args = ["run", "--executor", "slurm", "-b", "numpy", "-s", "baseline", "-s", "rmsprop"]
    args += ["--epochs", "1", "--n-train", "2000", "--n-test", "1000", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "slurm job" in done.stdout and "epoch  1/1" in done.stdout
    entries = json.loads(out.read_text())["benchmarks"]
    assert sorted(e["params"]["scenario"] for e in entries) == ["baseline", "rmsprop"]
    for entry in entries:
        extra = entry["extra_info"]
        assert extra["complete"] and extra["failed"] is None and extra["epochs_run"] == 1
        assert extra["slurm_job_id"].isdigit() and extra["hostname"]
    assert len({e["extra_info"]["slurm_job_id"] for e in entries}) == 2
    assert (tmp_path / "results.md").exists()


@pytest.mark.slurm
@needs_slurm
def test_run_many_gathers_each_job_with_its_node_facts(tmp_path: Path) -> None:
    from bench.campaign.slurm import Slurm, write_by_machine

    executor = Slurm(tmp_path / "jobs", poll_s=0.5)
    cells = [cell("baseline"), cell("rmsprop")]
    done: list[Result] = []
    epochs: list[tuple[str, int]] = []
    out = tmp_path / "run.json"

    def on_done(c: CellSpec, r: Result) -> None:
        done.append(r)
        write_by_machine(out, done, executor, {}, {})  # saved after each, as run_all does

    finished = executor.run_many(cells, on_done, lambda c, r: epochs.append((c.label, r.epoch)))
    assert finished == done and len(done) == 2
    assert sorted(epochs) == [("numpy/baseline", 1), ("numpy/rmsprop", 1)]
    for result in done:
        assert result.complete and result.failed is None and len(result.history) == 1
        assert result.n_train == 2000 and result.pid and result.peak_rss_bytes
        facts = executor.job_facts_of(result)
        assert facts["slurm_job_id"] in {j for _, j in executor.submitted} and facts["hostname"]
        machine = executor.machine_of(result)
        assert machine is not None and machine["mlpbench"]["machine_id"]
    doc = json.loads(out.read_text())
    assert [e["extra_info"]["slurm_job_id"] for e in doc["benchmarks"]] == [
        executor.job_facts_of(r)["slurm_job_id"] for r in done
    ]
    assert doc["machine_info"] == json.loads(json.dumps(executor.machine_of(done[0])))


@pytest.mark.slurm
@needs_slurm
def test_a_cancelled_job_is_a_failed_cell_in_one_line(tmp_path: Path) -> None:
    from bench.campaign.slurm import Slurm

    executor = Slurm(tmp_path / "jobs", poll_s=0.5)
    long = cell("baseline", epochs=500, n_train=60000, n_test=1000)

    def cancel_once_running(c: CellSpec, r: EpochRecord) -> None:
        if r.epoch == 1:
            subprocess.run(["scancel", executor.submitted[0][1]], check=True)

    start = time.monotonic()
    result = executor.run(long, cancel_once_running)
    job_id = executor.submitted[0][1]
    assert result.failed == f"slurm job {job_id} CANCELLED"
    assert not result.complete and 1 <= len(result.history) < 500
    assert result.settings and result.n_train == 60000  # kept from the job's log
    assert executor.job_facts_of(result)["slurm_job_id"] == job_id
    assert time.monotonic() - start < 120


@pytest.mark.slurm
@needs_slurm
def test_ctrl_c_cancels_unfinished_jobs_and_keeps_finished_epochs(tmp_path: Path) -> None:
    from bench.campaign.slurm import Slurm

    executor = Slurm(tmp_path / "jobs", poll_s=0.5)
    long = cell("baseline", epochs=500, n_train=60000, n_test=1000)
    queued = cell("rmsprop", epochs=500, n_train=60000, n_test=1000)  # waits: jobs are exclusive
    done: list[Result] = []

    def interrupt(c: CellSpec, r: EpochRecord) -> None:
        raise KeyboardInterrupt  # as Ctrl-C arriving while the first epochs come in

    with pytest.raises(KeyboardInterrupt):
        executor.run_many([long, queued], lambda c, r: done.append(r), interrupt)
    assert len(done) == 1  # the queued cell had not started: left out, as a local run leaves it
    assert done[0].scenario.name == "baseline" and done[0].history and not done[0].complete
    assert done[0].failed is None
    deadline = time.monotonic() + 60
    ids = [j for _, j in executor.submitted]
    while any(job_state(j) not in ("", "CANCELLED") for j in ids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [job_state(j) in ("", "CANCELLED") for j in ids] == [True, True]


@pytest.mark.slurm
@needs_slurm
def test_a_job_whose_cell_fails_is_failed_with_its_reason(tmp_path: Path) -> None:
    from bench.campaign.slurm import Slurm

    executor = Slurm(tmp_path / "jobs", poll_s=0.5)
    missing = CellSpec("numpy", scenarios.get("baseline"), data=str(tmp_path / "nowhere.npz"))
    result = executor.run(missing)
    assert result.failed and result.failed.startswith("DataError")
    assert "\n" not in result.failed and not result.history
    assert executor.machine_of(result) is not None  # the node reported its facts all the same


@pytest.mark.slurm
@needs_slurm
def test_sbatch_refusal_is_one_line(tmp_path: Path) -> None:
    from bench.campaign.slurm import Slurm
    from bench.errors import ConfigError

    executor = Slurm(tmp_path / "jobs", partition="no-such-partition")
    with pytest.raises(ConfigError, match=r"^sbatch failed for numpy/baseline: .+") as err:
        executor.run_many([cell("baseline")], lambda c, r: None)
    assert "\n" not in str(err.value)


@pytest.mark.slurm
@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/local-slurm.sh needs root")
def test_local_slurm_stop_leaves_nothing_running_and_start_works_again() -> None:
    """Last in this module: it stops the cluster (and starts it again)."""
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.skip(
            f"Slurm here was not started by scripts/local-slurm.sh ({status.stdout.strip()})"
        )
    stop = subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True)
    assert stop.returncode == 0, stop.stderr
    assert live_daemons() == []
    assert subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 3
    again = subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr  # stopping a stopped cluster is fine
    start = subprocess.run(
        ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=300
    )
    assert start.returncode == 0, start.stderr
    assert len(start.stdout.strip().splitlines()) == 1 and "started" in start.stdout
    twice = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True)
    assert twice.returncode == 0 and "already running" in twice.stdout
    assert slurm_reason() is None


# --- without Slurm -------------------------------------------------------------------------------


class StandIn:
    """What write_by_machine asks of the executor, for results made here."""

    def __init__(self) -> None:
        self.facts: list[tuple[Result, dict | None, dict]] = []

    def machine_of(self, result: Result) -> dict | None:
        return next((m for r, m, _ in self.facts if r is result), None)

    def job_facts_of(self, result: Result) -> dict:
        return next((f for r, _, f in self.facts if r is result), {})


def machine(name: str) -> dict:
    return {"node": name, "mlpbench": {"machine_id": f"{name}-8cpu", "logical_cpus": 8}}


def result(name: str, history: bool = True, failed: str | None = None) -> Result:
    epoch = EpochRecord(1, 0.5, 0.3, 0.9, 0.3, 0.9)
    return Result(
        "numpy",
        scenarios.get(name).with_overrides(epochs=1),
        history=(epoch,) if history else (),
        complete=failed is None,
        failed=failed,
        n_train=2000,
        n_test=1000,
    )


def test_results_of_two_node_types_are_two_machines(tmp_path: Path) -> None:
    from bench.campaign.slurm import write_by_machine

    executor = StandIn()
    a, b = result("baseline"), result("rmsprop")
    lost = result("dropout", history=False, failed="slurm job 9 CANCELLED")
    executor.facts = [
        (a, machine("cpu-node"), {"slurm_job_id": "7", "hostname": "c1"}),
        (b, machine("gpu-node"), {"slurm_job_id": "8", "hostname": "g1"}),
        (lost, None, {"slurm_job_id": "9", "hostname": None}),
    ]
    out = tmp_path / "run.json"
    written = write_by_machine(out, [a, b, lost], executor, machine("here"), {})
    assert written == [out, tmp_path / "run.gpu-node-8cpu.json"]
    first, second = (json.loads(p.read_text()) for p in written)
    assert first["benchmarks"][0]["extra_info"]["slurm_job_id"] == "7"
    assert first["benchmarks"][0]["extra_info"]["hostname"] == "c1"
    assert first["mlpbench"]["skipped"][0]["slurm_job_id"] == "9"  # no facts: with the first
    assert second["benchmarks"][0]["extra_info"]["hostname"] == "g1"
    collection = read.collect(written)
    assert collection.problems == []
    assert sorted(collection.machines) == ["cpu-node-8cpu", "gpu-node-8cpu"]
    assert {(c.machine_id, c.scenario) for c in collection.cells} == {
        ("cpu-node-8cpu", "baseline"),
        ("gpu-node-8cpu", "rmsprop"),
        ("cpu-node-8cpu", "dropout"),
    }


def test_no_node_reported_yet_writes_this_machine(tmp_path: Path) -> None:
    from bench.campaign.slurm import write_by_machine

    executor = StandIn()
    lost = result("baseline", history=False, failed="slurm job 3 NODE_FAIL")
    executor.facts = [(lost, None, {"slurm_job_id": "3", "hostname": "n1"})]
    out = tmp_path / "run.json"
    assert write_by_machine(out, [lost], executor, machine("here"), {}) == [out]
    doc = json.loads(out.read_text())
    assert doc["machine_info"]["node"] == "here"
    assert doc["mlpbench"]["skipped"][0]["reason"] == "slurm job 3 NODE_FAIL"


def test_the_module_imports_without_submitit_and_says_what_is_missing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['submitit'] = None\n"
        "from bench.campaign.slurm import Slurm\n"
        "from bench.errors import ConfigError\n"
        "try:\n    Slurm('x')\nexcept ConfigError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "the slurm executor needs submitit: pip install 'mlpbench[slurm]'"
