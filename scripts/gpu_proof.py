"""The GPU run as one offline command, in phases that each have a hard time limit.

    python scripts/gpu_proof.py [--return DIR] [--out DIR] [--budget SECONDS] [--dry-run]

(``scripts/gpu-proof.sh`` runs this with the right interpreter; its header is the user's guide.)

A lent GPU machine hands back one output folder, a few files and the end of what was printed,
within a time limit. So, by construction:

- ``--return DIR`` receives exactly three files, whatever happens: ``gpu-proof.log`` (everything
  printed, unbuffered, as it happened), ``versions.txt`` (interpreter, packages, driver) and
  ``results.tar.gz`` (the results folder: JSON, tables, plots, not-run.txt, the phase summary).
  The results are written outside DIR (``--out``, default a temporary folder) and archived at
  the end, also after a failure or a cut.
- Every phase runs in its own process group under a time limit (its own cap, and never past the
  budget less the reserve for the tables); at the limit it gets SIGTERM (the benchmark suite
  saves its finished cells), then SIGKILL 20 s later. A hang costs that phase only.
- The machine facts (GEMM peaks, devices) are measured once, in the GPU check, and every later
  process reads them (``$MLPBENCH_FACTS``), so the budget goes to cells.
- Phases run in order of importance: the baseline on CuPy, PyTorch, JAX and the NumPy reference;
  the tests; every other scenario on the same four; Keras on JAX and on PyTorch; the speed
  variants (CuPy's fused kernel and CUDA graph, PyTorch's CUDA graphs, JAX's whole-epoch scan); the
  report's recipe at its own seed; a batch-size sweep on the same four (scaling/); the tuned
  division: ``mlpbench tune`` for CuPy, PyTorch and JAX into a profile made on the spot, then
  baseline and dropout with it (tuned.json); the tables.

Exit status: 0 all phases passed; 1 a phase failed (the others' results are kept); 2 the machine
cannot run it (no GPU, a missing package, a pytest/pytest-benchmark pair that cannot work); 3 the
budget cut phases short (listed in not-run.txt and the log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GPU_BACKENDS = ("cupy", "torch", "jax", "numpy")  # numpy: the host CPU, the reference column
KERAS = (("keras-jax", "baseline or dropout"), ("keras-torch", "baseline"))
#: Seconds kept for the tables and the archive at the end of the budget.
RESERVE = 60
#: A phase is not started with less than this many seconds left.
MIN_START = 20
KILL_GRACE = 20
#: The speed variants: (name, backend, mlpbench run options, needs a GPU), each on baseline,
#: seed 0; the JSON goes to variants/ (not into the tables: they key cells by backend name).
VARIANTS = (
    ("cupy-fused", "cupy", ["-O", "cupy.fused=true"], True),
    ("cupy-graph", "cupy", ["-O", "cupy.cuda_graph=true"], True),
    ("cupy-graph-fused", "cupy", ["-O", "cupy.cuda_graph=true", "-O", "cupy.fused=true"], True),
    ("torch-graphs", "torch", ["-O", "torch.cuda_graphs=true"], True),
    ("jax-scan", "jax", ["-O", "jax.epoch=scan"], False),
)
#: The scaling sweep (batch size on baseline, 2 epochs, seed 0) and, in a dry run, its slice.
SWEEP = ("--sweep", "batch_size=32,512,8192", "--epochs", "2", "--seed", "0")
DRY_SWEEP = ("--sweep", "batch_size=64,256", "--epochs", "2", "--seed", "0", "--n-train", "2048",
             "--n-test", "500")  # fmt: skip
#: The backends tuned on the spot (a dry run tunes NumPy alone, on a slice).
TUNED = ("cupy", "torch", "jax")
DRY_SLICE = ("--n-train", "1024", "--n-test", "500", "--epochs", "2")
#: The unit tests the GPU run runs (tests/test_NAME.py): CuPy's, PyTorch's and JAX's own (their
#: CUDA tests included) and the engine's math on every array module present.
TEST_FILES = ("cupy_backend", "cupy_standin", "device_time", "torch_backend", "jax_backend",
              "gradients", "optimizers", "dropout")  # fmt: skip
#: Packages whose versions the versions file lists (and the log's first lines).
PACKAGES = (
    "numpy", "pandas", "scipy", "tabulate", "matplotlib", "threadpoolctl", "pytest",
    "pytest-benchmark", "py-cpuinfo", "cupy-cuda13x", "cupy-cuda12x", "torch", "triton", "jax",
    "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "keras", "optree", "namex", "ml-dtypes",
)  # fmt: skip


@dataclass
class Run:
    """The run's state: where things go, the clock, the log, and what each phase did."""

    work: Path
    out: Path | None  # the results folder; None: results/<machine>, known after the GPU check
    returned: Path | None
    budget: int
    dry_run: bool
    staging: Path  # where results are written until they are published into ``out``
    min_start: float = MIN_START
    kill_grace: float = KILL_GRACE
    start: float = field(default_factory=time.monotonic)
    log_file: object = None
    phases: list[dict] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def say(self, text: str) -> None:
        line = f"gpu-proof [{time.monotonic() - self.start:5.0f} s] {text}"
        print(line, flush=True)
        if self.log_file is not None:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def echo(self, line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()
        if self.log_file is not None:
            self.log_file.write(line)
            self.log_file.flush()

    def phase(self, name: str, argv: Sequence[str], cap: float, tail_reserve: bool = True) -> str:
        """Run ``argv`` as phase ``name`` within ``cap`` seconds and the budget; returns its
        outcome: "ok", "failed (exit N)", "cut at N s" or "not started (budget)"."""
        limit = min(cap, self.left() - (RESERVE if tail_reserve else 5))
        if limit < self.min_start:
            return self._record(name, "not started (budget)", 0.0)
        self.say(f"{name}: start (limit {limit:.0f} s)")
        began = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        reader = threading.Thread(target=self._copy, args=(proc,), daemon=True)
        reader.start()
        code = None
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.kill_grace)
        finally:  # whatever happened (a cut, Ctrl-C here): nothing of the phase outlives it
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            reader.join()
        took = time.monotonic() - began
        if code is None:
            return self._record(name, f"cut at {limit:.0f} s", took)
        return self._record(name, "ok" if code == 0 else f"failed (exit {code})", took)

    def _copy(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.echo(line)

    def _record(self, name: str, outcome: str, took: float) -> str:
        self.phases.append({"phase": name, "outcome": outcome, "seconds": round(took, 1)})
        self.say(f"{name}: {outcome} ({took:.0f} s)")
        return outcome


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def versions(run: Run) -> str:
    """The versions file's text: interpreter, platform, packages, the GPU driver's view."""
    import importlib.metadata
    import platform
    import shutil

    lines = [
        f"python {sys.version.split()[0]} ({sys.executable})",
        f"platform {platform.platform()}",
    ]
    for name in PACKAGES:
        try:
            lines.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{name} -")
    if shutil.which("nvidia-smi"):
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                 "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20,
            )  # fmt: skip
            lines += [f"nvidia-smi {row}" for row in smi.stdout.strip().splitlines()]
        except subprocess.TimeoutExpired:
            lines.append("nvidia-smi: no answer in 20 s")
    else:
        lines.append("nvidia-smi: not on PATH")
    return "\n".join(lines) + "\n"


