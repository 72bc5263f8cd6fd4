"""Facts about the machine that decide how fast a benchmark runs, recorded beside every result.

``machine_info()`` extends pytest-benchmark's own machine_info (node, CPU via py-cpuinfo, Python)
with what it lacks: library versions, environment variables that change speed, the measured GEMM
peak, and what only the backends know (NumPy's BLAS and its threads, the usable GPUs), asked of
them through ``bench.registry.backend_facts``. The pytest-benchmark suite adds the same facts
through its ``pytest_benchmark_update_machine_info`` hook, so both kinds of JSON carry identical
machine facts.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench import registry
from bench.campaign.peaks import gemm_peaks, memory_bandwidth_gbs

#: A JSON file of ``mlpbench_facts()``, measured once and read by every later process of one run
#: (``scripts/gpu_proof.py`` sets it): the GEMM peaks and the frameworks' device probes are slow
#: on a GPU machine, and a run of many processes should spend that time once.
FACTS_FILE = "MLPBENCH_FACTS"

#: Environment variables that change speed or numerics; recorded whenever set.
SPEED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "NVIDIA_TF32_OVERRIDE",
    "CUPY_TF32",
    "CUDA_VISIBLE_DEVICES",
)
PACKAGES = (
    "numpy",
    "pandas",
    "threadpoolctl",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "torch",
    "jax",
    "jaxlib",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that matter here (without importing them)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id(cpu: str | None = None, gpus: list[dict[str, Any]] | None = None) -> str:
    """A short folder-safe name for results/<machine>/: the first usable GPU's name if any, else
    the CPU's."""
    gpus = registry.backend_facts().get("gpus", []) if gpus is None else gpus
    name = gpus[0].get("name", "gpu") if gpus else (cpu or cpu_model())
    name = re.sub(r"\((R|TM)\)|CPU|Processor|\d+-Core|@.*$", " ", name, flags=re.IGNORECASE)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"{slug or 'machine'}-{os.cpu_count()}cpu"


#: The speed environment as the process was started, before any backend could set a variable of
#: its own: a run records what the user set, not what the harness did.
USER_ENV = {k: os.environ[k] for k in SPEED_ENV if k in os.environ}


@functools.cache
def mlpbench_facts() -> dict[str, Any]:
    """The facts pytest-benchmark does not collect, under one key; measured once per process,
    or read from the file ``$MLPBENCH_FACTS`` names when it exists (written there when it does
    not, so the run's later processes read it)."""
    path = os.environ.get(FACTS_FILE)
    if path and Path(path).is_file():
        return json.loads(Path(path).read_text(encoding="utf-8"))
    started = time.perf_counter()
    facts = measure_facts()
    print(
        f"mlpbench: machine facts measured in {time.perf_counter() - started:.1f} s "
        f"(GEMM peaks: {'GPU and ' if facts['gpus'] else ''}host CPU)",
        file=sys.stderr,
    )
    if path:
        write_facts(Path(path), facts)
    return facts


def write_facts(path: Path, facts: dict[str, Any]) -> Path:
    """``facts`` as JSON at ``path``, atomically (a process reading it never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)
    return path


def measure_facts() -> dict[str, Any]:
    """The facts, measured now: the backends' (their devices, GEMM peaks) and the host's."""
    cpu = cpu_model()
    known = registry.backend_facts()
    gpus = known.pop("gpus", [])
    return {
        "machine_id": machine_id(cpu, gpus),
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "blas": known.pop("blas", []),
        "packages": package_versions(),
        "env": dict(USER_ENV),
        "gpus": gpus,
        "gemm_peak_gflops": gemm_peaks(),
        "memory_bandwidth_gbs": memory_bandwidth_gbs(),
        **known,
    }


def machine_info() -> dict[str, Any]:
    """pytest-benchmark's machine_info plus ``mlpbench`` facts (same shape as its JSON)."""
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    info = pytest_benchmark_generate_machine_info()
    info["mlpbench"] = mlpbench_facts()
    return info


if __name__ == "__main__":  # ``python -m bench.campaign.machine``: the results folder name
    print(machine_id())
