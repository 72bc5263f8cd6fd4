"""scripts/gpu-proof.sh, the GPU run's one command, rehearsed on this CPU machine (``--dry-run``).

The dry run is the real script end to end — offline site, GPU check, the CuPy/engine/agreement
tests, one pytest-benchmark run per backend, tables and plots — on the suite's quick data. What
only a GPU can show (CuPy's speed and numerics, device times, the GPU's peak) it cannot: the CuPy
cells are skipped here, with their reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_dry_run_publishes_json_tables_and_plots_of_every_backend_it_can_run(tmp_path):
    out = tmp_path / "results"
    results_before = sorted(p.name for p in (ROOT / "results").iterdir())
    proc = run_script([str(SCRIPT), "--dry-run", "--out", str(out), "--budget", "400"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gpu_check: cupy" in proc.stdout and "gpu_check: torch" in proc.stdout
    ran = {}
    runnable = [n for n in ("numpy", "torch", "jax") if registry.unavailable_reason(n) is None]
    for name in runnable:
        doc = json.loads((out / f"seed0-{name}.json").read_text())
        ran[name] = {b["params"]["scenario"] for b in doc["benchmarks"]}
        assert {b["params"]["backend"] for b in doc["benchmarks"]} == {name}
        assert doc["machine_info"]["mlpbench"]["machine_id"]
    assert ran["numpy"] == {"baseline", "dropout", "report_recipe"}
    own = json.loads((out / "seed_own.json").read_text())
    assert {b["params"]["scenario"] for b in own["benchmarks"]} == {"report_recipe"}
    assert set(runnable) <= {b["params"]["backend"] for b in own["benchmarks"]}
    results = (out / "results.md").read_text()
    for name in runnable:
        assert f"{name} s/epoch" in results
    assert str(out) in results and ".staging" not in results
    for plot in ("accuracy_vs_time.png", "speed.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert not (out / ".staging").exists()
    # a dry run never writes into the published results
    assert sorted(p.name for p in (ROOT / "results").iterdir()) == results_before


def test_without_a_gpu_the_real_run_stops_at_the_check_with_one_line(tmp_path):
    if has_gpu():
        pytest.skip("this machine has a GPU: the check passes")
    proc = run_script([str(SCRIPT), "--out", str(tmp_path / "r")], timeout=120)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("gpu_check: no backend sees a usable NVIDIA GPU")
    )
    assert "--dry-run" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_bad_arguments_are_one_line_errors():
    proc = run_script([str(SCRIPT), "--budget", "soon"], timeout=60)
    assert (proc.returncode, proc.stderr) == (2, "gpu-proof.sh: --budget takes whole seconds\n")
    proc = run_script([str(SCRIPT), "--fast"], timeout=60)
    assert proc.returncode == 2 and "unknown argument '--fast'" in proc.stderr


def test_runs_past_the_deadline_are_listed_and_published_results_survive(tmp_path):
    published = tmp_path / "results"
    published.mkdir()
    (published / "seed0.json").write_text("{}")
    proc = run_script(
        ["scripts/publish-results.sh", "0"],
        env={
            "RESULTS": str(published),
            "BACKENDS": "numpy jax",
            "BENCH_SIZE": "quick",
            "DEADLINE": str(int(time.time()) - 1),
        },
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "publish-results.sh: no run finished"
    not_run = (published / ".staging" / "not-run.txt").read_text().splitlines()
    assert not_run == [
        f"publish-results.sh: past the deadline, not run: {name}"
        for name in ("seed0-numpy", "seed0-jax", "seed_own")
    ]
    assert (published / "seed0.json").read_text() == "{}"


def test_offline_site_declares_the_checkouts_backends(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import offline_site
    finally:
        sys.path.remove(str(ROOT / "scripts"))
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


def test_offline_site_unpacks_a_missing_wheel_and_keeps_installed_ones(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import offline_site
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "mlpbench_probe_pkg-1.0-py3-none-any.whl", "w") as whl:
        whl.writestr("mlpbench_probe_pkg/__init__.py", "VALUE = 42\n")
        whl.writestr("mlpbench_probe_pkg-1.0.dist-info/METADATA", "Name: mlpbench-probe-pkg\n")
    with zipfile.ZipFile(wheels / "numpy-0.0-py3-none-any.whl", "w") as whl:
        whl.writestr("numpy/__init__.py", "raise ImportError('the wrong numpy')\n")
    site = tmp_path / "site"
    done = offline_site.unpack_wheels(wheels, site)
    assert done == [
        "unpacked mlpbench_probe_pkg-1.0-py3-none-any.whl",
        "kept the installed numpy (numpy-0.0-py3-none-any.whl not needed)",
    ]
    assert (site / "mlpbench_probe_pkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert not (site / "numpy").exists()


def test_a_suite_run_stopped_by_sigterm_keeps_the_cells_it_finished(tmp_path):
    """What the deadline does to a run (``timeout --signal=TERM``), with SIGINT ignored as in a
    shell's background job: the cells done are saved, the one in progress is not complete."""
    import signal

    out = tmp_path / "cut.json"
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
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the first cell (baseline, ~5 epochs) has passed: stop the second
        if "PASSED" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, rest  # pytest's "interrupted"
    assert "KeyboardInterrupt: signal SIGTERM" in rest
    done = json.loads(out.read_text())["benchmarks"]
    assert [b["params"]["scenario"] for b in done if "history" in b["extra_info"]] == ["baseline"]
