#!/usr/bin/env bash
# Publish this machine's benchmark results: the pytest-benchmark suite at full size, one pytest
# run (one JSON file) per seed, then the tables and plots, all in results/<machine>/.
#
#   scripts/publish-results.sh [SEEDS]       (default "0 1 2 3 4"; run by `tox -e bench-cpu`)
#
# Cells published per seed (CELLS, a pytest -k expression):
#   - every scenario but the gap ladder's rungs, on every backend but keras-torch;
#   - the gap ladder's rungs (gap_*) on numpy only: the ladder attributes the report's gap to
#     its recipe, which is the same on every backend (report_recipe and baseline, its two ends,
#     run everywhere);
#   - baseline on keras-torch (Keras' PyTorch trainer runs eagerly on the CPU, ~7 s an epoch at
#     batch 32: every scenario would add ~6 min per seed).
# Files are written to results/<machine>/.staging first and replace the published ones only when
# every seed has finished, so an interrupted run never destroys published results.
set -euo pipefail
seeds="${1:-0 1 2 3 4}"
CELLS="${CELLS:-(not gap_ and not keras-torch) or (gap_ and numpy) or (baseline and keras-torch)}"
out="results/$(python -m bench.train.machine)"
stage="$out/.staging"
rm -rf "$stage"
mkdir -p "$stage"
for seed in $seeds; do
  python -m pytest tests/test_benchmarks.py --bench-full --bench-seeds "$seed" -k "$CELLS" \
    -p no:cacheprovider --benchmark-json="$stage/seed$seed.json"
done
rm -f "$out"/*.json
mv "$stage"/*.json "$out"/
rmdir "$stage"
python -m bench table "$out"/seed*.json --out "$out"
