#!/usr/bin/env bash
# On a GPU machine: train the GPU recipe (experiment=native) on the real DSB2018 images and
# score its best checkpoint on the validation split, per image kind, in one call from the
# repository root (nuclei installed as for scripts/device/figures.sh; the images at
# $NUCLEI_DSB2018, e.g. copied beside the repository):
#   NUCLEI_DSB2018=/data/stage1_train bash scripts/device/real_recipe.sh [overrides...]
# Writes under $OUT: the run folder (native/), the evaluation (eval/: eval_metrics.json with
# val/map_<kind>, eval_images.csv with a kind column) and recipe.log.
# REAL_RECIPE_DEVICE=cpu with overrides such as trainer.max_epochs=1 runs the same steps small.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/real-recipe}
mkdir -p "$OUT"
exec > >(tee "$OUT/recipe.log") 2>&1
PY=${PYTHON:-python3}
DEVICE=${REAL_RECIPE_DEVICE:-cuda}
export PYTHONUNBUFFERED=1
[ -d "${NUCLEI_DSB2018:-../shared/dsb2018/stage1_train}" ] || {
    echo "real_recipe: no DSB2018 images at ${NUCLEI_DSB2018:-../shared/dsb2018/stage1_train}" >&2
    exit 2
}
trainer=trainer=gpu
[ "$DEVICE" = cpu ] && trainer=trainer=cpu
"$PY" -m nuclei.cli.train data=dsb2018 experiment=native "$trainer" \
    callbacks.progress_bar=null "hydra.run.dir=$OUT/native" "$@" || exit 1
best=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['best_checkpoint'])" \
    "$OUT/native/metrics.json") || exit 1
"$PY" -m nuclei.cli.evaluate "ckpt_path=$best" "device=$DEVICE" progress_bar=false \
    "output=$OUT/eval" || exit 1
