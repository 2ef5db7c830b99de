#!/usr/bin/env bash
# Builds libpatchcore's default backbone: the ImageNet-trained Keras MobileNetV2 that the
# npm package nsfwjs@4.3.0 (MIT) ships, converted to ONNX up to block_10.
#
#   scripts/make-backbone.sh                 # -> .deps/models/mobilenet_v2_block10.{onnx,json}
#   PATCHCORE_DEPS=/path scripts/make-backbone.sh
#
# Idempotent: the tarball is fetched only when missing (and always checked against its
# pinned sha256), and the model is rebuilt only when the ONNX file or its sidecar is
# missing, or the sidecar's digests do not match the file and the pinned tarball.
#
# Needs npm (the npm registry) and Go. The graph takes RGB NCHW float32 in [-1, 1]
# (pixel/127.5 - 1); the sidecar records this as mean = std = 0.5 on the [0, 1] scale,
# the input size (224) and the default layers block_6_expand_relu and block_10_expand_relu.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PATCHCORE_DEPS:-$root/.deps}

nsfwjs_version=4.3.0
nsfwjs_sha256=4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f
tarball=$prefix/npm/nsfwjs-$nsfwjs_version.tgz
model=$prefix/models/mobilenet_v2_block10.onnx
sidecar=$prefix/models/mobilenet_v2_block10.json

log() { printf '[make-backbone] %s\n' "$*"; }

sha_ok() { echo "$2  $1" | sha256sum -c --status 2>/dev/null; }

# --- 1. the npm tarball ----------------------------------------------------------------
mkdir -p "$prefix/npm" "$prefix/models"
if [ -f "$tarball" ] && sha_ok "$tarball" "$nsfwjs_sha256"; then
  log "nsfwjs@$nsfwjs_version present"
else
  if ! command -v npm >/dev/null; then
    log "ERROR: npm is needed to fetch nsfwjs@$nsfwjs_version (or put the tarball at $tarball)"
    exit 1
  fi
  log "fetching nsfwjs@$nsfwjs_version from the npm registry (25 MB)"
  rm -f "$tarball"
  (cd "$prefix/npm" && npm pack --silent "nsfwjs@$nsfwjs_version" >/dev/null)
  if ! sha_ok "$tarball" "$nsfwjs_sha256"; then
    log "ERROR: $tarball does not have the pinned sha256 $nsfwjs_sha256"
    exit 1
  fi
fi

# --- 2. the ONNX model -----------------------------------------------------------------
sidecar_field() { sed -n "s/^ *\"$1\": *\"\([0-9a-f]*\)\".*/\1/p" "$sidecar" | head -n 1; }
if [ -f "$model" ] && [ -f "$sidecar" ] &&
   [ "$(sidecar_field sha256)" = "$nsfwjs_sha256" ] &&
   sha_ok "$model" "$(sidecar_field model_sha256)"; then
  log "backbone present: $model"
  exit 0
fi
log "converting MobileNetV2 (up to block_10) to ONNX"
(cd "$root" && go run ./cmd/patchcore-backbone nsfwjs --package "$tarball" --out "$model" --upto block_10)
log "wrote $model and $sidecar"
