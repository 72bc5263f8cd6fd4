#!/usr/bin/env bash
# Publish this machine's CPU results: every cell in interleaved rounds (mlpbench run --rounds:
# round r trains every cell once with seed r, in a fresh random order, each cell in its own
# process), more rounds where an interval is still wider than the target, the report's own run at
# its own seed, then the tables and plots, all in results/<machine>/.
#
#   scripts/publish-results.sh        (tox -e bench-cpu; ROUNDS, TARGET_CI, BUDGET below)
#
# Cells (CELLS): every scenario but the gap ladder's rungs on every backend but keras-torch; the
# rungs (gap_*) on numpy only (the ladder attributes the report's gap to its recipe, the same on
# every backend; report_recipe and baseline, its two ends, run everywhere); baseline on
# keras-torch (Keras' PyTorch trainer runs eagerly on a CPU, ~5 s an epoch at batch 32).
# And report_recipe at its own seed (42: the student report's np.random.seed(42)) on every backend
# (seed_own.json), so the tables hold the report's exact run.
#
# Resumable: everything is written to results/<machine>/.staging/ first, starting from the
# published JSON (mlpbench run --resume keeps every finished cell whose recipe, options, data,
# code, software and machine are unchanged, and trains the rest). Run it again after an
# interruption and it carries on where it stopped; run it on an unchanged tree and it only checks.
# The published files are replaced only when both runs and the tables have finished.
#
# Environment:
#   ROUNDS     rounds (seeds 0..ROUNDS-1) every cell gets (default 5)
#   TARGET_CI  then rounds for the cells whose interval is wider than ±TARGET_CI % (default 5;
#              empty: no more rounds)
#   BUDGET     minutes the main run may take, target rounds included (default 75)
#   RESULTS    the folder to publish into (default: results/<machine>)
#   EXTRA      more `mlpbench run` arguments for both runs (e.g. a data slice, for a rehearsal)
set -euo pipefail
rounds="${ROUNDS:-5}"
target="${TARGET_CI-5}"
budget="${BUDGET:-75}"
nongap="baseline,neurons_256,he_init,rmsprop,dropout,best_config,report_recipe"
out="${RESULTS:-results/$(python -m bench.train.machine)}"
stage="$out/.staging"
mkdir -p "$stage"
for name in run.json seed_own.json; do  # resume from what is published, unless already staged
  if [ ! -e "$stage/$name" ] && [ -e "$out/$name" ]; then cp "$out/$name" "$stage/$name"; fi
done
precision=()
if [ "$rounds" -ge 2 ] && [ -n "$target" ]; then  # pairing needs 2 rounds
  precision=(--target-ci "$target" --budget "$budget")
fi
# shellcheck disable=SC2086  # EXTRA: more mlpbench run arguments, as words (tests use a slice)
python -m bench run --rounds "$rounds" "${precision[@]}" ${EXTRA:-} \
  --cells "numpy,cupy,jax,keras,keras-jax,torch:$nongap" --cells "numpy:gap_*" \
  --cells "keras-torch:baseline" --resume "$stage/run.json" --no-tables
# shellcheck disable=SC2086
python -m bench run -s report_recipe --seed 42 ${EXTRA:-} --resume "$stage/seed_own.json" \
  --no-tables
python -m bench table "$stage/run.json" "$stage/seed_own.json" --out "$stage"
rm -f "$out"/seed*.json "$out"/not-run.txt  # an earlier layout's files
for f in "$stage"/*; do mv -f "$f" "$out"/; done
rmdir "$stage"
# the tables name the files they read: say where they are published, not where they were staged
sed -i "s#$stage/#$out/#g" "$out/results.md"
