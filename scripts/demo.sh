#!/usr/bin/env bash
# The main job end to end (`make demo` runs it after `make all`):
#
#   1. native dependencies, the default backbone (MobileNetV2 up to block_10, ONNX) and
#      the demo photographs (scripts/install-deps.sh, make-backbone.sh,
#      fetch-demo-photos.sh; each does nothing when its result is in place);
#   2. the demo data set, regenerated from scratch into demo/data (MVTec AD layout,
#      categories brick, grass and gravel; deterministic);
#   3. per category: `patchcore fit` on train/good (5 images held out to calibrate the
#      threshold), `patchcore eval` on the test set (storing the F1-optimal threshold in
#      the model), and for brick a `patchcore predict --normalized` on the scratch defects;
#   4. a metrics table, and where the models, heat maps, ROC plots and galleries are.
#
# Settings: the backbone's sidecar (layers block_6_expand_relu + block_10_expand_relu,
# mean = std = 0.5), resize 256, crop 224, approximate greedy coreset 10 %, k = 1.
#
#   scripts/demo.sh                  # expects build/bin/patchcore (make cli)
#   PATCHCORE_DEPS=/path scripts/demo.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deps=${PATCHCORE_DEPS:-$root/.deps}
bin=$root/build/bin
pc=$bin/patchcore
data=$root/demo/data
results=$root/demo/results
backbone=$deps/models/mobilenet_v2_block10.onnx
categories=(brick grass gravel)
holdout=5

go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
log() { printf '[demo] %s\n' "$*"; }
t0=$(date +%s)

[ -x "$pc" ] || { log "ERROR: $pc is missing: run make cli (or make demo)"; exit 1; }

# --- 1. dependencies, backbone, photos -------------------------------------------------
bash scripts/install-deps.sh
bash scripts/make-backbone.sh
bash scripts/fetch-demo-photos.sh "$deps/photos"
[ -f "$backbone" ] || { log "ERROR: backbone $backbone is missing"; exit 1; }
t1=$(date +%s)

# --- 2. the data set --------------------------------------------------------------------
log "generating the demo data set in $data"
"$go" build -trimpath -o "$bin/patchcore-demodata" ./cmd/patchcore-demodata
rm -rf "$data"
"$bin/patchcore-demodata" -photos "$deps/photos" -out "$data"

# --- 3. fit and evaluate each category ---------------------------------------------------
for c in "${categories[@]}"; do
  out=$results/$c
  rm -rf "$out"
  mkdir -p "$out"
  log "$c: fit on $data/$c/train/good ($holdout images held out for calibration)"
  "$pc" fit --backbone "$backbone" -o "$out/model.pcm" --calibrate-holdout "$holdout" \
    --resize 256 --imagesize 224 --sampler approx_greedy_coreset --percentage 0.1 --k 1 \
    "$data/$c/train/good"
  log "$c: eval on $data/$c/test"
  "$pc" eval -m "$out/model.pcm" --backbone "$backbone" -o "$out" --store-threshold "$data/$c"
done
log "brick: predict --normalized on the scratch defects"
"$pc" predict -m "$results/brick/model.pcm" --backbone "$backbone" --normalized \
  -o "$results/brick/predict" "$data/brick/test/scratch"
t2=$(date +%s)

# --- 4. summary ---------------------------------------------------------------------------
field() { sed -n "s/^ *\"$2\": *\([^,]*\),*$/\1/p" "$1" | head -n 1; }
echo
printf '%-10s | %-11s | %-11s | %-11s | %s\n' category "image AUROC" "pixel AUROC" "AUPRO@0.3" "F1 threshold"
printf '%s\n' "-----------+-------------+-------------+-------------+-------------"
for c in "${categories[@]}"; do
  m=$results/$c/metrics.json
  printf '%-10s | %-11.4f | %-11.4f | %-11.4f | %.4f\n' "$c" \
    "$(field "$m" image_auroc)" "$(field "$m" pixel_auroc)" "$(field "$m" aupro)" "$(field "$m" f1_threshold)"
done
echo
echo "Results per category in $results/<category>/:"
echo "  model.pcm      the model (F1 threshold stored; 'build/bin/patchcore info' prints it)"
echo "  heatmaps/      anomaly heat map over every test image, by defect type"
echo "  gallery.png    worst cases: highest-scoring good and lowest-scoring defective images"
echo "  roc.png        image-level ROC curve;  scores.csv  per-image scores;  metrics.json"
echo "  ($results/brick/predict/ holds predict's overlays and masks)"
echo
log "done in $((t2 - t0))s (dependency checks $((t1 - t0))s, data set + fit + eval $((t2 - t1))s)"
