#!/usr/bin/env bash
# Evaluates the demo categories twice, with the ImageNet-pretrained MobileNetV2 backbone
# and with the same architecture randomly initialised (patchcore-backbone --random-init),
# and prints image AUROC, pixel AUROC and AUPRO side by side. Run after `make demo`
# (it reuses demo/data and build/bin/patchcore).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deps=${PATCHCORE_DEPS:-$root/.deps}
pc=$root/build/bin/patchcore
data=$root/demo/data
out=$root/demo/compare
pretrained=$deps/models/mobilenet_v2_block10.onnx
random=$deps/models/mobilenet_v2_block10_random.onnx
[ -x "$pc" ] && [ -d "$data" ] || { echo "run make demo first" >&2; exit 1; }
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -f "$random" ]; then
  "$go" run ./cmd/patchcore-backbone nsfwjs --package "$deps/npm/nsfwjs-4.3.0.tgz" \
    --out "$random" --random-init --seed 0 > /dev/null
fi
field() { sed -n "s/^ *\"$2\": *\([^,]*\),*$/\1/p" "$1" | head -n 1; }
printf '%-8s | %-10s | %-11s | %-11s | %s\n' category backbone "image AUROC" "pixel AUROC" "AUPRO@0.3"
for c in brick grass gravel; do
  for kind in pretrained random; do
    bb=$pretrained; [ "$kind" = random ] && bb=$random
    dir=$out/$c-$kind
    rm -rf "$dir"; mkdir -p "$dir"
    "$pc" fit --backbone "$bb" -o "$dir/model.pcm" --resize 256 --imagesize 224 \
      --sampler approx_greedy_coreset --percentage 0.1 --k 1 "$data/$c/train/good" > /dev/null 2>&1
    "$pc" eval -m "$dir/model.pcm" --backbone "$bb" -o "$dir" "$data/$c" > /dev/null 2>&1
    m=$dir/metrics.json
    printf '%-8s | %-10s | %-11.4f | %-11.4f | %.4f\n' "$c" "$kind" \
      "$(field "$m" image_auroc)" "$(field "$m" pixel_auroc)" "$(field "$m" aupro)"
  done
done
