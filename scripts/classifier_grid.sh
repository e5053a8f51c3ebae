#!/usr/bin/env bash
# Classifier recipes compared by patient-level 5-fold CV, side by side on one GPU. On an H100 the six
# runs took about 9 minutes; LIMIT stops them cleanly (finished folds stay in each cv.json), and the
# rest can be finished with scripts/cv_classifier.py --only-folds.
# Fold 0 of each recipe is trained by `neuroseg train --segmenter-from BASE`, so the chosen recipe's
# fold-0 model can ship as it is; folds 1-4 by scripts/cv_classifier.py (same loop, same folds).
# Two recipes are repeated with another training seed on the same split to show run-to-run noise.
# Usage: scripts/classifier_grid.sh CACHE BASE_MODEL OUTDIR   (EPOCHS=40, CV_FOLDS="1 2 3 4", LIMIT=450 s in all)
set -u
data=$1
base=$2
out=$3
epochs=${EPOCHS:-40}
cv_folds=${CV_FOLDS:-1 2 3 4}
deadline=$(($(date +%s) + ${LIMIT:-450}))
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1

left() {  # seconds to the deadline: a stopped run still leaves the folds it finished in cv.json
  local s=$((deadline - $(date +%s)))
  echo $((s > 1 ? s : 1))  # timeout 0 would mean no limit
}

recipe() {  # name, epochs, then options in neuroseg train's spelling
  local name=$1 n=$2
  shift 2
  local cv_options
  cv_options=$(echo "$*" | sed -e 's/--classifier-pool/--pool/' -e 's/--no-classifier-stem-max-pool/--no-stem-max-pool/' \
    -e 's/--classifier-features/--features/')
  mkdir -p "$out/$name"
  timeout "$(left)" python3 -m neuroseg train "$data" -o "$out/$name/model" --segmenter-from "$base" \
    --epochs "$n" "$@" >"$out/$name/train.log" 2>&1
  # shellcheck disable=SC2086
  timeout "$(left)" python3 scripts/cv_classifier.py "$data" -o "$out/$name/cv.json" --epochs "$n" $cv_options \
    --only-folds $cv_folds >"$out/$name/cv.log" 2>&1
}

noise() {  # name, training seed, then cv_classifier options: all five folds, no model kept
  local name=$1 seed=$2
  shift 2
  mkdir -p "$out/$name"
  # shellcheck disable=SC2086
  timeout "$(left)" python3 scripts/cv_classifier.py "$data" -o "$out/$name/cv.json" --epochs "$epochs" "$@" \
    --train-seed "$seed" --only-folds 0 $cv_folds >"$out/$name/cv.log" 2>&1
}

recipe avgmax "$epochs" --classifier-pool avgmax &
recipe avgmax-nostem "$epochs" --classifier-pool avgmax --no-classifier-stem-max-pool &
recipe avgmax-nostem-long $((2 * epochs)) --classifier-pool avgmax --no-classifier-stem-max-pool &
recipe avgmax-nostem-wide "$epochs" --classifier-pool avgmax --no-classifier-stem-max-pool --classifier-features 32 &
noise avgmax-seed1 1 --pool avgmax &
noise avgmax-nostem-seed1 1 --pool avgmax --no-stem-max-pool &
wait
