#!/usr/bin/env bash
# libpatchcore's performance harness (docs/benchmarks.md). One command:
#
#   bash bench/run.sh [--backbone X.onnx]... [--images DIR] [--sizes 60,200,1000]
#                     [--pcts 0.1,0.01] [--nn exact] [--coreset-plain-max 200] [--max-test 48]
#                     [--wrn50] [--anomalib] [--out DIR] [--skip-fit] [--skip-stages]
#
# For every backbone × training-set size × coreset fraction it runs two child processes of
# bench/cmd/pcbench (each with its own peak RSS): `stages` (every stage timed apart, with its
# analytic FLOPs, IVF-PQ vs exact search) and `fit` (the product path, core.Model Fit and
# Predict at batch 1 and 8). Before and after them, `ceiling` measures the machine's SGEMM
# GFLOP/s (the report keeps the highest: other load on the machine only lowers it).
# Results: OUT/results.jsonl (one JSON object per measurement) and OUT/report.md (tables).
#
#   --backbone X.onnx   backbone(s) to measure (repeatable; its .json sidecar gives layers,
#                       mean and std). Default: the MobileNetV2 of scripts/make-backbone.sh.
#   --wrn50             also measure WideResNet50 (random init, layers layer2/layer3,
#                       ImageNet mean/std; the reference's setting) at --wrn50-sizes
#                       (default 60; --wrn50-sizes LIST), exporting it first with
#                       scripts/export_torchvision_backbone.py (needs python3-torch,
#                       python3-torchvision, python3-onnx).
#   --images DIR        an MVTec-style category (DIR/train/good, DIR/test/*) or a folder of
#                       images; cycled when smaller than a size. Default: the demo data set's
#                       --category NAME (grass, brick or gravel; default grass), generated
#                       with max(sizes) training images into .deps/bench-data.
#   --sizes LIST        training-set sizes (default 60,200).
#   --pcts LIST         coreset fractions (default 0.1,0.01).
#   --nn exact|ivfpq    search of the product path (stages always measures both).
#   --coreset-plain-max N  time the plain (unpruned, single-threaded) greedy loop next to the
#                       pruned one for sizes up to N (default 200; it is O(N·k)).
#   --max-test N        score at most N test images per measurement (default 48; each costs
#                       one exact search against the whole bank).
#   --anomalib          also run anomalib 0.7.0's PatchCore (bench/anomalib/) on the same
#                       images when bench/anomalib/setup.sh has built its environment.
#   --out DIR           results folder (default build/bench/YYYYmmdd-HHMMSS); measurements are
#                       appended to OUT/results.jsonl, so several runs can share one folder
#                       and report.md covers them all.
#   --skip-fit, --skip-stages  leave out one of the two child processes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deps=${PATCHCORE_DEPS:-$root/.deps}
export CGO_ENABLED=1
export CGO_CFLAGS="-I$deps/include -O2"
export CGO_LDFLAGS="-L$deps/lib"
export PATCHCORE_ORT_LIBRARY=${PATCHCORE_ORT_LIBRARY:-$deps/lib/libonnxruntime.so.1}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

backbones=()
images=""
category=grass
sizes=60,200
pcts=0.1,0.01
nn=exact
plain_max=200
max_test=48
wrn50=0
wrn50_sizes=60
anomalib=0
out=""
skip_fit=0
skip_stages=0
while [ $# -gt 0 ]; do
  case "$1" in
    --backbone) backbones+=("$2"); shift 2 ;;
    --images) images=$2; shift 2 ;;
    --category) category=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --pcts) pcts=$2; shift 2 ;;
    --nn) nn=$2; shift 2 ;;
    --coreset-plain-max) plain_max=$2; shift 2 ;;
    --max-test) max_test=$2; shift 2 ;;
    --wrn50) wrn50=1; shift ;;
    --wrn50-sizes) wrn50_sizes=$2; shift 2 ;;
    --anomalib) anomalib=1; shift ;;
    --out) out=$2; shift 2 ;;
    --skip-fit) skip_fit=1; shift ;;
    --skip-stages) skip_stages=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[bench] %s\n' "$*" >&2; }
