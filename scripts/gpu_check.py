"""What each GPU backend will run on here, and whether that is a GPU (gpu-proof.sh's first step).

    python scripts/gpu_check.py [--dry-run]

Prints one line per backend (CuPy, PyTorch, JAX, Keras on JAX/PyTorch): the device it would use,
or why it cannot run, each asked in its own process (``bench.registry.probe``); then the GPUs as
the harness records them (name, memory, measured GEMM peaks) and ``gpu_check: machine_id NAME``.
The facts are ``bench.campaign.machine``'s, measured here once: with ``$MLPBENCH_FACTS`` set, they
are written there for the run's later processes. Exits 2 with one line when no backend sees a
usable NVIDIA GPU, unless ``--dry-run`` (a CPU machine rehearsing the GPU run: the GPU backends
then run on the CPU or are skipped).
"""

from __future__ import annotations

import argparse
import json
import sys

from bench import registry
from bench.campaign.machine import mlpbench_facts

GPU_BACKENDS = ("cupy", "torch", "jax", "keras-jax", "keras-torch")


def device_of(found: registry.Probe) -> str:
    """'gpu', 'cpu', or 'unavailable: <reason>' for a backend's probe (its own process)."""
    return f"unavailable: {found.reason}" if found.reason else str(found.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="a CPU machine: no GPU needed")
    args = parser.parse_args(argv)
    present = [n for n in GPU_BACKENDS if n in registry.names()]
    devices = {n: device_of(p) for n, p in registry.probe_all(present).items()}
    devices.update({n: "unavailable: not installed" for n in GPU_BACKENDS if n not in present})
    for name, device in devices.items():
        print(f"gpu_check: {name:<12} {device}")
    facts = mlpbench_facts()
    for gpu in facts.get("gpus", []):
        print(f"gpu_check: GPU {json.dumps(gpu, sort_keys=True)}")
    for key, problem in facts.items():
        if key.endswith("_error"):  # a backend whose facts failed (e.g. its GEMM peak)
            print(f"gpu_check: WARNING {key}: {problem}")
    print(f"gpu_check: machine_id {facts['machine_id']}")
    if "gpu" in devices.values():
        if not any("gemm_peak_gflops" in g for g in facts.get("gpus", [])):
            print("gpu_check: WARNING no GPU GEMM peak measured: GPU cells get no % of peak")
        return 0
    if args.dry_run:
        print("gpu_check: dry run: no GPU here, the GPU backends run on the CPU or are skipped")
        return 0
    print(
        "gpu_check: no backend sees a usable NVIDIA GPU (see the lines above); on a machine "
        "without one, rehearse with scripts/gpu-proof.sh --dry-run",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
