#!/usr/bin/env bash
# The GPU proof in one command, for a machine with an NVIDIA GPU and no network:
#
#   scripts/gpu-proof.sh [--dry-run] [--out DIR] [--budget SECONDS]
#
#   1. makes the checkout runnable without installing anything (scripts/offline_site.py: the
#      backends' entry points, and the wheels in .gpu-wheels/ — Keras for keras-jax and
#      keras-torch — unpacked into a temporary folder; fetch them beforehand with
#      scripts/fetch-gpu-wheels.sh where there is a network);
#   2. checks the GPU: what CuPy, PyTorch, JAX and Keras will run on (scripts/gpu_check.py;
#      stops here with one line when no backend sees a GPU);
#   3. runs CuPy's unit tests, the engine's math tests on every array module present, the
#      CuPy stand-in tests and the cross-backend agreement suite;
#   4. benchmarks, seed 0: every scenario but the gap ladder's numpy-only rungs on cupy, torch,
#      jax, numpy (the host CPU: the reference column) and keras-jax, baseline on keras-torch,
#      then report_recipe at its own seed on all of them (scripts/publish-results.sh, one pytest
#      run and JSON file per backend, the GPU's first), and writes results/<machine>/: the JSON,
#      tables and plots. Runs that would start after the budget are not started (listed in
#      not-run.txt), so the tables are always written.
#
# --budget: seconds for the whole script (default 480: ≤ 8 minutes on an H100/H200).
# --dry-run: the same steps on a CPU machine, quickly: no GPU needed, the suite's quick variant
#   (1,024 training rows, 2 epochs) on baseline, dropout and report_recipe, the agreement suite's
#   cupy and numpy cases only, results in --out (default: a new temporary folder; never results/).
#   tests/test_gpu_proof.py runs it in CI.
#
# Exit status: 0 when every step passed; 2 when there is no GPU (without --dry-run) or a package
# is missing; 1 when a test or a benchmark run failed (the results of the others are published).
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
out=""
budget=480
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --budget) budget="${2:?--budget needs seconds}"; shift ;;
    *) echo "gpu-proof.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$budget" =~ ^[0-9]+$ ]] || { echo "gpu-proof.sh: --budget takes whole seconds" >&2; exit 2; }
start=$(date +%s)
say() { echo "gpu-proof.sh [$(($(date +%s) - start)) s]: $*"; }

# 1. runnable without installing: `python` (the GPU machine may have only python3), entry points
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! command -v python >/dev/null; then
  mkdir -p "$tmp/bin"
  ln -s "$(command -v python3)" "$tmp/bin/python"
  export PATH="$tmp/bin:$PATH"
fi
python scripts/offline_site.py "$tmp/site" --wheels "${WHEELS:-.gpu-wheels}"
export PYTHONPATH="$tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

# 2. the GPU
if [ "$dry" -eq 1 ]; then
  python scripts/gpu_check.py --dry-run
else
  python scripts/gpu_check.py
fi

# 3. tests: CuPy's, the engine's math on every array module, the stand-in, agreement
failed=0
tests=(tests/test_cupy_backend.py tests/test_cupy_standin.py tests/test_gradients.py
  tests/test_optimizers.py tests/test_dropout.py)
say "CuPy, engine and agreement tests"
python -m pytest -q -p no:cacheprovider "${tests[@]}" || failed=1
if [ "$dry" -eq 1 ]; then
  python -m pytest -q -p no:cacheprovider tests/test_agreement.py -k "cupy or numpy" || failed=1
else
  python -m pytest -q -p no:cacheprovider tests/test_agreement.py || failed=1
fi

# 4. the benchmark and the tables
export BACKENDS="cupy torch jax numpy keras-jax keras-torch"
export DEADLINE=$((start + budget - 30))  # the tables and plots take ~20 s
if [ "$dry" -eq 1 ]; then
  export BENCH_SIZE=quick CELLS="baseline or dropout or report_recipe"
  export RESULTS="${out:-$tmp/results}"
  [ -n "$out" ] || trap - EXIT  # a dry run's results outlive the script
else
  export BENCH_SIZE=full CELLS="(not gap_ and not keras-torch) or (baseline and keras-torch)"
  [ -z "$out" ] || export RESULTS="$out"
fi
say "benchmark: $BACKENDS (budget ${budget} s)"
bash scripts/publish-results.sh 0 || failed=1
say "results: ${RESULTS:-results/$(python -m bench.train.machine)}"
exit "$failed"
