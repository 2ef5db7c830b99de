#!/usr/bin/env bash
# Installs every native dependency of libpatchcore into a prefix inside the repository
# (default: .deps/, ignored by git). Idempotent: each step is skipped when its result
# is already in place, so a second run takes seconds.
#
#   scripts/install-deps.sh            # everything
#   PATCHCORE_DEPS=/path scripts/install-deps.sh
#
# Steps:
#   1. Debian build packages (build-essential cmake dpkg-dev libopenblas-dev liblapack-dev)
#   2. FAISS 1.7.3 from Debian's source package, static + PIC + AVX2, with the C API
#   3. ONNX Runtime shared library from npm onnxruntime-node@1.30.0, sha256-verified
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PATCHCORE_DEPS:-$root/.deps}
work=$prefix/build
mkdir -p "$prefix/lib" "$prefix/include" "$work"

log() { printf '[install-deps] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- 1. Debian packages ------------------------------------------------------------
debian_packages=(build-essential cmake dpkg-dev libopenblas-dev liblapack-dev pkg-config)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

# --- 2. FAISS 1.7.3 ------------------------------------------------------------------
faiss_version=1.7.3-2
if [ -f "$prefix/lib/libfaiss.a" ] && [ -f "$prefix/lib/libfaiss_c.a" ] && [ -f "$prefix/include/faiss/c_api/faiss_c.h" ]; then
  log "FAISS present"
else
  apt_dir=$work/apt
  mkdir -p "$apt_dir/etc" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  cat > "$apt_dir/etc/debian-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/etc"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
  src=$work/faiss-1.7.3
  if [ ! -d "$src" ]; then
    log "downloading FAISS source package $faiss_version"
    (cd "$work" && apt-get "${apt_opts[@]}" -qq update && apt-get "${apt_opts[@]}" source --download-only "faiss=$faiss_version")
    (cd "$work" && dpkg-source -x "faiss_${faiss_version}.dsc" "$src")
  fi
  log "building FAISS (static, PIC, AVX2, C API) - a few minutes"
  cmake -S "$src" -B "$src/_build" -DCMAKE_BUILD_TYPE=Release \
    -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF -DFAISS_ENABLE_C_API=ON \
    -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DFAISS_OPT_LEVEL=generic -DCMAKE_CXX_FLAGS="-mavx2 -mfma -mf16c -mpopcnt" \
    -DBLA_VENDOR=OpenBLAS -DCMAKE_INSTALL_PREFIX="$prefix" > "$work/faiss-cmake.log"
  cmake --build "$src/_build" --target faiss faiss_c -j "$(nproc)" > "$work/faiss-build.log"
  cmake --install "$src/_build" > "$work/faiss-install.log"
  cp "$src/_build/c_api/libfaiss_c.a" "$prefix/lib/"
  mkdir -p "$prefix/include/faiss/c_api"
  (cd "$src/c_api" && find . -name '*.h' -exec cp --parents {} "$prefix/include/faiss/c_api/" \;)
  log "FAISS installed into $prefix"
fi

# --- 3. ONNX Runtime -----------------------------------------------------------------
ort_version=1.30.0
ort_sha256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ort_lib=$prefix/lib/libonnxruntime.so.1
if [ -f "$ort_lib" ] && echo "$ort_sha256  $ort_lib" | sha256sum -c --status; then
  log "ONNX Runtime present"
else
  log "fetching onnxruntime-node@$ort_version from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ort_version" > /dev/null)
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  echo "$ort_sha256  $tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --status \
    || { echo "checksum mismatch for libonnxruntime.so.1" >&2; rm -rf "$tmp"; exit 1; }
  install -m 0755 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort_lib"
  ln -sf libonnxruntime.so.1 "$prefix/lib/libonnxruntime.so"
  rm -rf "$tmp"
  log "ONNX Runtime installed into $ort_lib"
fi
log "done: prefix $prefix"
