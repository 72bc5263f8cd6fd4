"""scripts/gpu-proof.sh, the GPU run's one command, rehearsed on this CPU machine (``--dry-run``).

The dry run is the real script end to end, as a lent machine would be called (``--return DIR``)
— offline site, the pytest/pytest-benchmark pair, GPU check and facts, the CuPy/engine/agreement
tests, one pytest-benchmark run per backend and phase, a speed variant, tables and plots, the
archive — on the suite's quick data. What
only a GPU can show (CuPy's speed and numerics, device times, the GPU's peak) it cannot: the CuPy
cells are skipped here, with their reason.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from bench import registry

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu-proof.sh"


def has_gpu() -> bool:
    """Whether CuPy or PyTorch sees a CUDA device here."""
    if registry.unavailable_reason("cupy") is None:
        return True
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_script(args: list[str], env: dict[str, str] | None = None, timeout: float = 600):
    """A script from scripts/ under bash, with this interpreter first on PATH (as `python`)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        ["bash", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": path, **(env or {})},
        timeout=timeout,
    )


def load_script_module(name: str):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_dry_run_returns_three_files_within_its_budget_with_every_phase(tmp_path):
    """The lent machine's call, rehearsed: everything comes back as 3 files (≤ 8 allowed), the
    phases finish inside the budget, the facts are measured once for all ~15 processes."""
    returned = tmp_path / "OUT"
    budget = 540  # the lent machine's call uses the same
    began = time.monotonic()
    proc = run_script(
        [str(SCRIPT), "--dry-run", "--return", str(returned), "--budget", str(budget)]
    )
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert took < budget
    assert sorted(p.name for p in returned.iterdir()) == [
        "gpu-proof.log",
        "results.tar.gz",
        "versions.txt",
    ]
    log = (returned / "gpu-proof.log").read_text()
    assert log == proc.stdout  # the whole log, as printed
    assert log.count("mlpbench: machine facts measured") == 1
    versions = (returned / "versions.txt").read_text()
    assert f"python {sys.version.split()[0]}" in versions and "pytest-benchmark " in versions
    with tarfile.open(returned / "results.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (out,) = (tmp_path / "unpacked").iterdir()
    phases = json.loads((out / "phases.json").read_text())
    assert all(p["outcome"] == "ok" for p in phases), phases
    assert sum(p["seconds"] for p in phases) < budget
    assert (out / "not-run.txt").read_text() == ""
    ran = {}
    runnable = [n for n in ("numpy", "torch", "jax") if registry.unavailable_reason(n) is None]
    for name in runnable:
        cells = []
        for part in ("baseline", "scenarios"):
            doc = json.loads((out / f"seed0-{part}-{name}.json").read_text())
            cells += [b["params"]["scenario"] for b in doc["benchmarks"]]
            assert {b["params"]["backend"] for b in doc["benchmarks"]} == {name}
            assert doc["machine_info"]["mlpbench"]["machine_id"]
        ran[name] = set(cells)
    assert ran["numpy"] == {"baseline", "dropout", "report_recipe"}
    for name in runnable:
        own = json.loads((out / f"seed_own-{name}.json").read_text())
        assert {b["params"]["scenario"] for b in own["benchmarks"]} == {"report_recipe"}
        assert {b["params"]["backend"] for b in own["benchmarks"]} == {name}
    if "jax" in runnable:
        variant = json.loads((out / "variants" / "jax-scan.json").read_text())
        assert variant["benchmarks"][0]["extra_info"]["settings"]["epoch"] == "scan"
    sweep = json.loads((out / "scaling" / "batch.json").read_text())
    points = {(b["params"]["backend"], b["params"]["scenario"]) for b in sweep["benchmarks"]}
    swept = [n for n in ("numpy", "jax") if n in runnable]
    assert points == {(n, f"baseline[batch_size={size}]") for n in swept for size in (64, 256)}
    assert "### How cost grows (sweeps)" in (out / "scaling" / "results.md").read_text()
    assert "[numpy]" in (out / "profile.toml").read_text()
    tuned = json.loads((out / "tuned.json").read_text())["benchmarks"]
    assert {(b["params"]["scenario"], b["extra_info"]["division"]) for b in tuned} == {
        ("baseline", "tuned"),
        ("dropout", "tuned"),
    }
    results = (out / "results.md").read_text()
    assert "numpy (tuned)" in results
    for name in runnable:
        assert any(ln.startswith(f"| {name} ") for ln in results.splitlines())
    assert ".staging" not in results and "/staging/" not in results
    for plot in ("accuracy_vs_time.png", "speed.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


def test_without_a_gpu_the_real_run_stops_at_the_check_and_still_returns_its_files(tmp_path):
    if has_gpu():
        pytest.skip("this machine has a GPU: the check passes")
    returned = tmp_path / "OUT"
    proc = run_script([str(SCRIPT), "--return", str(returned)], timeout=180)
    assert proc.returncode == 2
    assert "gpu_check: no backend sees a usable NVIDIA GPU" in proc.stdout
    assert "--dry-run" in proc.stdout
    assert sorted(p.name for p in returned.iterdir()) == [
        "gpu-proof.log",
        "results.tar.gz",
        "versions.txt",
    ]
    with tarfile.open(returned / "results.tar.gz") as tar:
        assert "unpublished/not-run.txt" not in tar.getnames()  # stopped before any cell


def test_a_hanging_phase_is_cut_at_its_limit_and_a_deaf_one_killed(tmp_path):
    gpu_proof = load_script_module("gpu_proof")
    run = gpu_proof.Run(
        tmp_path, None, None, budget=1000, dry_run=True, staging=tmp_path / "s", min_start=0.5
    )
    run.env = dict(os.environ)
    run.kill_grace = 2
    sleep = "import time; print('started', flush=True); time.sleep(60)"
    began = time.monotonic()
    assert run.phase("hang", [sys.executable, "-c", sleep], cap=1) == "cut at 1 s"
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + sleep
    assert run.phase("deaf", [sys.executable, "-c", deaf], cap=1) == "cut at 1 s"
    assert time.monotonic() - began < 15
    assert run.phase("fails", [sys.executable, "-c", "raise SystemExit(4)"], cap=5) == (
        "failed (exit 4)"
    )
    run.budget = 0  # no time left: nothing more starts
    assert run.phase("late", [sys.executable, "-c", "pass"], cap=5) == "not started (budget)"
    assert [p["outcome"] for p in run.phases][-1] == "not started (budget)"


def test_bad_arguments_are_one_line_errors(tmp_path):
    proc = run_script([str(SCRIPT), "--budget", "soon"], timeout=60)
    assert proc.returncode == 2 and "--budget: invalid int value: 'soon'" in proc.stderr
    proc = run_script([str(SCRIPT), "--fast"], timeout=60)
    assert proc.returncode == 2 and "unrecognized arguments: --fast" in proc.stderr
    inside = tmp_path / "OUT"
    proc = run_script([str(SCRIPT), "--return", str(inside), "--out", str(inside / "r")])
    assert proc.returncode == 2 and "--out must lie outside the --return folder" in proc.stderr


def test_offline_site_declares_the_checkouts_backends(tmp_path):
    offline_site = load_script_module("offline_site")
    offline_site.write_entry_points(tmp_path)
    (info,) = tmp_path.glob("mlpbench-*.dist-info")
    declared = (info / "entry_points.txt").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, target in project["entry-points"]["mlpbench.backends"].items():
        assert f"{name} = {target}\n" in declared
    code = (
        "import importlib.metadata as m; "
        "print(sorted(e.name for e in m.distribution('mlpbench').entry_points))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    shown = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert shown.strip() == str(sorted(project["entry-points"]["mlpbench.backends"]))


def test_offline_site_unpacks_a_missing_or_newer_wheel_and_keeps_installed_ones(tmp_path):
    offline_site = load_script_module("offline_site")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "mlpbench_probe_pkg-1.0-py3-none-any.whl", "w") as whl:
        whl.writestr("mlpbench_probe_pkg/__init__.py", "VALUE = 42\n")
        whl.writestr("mlpbench_probe_pkg-1.0.dist-info/METADATA", "Name: mlpbench-probe-pkg\n")
    with zipfile.ZipFile(wheels / "numpy-0.0-py3-none-any.whl", "w") as whl:
        whl.writestr("numpy/__init__.py", "raise ImportError('the wrong numpy')\n")
    with zipfile.ZipFile(wheels / "pytest_benchmark-999.0-py3-none-any.whl", "w") as whl:
        whl.writestr("pytest_benchmark_probe.txt", "newer\n")
    site = tmp_path / "site"
    done = offline_site.unpack_wheels(wheels, site)
    have = importlib.metadata.version("numpy")
    benchmark = importlib.metadata.version("pytest-benchmark")
    assert done == [
        "unpacked mlpbench_probe_pkg-1.0-py3-none-any.whl",
        f"kept the installed numpy {have} (numpy-0.0-py3-none-any.whl not needed)",
        f"unpacked pytest_benchmark-999.0-py3-none-any.whl (over the installed {benchmark})",
    ]
    assert (site / "mlpbench_probe_pkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert not (site / "numpy").exists()
    assert (site / "pytest_benchmark_probe.txt").read_text() == "newer\n"


def test_a_suite_run_stopped_by_sigterm_keeps_the_cells_it_finished(tmp_path):
    """What the deadline does to a run (``timeout --signal=TERM``), with SIGINT ignored as in a
    shell's background job: the cells done are saved, the one in progress is not complete. The
    machine facts were measured before the first cell (written to ``$MLPBENCH_FACTS`` by then),
    so the stop never waits for them, however long they take."""
    import signal

    out = tmp_path / "cut.json"
    facts = tmp_path / "facts.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_benchmarks.py",
            "--bench-full",
            "-v",
            "-p",
            "no:cacheprovider",
            "--bench-backends",
            "numpy",
            "-k",
            "baseline or he_init",
            f"--benchmark-json={out}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        env={**os.environ, "MLPBENCH_FACTS": str(facts)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the first cell (baseline, ~5 epochs) has passed: stop the second
        if "PASSED" in line:
            assert facts.is_file()  # measured and written before the cells
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, rest  # pytest's "interrupted"
    assert "KeyboardInterrupt: signal SIGTERM" in rest
    saved = json.loads(out.read_text())
    done = saved["benchmarks"]
    assert [b["params"]["scenario"] for b in done if "history" in b["extra_info"]] == ["baseline"]
    assert saved["machine_info"]["mlpbench"] == json.loads(facts.read_text())
    assert rest.count("mlpbench: machine facts measured") <= 1
