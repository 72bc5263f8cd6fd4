#!/usr/bin/env bash
# Publish this machine's benchmark results: the pytest-benchmark suite at full size, one pytest
# run (one JSON file) per seed, then the tables and plots, all in results/<machine>/.
#
#   scripts/publish-results.sh [SEED ...]     (default: 0 1 2 3 4; run by `tox -e bench-cpu`)
#
# Cells published per seed (CELLS, a pytest -k expression):
#   - every scenario but the gap ladder's rungs, on every backend but keras-torch;
#   - the gap ladder's rungs (gap_*) on numpy only: the ladder attributes the report's gap to
#     its recipe, which is the same on every backend (report_recipe and baseline, its two ends,
#     run everywhere);
#   - baseline on keras-torch (Keras' PyTorch trainer runs eagerly on the CPU, ~5 s an epoch at
#     batch 32 here: every scenario would add ~6 min per seed).
# And once more, report_recipe at its own seed (42: the student report's np.random.seed(42)),
# on every backend (seed_own-BACKEND.json), so the published tables hold the report's exact run.
#
# Everything is written to results/<machine>/.staging first, tables included, and replaces the
# published files only when every run has finished: an interrupted or failed run never destroys
# published results.
#
# Environment (scripts/gpu-proof.sh sets them; the defaults are the CPU publication's):
#   CELLS      the pytest -k expression above
#   BENCH_SIZE full (default: full MNIST, each scenario's epochs) or quick (the suite's quick
#              variant: 1024 training rows, 2 epochs; for dry runs)
#   RESULTS    the folder to publish into (default: results/<machine>)
#   BACKENDS   backend names: one pytest run and JSON file per seed and backend, in this order
#              (seedN-BACKEND.json), so a backend that fails or is cut short by DEADLINE leaves the
#              others' results (default: every installed backend)
#   DEADLINE   seconds since the epoch: a run that would start with under 30 s left is not
#              started, and a run still going then is stopped (SIGTERM, which the suite takes as
#              Ctrl-C: pytest-benchmark saves the cells done); both are listed in not-run.txt
#              beside the results, and the script then exits 3 (1 when a run failed)
set -euo pipefail
shopt -s nullglob
seeds=("${@}")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2 3 4)
CELLS="${CELLS:-(not gap_ and not keras-torch) or (gap_ and numpy) or (baseline and keras-torch)}"
# one pytest process per backend and seed: frameworks never share a process (TensorFlow and
# PyTorch's triton crash together), and a crash costs one backend's file
read -r -a backends <<<"${BACKENDS:-$(python -c 'from bench import registry; print(*registry.names())')}"
size=()
case "${BENCH_SIZE:-full}" in
  full) size=(--bench-full) ;;
  quick) ;;
  *) echo "publish-results.sh: BENCH_SIZE must be full or quick, not '$BENCH_SIZE'" >&2; exit 2 ;;
esac
out="${RESULTS:-results/$(python -m bench.train.machine)}"
stage="$out/.staging"
rm -rf "$stage"
mkdir -p "$stage"
suite() {  # suite JSON-NAME PYTEST-ARGS...
  local name="$1" left=()
  shift
  if [ -n "${DEADLINE:-}" ]; then
    local seconds=$((DEADLINE - $(date +%s)))
    if [ "$seconds" -lt 30 ]; then
      echo "publish-results.sh: past the deadline, not run: $name" | tee -a "$stage/not-run.txt" >&2
      cut=1
      return 0
    fi
    left=(timeout --signal=TERM --kill-after=20 "$seconds")
  fi
  local code=0
  "${left[@]}" python -m pytest tests/test_benchmarks.py "${size[@]}" -p no:cacheprovider "$@" \
    --benchmark-json="$stage/$name.json" || code=$?
  if [ "$code" -eq 5 ]; then  # CELLS selects none of this run's cells
    rm -f "$stage/$name.json"
    return 0
  fi
  if [ "${#left[@]}" -gt 0 ] && [ "$code" -eq 124 ]; then
    echo "publish-results.sh: stopped at the deadline, cells not done: $name" \
      | tee -a "$stage/not-run.txt" >&2
    cut=1
    return 0
  fi
  if [ "$code" -ne 0 ]; then  # one backend's failure: go on, say so
    echo "publish-results.sh: $name exited with $code" | tee -a "$stage/not-run.txt" >&2
    failures=$((failures + 1))
    return 0
  fi
  return "$code"
}
failures=0
cut=0
for seed in "${seeds[@]}"; do
  for backend in "${backends[@]}"; do
    suite "seed$seed-$backend" --bench-seeds "$seed" -k "$CELLS" --bench-backends "$backend"
  done
done
for backend in "${backends[@]}"; do
  suite "seed_own-$backend" -k "report_recipe" --bench-backends "$backend"
done
jsons=("$stage"/seed*.json)
[ ${#jsons[@]} -gt 0 ] || { echo "publish-results.sh: no run finished" >&2; exit 1; }
python -m bench table "${jsons[@]}" --out "$stage"
old=("$out"/seed*.json "$out"/not-run.txt)
rm -f "${old[@]}"
for f in "$stage"/*; do mv -f "$f" "$out"/; done
rmdir "$stage"
# the tables name the files they read: say where they are published, not where they were staged
sed -i "s#$stage/#$out/#g" "$out/results.md"
[ "$failures" -eq 0 ] || exit 1
[ "$cut" -eq 0 ] || exit 3