PAIR_TEST = """
def test_pair(benchmark):
    benchmark.pedantic(lambda: None, rounds=2, iterations=1)
"""


def suite(run: Run, name: str, backends: str, cells: str, seed: str | None = "0") -> str:
    """One pytest-benchmark run of ``tests/test_benchmarks.py`` → ``staging/NAME.json``."""
    argv = [PY, "-m", "pytest", "tests/test_benchmarks.py", "-p", "no:cacheprovider", "-q"]
    argv += [] if run.dry_run else ["--bench-full"]
    argv += ["--bench-seeds", seed] if seed is not None else []
    argv += ["--bench-backends", backends, "-k", cells]
    argv += [f"--benchmark-json={run.staging / f'{name}.json'}"]
    return run.phase(f"bench {name}", argv, cap=150 if not run.dry_run else 120)


def variant(run: Run, name: str, backend: str, options: list[str]) -> str:
    """``mlpbench run`` of baseline on ``backend`` with ``options`` → ``variants/NAME.json``."""
    argv = [PY, "-m", "bench", "run", "-b", backend, "-s", "baseline", "--seed", "0"]
    argv += ["--n-train", "1024", "--n-test", "500", "--epochs", "2"] if run.dry_run else []
    argv += [*options, "--no-tables", "--out", str(run.staging / "variants" / f"{name}.json")]
    return run.phase(f"variant {name}", argv, cap=90)


