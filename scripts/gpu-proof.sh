#!/usr/bin/env bash
# The GPU proof in one command, for a machine with an NVIDIA GPU and no network:
#
#   scripts/gpu-proof.sh [--return DIR] [--out DIR] [--budget SECONDS] [--dry-run]
#
# On a lent machine that hands back one folder ($OUT) within a time limit:
#
#   bash scripts/gpu-proof.sh --return "$OUT" --budget 450      (give the command ≥ 520 s)
#
# Phases, in order of importance, each in its own process group under a hard time limit (its own
# cap, and never past the budget less 60 s kept for the tables): the offline site (mlpbench's
# entry points, and the wheels in .gpu-wheels/ — Keras 3.15.1 and what it needs, and a
# pytest-benchmark that runs under the machine's pytest — fetched beforehand by
# scripts/fetch-gpu-wheels.sh); a check that the machine's pytest and pytest-benchmark can run
# a benchmark together; the GPU check, which measures the machine facts (devices, GEMM peaks)
# ONCE for every later process; baseline on cupy, torch, jax and numpy (the host CPU: the
# reference column); the unit tests and the agreement suite; every other scenario on the same
# four; keras-jax (baseline, dropout) and keras-torch (baseline); the speed variants (CuPy fused
# and CUDA graph, torch CUDA graphs, JAX per-step jit; `mlpbench run` JSON in variants/); the
# report's recipe at its own seed; the tables and plots.
#
# --return DIR: exactly three files land in DIR, also after a failure or a cut: gpu-proof.log
#   (everything printed, unbuffered), versions.txt (interpreter, packages, driver) and
#   results.tar.gz (the results folder). Results are written outside DIR.
# --out DIR: the results folder (default: results/<machine>/, or a temporary folder with
#   --return or --dry-run).
# --budget: seconds for the whole run (default 480).
# --dry-run: the same phases on a CPU machine with the suite's quick data (tests/test_gpu_proof.py
#   runs it in CI).
#
# Exit status: 0 every phase passed; 1 a phase failed (the others' results are kept); 2 the
# machine cannot run it (no GPU, a missing package, a pytest/pytest-benchmark pair that cannot
# work together); 3 the budget cut phases short (listed in not-run.txt).
set -euo pipefail
interpreter="$(command -v "${PYTHON:-python3}")" || {
  echo "gpu-proof.sh: no ${PYTHON:-python3} on PATH (set PYTHON to the interpreter to use)" >&2
  exit 2
}
exec "$interpreter" -u "$(dirname "$0")/gpu_proof.py" "$@"
