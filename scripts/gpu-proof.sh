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
#   3. runs CuPy's and PyTorch's unit tests (their CUDA tests included), the engine's math tests
#      on every array module present, the CuPy stand-in tests and the cross-backend agreement
#      suite;
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
# is missing; 1 when a test or a benchmark run failed (the results of the others are published);
# 3 when the budget cut tests or benchmark runs short (listed in the output and in not-run.txt).
# Each test group may take a quarter of the budget; `timeout` stops what overruns (the suite takes
# its SIGTERM as Ctrl-C: pytest-benchmark keeps the cells done).
set -euo pipefail
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
[ -z "$out" ] || out="$(realpath -m "$out")"  # before the cd: relative to the caller
cd "$(dirname "$0")/.."
start=$(date +%s)
say() { echo "gpu-proof.sh [$(($(date +%s) - start)) s]: $*"; }

# 1. runnable without installing: `python` is PYTHON (default python3: the GPU machine may have
#    no `python`, or another one), the checkout and its entry points on PYTHONPATH
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
interpreter="$(command -v "${PYTHON:-python3}")" || {
  echo "gpu-proof.sh: no ${PYTHON:-python3} on PATH (set PYTHON to the interpreter to use)" >&2
  exit 2
}
# a wrapper, not a link: Python finds its virtual environment from the path it was started by
printf '#!/bin/sh\nexec "%s" "$@"\n' "$interpreter" >"$tmp/bin/python"
chmod +x "$tmp/bin/python"
export PATH="$tmp/bin:$PATH"
python scripts/offline_site.py "$tmp/site" --wheels "${WHEELS:-.gpu-wheels}"
export PYTHONPATH="$tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

# 2. the GPU
if [ "$dry" -eq 1 ]; then
  python scripts/gpu_check.py --dry-run
else
  python scripts/gpu_check.py
fi

# 3. tests: CuPy's, the engine's math on every array module, the stand-in, agreement; each file
#    group gets a quarter of the budget at most, so the benchmark always gets its share
failed=0
cut=0
share=$((budget / 4))
tests() {  # tests PYTEST-ARGS...: run them within $share seconds
  local code=0
  timeout --signal=TERM --kill-after=10 "$share" python -m pytest -q -p no:cacheprovider "$@" \
    || code=$?
  if [ "$code" -eq 124 ]; then
    say "tests stopped after ${share} s (the budget's quarter): $*"
    cut=1
  elif [ "$code" -ne 0 ]; then
    failed=1
  fi
}
say "CuPy, engine and agreement tests"
tests tests/test_cupy_backend.py tests/test_cupy_standin.py tests/test_device_time.py \
  tests/test_torch_backend.py tests/test_gradients.py tests/test_optimizers.py tests/test_dropout.py
if [ "$dry" -eq 1 ]; then
  tests tests/test_agreement.py -k "cupy or numpy"
else
  tests tests/test_agreement.py
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
  export RESULTS="${out:-results/$(python -m bench.train.machine)}"
fi
say "benchmark: $BACKENDS (budget ${budget} s) → $RESULTS"
code=0
bash scripts/publish-results.sh 0 || code=$?
case "$code" in
  0) ;;
  3) cut=1 ;;
  *) failed=1 ;;
esac
say "results: $RESULTS"
[ "$failed" -eq 0 ] || exit 1
[ "$cut" -eq 0 ] || exit 3