def proof(run: Run) -> int:
    """Every phase in order; the exit status (see the module's docstring). One function, past
    the house's 60 lines on purpose: the phases read top to bottom in the order they spend the
    one device budget, each guarded the same way."""
    run.staging.mkdir(parents=True, exist_ok=True)
    site = run.work / "site"
    wheels = os.environ.get("WHEELS", str(ROOT / ".gpu-wheels"))
    run.env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "MLPBENCH_FACTS": str(run.work / "facts.json"),
    }
    if (
        run.phase(
            "offline site", [PY, "scripts/offline_site.py", str(site), "--wheels", wheels], 60
        )
        != "ok"
    ):
        return 2
    pair = run.work / "pair"
    pair.mkdir(exist_ok=True)
    (pair / "test_pair.py").write_text(PAIR_TEST, encoding="utf-8")
    pair_argv = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(pair),
                 str(pair / "test_pair.py"), f"--benchmark-json={pair / 'pair.json'}"]  # fmt: skip
    if run.phase("pytest + pytest-benchmark pair", pair_argv, 60) != "ok":
        run.say(
            "the machine's pytest and pytest-benchmark cannot run a benchmark together (see "
            "versions.txt): bring pytest-benchmark>=5.3.1 in .gpu-wheels "
            "(scripts/fetch-gpu-wheels.sh)"
        )
        return 2
    check = [PY, "scripts/gpu_check.py", *(["--dry-run"] if run.dry_run else [])]
    if run.phase("GPU check and machine facts", check, 150) != "ok":
        return 2
    facts = json.loads((run.work / "facts.json").read_text(encoding="utf-8"))
    run.out = run.out or ROOT / "results" / facts["machine_id"]
    run.say(f"machine {facts['machine_id']}: results go to {run.out}")
    base = "baseline and not gap_"
    for backend in GPU_BACKENDS:
        suite(run, f"seed0-baseline-{backend}", backend, base)
    tests = [f"tests/test_{name}.py" for name in TEST_FILES]
    test_cap = 120 if not run.dry_run else 240
    run.phase(
        "tests: backends and engine",
        [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        test_cap,
    )
    agreement = ["tests/test_agreement.py", *(["-k", "cupy or numpy"] if run.dry_run else [])]
    run.phase(
        "tests: agreement",
        [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *agreement],
        test_cap,
    )
    others = "not baseline and not gap_" if not run.dry_run else "dropout or report_recipe"
    for backend in GPU_BACKENDS:
        suite(run, f"seed0-scenarios-{backend}", backend, others)
    for backend, cells in KERAS:
        suite(run, f"seed0-{backend}", backend, cells)
    for name, backend, options, gpu_only in VARIANTS:
        if not (gpu_only and run.dry_run):
            variant(run, name, backend, options)
    for backend in [*GPU_BACKENDS, *(k for k, _ in KERAS)]:
        suite(run, f"seed_own-{backend}", backend, "report_recipe", seed=None)
    sweep(run)
    tuned(run)
    return finish(run)


def sweep(run: Run) -> str:
    """How the cost grows: baseline over batch sizes on every GPU backend and the NumPy
    reference → ``scaling/batch.json``."""
    backends = [a for b in (("numpy", "jax") if run.dry_run else GPU_BACKENDS) for a in ("-b", b)]
    argv = [PY, "-m", "bench", "run", *backends, "-s", "baseline"]
    argv += [*(DRY_SWEEP if run.dry_run else SWEEP), "--no-tables"]
    argv += ["--out", str(run.staging / "scaling" / "batch.json")]
    return run.phase("sweep batch_size", argv, cap=150)


def tuned(run: Run) -> str:
    """The tuned division, when time allows: ``mlpbench tune`` per GPU backend on baseline into
    ``profile.toml``, then baseline and dropout with it → ``tuned.json``."""
    profile = run.staging / "profile.toml"
    backends = ("numpy",) if run.dry_run else TUNED
    size = DRY_SLICE if run.dry_run else ("--epochs", "2")
    for backend in backends:
        argv = [PY, "-m", "bench", "tune", "-b", backend, "-s", "baseline", "--rounds", "2"]
        run.phase(f"tune {backend}", [*argv, *size, "--out", str(profile)], cap=120)
    if not profile.is_file():
        run.say("no profile was made (see the tune phases): the tuned division is not run")
        return "not started"
    argv = [PY, "-m", "bench", "run", "--profile", str(profile), "-s", "baseline", "-s", "dropout"]
    argv += [a for b in backends for a in ("-b", b)] + list(DRY_SLICE if run.dry_run else ())
    argv += ["--seed", "0", "--no-tables", "--out", str(run.staging / "tuned.json")]
    return run.phase("tuned division", argv, cap=120)


def finish(run: Run) -> int:
    """Tables from the staged JSON; not-run.txt and phases.json beside; all moved into ``out``,
    replacing an earlier run's JSON there (nothing is replaced when no cell finished)."""
    staging = run.staging
    jsons = sorted(str(p) for p in [*staging.glob("seed*.json"), *staging.glob("tuned.json")])
    if jsons:
        run.phase("tables", [PY, "-m", "bench", "table", *jsons, "--out", str(staging)], 90, False)
    if (staging / "scaling" / "batch.json").is_file():
        table = [PY, "-m", "bench", "table", str(staging / "scaling" / "batch.json")]
        run.phase("scaling tables", [*table, "--out", str(staging / "scaling")], 60, False)
    lines = [f"{p['phase']}: {p['outcome']}" for p in run.phases if p["outcome"] != "ok"]
    (staging / "not-run.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (staging / "phases.json").write_text(json.dumps(run.phases, indent=1), encoding="utf-8")
    if not jsons:
        return 1
    assert run.out is not None
    complete = all(p["outcome"] == "ok" for p in run.phases if p["phase"].startswith("bench "))
    if not complete and run.out.exists() and any(run.out.glob("seed*.json")):
        # a cut or failed run never replaces a complete earlier one: it lands beside it
        run.out = run.out / f"partial-{time.strftime('%Y%m%d-%H%M%S')}"
        run.say(f"phases were cut or failed: results kept apart, in {run.out}")
    run.out.mkdir(parents=True, exist_ok=True)
    earlier = [run.out / n for n in ("variants", "scaling", "tuned.json", "profile.toml")]
    for old in [*run.out.glob("seed*.json"), *earlier]:
        shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    for path in staging.iterdir():
        path.replace(run.out / path.name)
    results = run.out / "results.md"
    if results.is_file():  # the tables name the files they read: where they are, not were staged
        results.write_text(results.read_text().replace(f"{staging}/", f"{run.out}/"))
    run.staging = run.out
    outcomes = [p["outcome"] for p in run.phases]
    if any(o.startswith("failed") for o in outcomes):
        return 1
    return 3 if any(o.startswith(("cut", "not started")) for o in outcomes) else 0


def archive(run: Run) -> None:
    """``results.tar.gz`` of the results folder (or of what was staged, when the run stopped
    before publishing) into the returned folder."""
    assert run.returned is not None
    folder = run.staging
    with tarfile.open(run.returned / "results.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname=run.out.name if run.out else "unpublished")
    run.say(f"returned: {', '.join(sorted(p.name for p in run.returned.iterdir()))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--return", dest="returned", type=Path, metavar="DIR",
                        help="the folder a lent machine hands back (3 files)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="results folder (default: results/<machine> "
                        "without --return, else a temporary folder outside DIR)")  # fmt: skip
    parser.add_argument("--budget", type=int, default=480, help="seconds for the whole run")
    parser.add_argument("--dry-run", action="store_true", help="a CPU machine, quick data")
    args = parser.parse_args(argv)
    if args.budget < 2 * RESERVE:
        parser.error(f"--budget must be at least {2 * RESERVE} seconds")
    work = Path(tempfile.mkdtemp(prefix="mlpbench-gpu-"))
    out = args.out.resolve() if args.out else None
    if out is None and (args.returned or args.dry_run):
        out = work / "results"  # never the published tree for a dry run or a returned run
    if args.returned is not None:
        args.returned = args.returned.resolve()
        args.returned.mkdir(parents=True, exist_ok=True)
        if out is not None and args.returned in [out, *out.parents]:
            parser.error("--out must lie outside the --return folder (only 3 files go back)")
    run = Run(work, out, args.returned, args.budget, args.dry_run, work / "staging")
    if args.returned is not None:
        run.log_file = open(args.returned / "gpu-proof.log", "w", encoding="utf-8")  # noqa: SIM115
        (args.returned / "versions.txt").write_text(versions(run), encoding="utf-8")
    run.say(f"budget {args.budget} s; work {work}; {'dry run' if args.dry_run else 'GPU run'}")
    code = 2
    try:
        code = proof(run)
    finally:
        run.say(f"results: {run.staging} (exit {code})")
        if args.returned is not None:
            run.staging.mkdir(parents=True, exist_ok=True)
            archive(run)
            run.log_file.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
