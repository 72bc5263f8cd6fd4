#!/usr/bin/env bash
# Publish this machine's CPU results into results/<machine>/: both divisions, in interleaved rounds,
# resumable, then the tables, plots and the scaling report.
#
#   scripts/publish-results.sh        (tox -e bench-cpu; the environment below chooses)
#
# Steps (STEPS, default "tune main tuned own scaling tables"):
#   tune     the tuned division's profile: `mlpbench tune -s baseline` for every available
#            backend (3 rounds, 3 epochs) → profile.toml; kept when it exists (delete it to search
#            again)
#   main     the shipped division (run.json): every cell in ROUNDS interleaved rounds (round r
#            trains every cell once with seed r, in a fresh random order, each cell in its own
#            process), then rounds where an interval is still wider than ±TARGET_CI %, within
#            BUDGET minutes. Cells: every scenario but the gap ladder's rungs on every backend but
#            keras-torch; the rungs (gap_*) on numpy only (the ladder attributes the report's gap
#            to its recipe, the same on every backend; report_recipe and baseline, its two ends,
#            run everywhere); baseline on keras-torch (Keras' PyTorch trainer runs eagerly on a
#            CPU, ~5 s an epoch at batch 32)
#   tuned    the tuned division (tuned.json): --profile profile.toml on baseline, dropout and
#            best_config for every backend, TUNED_ROUNDS rounds
#   own      report_recipe at its own seed (42: the student report's np.random.seed(42)) on every
#            backend (seed_own.json): the report's exact run
#   scaling  how cost grows (scaling/): batch size 16…4096 on full MNIST, and hidden width
#            64…4096 on 30 000 rows (powers of 4, 3 epochs each), on numpy, jax, torch, keras
#            and keras-jax, SCALING_ROUNDS rounds
#   tables   results.md, CSVs and plots over run.json, tuned.json and seed_own.json; the scaling
#            report in scaling/
#
# Resumable: everything is written to results/<machine>/.staging/ first, starting from the
# published JSON (mlpbench run --resume keeps every finished cell whose recipe, options, data,
# code, software and machine are unchanged, and trains the rest). Run it again after an
# interruption and it carries on where it stopped; run it on an unchanged tree and it only checks.
# The published files are replaced only when every step has finished.
#
# Environment:
#   ROUNDS          rounds of the shipped division (seeds 0..ROUNDS-1; default 5)
#   TARGET_CI       then rounds for cells wider than ±TARGET_CI % (default 10, the bar every
#                   published cell should meet; empty: none)
#   BUDGET          minutes the main run may take, target rounds included (default 100)
#   TUNED_ROUNDS    rounds of the tuned division (default 3)
#   SCALING_ROUNDS  rounds of each scaling sweep (default 3)
#   STEPS           the steps to run (above)
#   RESULTS         the folder to publish into (default: results/<machine>)
#   EXTRA           more `mlpbench run` arguments for the runs (e.g. a data slice, for a rehearsal;
#                   tune and scaling keep their own sizes: leave them out of STEPS to rehearse)
set -euo pipefail
shopt -s nullglob
rounds="${ROUNDS:-5}"
target="${TARGET_CI-10}"
budget="${BUDGET:-100}"
steps=" ${STEPS:-tune main tuned own scaling tables} "
nongap="baseline,neurons_256,he_init,rmsprop,dropout,best_config,report_recipe"
scaled=(-b numpy -b jax -b torch -b keras -b keras-jax)
out="${RESULTS:-results/$(python -m bench.campaign.machine)}"
stage="$out/.staging"
mkdir -p "$stage/scaling"
# resume from what is published, unless already staged
for name in profile.toml run.json tuned.json seed_own.json scaling/batch.json scaling/width.json; do
  if [ ! -e "$stage/$name" ] && [ -e "$out/$name" ]; then cp "$out/$name" "$stage/$name"; fi
done
run() { python -m bench run "$@"; }
has() { [[ "$steps" == *" $1 "* ]]; }
# shellcheck disable=SC2206  # EXTRA: more mlpbench run arguments, as words
extra=(${EXTRA:-})

if has tune && [ ! -e "$stage/profile.toml" ]; then
  for backend in $(python -c 'from bench import registry
print(*[n for n, p in registry.probe_all(registry.names()).items() if not p.reason])'); do
    python -m bench tune -b "$backend" -s baseline --rounds 3 --epochs 3 \
      --out "$stage/profile.toml" || echo "publish-results.sh: tune -b $backend failed" >&2
  done
fi
if has main; then
  precision=()
  if [ "$rounds" -ge 2 ] && [ -n "$target" ]; then  # pairing needs 2 rounds
    precision=(--target-ci "$target" --budget "$budget")
  fi
  run --rounds "$rounds" "${precision[@]}" "${extra[@]}" \
    --cells "numpy,cupy,jax,keras,keras-jax,torch:$nongap" --cells "numpy:gap_*" \
    --cells "keras-torch:baseline" --resume "$stage/run.json" --no-tables
fi
if has tuned && [ -e "$stage/profile.toml" ]; then
  run --rounds "${TUNED_ROUNDS:-3}" "${extra[@]}" --profile "$stage/profile.toml" \
    -s baseline -s dropout -s best_config --resume "$stage/tuned.json" --no-tables
fi
if has own; then
  run -s report_recipe --seed 42 "${extra[@]}" --resume "$stage/seed_own.json" --no-tables
fi
if has scaling; then
  run "${scaled[@]}" -s baseline --sweep batch_size=16,64,256,1024,4096 --epochs 3 \
    --rounds "${SCALING_ROUNDS:-3}" "${extra[@]}" --resume "$stage/scaling/batch.json" --no-tables
  run "${scaled[@]}" -s baseline --sweep hidden=64,256,1024,4096 --n-train 30000 --epochs 3 \
    --rounds "${SCALING_ROUNDS:-3}" "${extra[@]}" --resume "$stage/scaling/width.json" --no-tables
fi
if has tables; then
  jsons=()
  for name in run.json tuned.json seed_own.json; do
    [ ! -e "$stage/$name" ] || jsons+=("$stage/$name")
  done
  python -m bench table "${jsons[@]}" --out "$stage"
  scaling=("$stage"/scaling/*.json)
  if [ ${#scaling[@]} -gt 0 ]; then python -m bench table "${scaling[@]}" --out "$stage/scaling"; fi
fi
rm -f "$out"/seed[0-9]*.json "$out"/not-run.txt  # an earlier layout's files
mkdir -p "$out/scaling"
for f in "$stage"/scaling/*; do mv -f "$f" "$out/scaling/"; done
rmdir "$stage/scaling"
for f in "$stage"/*; do mv -f "$f" "$out"/; done
rmdir "$stage"
# the tables name the files they read (results.md, and each CSV's source column): say where
# they are published, not where they were staged
for table in "$out"/results.md "$out"/*.csv "$out"/scaling/results.md "$out"/scaling/*.csv; do
  [ ! -e "$table" ] || sed -i "s#$stage/#$out/#g" "$table"
done
for page in "$out/index.html" "$out/scaling/index.html"; do  # its links to the JSON, likewise
  [ ! -e "$page" ] || sed -i "s#\.staging/##g" "$page"
done
python -m bench.report.landing "$(dirname "$out")"  # results/index.html: every machine
