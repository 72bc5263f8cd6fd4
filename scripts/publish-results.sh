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
# on every backend (seed_own.json), so the published tables hold the report's exact run.
#
# Everything is written to results/<machine>/.staging first, tables included, and replaces the
# published files only when every run has finished: an interrupted or failed run never destroys
# published results.
set -euo pipefail
shopt -s nullglob
seeds=("${@}")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2 3 4)
CELLS="${CELLS:-(not gap_ and not keras-torch) or (gap_ and numpy) or (baseline and keras-torch)}"
out="results/$(python -m bench.train.machine)"
stage="$out/.staging"
rm -rf "$stage"
mkdir -p "$stage"
suite() {  # suite JSON-NAME PYTEST-ARGS...
  local name="$1"
  shift
  python -m pytest tests/test_benchmarks.py --bench-full -p no:cacheprovider "$@" \
    --benchmark-json="$stage/$name.json"
}
for seed in "${seeds[@]}"; do
  suite "seed$seed" --bench-seeds "$seed" -k "$CELLS"
done
suite seed_own -k "report_recipe"
python -m bench table "$stage"/seed*.json --out "$stage"
old=("$out"/seed*.json)
rm -f "${old[@]}"
for f in "$stage"/*; do mv -f "$f" "$out"/; done
rmdir "$stage"
# the tables name the files they read: say where they are published, not where they were staged
sed -i "s#$stage/#$out/#g" "$out/results.md"