out=${out:-$root/build/bench/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
results=$out/results.jsonl

# --- backbones ---------------------------------------------------------------------------
if [ ${#backbones[@]} -eq 0 ]; then
  [ -f "$deps/models/mobilenet_v2_block10.onnx" ] || bash scripts/make-backbone.sh
  backbones=("$deps/models/mobilenet_v2_block10.onnx")
fi
wrn=$deps/models/wrn50_layer3_random0.onnx
if [ "$wrn50" = 1 ] && [ ! -f "$wrn" ]; then
  py=python3
  [ -x "$deps/venv-export/bin/python" ] && py=$deps/venv-export/bin/python
  if "$py" -c 'import torch, torchvision, onnx' 2>/dev/null; then
    log "exporting WideResNet50 (random init, seed 0) to $wrn"
    "$py" scripts/export_torchvision_backbone.py --random-init --seed 0 --out "$wrn"
  else
    log "WARNING: --wrn50 needs torch, torchvision and onnx for $py (apt-get install python3-torch python3-torchvision python3-onnx); skipped"
    wrn50=0
  fi
fi

# --- images ------------------------------------------------------------------------------
all_sizes=$sizes
if [ "$wrn50" = 1 ] || [ "$anomalib" = 1 ]; then all_sizes=$sizes,$wrn50_sizes; fi
max_size=$(tr ',' '\n' <<<"$all_sizes" | sort -n | tail -1)
if [ -z "$images" ]; then
  data=$deps/bench-data/demo-$max_size
  for d in "$deps"/bench-data/demo-*; do # reuse a larger set generated earlier
    m=${d##*demo-}
    if [[ $m =~ ^[0-9]+$ ]] && [ "$m" -ge "$max_size" ] && [ -d "$d/$category/train/good" ]; then data=$d; break; fi
  done
  if [ ! -d "$data/$category/train/good" ]; then
    bash scripts/fetch-demo-photos.sh
    log "generating the demo data set with $max_size training images per category into $data"
    rm -rf "$data"
    "$GO" run ./cmd/patchcore-demodata -out "$data" -photos "$deps/photos" -train "$max_size" -test-good 10 -test-defect 8
  fi
  images=$data/$category
fi

# --- build -------------------------------------------------------------------------------
bin=$root/build/bench/pcbench
mkdir -p "$(dirname "$bin")"
log "building $bin"
"$GO" build -trimpath -o "$bin" ./bench/cmd/pcbench

# FAISS's k-means warns about small training sets once per sub-quantiser: keep one line.
quiet() { "$@" 2> >(awk '/^WARNING clustering/ { if (seen++) next } { print > "/dev/stderr" }'); }

lscpu > "$out/lscpu.txt" 2>/dev/null || true
log "SGEMM ceiling"
"$bin" ceiling -out "$results"

run_one() { # backbone size pct
  local bb=$1 n=$2 pct=$3 plain=()
  [ "$n" -le "$plain_max" ] && plain=(-coreset-plain)
  if [ "$skip_stages" = 0 ]; then
    log "stages: $(basename "$bb") $n images, bank $pct (load $(cut -d' ' -f1-3 /proc/loadavg))"
    quiet "$bin" stages -backbone "$bb" -images "$images" -n "$n" -pct "$pct" -max-test "$max_test" "${plain[@]}" -out "$results"
  fi
  if [ "$skip_fit" = 0 ]; then
    log "fit: $(basename "$bb") $n images, bank $pct, $nn search (load $(cut -d' ' -f1-3 /proc/loadavg))"
    quiet "$bin" fit -backbone "$bb" -images "$images" -n "$n" -pct "$pct" -max-test "$max_test" -nn "$nn" -out "$results"
  fi
}

for bb in "${backbones[@]}"; do
  for n in ${sizes//,/ }; do
    for pct in ${pcts//,/ }; do run_one "$bb" "$n" "$pct"; done
  done
done
if [ "$wrn50" = 1 ]; then
  for n in ${wrn50_sizes//,/ }; do
    for pct in ${pcts//,/ }; do run_one "$wrn" "$n" "$pct"; done
  done
fi

if [ "$anomalib" = 1 ]; then
  if [ -x bench/anomalib/.venv/bin/python ]; then
    for n in ${wrn50_sizes//,/ }; do
      log "anomalib 0.7.0 PatchCore: WideResNet50 random init, $n images, 10 %"
      bench/anomalib/.venv/bin/python bench/anomalib/patchcore_anomalib.py --images "$images" -n "$n" --pct 0.1 \
        --max-test "$max_test" --out "$results"
    done
  else
    log "WARNING: --anomalib: run bash bench/anomalib/setup.sh first; skipped"
  fi
fi

log "SGEMM ceiling again (the report keeps the highest: load only lowers it)"
"$bin" ceiling -out "$results"
"$bin" report -in "$results" > "$out/report.md"
cat "$out/report.md"
log "results in $out (results.jsonl, report.md, lscpu.txt)"
