#!/usr/bin/env bash
# Fetches the real photographs the demo data set (internal/demodata, patchcore-demodata) is
# cut from: three 512×512 grayscale texture photos (brick, grass, gravel; CC0-licensed, as
# the scikit-image documentation states) shipped in Debian's arch-independent package
# python3-skimage. The .deb is downloaded with `apt-get download` and unpacked with
# `dpkg-deb -x`: no root, no installation, no dependencies. Package and files are pinned by
# sha256. Idempotent: when the photos are already in place and verified it does nothing.
#
#   scripts/fetch-demo-photos.sh            # into .deps/photos
#   scripts/fetch-demo-photos.sh DIR        # into DIR
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.deps/photos}

pkg=python3-skimage
version=0.19.3-8
deb_sha256=728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9
datadir=usr/lib/python3/dist-packages/skimage/data
declare -A photo_sha256=(
  [brick.png]=7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf
  [grass.png]=b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89
  [gravel.png]=c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12
)

log() { printf '[fetch-demo-photos] %s\n' "$*"; }

verified() { # all photos present in $1 with the pinned hashes
  local f
  for f in "${!photo_sha256[@]}"; do
    [ -f "$1/$f" ] || return 1
    echo "${photo_sha256[$f]}  $1/$f" | sha256sum --quiet -c - 2>/dev/null || return 1
  done
}

if verified "$dest"; then
  log "photos present in $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # lets apt's unprivileged download user write here when run as root

deb=$tmp/${pkg}_${version}_all.deb
if ! (cd "$tmp" && apt-get download -q "$pkg=$version") >"$tmp/apt.log" 2>&1; then
  log "apt-get download failed; refreshing the package lists"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  (cd "$tmp" && apt-get download -q "$pkg=$version")
fi
[ -f "$deb" ] || { log "download did not produce $deb"; exit 1; }
echo "$deb_sha256  $deb" | sha256sum --quiet -c - || { log "sha256 mismatch for $deb"; exit 1; }

dpkg-deb -x "$deb" "$tmp/x"
mkdir -p "$dest"
for f in "${!photo_sha256[@]}"; do
  install -m 0644 "$tmp/x/$datadir/$f" "$dest/$f"
done
verified "$dest" || { log "unpacked photos do not match their pinned sha256"; exit 1; }
log "photos installed in $dest"
